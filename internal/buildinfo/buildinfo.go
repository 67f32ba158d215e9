// Package buildinfo says which build of stompbox is running: its version,
// the commit it was built from, when, and with which Go.
//
// A release build stamps the values with the linker (scripts/release.sh):
//
//	go build -ldflags "-X stompbox/internal/buildinfo.version=v1.2.0
//	  -X stompbox/internal/buildinfo.commit=<full hash>
//	  -X stompbox/internal/buildinfo.date=2026-12-07T01:47:33Z"
//	  [-X stompbox/internal/buildinfo.modified=true]
//
// A plain go build or go run stamps nothing; the commit, its time and
// whether the tree had changes then come from the VCS settings that the Go
// toolchain records (runtime/debug.ReadBuildInfo), and the version is "dev".
// This package imports nothing of stompbox.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
)

// Set by the linker with -X; empty in a plain build.
var (
	version  string // the release, e.g. v1.2.0
	commit   string // the full commit hash
	date     string // the commit's time, RFC 3339 in UTC
	modified string // "true" when built from a tree with uncommitted changes
)

// DevVersion is the version of a build that nobody stamped.
const DevVersion = "dev"

// unknown stands for a value that neither the linker nor the toolchain
// recorded (a build outside a git checkout, or with -buildvcs=false).
const unknown = "unknown"

// Info describes one build.
type Info struct {
	Version   string // a release such as v1.2.0, or DevVersion
	Commit    string // full commit hash; "" when unknown
	Date      string // the commit's time (RFC 3339); "" when unknown
	Modified  bool   // built from a tree with uncommitted changes
	GoVersion string // the toolchain, e.g. go1.26.8
	Platform  string // GOOS/GOARCH[/GOARM], e.g. linux/arm64 or linux/arm/6
}

// Get returns this binary's build information. It is cheap after the first
// call and safe for concurrent use.
func Get() Info { return get() }

var get = sync.OnceValue(func() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(Info{Version: version, Commit: commit, Date: date, Modified: modified == "true"}, bi)
})

// Version is Get().Version: what the server name, the start log and the
// admin statistics show.
func Version() string { return Get().Version }

// resolve completes the values stamped by the linker (Version, Commit,
// Date, Modified) from the toolchain's build settings (bi may be nil).
func resolve(stamped Info, bi *debug.BuildInfo) Info {
	info := stamped
	info.GoVersion = runtime.Version()
	info.Platform = runtime.GOOS + "/" + runtime.GOARCH
	if bi != nil {
		info.GoVersion = bi.GoVersion
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version // go install stompbox@v1.2.0
		}
		settings := make(map[string]string, len(bi.Settings))
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if goos, goarch := settings["GOOS"], settings["GOARCH"]; goos != "" && goarch != "" {
			info.Platform = goos + "/" + goarch
			if arm := settings["GOARM"]; arm != "" && goarch == "arm" {
				info.Platform += "/" + arm // the Pi Zero's 6 or the Pi 2's 7
			}
		}
		if info.Commit == "" {
			info.Commit = settings["vcs.revision"]
			info.Modified = settings["vcs.modified"] == "true"
		}
		if info.Date == "" {
			info.Date = settings["vcs.time"]
		}
	}
	if info.Version == "" {
		info.Version = DevVersion
	}
	return info
}

// String is what stompbox --version prints: the version on the first line,
// then one "name: value" line each for the commit, the build date and Go.
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stompbox %s\n", i.Version)
	c := or(i.Commit, unknown)
	if i.Modified {
		c += " (modified)"
	}
	fmt.Fprintf(&b, "commit: %s\n", c)
	fmt.Fprintf(&b, "date:   %s\n", or(i.Date, unknown))
	fmt.Fprintf(&b, "go:     %s %s\n", i.GoVersion, i.Platform)
	return b.String()
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
