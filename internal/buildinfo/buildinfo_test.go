package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	vcs := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "stompbox", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "GOARCH", Value: "arm"},
			{Key: "GOOS", Value: "linux"},
			{Key: "GOARM", Value: "6"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := []struct {
		name    string
		stamped Info
		bi      *debug.BuildInfo
		want    Info
	}{
		{"stamped wins over vcs", Info{Version: "v1.2.0", Commit: "feedface", Date: "2026-12-07T01:47:33Z"}, vcs,
			Info{Version: "v1.2.0", Commit: "feedface", Date: "2026-12-07T01:47:33Z", GoVersion: "go1.26.8", Platform: "linux/arm/6"}},
		{"stamped from a modified tree", Info{Version: "v1.2.0", Commit: "feedface", Date: "2026-12-07T01:47:33Z", Modified: true}, nil,
			Info{Version: "v1.2.0", Commit: "feedface", Date: "2026-12-07T01:47:33Z", Modified: true, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}},
		{"plain go build", Info{}, vcs,
			Info{Version: DevVersion, Commit: "0123456789abcdef0123456789abcdef01234567", Date: "2026-12-01T10:00:00Z", Modified: true, GoVersion: "go1.26.8", Platform: "linux/arm/6"}},
		{"go install module@version", Info{}, &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.3.0"}},
			Info{Version: "v1.3.0", GoVersion: "go1.26.8", Platform: runtime.GOOS + "/" + runtime.GOARCH}},
		{"no build info", Info{}, nil,
			Info{Version: DevVersion, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resolve(tt.stamped, tt.bi); got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		name string
		info Info
		want string
	}{
		{"release", Info{Version: "v1.2.0", Commit: "feedface", Date: "2026-12-07T01:47:33Z", GoVersion: "go1.26.8", Platform: "linux/arm64"},
			"stompbox v1.2.0\ncommit: feedface\ndate:   2026-12-07T01:47:33Z\ngo:     go1.26.8 linux/arm64\n"},
		{"modified tree", Info{Version: DevVersion, Commit: "feedface", Date: "2026-12-01T10:00:00Z", Modified: true, GoVersion: "go1.26.8", Platform: "linux/arm/6"},
			"stompbox dev\ncommit: feedface (modified)\ndate:   2026-12-01T10:00:00Z\ngo:     go1.26.8 linux/arm/6\n"},
		{"nothing recorded", Info{Version: DevVersion, GoVersion: "go1.26.8", Platform: "windows/amd64"},
			"stompbox dev\ncommit: unknown\ndate:   unknown\ngo:     go1.26.8 windows/amd64\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.info.String(); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestGet checks the binary's own information: a test binary is never
// stamped, so it is a dev build run by this toolchain.
func TestGet(t *testing.T) {
	info := Get()
	if info.Version != DevVersion || info.GoVersion != runtime.Version() || !strings.HasPrefix(info.Platform, runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("Get() = %+v", info)
	}
}
