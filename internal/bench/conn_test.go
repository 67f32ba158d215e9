package bench

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"stompbox/internal/sockjsframe"
	"stompbox/internal/stomp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendJSONStrings(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"empty array", `[]`, "", true},
		{"spaces", " [ \"a\" ,\t\"b\" ]\n", "ab", true},
		{"STOMP frame as stompbox sends it", `["MESSAGE\ndestination:/topic/a\ncontent-length:2\n\nhi\u0000"]`, "MESSAGE\ndestination:/topic/a\ncontent-length:2\n\nhi\x00", true},
		{"simple escapes", `["\"\\\/\b\f\n\r\t"]`, "\"\\/\b\f\n\r\t", true},
		{"Korean as is and escaped", `["안녕","\uc548\ub155"]`, "안녕안녕", true},
		{"surrogate pair", `["\ud83d\ude00"]`, "😀", true},
		{"lone high surrogate", `["\ud83dx"]`, "\ufffdx", true},
		{"high surrogate then another escape", `["\ud83d\u0041"]`, "\ufffdA", true},
		{"lone low surrogate", `["\ude00"]`, "\ufffd", true},
		{"not an array", `"a"`, "", false},
		{"unterminated string", `["a]`, "", false},
		{"trailing comma", `["a",]`, "", false},
		{"missing comma", `["a" "b"]`, "", false},
		{"number", `[1]`, "", false},
		{"null", `[null]`, "", false},
		{"raw newline", "[\"a\nb\"]", "", false},
		{"bad escape", `["\x"]`, "", false},
		{"short unicode escape", `["\u12"]`, "", false},
		{"text after the array", `["a"]x`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendJSONStrings([]byte("kept:"), []byte(tt.in))
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if tt.ok && string(got) != "kept:"+tt.want {
				t.Fatalf("got %q, want %q", got, "kept:"+tt.want)
			}
		})
	}
}

// FuzzAppendJSONStrings holds appendJSONStrings to encoding/json's answer
// for []string on every valid UTF-8 input without null, which json takes
// as an empty string and the SockJS decoder refuses.
func FuzzAppendJSONStrings(f *testing.F) {
	for _, s := range []string{`[]`, `["a","b"]`, `["\u0000\ud83d\ude00"]`, `["\"\\"]`, ` [ "x" ] `, `["\ud800"]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if !utf8.ValidString(in) || strings.Contains(in, "null") {
			return
		}
		got, err := appendJSONStrings(nil, []byte(in))
		var want []string
		jerr := json.Unmarshal([]byte(in), &want)
		if (err == nil) != (jerr == nil) {
			t.Fatalf("%q: err %v, encoding/json %v", in, err, jerr)
		}
		if err == nil && !bytes.Equal(got, []byte(strings.Join(want, ""))) {
			t.Fatalf("%q: got %q, encoding/json %q", in, got, strings.Join(want, ""))
		}
	})
}

// TestJSONPlain8 checks the eight-byte test against the byte-at-a-time one
// for every byte value in every position.
func TestJSONPlain8(t *testing.T) {
	for pos := range 8 {
		for c := range 256 {
			var b [8]byte
			copy(b[:], "abcdefgh")
			b[pos] = byte(c)
			want := c != '"' && c != '\\' && c >= 0x20
			if got := jsonPlain8(binary.LittleEndian.Uint64(b[:])); got != want {
				t.Fatalf("byte %#x at %d: plain=%v, want %v", c, pos, got, want)
			}
		}
	}
}

// BenchmarkAppendJSONStrings decodes what an xhr-streaming subscriber of a
// fan-out reads: an array of 16 MESSAGE frames with 256-byte bodies, as
// the server escapes them.
func BenchmarkAppendJSONStrings(b *testing.B) {
	frame := stomp.AppendFrame(nil, &stomp.Frame{Command: stomp.CmdMessage, Headers: []stomp.Header{
		{Key: stomp.HdrSubscription, Value: "0"}, {Key: stomp.HdrMessageID, Value: "k3-7"}, {Key: stomp.HdrDestination, Value: "/topic/bench"},
		{Key: "bench-seq", Value: "12345"}, {Key: "bench-ts", Value: "1764496800000000000"}, {Key: stomp.HdrContentLength, Value: "256"},
	}, Body: bytes.Repeat([]byte("x"), 256)}, stomp.V12)
	arr := []byte{'['}
	for i := range 16 {
		if i > 0 {
			arr = append(arr, ',')
		}
		arr = append(arr, '"')
		arr = sockjsframe.AppendContent(arr, frame, false)
		arr = append(arr, '"')
	}
	arr = append(arr, ']')
	var dst []byte
	b.SetBytes(int64(len(arr)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = appendJSONStrings(dst[:0], arr); err != nil {
			b.Fatal(err)
		}
	}
	if !bytes.Equal(dst, bytes.Repeat(frame, 16)) {
		b.Fatalf("decoded %q", dst)
	}
}
