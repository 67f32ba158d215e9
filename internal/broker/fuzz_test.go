package broker

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCheckDestination checks, segment by segment, what checkDestination
// promises: an accepted destination cannot alias another one, since every
// authorization rule matches destinations as plain strings.
func FuzzCheckDestination(f *testing.F) {
	for _, s := range []string{"/sub/chat/room/1", "/topic/a.b", "/user/queue/errors", "/a/../b", "/a//b", "/a/./b",
		"/a/", "/%2e%2e/x", "/a/..", "/a/b\x00", "/queue/*", "/topic/#", "/a\\b", "/..", "/", "/a?x=1", "/한국어/방"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, d string) {
		if checkDestination(d) != nil {
			return
		}
		if len(d) > 512 || !strings.HasPrefix(d, "/") {
			t.Fatalf("accepted %q: length or leading slash", d)
		}
		for i, seg := range strings.Split(d[1:], "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("accepted %q: segment %d is %q", d, i, seg)
			}
		}
		for _, r := range d {
			if r < 0x21 || r == 0x7f || strings.ContainsRune("%\\*#?", r) {
				t.Fatalf("accepted %q: character %q", d, r)
			}
		}
		// Accepted destinations are their own canonical form.
		if u, err := url.Parse(d); err == nil && u.Path != d && utf8.ValidString(d) {
			t.Fatalf("accepted %q, which URL parsing reads as %q", d, u.Path)
		}
	})
}
