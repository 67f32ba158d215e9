package sockjs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"stompbox/internal/sockjsframe"
	"stompbox/internal/transport"
	"strings"
	"testing"
	"time"
)

// TestSockJSTransportFraming opens a session on each receiving transport,
// sends ["x"] with the matching send URL and checks every byte that comes
// back, including a control character and an HTML-sensitive message.
func TestSockJSTransportFraming(t *testing.T) {
	tests := []struct {
		kind, method, query string
		delim               string // ends every frame envelope
		prelude             string // "" for none; "*" for "check length only"
		open, msg, special  string // expected envelopes of o, a["x"], a["</script>\u0000"]
		sendPath, sendBody  string
		sendStatus          int
		sendReply           string
		contentType         string
	}{
		{
			kind: "xhr", method: "POST", delim: "\n", open: "o\n", msg: "a[\"x\"]\n", special: "a[\"</script>\\u0000\"]\n",
			sendPath: "xhr_send", sendBody: `["x"]`, sendStatus: 204,
			contentType: "application/javascript; charset=UTF-8",
		},
		{
			kind: "xhr_streaming", method: "POST", delim: "\n", prelude: strings.Repeat("h", 2048) + "\n",
			open: "o\n", msg: "a[\"x\"]\n", special: "a[\"</script>\\u0000\"]\n",
			sendPath: "xhr_send", sendBody: `["x"]`, sendStatus: 204,
			contentType: "application/javascript; charset=UTF-8",
		},
		{
			kind: "eventsource", method: "GET", delim: "\r\n\r\n", prelude: "\r\n",
			open: "data: o\r\n\r\n", msg: "data: a[\"x\"]\r\n\r\n", special: "data: a[\"</script>\\u0000\"]\r\n\r\n",
			sendPath: "xhr_send", sendBody: `["x"]`, sendStatus: 204,
			contentType: "text/event-stream",
		},
		{
			kind: "htmlfile", method: "GET", query: "?c=%63allback", delim: "</script>\r\n", prelude: "*",
			open: "<script>\np(\"o\");\n</script>\r\n", msg: "<script>\np(\"a[\\\"x\\\"]\");\n</script>\r\n",
			special:  "<script>\np(\"a[\\\"\\u003c/script\\u003e\\\\u0000\\\"]\");\n</script>\r\n",
			sendPath: "xhr_send", sendBody: `["x"]`, sendStatus: 204,
			contentType: "text/html; charset=UTF-8",
		},
		{
			kind: "jsonp", method: "GET", query: "?c=cb.x_1", delim: ");\r\n",
			open: "/**/cb.x_1(\"o\");\r\n", msg: "/**/cb.x_1(\"a[\\\"x\\\"]\");\r\n",
			special:  "/**/cb.x_1(\"a[\\\"\\u003c/script\\u003e\\\\u0000\\\"]\");\r\n",
			sendPath: "jsonp_send", sendBody: "d=%5B%22x%22%5D", sendStatus: 200, sendReply: "ok",
			contentType: "application/javascript; charset=UTF-8",
		},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			app, accepted := sockjsRecorder()
			env := newSockJSEnv(t, Options{}, app)
			url := env.sessionURL()
			streaming := tt.prelude != ""

			send := func(body string) {
				t.Helper()
				hdr := map[string]string{}
				if tt.sendPath == "jsonp_send" {
					hdr["Content-Type"] = "application/x-www-form-urlencoded"
				}
				resp, got := env.do("POST", url+"/"+tt.sendPath, body, hdr)
				if resp.StatusCode != tt.sendStatus || got != tt.sendReply {
					t.Fatalf("send: %d %q", resp.StatusCode, got)
				}
				sockjsCheckHeaders(t, resp.Header, map[string]string{
					"Content-Type":  "text/plain; charset=UTF-8",
					"Cache-Control": "no-store, no-cache, no-transform, must-revalidate, max-age=0",
				})
			}

			resp := env.open(tt.method, url+"/"+tt.kind+tt.query, "", nil)
			defer resp.Body.Close()
			sockjsCheckHeaders(t, resp.Header, map[string]string{
				"Content-Type":  tt.contentType,
				"Cache-Control": "no-store, no-cache, no-transform, must-revalidate, max-age=0",
			})
			if streaming && resp.Header.Get("X-Accel-Buffering") != "no" {
				t.Errorf("X-Accel-Buffering %q", resp.Header.Get("X-Accel-Buffering"))
			}
			br := bufio.NewReader(resp.Body)
			switch tt.prelude {
			case "":
			case "*":
				p := sockjsReadUntil(t, br, "\r\n\r\n")
				if len(p) <= 1024 {
					t.Fatalf("htmlfile prelude only %d bytes", len(p))
				}
				sockjsGolden(t, "htmlfile_prelude.html", []byte(strings.TrimRight(p, " \r\n")))
			default:
				if p := sockjsReadUntil(t, br, tt.prelude[len(tt.prelude)-1:]); p != tt.prelude {
					t.Fatalf("prelude %q", p)
				}
			}
			a := sockjsRecv(t, accepted)
			if want := "sockjs-" + strings.ReplaceAll(tt.kind, "_", "-"); a.info.Transport != want {
				t.Errorf("connInfo.Transport %q, want %q", a.info.Transport, want)
			}
			if a.info.Remote == "" {
				t.Error("connInfo.Remote empty")
			}
			next := func(resp **http.Response, br **bufio.Reader, want string) {
				t.Helper()
				if !streaming {
					(*resp).Body.Close()
					*resp = env.open(tt.method, url+"/"+tt.kind+tt.query, "", nil)
					*br = bufio.NewReader((*resp).Body)
				}
				if got := sockjsReadUntil(t, *br, tt.delim); got != want {
					t.Fatalf("frame %q, want %q", got, want)
				}
			}
			// The open frame was the whole first poll.
			if got := sockjsReadUntil(t, br, tt.delim); got != tt.open {
				t.Fatalf("open frame %q, want %q", got, tt.open)
			}
			send(tt.sendBody)
			if m := sockjsRecv(t, a.msgs); string(m) != "x" {
				t.Fatalf("app read %q", m)
			}
			if err := a.tr.Write(context.Background(), [][]byte{[]byte("x")}); err != nil {
				t.Fatal(err)
			}
			next(&resp, &br, tt.msg)
			if err := a.tr.Write(context.Background(), [][]byte{[]byte("</script>\x00")}); err != nil {
				t.Fatal(err)
			}
			next(&resp, &br, tt.special)
			if err := a.tr.Close(3000, "Go away!"); err != nil {
				t.Fatal(err)
			}
			closeFrame := strings.Replace(tt.open, "o", `c[3000,"Go away!"]`, 1)
			if tt.kind == "htmlfile" || tt.kind == "jsonp" {
				closeFrame = strings.Replace(tt.open, "o", `c[3000,\"Go away!\"]`, 1)
			}
			next(&resp, &br, closeFrame)
			if err := sockjsRecv(t, a.end); !errors.Is(err, transport.ErrClosed) {
				t.Fatalf("app Read after Close: %v", err)
			}
			if streaming { // the response ends after the close frame
				if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
					t.Fatalf("after close frame: %q %v", rest, err)
				}
			}
		})
	}
}

// sockjsUnmarshalStrict decodes s into v.
func sockjsUnmarshalStrict(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func TestSockJSSendErrors(t *testing.T) {
	env := newSockJSEnv(t, Options{}, nil)
	url := env.sessionURL()
	env.expectBody("POST", url+"/xhr", "", 200, "o\n")
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	tests := []struct {
		name, path, body string
		hdr              map[string]string
		status           int
		contains         string
	}{
		{"xhr-unknown-session", "/000/nosuch/xhr_send", `["x"]`, nil, 404, ""},
		{"jsonp-unknown-session", "/000/nosuch/jsonp_send", "d=%5B%5D", form, 404, ""},
		{"xhr-broken", "xhr_send", `["x`, nil, 500, "Broken JSON encoding."},
		{"xhr-not-array", "xhr_send", `"x"`, nil, 500, "Broken JSON encoding."},
		{"xhr-not-strings", "xhr_send", `[1]`, nil, 500, "Broken JSON encoding."},
		{"xhr-null-element", "xhr_send", `["a",null]`, nil, 500, "Broken JSON encoding."},
		{"xhr-empty", "xhr_send", ``, nil, 500, "Payload expected."},
		{"xhr-space", "xhr_send", " \n", nil, 500, "Payload expected."},
		{"xhr-too-big", "xhr_send", `["` + strings.Repeat("x", sockjsMaxMessageBytes) + `"]`, nil, 413, ""},
		{"jsonp-broken", "jsonp_send", "d=%5B%22x", form, 500, "Broken JSON encoding."},
		{"jsonp-empty", "jsonp_send", "", form, 500, "Payload expected."},
		{"jsonp-empty-d", "jsonp_send", "d=", form, 500, "Payload expected."},
		{"jsonp-no-d", "jsonp_send", "p=p", form, 500, "Payload expected."},
		{"xhr-empty-array", "xhr_send", `[]`, nil, 204, ""},
		{"jsonp-plain", "jsonp_send", `["%61bc"]`, map[string]string{"Content-Type": "text/plain"}, 200, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := url + "/" + tt.path
			if strings.HasPrefix(tt.path, "/") {
				u = env.base + tt.path
			}
			resp, body := env.do("POST", u, tt.body, tt.hdr)
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.contains) {
				t.Fatalf("%d %q, want %d containing %q", resp.StatusCode, body, tt.status, tt.contains)
			}
		})
	}
	// Only the two valid sends reached the app, in order.
	env.expectBody("POST", url+"/xhr", "", 200, "a[\"%61bc\"]\n")
}

func TestSockJSCallbackValidation(t *testing.T) {
	env := newSockJSEnv(t, Options{}, nil)
	for _, kind := range []string{"htmlfile", "jsonp"} {
		tests := []struct{ query, want string }{
			{"", `"callback" parameter required`},
			{"?c=", `"callback" parameter required`},
			{"?c=%20", `invalid "callback" parameter`},
			{"?c=*", `invalid "callback" parameter`},
			{"?c=abc(", `invalid "callback" parameter`},
			{"?c=abc%28", `invalid "callback" parameter`},
			{"?c=a%3Cb", `invalid "callback" parameter`},
		}
		for _, tt := range tests {
			t.Run(kind+tt.query, func(t *testing.T) {
				resp, body := env.do("GET", env.base+"/a/a/"+kind+tt.query, "", nil)
				if resp.StatusCode != 500 || !strings.Contains(body, tt.want) {
					t.Fatalf("%d %q", resp.StatusCode, body)
				}
			})
		}
	}
	if env.srv.Sessions() != 0 {
		t.Fatalf("rejected requests created %d sessions", env.srv.Sessions())
	}
}

// TestSockJSResponseLimit checks that a streaming response ends once
// ResponseLimit bytes of frames went out, and that the next response picks up
// the session where it stopped.
func TestSockJSResponseLimit(t *testing.T) {
	tests := []struct {
		kind, method, query, delim string
	}{
		{"xhr_streaming", "POST", "", "\n"},
		{"eventsource", "GET", "", "\r\n\r\n"},
		{"htmlfile", "GET", "?c=cb", "</script>\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			env := newSockJSEnv(t, Options{ResponseLimit: 4096}, nil)
			url := env.sessionURL()
			resp := env.open(tt.method, url+"/"+tt.kind+tt.query, "", nil)
			br := bufio.NewReader(resp.Body)
			sockjsReadUntil(t, br, map[string]string{"xhr_streaming": "\n", "eventsource": "\r\n", "htmlfile": "\r\n\r\n"}[tt.kind])
			sent := len(sockjsReadUntil(t, br, tt.delim)) // o counts too
			msg := strings.Repeat("x", 128)
			frames := 0
			for ; sent < 4096; frames++ {
				env.expectBody("POST", url+"/xhr_send", `["`+msg+`"]`, 204, "")
				f := sockjsReadUntil(t, br, tt.delim)
				if !strings.Contains(f, msg) {
					t.Fatalf("frame %q", f)
				}
				sent += len(f)
			}
			if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
				t.Fatalf("response did not end after %d frames: %q %v", frames, rest, err)
			}
			resp.Body.Close()
			// The session lives on: a message sent now reaches the next
			// response.
			env.expectBody("POST", url+"/xhr_send", `["after"]`, 204, "")
			env.expectBody("POST", url+"/xhr", "", 200, "a[\"after\"]\n")
		})
	}
}

func TestSockJSHeartbeat(t *testing.T) {
	env := newSockJSEnv(t, Options{Heartbeat: 20 * time.Millisecond}, nil)
	t.Run("xhr", func(t *testing.T) {
		url := env.sessionURL()
		env.expectBody("POST", url+"/xhr", "", 200, "o\n")
		env.expectBody("POST", url+"/xhr", "", 200, "h\n")
	})
	t.Run("xhr_streaming", func(t *testing.T) {
		resp := env.open("POST", env.sessionURL()+"/xhr_streaming", "", nil)
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		sockjsReadUntil(t, br, "\n")
		for _, want := range []string{"o\n", "h\n", "h\n"} {
			if got := sockjsReadUntil(t, br, "\n"); got != want {
				t.Fatalf("frame %q, want %q", got, want)
			}
		}
	})
}

// TestSockJSSecondReceiver checks 2010 for a second receiver while the
// first keeps working.
func TestSockJSSecondReceiver(t *testing.T) {
	for _, kind := range []string{"xhr", "xhr_streaming"} {
		t.Run(kind, func(t *testing.T) {
			env := newSockJSEnv(t, Options{}, nil)
			url := env.sessionURL()
			if kind == "xhr" {
				env.expectBody("POST", url+"/xhr", "", 200, "o\n")
			}
			// A polling response has no header before its frame: read it on
			// another goroutine.
			first := make(chan string, 1)
			go func() {
				resp, err := env.client.Post(url+"/"+kind, "text/plain", nil)
				if err != nil {
					first <- err.Error()
					return
				}
				defer resp.Body.Close()
				br := bufio.NewReader(resp.Body)
				skip := map[string]int{"xhr": 0, "xhr_streaming": 2}[kind] // prelude, o
				var line string
				for i := 0; i <= skip && err == nil; i++ {
					line, err = sockjsReadUntilErr(br, "\n")
				}
				first <- line + fmt.Sprint(err)
			}()
			env.waitAttached(url)
			env.expectBody("POST", url+"/xhr", "", 200, "c[2010,\"Another connection still open\"]\n")
			if kind == "xhr_streaming" {
				_, body := env.do("POST", url+"/xhr_streaming", "", nil)
				if want := strings.Repeat("h", 2048) + "\nc[2010,\"Another connection still open\"]\n"; body != want {
					t.Fatalf("second streaming receiver got %q", body)
				}
			}
			env.expectBody("POST", url+"/xhr_send", `["still"]`, 204, "")
			if got := sockjsRecv(t, first); got != "a[\"still\"]\n<nil>" {
				t.Fatalf("first receiver got %q", got)
			}
		})
	}
}

// TestSockJSImmediateClose has the app close every session as soon as it
// starts, as the suite's /close service does: the creating request must
// still send the open frame first, however the goroutines are scheduled.
func TestSockJSImmediateClose(t *testing.T) {
	closeAtOnce := func(tr transport.Conn, _ transport.Info) {
		_ = tr.Close(transport.CloseSockJSGoAway, sockjsframe.ReasonGoAway)
	}
	env := newSockJSEnv(t, Options{}, closeAtOnce)
	for i := range 20 {
		t.Run(fmt.Sprint("xhr", i), func(t *testing.T) {
			url := env.sessionURL()
			env.expectBody("POST", url+"/xhr", "", 200, "o\n")
			env.expectBody("POST", url+"/xhr", "", 200, "c[3000,\"Go away!\"]\n")
		})
		t.Run(fmt.Sprint("xhr_streaming", i), func(t *testing.T) {
			prelude := strings.Repeat("h", 2048) + "\n"
			env.expectBody("POST", env.sessionURL()+"/xhr_streaming", "", 200, prelude+"o\nc[3000,\"Go away!\"]\n")
		})
	}
}
