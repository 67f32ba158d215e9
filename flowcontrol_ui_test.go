package main

import (
	"fmt"
	"slices"
	"testing"
)

// TestUIPasteHundredLines is issue 15's browser case under the default
// limits: a person sends 100 lines in a burst from the composer (pasting a
// list line by line, Enter after each), faster than -send-rate. The page is
// slowed, not cut off: both people see all 100 messages, in order; the
// sender sees no error toast, gets no text back into the composer and stays
// connected.
func TestUIPasteHundredLines(t *testing.T) {
	t.Parallel()
	srv := startServer(t, defaultLimits)
	_, alice, bob, room := twoInARoom(t, srv.URL(), "붙여넣기 paste")
	bob.openRoom(room)
	alice.openRoom(room)

	// Count every toast the page ever shows: a refused or failed send shows one.
	alice.eval(`(() => {
		window.__toasts = [];
		new MutationObserver((ms) => ms.forEach((m) => m.addedNodes.forEach((n) => window.__toasts.push(n.textContent))))
			.observe(document.querySelector('[data-testid="toasts"]'), {childList: true});
		return true;
	})()`, nil)
	const lines = 100
	want := make([]string, lines)
	for i := range want {
		want[i] = fmt.Sprintf("line %03d", i+1)
	}
	// Enter after each line, in one go: the 100 SENDs leave the page within
	// milliseconds, five times the default burst of one connection.
	alice.eval(fmt.Sprintf(`(() => {
		const box = document.querySelector('[data-testid="composer"]');
		box.focus();
		for (const line of %s) {
			box.value = line;
			box.dispatchEvent(new KeyboardEvent("keydown", {key: "Enter", code: "Enter", keyCode: 13, bubbles: true, cancelable: true}));
		}
		return true;
	})()`, jsValue(want)), nil)

	for _, p := range []*uiPerson{alice, bob} {
		p.waitFor("100 lines", fmt.Sprintf(`document.querySelectorAll('[data-testid="message"] [data-testid="message-text"]').length >= %d`, lines))
		if got := p.texts(); !slices.Equal(got, want) {
			t.Errorf("%s sees %d messages %q…, want the 100 lines in order", p.name, len(got), got[:min(len(got), 5)])
		}
	}
	var toasts []string
	alice.eval(`window.__toasts`, &toasts)
	if len(toasts) > 0 {
		t.Errorf("toasts shown while sending: %q", toasts)
	}
	var composer string
	alice.eval(`document.querySelector('[data-testid="composer"]').value`, &composer)
	if composer != "" {
		t.Errorf("a line came back into the composer as refused: %q", composer)
	}
	alice.waitConnected()
	alice.checkAPIErrors()
	if n := alice.dialogs.Load() + bob.dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened", n)
	}
}
