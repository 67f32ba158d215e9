package main

// Chromium test of issue 25's items 2 to 4, Alice in English on a desktop
// and Bob in Korean on a phone: a send confirmed at once never shows as
// waiting; notices never cover the message box or Send; with the server
// and the network gone, the phone's header says "offline", and a reload
// shows the messages that arrived live before (the worker keeps them);
// messages typed then show in the room, waiting, with retry and cancel,
// and the kept ones are sent once when the server is back.

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

// flashWatchJS records in window.__flashed whether the page ever shows a
// message as waiting (the outbox line or a waiting message in the room).
const flashWatchJS = `(() => {
	window.__flashed = false;
	const check = () => {
		const line = document.querySelector('[data-testid="outbox"]');
		if ((line && !line.hidden) || document.querySelector('[data-testid="pending-message"]')) window.__flashed = true;
	};
	new MutationObserver(check).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["hidden"] });
	return true;
})()`

// noticesClearJS is true when at least one notice shows and none overlaps
// the message box or the Send button.
const noticesClearJS = `(() => {
	const box = (s) => document.querySelector(s).getBoundingClientRect();
	const hit = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
	const toasts = [...document.querySelectorAll(".toast")].map((n) => n.getBoundingClientRect());
	window.__toasts = toasts.length;
	return toasts.length > 0 && toasts.every((r) => !hit(r, box('[data-testid="composer"]')) && !hit(r, box('[data-testid="send"]')));
})()`

// connShownJS is true when the connection badge in the room's header is on
// screen and says text.
func connShownJS(text string) string {
	return fmt.Sprintf(`(() => { const n = document.querySelector('[data-testid="conn-state-main"]'); const r = n.getBoundingClientRect();
		return r.width > 0 && r.height > 0 && r.top >= 0 && r.bottom <= innerHeight && getComputedStyle(n).visibility !== "hidden" && n.textContent === %s })()`, jsString(text))
}

func TestUIOfflineRoom(t *testing.T) {
	t.Parallel()
	rs := newRestartableServer(t)
	_, alice, bob, roomID := twoInARoom(t, rs.srv.URL(), "오프라인 room")
	bob.eval(`(() => { localStorage.setItem("stompbox_lang", "ko"); document.cookie = "stompbox_lang=ko; Path=/"; return true })()`, nil)
	people := []*uiPerson{alice, bob}
	lang := map[*uiPerson]string{alice: "en", bob: "ko"}
	for _, p := range people {
		p.openRoom(roomID)
		p.waitFor("service worker", `navigator.serviceWorker.controller !== null`)
		p.openRoom(roomID) // loaded under the worker: the history read is cached
		p.waitFor("history cached", fmt.Sprintf(`caches.open("stompbox-v1").then(c => c.keys()).then(ks => (window.__cached = ks.map(r => new URL(r.url).pathname)) && true) &&
			window.__cached && window.__cached.includes("/api/rooms/%d/messages")`, roomID))
	}
	bob.do(chromedp.EmulateViewport(390, 844))
	bob.waitFor("phone layout", phoneLayoutSettled)

	t.Log("step: a send the server confirms at once never shows as waiting")
	for _, p := range people {
		p.eval(flashWatchJS, nil)
	}
	alice.say("quick from alice")
	bob.say("빠른 메시지")
	alice.waitText("빠른 메시지")
	bob.waitText("quick from alice")
	for _, p := range people {
		p.waitFor("a while after the send", `new Promise((r) => setTimeout(() => r(true), 2000))`)
		var flashed bool
		p.eval(`window.__flashed`, &flashed)
		if flashed {
			t.Errorf("%s: a send confirmed at once showed as waiting", p.name)
		}
	}

	t.Log("step: notices never cover the message box or Send")
	for _, p := range people {
		p.fill("composer", fmt.Sprintf("%04001d", 0)) // one character over the limit: a notice
		p.pressEnter(false)
		p.waitFor("notice clear of the message box and Send ("+lang[p]+")", noticesClearJS)
		p.fill("composer", "")
	}
	bob.waitFor("phone header: connected", `document.querySelector('[data-testid="conn-state-main"]').dataset.state === "connected" && `+connShownJS("연결됨"))

	t.Log("step: live messages, then the server and the network go away")
	bob.say("live from bob")
	alice.say("live from alice")
	for _, p := range people {
		p.waitText("live from bob")
		p.waitText("live from alice")
	}
	rs.stop()
	for _, p := range people {
		p.setOffline(true)
	}
	bob.waitFor("phone header: offline", connShownJS("오프라인"))

	t.Log("step: a reload shows what was on screen, and says offline")
	for _, p := range people {
		p.waitFor("kept for offline", fmt.Sprintf(`caches.open("stompbox-v1").then(c => c.match(location.origin + "/api/rooms/%d/messages?limit=50")).then(r => r ? r.text() : "").then(t => { window.__kept = t; return true }) &&
			window.__kept && window.__kept.includes("live from bob") && window.__kept.includes("live from alice")`, roomID)) // handed to the worker shortly after arriving
		p.reload()
		p.waitFor("cached chat page", fmt.Sprintf(`window.__reloaded === undefined && document.querySelector('[data-testid="chat-app"]') &&
			location.hash === "#room-%d" && !document.querySelector('[data-testid="room"]').hidden`, roomID))
		p.waitText("live from bob")
		p.waitText("live from alice")
		p.waitFor("status offline", `document.querySelector('[data-testid="conn-state"]').dataset.state === "offline"`)
	}
	bob.waitFor("phone header: offline after the reload", connShownJS("오프라인"))

	t.Log("step: typed offline: in the room, waiting, with retry and cancel")
	waiting := map[*uiPerson]string{alice: "Waiting for the connection", bob: "연결을 기다리는 중"}
	for _, p := range people {
		p.say("offline from " + p.name)
		p.say("to cancel from " + p.name)
		p.waitFor("two waiting in the room", fmt.Sprintf(`(() => { const ns = [...document.querySelectorAll('[data-testid="pending-message"]')];
			return ns.length === 2 && ns[0].querySelector('[data-testid="pending-text"]').textContent === %s &&
				ns.every(n => n.querySelector('[data-testid="pending-mark"]').textContent === %s && n.querySelector('[data-testid="pending-retry"]') && n.querySelector('[data-testid="pending-cancel"]')) &&
				ns[1] === document.querySelector('[data-testid="messages"]').lastElementChild })()`, jsString("offline from "+p.name), jsString(waiting[p])))
		p.click(`[data-testid="pending-message"]:last-child [data-testid="pending-cancel"]`)
		p.waitFor("one left", `document.querySelectorAll('[data-testid="pending-message"]').length === 1`)
	}
	docScreenshot(t, alice.ctx, "offline-room")
	docScreenshot(t, bob.ctx, "offline-room-ko-phone")

	t.Log("step: the server and the network are back; the waiting message is sent once, the cancelled one never")
	rs.start()
	for _, p := range people {
		p.setOffline(false)
	}
	for _, p := range people {
		p.waitConnected()
		p.waitFor("nothing waiting", `document.querySelectorAll('[data-testid="pending-message"]').length === 0`)
		for _, q := range people {
			p.waitText("offline from " + q.name)
		}
	}
	for _, p := range people {
		p.waitFor("settled", `new Promise((r) => setTimeout(() => r(true), 1000))`)
		var counts []int
		p.eval(fmt.Sprintf(`[%q, %q, %q, %q].map(s => [...document.querySelectorAll('[data-testid="message-text"]')].filter(e => e.textContent === s).length)`,
			"offline from alice", "offline from bob", "to cancel from alice", "to cancel from bob"), &counts)
		if fmt.Sprint(counts) != "[1 1 0 0]" {
			t.Errorf("%s sees the offline messages %v times, want [1 1 0 0] (sent once, cancelled never)", p.name, counts)
		}
	}
}
