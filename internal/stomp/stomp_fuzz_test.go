package stomp_test

import (
	"errors"
	"os"
	"path/filepath"
	"stompbox/internal/stomp"
	"stompbox/internal/stomp/stomptest"
	"strings"
	"testing"
)

// fuzzLimits are small so that short fuzz inputs reach every limit.
var fuzzLimits = stomp.Limits{MaxFrame: 512, MaxHeaders: 8, MaxHeaderLine: 128}

// reparseLimits are loose: re-encoding may escape raw colons and CRs and add
// a content-length header, so a frame that fit fuzzLimits may not fit again.
var reparseLimits = stomp.Limits{MaxFrame: 1 << 20, MaxHeaders: 1 << 10, MaxHeaderLine: 1 << 20}

// fuzzCuts cuts input into chunks whose sizes are the bytes of cuts plus one,
// cycling; no cuts means one byte at a time. This is the split-input fuzzing
// of nats-server: the fuzzer chooses the read boundaries.
func fuzzCuts(cuts []byte) stomptest.Splitter {
	if len(cuts) == 0 {
		return stomptest.SplitOneByte
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
	a, b = stomptest.Sentinel(a), stomptest.Sentinel(b)
	if a == b {
		return true
	}
	size := func(e error) bool { return e == stomp.ErrHeaderTooLong || e == stomp.ErrFrameTooLarge }
	return size(a) && size(b)
}

// reencodable reports whether f, decoded at parser version v, has a wire
// form appendFrame can write. Without escaping, a 1.2 parser takes a CR
// before LF as part of the EOL, so a value ending in CR (written raw CR CR
// LF) cannot be written back.
func reencodable(f *stomp.Frame, v stomp.Version) bool {
	escaped := v != stomp.V10 && f.Command != stomp.CmdConnect && f.Command != stomp.CmdStomp && f.Command != stomp.CmdConnected
	if escaped || v == stomp.V10 || v == stomp.V11 {
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
		for _, v := range []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12} {
			for _, cmds := range []map[string]bool{stomp.ClientCommands, stomp.ServerCommands} {
				whole := stomptest.DecodeStream(data, v, fuzzLimits, cmds, stomptest.SplitOneChunk)
				split := stomptest.DecodeStream(data, v, fuzzLimits, cmds, fuzzCuts(cuts))
				if !sameStompError(whole.Err, split.Err) {
					t.Fatalf("version %s: one chunk stopped with %v, cut input with %v", stomptest.VersionName(v), whole.Err, split.Err)
				}
				if whole.Err == nil && whole.Pending != split.Pending {
					t.Fatalf("version %s: %d bytes pending, %d with cuts", stomptest.VersionName(v), whole.Pending, split.Pending)
				}
				if len(whole.Frames) != len(split.Frames) {
					t.Fatalf("version %s: %d frames in one chunk, %d cut", stomptest.VersionName(v), len(whole.Frames), len(split.Frames))
				}
				for i := range whole.Frames {
					if !stomptest.Equal(whole.Frames[i], split.Frames[i]) {
						t.Fatalf("version %s: frame %d differs when cut:\n%s\nwant:\n%s", stomptest.VersionName(v), i,
							stomptest.Render(stomptest.Decoded{Frames: split.Frames[i : i+1]}), stomptest.Render(stomptest.Decoded{Frames: whole.Frames[i : i+1]}))
					}
				}
				for _, d := range []stomptest.Decoded{whole, split} {
					if d.MaxPending > fuzzLimits.MaxFrame {
						t.Fatalf("version %s: parser held %d bytes, limit %d", stomptest.VersionName(v), d.MaxPending, fuzzLimits.MaxFrame)
					}
				}
				ev := v
				if ev == 0 {
					ev = stomp.V12 // the unnegotiated parser reads 1.2 escapes
				}
				for _, fm := range whole.Frames {
					if !reencodable(fm, v) {
						continue
					}
					enc := stomp.AppendFrame(nil, fm, ev)
					again := stomptest.DecodeStream(enc, v, reparseLimits, cmds, stomptest.SplitOneChunk)
					if again.Err != nil || len(again.Frames) != 1 || again.Pending != 0 || !stomptest.Equal(again.Frames[0], stomptest.WithContentLength(fm)) {
						t.Fatalf("version %s: %q re-encoded as %q decodes to:\n%s\nwant:\n%s", stomptest.VersionName(v), data, enc,
							stomptest.Render(again), stomptest.Render(stomptest.Decoded{Frames: []*stomp.Frame{stomptest.WithContentLength(fm)}}))
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
		for _, v := range []stomp.Version{stomp.V11, stomp.V12} {
			esc := string(stomp.AppendEscaped(nil, s, v))
			if strings.ContainsAny(esc, "\n:") || (v == stomp.V12 && strings.Contains(esc, "\r")) {
				t.Fatalf("%s: %q escaped to %q, which cannot sit in a header line", v, s, esc)
			}
			if back, err := stomp.UnescapeHeader(esc, v); err != nil || back != s {
				t.Fatalf("%s: %q escaped to %q unescapes to %q, %v", v, s, esc, back, err)
			}
		}
		if esc := string(stomp.AppendEscaped(nil, s, stomp.V10)); len(esc) != len(s) || strings.Contains(esc, "\n") ||
			(!strings.Contains(s, "\n") && esc != s) {
			t.Fatalf("1.0: %q written as %q", s, esc)
		}
		for _, v := range []stomp.Version{0, stomp.V11, stomp.V12} {
			u, err := stomp.UnescapeHeader(s, v)
			if err != nil {
				if !errors.Is(err, stomp.ErrBadEscape) {
					t.Fatalf("%s: unescapeHeader(%q): %v", stomptest.VersionName(v), s, err)
				}
				continue
			}
			if len(u) > len(s) || (!strings.Contains(s, "\\") && u != s) {
				t.Fatalf("%s: unescapeHeader(%q) = %q", stomptest.VersionName(v), s, u)
			}
			ev := v
			if ev == 0 {
				ev = stomp.V12
			}
			if back, err := stomp.UnescapeHeader(string(stomp.AppendEscaped(nil, u, ev)), v); err != nil || back != u {
				t.Fatalf("%s: %q unescaped to %q, which does not survive another round: %q, %v", stomptest.VersionName(v), s, u, back, err)
			}
		}
	})
}
