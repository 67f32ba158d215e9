package bench

import (
	"context"
	"io"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
	"stompbox/internal/store"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestScanMessage(t *testing.T) {
	const whole = "MESSAGE\nsubscription:0\nmessage-id:1-7\ndestination:/topic/a\nbench-seq:7\ncontent-length:5\n\nhello\x00"
	tests := []struct {
		name     string
		in       string
		ok       bool
		body     string
		n        int
		seq      int64
		seqFound bool
	}{
		{"whole", whole, true, "hello", len(whole), 7, true},
		{"whole then more", whole + "RECEIPT\nreceipt-id:1\n\n\x00", true, "hello", len(whole), 7, true},
		{"body with NUL", "MESSAGE\ncontent-length:3\n\na\x00b\x00", true, "a\x00b", 30, 0, false},
		{"empty body", "MESSAGE\ncontent-length:0\n\n\x00", true, "", 27, 0, false},
		{"first of repeated headers", "MESSAGE\nbench-seq:1\nbench-seq:2\ncontent-length:0\n\n\x00", true, "", 51, 1, true},
		{"body cut short", whole[:len(whole)-3], false, "", 0, 0, false},
		{"NUL missing", strings.Replace(whole, "hello\x00", "hello!", 1), false, "", 0, 0, false},
		{"headers cut short", "MESSAGE\nsubscription:0\n", false, "", 0, 0, false},
		{"no content-length", "MESSAGE\nsubscription:0\n\nhello\x00", false, "", 0, 0, false},
		{"bad content-length", "MESSAGE\ncontent-length:x\n\nhello\x00", false, "", 0, 0, false},
		{"content-length past the input", "MESSAGE\ncontent-length:99\n\nhello\x00", false, "", 0, 0, false},
		{"CRLF line ends", "MESSAGE\r\ncontent-length:5\r\n\r\nhello\x00", false, "", 0, 0, false},
		{"another command", "RECEIPT\nreceipt-id:1\n\n\x00", false, "", 0, 0, false},
		{"no headers", "MESSAGE\n\n\x00", false, "", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head, body, n, ok := scanMessage([]byte(tt.in))
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if string(body) != tt.body || n != tt.n {
				t.Errorf("body %q, n %d; want %q, %d", body, n, tt.body, tt.n)
			}
			f := benchFrame{head: head}
			seq, found := f.number(hdrBenchSeq)
			if found != tt.seqFound || seq != tt.seq {
				t.Errorf("bench-seq = %d, %v; want %d, %v", seq, found, tt.seq, tt.seqFound)
			}
		})
	}
}

func TestParseDigits(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"42", 42, true},
		{"1764474000123456789", 1764474000123456789, true}, // Unix nanoseconds: 19 digits
		{"9223372036854775807", 9223372036854775807, true},
		{"9223372036854775808", 0, false},
		{"12345678901234567890", 0, false},
		{"", 0, false},
		{"-1", 0, false},
		{"1 ", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseDigits([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseDigits(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBenchTalkFields(t *testing.T) {
	talk := func(sender, text string) []byte {
		return store.StoredMessage{ID: 9, Type: proto.MsgTalk, RoomID: 3, Sender: sender, Message: text, CreatedAt: time.Unix(1, 0)}.JSON()
	}
	tests := []struct {
		name            string
		body            []byte
		sender, seq, ts int64
		ok              bool
	}{
		{"bench text", talk("bench4", "bench 12 3 1764474000123456789"), 12, 3, 1764474000123456789, true},
		{"a person's text", talk("kim", "안녕하세요"), 0, 0, 0, false},
		{"quoted key inside the text", talk("kim", `"message":"bench 1 2 3`), 0, 0, 0, false},
		{"quoted key inside the sender", talk(`x","message":"bench 1 2 3`, "hi"), 0, 0, 0, false},
		{"two fields", talk("bench4", "bench 12 3"), 0, 0, 0, false},
		{"not numbers", talk("bench4", "bench a b c"), 0, 0, 0, false},
		{"ENTER", store.StoredMessage{Type: proto.MsgEnter, RoomID: 3, Sender: "bench4", Message: "bench 1 2 3"}.JSON(), 0, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sender, seq, ts, ok := benchTalkFields(tt.body)
			if sender != tt.sender || seq != tt.seq || ts != tt.ts || ok != tt.ok {
				t.Errorf("benchTalkFields(%s) = %d %d %d %v; want %d %d %d %v", tt.body, sender, seq, ts, ok, tt.sender, tt.seq, tt.ts, tt.ok)
			}
		})
	}
}

// chunkTransport hands out fixed chunks, reusing one buffer as the
// WebSocket transport does, then io.EOF.
type chunkTransport struct {
	chunks []string
	buf    []byte
}

func (c *chunkTransport) send(context.Context, []byte) error { return nil }
func (c *chunkTransport) close()                             {}
func (c *chunkTransport) recv(context.Context) ([]byte, error) {
	if len(c.chunks) == 0 {
		return nil, io.EOF
	}
	c.buf = append(c.buf[:0], c.chunks[0]...)
	c.chunks = c.chunks[1:]
	return c.buf, nil
}

// TestBenchConnNext feeds frames in chunks that do and do not align with
// them: whole MESSAGEs take the fast path, split ones and other commands
// the parser, and both give the same frames in order.
func TestBenchConnNext(t *testing.T) {
	msg := func(seq, body string) string {
		return "MESSAGE\nsubscription:0\nbench-seq:" + seq + "\ncontent-length:" + strconv.Itoa(len(body)) + "\n\n" + body + "\x00"
	}
	m1, m2, m3, m4 := msg("1", "one"), msg("2", "two"), msg("3", "three"), msg("4", "four")
	receipt := "RECEIPT\nreceipt-id:r1\n\n\x00"
	tr := &chunkTransport{chunks: []string{
		"\n" + m1 + receipt + m2,    // heart-beat, then three whole frames in one chunk
		m3[:10], m3[10:] + "\r\n\n", // a MESSAGE split across chunks, then heart-beats
		m4 + "ERROR\nmessage:bye\n\n\x00",
	}}
	p := stomp.NewParser(stomp.Limits{MaxFrame: benchReadLimit, MaxHeaders: stomp.DefaultMaxHeaders, MaxHeaderLine: stomp.DefaultMaxHeaderLine})
	p.Commands, p.Version = stomp.ServerCommands, stomp.V12
	c := &Conn{t: tr, p: p}
	want := []struct {
		command, body string
		seq           int64
	}{
		{stomp.CmdMessage, "one", 1}, {stomp.CmdReceipt, "", 0}, {stomp.CmdMessage, "two", 2}, {stomp.CmdMessage, "three", 3}, {stomp.CmdMessage, "four", 4}, {stomp.CmdError, "", 0},
	}
	ctx := context.Background()
	for i, w := range want {
		f, err := c.next(ctx)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.command != w.command || string(f.body) != w.body {
			t.Fatalf("frame %d: %s %q, want %s %q", i, f.command, f.body, w.command, w.body)
		}
		if f.command == stomp.CmdMessage {
			if seq, ok := f.number(hdrBenchSeq); !ok || seq != w.seq {
				t.Fatalf("frame %d: bench-seq %d, %v; want %d", i, seq, ok, w.seq)
			}
		}
		if f.command == stomp.CmdError && f.full.Value(stomp.HdrMessage) != "bye" {
			t.Fatalf("ERROR message %q, want bye", f.full.Value(stomp.HdrMessage))
		}
	}
	if _, err := c.next(ctx); err != io.EOF {
		t.Fatalf("after the last chunk: %v, want io.EOF", err)
	}
}

// TestBenchConnReadAfterNext checks that read, used off the hot path, gives
// a whole frame for a MESSAGE that next would have scanned in place, and
// that the bytes after it are still there.
func TestBenchConnReadAfterNext(t *testing.T) {
	tr := &chunkTransport{chunks: []string{
		"MESSAGE\ndestination:/topic/a\ncontent-length:2\n\nhi\x00MESSAGE\ncontent-length:3\n\nbye\x00",
	}}
	p := stomp.NewParser(stomp.Limits{MaxFrame: benchReadLimit, MaxHeaders: stomp.DefaultMaxHeaders, MaxHeaderLine: stomp.DefaultMaxHeaderLine})
	p.Commands, p.Version = stomp.ServerCommands, stomp.V12
	c := &Conn{t: tr, p: p}
	f, err := c.read(context.Background())
	if err != nil || f.Command != stomp.CmdMessage || string(f.Body) != "hi" || f.Value(stomp.HdrDestination) != "/topic/a" {
		t.Fatalf("read = %+v, %v", f, err)
	}
	g, err := c.next(context.Background())
	if err != nil || string(g.body) != "bye" {
		t.Fatalf("next = %q, %v; want bye", g.body, err)
	}
}
