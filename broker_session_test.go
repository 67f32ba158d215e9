package main

import (
	"bytes"
	"log/slog"
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
		headers []header
		body    string
	}{
		{"plain", "sub-0", ackAuto, nil, "hello"},
		{"quotes, backslashes, controls", `s"\`, ackAuto, []header{{"x", "a\tb"}}, "\"q\" \\ \x01\x1f\x7f"},
		{"Korean and emoji", "방-1", ackAuto, []header{{"content-type", "text/plain; charset=utf-8"}}, "안녕하세요 😀"},
		{"characters SockJS escapes", "s", ackAuto, nil, "\u200c\u2028\ufeff\u00ad"},
		{"invalid UTF-8", "s\xff", ackAuto, []header{{"h", "\xc3"}}, "a\xe2\x82b\xff"},
		{"script close", "s", ackAuto, nil, "</script><b>&amp;"},
		{"client ack", "s", ackClient, nil, "x"},
		{"empty body", "s", ackAuto, nil, ""},
	}
	for _, tt := range tests {
		for _, v := range []version{v10, v11, v12} {
			t.Run(tt.name+"/"+v.String(), func(t *testing.T) {
				s := &session{idStr: "k7"}
				it := outItem{
					sub: &subscription{id: tt.subID, ack: tt.ack},
					msg: &message{dest: "/topic/a", headers: tt.headers, body: []byte(tt.body)},
					seq: 42,
				}
				want := appendSockJSContent([]byte("kept"), s.encode(nil, &it, v), false)
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
	s := &session{b: b, idStr: "k3", info: connInfo{Transport: "ws", Remote: "127.0.0.1:5000"}}
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
					if !o.push(outItem{seq: next, frame: &frame{Command: "MESSAGE"}}, 1) {
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
