package main

// Chromium tests of issue 17's message features (harness in
// browser_test.go, people in ui_browser_test.go): two people edit, delete,
// answer and react to messages and see each other's changes live; Markdown
// renders with a copy button on code; the renderer survives the OWASP
// filter-evasion strings, Markdown tricks and random input; and the fixes
// of item 10 (drawer, placeholder, presence and server texts while the
// server goes away).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"stompbox/internal/auth"
	"stompbox/internal/chat"
	"stompbox/internal/proto"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// docScreenshotsEnv names the variable that makes TestUIMessageChanges
// write its screenshots to docs/ (STOMPBOX_DOC_SCREENSHOTS=1 go test -run
// TestUIMessageChanges .); otherwise they go to artifacts/ like the others.
const docScreenshotsEnv = "STOMPBOX_DOC_SCREENSHOTS"

// docScreenshot saves the visible part of the tab as a PNG, in docs/ as
// screenshot-<name>.png when docScreenshotsEnv is set, else through
// screenshot (artifacts/screenshots).
func docScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv(docScreenshotsEnv) == "" {
		screenshot(t, ctx, name)
		return
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join("docs", "screenshot-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
	}
	t.Logf("screenshot: %s (%d KB)", path, len(png)>>10)
}

// lastMessageID is the id of the newest message shown to p.
func (p *uiPerson) lastMessageID() int {
	p.t.Helper()
	var id int
	p.eval(`+[...document.querySelectorAll('[data-testid="message"]')].pop().dataset.id`, &id)
	return id
}

// msgSel selects something inside the message with id (or the message itself).
func msgSel(id int, inner string) string {
	return strings.TrimSpace(fmt.Sprintf(`[data-testid="message"][data-id="%d"] %s`, id, inner))
}

// setLang switches p's page language as the language menu does, and
// opens room roomID again.
func (p *uiPerson) setLang(lang string, roomID int) {
	p.t.Helper()
	p.eval(fmt.Sprintf(`(() => { localStorage.setItem("stompbox_lang", %[1]q); document.cookie = "stompbox_lang=%[1]s; Path=/"; return true })()`, lang), nil)
	p.openRoom(roomID)
	p.waitFor("page in "+lang, fmt.Sprintf(`document.documentElement.lang === %q && document.documentElement.dataset.ready === "1"`, lang))
}

func TestUIMessageChanges(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	browser, alice, bob, roomID := twoInARoom(t, srv.URL(), "team")
	alice.openRoom(roomID)
	bob.waitConnected()

	var placeholder string
	alice.eval(`document.querySelector('[data-testid="composer"]').placeholder`, &placeholder)
	if placeholder != "Message #team" {
		t.Errorf("composer placeholder %q, want %q", placeholder, "Message #team")
	}

	t.Log("step: the admin page shows the sign-up mode; invitation links have a copy button and say who invited")
	alice.open("/admin")
	pressed := `document.querySelector('[data-testid="registration-open"]').getAttribute("aria-pressed") + "/" + document.querySelector('[data-testid="registration-invite"]').getAttribute("aria-pressed")`
	alice.waitFor("open pressed", pressed+` === "true/false" && document.querySelectorAll('[data-testid="room-row"]').length > 0`) // rows: app.js has wired the buttons
	alice.click(testIDSel("registration-invite"))
	alice.waitFor("invite pressed", pressed+` === "false/true"`)
	alice.click(testIDSel("create-invite"))
	alice.waitFor("invite link", `document.querySelector('[data-testid="invite-link"]').value.includes("invite=")`)
	alice.do(chromedp.Click(chromedp.CSS(testIDSel("copy-invite"))))
	alice.waitFor("copied", `document.querySelector('[data-testid="signup-status"]').textContent === "The link is copied."`)
	var invite string
	alice.eval(`document.querySelector('[data-testid="invite-link"]').value`, &invite)
	carol := newUIPerson(t, browser, "carol", srv.URL(), "")
	carol.do(chromedp.Navigate(invite))
	carol.waitFor("invite note", fmt.Sprintf(`document.querySelector('[data-testid="invite-note"]').textContent.trim() === %s`,
		jsString("Alice 님 invited you to the team chat at "+strings.Trim(strings.TrimPrefix(srv.URL(), "http://"), "/")+".")))
	alice.openRoom(roomID)

	t.Log("step: edit, seen live")
	alice.say("Lunch at noon?")
	alice.waitText("Lunch at noon?")
	bob.waitText("Lunch at noon?")
	orig := alice.lastMessageID()
	alice.click(msgSel(orig, testIDSel("msg-edit")))
	alice.waitFor("edit mode", `document.querySelector('[data-testid="composer"]').value === "Lunch at noon?" && !document.querySelector('[data-testid="composer-mode"]').hidden`)
	alice.fill("composer", "Lunch at one?")
	alice.pressEnter(false)
	bob.waitFor("edit seen", fmt.Sprintf(`document.querySelector(%s).textContent === "Lunch at one?" && document.querySelector(%s)`,
		jsString(msgSel(orig, testIDSel("message-text"))), jsString(msgSel(orig, testIDSel("message-edited")))))

	alice.waitFor("own edit", fmt.Sprintf(`document.querySelector(%s)`, jsString(msgSel(orig, testIDSel("message-edited")))))

	t.Log("step: reactions, seen live with who")
	alice.click(msgSel(orig, testIDSel("msg-react")))
	alice.waitFor("picker", `document.querySelector('[data-testid="emoji-picker"]')`)
	alice.click(msgSel(orig, `[data-testid="emoji-option"]`)) // the first, 👍
	reaction := jsString(msgSel(orig, `[data-testid="reaction"][data-emoji="👍"]`))
	bob.waitFor("reaction seen", fmt.Sprintf(`(() => { const r = document.querySelector(%s); return r && r.textContent === "👍1" && r.title.includes("Alice 님") && r.getAttribute("aria-pressed") === "false" })()`, reaction))
	bob.click(msgSel(orig, `[data-testid="reaction"][data-emoji="👍"]`))
	alice.waitFor("second reaction seen", fmt.Sprintf(`(() => { const r = document.querySelector(%s); return r && r.textContent === "👍2" && r.title.includes("Bob 님") && r.getAttribute("aria-pressed") === "true" })()`, reaction))

	t.Log("step: a reply quotes the original, which scrolled out of the loaded history")
	bobUser, err := srv.auth.UserByName(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		text := fmt.Sprintf("Build #%d passed ✔", 1200+i)
		if i%2 == 1 {
			text = fmt.Sprintf("배포 %d번 완료", i)
		}
		if _, err := srv.chat.Post(context.Background(), bobUser, chat.Input{Type: proto.MsgTalk, RoomID: int64(roomID), Message: text}); err != nil {
			t.Fatal(err)
		}
	}
	bob.waitText("배포 59번 완료")
	bob.click(msgSel(orig, testIDSel("msg-reply")))
	bob.waitFor("reply mode", `document.querySelector('[data-testid="composer-mode-text"]').textContent.includes("Lunch at one?")`)
	bob.say("One works for me")
	bob.waitText("One works for me")
	reply := bob.lastMessageID()
	alice.openRoom(roomID) // a fresh page: only the newest page of history
	alice.waitText("One works for me")
	var loaded bool
	alice.eval(fmt.Sprintf(`!!document.querySelector(%s)`, jsString(msgSel(orig, ""))), &loaded)
	if loaded {
		t.Fatal("the original is in the first page; the scroll-to test would prove nothing")
	}
	alice.waitFor("quote", fmt.Sprintf(`document.querySelector(%s).textContent.includes("Lunch at one?")`, jsString(msgSel(reply, testIDSel("reply-quote")))))
	alice.click(msgSel(reply, testIDSel("reply-quote")))
	alice.waitFor("original shown", fmt.Sprintf(`(() => { const n = document.querySelector(%s); if (!n) return false;
		const r = n.getBoundingClientRect(), h = document.querySelector('[data-testid="history"]').getBoundingClientRect();
		return n.classList.contains("highlight") && r.top >= h.top && r.bottom <= h.bottom })()`, jsString(msgSel(orig, ""))))

	t.Log("step: Markdown, with a copy button on code")
	alice.eval(`(() => { const h = document.querySelector('[data-testid="history"]'); h.scrollTop = h.scrollHeight; return true })()`, nil)
	alice.say("**Deploy** _today_ ~~tomorrow~~, see `make deploy`:\n```\nmake deploy ENV=prod\n```\n> quoted\n- one\n- two")
	alice.waitFor("own markdown", `[...document.querySelectorAll('[data-testid="message"]')].pop().querySelector('[data-testid="code-block"]')`)
	md := alice.lastMessageID()
	bob.waitFor("markdown", fmt.Sprintf(`(() => { const m = document.querySelector(%s); return m && m.querySelector("strong").textContent === "Deploy" &&
		m.querySelector("em").textContent === "today" && m.querySelector("del").textContent === "tomorrow" &&
		m.querySelector("p code").textContent === "make deploy" && m.querySelector('[data-testid="code-block"] pre').textContent === "make deploy ENV=prod" &&
		m.querySelector("blockquote").textContent === "quoted" && m.querySelectorAll("ul li").length === 2 })()`, jsString(msgSel(md, ""))))
	bob.do(chromedp.Click(chromedp.CSS(msgSel(md, testIDSel("copy-code")))))
	bob.waitFor("copied", fmt.Sprintf(`document.querySelector(%s).textContent === "Copied"`, jsString(msgSel(md, testIDSel("copy-code")))))
	// Any emoji can be typed into the picker; a text symbol shows in
	// screenshots made on machines without an emoji font.
	bob.click(msgSel(md, testIDSel("msg-react")))
	bob.fill("emoji-input", "★")
	bob.do(chromedp.Focus(testIDSel("emoji-input")))
	bob.pressEnter(false)
	alice.waitFor("reaction on markdown", fmt.Sprintf(`document.querySelector(%s)`, jsString(msgSel(md, `[data-testid="reaction"][data-emoji="★"]`))))

	t.Log("step: screenshots")
	for _, p := range []*uiPerson{alice, bob} {
		p.eval(`(() => { const h = document.querySelector('[data-testid="history"]'); h.scrollTop = h.scrollHeight; return true })()`, nil)
	}
	docScreenshot(t, bob.ctx, "messages-en-desktop")
	bob.do(chromedp.EmulateViewport(390, 780, chromedp.EmulateMobile))
	bob.waitFor("phone layout", `document.querySelector('[data-testid="sidebar"]').getBoundingClientRect().right <= 0`) // the drawer has slid away
	bob.eval(`(() => { const h = document.querySelector('[data-testid="history"]'); h.scrollTop = h.scrollHeight; return true })()`, nil)
	docScreenshot(t, bob.ctx, "messages-en-phone")

	t.Log("step: on a phone, tapping the open room closes the drawer")
	bob.click(testIDSel("drawer-toggle"))
	bob.waitFor("drawer open", `document.body.classList.contains("drawer-open")`)
	bob.click(fmt.Sprintf(`[data-testid="room-list"] [data-room-id="%d"]`, roomID))
	bob.waitFor("drawer closed", `!document.body.classList.contains("drawer-open")`)

	bob.setLang("ko", roomID)
	bob.waitFor("korean placeholder", `document.querySelector('[data-testid="composer"]').placeholder === "#team에 메시지 보내기"`)
	bob.waitText("One works for me")
	bob.eval(`(() => { const h = document.querySelector('[data-testid="history"]'); h.scrollTop = h.scrollHeight; return true })()`, nil)
	docScreenshot(t, bob.ctx, "messages-ko-phone")
	bob.do(chromedp.EmulateViewport(browserWindowWidth, browserWindowHeight))
	bob.eval(`(() => { const h = document.querySelector('[data-testid="history"]'); h.scrollTop = h.scrollHeight; return true })()`, nil)
	docScreenshot(t, bob.ctx, "messages-ko-desktop")

	bob.click(msgSel(reply, testIDSel("reply-quote"))) // loads the original again
	bob.waitFor("original loaded", fmt.Sprintf(`document.querySelector(%s)`, jsString(msgSel(orig, "")+".highlight")))

	t.Log("step: delete, seen live, and the reply's quote follows")
	alice.click(msgSel(orig, testIDSel("msg-delete")))
	alice.waitFor("confirm", fmt.Sprintf(`document.querySelector(%s).dataset.confirm === "1"`, jsString(msgSel(orig, testIDSel("msg-delete")))))
	alice.click(msgSel(orig, testIDSel("msg-delete")))
	bob.waitFor("placeholder seen", fmt.Sprintf(`document.querySelector(%s) && !document.querySelector(%s) &&
		document.querySelector(%s).textContent.includes("원래 메시지는 삭제되었습니다")`,
		jsString(msgSel(orig, testIDSel("message-deleted"))), jsString(msgSel(orig, testIDSel("reaction"))), jsString(msgSel(reply, testIDSel("reply-quote")))))

	t.Log("step: the server goes away: nobody shown online, and its text in the page's language")
	bob.waitFor("online list", `document.querySelectorAll('[data-testid="online-user"]').length > 0`)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := srv.broker.Close(ctx); err != nil {
		t.Fatal(err)
	}
	bob.waitFor("korean shutdown text", `document.querySelector('[data-testid="toasts"]').textContent.includes("서버가 다시 시작하는 중입니다")`)
	var toasts string
	bob.eval(`document.querySelector('[data-testid="toasts"]').textContent`, &toasts)
	if strings.Contains(toasts, "shutting down") {
		t.Errorf("the Korean page shows the server's English: %q", toasts)
	}
	bob.waitFor("presence cleared", `document.querySelectorAll('[data-testid="online-user"]').length === 0`)

	if n := alice.dialogs.Load() + bob.dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened", n)
	}
}

// xssFixture reads testdata/xss/owasp-filter-evasion.txt: one string a
// line, "# " lines are comments.
func xssFixture(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "xss", "owasp-filter-evasion.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "# ") {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 40 {
		t.Fatalf("only %d XSS strings in the fixture", len(out))
	}
	return out
}

// markdownTricks are Markdown-specific attempts at script or odd links.
var markdownTricks = []string{
	"[x](javascript:alert(1))",
	"[x](JaVaScRiPt:alert(1))",
	"[x]( javascript:alert(1))",
	"[x](java\tscript:alert(1))",
	"[x](&#106;avascript:alert(1))",
	"[x](data:text/html,<script>alert(1)</script>)",
	"[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
	"[x](vbscript:msgbox(1))",
	"[x](//evil.example/path)",
	"[x](/relative)",
	"[[x](javascript:alert(1))](https://example.com)",
	"[a [b [c](javascript:alert(1))]](https://example.com)",
	"[x](https://example.com \"title\" onclick=alert(1))",
	"[`code`](javascript:alert(1))",
	"![img](https://example.com/x.png)",
	"![x](javascript:alert(1))",
	"<img src=x onerror=window.__xss=1>",
	"**<img src=x onerror=window.__xss=1>**",
	"`<script>window.__xss=1</script>`",
	"```\n<script>window.__xss=1</script>\n```",
	"> <svg onload=window.__xss=1>",
	"- <a href=\"javascript:alert(1)\">x</a>",
	"&#106;avascript:alert(1)",
	"https://example.com/\"onmouseover=\"alert(1)",
	"mailto:a@example.com?body=<script>",
	"[mail](mailto:someone@example.com)",
	"[ok](https://example.com/a_(b))",
	"*" + strings.Repeat("*_~`[", 200),
	strings.Repeat("> ", 50) + "deep",
	strings.Repeat("[", 500) + "x" + strings.Repeat("](https://e.example)", 100),
}

// randomMarkdown returns n strings built from pieces that matter to a
// Markdown or HTML parser, so the property test reaches odd corners.
func randomMarkdown(r *rand.Rand, n int) []string {
	pieces := []string{"<", ">", "\"", "'", "&", "#", ";", "[", "]", "(", ")", "*", "**", "_", "__", "~~", "`", "```", "\n", " ", "\t",
		"> ", "- ", "1. ", "@alice", "http://", "https://", "mailto:", "javascript:", "data:", "JaVaScRiPt:", "&#106;", "<img src=x onerror=window.__xss=1>",
		"<script>", "</script>", "onerror=", "a", "b", "가", "😀", "\\", "/", ":", "%00", "\u202e", "\u0000"}
	out := make([]string, n)
	for i := range out {
		var b strings.Builder
		for range 1 + r.IntN(60) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		out[i] = b.String()
	}
	return out
}

// markdownCheckJS renders each case into a detached-then-attached element
// and reports every element, attribute or href outside the renderer's
// allow-list, and whether any payload ran (window.__xss).
const markdownCheckJS = `(cases) => new Promise((resolve) => {
	const allowed = window.StompboxMarkdown.ALLOWED;
	const bad = [];
	const host = document.createElement("div");
	document.body.append(host);
	for (const s of cases) {
		const d = document.createElement("div");
		window.StompboxMarkdown.render(d, s, { isMention: () => true, t: (k) => k });
		host.append(d);
		for (const n of d.querySelectorAll("*")) {
			const attrs = allowed[n.tagName];
			if (!attrs) { bad.push(n.tagName + " from " + JSON.stringify(s)); continue; }
			for (const a of n.attributes) if (!attrs.includes(a.name)) bad.push(n.tagName + "[" + a.name + "] from " + JSON.stringify(s));
			if (n.tagName === "A" && !/^(https?:\/\/|mailto:|#)/i.test(n.getAttribute("href") || "")) bad.push("href " + n.getAttribute("href") + " from " + JSON.stringify(s));
		}
	}
	setTimeout(() => { host.remove(); resolve({ bad: bad.slice(0, 20), count: bad.length, ran: window.__xss || 0 }); }, 300);
})`

// TestUIMarkdownXSS is the renderer's property test and the XSS test of
// every field people can fill: the OWASP strings, Markdown tricks and
// random strings render to allow-listed DOM only; and the OWASP strings as
// messages, a display name and a room name run nothing for the reader.
func TestUIMarkdownXSS(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	browser := newBrowser(t)
	fixture := xssFixture(t)
	seed := time.Now().UnixNano()
	t.Logf("random seed %d", seed)
	cases := append(append(append([]string{}, fixture...), markdownTricks...), randomMarkdown(rand.New(rand.NewPCG(uint64(seed), 17)), 400)...)

	mallory := newUIPerson(t, browser, "mallory", srv.URL(), "")
	mallory.register(true)
	in, _ := json.Marshal(cases)
	var res struct {
		Bad   []string
		Count int
		Ran   int
	}
	mallory.eval("("+markdownCheckJS+")("+string(in)+")", &res)
	for _, b := range res.Bad {
		t.Errorf("not allowed: %s", b)
	}
	if res.Count > len(res.Bad) {
		t.Errorf("… and %d more", res.Count-len(res.Bad))
	}
	if res.Ran != 0 {
		t.Errorf("a payload ran in the renderer test")
	}

	t.Log("step: what a link may be")
	var links map[string]string
	mallory.eval(`(() => {
		const out = {};
		for (const s of ["[x](javascript:alert(1))", "[x](JaVaScRiPt:alert(1))", "[x](data:text/html,hi)", "[x](&#106;avascript:alert(1))",
			"[ok](https://example.com/a_(b))", "[mail](mailto:a@example.com)", "see http://example.com/x."]) {
			const d = document.createElement("div");
			window.StompboxMarkdown.render(d, s, {});
			const a = d.querySelector("a");
			out[s] = a ? a.getAttribute("href") : "";
		}
		return out })()`, &links)
	want := map[string]string{
		"[x](javascript:alert(1))": "", "[x](JaVaScRiPt:alert(1))": "", "[x](data:text/html,hi)": "", "[x](&#106;avascript:alert(1))": "",
		"[ok](https://example.com/a_(b))": "https://example.com/a_(b)", "[mail](mailto:a@example.com)": "mailto:a@example.com",
		"see http://example.com/x.": "http://example.com/x",
	}
	for s, w := range want {
		if links[s] != w {
			t.Errorf("%q links to %q, want %q", s, links[s], w)
		}
	}

	t.Log("step: the strings in every field another person sees")
	ctx := context.Background()
	evil := `<img src=x onerror=window.__xss=1>`
	u, err := srv.auth.Register(ctx, auth.Registration{Username: "eve", DisplayName: evil, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	r, err := srv.chat.CreateRoom(ctx, u, chat.NewRoom{Name: `"><svg onload=window.__xss=1>`})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(fixture, markdownTricks[:20]...) {
		if _, err := srv.chat.Post(ctx, u, chat.Input{Type: proto.MsgTalk, RoomID: r.ID, Message: s}); err != nil {
			t.Fatalf("post %q: %v", s, err)
		}
	}
	reader := newUIPerson(t, browser, "reader", srv.URL(), "")
	reader.register(false)
	reader.open(fmt.Sprintf("/#room-%d", r.ID))
	reader.waitFor("room", fmt.Sprintf(`document.querySelector('[data-testid="room-title"]').textContent === %s`, jsString(r.Name)))
	reader.waitFor("history", `document.querySelectorAll('[data-testid="message"]').length >= 50`)
	reader.waitFor("names", fmt.Sprintf(`[...document.querySelectorAll('[data-testid="message-sender"]')].some(e => e.textContent === %s)`, jsString(evil)))
	var found struct {
		Bad []string
		Ran int
	}
	reader.eval(`new Promise((resolve) => setTimeout(() => {
		const allowed = window.StompboxMarkdown.ALLOWED;
		const bad = [];
		for (const n of document.querySelectorAll('[data-testid="message-text"] *')) {
			const attrs = allowed[n.tagName];
			if (!attrs) bad.push(n.tagName);
			else for (const a of n.attributes) if (!attrs.includes(a.name)) bad.push(n.tagName + "[" + a.name + "]");
		}
		// The page's own icons (class icon: buttons, the private-room lock,
		// the reply arrow; a file card's) are the only SVG it draws; nothing
		// else may be an image, frame or script.
		for (const n of document.querySelectorAll("body img, body svg:not(svg.icon):not(svg.file-icon), body iframe, body object, body embed, body script:not([src]):not([type])")) bad.push("page " + n.tagName);
		resolve({ bad, ran: window.__xss || 0 });
	}, 500))`, &found)
	for _, b := range found.Bad {
		t.Errorf("reader's page has %s", b)
	}
	if found.Ran != 0 || mallory.dialogs.Load()+reader.dialogs.Load() != 0 {
		t.Errorf("a payload ran: __xss %d, dialogs %d", found.Ran, mallory.dialogs.Load()+reader.dialogs.Load())
	}
}
