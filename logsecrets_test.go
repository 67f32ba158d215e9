package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"stompbox/internal/broker"
	"stompbox/internal/certs"
	"stompbox/internal/cli"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// TestLogSecrets runs a server logging at debug level into a buffer, goes
// through every way a secret reaches it (registration, logins right and
// wrong, JSON and form, session cookies, API tokens as Bearer and as STOMP
// passcode, STOMP CONNECT right, wrong and malformed, WebSocket with a
// cookie, invites, accounts and tokens made by the CLI beside the server,
// a TLS key that does not load) and then checks that no password, token,
// cookie value or invite code appears anywhere in the log.
func TestLogSecrets(t *testing.T) {
	var logs lockedBuffer // browser_test.go
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	cfg := Config{Addr: "127.0.0.1:0", StompAddr: "127.0.0.1:0", DataDir: dir, HeartBeat: broker.DefaultHeartBeat, LogLevel: slog.LevelDebug}
	srv, err := newServer(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	base := "http://" + srv.HTTPAddr()

	// Every secret gets a marker that cannot occur in a log by chance.
	var secrets []string
	secret := func(s string) string { secrets = append(secrets, s); return s }
	adminPass := secret("Adm1n-pass-QXJ7")
	bobPass := secret("b0b-pass-ZK93")
	wrongPass := secret("wr0ng-pass-PL44")
	carolPass := secret("car0l-pass-MM21")
	carolPass2 := secret("car0l-pass-2-VV08")

	type reply struct {
		status  int
		body    string
		cookies []*http.Cookie
	}
	do := func(method, path, contentType, body string, header map[string]string) reply {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return reply{resp.StatusCode, string(b), resp.Cookies()}
	}
	const jsonType, formType = "application/json", "application/x-www-form-urlencoded"
	cookieOf := func(r reply) string {
		t.Helper()
		for _, c := range r.cookies {
			if c.Name == proto.SessionCookieName {
				return secret(c.Value)
			}
		}
		t.Fatalf("no session cookie (status %d %s)", r.status, r.body)
		return ""
	}
	expectStatus := func(what string, r reply, want int) {
		t.Helper()
		if r.status != want {
			t.Fatalf("%s: status %d %s, want %d", what, r.status, r.body, want)
		}
	}

	// Registration and logins, JSON and form, right and wrong.
	r := do("POST", "/api/register", jsonType, `{"username":"admin","password":"`+adminPass+`"}`, nil)
	expectStatus("register admin", r, 201)
	adminCookie := map[string]string{"Cookie": proto.SessionCookieName + "=" + cookieOf(r)}
	r = do("POST", "/api/register", formType, url.Values{"username": {"bob"}, "password": {bobPass}}.Encode(), nil)
	expectStatus("register bob (form)", r, 201)
	cookieOf(r)
	r = do("POST", "/api/login", jsonType, `{"username":"bob","password":"`+bobPass+`"}`, nil)
	expectStatus("login", r, 200)
	bobCookie := map[string]string{"Cookie": proto.SessionCookieName + "=" + cookieOf(r)}
	expectStatus("wrong password", do("POST", "/api/login", jsonType, `{"username":"bob","password":"`+wrongPass+`"}`, nil), 401)
	expectStatus("wrong password (form)", do("POST", "/api/login", formType, url.Values{"username": {"bob"}, "password": {wrongPass}}.Encode(), nil), 401)
	expectStatus("unknown user", do("POST", "/api/login", jsonType, `{"username":"nobody","password":"`+wrongPass+`"}`, nil), 401)
	expectStatus("short password", do("POST", "/api/register", jsonType, `{"username":"dave","password":"`+secret("sh0rt")+`"}`, nil), 400)
	expectStatus("malformed login", do("POST", "/api/login", jsonType, `{"username":"bob","password":"`+wrongPass, nil), 400)
	expectStatus("me by cookie", do("GET", "/api/me", "", "", bobCookie), 200)
	expectStatus("bad cookie", do("GET", "/api/me", "", "", map[string]string{"Cookie": proto.SessionCookieName + "=" + secret("forged-cookie-JJ55")}), 401)

	// API tokens: made over HTTP, used as Bearer and as STOMP passcode.
	r = do("POST", "/api/tokens", jsonType, `{"name":"ci"}`, bobCookie)
	expectStatus("create token", r, 201)
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(r.body), &tok); err != nil || tok.Token == "" {
		t.Fatalf("token response %s: %v", r.body, err)
	}
	secret(tok.Token)
	expectStatus("bearer", do("GET", "/api/me", "", "", map[string]string{"Authorization": "Bearer " + tok.Token}), 200)
	wrongToken := secret(tok.Token[:len(tok.Token)-4] + "XXXX")
	expectStatus("wrong bearer", do("GET", "/api/me", "", "", map[string]string{"Authorization": "Bearer " + wrongToken}), 401)
	expectStatus("post with bearer", do("POST", "/api/rooms", jsonType, `{"name":"general"}`, map[string]string{"Authorization": "Bearer " + tok.Token}), 201)

	// Invites: the code is a secret until used.
	r = do("POST", "/api/admin/invites", "", "", adminCookie)
	expectStatus("invite", r, 201)
	var inv struct{ Code string }
	if err := json.Unmarshal([]byte(r.body), &inv); err != nil || inv.Code == "" {
		t.Fatalf("invite response %s: %v", r.body, err)
	}
	secret(inv.Code)
	expectStatus("invite-only", do("PUT", "/api/admin/registration", jsonType, `{"mode":"invite"}`, adminCookie), 204)
	expectStatus("wrong invite", do("POST", "/api/register", jsonType, `{"username":"erin","password":"`+secret("er1n-pass-UU67")+`","invite":"`+secret("bad-invite-KK12")+`"}`, nil), 403)
	expectStatus("invite", do("POST", "/api/register", jsonType, `{"username":"erin","password":"er1n-pass-UU67","invite":"`+inv.Code+`"}`, nil), 201)

	// Accounts and tokens made by the CLI beside the running server.
	var out bytes.Buffer
	ctx := context.Background()
	if err := cli.User(ctx, dir, []string{"add", "carol", "--password-stdin"}, strings.NewReader(carolPass+"\n"), &out); err != nil {
		t.Fatalf("user add: %v", err)
	}
	out.Reset()
	if err := cli.User(ctx, dir, []string{"token", "carol", "bot"}, nil, &out); err != nil {
		t.Fatalf("user token: %v", err)
	}
	fields := strings.Fields(out.String())
	if len(fields) == 0 {
		t.Fatal("user token printed nothing")
	}
	cliToken := secret(fields[len(fields)-1])
	if err := cli.User(ctx, dir, []string{"passwd", "carol", "--password-stdin"}, strings.NewReader(carolPass2+"\n"), &out); err != nil {
		t.Fatalf("user passwd: %v", err)
	}

	// STOMP CONNECT over TCP: right and wrong passcodes, tokens, broken frames.
	connects := []struct {
		name    string
		headers []string
		ok      bool
	}{
		{"password", []string{"login:bob", "passcode:" + bobPass}, true},
		{"wrong password", []string{"login:bob", "passcode:" + wrongPass}, false},
		{"token as passcode", []string{"login:bob", "passcode:" + tok.Token}, true},
		{"wrong token", []string{"login:bob", "passcode:" + wrongToken}, false},
		{"cli token", []string{"login:carol", "passcode:" + cliToken}, true},
		{"cli password, changed", []string{"login:carol", "passcode:" + carolPass2}, true},
		{"cli password, old", []string{"login:carol", "passcode:" + carolPass}, false},
		{"bad heart-beat", []string{"login:bob", "passcode:" + bobPass, "heart-beat:x,y"}, false},
		{"bad version", []string{"login:bob", "passcode:" + bobPass, "accept-version:9.9"}, false},
	}
	for _, tt := range connects {
		t.Run(tt.name, func(t *testing.T) {
			c := dialTCP(t, srv.TCPAddr())
			headers := append([]string{"host:stompbox"}, tt.headers...)
			if !strings.Contains(strings.Join(tt.headers, "\n"), "accept-version:") {
				headers = append(headers, "accept-version:1.2")
			}
			c.send(stomp.CmdConnect, "", headers...)
			f := c.next()
			if got := f.Command == stomp.CmdConnected; got != tt.ok {
				t.Fatalf("got %s %v, want CONNECTED %v", f.Command, f.Headers, tt.ok)
			}
			if tt.ok {
				// A second CONNECT (with the passcode again) is a protocol error.
				c.send(stomp.CmdConnect, "", headers...)
				c.expect(stomp.CmdError)
			}
			c.close()
		})
	}
	// A frame the parser refuses, with a passcode in it.
	raw := dialTCP(t, srv.TCPAddr())
	raw.sendRaw("CONNECT\naccept-version:1.2\nlogin:bob\npasscode:" + bobPass + "\ncontent-length:zz\n\n\x00")
	raw.expect(stomp.CmdError)
	raw.close()

	// WebSocket with the session cookie, and with a Bearer token.
	for name, h := range map[string]http.Header{
		"cookie": {"Cookie": {bobCookie["Cookie"]}},
		"bearer": {"Authorization": {"Bearer " + tok.Token}},
	} {
		t.Run("websocket "+name, func(t *testing.T) {
			wctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			ws, _, err := websocket.Dial(wctx, "ws://"+srv.HTTPAddr()+"/ws", &websocket.DialOptions{HTTPHeader: h, Subprotocols: []string{"v12.stomp"}})
			if err != nil {
				t.Fatal(err)
			}
			c := newStompClient(t, func(b []byte) error { return ws.Write(context.Background(), websocket.MessageText, b) },
				func() { ws.CloseNow() },
				func() ([]byte, error) { _, b, err := ws.Read(context.Background()); return b, err })
			c.connect()
			c.close()
		})
	}

	expectStatus("logout", do("POST", "/api/logout", "", "", bobCookie), 204)
	checkFor(t, "every STOMP session gone", func() bool { return srv.broker.SessionCount() == 0 })

	// A TLS key that does not load: the error and the log name the file, not its contents.
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	keySecret := secret("k3y-material-NN90")
	if err := os.WriteFile(keyFile, []byte("-----BEGIN PRIVATE KEY-----\n"+keySecret+"\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(dir, certs.SelfSignedCertFile)
	certPEM, _, err := certs.SelfSigned([]string{"localhost"}, nil, srv.store.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := &server{cfg: Config{TLSCert: certFile, TLSKey: keyFile}, log: log}
	if _, err := bad.serverTLS(); err == nil {
		t.Fatal("a broken key loaded")
	} else {
		log.Error("start failed", "err", err) // as main reports it
	}

	text := logs.String()
	if !strings.Contains(text, "level=DEBUG") || !strings.Contains(text, "api request refused") {
		t.Fatalf("the log has no debug lines; the test saw nothing:\n%s", text)
	}
	for _, s := range secrets {
		if strings.Contains(text, s) {
			for _, line := range strings.Split(text, "\n") {
				if strings.Contains(line, s) {
					t.Errorf("secret %.6s… in the log: %s", s, line)
				}
			}
		}
	}
	if t.Failed() || os.Getenv("STOMPBOX_SHOW_LOG") != "" {
		t.Log(text)
		t.Logf("%d log lines checked", strings.Count(text, "\n"))
	}
}
