package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// updateGolden rewrites the golden files under testdata/ instead of comparing
// with them. Other golden tests in the package should share this flag: a
// second flag named "update" would panic at start-up.
var updateGolden = flag.Bool("update", false, "rewrite golden files under testdata/")

// stompVersions are the versions a session can negotiate.
var stompVersions = []version{v10, v11, v12}

// versionName names v in test names and golden files; 0 is a parser that
// has not negotiated yet (it reads CONNECT frames).
func versionName(v version) string {
	if v == 0 {
		return "unnegotiated"
	}
	return v.String()
}

// tframe builds a frame from a command, a body and alternating header keys and
// values, so that keys and values may hold any byte.
func tframe(cmd, body string, kv ...string) *frame {
	f := &frame{Command: cmd}
	if body != "" {
		f.Body = []byte(body)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Add(kv[i], kv[i+1])
	}
	return f
}

// frameEqual compares frames, treating a nil and an empty body as equal.
func frameEqual(a, b *frame) bool {
	return a.Command == b.Command && slices.Equal(a.Headers, b.Headers) && bytes.Equal(a.Body, b.Body)
}

// decodeResult is what a parser made of an input: the frames it returned, the
// error that stopped it, the bytes it still held at the end, and the most it
// ever held between chunks.
type decodeResult struct {
	frames     []*frame
	err        error
	pending    int
	maxPending int
}

// chunkSplitter cuts input into the chunks a transport might deliver and hands
// them to feed, stopping when feed reports false.
type chunkSplitter func(in []byte, feed func([]byte) bool)

func splitOneChunk(in []byte, feed func([]byte) bool) { feed(in) }

func splitOneByte(in []byte, feed func([]byte) bool) {
	for i := range in {
		if !feed(in[i : i+1]) {
			return
		}
	}
}

// randomChunkSplitter returns a chunkSplitter cutting at seeded random points, chunks of
// 1 to maxChunk bytes.
func randomChunkSplitter(seed uint64, maxChunk int) chunkSplitter {
	return func(in []byte, feed func([]byte) bool) {
		r := rand.New(rand.NewPCG(seed, seed^0x5eed))
		for len(in) > 0 {
			n := min(1+r.IntN(maxChunk), len(in))
			if !feed(in[:n]) {
				return
			}
			in = in[n:]
		}
	}
}

// fixedChunkSplitter cuts input every n bytes, as a transport with an n-byte read buffer.
func fixedChunkSplitter(n int) chunkSplitter {
	return func(in []byte, feed func([]byte) bool) {
		for len(in) > 0 {
			k := min(n, len(in))
			if !feed(in[:k]) {
				return
			}
			in = in[k:]
		}
	}
}

// readerChunkSplitter pumps a reader wrapped by wrap into feed through one reused
// buffer, as a TCP transport does; the reuse also checks that the parser
// copies what it keeps.
func readerChunkSplitter(wrap func(io.Reader) io.Reader) chunkSplitter {
	return func(in []byte, feed func([]byte) bool) {
		r := wrap(bytes.NewReader(in))
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			if n > 0 && !feed(buf[:n]) {
				return
			}
			if err != nil {
				return
			}
		}
	}
}

// frameSplitters are the read boundaries every fixture is decoded with.
var frameSplitters = []struct {
	name string
	fn   chunkSplitter
}{
	{"one-chunk", splitOneChunk},
	{"one-byte", splitOneByte},
	{"random-7", randomChunkSplitter(7, 7)},
	{"random-42", randomChunkSplitter(42, 40)},
	{"random-1234", randomChunkSplitter(1234, 300)},
	{"fixed-512", fixedChunkSplitter(512)},
	{"OneByteReader", readerChunkSplitter(iotest.OneByteReader)},
	{"HalfReader", readerChunkSplitter(iotest.HalfReader)},
	{"DataErrReader", readerChunkSplitter(iotest.DataErrReader)},
	{"HalfReader(OneByteReader)", readerChunkSplitter(func(r io.Reader) io.Reader { return iotest.HalfReader(iotest.OneByteReader(r)) })},
}

// decodeStream runs in through a fresh parser for version v with cmds, cut by
// split. Each chunk is fed from a scratch copy that is scribbled over as soon
// as the parser has returned nil (Feed's contract: from then on the caller
// may reuse it), so a frame that aliased its input, or a parser that kept a
// partial frame without copying it, would show it.
func decodeStream(in []byte, v version, limits frameLimits, cmds map[string]bool, split chunkSplitter) decodeResult {
	p := newFrameParser(limits)
	p.commands = cmds
	p.version = v
	var d decodeResult
	var scratch []byte
	split(in, func(chunk []byte) bool {
		scratch = append(scratch[:0], chunk...)
		p.Feed(scratch)
		for {
			f, err := p.Next()
			if err != nil {
				d.err = err
				return false
			}
			if f == nil {
				break
			}
			d.frames = append(d.frames, f)
		}
		for i := range scratch {
			scratch[i] = 0xA5
		}
		d.maxPending = max(d.maxPending, len(p.buf))
		return true
	})
	d.pending = len(p.buf)
	return d
}

// renderDecoded is the readable form of a decode, used in golden files and to
// compare decodes.
func renderDecoded(d decodeResult) string {
	var b strings.Builder
	for i, f := range d.frames {
		fmt.Fprintf(&b, "frame %d: %s\n", i+1, f.Command)
		for _, h := range f.Headers {
			fmt.Fprintf(&b, "  %s: %s\n", strconv.Quote(h.Key), strconv.Quote(h.Value))
		}
		if f.Body == nil {
			b.WriteString("  no body\n")
		} else {
			fmt.Fprintf(&b, "  body %d bytes: %s\n", len(f.Body), strconv.Quote(string(f.Body)))
		}
	}
	if d.err != nil {
		fmt.Fprintf(&b, "error: %v\n", d.err)
	} else {
		fmt.Fprintf(&b, "pending: %d bytes\n", d.pending)
	}
	return b.String()
}

// stompSentinel returns the protocol error err wraps, or err itself.
func stompSentinel(err error) error {
	var se *stompError
	if errors.As(err, &se) {
		return se
	}
	return err
}

// decodeAllSplits decodes in with every chunkSplitter, fails the test unless they
// all agree and the parser stayed within limits.MaxFrame between chunks, and
// returns the one-chunk decode.
func decodeAllSplits(t *testing.T, in []byte, v version, limits frameLimits, cmds map[string]bool) decodeResult {
	t.Helper()
	ref := decodeStream(in, v, limits, cmds, splitOneChunk)
	want := renderDecoded(ref)
	for _, s := range frameSplitters {
		d := decodeStream(in, v, limits, cmds, s.fn)
		if got := renderDecoded(d); got != want {
			t.Errorf("version %s, %s: decode differs from one chunk:\n%s\nwant:\n%s", versionName(v), s.name, got, want)
		}
		if stompSentinel(d.err) != stompSentinel(ref.err) {
			t.Errorf("version %s, %s: error %v, one chunk gave %v", versionName(v), s.name, d.err, ref.err)
		}
		if s.name != "one-chunk" && d.maxPending > limits.MaxFrame {
			t.Errorf("version %s, %s: parser held %d bytes, limit %d", versionName(v), s.name, d.maxPending, limits.MaxFrame)
		}
	}
	return ref
}

// TestFrameGolden decodes every testdata/stomp/*.stomp fixture at each
// version with every read boundary, and compares with the .golden file
// beside it. Fixtures named server-* are read as a client reads them.
func TestFrameGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "stomp", "*.stomp"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".stomp")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cmds := clientCommands
			if strings.HasPrefix(name, "server-") {
				cmds = serverCommands
			}
			var got strings.Builder
			fmt.Fprintf(&got, "# %s.stomp decoded at each parser version; go test -run TestFrameGolden -update rewrites this file\n", name)
			for _, v := range []version{0, v10, v11, v12} {
				fmt.Fprintf(&got, "== %s ==\n%s", versionName(v), renderDecoded(decodeAllSplits(t, in, v, defaultFrameLimits(), cmds)))
			}
			golden := strings.TrimSuffix(path, ".stomp") + ".golden"
			if *updateGolden {
				if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got.String() != string(want) {
				t.Errorf("decode differs from %s (rerun with -update if intended):\n%s\nwant:\n%s", golden, got.String(), want)
			}
		})
	}
}

// TestFrameParse states the decoding rules of STOMP 1.0, 1.1 and 1.2 case by
// case. Every case is decoded with every read boundary.
func TestFrameParse(t *testing.T) {
	escaped := "SEND\ndestination:/q\nx:a\\nb\\cc\\\\d\n\n\x00"
	crEscape := "SEND\ndestination:/q\nx:e\\rf\n\n\x00"
	crlf := "SEND\r\ndestination:/q\r\nx:y\r\n\r\nhi\x00"
	tests := []struct {
		name     string
		in       string
		versions []version // 0 is the unnegotiated parser
		server   bool      // parse as a client does, with serverCommands
		want     []*frame
		err      error
	}{
		// STOMP 1.2 §"Value Encoding": \n \c \\ everywhere from 1.1, \r only in 1.2.
		{"escapes 1.2", escaped + crEscape, []version{0, v12}, false,
			[]*frame{tframe("SEND", "", "destination", "/q", "x", "a\nb:c\\d"), tframe("SEND", "", "destination", "/q", "x", "e\rf")}, nil},
		{"escapes 1.1", escaped, []version{v11}, false,
			[]*frame{tframe("SEND", "", "destination", "/q", "x", "a\nb:c\\d")}, nil},
		{"escape \\r undefined in 1.1", crEscape, []version{v11}, false, nil, errBadEscape},
		{"no escapes in 1.0", escaped + crEscape, []version{v10}, false,
			[]*frame{tframe("SEND", "", "destination", "/q", "x", `a\nb\cc\\d`), tframe("SEND", "", "destination", "/q", "x", `e\rf`)}, nil},
		{"undefined escape \\t", "SEND\nx:a\\tb\n\n\x00", []version{0, v11, v12}, false, nil, errBadEscape},
		{"undefined escape \\t in 1.0 is data", "SEND\nx:a\\tb\n\n\x00", []version{v10}, false,
			[]*frame{tframe("SEND", "", "x", `a\tb`)}, nil},
		{"trailing backslash", "SEND\nx:ab\\\n\n\x00", []version{0, v11, v12}, false, nil, errBadEscape},
		{"trailing backslash in key", "SEND\nx\\:v\n\n\x00", []version{0, v11, v12}, false, nil, errBadEscape},
		{"escaped key", "SEND\nx\\cy\\\\z\\n:v\\c\n\n\x00", []version{0, v11, v12}, false,
			[]*frame{tframe("SEND", "", "x:y\\z\n", "v:")}, nil},
		// CONNECT, STOMP and CONNECTED are never escaped, in any version.
		{"CONNECT not unescaped", "CONNECT\nlogin:a\\cb\npasscode:\\t\\\n\n\x00", []version{0, v10, v11, v12}, false,
			[]*frame{tframe("CONNECT", "", "login", `a\cb`, "passcode", `\t\`)}, nil},
		{"STOMP not unescaped", "STOMP\naccept-version:1.2\nhost:a\\nb\n\n\x00", []version{0, v10, v11, v12}, false,
			[]*frame{tframe("STOMP", "", "accept-version", "1.2", "host", `a\nb`)}, nil},
		{"CONNECTED not unescaped", "CONNECTED\nversion:1.2\nserver:a\\cb\n\n\x00", []version{0, v10, v11, v12}, true,
			[]*frame{tframe("CONNECTED", "", "version", "1.2", "server", `a\cb`)}, nil},
		{"MESSAGE unescaped by a client", "MESSAGE\ndestination:/a\\cb\n\n\x00", []version{0, v11, v12}, true,
			[]*frame{tframe("MESSAGE", "", "destination", "/a:b")}, nil},
		// STOMP 1.2 §"Repeated Header Entries": all kept, the first counts.
		{"repeated headers", "SEND\nfoo:1\nfoo:2\nfoo:3\n\n\x00", []version{0, v10, v11, v12}, false,
			[]*frame{tframe("SEND", "", "foo", "1", "foo", "2", "foo", "3")}, nil},
		// STOMP 1.2 §"STOMP Frames": EOL is an optional CR and a LF; 1.0 and 1.1 only know LF.
		{"CRLF in 1.2", crlf, []version{0, v12}, false,
			[]*frame{tframe("SEND", "hi", "destination", "/q", "x", "y")}, nil},
		{"CR kept as data before 1.2", crlf, []version{v10, v11}, false,
			[]*frame{tframe("SEND", "hi", "destination", "/q\r", "x", "y\r")}, nil},
		{"escaped CR before CRLF", "SEND\r\nx:v\\r\r\n\r\n\x00", []version{0, v12}, false,
			[]*frame{tframe("SEND", "", "x", "v\r")}, nil},
		// STOMP 1.2 §"Heart-beating": EOLs between frames are heart-beats.
		{"heart-beats LF and CRLF", "\n\r\n\nSEND\n\na\x00\n\r\n\r\n\nSEND\n\nb\x00\n", []version{0, v10, v11, v12}, false,
			[]*frame{tframe("SEND", "a"), tframe("SEND", "b")}, nil},
		{"only heart-beats", "\n\n\r\n\n", []version{0, v10, v11, v12}, false, nil, nil},
		// STOMP 1.2 §"Header content-length".
		{"content-length body with NULs", "SEND\ncontent-length:5\n\n\x00a\x00b\x00\x00", []version{0, v10, v11, v12}, false,
			[]*frame{tframe("SEND", "\x00a\x00b\x00", "content-length", "5")}, nil},
		{"content-length zero", "SEND\ncontent-length:0\n\n\x00", []version{0, v10, v11, v12}, false,
			[]*frame{tframe("SEND", "", "content-length", "0")}, nil},
		{"content-length first wins", "SEND\ncontent-length:3\ncontent-length:1\n\na\x00c\x00", []version{0, v12}, false,
			[]*frame{tframe("SEND", "a\x00c", "content-length", "3", "content-length", "1")}, nil},
		{"content-length negative", "SEND\ncontent-length:-1\n\n\x00", []version{0, v10, v11, v12}, false, nil, errBadContentLength},
		{"content-length non-numeric", "SEND\ncontent-length:12abc\n\n\x00", []version{0, v10, v11, v12}, false, nil, errBadContentLength},
		{"content-length empty", "SEND\ncontent-length:\n\n\x00", []version{0, v10, v11, v12}, false, nil, errBadContentLength},
		{"content-length hex", "SEND\ncontent-length:0x10\n\n\x00", []version{0, v12}, false, nil, errBadContentLength},
		{"content-length too big", "SEND\ncontent-length:1000000\n\n", []version{0, v10, v11, v12}, false, nil, errFrameTooLarge},
		{"content-length overflows int", "SEND\ncontent-length:9223372036854775807\n\n", []version{0, v10, v11, v12}, false, nil, errFrameTooLarge},
		{"content-length beyond int64", "SEND\ncontent-length:99999999999999999999\n\n", []version{0, v12}, false, nil, errBadContentLength},
		{"body not NUL-terminated", "SEND\ncontent-length:2\n\nabc\x00", []version{0, v10, v11, v12}, false, nil, errMissingNUL},
		{"body without content-length", "SEND\n\nline1\n\nline2\r\n\x00", []version{0, v12}, false,
			[]*frame{tframe("SEND", "line1\n\nline2\r\n")}, nil},
		{"unknown command", "PUBLISH\n\n\x00", []version{0, v10, v11, v12}, false, nil, errUnknownCommand},
		{"commands are case-sensitive", "send\n\n\x00", []version{0, v12}, false, nil, errUnknownCommand},
		{"server command from a client", "MESSAGE\n\n\x00", []version{0, v12}, false, nil, errUnknownCommand},
		{"client command from the server", "SEND\n\n\x00", []version{0, v12}, true, nil, errUnknownCommand},
		{"malformed header", "SEND\nno-colon\n\n\x00", []version{0, v10, v11, v12}, false, nil, errMalformedHeader},
		{"empty values and key", "SEND\nx:\n:v\n::\n\n\x00", []version{0, v10, v11, v12}, false,
			[]*frame{tframe("SEND", "", "x", "", "", "v", "", ":")}, nil},
		{"frames then error", "SEND\n\nok\x00SEND\nbad\n\n\x00", []version{0, v12}, false,
			[]*frame{tframe("SEND", "ok")}, errMalformedHeader},
		{"NUL inside a header", "SEND\nx:a\x00b\n\nbody\x00", []version{0, v12}, false,
			[]*frame{tframe("SEND", "body", "x", "a\x00b")}, nil},
	}
	for _, tc := range tests {
		for _, v := range tc.versions {
			t.Run(tc.name+"/"+versionName(v), func(t *testing.T) {
				cmds := clientCommands
				if tc.server {
					cmds = serverCommands
				}
				d := decodeAllSplits(t, []byte(tc.in), v, defaultFrameLimits(), cmds)
				if !errors.Is(d.err, tc.err) || (tc.err == nil && d.err != nil) {
					t.Fatalf("error %v, want %v", d.err, tc.err)
				}
				if len(d.frames) != len(tc.want) {
					t.Fatalf("got %d frames, want %d:\n%s", len(d.frames), len(tc.want), renderDecoded(d))
				}
				for i, f := range d.frames {
					if !frameEqual(f, tc.want[i]) {
						t.Errorf("frame %d:\n%s\nwant:\n%s", i, renderDecoded(decodeResult{frames: []*frame{f}}), renderDecoded(decodeResult{frames: []*frame{tc.want[i]}}))
					}
				}
			})
		}
	}
}

// TestFrameEveryCommand parses each client command (STOMP 1.2 §"Client
// Frames") and each server command at each version.
func TestFrameEveryCommand(t *testing.T) {
	for _, side := range []struct {
		name string
		cmds map[string]bool
	}{{"client", clientCommands}, {"server", serverCommands}} {
		names := make([]string, 0, len(side.cmds))
		for c := range side.cmds {
			names = append(names, c)
		}
		slices.Sort(names)
		for _, cmd := range names {
			for _, v := range stompVersions {
				t.Run(side.name+"/"+cmd+"/"+versionName(v), func(t *testing.T) {
					in := cmd + "\nreceipt:77\n\n\x00"
					d := decodeAllSplits(t, []byte(in), v, defaultFrameLimits(), side.cmds)
					if d.err != nil || len(d.frames) != 1 || !frameEqual(d.frames[0], tframe(cmd, "", "receipt", "77")) {
						t.Fatalf("got:\n%s", renderDecoded(d))
					}
					if r, ok := d.frames[0].Get(hdrReceipt); !ok || r != "77" {
						t.Fatalf("Get(receipt) = %q, %v", r, ok)
					}
				})
			}
		}
	}
}

// TestFrameGetFirstWins checks frame.Get and Value against STOMP 1.2
// §"Repeated Header Entries".
func TestFrameGetFirstWins(t *testing.T) {
	f := tframe("SEND", "", "foo", "1", "bar", "", "foo", "2")
	if v, ok := f.Get("foo"); !ok || v != "1" {
		t.Errorf("Get(foo) = %q, %v; want 1, true", v, ok)
	}
	if v, ok := f.Get("bar"); !ok || v != "" {
		t.Errorf("Get(bar) = %q, %v; want empty, true", v, ok)
	}
	if v, ok := f.Get("baz"); ok || v != "" {
		t.Errorf("Get(baz) = %q, %v; want empty, false", v, ok)
	}
	if f.Value("foo") != "1" || f.Value("baz") != "" {
		t.Errorf("Value: %q %q", f.Value("foo"), f.Value("baz"))
	}
	if len(f.Headers) != 3 {
		t.Errorf("repeats not kept: %v", f.Headers)
	}
}

// smallLimits are small limits so each one can be crossed by a short input.
var smallLimits = frameLimits{MaxFrame: 64, MaxHeaders: 3, MaxHeaderLine: 24}

// TestFrameLimits checks every frameLimits bound, at the boundary and past
// it, and that each is enforced before the input that would exceed it has
// all arrived (STOMP 1.2 §"Size Limits").
func TestFrameLimits(t *testing.T) {
	// frameOf returns a SEND frame of exactly n bytes, NUL included.
	frameOf := func(n int, withContentLength bool) string {
		head := "SEND\n\n"
		if withContentLength {
			for body := n - len("SEND\ncontent-length:XX\n\n") - 1; ; {
				head = "SEND\ncontent-length:" + strconv.Itoa(body) + "\n\n"
				if len(head)+body+1 == n {
					return head + strings.Repeat("b", body) + "\x00"
				}
				body = n - len(head) - 1
			}
		}
		return head + strings.Repeat("b", n-len(head)-1) + "\x00"
	}
	tests := []struct {
		name string
		in   string
		want int // frames
		err  error
	}{
		{"headers at limit", "SEND\na:1\nb:2\nc:3\n\n\x00", 1, nil},
		{"too many headers", "SEND\na:1\nb:2\nc:3\nd:4\n\n\x00", 0, errTooManyHeaders},
		{"header line at limit", "SEND\n" + "k:" + strings.Repeat("v", 22) + "\n\n\x00", 1, nil},
		{"header line too long", "SEND\n" + "k:" + strings.Repeat("v", 23) + "\n\n\x00", 0, errHeaderTooLong},
		{"CRLF counts in line length", "SEND\r\n" + "k:" + strings.Repeat("v", 22) + "\r\n\r\n\x00", 0, errHeaderTooLong},
		{"command line too long", strings.Repeat("S", 25) + "\n\n\x00", 0, errHeaderTooLong},
		{"header line never ending", "SEND\nk:" + strings.Repeat("v", 40), 0, errHeaderTooLong},
		{"headers never ending", "SEND\n" + strings.Repeat("k:v\n", 20), 0, errFrameTooLarge},
		{"frame at limit with content-length", frameOf(64, true), 1, nil},
		{"frame over limit with content-length", frameOf(65, true), 0, errFrameTooLarge},
		{"content-length over limit, body not sent", "SEND\ncontent-length:100\n\n", 0, errFrameTooLarge},
		{"frame at limit without content-length", frameOf(64, false), 1, nil},
		{"frame over limit without content-length", frameOf(65, false), 0, errFrameTooLarge},
		{"body never ending", "SEND\n\n" + strings.Repeat("b", 100), 0, errFrameTooLarge},
		{"limits apply per frame", frameOf(64, false) + frameOf(64, true) + "\n\n" + frameOf(64, false), 3, nil},
		{"heart-beats do not count", strings.Repeat("\n", 100) + frameOf(64, false), 1, nil},
	}
	for _, tc := range tests {
		for _, v := range []version{0, v10, v11, v12} {
			t.Run(tc.name+"/"+versionName(v), func(t *testing.T) {
				d := decodeAllSplits(t, []byte(tc.in), v, smallLimits, clientCommands)
				if !errors.Is(d.err, tc.err) || (tc.err == nil && d.err != nil) {
					t.Fatalf("error %v, want %v\n%s", d.err, tc.err, renderDecoded(d))
				}
				if len(d.frames) != tc.want {
					t.Fatalf("got %d frames, want %d", len(d.frames), tc.want)
				}
			})
		}
	}
}

// TestFrameReadBoundaries decodes one long stream (every fixture that
// decodes cleanly, a 40 KiB content-length frame, heart-beats between) with
// many read boundaries, and requires the same frames each time.
func TestFrameReadBoundaries(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "stomp", "*.stomp"))
	var stream []byte
	for _, path := range files {
		if strings.HasPrefix(filepath.Base(path), "server-") {
			continue
		}
		in, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if d := decodeStream(in, v12, defaultFrameLimits(), clientCommands, splitOneChunk); d.err == nil && d.pending == 0 {
			stream = append(append(stream, in...), "\r\n\n"...)
		}
	}
	big := bytes.Repeat([]byte("0123456789\x00"), 40<<10/11)
	stream = appendFrame(stream, &frame{Command: cmdSend, Body: big}, v12)
	stream = append(stream, "SEND\ndestination:/last\n\n\x00"...)
	ref := decodeStream(stream, v12, defaultFrameLimits(), clientCommands, splitOneChunk)
	if ref.err != nil || len(ref.frames) < 20 {
		t.Fatalf("reference decode: %d frames, %v", len(ref.frames), ref.err)
	}
	want := renderDecoded(ref)
	extra := []struct {
		name string
		fn   chunkSplitter
	}{
		{"fixed-1", fixedChunkSplitter(1)}, {"fixed-2", fixedChunkSplitter(2)}, {"fixed-3", fixedChunkSplitter(3)},
		{"fixed-4096", fixedChunkSplitter(4096)}, {"fixed-16384", fixedChunkSplitter(16 << 10)},
	}
	for seed := range uint64(8) {
		extra = append(extra, struct {
			name string
			fn   chunkSplitter
		}{fmt.Sprintf("random-seed-%d", seed), randomChunkSplitter(seed, 1+int(seed)*997)})
	}
	for _, s := range append(frameSplitters, extra...) {
		t.Run(s.name, func(t *testing.T) {
			if got := renderDecoded(decodeStream(stream, v12, defaultFrameLimits(), clientCommands, s.fn)); got != want {
				t.Fatalf("decode differs from one chunk")
			}
		})
	}
}

// TestFrameNoAliasing checks that returned frames do not share memory with
// the parser: later input must not change them.
func TestFrameNoAliasing(t *testing.T) {
	p := newFrameParser(defaultFrameLimits())
	p.Feed([]byte("SEND\nk:v\ncontent-length:3\n\nabc\x00SEND\nk:"))
	f, err := p.Next()
	if err != nil || f == nil {
		t.Fatalf("Next: %v %v", f, err)
	}
	p.Feed([]byte("zzzzzzzzzzzzzzzzzzzz\n\nxyzxyzxyzxyzxyz\x00"))
	g, err := p.Next()
	if err != nil || g == nil {
		t.Fatalf("Next: %v %v", g, err)
	}
	if !frameEqual(f, tframe("SEND", "abc", "k", "v", "content-length", "3")) {
		t.Fatalf("first frame changed: %v %q", f.Headers, f.Body)
	}
}

// TestFrameParserIdleHoldsNothing checks that a parser between frames keeps
// no buffer (an idle connection's parser costs no memory for the frames it
// last read), and that it keeps its own copy of a partial frame.
func TestFrameParserIdleHoldsNothing(t *testing.T) {
	p := newFrameParser(defaultFrameLimits())
	p.Feed([]byte("SEND\ndestination:/a\n\nhi\x00\nSEND\ndestination:/b\n\n\x00\n"))
	for n := 0; ; n++ {
		f, err := p.Next()
		if err != nil {
			t.Fatal(err)
		}
		if f == nil {
			if n != 2 {
				t.Fatalf("%d frames, want 2", n)
			}
			break
		}
	}
	if p.buf != nil || p.own != nil || p.borrowed {
		t.Fatalf("parser between frames holds %d bytes (cap %d, own cap %d), borrowed %v", len(p.buf), cap(p.buf), cap(p.own), p.borrowed)
	}
	chunk := []byte("SEND\ndestination:/c\n\nab")
	p.Feed(chunk)
	if f, err := p.Next(); f != nil || err != nil {
		t.Fatalf("Next on a partial frame: %v, %v", f, err)
	}
	if p.borrowed || len(p.buf) != len(chunk) || &p.buf[0] == &chunk[0] {
		t.Fatalf("partial frame not copied: borrowed %v, %d bytes", p.borrowed, len(p.buf))
	}
}

// TestCodecAppendFrame pins the wire form appendFrame writes for each
// version and command.
func TestCodecAppendFrame(t *testing.T) {
	tricky := "a:b\nc\\d\re"
	tests := []struct {
		name string
		f    *frame
		v    version
		want string
	}{
		{"SEND 1.2 escapes all four", tframe("SEND", "", "x", tricky), v12, "SEND\nx:a\\cb\\nc\\\\d\\re\n\n\x00"},
		{"SEND 1.1 leaves CR", tframe("SEND", "", "x", tricky), v11, "SEND\nx:a\\cb\\nc\\\\d\re\n\n\x00"},
		{"SEND 1.0 no escaping", tframe("SEND", "", "x", "a:b\\c\rd"), v10, "SEND\nx:a:b\\c\rd\n\n\x00"},
		{"key escaped", tframe("MESSAGE", "", "k:\n", "v"), v12, "MESSAGE\nk\\c\\n:v\n\n\x00"},
		{"CONNECTED never escaped", tframe("CONNECTED", "", "version", "1.2", "server", "a:b\\c"), v12, "CONNECTED\nversion:1.2\nserver:a:b\\c\n\n\x00"},
		{"CONNECT never escaped", tframe("CONNECT", "", "login", "a:b\\c"), v11, "CONNECT\nlogin:a:b\\c\n\n\x00"},
		{"STOMP never escaped", tframe("STOMP", "", "passcode", "p\\:"), v12, "STOMP\npasscode:p\\:\n\n\x00"},
		{"content-length added", tframe("MESSAGE", "hello", "destination", "/a"), v12, "MESSAGE\ndestination:/a\ncontent-length:5\n\nhello\x00"},
		{"content-length counts bytes", tframe("SEND", "안녕"), v11, "SEND\ncontent-length:6\n\n안녕\x00"},
		{"content-length not duplicated", tframe("SEND", "hi", "content-length", "2"), v12, "SEND\ncontent-length:2\n\nhi\x00"},
		{"no content-length for empty body", tframe("RECEIPT", "", "receipt-id", "7"), v12, "RECEIPT\nreceipt-id:7\n\n\x00"},
		{"NUL in body", tframe("MESSAGE", "a\x00b"), v10, "MESSAGE\ncontent-length:3\n\na\x00b\x00"},
		{"ERROR escaped", tframe("ERROR", "x", "message", "bad: frame"), v12, "ERROR\nmessage:bad\\c frame\ncontent-length:1\n\nx\x00"},
		{"no headers", tframe("DISCONNECT", ""), v10, "DISCONNECT\n\n\x00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("prefix")
			got := appendFrame(prefix, tc.f, tc.v)
			if string(got) != "prefix"+tc.want {
				t.Fatalf("got  %q\nwant %q", got[len("prefix"):], tc.want)
			}
		})
	}
}

// TestCodecAppendFrameEveryCommand checks the escaping rule for every
// command at every version: escaped from 1.1 on, except CONNECT, STOMP and
// CONNECTED (STOMP 1.2 §"Value Encoding"); and that each decodes back.
func TestCodecAppendFrameEveryCommand(t *testing.T) {
	for _, side := range []map[string]bool{clientCommands, serverCommands} {
		for cmd := range side {
			for _, v := range stompVersions {
				t.Run(cmd+"/"+v.String(), func(t *testing.T) {
					f := tframe(cmd, "b\x00dy", "k\\", "a:b")
					unescaped := v == v10 || cmd == cmdConnect || cmd == cmdStomp || cmd == cmdConnected
					want := cmd + "\nk\\\\:a\\cb\ncontent-length:4\n\nb\x00dy\x00"
					if unescaped {
						want = cmd + "\nk\\:a:b\ncontent-length:4\n\nb\x00dy\x00"
					}
					enc := appendFrame(nil, f, v)
					if string(enc) != want {
						t.Fatalf("got  %q\nwant %q", enc, want)
					}
					d := decodeStream(enc, v, defaultFrameLimits(), side, splitOneChunk)
					if d.err != nil || len(d.frames) != 1 || !frameEqual(d.frames[0], withContentLength(f)) {
						t.Fatalf("decoded:\n%s", renderDecoded(d))
					}
				})
			}
		}
	}
}

// TestEscapeHeader checks appendEscaped and unescapeHeader against STOMP 1.2
// §"Value Encoding" for each version.
func TestEscapeHeader(t *testing.T) {
	tests := []struct {
		in   string
		v    version
		want string
	}{
		{"plain", v12, "plain"},
		{"", v12, ""},
		{"a\nb", v12, `a\nb`},
		{"a:b", v12, `a\cb`},
		{`a\b`, v12, `a\\b`},
		{"a\rb", v12, `a\rb`},
		{"a\rb", v11, "a\rb"},
		{"a\nb:c\\", v11, `a\nb\cc\\`},
		{"a:b\\c\r", v10, "a:b\\c\r"},
		{"한국어:값", v12, `한국어\c값`},
		{"\x00\t", v12, "\x00\t"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%q", tc.v, tc.in), func(t *testing.T) {
			got := string(appendEscaped(nil, tc.in, tc.v))
			if got != tc.want {
				t.Fatalf("appendEscaped = %q, want %q", got, tc.want)
			}
			if tc.v == v10 {
				return // 1.0 has no unescaping
			}
			back, err := unescapeHeader(got, tc.v)
			if err != nil || back != tc.in {
				t.Fatalf("unescapeHeader(%q) = %q, %v; want %q", got, back, err, tc.in)
			}
		})
	}
	bad := []struct {
		in string
		v  version
	}{
		{`\t`, v12}, {`\t`, v11}, {`a\`, v12}, {`\`, v11}, {`\r`, v11}, {`\x41`, v12}, {`\N`, v12}, {`\C`, v12}, {`\ `, v12}, {`ok\n\`, v12},
	}
	for _, tc := range bad {
		t.Run(fmt.Sprintf("bad/%s/%q", tc.v, tc.in), func(t *testing.T) {
			if got, err := unescapeHeader(tc.in, tc.v); !errors.Is(err, errBadEscape) {
				t.Fatalf("unescapeHeader(%q) = %q, %v; want errBadEscape", tc.in, got, err)
			}
		})
	}
}

// randomHeaderText returns a short string over an alphabet heavy in the bytes
// escaping is about. Without escaping (1.0, CONNECT, CONNECTED) no header
// can carry LF and no key can carry a colon, so those are left out; in 1.2
// a CR before the line's LF is part of the EOL, so unescaped values do not
// end in CR.
func randomHeaderText(r *rand.Rand, escaped, isKey bool, v version) string {
	alphabet := []string{"a", "Z", "0", "-", " ", "/", ":", "\\", "\n", "\r", "\x00", "\t", "é", "한", "\\n", "\\c"}
	var b strings.Builder
	for range r.IntN(8) {
		s := alphabet[r.IntN(len(alphabet))]
		if !escaped && (s == "\n" || (isKey && s == ":")) {
			continue
		}
		b.WriteString(s)
	}
	s := b.String()
	if !escaped && !isKey && v == v12 {
		s = strings.TrimRight(s, "\r")
	}
	return s
}

// randomStompFrame returns a frame of one of cmds whose headers and body the
// version can carry.
func randomStompFrame(r *rand.Rand, v version, cmds []string) *frame {
	f := &frame{Command: cmds[r.IntN(len(cmds))]}
	escaped := v != v10 && f.Command != cmdConnect && f.Command != cmdStomp && f.Command != cmdConnected
	for range r.IntN(6) {
		f.Add(randomHeaderText(r, escaped, true, v), randomHeaderText(r, escaped, false, v))
	}
	if r.IntN(3) > 0 {
		f.Body = make([]byte, r.IntN(300))
		for i := range f.Body {
			f.Body[i] = byte(r.IntN(256))
		}
	}
	return f
}

// withContentLength returns the frame a parser sees after appendFrame: f plus the
// content-length header appendFrame adds.
func withContentLength(f *frame) *frame {
	g := &frame{Command: f.Command, Headers: slices.Clone(f.Headers), Body: f.Body}
	if _, ok := g.Get(hdrContentLength); !ok && len(g.Body) > 0 {
		g.Add(hdrContentLength, strconv.Itoa(len(g.Body)))
	}
	return g
}

// TestCodecRoundTrip is a seeded property test: random frames of every
// command, encoded for a version, decode to the same frames at that version,
// one at a time and as one stream with heart-beats cut at random points.
func TestCodecRoundTrip(t *testing.T) {
	const frames = 2000 // per version and side; enough to hit every alphabet mix, fast under -race
	for _, v := range stompVersions {
		for _, side := range []struct {
			name string
			cmds map[string]bool
		}{{"client", clientCommands}, {"server", serverCommands}} {
			t.Run(v.String()+"/"+side.name, func(t *testing.T) {
				var names []string
				for c := range side.cmds {
					names = append(names, c)
				}
				slices.Sort(names)
				r := rand.New(rand.NewPCG(uint64(v), 2026))
				var stream []byte
				var want []*frame
				for range frames {
					f := randomStompFrame(r, v, names)
					enc := appendFrame(nil, f, v)
					d := decodeStream(enc, v, defaultFrameLimits(), side.cmds, splitOneChunk)
					if d.err != nil || len(d.frames) != 1 || d.pending != 0 || !frameEqual(d.frames[0], withContentLength(f)) {
						t.Fatalf("round trip of %q:\n%s\nwant:\n%s", enc, renderDecoded(d), renderDecoded(decodeResult{frames: []*frame{withContentLength(f)}}))
					}
					stream = append(stream, enc...)
					stream = append(stream, []string{"", "\n", "\r\n", "\n\n"}[r.IntN(4)]...)
					want = append(want, withContentLength(f))
				}
				for seed := range uint64(3) {
					d := decodeStream(stream, v, defaultFrameLimits(), side.cmds, randomChunkSplitter(seed, 100))
					if d.err != nil || len(d.frames) != len(want) {
						t.Fatalf("stream: %d frames, %v", len(d.frames), d.err)
					}
					for i := range want {
						if !frameEqual(d.frames[i], want[i]) {
							t.Fatalf("stream frame %d differs", i)
						}
					}
				}
			})
		}
	}
}

// TestNegotiateVersion follows STOMP 1.2 §"Protocol Negotiation" and the
// WebSocket subprotocols v10.stomp, v11.stomp and v12.stomp, which cap it.
func TestNegotiateVersion(t *testing.T) {
	tests := []struct {
		accept    string
		hasAccept bool
		sub       string
		want      version
		err       error
	}{
		{"", false, "", v10, nil},
		{"1.0", true, "", v10, nil},
		{"1.1", true, "", v11, nil},
		{"1.2", true, "", v12, nil},
		{"1.0,1.1,1.2", true, "", v12, nil},
		{"1.2,1.0", true, "", v12, nil},
		{"1.0,1.1", true, "", v11, nil},
		{" 1.0 , 1.1 ", true, "", v11, nil},
		{"1.1,2.0,1.3", true, "", v11, nil},
		{"2.0", true, "", 0, errVersionUnsupported},
		{"", true, "", 0, errVersionUnsupported},
		{"1.2.0,v1.2,12", true, "", 0, errVersionUnsupported},
		{"1.0,1.1,1.2", true, "v10.stomp", v10, nil},
		{"1.0,1.1,1.2", true, "v11.stomp", v11, nil},
		{"1.0,1.1,1.2", true, "v12.stomp", v12, nil},
		{"1.2", true, "v11.stomp", 0, errVersionUnsupported},
		{"1.1,1.2", true, "v10.stomp", 0, errVersionUnsupported},
		{"1.0", true, "v12.stomp", v10, nil},
		{"1.2", true, "stomp", v12, nil}, // unknown subprotocol: no cap
		// Without accept-version a WebSocket subprotocol names the version
		// (stompbox's own choice; plain STOMP 1.2 says 1.0).
		{"", false, "v11.stomp", v11, nil},
		{"", false, "v12.stomp", v12, nil},
		{"", false, "v10.stomp", v10, nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q/%v/%q", tc.accept, tc.hasAccept, tc.sub), func(t *testing.T) {
			got, err := negotiateVersion(tc.accept, tc.hasAccept, tc.sub)
			if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("negotiateVersion = %v, %v; want %v, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// TestParseHeartBeat covers the heart-beat header grammar of STOMP 1.2
// §"Heart-beating": two non-negative integers separated by a comma.
func TestParseHeartBeat(t *testing.T) {
	tests := []struct {
		in      string
		present bool
		cx, cy  int
		err     error
	}{
		{"", false, 0, 0, nil},
		{"0,0", true, 0, 0, nil},
		{"4000,6000", true, 4000, 6000, nil},
		{"10000,10000", true, 10000, 10000, nil},
		{" 100 , 200 ", true, 100, 200, nil},
		{"0,1000", true, 0, 1000, nil},
		{"", true, 0, 0, errBadHeartBeat},
		{"1000", true, 0, 0, errBadHeartBeat},
		{"1000,", true, 0, 0, errBadHeartBeat},
		{",1000", true, 0, 0, errBadHeartBeat},
		{"-1,0", true, 0, 0, errBadHeartBeat},
		{"0,-5", true, 0, 0, errBadHeartBeat},
		{"a,b", true, 0, 0, errBadHeartBeat},
		{"1,2,3", true, 0, 0, errBadHeartBeat},
		{"1.5,2", true, 0, 0, errBadHeartBeat},
		{"99999999999999999999,0", true, 0, 0, errBadHeartBeat},
		// Capped: 76480200929599801 ms times time.Millisecond wraps to 64 ns,
		// which made the server write a heart-beat every 64 ns.
		{"0,76480200929599801", true, 0, maxHeartBeat, nil},
		{"76480200929599801,9223372036854775807", true, maxHeartBeat, maxHeartBeat, nil},
		{"86400000,86400001", true, maxHeartBeat, maxHeartBeat, nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q/%v", tc.in, tc.present), func(t *testing.T) {
			cx, cy, err := parseHeartBeat(tc.in, tc.present)
			if cx != tc.cx || cy != tc.cy || !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("parseHeartBeat = %d, %d, %v; want %d, %d, %v", cx, cy, err, tc.cx, tc.cy, tc.err)
			}
		})
	}
}

// TestNegotiateHeartBeat follows STOMP 1.2 §"Heart-beating": client to
// server is 0 if cx or sy is 0, else MAX(cx, sy); server to client likewise
// with sx and cy.
func TestNegotiateHeartBeat(t *testing.T) {
	tests := []struct {
		name             string
		cx, cy, sx, sy   int
		wantSend, wantRv int
	}{
		{"both decline", 0, 0, 0, 0, 0, 0},
		{"client declines", 0, 0, 10000, 10000, 0, 0},
		{"server declines", 10000, 10000, 0, 0, 0, 0},
		{"equal", 10000, 10000, 10000, 10000, 10000, 10000},
		{"client can send, server wants slower", 1000, 0, 0, 5000, 0, 5000},
		{"client wants to receive every 4s, server can every 10s", 0, 4000, 10000, 0, 10000, 0},
		{"spec-style 4000,6000 against 10000,10000", 4000, 6000, 10000, 10000, 10000, 10000},
		{"larger of the two", 20000, 30000, 10000, 10000, 30000, 20000},
		{"one direction only", 0, 5000, 1000, 1000, 5000, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			send, recv := negotiateHeartBeat(tc.cx, tc.cy, tc.sx, tc.sy)
			if send != tc.wantSend || recv != tc.wantRv {
				t.Fatalf("negotiateHeartBeat(%d,%d,%d,%d) = %d, %d; want %d, %d", tc.cx, tc.cy, tc.sx, tc.sy, send, recv, tc.wantSend, tc.wantRv)
			}
		})
	}
}

// TestStompClientMessage checks that protocol errors reach the client in
// their own words and anything else as "internal error".
func TestStompClientMessage(t *testing.T) {
	tests := []struct {
		err     error
		want    string
		visible bool
	}{
		{errBadEscape, "undefined escape sequence in header", true},
		{fmt.Errorf("%w %q", errUnknownCommand, "PUBLISH"), `unknown command "PUBLISH"`, true},
		{fmt.Errorf("%w: 70000 bytes", errFrameTooLarge), "frame exceeds the size limit: 70000 bytes", true},
		{errors.New("disk full at /var/lib/x"), "internal error", false},
		{io.EOF, "internal error", false},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			got, visible := clientMessage(tc.err)
			if got != tc.want || visible != tc.visible {
				t.Fatalf("clientMessage(%v) = %q, %v; want %q, %v", tc.err, got, visible, tc.want, tc.visible)
			}
		})
	}
}

// TestCodecMessageEncoding checks the broker's fan-out path: the MESSAGE
// head written per delivery by session.encode plus the tail shared through
// message.encoded must decode, at each version, to the MESSAGE frame
// appendFrame would have written.
func TestCodecMessageEncoding(t *testing.T) {
	userHeaders := []header{{hdrContentType, "text/plain;charset=utf-8"}, {"x-note", "a:b\\c\nd"}, {"x-이름", "홍길동"}}
	body := []byte("안녕\x00하세요")
	for _, v := range stompVersions {
		for _, ack := range []ackMode{ackAuto, ackClient, ackClientIndividual} {
			t.Run(fmt.Sprintf("%s/ack-%d", v, ack), func(t *testing.T) {
				s := &session{idStr: "k3"}
				sub := &subscription{sess: s, id: "sub:0", ack: ack}
				m := &message{dest: "/topic/room-1", headers: userHeaders, body: body}
				it := outItem{sub: sub, msg: m, seq: 42}
				got := s.encode([]byte("prev"), &it, v)
				if !bytes.HasPrefix(got, []byte("prev")) {
					t.Fatalf("encode overwrote the buffer: %q", got)
				}
				got = got[len("prev"):]

				want := tframe(cmdMessage, string(body), hdrSubscription, "sub:0", hdrMessageID, "k3-42")
				if v == v12 && ack != ackAuto {
					want.Add(hdrAck, "k3-42") // STOMP 1.2 §MESSAGE: ack header for client ack modes
				}
				want.Add(hdrDestination, "/topic/room-1")
				want.Headers = append(want.Headers, userHeaders...)
				want.Add(hdrContentLength, strconv.Itoa(len(body)))
				wantDecoded := withContentLength(want)
				if v == v10 {
					// 1.0 cannot carry LF in a header; see TestCodecNoHeaderInjection.
					wantDecoded.Headers[len(wantDecoded.Headers)-3].Value = "a:b\\c d"
				}
				if enc := appendFrame(nil, want, v); !bytes.Equal(got, enc) {
					t.Errorf("encode differs from appendFrame:\n got %q\nwant %q", got, enc)
				}
				d := decodeAllSplits(t, got, v, defaultFrameLimits(), serverCommands)
				if d.err != nil || len(d.frames) != 1 || !frameEqual(d.frames[0], wantDecoded) {
					t.Fatalf("decoded:\n%s\nwant:\n%s", renderDecoded(d), renderDecoded(decodeResult{frames: []*frame{wantDecoded}}))
				}
				if a, b := m.encoded(v), m.encoded(v); &a[0] != &b[0] {
					t.Errorf("message.encoded(%s) re-encoded instead of reusing", v)
				}
			})
		}
	}
	t.Run("server frame item", func(t *testing.T) {
		s := &session{idStr: "k3"}
		rf := tframe(cmdReceipt, "", hdrReceiptID, "r:1")
		for _, v := range stompVersions {
			if got, want := s.encode(nil, &outItem{frame: rf}, v), appendFrame(nil, rf, v); !bytes.Equal(got, want) {
				t.Errorf("%s: %q, want %q", v, got, want)
			}
		}
	})
}

// TestCodecNoHeaderInjection: a header value that holds LF (a 1.1/1.2 client
// can send one as \n) must not start a new header or frame when the frame is
// written without escaping, as for a 1.0 subscriber or a CONNECTED frame.
func TestCodecNoHeaderInjection(t *testing.T) {
	evil := "x\ncontent-length:1\n\nA\x00MESSAGE\ndestination:/forged"
	for _, tc := range []struct {
		name string
		f    *frame
		v    version
		cmds map[string]bool
	}{
		{"MESSAGE 1.0", tframe(cmdMessage, "body", hdrDestination, "/topic/a", "x-evil", evil), v10, serverCommands},
		{"CONNECTED 1.2", tframe(cmdConnected, "", hdrVersion, "1.2", hdrUserName, evil), v12, serverCommands},
		{"CONNECT 1.2", tframe(cmdConnect, "", hdrLogin, evil), v12, clientCommands},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := appendFrame(nil, tc.f, tc.v)
			d := decodeStream(enc, tc.v, defaultFrameLimits(), tc.cmds, splitOneChunk)
			if d.err != nil || len(d.frames) != 1 || d.pending != 0 {
				t.Fatalf("%q decoded as:\n%s", enc, renderDecoded(d))
			}
			got := d.frames[0]
			if len(got.Headers) != len(withContentLength(tc.f).Headers) || !bytes.Equal(got.Body, tc.f.Body) {
				t.Fatalf("headers or body changed:\n%s", renderDecoded(d))
			}
		})
	}
	t.Run("message.encoded 1.0", func(t *testing.T) {
		s := &session{idStr: "1"}
		m := &message{dest: "/topic/a", headers: []header{{"x-evil", evil}}, body: []byte("real")}
		enc := s.encode(nil, &outItem{sub: &subscription{sess: s, id: "0"}, msg: m, seq: 1}, v10)
		d := decodeStream(enc, v10, defaultFrameLimits(), serverCommands, splitOneChunk)
		if d.err != nil || len(d.frames) != 1 || string(d.frames[0].Body) != "real" || d.frames[0].Value(hdrContentLength) != "4" {
			t.Fatalf("%q decoded as:\n%s", enc, renderDecoded(d))
		}
	})
}
