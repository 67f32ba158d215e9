package main

// Chromium test of the installable app (issue 17): the manifest and the
// service worker are served as browsers require; with the server stopped,
// a reload still shows the chat, its rooms and history from the worker's
// cache; a message typed then waits in the outbox, survives the reload, and
// reaches the other person exactly once when the server is back. While
// the server is down, the open page offers the cluster's other node.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"stompbox/internal/auth"
	"stompbox/internal/broker"
	"stompbox/internal/proto"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// restartableServer is a server that a test stops and starts again on the
// same address and data folder, as a Pi that reboots.
type restartableServer struct {
	t   *testing.T
	cfg Config
	srv *server // nil while stopped
}

func newRestartableServer(t *testing.T, mutate ...func(*Config)) *restartableServer {
	rs := &restartableServer{t: t, cfg: Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), HeartBeat: broker.DefaultHeartBeat}}
	for _, m := range mutate {
		m(&rs.cfg)
	}
	rs.start()
	rs.cfg.Addr = rs.srv.HTTPAddr() // the same port after a restart
	t.Cleanup(rs.stop)
	return rs
}

func (rs *restartableServer) start() {
	rs.t.Helper()
	srv, err := newServer(rs.cfg, testLogger(rs.t))
	if err != nil {
		rs.t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		rs.t.Fatal(err)
	}
	rs.srv = srv
}

func (rs *restartableServer) stop() {
	if rs.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := rs.srv.Shutdown(ctx); err != nil {
		rs.t.Errorf("shutdown: %v", err)
	}
	rs.srv = nil
}

func TestUIInstallableApp(t *testing.T) {
	t.Parallel()
	// The server is one node of a cluster whose other node is at
	// otherNode: while this one is down, the page offers it.
	const otherNode = "http://127.0.0.1:1"
	rs := newRestartableServer(t, func(c *Config) { c.Cluster.URLs = []string{otherNode} })
	base := rs.srv.URL()

	t.Run("manifest and worker headers", func(t *testing.T) {
		resp, err := http.Get(base + "sw.js")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || resp.Header.Get("Cache-Control") != "no-cache" || len(body) == 0 {
			t.Errorf("/sw.js: %d %v", resp.StatusCode, resp.Header)
		}
		resp, err = http.Get(base + "static/manifest.webmanifest")
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Name, StartURL, Scope, Display string
			Icons                          []struct{ Src, Sizes, Type string }
		}
		json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if resp.Header.Get("Content-Type") != "application/manifest+json" || m.Display != "standalone" || len(m.Icons) < 2 {
			t.Errorf("manifest %+v, %v", m, resp.Header)
		}
		for _, ic := range m.Icons {
			r, err := http.Get(base + ic.Src[1:])
			if err != nil || r.StatusCode != 200 || r.Header.Get("Content-Type") != ic.Type {
				t.Errorf("icon %s: %v %v", ic.Src, r, err)
			}
			r.Body.Close()
		}
	})

	_, alice, bob, roomID := twoInARoom(t, base, "오프라인 offline")
	bob.waitConnected()
	alice.openRoom(roomID)
	alice.say("before the outage")
	bob.waitText("before the outage")

	// Bob reads in Korean. Both pages are loaded under the active worker,
	// which caches the shell, the rooms and the history.
	bob.eval(`(() => { localStorage.setItem("stompbox_lang", "ko"); document.cookie = "stompbox_lang=ko; path=/"; return true })()`, nil)
	for _, p := range []*uiPerson{alice, bob} {
		p.waitFor("service worker", `navigator.serviceWorker.controller !== null`)
		p.openRoom(roomID)
		p.waitText("before the outage")
		p.waitFor("shell cached", `caches.open("stompbox-v1").then(c => c.keys()).then(ks => (window.__cached = ks.map(r => new URL(r.url).pathname)) && true) &&
			window.__cached && window.__cached.includes("/") && window.__cached.includes("/api/rooms") && window.__cached.some(p => p.startsWith("/static/app.js"))`)
	}

	t.Log("step: the server goes away; the app still opens from its cache, and messages typed wait")
	rs.stop()
	// After a few failed reconnects the open page names the other node
	// (its own address, also in -cluster-urls in a real cluster, is left out).
	alice.waitFor("the other node offered", `(() => {
		const links = [...document.querySelectorAll('[data-testid="node-hint"] a')];
		return links.length === 1 && links[0].href === "`+otherNode+`/" && links[0].textContent === "127.0.0.1:1";
	})()`)
	typed := map[*uiPerson]string{alice: "typed while the server was down", bob: "서버가 꺼진 동안 쓴 메시지"}
	for _, p := range []*uiPerson{alice, bob} {
		p.reload()
		p.waitFor("cached chat page", fmt.Sprintf(`window.__reloaded === undefined && document.querySelector('[data-testid="chat-app"]') &&
			document.querySelector('[data-testid="room-list"] [data-room-id="%d"]') &&
			document.querySelector('[data-testid="conn-state"]').dataset.state !== "connected"`, roomID))
		p.waitText("before the outage")
		p.do(chromedp.Focus(testIDSel("composer")))
		p.insertText(typed[p])
		p.pressEnter(false)
		p.waitFor("queued", `!document.querySelector('[data-testid="outbox"]').hidden && document.querySelector('[data-testid="composer"]').value === ""`)
		p.reload()
		p.waitFor("still queued after a reload", `window.__reloaded === undefined && document.querySelector('[data-testid="outbox"]') && !document.querySelector('[data-testid="outbox"]').hidden`)
	}
	alice.waitFor("english", `document.querySelector('[data-testid="outbox"]').textContent.startsWith("Waiting for the connection")`)
	bob.waitFor("korean", `document.documentElement.lang === "ko" && document.querySelector('[data-testid="outbox"]').textContent.startsWith("연결을 기다리는 중")`)
	for _, p := range []*uiPerson{alice, bob} {
		lang := map[*uiPerson]string{alice: "en", bob: "ko"}[p]
		screenshot(t, p.ctx, "offline-"+lang+"-desktop")
		p.do(chromedp.EmulateViewport(390, 844))
		p.waitFor("phone layout", phoneLayoutSettled)
		screenshot(t, p.ctx, "offline-"+lang+"-phone")
		p.do(chromedp.EmulateViewport(browserWindowWidth, browserWindowHeight))
	}

	t.Log("step: the server is back; each message is sent once")
	rs.start()
	for _, p := range []*uiPerson{alice, bob} {
		p.waitConnected()
		p.waitFor("outbox emptied", `document.querySelector('[data-testid="outbox"]').hidden`)
	}
	for _, text := range typed {
		alice.waitText(text)
		bob.waitText(text)
		var n int
		if err := rs.srv.store.Rdb.QueryRow(`SELECT count(*) FROM messages WHERE body = ?`, text).Scan(&n); err != nil || n != 1 {
			t.Errorf("%q stored %d times (%v), want once", text, n, err)
		}
		for _, p := range []*uiPerson{alice, bob} {
			var shown int
			p.eval(fmt.Sprintf(`[...document.querySelectorAll('[data-testid="message-text"]')].filter(e => e.textContent === %s).length`, jsString(text)), &shown)
			if shown != 1 {
				t.Errorf("%s sees %q %d times", p.name, text, shown)
			}
		}
	}

	t.Log("step: bob's session ends elsewhere (his password changed); his next visit drops what was cached of his")
	hash, err := auth.HashPassword("a-new-password-for-bob", auth.DefaultArgonParams())
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.srv.store.SetPassword(context.Background(), "bob", hash); err != nil {
		t.Fatal(err)
	}
	// The server may end bob's connection first (his login ended), and his
	// page then goes to /login by itself; a reload racing that navigation
	// is aborted by it. Either way he must land on /login.
	bob.eval(`(() => { window.__reloaded = false; return true })()`, nil)
	ctx, cancel := context.WithTimeout(bob.ctx, uiWaitTimeout)
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil && !strings.Contains(err.Error(), "ERR_ABORTED") {
		t.Fatalf("bob: %v", err)
	}
	cancel()
	bob.waitFor("sent to sign in", `location.pathname === "/login"`)
	bob.waitFor("cache dropped", `caches.open("stompbox-v1").then(c => c.keys()).then(ks => (window.__left = ks.map(r => new URL(r.url).pathname)) && true) &&
		window.__left && !window.__left.includes("/api/rooms") && !window.__left.includes("/")`)
}

// reload loads the page again for real (navigating to the same URL with a
// #fragment would only scroll), after marking the old document so a wait
// can tell the new one from it.
func (p *uiPerson) reload() {
	p.t.Helper()
	p.eval(`(() => { window.__reloaded = false; return true })()`, nil)
	p.do(chromedp.Reload())
}

// TestUIOutboxStaysWithItsAccount: a tab whose messages wait in the outbox
// reconnects after its cookie became another account's (signed out and
// someone else signed in, in another tab of the same browser). It must not
// send the waiting messages as the other account: it reloads as whoever is
// signed in now, and nothing is posted.
func TestUIOutboxStaysWithItsAccount(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	_, alice, bob, room := twoInARoom(t, srv.URL(), "outbox")
	alice.openRoom(room)

	alice.setOffline(true)
	alice.waitFor("offline", `document.querySelector('[data-testid="conn-state"]').dataset.state !== "connected"`)
	alice.say("written by alice while offline")
	alice.waitFor("queued", `!document.querySelector('[data-testid="outbox"]').hidden`)

	// Bob's login cookie replaces Alice's in her browser, as a sign-in in
	// another tab would.
	var bobCookies []*network.Cookie
	bob.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{srv.URL()}})
		if err == nil {
			bobCookies = res.Cookies
		}
		return err
	}))
	switched := false
	alice.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		httpOnly := true
		for _, c := range bobCookies {
			if c.Name != proto.SessionCookieName {
				continue
			}
			switched = true
			if _, err := cdp.Call(ctx, tg, network.SetCookie, network.SetCookieParams{Name: c.Name, Value: c.Value, URL: srv.URL(), HTTPOnly: &httpOnly}); err != nil {
				return err
			}
		}
		return nil
	}))
	if !switched {
		t.Fatalf("bob has no %s cookie: %v", proto.SessionCookieName, bobCookies)
	}
	alice.eval(`(() => { window.__beforeSwitch = true; return true })()`, nil)
	alice.setOffline(false)
	alice.waitFor("reloaded as bob", `window.__beforeSwitch === undefined && document.querySelector('[data-testid="chat-app"]') && document.body.textContent.includes("Bob")`)
	alice.waitConnected()
	bob.openRoom(int(room))
	bob.waitConnected()
	u, err := srv.auth.UserByName(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range storedTexts(t, srv, u, int64(room)) {
		if strings.Contains(text, "written by alice") {
			t.Fatalf("alice's waiting message was posted after the account changed: %q", text)
		}
	}
}
