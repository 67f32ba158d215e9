package ui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                   false,
		"gzip":               true,
		"GZIP":               true,
		"deflate, gzip":      true,
		"br;q=1, gzip;q=0.5": true,
		"gzip;q=0":           false,
		"gzip; q=0.000":      false,
		"*":                  true,
		"identity":           false,
		"x-gzip":             true,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}

func TestEtagMatches(t *testing.T) {
	for _, tt := range []struct {
		header, etag string
		want         bool
	}{
		{"", `"a"`, false},
		{`"a"`, `"a"`, true},
		{`W/"a"`, `"a"`, true},
		{`"b", "a"`, `"a"`, true},
		{`"b"`, `"a"`, false},
		{"*", `"a"`, true},
	} {
		if got := etagMatches(tt.header, tt.etag); got != tt.want {
			t.Errorf("etagMatches(%q, %q) = %v", tt.header, tt.etag, got)
		}
	}
}

// TestStaticSmallFilesNotGzipped checks that tiny or incompressible files are
// served as they are, and that unknown types are octet-stream.
func TestStaticSmallFilesNotGzipped(t *testing.T) {
	s, err := NewStaticFS(fstest.MapFS{
		"a.js":      {Data: []byte("x=1")},
		"big.css":   {Data: []byte(strings.Repeat("body{color:red}\n", 100))},
		"blob.bin":  {Data: []byte{1, 2, 3}},
		"dir/b.svg": {Data: []byte("<svg/>")},
	})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(path string) *http.Response {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Accept-Encoding", "gzip")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w.Result()
	}
	if res := serve("/static/a.js"); res.Header.Get("Content-Encoding") != "" || res.Header.Get("Vary") != "" {
		t.Errorf("small file: encoding %q vary %q", res.Header.Get("Content-Encoding"), res.Header.Get("Vary"))
	}
	if res := serve("/static/big.css"); res.Header.Get("Content-Encoding") != "gzip" {
		t.Error("big css not gzipped")
	}
	if res := serve("/static/blob.bin"); res.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("blob type %q", res.Header.Get("Content-Type"))
	}
	if res := serve("/static/dir/b.svg"); res.StatusCode != 200 {
		t.Errorf("nested file: %d", res.StatusCode)
	}
	if !strings.HasPrefix(s.URL("dir/b.svg"), "/static/dir/b.svg?v=") || s.URL("none.js") != "/static/none.js" {
		t.Errorf("URLs %q %q", s.URL("dir/b.svg"), s.URL("none.js"))
	}
}

// TestScriptsBuildNoMarkup keeps the scripts to the rules that make user text
// safe and the CSP strict: no HTML parsing sinks, no code from strings, and
// no inline styles (CSP style-src has no 'unsafe-inline'; classes instead).
func TestScriptsBuildNoMarkup(t *testing.T) {
	for _, name := range []string{"static/app.js", "static/i18n.js", "static/markdown.js", "static/upload.js", "static/pwa.js", "static/sw.js"} {
		src, err := staticFiles.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", ".style.", "setAttribute(\"style\"", "setAttribute('style'", "javascript:"} {
			if strings.Contains(string(src), bad) {
				t.Errorf("%s uses %q", name, bad)
			}
		}
	}
}

// BenchmarkStaticServe measures serving app.js gzipped from memory, the
// request every page load makes.
func BenchmarkStaticServe(b *testing.B) {
	s, err := NewStatic()
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", s.URL("app.js"), nil)
	r.Header.Set("Accept-Encoding", "gzip, deflate, br")
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
	}
}
