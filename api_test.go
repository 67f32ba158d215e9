package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"stompbox/internal/auth"
	"stompbox/internal/chat"
	"stompbox/internal/chat/chattest"
	"stompbox/internal/proto"
	"stompbox/internal/store"
	"stompbox/internal/web"
	"strings"
	"testing"
)

// apiFixture is the API on a real loopback server over a chatFixture.
type apiFixture struct {
	*chattest.Fixture
	srv    *httptest.Server
	logBuf *bytes.Buffer
}

func newAPIFixture(t *testing.T) *apiFixture {
	t.Helper()
	f := &apiFixture{Fixture: chattest.NewFixture(t, chat.LangEnglish), logBuf: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(&syncLogWriter{w: f.logBuf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mux := http.NewServeMux()
	web.NewAPI(f.Chat, f.Auth, nil, nil, log).Routes(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// syncLogWriter serialises writes from concurrent handlers into one buffer.
type syncLogWriter struct {
	mu chan struct{}
	w  io.Writer
}

func (l *syncLogWriter) Write(p []byte) (int, error) {
	if l.mu == nil {
		l.mu = make(chan struct{}, 1)
	}
	l.mu <- struct{}{}
	defer func() { <-l.mu }()
	return l.w.Write(p)
}

// client returns an HTTP client with its own cookie jar, logged in as
// name (password "password-"+name) unless name is "".
func (f *apiFixture) client(t *testing.T, name string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	if name != "" {
		resp := f.do(t, c, "POST", "/api/login", `{"username":"`+name+`","password":"password-`+name+`"}`, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("login %s: %d", name, resp.StatusCode)
		}
	}
	return c
}

type apiResponse struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

func (f *apiFixture) do(t *testing.T, c *http.Client, method, path, body string, header map[string]string) apiResponse {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return apiResponse{resp.StatusCode, resp.Header, b}
}

func TestAPIAuthFlow(t *testing.T) {
	f := newAPIFixture(t)
	c := f.client(t, "")

	resp := f.do(t, c, "GET", "/api/me", "", nil)
	if resp.StatusCode != 401 || !strings.Contains(string(resp.Body), `"error":"login required"`) {
		t.Fatalf("anonymous /api/me = %d %s", resp.StatusCode, resp.Body)
	}
	resp = f.do(t, c, "POST", "/api/register", `{"username":"dave","password":"longenough","displayName":"Dave D"}`, nil)
	if resp.StatusCode != 201 {
		t.Fatalf("register = %d %s", resp.StatusCode, resp.Body)
	}
	if sc := resp.Header.Get("Set-Cookie"); !strings.Contains(sc, proto.SessionCookieName+"=") || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Lax") {
		t.Fatalf("register cookie %q", sc)
	}
	resp = f.do(t, c, "GET", "/api/me", "", nil)
	var me store.User
	if json.Unmarshal(resp.Body, &me); resp.StatusCode != 200 || me.Username != "dave" || me.DisplayName != "Dave D" {
		t.Fatalf("/api/me = %d %s", resp.StatusCode, resp.Body)
	}
	if resp := f.do(t, c, "POST", "/api/logout", "", nil); resp.StatusCode != 204 {
		t.Fatalf("logout = %d", resp.StatusCode)
	}
	if resp := f.do(t, c, "GET", "/api/me", "", nil); resp.StatusCode != 401 {
		t.Fatalf("after logout = %d", resp.StatusCode)
	}

	// HTML forms work for login and register.
	form := func(path string, v url.Values) int {
		t.Helper()
		r, err := c.PostForm(f.srv.URL+path, v)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	if got := form("/api/register", url.Values{"username": {"erin"}, "password": {"longenough"}}); got != 201 {
		t.Fatalf("form register = %d", got)
	}
	if got := form("/api/login", url.Values{"username": {"erin"}, "password": {"wrong-pass"}}); got != 401 {
		t.Fatalf("form login wrong = %d", got)
	}
	if got := form("/api/login", url.Values{"username": {"erin"}, "password": {"longenough"}}); got != 200 {
		t.Fatalf("form login = %d", got)
	}
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	mw.WriteField("username", "erin")
	mw.WriteField("password", "longenough")
	mw.Close()
	if r, err := c.Post(f.srv.URL+"/api/login", mw.FormDataContentType(), &mp); err != nil || r.StatusCode != 200 {
		t.Fatalf("multipart login = %v, %v", r.StatusCode, err)
	} else {
		r.Body.Close()
	}
	// Guests, allowed in this fixture.
	g := f.client(t, "")
	if resp := f.do(t, g, "POST", "/api/login", `{"guest":"visitor"}`, nil); resp.StatusCode != 200 {
		t.Fatalf("guest login = %d %s", resp.StatusCode, resp.Body)
	}
	if resp := f.do(t, g, "POST", "/api/rooms/1/messages", `{"message":"hi from a guest"}`, nil); resp.StatusCode != 201 {
		t.Fatalf("guest post = %d %s", resp.StatusCode, resp.Body)
	}
}

func TestAPIStatusCodes(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	alice, bob := f.client(t, "alice"), f.client(t, "bob")
	anon := f.client(t, "")
	private := f.Room(t, f.Alice, "secret", store.RoomPrivate)
	tok, err := f.Auth.CreateToken(ctx, f.Bob, "bot")
	if err != nil {
		t.Fatal(err)
	}
	bearer := map[string]string{"Authorization": "Bearer " + tok}
	long := strings.Repeat("가", chat.MaxMessageRunes+1)
	huge := `{"name":"` + strings.Repeat("x", web.MaxAPIBodyBytes) + `"}`
	priv := fmt.Sprint(private.ID)

	tests := []struct {
		name         string
		c            *http.Client
		method, path string
		body         string
		header       map[string]string
		want         int
		wantBody     string
	}{
		{"me", bob, "GET", "/api/me", "", nil, 200, `"username":"bob"`},
		{"me by token", anon, "GET", "/api/me", "", bearer, 200, `"username":"bob"`},
		{"bad bearer", anon, "GET", "/api/me", "", map[string]string{"Authorization": "Bearer sbx_nope"}, 401, "login required"},
		{"basic auth refused", anon, "GET", "/api/me", "", map[string]string{"Authorization": "Basic eDp5"}, 401, ""},
		{"rooms", bob, "GET", "/api/rooms", "", nil, 200, `"name":"general"`},
		{"rooms hide private", bob, "GET", "/api/rooms", "", nil, 200, `"unread":0`},
		{"create room", bob, "POST", "/api/rooms", `{"name":"bobs","topic":"t"}`, nil, 201, `"kind":"public"`},
		{"create room bad json", bob, "POST", "/api/rooms", `{"name":`, nil, 400, "malformed JSON"},
		{"create room bad kind", bob, "POST", "/api/rooms", `{"name":"x","kind":"dm"}`, nil, 400, "kind must be"},
		{"create room too big", bob, "POST", "/api/rooms", huge, nil, 413, "request body too large"},
		{"rename not allowed", bob, "PATCH", "/api/rooms/" + priv, `{"name":"mine"}`, nil, 403, ""},
		{"rename", alice, "PATCH", "/api/rooms/" + priv, `{"topic":"plans"}`, nil, 200, `"topic":"plans"`},
		{"rename unknown", alice, "PATCH", "/api/rooms/999", `{"topic":"x"}`, nil, 404, "unknown room"},
		{"bad room id", bob, "GET", "/api/rooms/abc/messages", "", nil, 404, "unknown room"},
		{"join private", bob, "POST", "/api/rooms/" + priv + "/join", "", nil, 403, "not a member"},
		{"join public", bob, "POST", "/api/rooms/1/join", "", nil, 204, ""},
		{"history private", bob, "GET", "/api/rooms/" + priv + "/messages", "", nil, 403, ""},
		{"history bad limit", bob, "GET", "/api/rooms/1/messages?limit=x", "", nil, 400, "limit"},
		{"history both", bob, "GET", "/api/rooms/1/messages?before=5&after=1", "", nil, 400, ""},
		{"post", bob, "POST", "/api/rooms/1/messages", `{"message":"hello @alice"}`, nil, 201, `"sender":"bob"`},
		{"post by token", anon, "POST", "/api/rooms/1/messages", `{"message":"bot says hi"}`, bearer, 201, `"sender":"bob"`},
		{"post empty", bob, "POST", "/api/rooms/1/messages", `{"message":"  "}`, nil, 400, "empty message"},
		{"post too long", bob, "POST", "/api/rooms/1/messages", `{"message":"` + long + `"}`, nil, 413, "message too long"},
		{"post bad type", bob, "POST", "/api/rooms/1/messages", `{"type":"SHOUT","message":"x"}`, nil, 400, ""},
		{"post private", bob, "POST", "/api/rooms/" + priv + "/messages", `{"message":"x"}`, nil, 403, ""},
		{"post anonymous", anon, "POST", "/api/rooms/1/messages", `{"message":"x"}`, nil, 401, ""},
		{"history", bob, "GET", "/api/rooms/1/messages?after=1&limit=1", "", nil, 200, `"message":"hello @alice"`},
		{"mark read", bob, "POST", "/api/rooms/1/read", `{"id":1}`, nil, 204, ""},
		{"mark read bad", bob, "POST", "/api/rooms/1/read", `{}`, nil, 400, ""},
		{"mark read non-member", bob, "POST", "/api/rooms/" + priv + "/read", `{"id":1}`, nil, 403, ""},
		{"dm", bob, "POST", "/api/dm/alice", "", nil, 200, `"kind":"dm"`},
		{"dm unknown", bob, "POST", "/api/dm/ghost", "", nil, 404, "unknown user"},
		{"dm self", bob, "POST", "/api/dm/bob", "", nil, 400, ""},
		{"search", bob, "GET", "/api/search?q=hello", "", nil, 200, `"hello @alice"`},
		{"search empty", bob, "GET", "/api/search?q=", "", nil, 400, "empty search"},
		{"export", bob, "GET", "/api/rooms/1/export", "", nil, 200, `{"room":{"id":1`},
		{"export private", bob, "GET", "/api/rooms/" + priv + "/export", "", nil, 403, ""},
		{"users", bob, "GET", "/api/users", "", nil, 200, `"username":"carol"`},
		{"token", bob, "POST", "/api/tokens", `{"name":"ci"}`, nil, 201, `"token":"sbx_`},
		{"token duplicate", bob, "POST", "/api/tokens", `{"name":"ci"}`, nil, 409, "name already taken"},
		{"token revoke", bob, "DELETE", "/api/tokens/ci", "", nil, 204, ""},
		{"webhook loopback", bob, "PUT", "/api/me/webhook", `{"url":"http://127.0.0.1:1/hook"}`, nil, 400, ""}, // never loopback, even when listed (issue 22)
		{"webhook bad", bob, "PUT", "/api/me/webhook", `{"url":"javascript:alert(1)"}`, nil, 400, ""},
		{"register taken", anon, "POST", "/api/register", `{"username":"BOB","password":"longenough"}`, nil, 409, "name already taken"},
		{"register bad name", anon, "POST", "/api/register", `{"username":"a b","password":"longenough"}`, nil, 400, ""},
		{"admin backup by bob", bob, "GET", "/api/admin/backup", "", nil, 403, "administrators only"},
		{"admin invite by bob", bob, "POST", "/api/admin/invites", "", nil, 403, ""},
		{"admin invite", alice, "POST", "/api/admin/invites", "", nil, 201, `"code":`},
		{"admin registration bad", alice, "PUT", "/api/admin/registration", `{"mode":"closed"}`, nil, 400, ""},
		{"wrong method", bob, "DELETE", "/api/rooms", "", nil, 405, ""},
		{"cross-origin post", bob, "POST", "/api/rooms/1/leave", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "cross-origin"},
		{"cross-origin by origin", bob, "POST", "/api/rooms", `{"name":"x"}`, map[string]string{"Origin": "http://evil.example"}, 403, "cross-origin"},
		{"same-origin post", bob, "POST", "/api/rooms", `{"name":"same"}`, map[string]string{"Sec-Fetch-Site": "same-origin"}, 201, ""},
		{"cross-origin get allowed", bob, "GET", "/api/me", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.do(t, tt.c, tt.method, tt.path, tt.body, tt.header)
			if resp.StatusCode != tt.want {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, resp.StatusCode, resp.Body, tt.want)
			}
			if !strings.Contains(string(resp.Body), tt.wantBody) {
				t.Fatalf("body %s does not contain %s", resp.Body, tt.wantBody)
			}
			if resp.StatusCode >= 400 && resp.StatusCode != 405 {
				var e struct{ Error string }
				if err := json.Unmarshal(resp.Body, &e); err != nil || e.Error == "" {
					t.Fatalf("error body %s is not {\"error\":…}", resp.Body)
				}
			}
		})
	}

	// Delivery: the API post was published like a STOMP SEND.
	ds := f.Rec.Deliveries()
	if len(ds) == 0 || !bytes.Contains(ds[len(ds)-1].Body, []byte(`"bot says hi"`)) {
		t.Fatalf("last delivery %q", ds[len(ds)-1].Body)
	}

	t.Run("login throttled", func(t *testing.T) {
		c := f.client(t, "")
		var last apiResponse
		for range auth.MaxLoginFailures + 1 {
			last = f.do(t, c, "POST", "/api/login", `{"username":"carol","password":"not-her-password"}`, nil)
		}
		if last.StatusCode != 429 {
			t.Fatalf("after %d failures = %d %s", auth.MaxLoginFailures+1, last.StatusCode, last.Body)
		}
	})
}

func TestAPIInternalErrorHidden(t *testing.T) {
	f := newAPIFixture(t)
	bob := f.client(t, "bob")
	// A closed store makes every query fail with an internal error.
	if err := f.St.Close(); err != nil {
		t.Fatal(err)
	}
	resp := f.do(t, bob, "POST", "/api/rooms", `{"name":"x"}`, nil)
	if resp.StatusCode != 500 || string(bytes.TrimSpace(resp.Body)) != `{"error":"internal error"}` {
		t.Fatalf("closed store = %d %s, want 500 with no details", resp.StatusCode, resp.Body)
	}
	if log := f.logBuf.String(); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "database is closed") {
		t.Fatalf("log lacks the details: %s", log)
	}
}

func TestAPIBackupDownload(t *testing.T) {
	f := newAPIFixture(t)
	alice := f.client(t, "alice")
	for i := range 10 {
		f.Post(t, f.Bob, 1, proto.MsgTalk, fmt.Sprint("msg ", i))
	}
	resp := f.do(t, alice, "GET", "/api/admin/backup", "", nil)
	if resp.StatusCode != 200 || !bytes.HasPrefix(resp.Body, []byte("SQLite format 3\x00")) {
		t.Fatalf("backup = %d, %d bytes", resp.StatusCode, len(resp.Body))
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, "attachment") {
		t.Fatalf("Content-Disposition %q", cd)
	}
	path := filepath.Join(t.TempDir(), "restored.db")
	if err := os.WriteFile(path, resp.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ms, err := s.MessagesPage(context.Background(), 1, 0, 0, 50)
	if err != nil || len(ms) != 10 || ms[9].Message != "msg 9" {
		t.Fatalf("restored %d messages, %v", len(ms), err)
	}
	// No temporary files are left beside the database.
	entries, _ := os.ReadDir(filepath.Dir(f.St.Path))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "backup-") {
			t.Fatalf("left %s behind", e.Name())
		}
	}
}
