package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// StaticPrefix is the URL path under which Static serves ui/static.
const StaticPrefix = "/static/"

// Caching scheme (fingerprinted URLs). Every file is served at
// /static/<name>, and pages link to /static/<name>?v=<hash>, where <hash> is
// the start of the SHA-256 of the file's bytes (Static.URL builds it). A
// request whose v matches the current hash gets immutableCacheControl: the
// URL can never point at other bytes, so browsers keep it for a year and do
// not even revalidate. Any other request (no v, or a stale v left in an old
// page) gets revalidateCacheControl and must check the ETag. The query string
// was chosen over hashed file names so files keep their names in the
// repository and in import paths, and old URLs still resolve after an upgrade.
const (
	immutableCacheControl  = "public, max-age=31536000, immutable" // one year: the longest RFC 9111 caches honour in practice
	revalidateCacheControl = "no-cache"                            // may be stored, but must be revalidated with If-None-Match
)

// fingerprintLen is how many hex digits of the SHA-256 go into ETags and ?v=:
// 64 bits make an accidental collision between two versions of a file
// practically impossible, and keep URLs short.
const fingerprintLen = 16

// minGzipSize is the smallest file worth compressing: below about one packet
// the gzip header and the CPU cost outweigh the saving.
const minGzipSize = 512

// contentTypes maps extensions to Content-Type. It is fixed, rather than taken
// from mime.TypeByExtension, whose answers depend on the host's mime.types
// files (a Windows registry can map .js to text/plain, and browsers refuse
// such scripts under X-Content-Type-Options: nosniff).
var contentTypes = map[string]string{
	".css":         "text/css; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".json":        "application/json",
	".webmanifest": "application/manifest+json",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".ico":         "image/x-icon",
	".txt":         "text/plain; charset=utf-8",
	".md":          "text/markdown; charset=utf-8",
	".html":        "text/html; charset=utf-8",
}

// compressible lists the extensions whose files are text and worth gzipping.
var compressible = map[string]bool{
	".css": true, ".js": true, ".json": true, ".webmanifest": true, ".svg": true,
	".txt": true, ".md": true, ".html": true,
}

// staticFile is one file held in memory, with its gzip form when that is smaller.
type staticFile struct {
	body        []byte
	gz          []byte // nil when not compressible or not smaller
	hash        string // fingerprintLen hex digits of SHA-256(body)
	contentType string
}

// Static serves the embedded static files. It reads and compresses every file
// once, in NewStatic; afterwards it only reads its maps, so ServeHTTP and URL
// may be called from any number of goroutines.
type Static struct {
	files map[string]*staticFile // by name relative to static/, e.g. "app.js"
}

// NewStatic loads ui/static from the binary. An error means the embedded
// files are broken, which is a build fault.
func NewStatic() (*Static, error) {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, fmt.Errorf("static files: %w", err)
	}
	return NewStaticFS(sub)
}

// NewStaticFS loads every regular file of fsys (tests pass an fstest.MapFS).
func NewStaticFS(fsys fs.FS) (*Static, error) {
	s := &Static{files: make(map[string]*staticFile)}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ext := strings.ToLower(path.Ext(name))
		f := &staticFile{body: body, hash: hex.EncodeToString(sum[:])[:fingerprintLen], contentType: contentTypes[ext]}
		if f.contentType == "" {
			f.contentType = "application/octet-stream"
		}
		if compressible[ext] && len(body) >= minGzipSize {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid
			zw.Write(body)                                           // writes to a bytes.Buffer do not fail
			zw.Close()
			if buf.Len() < len(body) {
				f.gz = buf.Bytes()
			}
		}
		s.files[name] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load static files: %w", err)
	}
	return s, nil
}

// URL returns the fingerprinted URL of a static file, e.g.
// "/static/app.js?v=0123456789abcdef". For a name that does not exist it
// returns the plain path, which will answer 404; templates never link to
// such names, and TestStaticURLsExist checks the pages.
func (s *Static) URL(name string) string {
	f, ok := s.files[name]
	if !ok {
		return StaticPrefix + name
	}
	return StaticPrefix + name + "?v=" + f.hash
}

// Has reports whether name is a static file.
func (s *Static) Has(name string) bool {
	_, ok := s.files[name]
	return ok
}

// ServeHTTP answers GET and HEAD for StaticPrefix + name. It sends a strong
// ETag per representation (the gzip form has its own, as RFC 9110 §8.8.3
// requires of strong validators), 304 when If-None-Match matches, and
// Vary: Accept-Encoding, since the body depends on it.
func (s *Static) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, StaticPrefix)
	f := s.files[name]
	if !ok || f == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	body, etag := f.body, `"`+f.hash+`"`
	if f.gz != nil {
		h.Set("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			body, etag = f.gz, `"`+f.hash+`-gz"`
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	h.Set("Content-Type", f.contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	if r.URL.Query().Get("v") == f.hash {
		h.Set("Cache-Control", immutableCacheControl)
	} else {
		h.Set("Cache-Control", revalidateCacheControl)
	}
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		h.Del("Content-Encoding") // a 304 has no body to describe; the cached one keeps its own
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(body)
	}
}

// acceptsGzip reports whether an Accept-Encoding value allows gzip: listed
// (or "*") without q=0 (RFC 9110 §12.5.3).
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "x-gzip" && coding != "*" {
			continue
		}
		q := strings.ReplaceAll(strings.ToLower(params), " ", "")
		if q == "q=0" || q == "q=0.0" || q == "q=0.00" || q == "q=0.000" {
			return false
		}
		return true
	}
	return false
}

// etagMatches applies If-None-Match's weak comparison (RFC 9110 §13.1.2):
// "*" matches anything, and W/ prefixes are ignored.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || strings.TrimPrefix(part, "W/") == etag {
			return true
		}
	}
	return false
}
