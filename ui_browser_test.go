package main

// End-to-end tests of the web UI in headless Chromium (harness in
// browser_test.go). Two people, each in their own browser context, use the
// real pages and app.js: register, create and join a room, chat in Korean and
// English, reload, drop off the network and come back, and try to inject
// markup (TestUIChat, over three transports); and use the rest of the
// features (TestUIChatFeatures). Both run against the full server
// (startServer). Screenshots of the main screens go to artifacts/screenshots.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"stompbox/internal/chat"
	"strconv"
	"strings"
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
// hang guard (SockJS polling on a shared 2-core machine under load), not a
// performance claim.
const uiWaitTimeout = 60 * time.Second

// uiXSSPayloads must show as text, verbatim, and never run.
var uiXSSPayloads = []string{
	`<script>alert("xss-script")</script>`,
	`<img src=x onerror="alert('xss-img')">`,
	`javascript:alert('xss-link') <a href="javascript:alert(1)">x</a>`,
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

// say types a message into the composer like a person (text inserted as an
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

// register signs up through /setup (first person) or /register, and lands
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

// uiChatFlow is the whole two-person story. offline says whether to run the
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
	var badLinks []string
	alice.eval(`[...document.querySelectorAll('[data-testid="messages"] a')].map(a => a.href).filter(h => !/^https?:/.test(h))`, &badLinks)
	if len(badLinks) != 0 {
		t.Errorf("links that are not http(s): %q", badLinks)
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
		bob.waitFor("offline badge", `document.querySelector('[data-testid="conn-state"]').dataset.state === "offline"`)
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
	alice.waitFor("phone layout", `getComputedStyle(document.querySelector('[data-testid="drawer-toggle"]')).display !== "none" &&
		getComputedStyle(document.querySelector('[data-testid="sidebar"]')).visibility === "hidden"`)
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
	bob.waitFor("settings", `document.querySelector('[data-testid="lang-select"]') && document.documentElement.dataset.ready === "1"`)
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

// TestUIChat runs the two-person flow on the full server, drop and resume
// included: with SockJS choosing its transport (WebSocket on loopback),
// with SockJS forced to xhr-polling as behind a proxy that blocks WebSockets
// and streaming, and with a raw WebSocket on /ws (?transport=ws).
func TestUIChat(t *testing.T) {
	t.Parallel()
	for _, query := range []string{"", "?transport=xhr-polling", "?transport=ws"} {
		name := strings.TrimPrefix(query, "?transport=")
		if name == "" {
			name = "auto"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel() // each transport has its own server and browser
			srv := startServer(t)
			uiChatFlow(t, srv.URL(), query, true)
		})
	}
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

// twoInARoom starts a browser in which Alice (the first account, so the
// administrator) and Bob sign up at base, Alice creates the room roomName
// and Bob joins it. It returns the browser, for more people, and the room.
func twoInARoom(t *testing.T, base, roomName string) (browser context.Context, alice, bob *uiPerson, roomID int) {
	t.Helper()
	browser = newBrowser(t)
	alice = newUIPerson(t, browser, "alice", base, "")
	bob = newUIPerson(t, browser, "bob", base, "")
	alice.register(true)
	bob.register(false)
	roomID = alice.createRoom(roomName)
	bob.joinRoom(roomID)
	return browser, alice, bob, roomID
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

// uiBackend is a server for the feature tests plus the two things they
// need to do behind the UI's back.
type uiBackend struct {
	url     string
	seed    func(roomID int64, sender string, n int) // store n TALK messages
	webhook func(username string) string             // the stored webhook URL
}

// TestUIChatFeatures covers the chat features beyond the basic flow on the
// full server: scrolling back through history, unread badges, who is online,
// @mention completion, typing, notifications, DMs, search, the embed page,
// language from the browser, settings and the admin page.
func TestUIChatFeatures(t *testing.T) {
	t.Parallel()
	srv := startServer(t, func(c *Config) { c.WebhookAllow = []string{"192.168.1.0/24"} }) // the settings step's webhook target (issue 22)
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

	{
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
		t.Log("step: a refused message keeps its text")
		alice.openRoom(quietID)
		// The room is archived behind the page's back, so the server refuses the SEND.
		alice.eval(fmt.Sprintf(`fetch("/api/rooms/%d", {method: "PATCH", headers: {"Content-Type": "application/json"}, body: JSON.stringify({archived: true})}).then(r => r.status)`, quietID), nil)
		alice.do(chromedp.Focus(testIDSel("composer")))
		alice.insertText("보관된 방에 쓰기 — refused")
		alice.pressEnter(false)
		alice.waitFor("text given back", `document.querySelector('[data-testid="composer"]').value === "보관된 방에 쓰기 — refused" &&
			document.querySelector('[data-testid="toasts"]').textContent.includes("archived")`)
		alice.eval(fmt.Sprintf(`fetch("/api/rooms/%d", {method: "PATCH", headers: {"Content-Type": "application/json"}, body: JSON.stringify({archived: false})}).then(r => r.status)`, quietID), nil)
	}

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
		url: srv.URL(),
		seed: func(roomID int64, sender string, n int) {
			u, err := srv.auth.UserByName(ctx, sender)
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				if _, err := srv.chat.Post(ctx, u, chat.Input{Type: "TALK", RoomID: roomID, Message: fmt.Sprintf("seed %03d", i+1)}); err != nil {
					t.Fatal(err)
				}
			}
		},
		webhook: func(username string) string {
			var url string
			// The store has no getter: the notifier reads the column in its own queries.
			if err := srv.store.Rdb.QueryRowContext(ctx, `SELECT webhook_url FROM users WHERE username = ?`, username).Scan(&url); err != nil {
				t.Fatal(err)
			}
			return url
		},
	}
}
