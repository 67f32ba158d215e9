package main

// Chromium test of files and pictures (issue 17): two people in a room; one
// pastes a screenshot, the other sees the thumbnail live and opens it full
// size; a 100 MB upload shows its progress bar moving, and a cancelled one
// leaves nothing on the server; three files dropped at once, named like
// markup, show their names as text. Screenshots of the feature in English and
// Korean, desktop and phone, go to artifacts/screenshots.

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

// uiBigUploadMiB is the size of the large uploads: what the issue asks
// for, generated in the page so the test needs no fixture file.
const uiBigUploadMiB = 100

// pasteScreenshotJS draws an 800×500 picture on a canvas and pastes it into
// the composer as the clipboard of a screenshot would.
const pasteScreenshotJS = `(async () => {
	const c = document.createElement("canvas");
	c.width = 800; c.height = 500;
	const g = c.getContext("2d");
	g.fillStyle = "#0b57d0"; g.fillRect(0, 0, 800, 500);
	g.fillStyle = "#ffd23f"; g.fillRect(40, 300, 300, 150);
	g.fillStyle = "#ffffff"; g.font = "bold 56px sans-serif"; g.fillText("스크린샷 · screenshot", 40, 140);
	const blob = await new Promise((resolve) => c.toBlob(resolve, "image/png"));
	const dt = new DataTransfer();
	dt.items.add(new File([blob], "image.png", {type: "image/png"}));
	const ta = document.querySelector('[data-testid="composer"]');
	ta.focus();
	ta.dispatchEvent(new ClipboardEvent("paste", {clipboardData: dt, bubbles: true, cancelable: true}));
	return true;
})()`

// dropBigFileJS drops a generated file of %d MiB named %q on the room. With
// cancel set, the page presses the upload's Cancel at its first progress
// event, mid-transfer. Every progress percentage seen is kept in
// window.__progress.
const dropBigFileJS = `(() => {
	const cancel = %t;
	window.__progress = [];
	const bytes = new Uint8Array(%d * 1048576);
	for (let i = 0; i < bytes.length; i += 4096) bytes[i] = i & 255;
	const dt = new DataTransfer();
	dt.items.add(new File([bytes], %q, {type: "application/octet-stream"}));
	const tray = document.querySelector('[data-testid="uploads"]');
	const seen = new MutationObserver(() => {
		const bars = tray.querySelectorAll('[data-testid="upload-progress"]');
		const bar = bars[bars.length - 1];
		if (!bar) return;
		const pct = +bar.dataset.percent;
		if (window.__progress[window.__progress.length - 1] !== pct) window.__progress.push(pct);
		if (cancel && pct > 0 && pct < 100) {
			seen.disconnect();
			bar.closest('[data-testid="upload"]').querySelector('[data-testid="upload-cancel"]').click();
		}
	});
	seen.observe(tray, {subtree: true, attributes: true, attributeFilter: ["data-percent"], childList: true});
	const room = document.querySelector('[data-testid="room"]');
	room.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true, cancelable: true}));
	room.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
	return true;
})()`

// phoneLayoutSettled holds once the viewport is a phone's and the room list
// drawer has finished sliding away.
const phoneLayoutSettled = `window.innerWidth === 390 && document.querySelector('[data-testid="sidebar"]').getBoundingClientRect().right <= 0 &&
	document.getAnimations().length === 0`

func TestUIFiles(t *testing.T) {
	t.Parallel()
	srv := startServer(t, func(c *Config) { c.MaxUploadMiB = 2 * uiBigUploadMiB })
	_, alice, bob, roomID := twoInARoom(t, srv.URL(), "사진 pictures")
	bob.waitConnected()
	alice.openRoom(roomID)

	countFiles := func() int {
		var n int
		if err := srv.store.Rdb.QueryRow(`SELECT count(*) FROM files`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	{
		t.Log("step: a pasted screenshot, seen live and opened full size")
		alice.eval(pasteScreenshotJS, nil)
		alice.waitFor("screenshot uploaded", `document.querySelector('[data-testid="upload"][data-state="done"]')`)
		alice.insertText("붙여넣은 스크린샷 · a pasted screenshot")
		alice.pressEnter(false)
		thumb := `document.querySelector('[data-testid="message"]:last-child [data-testid="attachment-thumb"] img')`
		bob.waitFor("thumbnail live", thumb+` && `+thumb+`.complete && `+thumb+`.naturalWidth === 400 && `+thumb+`.naturalHeight === 250`)
		alice.waitFor("uploads tray emptied", `document.querySelector('[data-testid="uploads"]').hidden`)
		bob.click(`[data-testid="message"]:last-child [data-testid="attachment-thumb"]`)
		full := `document.querySelector('[data-testid="lightbox-img"]')`
		bob.waitFor("full size", `document.querySelector('[data-testid="lightbox"]').open && `+full+`.complete && `+full+`.naturalWidth === 800 && `+full+`.naturalHeight === 500`)
		screenshot(t, bob.ctx, "lightbox")
		bob.click(testIDSel("lightbox-close"))
		bob.waitFor("lightbox closed", `!document.querySelector('[data-testid="lightbox"]').open`)
	}

	{
		t.Logf("step: a %d MiB upload with its progress bar", uiBigUploadMiB)
		alice.eval(fmt.Sprintf(dropBigFileJS, false, uiBigUploadMiB, "큰 파일 big.bin"), nil)
		alice.waitFor("big upload done", `document.querySelector('[data-testid="upload"][data-state="done"]')`)
		var seen []int
		alice.eval(`window.__progress`, &seen)
		between := 0
		for _, p := range seen {
			if p > 0 && p < 100 {
				between++
			}
		}
		t.Logf("progress percentages seen: %v", seen)
		if between < 2 {
			t.Errorf("progress bar did not move: %v", seen)
		}
		screenshot(t, alice.ctx, "upload-done")
	}

	{
		t.Log("step: a cancelled upload leaves nothing behind")
		before := countFiles()
		alice.eval(fmt.Sprintf(dropBigFileJS, true, uiBigUploadMiB, "cancelled.bin"), nil)
		alice.waitFor("cancelled", `[...document.querySelectorAll('[data-testid="upload-name"]')].every(e => e.textContent !== "cancelled.bin")`)
		checkFor(t, "temporary upload removed", func() bool {
			es, err := os.ReadDir(srv.files.Tmp)
			return err == nil && len(es) == 0
		})
		if n := countFiles(); n != before {
			t.Errorf("%d files after the cancelled upload, want %d", n, before)
		}
	}

	{
		t.Log("step: the big file is sent and shown as a card")
		alice.pressEnterInComposer()
		card := `[...document.querySelectorAll('[data-testid="attachment-file"]')].find(e => e.querySelector('[data-testid="attachment-name"]').textContent === "큰 파일 big.bin")`
		bob.waitFor("file card", card+` && `+card+`.textContent.includes("100 MB")`)
	}

	{
		t.Log("step: screenshots, English and Korean, desktop and phone")
		screenshot(t, alice.ctx, "files-en-desktop")
		alice.do(chromedp.EmulateViewport(390, 844))
		alice.waitFor("phone layout", phoneLayoutSettled)
		screenshot(t, alice.ctx, "files-en-phone")
		alice.do(chromedp.EmulateViewport(browserWindowWidth, browserWindowHeight))
		bob.eval(`(() => { localStorage.setItem("stompbox_lang", "ko"); document.cookie = "stompbox_lang=ko; path=/"; return true })()`, nil)
		bob.openRoom(roomID)
		bob.waitFor("korean", `document.documentElement.lang === "ko" && document.querySelector('[data-testid="attachment-thumb"] img').complete`)
		screenshot(t, bob.ctx, "files-ko-desktop")
		bob.do(chromedp.EmulateViewport(390, 844))
		bob.waitFor("phone layout", phoneLayoutSettled)
		screenshot(t, bob.ctx, "files-ko-phone")
		bob.do(chromedp.EmulateViewport(browserWindowWidth, browserWindowHeight))
	}

	{
		t.Log("step: several files at once, named like markup, show as text")
		names := []string{`<img src=x onerror=alert('xss-img')>.png`, `<svg onload=alert(1)>.svg`, `javascript:alert(1) 회의록.txt`}
		alice.eval(fmt.Sprintf(`(() => {
			const dt = new DataTransfer();
			for (const n of %s) dt.items.add(new File(["not a picture: " + n], n, {type: "image/png"}));
			const room = document.querySelector('[data-testid="room"]');
			room.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true, cancelable: true}));
			room.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
			return true })()`, jsValue(names)), nil)
		alice.waitFor("three uploads done", `document.querySelectorAll('[data-testid="upload"][data-state="done"]').length === 3`)
		alice.pressEnterInComposer()
		bob.waitFor("three cards", fmt.Sprintf(`(() => { const shown = [...document.querySelectorAll('[data-testid="attachment-name"]')].map(e => e.textContent);
			return %s.every(n => shown.includes(n)) })()`, jsValue(names)))
		var imgs, thumbs int
		bob.eval(`document.querySelectorAll('[data-testid="messages"] img').length`, &imgs)
		bob.eval(`document.querySelectorAll('[data-testid="attachment-thumb"] img').length`, &thumbs)
		if imgs != thumbs {
			t.Errorf("%d img elements for %d thumbnails: a file name became markup", imgs, thumbs)
		}
	}

	alice.checkAPIErrors()
	bob.checkAPIErrors()
	if n := alice.dialogs.Load() + bob.dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened", n)
	}
}

// pressEnterInComposer focuses the composer and presses Enter, sending what
// is there (here: only attachments).
func (p *uiPerson) pressEnterInComposer() {
	p.t.Helper()
	p.do(chromedp.Focus(testIDSel("composer")))
	p.pressEnter(false)
}

// jsValue is v as a JavaScript literal (its JSON).
func jsValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
