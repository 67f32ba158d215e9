package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzLimits are small so that short fuzz inputs reach every limit.
var fuzzLimits = frameLimits{MaxFrame: 512, MaxHeaders: 8, MaxHeaderLine: 128}

// reparseLimits are loose: re-encoding may escape raw colons and CRs and add
// a content-length header, so a frame that fit fuzzLimits may not fit again.
var reparseLimits = frameLimits{MaxFrame: 1 << 20, MaxHeaders: 1 << 10, MaxHeaderLine: 1 << 20}

// fuzzCuts cuts input into chunks whose sizes are the bytes of cuts plus one,
// cycling; no cuts means one byte at a time. This is the split-input fuzzing
// of nats-server: the fuzzer chooses the read boundaries.
func fuzzCuts(cuts []byte) chunkSplitter {
	if len(cuts) == 0 {
		return splitOneByte
	}
	return func(in []byte, feed func([]byte) bool) {
		for i := 0; len(in) > 0; i++ {
			n := min(int(cuts[i%len(cuts)])+1, len(in))
			if !feed(in[:n]) {
				return
			}
			in = in[n:]
		}
	}
}

// sameStompError reports whether two decodes of one input stopped alike. An input
// breaking both the header-line and the frame limit may be reported as
// either, depending on which the bytes read so far crossed first.
func sameStompError(a, b error) bool {
	a, b = stompSentinel(a), stompSentinel(b)
	if a == b {
		return true
	}
	size := func(e error) bool { return e == errHeaderTooLong || e == errFrameTooLarge }
	return size(a) && size(b)
}

// reencodable reports whether f, decoded at parser version v, has a wire
// form appendFrame can write. Without escaping, a 1.2 parser takes a CR
// before LF as part of the EOL, so a value ending in CR (written raw CR CR
// LF) cannot be written back.
func reencodable(f *frame, v version) bool {
	escaped := v != v10 && f.Command != cmdConnect && f.Command != cmdStomp && f.Command != cmdConnected
	if escaped || v == v10 || v == v11 {
		return true
	}
	for _, h := range f.Headers {
		if strings.HasSuffix(h.Value, "\r") {
			return false
		}
	}
	return true
}

// FuzzReadFrame feeds arbitrary bytes, cut at fuzzer-chosen points, to the
// parser of each version and each side, and checks that it never panics,
// that the cuts change nothing, that it holds at most MaxFrame bytes between
// chunks, and that every frame it returns encodes and decodes back to itself.
// Seeds: every testdata/stomp fixture and the corpus in testdata/fuzz.
func FuzzReadFrame(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "stomp", "*.stomp"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, path := range files {
		in, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(in, []byte(nil))
		f.Add(in, []byte{2, 9, 0, 130})
	}
	f.Add([]byte("SEND\ncontent-length:9223372036854775807\n\n"), []byte{5})
	f.Add([]byte("SEND\n\n"+strings.Repeat("b", 505)+"\x00"), []byte{255})
	f.Add([]byte("SEND\r\nx:a\\r\r\n\r\n\x00\r\n\n"), []byte{0, 1})
	f.Add([]byte("\r\r\n\n\r"), []byte{0})

	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		for _, v := range []version{0, v10, v11, v12} {
			for _, cmds := range []map[string]bool{clientCommands, serverCommands} {
				whole := decodeStream(data, v, fuzzLimits, cmds, splitOneChunk)
				split := decodeStream(data, v, fuzzLimits, cmds, fuzzCuts(cuts))
				if !sameStompError(whole.err, split.err) {
					t.Fatalf("version %s: one chunk stopped with %v, cut input with %v", versionName(v), whole.err, split.err)
				}
				if whole.err == nil && whole.pending != split.pending {
					t.Fatalf("version %s: %d bytes pending, %d with cuts", versionName(v), whole.pending, split.pending)
				}
				if len(whole.frames) != len(split.frames) {
					t.Fatalf("version %s: %d frames in one chunk, %d cut", versionName(v), len(whole.frames), len(split.frames))
				}
				for i := range whole.frames {
					if !frameEqual(whole.frames[i], split.frames[i]) {
						t.Fatalf("version %s: frame %d differs when cut:\n%s\nwant:\n%s", versionName(v), i,
							renderDecoded(decodeResult{frames: split.frames[i : i+1]}), renderDecoded(decodeResult{frames: whole.frames[i : i+1]}))
					}
				}
				for _, d := range []decodeResult{whole, split} {
					if d.maxPending > fuzzLimits.MaxFrame {
						t.Fatalf("version %s: parser held %d bytes, limit %d", versionName(v), d.maxPending, fuzzLimits.MaxFrame)
					}
				}
				ev := v
				if ev == 0 {
					ev = v12 // the unnegotiated parser reads 1.2 escapes
				}
				for _, fm := range whole.frames {
					if !reencodable(fm, v) {
						continue
					}
					enc := appendFrame(nil, fm, ev)
					again := decodeStream(enc, v, reparseLimits, cmds, splitOneChunk)
					if again.err != nil || len(again.frames) != 1 || again.pending != 0 || !frameEqual(again.frames[0], withContentLength(fm)) {
						t.Fatalf("version %s: %q re-encoded as %q decodes to:\n%s\nwant:\n%s", versionName(v), data, enc,
							renderDecoded(again), renderDecoded(decodeResult{frames: []*frame{withContentLength(fm)}}))
					}
				}
			}
		}
	})
}

// FuzzUnescapeHeader checks header escaping both ways (STOMP 1.2 §"Value
// Encoding"): any string escapes to text that fits in a header line and
// unescapes back; any text either unescapes or fails with errBadEscape, and
// what it unescapes to survives another round.
func FuzzUnescapeHeader(f *testing.F) {
	for _, s := range []string{"", "plain", "a\\nb", "\\", "\\r", "\\t", "a:b\nc\\d\re", "한국어\\c값", "\\\\\\", "\r\n:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, v := range []version{v11, v12} {
			esc := string(appendEscaped(nil, s, v))
			if strings.ContainsAny(esc, "\n:") || (v == v12 && strings.Contains(esc, "\r")) {
				t.Fatalf("%s: %q escaped to %q, which cannot sit in a header line", v, s, esc)
			}
			if back, err := unescapeHeader(esc, v); err != nil || back != s {
				t.Fatalf("%s: %q escaped to %q unescapes to %q, %v", v, s, esc, back, err)
			}
		}
		if esc := string(appendEscaped(nil, s, v10)); len(esc) != len(s) || strings.Contains(esc, "\n") ||
			(!strings.Contains(s, "\n") && esc != s) {
			t.Fatalf("1.0: %q written as %q", s, esc)
		}
		for _, v := range []version{0, v11, v12} {
			u, err := unescapeHeader(s, v)
			if err != nil {
				if !errors.Is(err, errBadEscape) {
					t.Fatalf("%s: unescapeHeader(%q): %v", versionName(v), s, err)
				}
				continue
			}
			if len(u) > len(s) || (!strings.Contains(s, "\\") && u != s) {
				t.Fatalf("%s: unescapeHeader(%q) = %q", versionName(v), s, u)
			}
			ev := v
			if ev == 0 {
				ev = v12
			}
			if back, err := unescapeHeader(string(appendEscaped(nil, u, ev)), v); err != nil || back != u {
				t.Fatalf("%s: %q unescaped to %q, which does not survive another round: %q, %v", versionName(v), s, u, back, err)
			}
		}
	})
}
