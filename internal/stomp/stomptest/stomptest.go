// Package stomptest helps the tests of the STOMP codec and of what writes
// frames: frames built from strings, decoding at every read boundary, and a
// readable rendering of what was decoded. The codec's own tests and the
// broker's (its fan-out encoding) share it. Only tests import it. Of
// stompbox it imports only internal/stomp (layout_test.go).
package stomptest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"stompbox/internal/stomp"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

var Versions = []stomp.Version{stomp.V10, stomp.V11, stomp.V12}

// VersionName names v in test names and golden files; 0 is a parser that
// has not negotiated yet (it reads CONNECT frames).
func VersionName(v stomp.Version) string {
	if v == 0 {
		return "unnegotiated"
	}
	return v.String()
}

// Frame builds a frame from a command, a body and alternating header keys and
// values, so that keys and values may hold any byte.
func Frame(cmd, body string, kv ...string) *stomp.Frame {
	f := &stomp.Frame{Command: cmd}
	if body != "" {
		f.Body = []byte(body)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Add(kv[i], kv[i+1])
	}
	return f
}

// Equal compares frames, treating a nil and an empty body as equal.
func Equal(a, b *stomp.Frame) bool {
	return a.Command == b.Command && slices.Equal(a.Headers, b.Headers) && bytes.Equal(a.Body, b.Body)
}

// Decoded is what a parser made of an input: the frames it returned, the
// error that stopped it, the bytes it still held at the end, and the most it
// ever held between chunks.
type Decoded struct {
	Frames     []*stomp.Frame
	Err        error
	Pending    int
	MaxPending int
}

// Splitter cuts input into the chunks a transport might deliver and hands
// them to feed, stopping when feed reports false.
type Splitter func(in []byte, feed func([]byte) bool)

func SplitOneChunk(in []byte, feed func([]byte) bool) { feed(in) }

func SplitOneByte(in []byte, feed func([]byte) bool) {
	for i := range in {
		if !feed(in[i : i+1]) {
			return
		}
	}
}

// RandomChunkSplitter returns a chunkSplitter cutting at seeded random points, chunks of
// 1 to maxChunk bytes.
func RandomChunkSplitter(seed uint64, maxChunk int) Splitter {
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

// FixedChunkSplitter cuts input every n bytes, as a transport with an n-byte read buffer.
func FixedChunkSplitter(n int) Splitter {
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
func readerChunkSplitter(wrap func(io.Reader) io.Reader) Splitter {
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

// Splitters are the read boundaries every fixture is decoded with.
// NamedSplitter is a Splitter with a name for subtests.
type NamedSplitter struct {
	Name string
	Fn   Splitter
}

var Splitters = []NamedSplitter{
	{"one-chunk", SplitOneChunk},
	{"one-byte", SplitOneByte},
	{"random-7", RandomChunkSplitter(7, 7)},
	{"random-42", RandomChunkSplitter(42, 40)},
	{"random-1234", RandomChunkSplitter(1234, 300)},
	{"fixed-512", FixedChunkSplitter(512)},
	{"OneByteReader", readerChunkSplitter(iotest.OneByteReader)},
	{"HalfReader", readerChunkSplitter(iotest.HalfReader)},
	{"DataErrReader", readerChunkSplitter(iotest.DataErrReader)},
	{"HalfReader(OneByteReader)", readerChunkSplitter(func(r io.Reader) io.Reader { return iotest.HalfReader(iotest.OneByteReader(r)) })},
}

// DecodeStream runs in through a fresh parser for version v with cmds, cut by
// split. Each chunk is fed from a scratch copy that is scribbled over as soon
// as the parser has returned nil (Feed's contract: from then on the caller
// may reuse it), so a frame that aliased its input, or a parser that kept a
// partial frame without copying it, would show it.
func DecodeStream(in []byte, v stomp.Version, limits stomp.Limits, cmds map[string]bool, split Splitter) Decoded {
	p := stomp.NewParser(limits)
	p.Commands = cmds
	p.Version = v
	var d Decoded
	var scratch []byte
	split(in, func(chunk []byte) bool {
		scratch = append(scratch[:0], chunk...)
		p.Feed(scratch)
		for {
			f, err := p.Next()
			if err != nil {
				d.Err = err
				return false
			}
			if f == nil {
				break
			}
			d.Frames = append(d.Frames, f)
		}
		for i := range scratch {
			scratch[i] = 0xA5
		}
		d.MaxPending = max(d.MaxPending, len(p.Buf))
		return true
	})
	d.Pending = len(p.Buf)
	return d
}

// Render is the readable form of a decode, used in golden files and to
// compare decodes.
func Render(d Decoded) string {
	var b strings.Builder
	for i, f := range d.Frames {
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
	if d.Err != nil {
		fmt.Fprintf(&b, "error: %v\n", d.Err)
	} else {
		fmt.Fprintf(&b, "pending: %d bytes\n", d.Pending)
	}
	return b.String()
}

// Sentinel returns the protocol error err wraps, or err itself.
func Sentinel(err error) error {
	var se *stomp.Error
	if errors.As(err, &se) {
		return se
	}
	return err
}

// DecodeAllSplits decodes in with every chunkSplitter, fails the test unless they
// all agree and the parser stayed within limits.MaxFrame between chunks, and
// returns the one-chunk decode.
func DecodeAllSplits(t *testing.T, in []byte, v stomp.Version, limits stomp.Limits, cmds map[string]bool) Decoded {
	t.Helper()
	ref := DecodeStream(in, v, limits, cmds, SplitOneChunk)
	want := Render(ref)
	for _, s := range Splitters {
		d := DecodeStream(in, v, limits, cmds, s.Fn)
		if got := Render(d); got != want {
			t.Errorf("version %s, %s: decode differs from one chunk:\n%s\nwant:\n%s", VersionName(v), s.Name, got, want)
		}
		if Sentinel(d.Err) != Sentinel(ref.Err) {
			t.Errorf("version %s, %s: error %v, one chunk gave %v", VersionName(v), s.Name, d.Err, ref.Err)
		}
		if s.Name != "one-chunk" && d.MaxPending > limits.MaxFrame {
			t.Errorf("version %s, %s: parser held %d bytes, limit %d", VersionName(v), s.Name, d.MaxPending, limits.MaxFrame)
		}
	}
	return ref
}

// WithContentLength returns the frame a parser sees after appendFrame: f plus the
// content-length header appendFrame adds.
func WithContentLength(f *stomp.Frame) *stomp.Frame {
	g := &stomp.Frame{Command: f.Command, Headers: slices.Clone(f.Headers), Body: f.Body}
	if _, ok := g.Get(stomp.HdrContentLength); !ok && len(g.Body) > 0 {
		g.Add(stomp.HdrContentLength, strconv.Itoa(len(g.Body)))
	}
	return g
}
