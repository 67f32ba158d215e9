package main

// End-to-end tests of the web UI in headless Chromium (harness in
// browser_test.go). Two people, each in their own browser context, use the
// real pages and app.js: register, create and join a room, chat in Korean and
// English, reload, drop off the network and come back, and try to inject
// markup. TestUIChat* run against the full server (startServer);
// TestUIFakeServer runs the same flow against a small in-memory stand-in for
// the API, over the real broker on /ws, so the pages can be exercised on
// their own.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// uiWaitTimeout bounds one in-page wait for the UI to reach a state; it is a
// hang guard (SockJS polling on a busy machine), not a performance claim.
const uiWaitTimeout = 30 * time.Second

// uiXSSPayloads must show as text, verbatim, and never run.
var uiXSSPayloads = []string{
	`<script>alert("xss-script")</script>`,
	`<img src=x onerror="alert('xss-img')">`,
}

// uiPerson is one browser context and the name it signs in with.
type uiPerson struct {
	t        *testing.T
	ctx      context.Context
	name     string
	dialogs  *atomic.Int32 // JavaScript dialogs (alert, confirm) opened in this tab
	base     string        // server URL without the trailing slash
	query    string        // e.g. "?transport=xhr-polling"
	password string
}

func newUIPerson(t *testing.T, browser context.Context, name, base, query string) *uiPerson {
	t.Helper()
	ctx := newBrowserContext(t, browser, name)
	p := &uiPerson{t: t, ctx: ctx, name: name, dialogs: new(atomic.Int32), base: strings.TrimSuffix(base, "/"), query: query, password: "pw-" + name + "-12345"}
	evCtx, stopEvents := context.WithCancel(ctx)
	events := chromedp.Events(evCtx, page.JavascriptDialogOpening)
	done := make(chan struct{})
	go func() { // ends when evCtx is cancelled in Cleanup
		defer close(done)
		for _, err := range events {
			if err != nil {
				return
			}
			p.dialogs.Add(1)
			// Dismiss it so the page does not hang; the test fails on the count.
			go chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := cdp.Call(ctx, tg, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
				return err
			}))
		}
	}()
	t.Cleanup(func() { stopEvents(); <-done })
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: recordAPIErrorsJS})
		return err
	}))
	return p
}

// recordAPIErrorsJS wraps fetch in every page of the tab to keep a list of
// API answers that were not 2xx, in sessionStorage so that it survives
// navigations; apiErrors reads it. (DevTools scripts are not subject to the
// page's CSP.)
const recordAPIErrorsJS = `(() => {
	const real = window.fetch;
	window.fetch = async (...args) => {
		const res = await real(...args);
		if (!res.ok) {
			const list = JSON.parse(sessionStorage.getItem("__apiErrors") || "[]");
			list.push(res.status + " " + ((args[1] && args[1].method) || "GET") + " " + String(args[0]));
			sessionStorage.setItem("__apiErrors", JSON.stringify(list));
		}
		return res;
	};
})()`

// checkAPIErrors fails the test if any API call of the current page's
// session answered with an error status.
func (p *uiPerson) checkAPIErrors() {
	p.t.Helper()
	var errs []string
	p.eval(`JSON.parse(sessionStorage.getItem("__apiErrors") || "[]")`, &errs)
	for _, e := range errs {
		p.t.Errorf("%s: API error: %s", p.name, e)
	}
}

// do runs chromedp actions on the tab of p.
func (p *uiPerson) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, uiWaitTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

// open navigates to path (with the transport query on chat pages).
func (p *uiPerson) open(path string) {
	p.t.Helper()
	p.do(chromedp.Navigate(p.base + path))
}

// eval runs JavaScript and decodes its value into out.
func (p *uiPerson) eval(script string, out any) {
	p.t.Helper()
	if err := evalAsync(p.ctx, script, out); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

// waitFor polls the JavaScript condition cond inside the page until it is
// true. The polling runs in the browser, so no Go sleep is involved; when a
// navigation destroys the page mid-wait, the wait starts again on the new page.
func (p *uiPerson) waitFor(what, cond string) {
	p.t.Helper()
	deadline := time.Now().Add(uiWaitTimeout)
	for {
		left := time.Until(deadline)
		script := fmt.Sprintf(`new Promise((resolve, reject) => {
			const end = Date.now() + %d;
			const tick = () => {
				let ok = false;
				try { ok = !!(%s); } catch (e) { ok = false; }
				if (ok) return resolve(true);
				if (Date.now() > end) return reject(new Error("timed out"));
				setTimeout(tick, 50);
			};
			tick();
		})`, left.Milliseconds(), cond)
		ctx, cancel := context.WithTimeout(p.ctx, left+5*time.Second)
		err := evalAsync(ctx, script, nil)
		cancel()
		if err == nil {
			return
		}
		navigated := strings.Contains(err.Error(), "navigated or closed") || strings.Contains(err.Error(), "context was destroyed") ||
			strings.Contains(err.Error(), "Cannot find context")
		if !navigated || time.Now().After(deadline) {
			screenshot(p.t, p.ctx, p.name+"-timeout")
			p.t.Fatalf("%s: waiting for %s: %v", p.name, what, err)
		}
	}
}

// testIDSel is a CSS selector for a data-testid.
func testIDSel(id string) string { return `[data-testid="` + id + `"]` }

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// fill sets an input's value as typing would, so input events fire.
func (p *uiPerson) fill(testID, value string) {
	p.t.Helper()
	p.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%s); e.focus(); e.value = %s; e.dispatchEvent(new Event("input", {bubbles: true})); return true })()`, jsString(testIDSel(testID)), jsString(value)), nil)
}

// click clicks the element, through the DOM (so the element need not be in view).
func (p *uiPerson) click(selector string) {
	p.t.Helper()
	p.eval(fmt.Sprintf(`(() => { document.querySelector(%s).click(); return true })()`, jsString(selector)), nil)
}

// submit submits a form the way pressing its button does.
func (p *uiPerson) submit(testID string) {
	p.t.Helper()
	p.eval(fmt.Sprintf(`(() => { document.querySelector(%s).requestSubmit(); return true })()`, jsString(testIDSel(testID))), nil)
}

// say types a message into the composer like a uiPerson (text inserted as an
// IME would, Shift+Enter for line breaks) and presses Enter.
func (p *uiPerson) say(text string) {
	p.t.Helper()
	p.do(chromedp.Focus(testIDSel("composer")))
	for i, line := range strings.Split(text, "\n") {
		if i > 0 {
			p.pressEnter(true)
		}
		if line != "" {
			p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := cdp.Call(ctx, tg, input.InsertText, input.InsertTextParams{Text: line})
				return err
			}))
		}
	}
	p.pressEnter(false)
	p.waitFor("composer cleared", `document.querySelector('[data-testid="composer"]').value === ""`)
}

// pressEnter presses Enter (with Shift when shift is set) as a keyboard
// does: one keyDown carrying the text, so the page's preventDefault decides
// whether a line break goes in. (chromedp.KeyEvent adds a separate "char"
// event, which inserts the break even when keydown was cancelled.)
func (p *uiPerson) pressEnter(shift bool) {
	p.t.Helper()
	var mods int64
	if shift {
		mods = int64(chromedp.ModifierShift)
	}
	down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13, Text: "\r", UnmodifiedText: "\r", Modifiers: mods}
	up := down
	up.Type, up.Text, up.UnmodifiedText = input.DispatchKeyEventTypeKeyUp, "", ""
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, down); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, up)
		return err
	}))
}

// texts returns the text of every message shown in the open room, in order.
func (p *uiPerson) texts() []string {
	p.t.Helper()
	var out []string
	p.eval(`[...document.querySelectorAll('[data-testid="message"] [data-testid="message-text"]')].map(e => e.textContent)`, &out)
	return out
}

// waitText waits until a message with exactly this text is shown.
func (p *uiPerson) waitText(text string) {
	p.t.Helper()
	p.waitFor("message "+text, fmt.Sprintf(`[...document.querySelectorAll('[data-testid="message-text"]')].some(e => e.textContent === %s)`, jsString(text)))
}

// waitConnected waits for the connection badge to say connected.
func (p *uiPerson) waitConnected() {
	p.t.Helper()
	p.waitFor("connected", `document.querySelector('[data-testid="conn-state"]').dataset.state === "connected"`)
}

// register signs up through /setup (first uiPerson) or /register, and lands
// in the chat.
func (p *uiPerson) register(first bool) {
	p.t.Helper()
	if first {
		p.open("/")
		p.waitFor("setup page", `location.pathname === "/setup" && document.querySelector('[data-testid="setup-form"]')`)
		screenshot(p.t, p.ctx, "setup")
	} else {
		p.open("/register")
		p.waitFor("register page", `document.querySelector('[data-testid="register-form"]')`)
	}
	p.fill("field-username", p.name)
	p.fill("field-displayName", strings.ToUpper(p.name[:1])+p.name[1:]+" 님")
	p.fill("field-password", p.password)
	if first {
		p.submit("setup-form")
	} else {
		p.submit("register-form")
	}
	p.waitFor("chat page", `location.pathname === "/" && document.querySelector('[data-testid="chat-app"]')`)
	if p.query != "" {
		p.open("/" + p.query)
		p.waitFor("chat page", `document.querySelector('[data-testid="chat-app"]')`)
	}
	p.waitConnected()
}

// roomID returns the id of the open room from the URL.
func (p *uiPerson) roomID() int {
	p.t.Helper()
	var h string
	p.eval(`location.hash`, &h)
	id, err := strconv.Atoi(strings.TrimPrefix(h, "#room-"))
	if err != nil {
		p.t.Fatalf("%s: no room open (hash %q)", p.name, h)
	}
	return id
}

// uiChatFlow is the whole two-uiPerson story. offline says whether to run the
// drop-and-resume part, which needs the server's since-id replay.
func uiChatFlow(t *testing.T, base, query string, offline bool) {
	browser := newBrowser(t)
	alice := newUIPerson(t, browser, "alice", base, query)
	bob := newUIPerson(t, browser, "bob", base, query)

	alice.register(true)
	if want, ok := strings.CutPrefix(query, "?transport="); ok && !strings.Contains(want, ",") {
		var got string
		alice.eval(`document.querySelector('[data-testid="conn-state"]').dataset.transport`, &got)
		if want == "ws" {
			want = "websocket"
		}
		if got != want {
			t.Errorf("transport %q, want %q", got, want)
		}
	}
	bob.open("/login")
	bob.waitFor("login page", `document.querySelector('[data-testid="login-form"]')`)
	screenshot(t, bob.ctx, "login")
	bob.checkContrast("login, light")
	bob.register(false)

	// Alice creates a room; Bob finds it among the other rooms and joins.
	const roomName = "라운지 Lounge"
	alice.click(testIDSel("new-room"))
	alice.fill("room-name", roomName)
	alice.fill("room-topic-input", "점심 메뉴와 잡담 · lunch and chatter")
	alice.submit("new-room-form")
	alice.waitFor("room open", fmt.Sprintf(`document.querySelector('[data-testid="room-title"]').textContent === %s`, jsString(roomName)))
	roomID := alice.roomID()

	bob.open("/" + query)
	bob.waitFor("room offered", fmt.Sprintf(`document.querySelector('[data-testid="other-rooms"] [data-room-id="%d"]')`, roomID))
	bob.click(fmt.Sprintf(`[data-testid="other-rooms"] [data-room-id="%d"]`, roomID))
	bob.waitFor("join button", `!document.querySelector('[data-testid="join-room"]').hidden`)
	bob.click(testIDSel("join-room"))
	bob.waitFor("joined", fmt.Sprintf(`document.querySelector('[data-testid="room-list"] [data-room-id="%d"]') && !document.querySelector('[data-testid="composer"]').disabled`, roomID))
	bob.waitConnected()

	// Korean and English both ways, a line break, a link.
	sent := []string{}
	exchange := func(from, to *uiPerson, text string) {
		t.Helper()
		from.say(text)
		from.waitText(text)
		to.waitText(text)
		sent = append(sent, text)
	}
	exchange(alice, bob, "안녕하세요, 밥! 점심 같이 할래요? 🍜")
	exchange(bob, alice, "Hi Alice! Sure, see https://example.com/menu?day=1.")
	exchange(alice, bob, "좋아요\n12시에 봐요")
	exchange(bob, alice, "@alice 12:00 works 👍")

	// Bob signed up after Alice's page loaded: his display name still shows.
	alice.waitFor("display names", `[...document.querySelectorAll('[data-testid="message-sender"]')].some(e => e.textContent === "Bob 님") &&
		[...document.querySelectorAll('[data-testid="message-sender"]')].every(e => e.textContent !== "bob")`)

	var link struct{ Href, Rel, Target, Text string }
	alice.eval(`(() => { const a = [...document.querySelectorAll('[data-testid="message-text"] a')].pop(); return {href: a.href, rel: a.rel, target: a.target, text: a.textContent} })()`, &link)
	if link.Href != "https://example.com/menu?day=1" || link.Rel != "noopener noreferrer" || link.Target != "_blank" {
		t.Errorf("link %+v", link)
	}
	var mentioned bool
	alice.eval(`[...document.querySelectorAll('[data-testid="message"]')].pop().classList.contains("mentioned")`, &mentioned)
	if !mentioned {
		t.Error("alice's mention is not highlighted")
	}

	// Markup is text.
	for _, payload := range uiXSSPayloads {
		exchange(bob, alice, payload)
	}
	var imgs int
	alice.eval(`document.querySelectorAll('[data-testid="messages"] img, [data-testid="messages"] script').length`, &imgs)
	if imgs != 0 {
		t.Errorf("%d img/script elements in the message list", imgs)
	}

	// Both see every message exactly once, in order.
	for _, p := range []*uiPerson{alice, bob} {
		if got := p.texts(); !slices.Equal(got, sent) {
			t.Errorf("%s sees %q, want %q", p.name, got, sent)
		}
	}
	screenshot(t, alice.ctx, "chat-desktop")
	alice.checkContrast("chat, light")

	// Bob reloads and sees the history, each message once.
	bob.open("/" + query + fmt.Sprintf("#room-%d", roomID))
	bob.waitFor("history", fmt.Sprintf(`document.querySelectorAll('[data-testid="message"]').length >= %d`, len(sent)))
	bob.waitConnected()
	if got := bob.texts(); !slices.Equal(got, sent) {
		t.Errorf("after reload bob sees %q, want %q", got, sent)
	}

	if offline {
		// Bob's network goes away; Alice writes; Bob comes back and sees each
		// message once, resumed from the last id he saw.
		bob.setOffline(true)
		bob.waitFor("offline badge", `document.querySelector('[data-testid="conn-state"]').dataset.state !== "connected"`)
		missed := []string{"밥, 아직 있어요?", "Bob, are you there?", "세 번째 메시지 #3"}
		for _, m := range missed {
			alice.say(m)
			alice.waitText(m)
			sent = append(sent, m)
		}
		bob.setOffline(false)
		bob.waitConnected()
		for _, m := range missed {
			bob.waitText(m)
		}
		exchange(bob, alice, "I'm back / 돌아왔어요")
		if got := bob.texts(); !slices.Equal(got, sent) {
			t.Errorf("after coming back bob sees %q, want %q", got, sent)
		}
	}

	if n := alice.dialogs.Load() + bob.dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened: a payload ran", n)
	}
	alice.checkAPIErrors()
	bob.checkAPIErrors()

	// Screens: phone with the drawer shut and open, dark mode, Korean.
	alice.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch))
	alice.waitFor("phone layout", `getComputedStyle(document.querySelector('[data-testid="drawer-toggle"]')).display !== "none"`)
	screenshot(t, alice.ctx, "chat-phone")
	alice.click(testIDSel("drawer-toggle"))
	alice.waitFor("drawer open", `document.body.classList.contains("drawer-open") && document.querySelector('[data-testid="sidebar"]').getBoundingClientRect().left >= 0`)
	screenshot(t, alice.ctx, "chat-phone-drawer")
	alice.click(testIDSel("scrim"))
	alice.do(chromedp.EmulateViewport(browserWindowWidth, browserWindowHeight))
	alice.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		})
		return err
	}))
	screenshot(t, alice.ctx, "chat-dark")
	alice.checkContrast("chat, dark")

	bob.open("/settings")
	bob.waitFor("settings", `document.querySelector('[data-testid="lang-select"]')`)
	bob.eval(`(() => { const s = document.querySelector('[data-testid="lang-select"]'); s.value = "ko"; s.dispatchEvent(new Event("change")); return true })()`, nil)
	bob.waitFor("korean settings", `document.documentElement.lang === "ko" && document.querySelector("h1").textContent === "설정"`)
	bob.open("/" + query + fmt.Sprintf("#room-%d", roomID))
	bob.waitFor("korean chat", `document.documentElement.lang === "ko" && document.querySelector('[data-testid="send"]').textContent === "보내기"`)
	bob.waitConnected()
	bob.waitFor("korean badge", `document.querySelector('[data-testid="conn-state"]').textContent === "연결됨"`)
	screenshot(t, bob.ctx, "chat-korean")
}

// contrastJS lists the visible text whose contrast with its background is
// below WCAG 2.x AA (4.5:1, or 3:1 for large text), skipping disabled controls
// (WCAG exempts inactive components).
const contrastJS = `(() => {
	const parse = (s) => {
		const m = s.match(/rgba?\(([^)]+)\)/);
		if (!m) return null;
		const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
		return { rgb: p.slice(0, 3), a: p.length > 3 ? p[3] : 1 };
	};
	const lum = (rgb) => {
		const [r, g, b] = rgb.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
		return 0.2126 * r + 0.7152 * g + 0.0722 * b;
	};
	const bgOf = (el) => {
		for (let e = el; e; e = e.parentElement) {
			const c = parse(getComputedStyle(e).backgroundColor);
			if (c && c.a > 0.5) return c.rgb;
		}
		return [255, 255, 255];
	};
	const bad = [];
	let checked = 0;
	for (const el of document.querySelectorAll("body *")) {
		if (el.closest("[hidden], .visually-hidden, dialog:not([open])") || el.disabled) continue;
		const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
		if (!own) continue;
		const r = el.getBoundingClientRect();
		if (r.width === 0 || r.height === 0) continue;
		const cs = getComputedStyle(el);
		const fg = parse(cs.color);
		if (!fg) continue;
		const a = lum(fg.rgb), b = lum(bgOf(el));
		const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
		const size = parseFloat(cs.fontSize), bold = +cs.fontWeight >= 700;
		const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
		checked++;
		if (ratio < need) bad.push(el.tagName.toLowerCase() + "." + el.className + " " + JSON.stringify(el.textContent.trim().slice(0, 30)) + " " + ratio.toFixed(2));
	}
	return { checked, bad };
})()`

// checkContrast fails the test for text below WCAG AA contrast on the page.
func (p *uiPerson) checkContrast(label string) {
	p.t.Helper()
	var res struct {
		Checked int
		Bad     []string
	}
	p.eval(contrastJS, &res)
	p.t.Logf("%s: %d text elements checked for contrast", label, res.Checked)
	if res.Checked < 5 {
		p.t.Errorf("%s: only %d text elements checked for contrast", label, res.Checked)
	}
	for _, b := range res.Bad {
		p.t.Errorf("%s: low contrast: %s", label, b)
	}
}

// setOffline cuts the tab off the network (requests fail, navigator.onLine
// is false and the offline event fires) or restores it.
func (p *uiPerson) setOffline(off bool) {
	p.t.Helper()
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, tg, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: []*network.Conditions{{Offline: off, DownloadThroughput: -1, UploadThroughput: -1}},
		}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: off, DownloadThroughput: -1, UploadThroughput: -1})
		return err
	}))
}

// requireUIChatServer skips the test until the full server (pages, API and
// SockJS) is wired in, so this file can land before the server does.
func requireUIChatServer(t *testing.T) *server {
	t.Helper()
	srv := startServer(t)
	for _, path := range []string{"login", "api/me", "ws-stomp/info"} {
		res, err := http.Get(srv.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusNotFound {
			t.Skipf("the full server is not wired in yet: GET /%s is 404", path)
		}
	}
	return srv
}

// TestUIChatSockJS runs the two-uiPerson flow on the full server with SockJS
// choosing its transport (WebSocket on loopback), including drop and resume.
func TestUIChatSockJS(t *testing.T) {
	srv := requireUIChatServer(t)
	uiChatFlow(t, srv.URL(), "", true)
}

// TestUIChatXHRPolling is the same flow with SockJS forced to xhr-polling, as
// behind a proxy that blocks WebSockets and streaming.
func TestUIChatXHRPolling(t *testing.T) {
	srv := requireUIChatServer(t)
	uiChatFlow(t, srv.URL(), "?transport=xhr-polling", true)
}

// TestUIFakeServer runs the flow against uiFakeChat over the real broker and
// SockJS endpoint, drop and resume included (the fake implements since-id
// with the broker's subscribe hook): with SockJS choosing (WebSocket on
// loopback), forced to xhr-polling, and raw WebSocket on /ws (?transport=ws).
func TestUIFakeServer(t *testing.T) {
	for _, query := range []string{"", "?transport=xhr-polling", "?transport=ws"} {
		name := strings.TrimPrefix(query, "?transport=")
		if name == "" {
			name = "auto"
		}
		t.Run(name, func(t *testing.T) {
			f := startUIFakeChat(t)
			uiChatFlow(t, f.srv.URL, query, true)
		})
	}
}

// ---- uiFakeChat: the chat API of the contract, in memory ----

type uiFakeUser struct {
	ID          int64  `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"displayName"`
	IsAdmin     bool   `json:"isAdmin"`
	password    string
	webhook     string
}

type uiFakeRoom struct {
	ID       int64            `json:"id"`
	Name     string           `json:"name"`
	Topic    string           `json:"topic"`
	Kind     string           `json:"kind"`
	Archived bool             `json:"archived"`
	members  map[string]int64 // username -> last read id
}

type uiFakeMessage struct {
	ID         int64  `json:"id"`
	Type       string `json:"type"`
	RoomID     int64  `json:"roomId"`
	Sender     string `json:"sender"`
	SenderName string `json:"senderName,omitempty"` // the chat service sends none; app.js names senders from /api/users
	Message    string `json:"message"`
	CreatedAt  string `json:"createdAt"`
}

// uiFakeChat is a stand-in for the store and chat service: users, sessions,
// rooms and messages in memory behind one mutex, never held across I/O.
type uiFakeChat struct {
	srv    *httptest.Server
	broker *Broker
	mu     sync.Mutex
	users  []*uiFakeUser
	tokens map[string]string // session cookie -> username
	rooms  []*uiFakeRoom
	msgs   []uiFakeMessage
}

func startUIFakeChat(t *testing.T) *uiFakeChat {
	t.Helper()
	f := &uiFakeChat{tokens: map[string]string{}}
	log := testLogger(t)
	base, cancel := context.WithCancel(context.Background())
	f.broker = newBroker(brokerConfig{HeartBeat: defaultHeartBeat}, log)
	f.broker.Handle("/chat/message", f.handleMessage)
	f.broker.Handle("/chat/typing", func(_ context.Context, req *appRequest) error {
		var in struct{ RoomID int64 }
		json.Unmarshal(req.Frame.Body, &in)
		body, _ := json.Marshal(map[string]string{"user": req.User()})
		return req.Broker.Publish(fmt.Sprintf("/sub/chat/room/%d/typing", in.RoomID), nil, body, 0)
	})
	f.broker.OnSubscribe("/sub/chat/room/", f.replaySince)
	mux := http.NewServeMux()
	newPages(pagesOptions{
		currentUser: func(r *http.Request) (uiUser, bool) {
			u := f.userOf(r)
			if u == nil {
				return uiUser{}, false
			}
			return uiUser{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, IsAdmin: u.IsAdmin}, true
		},
		hasAnyUser: func(context.Context) (bool, error) { f.mu.Lock(); defer f.mu.Unlock(); return len(f.users) > 0, nil },
		lang:       "en",
		log:        log,
	}).routes(mux)
	identify := func(r *http.Request) string {
		if u := f.userOf(r); u != nil {
			return u.Username
		}
		return ""
	}
	mux.Handle("GET /ws", &wsHandler{identify: identify, broker: f.broker, origins: newOriginPolicy(nil), base: base, log: log})
	sj := newSockJS(sockjsOptions{
		Prefix:    "/ws-stomp",
		Websocket: true,
		ClientURL: "/static/vendor/sockjs.min.js",
		Identify:  identify,
	}, log, func(t transport, info connInfo) { f.broker.Serve(base, t, info) })
	mux.Handle("/ws-stomp", sj)
	mux.Handle("/ws-stomp/", sj)
	f.api(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() { // the order of server.Shutdown
		ctx, c := context.WithTimeout(context.Background(), testTimeout)
		defer c()
		f.broker.Close(ctx)
		sj.Close(ctx)
		f.srv.Close()
		cancel()
	})
	return f
}

func (f *uiFakeChat) userOf(r *http.Request) *uiFakeUser {
	c, err := r.Cookie("stompbox_session")
	if err != nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.find(f.tokens[c.Value])
}

func (f *uiFakeChat) find(username string) *uiFakeUser {
	for _, u := range f.users {
		if u.Username == username {
			return u
		}
	}
	return nil
}

func (f *uiFakeChat) room(id int64) *uiFakeRoom {
	for _, r := range f.rooms {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// handleMessage stores a SEND to /pub/chat/message and publishes the stored form.
func (f *uiFakeChat) handleMessage(_ context.Context, req *appRequest) error {
	var in uiFakeMessage
	if err := json.Unmarshal(req.Frame.Body, &in); err != nil {
		return errBadChatMessage
	}
	f.mu.Lock()
	u, r := f.find(req.User()), f.room(in.RoomID)
	if u == nil || r == nil {
		f.mu.Unlock()
		return errBadChatMessage
	}
	if _, ok := r.members[u.Username]; !ok {
		f.mu.Unlock()
		return errBadChatMessage
	}
	m := uiFakeMessage{ID: int64(len(f.msgs) + 1), Type: in.Type, RoomID: r.ID, Sender: u.Username, Message: in.Message, CreatedAt: time.Now().UTC().Format(time.RFC3339)}
	f.msgs = append(f.msgs, m)
	f.mu.Unlock()
	body, _ := json.Marshal(m)
	return req.Broker.Publish(fmt.Sprintf("/sub/chat/room/%d", r.ID), []header{{hdrContentType, "application/json"}}, body, m.ID)
}

// replaySince implements the since-id header of a room subscription as
// the contract describes: every stored message after N first, then live,
// with no gap and no duplicate (the broker's hold/release does the seam).
func (f *uiFakeChat) replaySince(_ context.Context, _ *session, sub *subscription, fr *frame) error {
	dest, _ := fr.Get(hdrDestination)
	roomID, err := strconv.ParseInt(strings.TrimPrefix(dest, "/sub/chat/room/"), 10, 64)
	since, ok := fr.Get("since-id")
	if err != nil || !ok {
		return nil // presence, typing, or a live-only subscription
	}
	after, err := strconv.ParseInt(since, 10, 64)
	if err != nil {
		return nil
	}
	sub.hold()
	sub.Attach()
	f.mu.Lock()
	var replay []uiFakeMessage
	for _, m := range f.msgs {
		if m.RoomID == roomID && m.ID > after {
			replay = append(replay, m)
		}
	}
	f.mu.Unlock()
	last := after
	for _, m := range replay {
		body, _ := json.Marshal(m)
		sub.Replay([]header{{hdrContentType, "application/json"}}, body, m.ID)
		last = m.ID
	}
	sub.release(last)
	return nil
}

// api registers the HTTP JSON API of the contract that app.js uses.
func (f *uiFakeChat) api(mux *http.ServeMux) {
	decode := func(r *http.Request, v any) { json.NewDecoder(r.Body).Decode(v) }
	authed := func(h func(w http.ResponseWriter, r *http.Request, u *uiFakeUser)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			u := f.userOf(r)
			if u == nil {
				writeJSONError(w, http.StatusUnauthorized, "sign in first")
				return
			}
			h(w, r, u)
		}
	}
	roomJSON := func(r *uiFakeRoom, u *uiFakeUser) map[string]any {
		last, member := r.members[u.Username]
		unread := 0
		for _, m := range f.msgs {
			if m.RoomID == r.ID && m.ID > last && m.Sender != u.Username && member && m.Type == "TALK" {
				unread++
			}
		}
		out := map[string]any{"id": r.ID, "name": r.Name, "topic": r.Topic, "kind": r.Kind, "archived": r.Archived, "member": member, "unread": unread, "lastReadId": last}
		if r.Kind == "dm" {
			for name := range r.members {
				if name != u.Username {
					out["dmWith"] = name
				}
			}
		}
		return out
	}
	mux.HandleFunc("POST /api/register", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Username, DisplayName, Password string }
		decode(r, &in)
		f.mu.Lock()
		defer f.mu.Unlock()
		if in.Username == "" || len(in.Password) < 8 || f.find(in.Username) != nil {
			writeJSONError(w, http.StatusBadRequest, "username taken or password too short")
			return
		}
		u := &uiFakeUser{ID: int64(len(f.users) + 1), Username: in.Username, DisplayName: in.DisplayName, IsAdmin: len(f.users) == 0, password: in.Password}
		f.users = append(f.users, u)
		writeJSON(w, http.StatusCreated, u)
	})
	mux.HandleFunc("POST /api/login", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Username, Password string }
		decode(r, &in)
		f.mu.Lock()
		u := f.find(in.Username)
		if u == nil || u.password != in.Password {
			f.mu.Unlock()
			writeJSONError(w, http.StatusUnauthorized, "wrong username or password")
			return
		}
		tok := rand.Text()
		f.tokens[tok] = u.Username
		f.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "stompbox_session", Value: tok, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		writeJSON(w, http.StatusOK, u)
	})
	mux.HandleFunc("POST /api/logout", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "stompbox_session", Path: "/", MaxAge: -1})
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	mux.HandleFunc("PUT /api/admin/registration", authed(func(w http.ResponseWriter, r *http.Request, u *uiFakeUser) {
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("POST /api/admin/invites", authed(func(w http.ResponseWriter, r *http.Request, u *uiFakeUser) {
		writeJSON(w, http.StatusCreated, map[string]string{"code": "inv-" + rand.Text()[:8], "expiresAt": time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)})
	}))
	mux.HandleFunc("PUT /api/me/webhook", authed(func(w http.ResponseWriter, r *http.Request, u *uiFakeUser) {
		var in struct{ URL string }
		decode(r, &in)
		if in.URL != "" && !strings.HasPrefix(in.URL, "http://") && !strings.HasPrefix(in.URL, "https://") {
			writeJSONError(w, http.StatusBadRequest, "webhook must be an http or https URL")
			return
		}
		f.mu.Lock()
		u.webhook = in.URL
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("GET /api/me", authed(func(w http.ResponseWriter, r *http.Request, u *uiFakeUser) { writeJSON(w, http.StatusOK, u) }))
	mux.HandleFunc("GET /api/users", authed(func(w http.ResponseWriter, r *http.Request, u *uiFakeUser) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, http.StatusOK, f.users)
	}))
	mux.HandleFunc("GET /api/rooms", authed(func(w http.ResponseWriter, r *http.Request, u *uiFakeUser) {
		f.mu.Lock()
		defer f.mu.Unlock()
		out := []map[string]any{}
		for _, rm := range f.rooms {
			if _, member := rm.members[u.Username]; member || rm.Kind == "public" {
				out = append(out, roomJSON(rm, u))
			}
		}
		writeJSON(w, http.StatusOK, out)
	}))
	mux.HandleFunc("POST /api/rooms", authed(func(w http.ResponseWriter, r *http.Request, u *uiFakeUser) {
		var in struct{ Name, Topic, Kind string }
		decode(r, &in)
		f.mu.Lock()
		defer f.mu.Unlock()
		kind := "public"
		if in.Kind == "private" {
			kind = "private"
		}
		rm := &uiFakeRoom{ID: int64(len(f.rooms) + 1), Name: in.Name, Topic: in.Topic, Kind: kind, members: map[string]int64{u.Username: 0}}
		f.rooms = append(f.rooms, rm)
		writeJSON(w, http.StatusCreated, roomJSON(rm, u))
	}))
	roomOp := func(op func(rm *uiFakeRoom, u *uiFakeUser)) http.HandlerFunc {
		return authed(func(w http.ResponseWriter, r *http.Request, u *uiFakeUser) {
			id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
			f.mu.Lock()
			defer f.mu.Unlock()
			rm := f.room(id)
			if rm == nil {
				writeJSONError(w, http.StatusNotFound, "no such room")
				return
			}
			op(rm, u)
			writeJSON(w, http.StatusOK, roomJSON(rm, u))
		})
	}
	// Join and leave post the ENTER and LEAVE lines, as the chat service does.
	presence := func(typ string, join bool) http.HandlerFunc {
		return authed(func(w http.ResponseWriter, r *http.Request, u *uiFakeUser) {
			id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
			f.mu.Lock()
			rm := f.room(id)
			if rm == nil {
				f.mu.Unlock()
				writeJSONError(w, http.StatusNotFound, "no such room")
				return
			}
			if join {
				rm.members[u.Username] = 0
			} else {
				delete(rm.members, u.Username)
			}
			m := uiFakeMessage{ID: int64(len(f.msgs) + 1), Type: typ, RoomID: id, Sender: u.Username, Message: u.Username, CreatedAt: time.Now().UTC().Format(time.RFC3339)}
			f.msgs = append(f.msgs, m)
			out := roomJSON(rm, u)
			f.mu.Unlock()
			body, _ := json.Marshal(m)
			f.broker.Publish(fmt.Sprintf("/sub/chat/room/%d", id), []header{{hdrContentType, "application/json"}}, body, m.ID)
			writeJSON(w, http.StatusOK, out)
		})
	}
	mux.HandleFunc("POST /api/rooms/{id}/join", presence("ENTER", true))
	mux.HandleFunc("POST /api/rooms/{id}/leave", presence("LEAVE", false))
	mux.HandleFunc("POST /api/rooms/{id}/read", authed(func(w http.ResponseWriter, r *http.Request, u *uiFakeUser) {
		var in struct{ LastReadID int64 }
		decode(r, &in)
		roomOp(func(rm *uiFakeRoom, u *uiFakeUser) {
			if _, ok := rm.members[u.Username]; ok {
				rm.members[u.Username] = in.LastReadID
			}
		})(w, r)
	}))
	mux.HandleFunc("GET /api/rooms/{id}/messages", authed(func(w http.ResponseWriter, r *http.Request, u *uiFakeUser) {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		q := r.URL.Query()
		before, _ := strconv.ParseInt(q.Get("before"), 10, 64)
		after, _ := strconv.ParseInt(q.Get("after"), 10, 64)
		limit, _ := strconv.Atoi(q.Get("limit"))
		if limit <= 0 || limit > 200 {
			limit = 50
		}
		f.mu.Lock()
		var all []uiFakeMessage
		for _, m := range f.msgs {
			if m.RoomID == id && (before == 0 || m.ID < before) && m.ID > after {
				all = append(all, m)
			}
		}
		f.mu.Unlock()
		if after > 0 && len(all) > limit {
			all = all[:limit]
		} else if len(all) > limit {
			all = all[len(all)-limit:]
		}
		if all == nil {
			all = []uiFakeMessage{}
		}
		writeJSON(w, http.StatusOK, all)
	}))
	mux.HandleFunc("GET /api/search", authed(func(w http.ResponseWriter, r *http.Request, u *uiFakeUser) {
		q := r.URL.Query().Get("q")
		f.mu.Lock()
		defer f.mu.Unlock()
		out := []uiFakeMessage{}
		for _, m := range f.msgs {
			if q != "" && strings.Contains(strings.ToLower(m.Message), strings.ToLower(q)) {
				out = append(out, m)
			}
		}
		writeJSON(w, http.StatusOK, out)
	}))
	mux.HandleFunc("POST /api/dm/{username}", authed(func(w http.ResponseWriter, r *http.Request, u *uiFakeUser) {
		other := r.PathValue("username")
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.find(other) == nil {
			writeJSONError(w, http.StatusNotFound, "no such person")
			return
		}
		names := []string{u.Username, other}
		slices.Sort(names)
		name := strings.Join(names, ",")
		for _, rm := range f.rooms {
			if rm.Name == name {
				writeJSON(w, http.StatusOK, roomJSON(rm, u))
				return
			}
		}
		rm := &uiFakeRoom{ID: int64(len(f.rooms) + 1), Name: name, Kind: "dm", members: map[string]int64{u.Username: 0, other: 0}}
		f.rooms = append(f.rooms, rm)
		writeJSON(w, http.StatusCreated, roomJSON(rm, u))
	}))
}

// createRoom makes a room through the dialog and returns its id once open.
func (p *uiPerson) createRoom(name string) int {
	p.t.Helper()
	p.click(testIDSel("new-room"))
	p.fill("room-name", name)
	p.submit("new-room-form")
	p.waitFor("room "+name, fmt.Sprintf(`document.querySelector('[data-testid="room-title"]').textContent === %s`, jsString(name)))
	return p.roomID()
}

// joinRoom opens a room from "other rooms" and joins it.
func (p *uiPerson) joinRoom(id int) {
	p.t.Helper()
	p.open("/" + p.query)
	p.waitFor("room offered", fmt.Sprintf(`document.querySelector('[data-testid="other-rooms"] [data-room-id="%d"]')`, id))
	p.click(fmt.Sprintf(`[data-testid="other-rooms"] [data-room-id="%d"]`, id))
	p.waitFor("join button", `!document.querySelector('[data-testid="join-room"]').hidden`)
	p.click(testIDSel("join-room"))
	p.waitFor("joined", fmt.Sprintf(`document.querySelector('[data-testid="room-list"] [data-room-id="%d"]') && !document.querySelector('[data-testid="composer"]').disabled`, id))
}

// openRoom loads the chat page on a room and waits for the connection.
func (p *uiPerson) openRoom(id int) {
	p.t.Helper()
	p.open("/settings") // a real page load: a navigation that changes only the #fragment does not reload
	p.open(fmt.Sprintf("/%s#room-%d", p.query, id))
	p.waitFor("room open", fmt.Sprintf(`location.hash === "#room-%d" && !document.querySelector('[data-testid="room"]').hidden`, id))
	p.waitConnected()
}

// insertText types text as an input method would, without pressing Enter.
func (p *uiPerson) insertText(text string) {
	p.t.Helper()
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, input.InsertText, input.InsertTextParams{Text: text})
		return err
	}))
}

// seed stores n messages from sender in a room, as if sent long ago.
func (f *uiFakeChat) seed(roomID int64, sender string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.find(sender)
	start := time.Now().Add(-48 * time.Hour)
	for i := range n {
		f.msgs = append(f.msgs, uiFakeMessage{ID: int64(len(f.msgs) + 1), Type: "TALK", RoomID: roomID, Sender: u.Username,
			Message: fmt.Sprintf("seed %03d", i+1), CreatedAt: start.Add(time.Duration(i) * time.Minute).UTC().Format(time.RFC3339)})
	}
}

// uiBackend is a server for the feature tests plus the two things they
// need to do behind the UI's back.
type uiBackend struct {
	url      string
	seed     func(roomID int64, sender string, n int) // store n old TALK messages
	webhook  func(username string) string             // the stored webhook URL
	presence bool                                     // the server publishes /sub/chat/room/{id}/presence
}

// TestUIFakeFeatures covers the chat features beyond the basic flow, on the
// fake server: scrolling back through history, unread badges, @mention
// completion, typing, notifications, DMs, search, the embed page and the
// admin page.
func TestUIFakeFeatures(t *testing.T) {
	f := startUIFakeChat(t)
	uiFeatures(t, uiBackend{
		url:  f.srv.URL,
		seed: f.seed,
		webhook: func(username string) string {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.find(username).webhook
		},
	}, "?transport=ws")
}

// TestUIChatFeatures runs the feature tests on the full server.
func TestUIChatFeatures(t *testing.T) {
	srv := requireUIChatServer(t)
	uiFeatures(t, uiServerBackend(t, srv), "")
}

func uiFeatures(t *testing.T, be uiBackend, q string) {
	browser := newBrowser(t)
	alice := newUIPerson(t, browser, "alice", be.url, q)
	bob := newUIPerson(t, browser, "bob", be.url, q)
	alice.register(true)
	bob.register(false)
	histID := alice.createRoom("history")
	quietID := alice.createRoom("quiet")
	bob.joinRoom(histID)

	{
		t.Log("step: scroll back")
		be.seed(int64(histID), "alice", 120)
		alice.openRoom(histID)
		count := `document.querySelectorAll('[data-testid="message"]').length`
		alice.waitFor("first page", count+` === 50`)
		for _, want := range []int{100, 120} {
			alice.eval(`(() => { document.querySelector('[data-testid="history"]').scrollTop = 0; return true })()`, nil)
			alice.waitFor(fmt.Sprintf("%d messages", want), fmt.Sprintf(`%s === %d`, count, want))
		}
		alice.waitFor("beginning", `document.querySelector('[data-testid="history-top"]').textContent === "This is the beginning of the room."`)
		var ok bool
		alice.eval(`(() => { const ids = [...document.querySelectorAll('[data-testid="message"]')].map(e => +e.dataset.id); return ids.every((v, i) => i === 0 || v > ids[i - 1]) && new Set(ids).size === ids.length })()`, &ok)
		if !ok {
			t.Error("history is not in ascending id order without duplicates")
		}
		var days int
		alice.eval(`document.querySelectorAll('[data-testid="day-separator"]').length`, &days)
		if days < 1 {
			t.Error("no day separator")
		}
	}

	{
		t.Log("step: unread badge")
		alice.openRoom(quietID)
		bob.openRoom(histID)
		bob.say("ping for the badge")
		badge := fmt.Sprintf(`document.querySelector('[data-testid="room-list"] [data-room-id="%d"] [data-testid="unread-badge"]')`, histID)
		alice.waitFor("badge", badge+` && `+badge+`.textContent === "1"`)
		alice.click(fmt.Sprintf(`[data-testid="room-list"] [data-room-id="%d"]`, histID))
		alice.waitText("ping for the badge")
		alice.waitFor("badge cleared", `!`+badge)
	}

	if be.presence {
		t.Log("step: who is online")
		alice.waitFor("bob online", `[...document.querySelectorAll('[data-testid="online-user"]')].some(e => e.textContent === "Bob 님")`)
		bob.waitFor("alice online", `[...document.querySelectorAll('[data-testid="online-user"]')].some(e => e.textContent === "Alice 님")`)
	}

	{
		t.Log("step: mention completion, typing and notification")
		// Bob's tab is hidden and allows notifications (stubbed: headless
		// Chromium cannot show them).
		bob.eval(`(() => {
			window.__notes = [];
			window.Notification = class { constructor(title, o) { window.__notes.push({title, body: o.body}); } static get permission() { return "granted"; } close() {} };
			Object.defineProperty(document, "hidden", {get: () => true, configurable: true});
			localStorage.setItem("stompbox_notify", "on");
			return true })()`, nil)
		alice.do(chromedp.Focus(testIDSel("composer")))
		alice.insertText("@bo")
		alice.waitFor("suggestion", `!document.querySelector('[data-testid="mention-list"]').hidden && document.querySelector('[data-testid="mention-option"]').textContent.startsWith("@bob")`)
		alice.pressEnter(false)
		var v string
		alice.eval(`document.querySelector('[data-testid="composer"]').value`, &v)
		if v != "@bob " {
			t.Fatalf("composer %q after picking, want %q", v, "@bob ")
		}
		bob.waitFor("typing", `document.querySelector('[data-testid="typing"]').textContent.includes("Alice")`)
		alice.insertText("점심 먹었어요?")
		alice.pressEnter(false)
		bob.waitText("@bob 점심 먹었어요?")
		bob.waitFor("notification", `window.__notes.length === 1 && window.__notes[0].title.includes("Alice") && window.__notes[0].body === "@bob 점심 먹었어요?"`)
		var mentioned bool
		bob.eval(`[...document.querySelectorAll('[data-testid="message"]')].pop().classList.contains("mentioned")`, &mentioned)
		if !mentioned {
			t.Error("mention of bob not highlighted for bob")
		}
	}

	{
		t.Log("step: direct message and search")
		alice.click(testIDSel("new-dm"))
		alice.waitFor("people", `document.querySelector('[data-testid="dm-user"] option[value="bob"]')`)
		alice.submit("new-dm-form")
		alice.waitFor("dm open", `document.querySelector('[data-testid="dm-list"] [aria-current="true"]') && document.querySelector('[data-testid="room-title"]').textContent === "Bob 님"`)
		alice.say("비밀 메시지 secret")
		dmID := alice.roomID()
		bob.openRoom(histID)
		badge := fmt.Sprintf(`document.querySelector('[data-testid="dm-list"] [data-room-id="%d"] [data-testid="unread-badge"]')`, dmID)
		bob.waitFor("dm badge", badge+` && `+badge+`.textContent === "1"`)

		bob.fill("search-input", "비밀")
		bob.submit("search-form")
		bob.waitFor("search hit", `document.querySelectorAll('[data-testid="search-hit"]').length === 1`)
		bob.click(testIDSel("search-hit"))
		bob.waitFor("jumped", fmt.Sprintf(`location.hash === "#room-%d" && document.querySelector('[data-testid="message"].highlight')`, dmID))
		bob.waitText("비밀 메시지 secret")
	}

	{
		t.Log("step: embed")
		bob.open(fmt.Sprintf("/embed/room/%d%s", histID, q))
		bob.waitFor("embed room", `document.querySelector('[data-testid="embed-app"]') && document.querySelector('[data-testid="room-title"]').textContent === "history"`)
		bob.waitConnected()
		bob.waitText("ping for the badge")
		bob.say("from the embed")
		alice.openRoom(histID)
		alice.waitText("from the embed")
		bob.do(chromedp.EmulateViewport(400, 500))
		screenshot(t, bob.ctx, "embed")
		bob.do(chromedp.EmulateViewport(browserWindowWidth, browserWindowHeight))
	}

	{
		t.Log("step: a Korean browser gets Korean without choosing")
		chul := newUIPerson(t, browser, "chul", be.url, q)
		var ua string
		chul.eval(`navigator.userAgent`, &ua)
		chul.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua, AcceptLanguage: "ko-KR,ko"})
			return err
		}))
		chul.open("/register")
		chul.waitFor("korean register page", `document.documentElement.lang === "ko" && document.querySelector("h1").textContent === "계정 만들기"`)
		chul.fill("field-username", "chul")
		chul.fill("field-displayName", "김철수")
		chul.fill("field-password", chul.password)
		chul.submit("register-form")
		chul.waitFor("korean chat", `location.pathname === "/" && document.querySelector('[data-testid="send"]').textContent === "보내기"`)
		chul.waitFor("korean badge from app.js", `document.querySelector('[data-testid="conn-state"]').textContent === "연결됨"`)
	}

	alice.checkAPIErrors()
	bob.checkAPIErrors()

	{
		t.Log("step: settings")
		bob.open("/settings")
		bob.waitFor("settings", `document.querySelector('[data-testid="webhook-form"]')`)
		bob.fill("webhook-input", "http://192.168.1.10:2586/stompbox-bob")
		bob.submit("webhook-form")
		bob.waitFor("saved", `!document.querySelector('[data-testid="form-ok"]').hidden`)
		if got := be.webhook("bob"); got != "http://192.168.1.10:2586/stompbox-bob" {
			t.Errorf("webhook stored %q", got)
		}
		screenshot(t, bob.ctx, "settings")
	}

	{
		t.Log("step: admin")
		alice.open("/admin")
		alice.waitFor("people", `document.querySelectorAll('[data-testid="person-row"]').length === 3 && document.querySelectorAll('[data-testid="room-row"]').length >= 2`)
		alice.click(testIDSel("registration-invite"))
		alice.waitFor("mode said", `document.querySelector('[data-testid="signup-status"]').textContent === "Sign-up now needs an invitation link."`)
		alice.click(testIDSel("create-invite"))
		alice.waitFor("invite link", `/\/register\?invite=[^&]+$/.test(document.querySelector('[data-testid="invite-link"]').value)`)
		screenshot(t, alice.ctx, "admin")
		bob.open("/admin")
		bob.waitFor("forbidden", `document.querySelector('[data-testid="forbidden"]')`)
	}

	if n := alice.dialogs.Load() + bob.dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened", n)
	}
}

// uiServerBackend adapts the full server for uiFeatures: seeding posts
// through its chat service, the webhook is read from its store.
func uiServerBackend(t *testing.T, srv *server) uiBackend {
	ctx := context.Background()
	return uiBackend{
		url:      srv.URL(),
		presence: true,
		seed: func(roomID int64, sender string, n int) {
			u, err := srv.auth.UserByName(ctx, sender)
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				if _, err := srv.chat.Post(ctx, u, chatInput{Type: "TALK", RoomID: roomID, Message: fmt.Sprintf("seed %03d", i+1)}); err != nil {
					t.Fatal(err)
				}
			}
		},
		webhook: func(username string) string {
			u, err := srv.auth.UserByName(ctx, username)
			if err != nil {
				t.Fatal(err)
			}
			url, err := srv.store.webhookURL(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			return url
		},
	}
}
