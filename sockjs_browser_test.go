package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// testPageHandler serves testdata/browser under /__test/ on the server's own
// origin and everything else from the server.
func testPageHandler(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /__test/", http.StripPrefix("/__test/", http.FileServer(http.Dir("testdata/browser"))))
	mux.Handle("/", next)
	return mux
}

// TestSockJSTransportsInChromium is the seed's fallback promise, checked with
// the real clients: sockjs-client and @stomp/stompjs in Chromium, forced to
// each SockJS transport in turn, complete SUBSCRIBE, SEND and MESSAGE with a
// Korean body and a 32 KiB body.
func TestSockJSTransportsInChromium(t *testing.T) {
	t.Parallel()
	srv := startServerWith(t, testPageHandler)
	browser := newBrowser(t)
	korean := "안녕하세요! 오늘 회의는 3시입니다 🙂"
	big := strings.Repeat("가나다라마바사아자차카타파하", 32<<10/42+1)[:32<<10-32<<10%3] // 32 KiB of UTF-8 Korean, whole runes
	transports := []string{"websocket", "xhr-streaming", "xhr-polling", "eventsource", "iframe-htmlfile", "iframe-xhr-polling", "jsonp-polling"}
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			ctx := newBrowserContext(t, browser, tr)
			if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL()+"__test/sockjs-stomp.html")); err != nil {
				t.Fatal(err)
			}
			var res struct {
				Transport string   `json:"transport"`
				Bodies    []string `json:"bodies"`
			}
			js := fmt.Sprintf("window.roundTrip(%q, [%q, %q])", tr, korean, big)
			if err := evalAsync(ctx, js, &res); err != nil {
				t.Fatal(err)
			}
			if res.Transport != tr {
				t.Fatalf("SockJS used %q, want %q", res.Transport, tr)
			}
			if len(res.Bodies) != 2 || res.Bodies[0] != korean || res.Bodies[1] != big {
				t.Fatalf("bodies came back changed: %d of them, lengths %v", len(res.Bodies), lens(res.Bodies))
			}
		})
	}
	checkFor(t, "sessions to end", func() bool { return srv.broker.SessionCount() == 0 })
}

func lens(ss []string) []int {
	out := make([]int, len(ss))
	for i, s := range ss {
		out[i] = len(s)
	}
	return out
}
