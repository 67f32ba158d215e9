package main

import (
	"bytes"
	"encoding/json"
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
