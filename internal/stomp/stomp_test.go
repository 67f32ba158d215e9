package stomp_test

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
	"stompbox/internal/stomp"
	"stompbox/internal/stomp/stomptest"
	"strconv"
	"strings"
	"testing"
)

// updateGolden rewrites the golden files under testdata/ instead of comparing
// with them.
var updateGolden = flag.Bool("update", false, "rewrite golden files under testdata/")

// stompVersions are the versions a session can negotiate.
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
			cmds := stomp.ClientCommands
			if strings.HasPrefix(name, "server-") {
				cmds = stomp.ServerCommands
			}
			var got strings.Builder
			fmt.Fprintf(&got, "# %s.stomp decoded at each parser version; go test -run TestFrameGolden -update rewrites this file\n", name)
			for _, v := range []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12} {
				fmt.Fprintf(&got, "== %s ==\n%s", stomptest.VersionName(v), stomptest.Render(stomptest.DecodeAllSplits(t, in, v, stomp.DefaultLimits(), cmds)))
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
		versions []stomp.Version // 0 is the unnegotiated parser
		server   bool            // parse as a client does, with serverCommands
		want     []*stomp.Frame
		err      error
	}{
		// STOMP 1.2 §"Value Encoding": \n \c \\ everywhere from 1.1, \r only in 1.2.
		{"escapes 1.2", escaped + crEscape, []stomp.Version{0, stomp.V12}, false,
			[]*stomp.Frame{stomptest.Frame("SEND", "", "destination", "/q", "x", "a\nb:c\\d"), stomptest.Frame("SEND", "", "destination", "/q", "x", "e\rf")}, nil},
		{"escapes 1.1", escaped, []stomp.Version{stomp.V11}, false,
			[]*stomp.Frame{stomptest.Frame("SEND", "", "destination", "/q", "x", "a\nb:c\\d")}, nil},
		{"escape \\r undefined in 1.1", crEscape, []stomp.Version{stomp.V11}, false, nil, stomp.ErrBadEscape},
		{"no escapes in 1.0", escaped + crEscape, []stomp.Version{stomp.V10}, false,
			[]*stomp.Frame{stomptest.Frame("SEND", "", "destination", "/q", "x", `a\nb\cc\\d`), stomptest.Frame("SEND", "", "destination", "/q", "x", `e\rf`)}, nil},
		{"undefined escape \\t", "SEND\nx:a\\tb\n\n\x00", []stomp.Version{0, stomp.V11, stomp.V12}, false, nil, stomp.ErrBadEscape},
		{"undefined escape \\t in 1.0 is data", "SEND\nx:a\\tb\n\n\x00", []stomp.Version{stomp.V10}, false,
			[]*stomp.Frame{stomptest.Frame("SEND", "", "x", `a\tb`)}, nil},
		{"trailing backslash", "SEND\nx:ab\\\n\n\x00", []stomp.Version{0, stomp.V11, stomp.V12}, false, nil, stomp.ErrBadEscape},
		{"trailing backslash in key", "SEND\nx\\:v\n\n\x00", []stomp.Version{0, stomp.V11, stomp.V12}, false, nil, stomp.ErrBadEscape},
		{"escaped key", "SEND\nx\\cy\\\\z\\n:v\\c\n\n\x00", []stomp.Version{0, stomp.V11, stomp.V12}, false,
			[]*stomp.Frame{stomptest.Frame("SEND", "", "x:y\\z\n", "v:")}, nil},
		// CONNECT, STOMP and CONNECTED are never escaped, in any version.
		{"CONNECT not unescaped", "CONNECT\nlogin:a\\cb\npasscode:\\t\\\n\n\x00", []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12}, false,
			[]*stomp.Frame{stomptest.Frame("CONNECT", "", "login", `a\cb`, "passcode", `\t\`)}, nil},
		{"STOMP not unescaped", "STOMP\naccept-version:1.2\nhost:a\\nb\n\n\x00", []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12}, false,
			[]*stomp.Frame{stomptest.Frame("STOMP", "", "accept-version", "1.2", "host", `a\nb`)}, nil},
		{"CONNECTED not unescaped", "CONNECTED\nversion:1.2\nserver:a\\cb\n\n\x00", []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12}, true,
			[]*stomp.Frame{stomptest.Frame("CONNECTED", "", "version", "1.2", "server", `a\cb`)}, nil},
		{"MESSAGE unescaped by a client", "MESSAGE\ndestination:/a\\cb\n\n\x00", []stomp.Version{0, stomp.V11, stomp.V12}, true,
			[]*stomp.Frame{stomptest.Frame("MESSAGE", "", "destination", "/a:b")}, nil},
		// STOMP 1.2 §"Repeated Header Entries": all kept, the first counts.
		{"repeated headers", "SEND\nfoo:1\nfoo:2\nfoo:3\n\n\x00", []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12}, false,
			[]*stomp.Frame{stomptest.Frame("SEND", "", "foo", "1", "foo", "2", "foo", "3")}, nil},
		// STOMP 1.2 §"STOMP Frames": EOL is an optional CR and a LF; 1.0 and 1.1 only know LF.
		{"CRLF in 1.2", crlf, []stomp.Version{0, stomp.V12}, false,
			[]*stomp.Frame{stomptest.Frame("SEND", "hi", "destination", "/q", "x", "y")}, nil},
		{"CR kept as data before 1.2", crlf, []stomp.Version{stomp.V10, stomp.V11}, false,
			[]*stomp.Frame{stomptest.Frame("SEND", "hi", "destination", "/q\r", "x", "y\r")}, nil},
		{"escaped CR before CRLF", "SEND\r\nx:v\\r\r\n\r\n\x00", []stomp.Version{0, stomp.V12}, false,
			[]*stomp.Frame{stomptest.Frame("SEND", "", "x", "v\r")}, nil},
		// STOMP 1.2 §"Heart-beating": EOLs between frames are heart-beats.
		{"heart-beats LF and CRLF", "\n\r\n\nSEND\n\na\x00\n\r\n\r\n\nSEND\n\nb\x00\n", []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12}, false,
			[]*stomp.Frame{stomptest.Frame("SEND", "a"), stomptest.Frame("SEND", "b")}, nil},
		{"only heart-beats", "\n\n\r\n\n", []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12}, false, nil, nil},
		// STOMP 1.2 §"Header content-length".
		{"content-length body with NULs", "SEND\ncontent-length:5\n\n\x00a\x00b\x00\x00", []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12}, false,
			[]*stomp.Frame{stomptest.Frame("SEND", "\x00a\x00b\x00", "content-length", "5")}, nil},
		{"content-length zero", "SEND\ncontent-length:0\n\n\x00", []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12}, false,
			[]*stomp.Frame{stomptest.Frame("SEND", "", "content-length", "0")}, nil},
		{"content-length first wins", "SEND\ncontent-length:3\ncontent-length:1\n\na\x00c\x00", []stomp.Version{0, stomp.V12}, false,
			[]*stomp.Frame{stomptest.Frame("SEND", "a\x00c", "content-length", "3", "content-length", "1")}, nil},
		{"content-length negative", "SEND\ncontent-length:-1\n\n\x00", []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12}, false, nil, stomp.ErrBadContentLength},
		{"content-length non-numeric", "SEND\ncontent-length:12abc\n\n\x00", []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12}, false, nil, stomp.ErrBadContentLength},
		{"content-length empty", "SEND\ncontent-length:\n\n\x00", []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12}, false, nil, stomp.ErrBadContentLength},
		{"content-length hex", "SEND\ncontent-length:0x10\n\n\x00", []stomp.Version{0, stomp.V12}, false, nil, stomp.ErrBadContentLength},
		{"content-length too big", "SEND\ncontent-length:1000000\n\n", []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12}, false, nil, stomp.ErrFrameTooLarge},
		{"content-length overflows int", "SEND\ncontent-length:9223372036854775807\n\n", []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12}, false, nil, stomp.ErrFrameTooLarge},
		{"content-length beyond int64", "SEND\ncontent-length:99999999999999999999\n\n", []stomp.Version{0, stomp.V12}, false, nil, stomp.ErrBadContentLength},
		{"body not NUL-terminated", "SEND\ncontent-length:2\n\nabc\x00", []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12}, false, nil, stomp.ErrMissingNUL},
		{"body without content-length", "SEND\n\nline1\n\nline2\r\n\x00", []stomp.Version{0, stomp.V12}, false,
			[]*stomp.Frame{stomptest.Frame("SEND", "line1\n\nline2\r\n")}, nil},
		{"unknown command", "PUBLISH\n\n\x00", []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12}, false, nil, stomp.ErrUnknownCommand},
		{"commands are case-sensitive", "send\n\n\x00", []stomp.Version{0, stomp.V12}, false, nil, stomp.ErrUnknownCommand},
		{"server command from a client", "MESSAGE\n\n\x00", []stomp.Version{0, stomp.V12}, false, nil, stomp.ErrUnknownCommand},
		{"client command from the server", "SEND\n\n\x00", []stomp.Version{0, stomp.V12}, true, nil, stomp.ErrUnknownCommand},
		{"malformed header", "SEND\nno-colon\n\n\x00", []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12}, false, nil, stomp.ErrMalformedHeader},
		{"empty values and key", "SEND\nx:\n:v\n::\n\n\x00", []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12}, false,
			[]*stomp.Frame{stomptest.Frame("SEND", "", "x", "", "", "v", "", ":")}, nil},
		{"frames then error", "SEND\n\nok\x00SEND\nbad\n\n\x00", []stomp.Version{0, stomp.V12}, false,
			[]*stomp.Frame{stomptest.Frame("SEND", "ok")}, stomp.ErrMalformedHeader},
		{"NUL inside a header", "SEND\nx:a\x00b\n\nbody\x00", []stomp.Version{0, stomp.V12}, false,
			[]*stomp.Frame{stomptest.Frame("SEND", "body", "x", "a\x00b")}, nil},
	}
	for _, tc := range tests {
		for _, v := range tc.versions {
			t.Run(tc.name+"/"+stomptest.VersionName(v), func(t *testing.T) {
				cmds := stomp.ClientCommands
				if tc.server {
					cmds = stomp.ServerCommands
				}
				d := stomptest.DecodeAllSplits(t, []byte(tc.in), v, stomp.DefaultLimits(), cmds)
				if !errors.Is(d.Err, tc.err) || (tc.err == nil && d.Err != nil) {
					t.Fatalf("error %v, want %v", d.Err, tc.err)
				}
				if len(d.Frames) != len(tc.want) {
					t.Fatalf("got %d frames, want %d:\n%s", len(d.Frames), len(tc.want), stomptest.Render(d))
				}
				for i, f := range d.Frames {
					if !stomptest.Equal(f, tc.want[i]) {
						t.Errorf("frame %d:\n%s\nwant:\n%s", i, stomptest.Render(stomptest.Decoded{Frames: []*stomp.Frame{f}}), stomptest.Render(stomptest.Decoded{Frames: []*stomp.Frame{tc.want[i]}}))
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
	}{{"client", stomp.ClientCommands}, {"server", stomp.ServerCommands}} {
		names := make([]string, 0, len(side.cmds))
		for c := range side.cmds {
			names = append(names, c)
		}
		slices.Sort(names)
		for _, cmd := range names {
			for _, v := range stomptest.Versions {
				t.Run(side.name+"/"+cmd+"/"+stomptest.VersionName(v), func(t *testing.T) {
					in := cmd + "\nreceipt:77\n\n\x00"
					d := stomptest.DecodeAllSplits(t, []byte(in), v, stomp.DefaultLimits(), side.cmds)
					if d.Err != nil || len(d.Frames) != 1 || !stomptest.Equal(d.Frames[0], stomptest.Frame(cmd, "", "receipt", "77")) {
						t.Fatalf("got:\n%s", stomptest.Render(d))
					}
					if r, ok := d.Frames[0].Get(stomp.HdrReceipt); !ok || r != "77" {
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
	f := stomptest.Frame("SEND", "", "foo", "1", "bar", "", "foo", "2")
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
var smallLimits = stomp.Limits{MaxFrame: 64, MaxHeaders: 3, MaxHeaderLine: 24}

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
		{"too many headers", "SEND\na:1\nb:2\nc:3\nd:4\n\n\x00", 0, stomp.ErrTooManyHeaders},
		{"header line at limit", "SEND\n" + "k:" + strings.Repeat("v", 22) + "\n\n\x00", 1, nil},
		{"header line too long", "SEND\n" + "k:" + strings.Repeat("v", 23) + "\n\n\x00", 0, stomp.ErrHeaderTooLong},
		{"CRLF counts in line length", "SEND\r\n" + "k:" + strings.Repeat("v", 22) + "\r\n\r\n\x00", 0, stomp.ErrHeaderTooLong},
		{"command line too long", strings.Repeat("S", 25) + "\n\n\x00", 0, stomp.ErrHeaderTooLong},
		{"header line never ending", "SEND\nk:" + strings.Repeat("v", 40), 0, stomp.ErrHeaderTooLong},
		{"headers never ending", "SEND\n" + strings.Repeat("k:v\n", 20), 0, stomp.ErrFrameTooLarge},
		{"frame at limit with content-length", frameOf(64, true), 1, nil},
		{"frame over limit with content-length", frameOf(65, true), 0, stomp.ErrFrameTooLarge},
		{"content-length over limit, body not sent", "SEND\ncontent-length:100\n\n", 0, stomp.ErrFrameTooLarge},
		{"frame at limit without content-length", frameOf(64, false), 1, nil},
		{"frame over limit without content-length", frameOf(65, false), 0, stomp.ErrFrameTooLarge},
		{"body never ending", "SEND\n\n" + strings.Repeat("b", 100), 0, stomp.ErrFrameTooLarge},
		{"limits apply per frame", frameOf(64, false) + frameOf(64, true) + "\n\n" + frameOf(64, false), 3, nil},
		{"heart-beats do not count", strings.Repeat("\n", 100) + frameOf(64, false), 1, nil},
	}
	for _, tc := range tests {
		for _, v := range []stomp.Version{0, stomp.V10, stomp.V11, stomp.V12} {
			t.Run(tc.name+"/"+stomptest.VersionName(v), func(t *testing.T) {
				d := stomptest.DecodeAllSplits(t, []byte(tc.in), v, smallLimits, stomp.ClientCommands)
				if !errors.Is(d.Err, tc.err) || (tc.err == nil && d.Err != nil) {
					t.Fatalf("error %v, want %v\n%s", d.Err, tc.err, stomptest.Render(d))
				}
				if len(d.Frames) != tc.want {
					t.Fatalf("got %d frames, want %d", len(d.Frames), tc.want)
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
		if d := stomptest.DecodeStream(in, stomp.V12, stomp.DefaultLimits(), stomp.ClientCommands, stomptest.SplitOneChunk); d.Err == nil && d.Pending == 0 {
			stream = append(append(stream, in...), "\r\n\n"...)
		}
	}
	big := bytes.Repeat([]byte("0123456789\x00"), 40<<10/11)
	stream = stomp.AppendFrame(stream, &stomp.Frame{Command: stomp.CmdSend, Body: big}, stomp.V12)
	stream = append(stream, "SEND\ndestination:/last\n\n\x00"...)
	ref := stomptest.DecodeStream(stream, stomp.V12, stomp.DefaultLimits(), stomp.ClientCommands, stomptest.SplitOneChunk)
	if ref.Err != nil || len(ref.Frames) < 20 {
		t.Fatalf("reference decode: %d frames, %v", len(ref.Frames), ref.Err)
	}
	want := stomptest.Render(ref)
	extra := []stomptest.NamedSplitter{
		{Name: "fixed-1", Fn: stomptest.FixedChunkSplitter(1)}, {Name: "fixed-2", Fn: stomptest.FixedChunkSplitter(2)}, {Name: "fixed-3", Fn: stomptest.FixedChunkSplitter(3)},
		{Name: "fixed-4096", Fn: stomptest.FixedChunkSplitter(4096)}, {Name: "fixed-16384", Fn: stomptest.FixedChunkSplitter(16 << 10)},
	}
	for seed := range uint64(8) {
		extra = append(extra, stomptest.NamedSplitter{Name: fmt.Sprintf("random-seed-%d", seed), Fn: stomptest.RandomChunkSplitter(seed, 1+int(seed)*997)})
	}
	for _, s := range append(stomptest.Splitters, extra...) {
		t.Run(s.Name, func(t *testing.T) {
			if got := stomptest.Render(stomptest.DecodeStream(stream, stomp.V12, stomp.DefaultLimits(), stomp.ClientCommands, s.Fn)); got != want {
				t.Fatalf("decode differs from one chunk")
			}
		})
	}
}

// TestFrameNoAliasing checks that returned frames do not share memory with
// the parser: later input must not change them.
func TestFrameNoAliasing(t *testing.T) {
	p := stomp.NewParser(stomp.DefaultLimits())
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
	if !stomptest.Equal(f, stomptest.Frame("SEND", "abc", "k", "v", "content-length", "3")) {
		t.Fatalf("first frame changed: %v %q", f.Headers, f.Body)
	}
}

// TestFrameParserIdleHoldsNothing checks that a parser between frames keeps
// no buffer (an idle connection's parser costs no memory for the frames it
// last read), and that it keeps its own copy of a partial frame.
func TestFrameParserIdleHoldsNothing(t *testing.T) {
	p := stomp.NewParser(stomp.DefaultLimits())
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
	if p.Buf != nil || p.Own != nil || p.Borrowed {
		t.Fatalf("parser between frames holds %d bytes (cap %d, own cap %d), borrowed %v", len(p.Buf), cap(p.Buf), cap(p.Own), p.Borrowed)
	}
	chunk := []byte("SEND\ndestination:/c\n\nab")
	p.Feed(chunk)
	if f, err := p.Next(); f != nil || err != nil {
		t.Fatalf("Next on a partial frame: %v, %v", f, err)
	}
	if p.Borrowed || len(p.Buf) != len(chunk) || &p.Buf[0] == &chunk[0] {
		t.Fatalf("partial frame not copied: borrowed %v, %d bytes", p.Borrowed, len(p.Buf))
	}
}

// TestCodecAppendFrame pins the wire form appendFrame writes for each
// version and command.
func TestCodecAppendFrame(t *testing.T) {
	tricky := "a:b\nc\\d\re"
	tests := []struct {
		name string
		f    *stomp.Frame
		v    stomp.Version
		want string
	}{
		{"SEND 1.2 escapes all four", stomptest.Frame("SEND", "", "x", tricky), stomp.V12, "SEND\nx:a\\cb\\nc\\\\d\\re\n\n\x00"},
		{"SEND 1.1 leaves CR", stomptest.Frame("SEND", "", "x", tricky), stomp.V11, "SEND\nx:a\\cb\\nc\\\\d\re\n\n\x00"},
		{"SEND 1.0 no escaping", stomptest.Frame("SEND", "", "x", "a:b\\c\rd"), stomp.V10, "SEND\nx:a:b\\c\rd\n\n\x00"},
		{"key escaped", stomptest.Frame("MESSAGE", "", "k:\n", "v"), stomp.V12, "MESSAGE\nk\\c\\n:v\n\n\x00"},
		{"CONNECTED never escaped", stomptest.Frame("CONNECTED", "", "version", "1.2", "server", "a:b\\c"), stomp.V12, "CONNECTED\nversion:1.2\nserver:a:b\\c\n\n\x00"},
		{"CONNECT never escaped", stomptest.Frame("CONNECT", "", "login", "a:b\\c"), stomp.V11, "CONNECT\nlogin:a:b\\c\n\n\x00"},
		{"STOMP never escaped", stomptest.Frame("STOMP", "", "passcode", "p\\:"), stomp.V12, "STOMP\npasscode:p\\:\n\n\x00"},
		{"content-length added", stomptest.Frame("MESSAGE", "hello", "destination", "/a"), stomp.V12, "MESSAGE\ndestination:/a\ncontent-length:5\n\nhello\x00"},
		{"content-length counts bytes", stomptest.Frame("SEND", "안녕"), stomp.V11, "SEND\ncontent-length:6\n\n안녕\x00"},
		{"content-length not duplicated", stomptest.Frame("SEND", "hi", "content-length", "2"), stomp.V12, "SEND\ncontent-length:2\n\nhi\x00"},
		{"no content-length for empty body", stomptest.Frame("RECEIPT", "", "receipt-id", "7"), stomp.V12, "RECEIPT\nreceipt-id:7\n\n\x00"},
		{"NUL in body", stomptest.Frame("MESSAGE", "a\x00b"), stomp.V10, "MESSAGE\ncontent-length:3\n\na\x00b\x00"},
		{"ERROR escaped", stomptest.Frame("ERROR", "x", "message", "bad: frame"), stomp.V12, "ERROR\nmessage:bad\\c frame\ncontent-length:1\n\nx\x00"},
		{"no headers", stomptest.Frame("DISCONNECT", ""), stomp.V10, "DISCONNECT\n\n\x00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("prefix")
			got := stomp.AppendFrame(prefix, tc.f, tc.v)
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
	for _, side := range []map[string]bool{stomp.ClientCommands, stomp.ServerCommands} {
		for cmd := range side {
			for _, v := range stomptest.Versions {
				t.Run(cmd+"/"+v.String(), func(t *testing.T) {
					f := stomptest.Frame(cmd, "b\x00dy", "k\\", "a:b")
					unescaped := v == stomp.V10 || cmd == stomp.CmdConnect || cmd == stomp.CmdStomp || cmd == stomp.CmdConnected
					want := cmd + "\nk\\\\:a\\cb\ncontent-length:4\n\nb\x00dy\x00"
					if unescaped {
						want = cmd + "\nk\\:a:b\ncontent-length:4\n\nb\x00dy\x00"
					}
					enc := stomp.AppendFrame(nil, f, v)
					if string(enc) != want {
						t.Fatalf("got  %q\nwant %q", enc, want)
					}
					d := stomptest.DecodeStream(enc, v, stomp.DefaultLimits(), side, stomptest.SplitOneChunk)
					if d.Err != nil || len(d.Frames) != 1 || !stomptest.Equal(d.Frames[0], stomptest.WithContentLength(f)) {
						t.Fatalf("decoded:\n%s", stomptest.Render(d))
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
		v    stomp.Version
		want string
	}{
		{"plain", stomp.V12, "plain"},
		{"", stomp.V12, ""},
		{"a\nb", stomp.V12, `a\nb`},
		{"a:b", stomp.V12, `a\cb`},
		{`a\b`, stomp.V12, `a\\b`},
		{"a\rb", stomp.V12, `a\rb`},
		{"a\rb", stomp.V11, "a\rb"},
		{"a\nb:c\\", stomp.V11, `a\nb\cc\\`},
		{"a:b\\c\r", stomp.V10, "a:b\\c\r"},
		{"한국어:값", stomp.V12, `한국어\c값`},
		{"\x00\t", stomp.V12, "\x00\t"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%q", tc.v, tc.in), func(t *testing.T) {
			got := string(stomp.AppendEscaped(nil, tc.in, tc.v))
			if got != tc.want {
				t.Fatalf("appendEscaped = %q, want %q", got, tc.want)
			}
			if tc.v == stomp.V10 {
				return // 1.0 has no unescaping
			}
			back, err := stomp.UnescapeHeader(got, tc.v)
			if err != nil || back != tc.in {
				t.Fatalf("unescapeHeader(%q) = %q, %v; want %q", got, back, err, tc.in)
			}
		})
	}
	bad := []struct {
		in string
		v  stomp.Version
	}{
		{`\t`, stomp.V12}, {`\t`, stomp.V11}, {`a\`, stomp.V12}, {`\`, stomp.V11}, {`\r`, stomp.V11}, {`\x41`, stomp.V12}, {`\N`, stomp.V12}, {`\C`, stomp.V12}, {`\ `, stomp.V12}, {`ok\n\`, stomp.V12},
	}
	for _, tc := range bad {
		t.Run(fmt.Sprintf("bad/%s/%q", tc.v, tc.in), func(t *testing.T) {
			if got, err := stomp.UnescapeHeader(tc.in, tc.v); !errors.Is(err, stomp.ErrBadEscape) {
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
func randomHeaderText(r *rand.Rand, escaped, isKey bool, v stomp.Version) string {
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
	if !escaped && !isKey && v == stomp.V12 {
		s = strings.TrimRight(s, "\r")
	}
	return s
}

// randomStompFrame returns a frame of one of cmds whose headers and body the
// version can carry.
func randomStompFrame(r *rand.Rand, v stomp.Version, cmds []string) *stomp.Frame {
	f := &stomp.Frame{Command: cmds[r.IntN(len(cmds))]}
	escaped := v != stomp.V10 && f.Command != stomp.CmdConnect && f.Command != stomp.CmdStomp && f.Command != stomp.CmdConnected
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

// TestCodecRoundTrip is a seeded property test: random frames of every
// command, encoded for a version, decode to the same frames at that version,
// one at a time and as one stream with heart-beats cut at random points.
func TestCodecRoundTrip(t *testing.T) {
	const frames = 2000 // per version and side; enough to hit every alphabet mix, fast under -race
	for _, v := range stomptest.Versions {
		for _, side := range []struct {
			name string
			cmds map[string]bool
		}{{"client", stomp.ClientCommands}, {"server", stomp.ServerCommands}} {
			t.Run(v.String()+"/"+side.name, func(t *testing.T) {
				var names []string
				for c := range side.cmds {
					names = append(names, c)
				}
				slices.Sort(names)
				r := rand.New(rand.NewPCG(uint64(v), 2026))
				var stream []byte
				var want []*stomp.Frame
				for range frames {
					f := randomStompFrame(r, v, names)
					enc := stomp.AppendFrame(nil, f, v)
					d := stomptest.DecodeStream(enc, v, stomp.DefaultLimits(), side.cmds, stomptest.SplitOneChunk)
					if d.Err != nil || len(d.Frames) != 1 || d.Pending != 0 || !stomptest.Equal(d.Frames[0], stomptest.WithContentLength(f)) {
						t.Fatalf("round trip of %q:\n%s\nwant:\n%s", enc, stomptest.Render(d), stomptest.Render(stomptest.Decoded{Frames: []*stomp.Frame{stomptest.WithContentLength(f)}}))
					}
					stream = append(stream, enc...)
					stream = append(stream, []string{"", "\n", "\r\n", "\n\n"}[r.IntN(4)]...)
					want = append(want, stomptest.WithContentLength(f))
				}
				for seed := range uint64(3) {
					d := stomptest.DecodeStream(stream, v, stomp.DefaultLimits(), side.cmds, stomptest.RandomChunkSplitter(seed, 100))
					if d.Err != nil || len(d.Frames) != len(want) {
						t.Fatalf("stream: %d frames, %v", len(d.Frames), d.Err)
					}
					for i := range want {
						if !stomptest.Equal(d.Frames[i], want[i]) {
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
		want      stomp.Version
		err       error
	}{
		{"", false, "", stomp.V10, nil},
		{"1.0", true, "", stomp.V10, nil},
		{"1.1", true, "", stomp.V11, nil},
		{"1.2", true, "", stomp.V12, nil},
		{"1.0,1.1,1.2", true, "", stomp.V12, nil},
		{"1.2,1.0", true, "", stomp.V12, nil},
		{"1.0,1.1", true, "", stomp.V11, nil},
		{" 1.0 , 1.1 ", true, "", stomp.V11, nil},
		{"1.1,2.0,1.3", true, "", stomp.V11, nil},
		{"2.0", true, "", 0, stomp.ErrVersionUnsupported},
		{"", true, "", 0, stomp.ErrVersionUnsupported},
		{"1.2.0,v1.2,12", true, "", 0, stomp.ErrVersionUnsupported},
		{"1.0,1.1,1.2", true, "v10.stomp", stomp.V10, nil},
		{"1.0,1.1,1.2", true, "v11.stomp", stomp.V11, nil},
		{"1.0,1.1,1.2", true, "v12.stomp", stomp.V12, nil},
		{"1.2", true, "v11.stomp", 0, stomp.ErrVersionUnsupported},
		{"1.1,1.2", true, "v10.stomp", 0, stomp.ErrVersionUnsupported},
		{"1.0", true, "v12.stomp", stomp.V10, nil},
		{"1.2", true, "stomp", stomp.V12, nil}, // unknown subprotocol: no cap
		// Without accept-version a WebSocket subprotocol names the version
		// (stompbox's own choice; plain STOMP 1.2 says 1.0).
		{"", false, "v11.stomp", stomp.V11, nil},
		{"", false, "v12.stomp", stomp.V12, nil},
		{"", false, "v10.stomp", stomp.V10, nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q/%v/%q", tc.accept, tc.hasAccept, tc.sub), func(t *testing.T) {
			got, err := stomp.NegotiateVersion(tc.accept, tc.hasAccept, tc.sub)
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
		{"", true, 0, 0, stomp.ErrBadHeartBeat},
		{"1000", true, 0, 0, stomp.ErrBadHeartBeat},
		{"1000,", true, 0, 0, stomp.ErrBadHeartBeat},
		{",1000", true, 0, 0, stomp.ErrBadHeartBeat},
		{"-1,0", true, 0, 0, stomp.ErrBadHeartBeat},
		{"0,-5", true, 0, 0, stomp.ErrBadHeartBeat},
		{"a,b", true, 0, 0, stomp.ErrBadHeartBeat},
		{"1,2,3", true, 0, 0, stomp.ErrBadHeartBeat},
		{"1.5,2", true, 0, 0, stomp.ErrBadHeartBeat},
		{"99999999999999999999,0", true, 0, 0, stomp.ErrBadHeartBeat},
		// Capped: 76480200929599801 ms times time.Millisecond wraps to 64 ns,
		// which made the server write a heart-beat every 64 ns.
		{"0,76480200929599801", true, 0, stomp.MaxHeartBeat, nil},
		{"76480200929599801,9223372036854775807", true, stomp.MaxHeartBeat, stomp.MaxHeartBeat, nil},
		{"86400000,86400001", true, stomp.MaxHeartBeat, stomp.MaxHeartBeat, nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q/%v", tc.in, tc.present), func(t *testing.T) {
			cx, cy, err := stomp.ParseHeartBeat(tc.in, tc.present)
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
			send, recv := stomp.NegotiateHeartBeat(tc.cx, tc.cy, tc.sx, tc.sy)
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
		{stomp.ErrBadEscape, "undefined escape sequence in header", true},
		{fmt.Errorf("%w %q", stomp.ErrUnknownCommand, "PUBLISH"), `unknown command "PUBLISH"`, true},
		{fmt.Errorf("%w: 70000 bytes", stomp.ErrFrameTooLarge), "frame exceeds the size limit: 70000 bytes", true},
		{errors.New("disk full at /var/lib/x"), "internal error", false},
		{io.EOF, "internal error", false},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			got, visible := stomp.ClientMessage(tc.err)
			if got != tc.want || visible != tc.visible {
				t.Fatalf("clientMessage(%v) = %q, %v; want %q, %v", tc.err, got, visible, tc.want, tc.visible)
			}
		})
	}
}

// TestCodecNoHeaderInjection: a header value that holds LF (a 1.1/1.2 client
// can send one as \n) must not start a new header or frame when the frame is
// written without escaping, as for a 1.0 subscriber or a CONNECTED frame.
func TestCodecNoHeaderInjection(t *testing.T) {
	evil := "x\ncontent-length:1\n\nA\x00MESSAGE\ndestination:/forged"
	for _, tc := range []struct {
		name string
		f    *stomp.Frame
		v    stomp.Version
		cmds map[string]bool
	}{
		{"MESSAGE 1.0", stomptest.Frame(stomp.CmdMessage, "body", stomp.HdrDestination, "/topic/a", "x-evil", evil), stomp.V10, stomp.ServerCommands},
		{"CONNECTED 1.2", stomptest.Frame(stomp.CmdConnected, "", stomp.HdrVersion, "1.2", stomp.HdrUserName, evil), stomp.V12, stomp.ServerCommands},
		{"CONNECT 1.2", stomptest.Frame(stomp.CmdConnect, "", stomp.HdrLogin, evil), stomp.V12, stomp.ClientCommands},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := stomp.AppendFrame(nil, tc.f, tc.v)
			d := stomptest.DecodeStream(enc, tc.v, stomp.DefaultLimits(), tc.cmds, stomptest.SplitOneChunk)
			if d.Err != nil || len(d.Frames) != 1 || d.Pending != 0 {
				t.Fatalf("%q decoded as:\n%s", enc, stomptest.Render(d))
			}
			got := d.Frames[0]
			if len(got.Headers) != len(stomptest.WithContentLength(tc.f).Headers) || !bytes.Equal(got.Body, tc.f.Body) {
				t.Fatalf("headers or body changed:\n%s", stomptest.Render(d))
			}
		})
	}
}
