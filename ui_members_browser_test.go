package main

// Chromium test of the room members of issue 25 (item 1), with the marks
// of item 5: Bob (Korean, on a phone) makes a private room, adds Carol and
// Alice by name with suggestions as he types, and removes Carol; Carol
// (English, desktop) sees the room appear, the member list change live,
// and the room close with a notice when she is removed; Alice leaves and
// Bob's list follows. The private room's lock is drawn, not an emoji.

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// memberNames is a JavaScript expression: the usernames in the open
// member list, sorted, joined by commas.
const memberNames = `[...document.querySelectorAll('[data-testid="member"]')].map(e => e.dataset.username).sort().join(",")`

// openMembers opens the member dialog of the open room.
func (p *uiPerson) openMembers() {
	p.t.Helper()
	p.waitFor("members button", `!document.querySelector('[data-testid="members-toggle"]').hidden`)
	p.click(testIDSel("members-toggle"))
	p.waitFor("members dialog", `document.querySelector('[data-testid="members-dialog"]').open && document.querySelectorAll('[data-testid="member"]').length > 0`)
}

// addMember types part of a name into the member dialog and picks the
// suggestion for username.
func (p *uiPerson) addMember(typed, username string) {
	p.t.Helper()
	p.do(chromedp.Focus(testIDSel("member-add-input")))
	p.insertText(typed)
	sel := fmt.Sprintf(`[data-testid="member-suggestion"][data-username=%q]`, username)
	p.waitFor("suggestion "+username, fmt.Sprintf(`document.querySelector(%s)`, jsString(sel)))
	p.eval(fmt.Sprintf(`(() => { document.querySelector(%s).dispatchEvent(new MouseEvent("mousedown", {bubbles: true, cancelable: true})); return true })()`, jsString(sel)), nil)
	p.waitFor(username+" in the list", fmt.Sprintf(`document.querySelector('[data-testid="member"][data-username=%q]')`, username))
}

func TestUIRoomMembers(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	browser := newBrowser(t)
	alice := newUIPerson(t, browser, "alice", srv.URL(), "") // the administrator
	bob := newUIPerson(t, browser, "bob", srv.URL(), "")
	carol := newUIPerson(t, browser, "carol", srv.URL(), "")
	alice.register(true)
	bob.register(false)
	carol.register(false)

	t.Log("step: bob, in Korean on a phone, makes a private room; its mark is drawn")
	bob.eval(`(() => { localStorage.setItem("stompbox_lang", "ko"); document.cookie = "stompbox_lang=ko; Path=/"; return true })()`, nil)
	bob.open("/")
	bob.waitFor("korean page", `document.documentElement.lang === "ko" && document.documentElement.dataset.ready === "1"`)
	bob.waitConnected()
	bob.click(testIDSel("new-room"))
	bob.fill("room-name", "비밀 plans")
	bob.click(testIDSel("room-private"))
	bob.submit("new-room-form")
	bob.waitFor("room open", `document.querySelector('[data-testid="room-title"]').textContent === "비밀 plans"`)
	roomID := bob.roomID()
	var mark struct {
		SVG   bool
		Text  string
		Emoji bool
	}
	bob.eval(fmt.Sprintf(`(() => { const l = document.querySelector('[data-testid="room-list"] [data-room-id="%d"]');
		return { svg: !!l.querySelector('[data-testid="private-mark"] svg'), text: l.textContent, emoji: /\p{Extended_Pictographic}/u.test(document.querySelector('.app').textContent) } })()`, roomID), &mark)
	if !mark.SVG || mark.Text != "비밀 plans" || mark.Emoji {
		t.Errorf("private room's link: svg %v, text %q, emoji in the page's chrome %v; want a drawn lock and no emoji", mark.SVG, mark.Text, mark.Emoji)
	}
	bob.do(chromedp.EmulateViewport(390, 844))
	bob.waitFor("phone layout", phoneLayoutSettled)
	bob.openMembers()
	bob.waitFor("bob alone, the owner", memberNames+` === "bob" && document.querySelector('[data-testid="member-owner"]').textContent === "방장" &&
		document.querySelector('[data-testid="members-title"]').textContent === "#비밀 plans 참여자" && !document.querySelector('[data-testid="member-add-form"]').hidden`)

	t.Log("step: bob adds carol by typing part of her name; her page lists the room at once")
	bob.addMember("car", "carol")
	carol.waitFor("room listed without a reload", fmt.Sprintf(`document.querySelector('[data-testid="room-list"] [data-room-id="%d"]')`, roomID))
	carol.click(fmt.Sprintf(`[data-testid="room-list"] [data-room-id="%d"]`, roomID))
	carol.waitFor("room open", fmt.Sprintf(`location.hash === "#room-%d" && document.querySelector('[data-testid="member-count"]').textContent === "2"`, roomID))
	carol.openMembers()
	carol.waitFor("carol sees both, no add or remove for her", memberNames+` === "bob,carol" && !document.querySelector('[data-testid="member-remove"]') &&
		document.querySelector('[data-testid="members-title"]').textContent === "Members of #비밀 plans"`)
	bob.waitFor("carol online for bob", `document.querySelector('[data-testid="member"][data-username="carol"]').dataset.online === "true"`)

	t.Log("step: bob adds alice; carol's open list follows live")
	bob.eval(`(() => { const i = document.querySelector('[data-testid="member-add-input"]'); i.value = ""; return true })()`, nil)
	bob.addMember("Ali", "alice")
	carol.waitFor("alice in carol's list", memberNames+` === "alice,bob,carol"`)
	bob.waitFor("a name nobody has", `(() => { const i = document.querySelector('[data-testid="member-add-input"]'); i.value = "zzz"; i.dispatchEvent(new Event("input")); return document.querySelector('[data-testid="member-no-match"]') })()`)
	docScreenshot(t, bob.ctx, "members-ko-phone")
	bob.eval(`(() => { const i = document.querySelector('[data-testid="member-add-input"]'); i.value = ""; i.dispatchEvent(new Event("input")); return true })()`, nil)
	carol.do(chromedp.EmulateViewport(browserWindowWidth, browserWindowHeight))
	docScreenshot(t, carol.ctx, "members")

	t.Log("step: bob removes carol (two clicks); her page leaves the room and says so")
	removeCarol := `[data-testid="member"][data-username="carol"] [data-testid="member-remove"]`
	bob.click(removeCarol)
	bob.waitFor("confirm", fmt.Sprintf(`document.querySelector(%s).textContent === "내보낼까요?"`, jsString(removeCarol)))
	bob.click(removeCarol)
	bob.waitFor("carol gone from bob's list", memberNames+` === "alice,bob"`)
	carol.waitFor("carol's page left the room", fmt.Sprintf(`document.querySelector('[data-testid="room"]').hidden &&
		document.querySelector('[data-testid="room-empty"]').textContent === "You are no longer a member of #비밀 plans: you cannot read it any more." &&
		!document.querySelector('[data-testid="room-list"] [data-room-id="%d"]') && !document.querySelector('[data-testid="members-dialog"]').open`, roomID))
	bob.click(testIDSel("members-close"))
	bob.say("after carol left")
	bob.waitFor("bob's message with its actions", `document.querySelector('[data-testid="message"] [data-testid="msg-reply"]')`)
	var pictographs bool // in the page's own marks: message actions, the reply quote, the header
	bob.eval(`(() => { const app = document.querySelector('.app').cloneNode(true);
		for (const n of app.querySelectorAll('[data-testid="message-text"], .reactions, .emoji-picker, .reply-text')) n.remove();
		return /\p{Extended_Pictographic}/u.test(app.textContent) })()`, &pictographs)
	if pictographs {
		t.Errorf("bob's page draws interface marks with emoji characters")
	}
	var seen bool
	carol.eval(`[...document.querySelectorAll('[data-testid="message-text"]')].some(e => e.textContent === "after carol left")`, &seen)
	if seen {
		t.Errorf("carol's page shows a message posted after her removal")
	}

	t.Log("step: alice leaves; bob's list follows")
	alice.openRoom(roomID)
	alice.click(testIDSel("leave-room"))
	alice.waitFor("alice out", `document.querySelector('[data-testid="room"]').hidden`)
	bob.waitFor("bob's count follows", `document.querySelector('[data-testid="member-count"]').textContent === "1"`)
	bob.openMembers()
	bob.waitFor("alice gone from bob's list", memberNames+` === "bob"`)
	for _, p := range []*uiPerson{alice, bob, carol} {
		p.checkAPIErrors()
	}
}

// TestUIAccessEnded: the page reacts to the server's ACCESS_ENDED on the
// person's own queue (the broker sends it when an op ends their access:
// a removal, or leaving in another tab): it leaves the room and says why,
// in English on a desktop and in Korean on a phone.
func TestUIAccessEnded(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	_, alice, bob, roomID := twoInARoom(t, srv.URL(), "team")
	bob.setLang("ko", roomID)
	bob.do(chromedp.EmulateViewport(390, 844))
	bob.waitFor("phone layout", phoneLayoutSettled)
	alice.openRoom(roomID)
	want := map[*uiPerson]struct{ reason, text string }{
		alice: {"removed", "You are no longer a member of #team: you cannot read it any more."},
		bob:   {"left", "#team 대화방에서 나왔습니다."},
	}
	for _, p := range []*uiPerson{alice, bob} {
		// The page shows "connected" as it sends its SUBSCRIBE frames; a
		// user message sent before the broker has read them reaches
		// nobody, so wait for the broker to hold the subscription.
		for deadline := time.Now().Add(testTimeout); !srv.broker.HasUserSubscribers(p.name, "/user/queue/notifications"); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s's page never subscribed to its notifications", p.name)
			}
		}
		body := fmt.Sprintf(`{"type":"ACCESS_ENDED","roomId":%d,"reason":%q}`, roomID, want[p].reason)
		srv.broker.SendToUser(p.name, "/user/queue/notifications", nil, []byte(body))
		p.waitFor("left the room, saying why", fmt.Sprintf(`document.querySelector('[data-testid="room"]').hidden && location.hash === "" &&
			document.querySelector('[data-testid="room-empty"]').textContent === %s`, jsString(want[p].text)))
	}
}
