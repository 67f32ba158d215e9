package broker

import (
	"bytes"
	"fmt"
	"log/slog"
	"stompbox/internal/sockjsframe"
	"stompbox/internal/stomp"
	"stompbox/internal/stomp/stomptest"
	"stompbox/internal/transport"
	"strconv"
	"strings"
	"testing"
)

// TestEncodeJSONMatchesEscapedFrame: what the writer builds for a SockJS
// transport (escaped headers plus the message's tail, escaped once) must be
// exactly the whole frame escaped, for every kind of content a message or a
// subscription id may hold.
func TestEncodeJSONMatchesEscapedFrame(t *testing.T) {
	tests := []struct {
		name    string
		subID   string
		ack     ackMode
		headers []stomp.Header
		body    string
	}{
		{"plain", "sub-0", ackAuto, nil, "hello"},
		{"quotes, backslashes, controls", `s"\`, ackAuto, []stomp.Header{{Key: "x", Value: "a\tb"}}, "\"q\" \\ \x01\x1f\x7f"},
		{"Korean and emoji", "방-1", ackAuto, []stomp.Header{{Key: "content-type", Value: "text/plain; charset=utf-8"}}, "안녕하세요 😀"},
		{"characters SockJS escapes", "s", ackAuto, nil, "\u200c\u2028\ufeff\u00ad"},
		{"invalid UTF-8", "s\xff", ackAuto, []stomp.Header{{Key: "h", Value: "\xc3"}}, "a\xe2\x82b\xff"},
		{"script close", "s", ackAuto, nil, "</script><b>&amp;"},
		{"client ack", "s", ackClient, nil, "x"},
		{"empty body", "s", ackAuto, nil, ""},
	}
	for _, tt := range tests {
		for _, v := range []stomp.Version{stomp.V10, stomp.V11, stomp.V12} {
			t.Run(tt.name+"/"+v.String(), func(t *testing.T) {
				s := &Session{idStr: "k7"}
				it := outItem{
					sub: &Subscription{id: tt.subID, ack: tt.ack},
					msg: &message{dest: "/topic/a", headers: tt.headers, body: []byte(tt.body)},
					seq: 42,
				}
				want := sockjsframe.AppendContent([]byte("kept"), s.encode(nil, &it, v), false)
				got := s.encodeJSON([]byte("kept"), &it, v, &writeBatch{})
				if !bytes.Equal(got, want) {
					t.Fatalf("got  %q\nwant %q", got, want)
				}
				// The second subscriber reuses the cached tail.
				if again := s.encodeJSON(nil, &it, v, &writeBatch{}); !bytes.Equal(again, want[len("kept"):]) {
					t.Fatalf("second encoding %q", again)
				}
			})
		}
	}
}

// TestSessionLogAttributes: a connection's log lines carry its id, address
// and transport, and its user once logged in, although the session keeps
// no formatted attributes; lines below the level build nothing.
func TestSessionLogAttributes(t *testing.T) {
	var buf bytes.Buffer
	b := &Broker{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	s := &Session{b: b, idStr: "k3", info: transport.Info{Transport: "ws", Remote: "127.0.0.1:5000"}}
	s.log = slog.New(sessionLog{s})

	s.log.Debug("hidden")
	s.log.Warn("before login")
	user := "kim"
	s.logUser.Store(&user)
	s.log.With("sub", "0").Warn("after login")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("logged %d lines, want 2:\n%s", len(lines), buf.String())
	}
	for i, want := range [][]string{
		{`msg="before login"`, "conn=k3", "remote=127.0.0.1:5000", "transport=ws"},
		{`msg="after login"`, "conn=k3", "remote=127.0.0.1:5000", "transport=ws", "user=kim", "sub=0"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d lacks %s: %s", i, w, lines[i])
			}
		}
	}
	if strings.Contains(lines[0], "user=") {
		t.Errorf("user logged before login: %s", lines[0])
	}
}

// TestOutboxHandsArraysBack follows one outbox through bursts: the writer
// gets every item in order, the arrays change hands without losing or
// repeating one, and once drained the outbox keeps at most a tiny array, so
// an idle connection holds no burst-sized queue.
func TestOutboxHandsArraysBack(t *testing.T) {
	tests := []struct {
		name   string
		bursts []int // items pushed before each take
	}{
		{"one at a time", []int{1, 1, 1, 1}},
		{"a burst, then a trickle", []int{40, 1, 2, 1}},
		{"growing bursts", []int{3, 9, 27, 81, 243}},
		{"past the kept size", []int{300, 5, 600}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o outbox
			starts := 0
			o.init(1<<20, 1<<30, func() { starts++ })
			var dst []outItem
			next := uint64(0)
			for _, n := range tt.bursts {
				first := next
				for range n {
					if !o.push(outItem{seq: next, frame: &stomp.Frame{Command: "MESSAGE"}}, 1) {
						t.Fatalf("push %d refused", next)
					}
					next++
				}
				var tk taken
				dst, tk = o.take(dst[:0])
				if !tk.more || len(dst) != n {
					t.Fatalf("take after %d pushes: more=%v, %d items", n, tk.more, len(dst))
				}
				for i := range dst {
					if dst[i].seq != first+uint64(i) {
						t.Fatalf("item %d of the burst has seq %d, want %d", i, dst[i].seq, first+uint64(i))
					}
					dst[i] = outItem{} // as the writer clears what it wrote
				}
				if dst, tk = o.take(dst[:0]); tk.more {
					t.Fatalf("take of an empty outbox reports more (%d items)", len(dst))
				}
				if cap(o.items) > outboxKeepItems || o.running {
					t.Fatalf("drained outbox keeps an array of %d items, running=%v", cap(o.items), o.running)
				}
				if cap(dst) < n && n <= maxKeptItems {
					t.Fatalf("the writer got back an array of %d items after a burst of %d", cap(dst), n)
				}
				for i, it := range dst[:cap(dst)] {
					if it != (outItem{}) {
						t.Fatalf("array handed back holds item %d: %+v", i, it)
					}
				}
			}
			if starts != len(tt.bursts) {
				t.Fatalf("writer started %d times for %d bursts", starts, len(tt.bursts))
			}
		})
	}
}

// TestCodecMessageEncoding checks the broker's fan-out path: the MESSAGE
// head written per delivery by session.encode plus the tail shared through
// message.encoded must decode, at each version, to the MESSAGE frame
// appendFrame would have written.
func TestCodecMessageEncoding(t *testing.T) {
	userHeaders := []stomp.Header{{Key: stomp.HdrContentType, Value: "text/plain;charset=utf-8"}, {Key: "x-note", Value: "a:b\\c\nd"}, {Key: "x-이름", Value: "홍길동"}}
	body := []byte("안녕\x00하세요")
	for _, v := range stomptest.Versions {
		for _, ack := range []ackMode{ackAuto, ackClient, ackClientIndividual} {
			t.Run(fmt.Sprintf("%s/ack-%d", v, ack), func(t *testing.T) {
				s := &Session{idStr: "k3"}
				sub := &Subscription{sess: s, id: "sub:0", ack: ack}
				m := &message{dest: "/topic/room-1", headers: userHeaders, body: body}
				it := outItem{sub: sub, msg: m, seq: 42}
				got := s.encode([]byte("prev"), &it, v)
				if !bytes.HasPrefix(got, []byte("prev")) {
					t.Fatalf("encode overwrote the buffer: %q", got)
				}
				got = got[len("prev"):]

				want := stomptest.Frame(stomp.CmdMessage, string(body), stomp.HdrSubscription, "sub:0", stomp.HdrMessageID, "k3-42")
				if v == stomp.V12 && ack != ackAuto {
					want.Add(stomp.HdrAck, "k3-42") // STOMP 1.2 §MESSAGE: ack header for client ack modes
				}
				want.Add(stomp.HdrDestination, "/topic/room-1")
				want.Headers = append(want.Headers, userHeaders...)
				want.Add(stomp.HdrContentLength, strconv.Itoa(len(body)))
				wantDecoded := stomptest.WithContentLength(want)
				if v == stomp.V10 {
					// 1.0 cannot carry LF in a header; see TestCodecNoHeaderInjection.
					wantDecoded.Headers[len(wantDecoded.Headers)-3].Value = "a:b\\c d"
				}
				if enc := stomp.AppendFrame(nil, want, v); !bytes.Equal(got, enc) {
					t.Errorf("encode differs from appendFrame:\n got %q\nwant %q", got, enc)
				}
				d := stomptest.DecodeAllSplits(t, got, v, stomp.DefaultLimits(), stomp.ServerCommands)
				if d.Err != nil || len(d.Frames) != 1 || !stomptest.Equal(d.Frames[0], wantDecoded) {
					t.Fatalf("decoded:\n%s\nwant:\n%s", stomptest.Render(d), stomptest.Render(stomptest.Decoded{Frames: []*stomp.Frame{wantDecoded}}))
				}
				if a, b := m.encoded(v), m.encoded(v); &a[0] != &b[0] {
					t.Errorf("message.encoded(%s) re-encoded instead of reusing", v)
				}
			})
		}
	}
	t.Run("server frame item", func(t *testing.T) {
		s := &Session{idStr: "k3"}
		rf := stomptest.Frame(stomp.CmdReceipt, "", stomp.HdrReceiptID, "r:1")
		for _, v := range stomptest.Versions {
			if got, want := s.encode(nil, &outItem{frame: rf}, v), stomp.AppendFrame(nil, rf, v); !bytes.Equal(got, want) {
				t.Errorf("%s: %q, want %q", v, got, want)
			}
		}
	})
}

// TestMessageEncodedNoHeaderInjection: a header value holding LF must not
// start a new header or frame in the MESSAGE a 1.0 subscriber is sent.
func TestMessageEncodedNoHeaderInjection(t *testing.T) {
	evil := "x\ncontent-length:1\n\nA\x00MESSAGE\ndestination:/forged"
	s := &Session{idStr: "1"}
	m := &message{dest: "/topic/a", headers: []stomp.Header{{Key: "x-evil", Value: evil}}, body: []byte("real")}
	enc := s.encode(nil, &outItem{sub: &Subscription{sess: s, id: "0"}, msg: m, seq: 1}, stomp.V10)
	d := stomptest.DecodeStream(enc, stomp.V10, stomp.DefaultLimits(), stomp.ServerCommands, stomptest.SplitOneChunk)
	if d.Err != nil || len(d.Frames) != 1 || string(d.Frames[0].Body) != "real" || d.Frames[0].Value(stomp.HdrContentLength) != "4" {
		t.Fatalf("%q decoded as:\n%s", enc, stomptest.Render(d))
	}
}
