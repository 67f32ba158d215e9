package main

// Handler tests of the HTML pages and the static files, with httptest and
// golang.org/x/net/html (already in the module graph through coder/websocket
// tooling; goquery would add a dependency for what a 30-line finder does).

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"stompbox/internal/web"
	"stompbox/ui"
)

// pagesFakeAccounts stands in for the store and the session check: a cookie
// value names a signed-in user.
type pagesFakeAccounts struct {
	sessions map[string]web.UIUser // stompbox_session cookie value -> user
	anyUser  bool
	err      error // returned by hasAnyUser when set
}

func (f *pagesFakeAccounts) options() web.PagesOptions {
	return web.PagesOptions{
		CurrentUser: func(r *http.Request) (web.UIUser, bool) {
			c, err := r.Cookie("stompbox_session")
			if err != nil {
				return web.UIUser{}, false
			}
			u, ok := f.sessions[c.Value]
			return u, ok
		},
		HasAnyUser: func(context.Context) (bool, error) { return f.anyUser, f.err },
		Lang:       "en",
	}
}

// newTestPages returns a mux with the pages of a server where "kim" (admin)
// and "lee" have accounts and sessions "kim-session" and "lee-session".
func newTestPages(t *testing.T, mutate ...func(*web.PagesOptions)) (*http.ServeMux, *pagesFakeAccounts) {
	t.Helper()
	f := &pagesFakeAccounts{
		anyUser: true,
		sessions: map[string]web.UIUser{
			"kim-session": {ID: 1, Username: "kim", DisplayName: "Kim Minji", IsAdmin: true},
			"lee-session": {ID: 2, Username: "lee", DisplayName: "이서연"},
		},
	}
	opts := f.options()
	for _, m := range mutate {
		m(&opts)
	}
	mux := http.NewServeMux()
	web.NewPages(opts).Routes(mux)
	return mux, f
}

// get performs a GET with optional session cookie and extra headers
// ("Name: value").
func pageGet(t *testing.T, h http.Handler, target, session string, headers ...string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	if session != "" {
		r.AddCookie(&http.Cookie{Name: "stompbox_session", Value: session})
	}
	for _, hd := range headers {
		k, v, _ := strings.Cut(hd, ":")
		r.Header.Add(k, strings.TrimSpace(v))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

// parse reads an HTML response body.
func parseHTML(t *testing.T, res *http.Response) *html.Node {
	t.Helper()
	doc, err := html.Parse(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func htmlAttr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// findAll returns the element nodes under n for which match holds, in document order.
func htmlFindAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && match(d) {
			out = append(out, d)
		}
	}
	return out
}

// byTestID returns the element with data-testid id, or nil.
func htmlByTestID(doc *html.Node, id string) *html.Node {
	found := htmlFindAll(doc, func(n *html.Node) bool { v, _ := htmlAttr(n, "data-testid"); return v == id })
	if len(found) == 0 {
		return nil
	}
	return found[0]
}

// textOf returns the text content of n, spaces collapsed.
func htmlText(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// mustTestID fails unless the page has every data-testid.
func htmlMustTestID(t *testing.T, doc *html.Node, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if htmlByTestID(doc, id) == nil {
			t.Errorf("no element with data-testid=%q", id)
		}
	}
}

// bootOf decodes the page's boot JSON element.
func htmlBoot(t *testing.T, doc *html.Node) ui.Boot {
	t.Helper()
	scripts := htmlFindAll(doc, func(n *html.Node) bool { id, _ := htmlAttr(n, "id"); return n.Data == "script" && id == "boot" })
	if len(scripts) != 1 {
		t.Fatalf("%d boot elements, want 1", len(scripts))
	}
	if typ, _ := htmlAttr(scripts[0], "type"); typ != "application/json" {
		t.Errorf("boot type %q, want application/json", typ)
	}
	var b ui.Boot
	if err := json.Unmarshal([]byte(htmlText(scripts[0])), &b); err != nil {
		t.Fatalf("boot JSON: %v", err)
	}
	return b
}

func TestPagesRedirects(t *testing.T) {
	mux, f := newTestPages(t)
	tests := []struct {
		name     string
		anyUser  bool
		target   string
		session  string
		status   int
		location string
	}{
		{"no account: chat goes to setup", false, "/", "", http.StatusSeeOther, "/setup"},
		{"no account: login goes to setup", false, "/login", "", http.StatusSeeOther, "/setup"},
		{"no account: register goes to setup", false, "/register", "", http.StatusSeeOther, "/setup"},
		{"no account: settings goes to setup", false, "/settings", "", http.StatusSeeOther, "/setup"},
		{"signed out: chat goes to login", true, "/", "", http.StatusSeeOther, "/login"},
		{"signed out: settings keeps where it was going", true, "/settings", "", http.StatusSeeOther, "/login?next=%2Fsettings"},
		{"signed out: admin keeps where it was going", true, "/admin", "", http.StatusSeeOther, "/login?next=%2Fadmin"},
		{"unknown session is signed out", true, "/", "stolen", http.StatusSeeOther, "/login"},
		{"setup is closed once an account exists", true, "/setup", "", http.StatusSeeOther, "/"},
		{"signed in: login goes to chat", true, "/login", "kim-session", http.StatusSeeOther, "/"},
		{"signed in: login goes to next", true, "/login?next=/settings", "kim-session", http.StatusSeeOther, "/settings"},
		{"signed in: login refuses a foreign next", true, "/login?next=//evil.example/", "kim-session", http.StatusSeeOther, "/"},
		{"signed in: register goes to chat", true, "/register", "lee-session", http.StatusSeeOther, "/"},
		{"no account: setup page", false, "/setup", "", http.StatusOK, ""},
		{"signed out: login page", true, "/login", "", http.StatusOK, ""},
		{"signed in: chat page", true, "/", "kim-session", http.StatusOK, ""},
		{"not admin: admin forbidden", true, "/admin", "lee-session", http.StatusForbidden, ""},
		{"embed with a bad id", true, "/embed/room/abc", "kim-session", http.StatusNotFound, ""},
		{"embed with id 0", true, "/embed/room/0", "kim-session", http.StatusNotFound, ""},
		{"unknown page", true, "/nope", "kim-session", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.anyUser = tt.anyUser
			res := pageGet(t, mux, tt.target, tt.session)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.status)
			}
			if got := res.Header.Get("Location"); got != tt.location {
				t.Errorf("Location %q, want %q", got, tt.location)
			}
		})
	}
}

func TestPagesStoreError(t *testing.T) {
	mux, f := newTestPages(t)
	f.err = errors.New("disk on fire")
	res := pageGet(t, mux, "/", "")
	if res.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", res.StatusCode)
	}
	body, _ := io.ReadAll(res.Body)
	if strings.Contains(string(body), "disk") {
		t.Errorf("internal error leaked: %q", body)
	}
}

func TestPagesContent(t *testing.T) {
	mux, f := newTestPages(t)
	tests := []struct {
		name    string
		anyUser bool
		target  string
		session string
		testIDs []string
		absent  []string
		page    string
	}{
		{"setup", false, "/setup", "", []string{"page-setup", "setup-form", "field-username", "field-displayName", "field-password", "form-error", "submit", "lang-select"}, nil, "setup"},
		{"login", true, "/login", "", []string{"page-login", "login-form", "field-username", "field-password", "register-link", "form-error"}, nil, "login"},
		{"register", true, "/register", "", []string{"page-register", "register-form", "field-displayName", "login-link"}, nil, "register"},
		{"chat as admin", true, "/", "kim-session", []string{"chat-app", "sidebar", "room-list", "dm-list", "other-rooms", "new-room", "new-dm",
			"search-form", "search-input", "conn-state", "room", "messages", "composer", "send", "typing", "online-list", "drawer-toggle",
			"me-name", "settings-link", "admin-link", "logout", "new-room-dialog", "new-dm-dialog", "toasts", "mention-list", "jump-latest"}, nil, "chat"},
		{"chat as member has no admin link", true, "/", "lee-session", []string{"chat-app", "settings-link"}, []string{"admin-link"}, "chat"},
		{"settings", true, "/settings", "lee-session", []string{"settings", "lang-select", "notify-toggle", "webhook-form", "webhook-input", "back"}, nil, "settings"},
		{"admin", true, "/admin", "kim-session", []string{"admin", "backup-link", "people-table", "rooms-table"}, nil, "admin"},
		{"forbidden", true, "/admin", "lee-session", []string{"forbidden"}, []string{"backup-link"}, "forbidden"},
		{"embed signed in", true, "/embed/room/7", "lee-session", []string{"embed-app", "room-title", "messages", "composer", "conn-state", "open-app"}, []string{"sidebar", "embed-signin"}, "embed"},
		{"embed signed out", true, "/embed/room/7", "", []string{"embed-app", "embed-signin", "embed-login-link"}, []string{"composer"}, "embed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.anyUser = tt.anyUser
			res := pageGet(t, mux, tt.target, tt.session)
			if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
			doc := parseHTML(t, res)
			htmlMustTestID(t, doc, tt.testIDs...)
			for _, id := range tt.absent {
				if htmlByTestID(doc, id) != nil {
					t.Errorf("data-testid=%q present, want absent", id)
				}
			}
			if b := htmlBoot(t, doc); b.Page != tt.page {
				t.Errorf("boot page %q, want %q", b.Page, tt.page)
			}
		})
	}
}

func TestPagesChatBoot(t *testing.T) {
	mux, _ := newTestPages(t, func(o *web.PagesOptions) {
		o.SockJSPath = "/chat-sockjs"
		o.MaxMessage, o.MaxSubscriptions = 500, 64
		o.NodeURLs = []string{"http://pi1:8080", "https://pi2.example"}
	})
	doc := parseHTML(t, pageGet(t, mux, "/", "lee-session"))
	b := htmlBoot(t, doc)
	if b.MaxMessage != 500 || b.MaxSubscriptions != 64 {
		t.Errorf("boot limits %d characters, %d subscriptions; want the server's 500 and 64", b.MaxMessage, b.MaxSubscriptions)
	}
	if b.User == nil || b.User.Username != "lee" || b.User.DisplayName != "이서연" || b.User.IsAdmin {
		t.Errorf("boot user %+v", b.User)
	}
	if !slices.Equal(b.Nodes, []string{"http://pi1:8080", "https://pi2.example"}) {
		t.Errorf("boot nodes %v, want -cluster-urls", b.Nodes)
	}
	if b.SockJSPath != "/chat-sockjs" || b.WSPath != "/ws" || b.HeartbeatMs != 10000 || b.DefaultLang != "en" {
		t.Errorf("boot %+v", b)
	}
	if got := htmlText(htmlByTestID(doc, "me-name")); got != "이서연" {
		t.Errorf("me-name %q", got)
	}
}

// TestPagesLanguage checks that the language cookie wins over
// Accept-Language, which wins over the server default.
func TestPagesLanguage(t *testing.T) {
	tests := []struct {
		name       string
		serverLang string
		cookie     string
		accept     string
		want       string
		heading    string
	}{
		{"server default english", "en", "", "", "en", "Sign in"},
		{"server default korean", "ko", "", "", "ko", "로그인"},
		{"accept-language korean", "en", "", "ko-KR,ko;q=0.9,en;q=0.8", "ko", "로그인"},
		{"accept-language prefers english", "ko", "", "en-US,en;q=0.9,ko;q=0.5", "en", "Sign in"},
		{"unsupported language falls back", "ko", "", "fr-FR", "ko", "로그인"},
		{"cookie beats accept-language", "en", "en", "ko-KR", "en", "Sign in"},
		{"cookie korean", "en", "ko", "en-US", "ko", "로그인"},
		{"bad cookie ignored", "en", "xx", "ko", "ko", "로그인"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux, _ := newTestPages(t, func(o *web.PagesOptions) { o.Lang = tt.serverLang })
			var hdrs []string
			if tt.accept != "" {
				hdrs = append(hdrs, "Accept-Language: "+tt.accept)
			}
			if tt.cookie != "" {
				hdrs = append(hdrs, "Cookie: stompbox_lang="+tt.cookie)
			}
			doc := parseHTML(t, pageGet(t, mux, "/login", "", hdrs...))
			htmlEl := htmlFindAll(doc, func(n *html.Node) bool { return n.Data == "html" })[0]
			if got, _ := htmlAttr(htmlEl, "lang"); got != tt.want {
				t.Errorf("<html lang=%q>, want %q", got, tt.want)
			}
			h1 := htmlFindAll(doc, func(n *html.Node) bool { return n.Data == "h1" })
			if len(h1) != 1 || htmlText(h1[0]) != tt.heading {
				t.Errorf("h1 %q, want %q", htmlText(h1[0]), tt.heading)
			}
			if b := htmlBoot(t, doc); b.Lang != tt.want {
				t.Errorf("boot lang %q, want %q", b.Lang, tt.want)
			}
		})
	}
	t.Run("chat in korean", func(t *testing.T) {
		mux, _ := newTestPages(t)
		doc := parseHTML(t, pageGet(t, mux, "/", "lee-session", "Cookie: stompbox_lang=ko"))
		if got := htmlText(htmlByTestID(doc, "send")); got != "보내기" {
			t.Errorf("send button %q, want 보내기", got)
		}
	})
}

// TestPagesCSPFriendly checks what the Content-Security-Policy relies on:
// no inline script (only src= scripts and the JSON boot element), no inline
// event handlers, no style attributes; and that every static file a page
// links to exists.
func TestPagesCSPFriendly(t *testing.T) {
	mux, f := newTestPages(t)
	targets := []struct{ path, session string }{
		{"/login", ""}, {"/register", ""}, {"/", "kim-session"}, {"/settings", "kim-session"},
		{"/admin", "kim-session"}, {"/admin", "lee-session"}, {"/embed/room/3", "kim-session"}, {"/embed/room/3", ""},
	}
	check := func(t *testing.T, path, session string) {
		res := pageGet(t, mux, path, session)
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("CSP %q", csp)
		}
		doc := parseHTML(t, res)
		for _, n := range htmlFindAll(doc, func(*html.Node) bool { return true }) {
			for _, a := range n.Attr {
				if strings.HasPrefix(a.Key, "on") || a.Key == "style" {
					t.Errorf("<%s %s=%q>", n.Data, a.Key, a.Val)
				}
			}
			if n.Data == "style" {
				t.Errorf("inline <style>")
			}
			if n.Data == "script" {
				src, hasSrc := htmlAttr(n, "src")
				typ, _ := htmlAttr(n, "type")
				if !hasSrc && typ != "application/json" {
					t.Errorf("inline script %q", htmlText(n))
				}
				if hasSrc {
					checkStaticURL(t, mux, src)
				}
			}
			if n.Data == "link" {
				href, _ := htmlAttr(n, "href")
				checkStaticURL(t, mux, href)
			}
		}
	}
	for _, tg := range targets {
		t.Run(tg.path+" "+tg.session, func(t *testing.T) { check(t, tg.path, tg.session) })
	}
	f.anyUser = false
	t.Run("/setup", func(t *testing.T) { check(t, "/setup", "") })
}

// checkStatic fails unless url is a fingerprinted static URL that answers 200.
func checkStaticURL(t *testing.T, h http.Handler, url string) {
	t.Helper()
	if !regexp.MustCompile(`^/static/[a-z0-9./_-]+\?v=[0-9a-f]{16}$`).MatchString(url) {
		t.Errorf("static URL %q is not fingerprinted", url)
		return
	}
	if res := pageGet(t, h, url, ""); res.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %d", url, res.StatusCode)
	}
}

func TestPagesFraming(t *testing.T) {
	mux, _ := newTestPages(t, func(o *web.PagesOptions) { o.FrameAncestors = []string{"https://intranet.corp.example"} })
	res := pageGet(t, mux, "/", "kim-session")
	if !strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("chat page may be framed: CSP %q XFO %q", res.Header.Get("Content-Security-Policy"), res.Header.Get("X-Frame-Options"))
	}
	res = pageGet(t, mux, "/embed/room/5", "kim-session")
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'self' https://intranet.corp.example") {
		t.Errorf("embed CSP %q", csp)
	}
	if xfo := res.Header.Get("X-Frame-Options"); xfo != "" {
		t.Errorf("embed X-Frame-Options %q, want none", xfo)
	}
	doc := parseHTML(t, res)
	if b := htmlBoot(t, doc); b.RoomID != 5 || b.User == nil {
		t.Errorf("embed boot %+v", b)
	}
	if v, _ := htmlAttr(htmlByTestID(doc, "embed-app"), "data-room-id"); v != "5" {
		t.Errorf("data-room-id %q", v)
	}
}

func TestPagesSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                    "/",
		"/settings":           "/settings",
		"/embed/room/3?x=1":   "/embed/room/3?x=1",
		"//evil.example":      "/",
		"/\\evil.example":     "/",
		"https://evil.ex":     "/",
		"javascript:alert(1)": "/",
		"/a\r\nSet-Cookie: x": "/",
	} {
		if got := web.SafeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPagesStatic(t *testing.T) {
	mux, _ := newTestPages(t)
	st, err := ui.NewStatic()
	if err != nil {
		t.Fatal(err)
	}
	url := st.URL("app.js")
	plain := strings.Split(url, "?")[0]

	t.Run("fingerprinted is immutable", func(t *testing.T) {
		res := pageGet(t, mux, url, "")
		if res.StatusCode != 200 || res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Errorf("status %d Cache-Control %q", res.StatusCode, res.Header.Get("Cache-Control"))
		}
		if ct := res.Header.Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Error("no nosniff")
		}
	})
	t.Run("plain or stale must revalidate", func(t *testing.T) {
		for _, u := range []string{plain, plain + "?v=0000000000000000"} {
			if cc := pageGet(t, mux, u, "").Header.Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("%s: Cache-Control %q", u, cc)
			}
		}
	})
	t.Run("etag and 304", func(t *testing.T) {
		res := pageGet(t, mux, url, "")
		etag := res.Header.Get("ETag")
		if !regexp.MustCompile(`^"[0-9a-f]{16}"$`).MatchString(etag) || !strings.Contains(url, strings.Trim(etag, `"`)) {
			t.Fatalf("ETag %q for %s", etag, url)
		}
		for _, inm := range []string{etag, "W/" + etag, `"x", ` + etag, "*"} {
			res := pageGet(t, mux, plain, "", "If-None-Match: "+inm)
			if res.StatusCode != http.StatusNotModified {
				t.Errorf("If-None-Match %s: status %d", inm, res.StatusCode)
			}
			if b, _ := io.ReadAll(res.Body); len(b) != 0 {
				t.Errorf("304 with a body of %d bytes", len(b))
			}
		}
		if res := pageGet(t, mux, plain, "", `If-None-Match: "other"`); res.StatusCode != http.StatusOK {
			t.Errorf("other etag: status %d", res.StatusCode)
		}
	})
	t.Run("gzip", func(t *testing.T) {
		raw, _ := io.ReadAll(pageGet(t, mux, url, "").Body)
		res := pageGet(t, mux, url, "", "Accept-Encoding: br, gzip;q=0.8")
		if res.Header.Get("Content-Encoding") != "gzip" || res.Header.Get("Vary") != "Accept-Encoding" {
			t.Fatalf("Content-Encoding %q Vary %q", res.Header.Get("Content-Encoding"), res.Header.Get("Vary"))
		}
		gzEtag := res.Header.Get("ETag")
		if !strings.HasSuffix(gzEtag, `-gz"`) {
			t.Errorf("gzip ETag %q must differ from the identity one", gzEtag)
		}
		zr, err := gzip.NewReader(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		unz, _ := io.ReadAll(zr)
		if !bytes.Equal(unz, raw) {
			t.Error("gzip body differs from the file")
		}
		if res := pageGet(t, mux, url, "", "Accept-Encoding: gzip", "If-None-Match: "+gzEtag); res.StatusCode != http.StatusNotModified {
			t.Errorf("gzip revalidation: %d", res.StatusCode)
		}
		if res := pageGet(t, mux, url, "", "Accept-Encoding: gzip;q=0"); res.Header.Get("Content-Encoding") != "" {
			t.Error("gzip sent though q=0")
		}
	})
	t.Run("types", func(t *testing.T) {
		for name, want := range map[string]string{"app.css": "text/css; charset=utf-8", "icon.svg": "image/svg+xml", "i18n.js": "text/javascript; charset=utf-8"} {
			if ct := pageGet(t, mux, st.URL(name), "").Header.Get("Content-Type"); ct != want {
				t.Errorf("%s: Content-Type %q, want %q", name, ct, want)
			}
		}
	})
	t.Run("missing and traversal", func(t *testing.T) {
		for _, u := range []string{"/static/nope.js", "/static/../pages.go", "/static/", "/static/%2e%2e/go.mod"} {
			if res := pageGet(t, mux, u, ""); res.StatusCode != http.StatusNotFound && res.StatusCode != http.StatusMovedPermanently && res.StatusCode != http.StatusTemporaryRedirect { // the mux redirects to the cleaned path, never serves outside static
				t.Errorf("%s: status %d", u, res.StatusCode)
			}
		}
	})
	t.Run("head", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodHead, url, nil)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") == "" {
			t.Errorf("HEAD: %d, %d bytes, Content-Length %q", w.Code, w.Body.Len(), w.Header().Get("Content-Length"))
		}
	})
}

// TestPagesAccessible checks what screen readers and keyboards need: a
// language on <html>, a label for every form control, a name for every
// button, one <h1>, and live regions for the connection state and messages.
func TestPagesAccessible(t *testing.T) {
	mux, f := newTestPages(t)
	targets := []struct{ path, session string }{
		{"/login", ""}, {"/register", ""}, {"/", "kim-session"}, {"/settings", "kim-session"},
		{"/admin", "kim-session"}, {"/embed/room/3", "kim-session"}, {"/embed/room/3", ""},
	}
	check := func(t *testing.T, path, session string) {
		doc := parseHTML(t, pageGet(t, mux, path, session))
		if lang, _ := htmlAttr(htmlFindAll(doc, func(n *html.Node) bool { return n.Data == "html" })[0], "lang"); lang == "" {
			t.Error("<html> has no lang")
		}
		labels := map[string]bool{}
		for _, l := range htmlFindAll(doc, func(n *html.Node) bool { return n.Data == "label" }) {
			if id, ok := htmlAttr(l, "for"); ok {
				labels[id] = true
			}
		}
		for _, c := range htmlFindAll(doc, func(n *html.Node) bool {
			return n.Data == "input" || n.Data == "select" || n.Data == "textarea"
		}) {
			id, _ := htmlAttr(c, "id")
			_, aria := htmlAttr(c, "aria-label")
			if typ, _ := htmlAttr(c, "type"); typ != "hidden" && !labels[id] && !aria {
				t.Errorf("<%s id=%q> has no label", c.Data, id)
			}
		}
		for _, b := range htmlFindAll(doc, func(n *html.Node) bool { return n.Data == "button" }) {
			if _, aria := htmlAttr(b, "aria-label"); !aria && htmlText(b) == "" {
				t.Errorf("button without a name: %v", b.Attr)
			}
		}
		if n := len(htmlFindAll(doc, func(n *html.Node) bool { return n.Data == "h1" })); n != 1 {
			t.Errorf("%d <h1>, want 1", n)
		}
		if c := htmlByTestID(doc, "conn-state"); c != nil {
			if role, _ := htmlAttr(c, "role"); role != "status" {
				t.Errorf("conn-state role %q, want status (a live region)", role)
			}
		}
		if m := htmlByTestID(doc, "messages"); m != nil {
			if role, _ := htmlAttr(m, "role"); role != "log" {
				t.Errorf("messages role %q, want log (a live region)", role)
			}
		}
	}
	for _, tg := range targets {
		t.Run(tg.path+" "+tg.session, func(t *testing.T) { check(t, tg.path, tg.session) })
	}
	f.anyUser = false
	t.Run("/setup", func(t *testing.T) { check(t, "/setup", "") })
}
