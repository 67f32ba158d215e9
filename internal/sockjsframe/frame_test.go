package sockjsframe

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSockJSEscapeTable(t *testing.T) {
	tests := []struct {
		in, want, wantHTML string
	}{
		{"", `""`, `""`},
		{"plain", `"plain"`, `"plain"`},
		{`q"b\`, `"q\"b\\"`, `"q\"b\\"`},
		{"\n\r\t\b\f", `"\n\r\t\b\f"`, `"\n\r\t\b\f"`},
		{"\x00\x01\x1f\x7f", `"\u0000\u0001\u001f\u007f"`, `"\u0000\u0001\u001f\u007f"`},
		{"</script>&", `"</script>&"`, `"\u003c/script\u003e\u0026"`},
		{"\u0080\u009f\u00a0\u00ad", "\"\\u0080\\u009f\u00a0\\u00ad\"", "\"\\u0080\\u009f\u00a0\\u00ad\""},
		{"한국어 é 😀", `"한국어 é 😀"`, `"한국어 é 😀"`},
		{"\u0600\u0604\u0605\u070f", "\"\\u0600\\u0604\u0605\\u070f\"", "\"\\u0600\\u0604\u0605\\u070f\""},
		{"\u17b3\u17b4\u17b5\u17b6", "\"\u17b3\\u17b4\\u17b5\u17b6\"", "\"\u17b3\\u17b4\\u17b5\u17b6\""},
		{"\u200b\u200c\u200f\u2010", "\"\u200b\\u200c\\u200f\u2010\"", "\"\u200b\\u200c\\u200f\u2010\""},
		{"\u2027\u2028\u202f\u2030", "\"\u2027\\u2028\\u202f\u2030\"", "\"\u2027\\u2028\\u202f\u2030\""},
		{"\u205f\u2060\u206f\u2070", "\"\u205f\\u2060\\u206f\u2070\"", "\"\u205f\\u2060\\u206f\u2070\""},
		{"\ufefe\ufeff\uffef\ufff0\uffff", "\"\ufefe\\ufeff\uffef\\ufff0\\uffff\"", "\"\ufefe\\ufeff\uffef\\ufff0\\uffff\""},
		{"bad\xffutf8\xed\xa0\x80", `"bad\ufffdutf8\ufffd\ufffd\ufffd"`, `"bad\ufffdutf8\ufffd\ufffd\ufffd"`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			if got := string(AppendString(nil, tt.in, false)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if got := string(AppendString(nil, tt.in, true)); got != tt.wantHTML {
				t.Errorf("html: got %s, want %s", got, tt.wantHTML)
			}
		})
	}
}

// TestSockJSEscapeServerKillerString is the suite's
// JSONEncoding.test_xhr_server_encodes: every code point from U+00FF up that
// the suite says the server must escape comes back as \uxxxx, lower-case,
// and nothing else is escaped.
func TestSockJSEscapeServerKillerString(t *testing.T) {
	suiteEscapes := func(r rune) bool { // escapable_by_server in sockjs-protocol.py
		return r <= 0x1f || r >= 0x200c && r <= 0x200f || r >= 0x2028 && r <= 0x202f ||
			r >= 0x2060 && r <= 0x206f || r >= 0xfff0 && r <= 0xffff
	}
	var in strings.Builder
	want := []byte{'"'}
	for r := rune(255); r < 0x10000; r++ {
		if suiteEscapes(r) {
			in.WriteRune(r)
			want = fmt.Appendf(want, `\u%04x`, r)
		}
	}
	want = append(want, '"')
	if got := AppendString(nil, in.String(), false); string(got) != string(want) {
		t.Fatalf("got %s\nwant %s", got, want)
	}
}

// TestSockJSEscapeRoundTrip encodes every Unicode scalar value and checks
// that the output is valid UTF-8 JSON that decodes to the input, with every
// character the protocol lists escaped.
func TestSockJSEscapeRoundTrip(t *testing.T) {
	briefList := func(r rune) bool {
		return r <= 0x1f || r >= 0x7f && r <= 0x9f || r == 0xad || r >= 0x600 && r <= 0x604 || r == 0x70f ||
			r == 0x17b4 || r == 0x17b5 || r >= 0x200c && r <= 0x200f || r >= 0x2028 && r <= 0x202f ||
			r >= 0x2060 && r <= 0x206f || r == 0xfeff || r >= 0xfff0 && r <= 0xffff
	}
	var buf []byte
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if r >= 0xd800 && r <= 0xdfff {
			continue
		}
		s := "a" + string(r) + "z"
		buf = AppendString(buf[:0], s, true)
		if !utf8.Valid(buf) {
			t.Fatalf("U+%04X: invalid UTF-8 %q", r, buf)
		}
		var back string
		if err := json.Unmarshal(buf, &back); err != nil || back != s {
			t.Fatalf("U+%04X: %s decodes to %q, %v", r, buf, back, err)
		}
		if briefList(r) && strings.ContainsRune(string(buf), r) {
			t.Fatalf("U+%04X sent raw: %s", r, buf)
		}
	}
}

func TestSockJSDecode(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr error
		ws      bool // decode as a WebSocket message
	}{
		{in: `["a"]`, want: []string{"a"}},
		{in: ` ["a","b"] `, want: []string{"a", "b"}},
		{in: `[]`, want: []string{}},
		{in: `["\u0000\ud83d\ude00\ud800"]`, want: []string{"\x00😀\ufffd"}},
		{in: "[\"\xff\"]", want: []string{"\ufffd"}},
		{in: ``, wantErr: ErrPayloadExpected},
		{in: " \r\n\t", wantErr: ErrPayloadExpected},
		{in: `["a`, wantErr: errSockJSBrokenJSON},
		{in: `"a"`, wantErr: errSockJSBrokenJSON},
		{in: `[1]`, wantErr: errSockJSBrokenJSON},
		{in: `[null]`, wantErr: errSockJSBrokenJSON},
		{in: `[["a"]]`, wantErr: errSockJSBrokenJSON},
		{in: `{"a":1}`, wantErr: errSockJSBrokenJSON},
		{in: `null`, wantErr: errSockJSBrokenJSON},
		{in: `["a"] x`, wantErr: errSockJSBrokenJSON},
		{in: ``, ws: true, want: nil},
		{in: `[]`, ws: true, want: []string{}},
		{in: `"bare"`, ws: true, want: []string{"bare"}},
		{in: `["a","b"]`, ws: true, want: []string{"a", "b"}},
		{in: `["a`, ws: true, wantErr: errSockJSBrokenJSON},
		{in: `42`, ws: true, wantErr: errSockJSBrokenJSON},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("ws=%v/%q", tt.ws, tt.in), func(t *testing.T) {
			decode := DecodeMessages
			if tt.ws {
				decode = DecodeWebSocket
			}
			got, err := decode([]byte(tt.in))
			if !errors.Is(err, tt.wantErr) || !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestSockJSCloseFrame(t *testing.T) {
	tests := []struct {
		code   int
		reason string
		want   string
	}{
		{3000, "Go away!", `c[3000,"Go away!"]`},
		{2010, "Another connection still open", `c[2010,"Another connection still open"]`},
		{1002, `quote " and \`, `c[1002,"quote \" and \\"]`},
	}
	for _, tt := range tests {
		if got := string(CloseFrame(tt.code, tt.reason)); got != tt.want {
			t.Errorf("got %s, want %s", got, tt.want)
		}
	}
}

// FuzzSockJSDecode feeds arbitrary bodies to the inbound decoders. Whatever
// they accept must survive the outbound encoder and decode to the same
// messages, and nothing may panic. Seeds: testdata/fuzz/FuzzSockJSDecode.
func FuzzSockJSDecode(f *testing.F) {
	for _, s := range []string{`["a"]`, `[]`, `["\u2028",""]`, `"x"`, `["a`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		if _, err := DecodeWebSocket(p); err != nil && !errors.Is(err, errSockJSBrokenJSON) {
			t.Fatalf("websocket decode: unexpected error %v", err)
		}
		msgs, err := DecodeMessages(p)
		if err != nil {
			if !errors.Is(err, errSockJSBrokenJSON) && !errors.Is(err, ErrPayloadExpected) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		raw := make([][]byte, len(msgs))
		for i, m := range msgs {
			raw[i] = []byte(m)
		}
		frame := AppendArray(nil, raw, false)
		if !utf8.Valid(frame) || frame[0] != 'a' {
			t.Fatalf("bad frame %q", frame)
		}
		back, err := DecodeMessages(frame[1:])
		if err != nil || !slices.Equal(back, msgs) {
			t.Fatalf("round trip of %q: %q, %v", msgs, back, err)
		}
	})
}

// sockjsBenchMessage is a typical STOMP MESSAGE frame of a chat line.
var sockjsBenchMessage = []byte("MESSAGE\ndestination:/topic/room.1\nmessage-id:42\nsubscription:sub-0\ncontent-type:application/json\n\n{\"user\":\"민지\",\"text\":\"안녕하세요, see you at 10:00 <b>ok</b>\"}\x00")

func BenchmarkSockJSEncodeArray(b *testing.B) {
	msgs := [][]byte{sockjsBenchMessage, sockjsBenchMessage}
	var buf []byte
	b.ReportAllocs()
	b.SetBytes(int64(2 * len(sockjsBenchMessage)))
	for b.Loop() {
		buf = AppendArray(buf[:0], msgs, false)
	}
}

func BenchmarkSockJSDecodeMessages(b *testing.B) {
	body := AppendArray(nil, [][]byte{sockjsBenchMessage, sockjsBenchMessage}, false)[1:]
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := DecodeMessages(body); err != nil {
			b.Fatal(err)
		}
	}
}
