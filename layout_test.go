package main

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// module is this module's path, the prefix of every internal import.
const module = "stompbox"

// allowedImports is the house's one list of arrows: for each internal
// package, the internal packages it may import. Imports point down only; a
// package missing here fails the test, so a new package is a decision
// written down, not an accident. docs/ARCHITECTURE.md draws the same list.
var allowedImports = map[string][]string{
	// Leaves: they import nothing of ours.
	"internal/apperr":      nil, // the error words and their HTTP and STOMP forms
	"internal/buildinfo":   nil,
	"internal/certs":       nil,
	"internal/desktop":     nil,
	"internal/latency":     nil,
	"internal/service":     nil,
	"internal/sockjsframe": nil,
	"internal/stomp":       nil,
	"internal/testutil":    nil,
	"ui":                   nil,

	// What server and clients agree on, and the pieces the transports share.
	"internal/proto":           {"internal/latency"},
	"internal/ratelimit":       {"internal/apperr"},
	"internal/stomp/stomptest": {"internal/stomp"},
	"internal/transport":       {"internal/apperr", "internal/stomp"},

	// The broker and the store: neither knows the other, the chat or the cluster.
	"internal/sockjs": {"internal/sockjsframe", "internal/transport"},
	"internal/broker": {"internal/latency", "internal/ratelimit", "internal/sockjsframe", "internal/stomp", "internal/transport"},
	"internal/store":  {"internal/apperr", "internal/latency", "internal/proto"},

	// The application over the store.
	"internal/auth":  {"internal/apperr", "internal/proto", "internal/store"},
	"internal/chat":  {"internal/apperr", "internal/auth", "internal/proto", "internal/store"},
	"internal/files": {"internal/apperr", "internal/store"},

	// What ties the parts together: through the interfaces the lower parts own.
	"internal/chatstomp": {"internal/apperr", "internal/auth", "internal/broker", "internal/chat", "internal/proto", "internal/stomp", "internal/store", "internal/transport"},
	"internal/cluster":   {"internal/apperr", "internal/broker", "internal/chat", "internal/latency", "internal/proto", "internal/stomp", "internal/store"},
	"internal/web":       {"internal/apperr", "internal/auth", "internal/buildinfo", "internal/chat", "internal/files", "internal/proto", "internal/ratelimit", "internal/store", "ui"},
	"internal/cli":       {"internal/apperr", "internal/auth", "internal/files", "internal/proto", "internal/store"},
	// The Prometheus exposition reads every part's figures at each scrape.
	"internal/metrics": {"internal/auth", "internal/broker", "internal/cluster", "internal/files", "internal/latency", "internal/proto", "internal/store"},

	// The load tool is a client: the codec, the wire formats and proto only.
	"internal/bench": {"internal/latency", "internal/proto", "internal/sockjsframe", "internal/stomp"},

	// Helpers for tests of the parts above them; only tests import these.
	"internal/store/storetest": {"internal/proto", "internal/store", "internal/testutil"},
	"internal/auth/authtest":   {"internal/auth", "internal/store"},
	"internal/chat/chattest":   {"internal/auth", "internal/auth/authtest", "internal/chat", "internal/store", "internal/store/storetest", "internal/testutil"},
}

// rootFaces are the only non-test Go files allowed at the root: the design's
// faces, each a thin wiring of its part.
var rootFaces = []string{"broker.go", "main.go", "sockjs.go", "stomp.go", "store.go"}

// TestLayoutImportsPointDown fails when an internal package imports one of
// ours that allowedImports does not list for it, or when a package exists
// that the list does not know.
func TestLayoutImportsPointDown(t *testing.T) {
	var dirs []string
	for _, top := range []string{"internal", "ui"} {
		filepath.WalkDir(top, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if d.IsDir() {
				dirs = append(dirs, filepath.ToSlash(path))
			}
			return nil
		})
	}
	sort.Strings(dirs)
	ctx := build.Default
	ctx.GOOS, ctx.GOARCH = "linux", "amd64"
	for _, dir := range dirs {
		pkg, err := ctx.ImportDir(dir, 0)
		if _, none := err.(*build.NoGoError); none {
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		allowed, known := allowedImports[dir]
		if !known {
			t.Errorf("%s is a package the layout does not list: add it to allowedImports with the packages it may import", dir)
			continue
		}
		for _, imp := range pkg.Imports {
			rel, ours := strings.CutPrefix(imp, module+"/")
			if !ours {
				continue
			}
			if !slices.Contains(allowed, rel) {
				t.Errorf("%s imports %s, which the layout does not allow (allowed: %v)", dir, rel, allowed)
			}
		}
	}
}

// TestLayoutRootHoldsTheFaces fails when a non-test Go file appears at the
// root beside the design's faces: a new part belongs in internal/.
func TestLayoutRootHoldsTheFaces(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || slices.Contains(rootFaces, f) {
			continue
		}
		t.Errorf("%s is not one of the root's faces %v: move it into an internal/ package", f, rootFaces)
	}
}
