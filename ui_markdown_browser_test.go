package main

// Chromium test of the Markdown renderer's cost on hostile input (issue 22,
// item 9): ui/static/markdown.js used to scan to the end of the message
// from every "[" (and from every "http://" in one long token), so a page of
// messages like "[](" repeated took seconds to render.

import (
	"encoding/json"
	"testing"
)

// markdownHostile are the repeated units of the hostile messages: each
// made the old renderer quadratic (an unclosed link target after every
// "[", a long run of URL characters with a refused host at every start).
var markdownHostile = []string{"[](", "[a](http://[", "http://[", "[", "[x](https://e.example/(", "**a", "_a_", "@a"}

// markdownHostileBound is a generous bound on rendering 50 hostile
// messages of 4,000 characters of one kind: ten times the target
// of 100 ms, so a slow CI machine passes and a quadratic renderer (seconds)
// does not. The figures are logged.
const markdownHostileBound = 1000 // ms

// TestUIMarkdownLinear renders, for each hostile unit, 50 messages of
// 4,000 characters in the page's renderer, and logs how long each batch
// took; each batch must stay under markdownHostileBound.
func TestUIMarkdownLinear(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	browser := newBrowser(t)
	p := newUIPerson(t, browser, "mallory", srv.URL(), "")
	p.register(true)
	units, _ := json.Marshal(markdownHostile)
	var ms []float64
	p.eval(`((units) => {
		const out = [];
		for (const u of units) {
			const text = u.repeat(Math.ceil(4000 / u.length)).slice(0, 4000);
			const host = document.createElement("div");
			const t0 = performance.now();
			for (let i = 0; i < 50; i++) {
				const d = document.createElement("div");
				window.StompboxMarkdown.render(d, text + i, { isMention: () => false, t: (k) => k });
				host.append(d);
			}
			out.push(performance.now() - t0);
		}
		return out;
	})(`+string(units)+`)`, &ms)
	for i, u := range markdownHostile {
		t.Logf("50 messages of %q ×%d (4,000 characters): %.1f ms", u, 4000/len(u), ms[i])
		if ms[i] > markdownHostileBound {
			t.Errorf("50 hostile messages of %q took %.0f ms, over %d ms", u, ms[i], markdownHostileBound)
		}
	}
}
