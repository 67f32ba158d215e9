package bench

import (
	"bytes"
	"context"
	"math"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
)

// benchFrame is a frame as the load tool's readers need it. A MESSAGE is a
// view into the connection's input (head and body), valid until the next
// call to next: decoding every delivery into a frame, with a string per
// header and a copy of the body, made the tool's parser and its garbage
// collector the heaviest part of a fan-out run, on cores it shares with the
// server it measures. Every other frame is parsed in full.
type benchFrame struct {
	command string
	head    []byte // a MESSAGE's header lines, each ending in LF, not unescaped
	body    []byte
	raw     []byte       // the whole MESSAGE frame, NUL included
	full    *stomp.Frame // any other frame, parsed by the codec
}

// number returns the first key header (STOMP 1.2 §"Repeated Header
// Entries": the first one counts) as a non-negative decimal number.
func (f *benchFrame) number(key string) (int64, bool) {
	if f.full != nil {
		v, _ := f.full.Get(key)
		return parseDigits([]byte(v))
	}
	v, ok := rawHeader(f.head, key)
	if !ok {
		return 0, false
	}
	return parseDigits(v)
}

// next returns the next frame. A MESSAGE as stompbox and RabbitMQ write
// it (LF line ends, a content-length, whole within one transport chunk) is
// scanned in place; anything else, a frame split across chunks included,
// goes through the codec's parser, and the fast path resumes once the
// parser holds nothing. Only the connection's reader calls it.
func (c *Conn) next(ctx context.Context) (benchFrame, error) {
	for {
		if len(c.p.Buf) == 0 {
			c.pend = skipEOLs(c.pend)
			if len(c.pend) > 0 {
				if head, body, n, ok := scanMessage(c.pend); ok {
					raw := c.pend[:n]
					c.pend = c.pend[n:]
					return benchFrame{command: stomp.CmdMessage, head: head, body: body, raw: raw}, nil
				}
				c.p.Feed(c.pend)
				c.pend = nil
			}
		}
		if len(c.p.Buf) > 0 {
			f, err := c.p.Next()
			if err != nil {
				return benchFrame{}, err
			}
			if f != nil {
				return benchFrame{command: f.Command, body: f.Body, full: f}, nil
			}
		}
		b, err := c.t.recv(ctx)
		if err != nil {
			return benchFrame{}, err
		}
		if len(c.p.Buf) > 0 {
			c.p.Feed(b)
		} else {
			c.pend = b // recv's buffer: scanned before the next recv reuses it
		}
	}
}

// read returns the next frame decoded in full, for readers off the hot path
// (CONNECTED, RECEIPT, the idle check).
func (c *Conn) read(ctx context.Context) (*stomp.Frame, error) {
	f, err := c.next(ctx)
	if err != nil || f.full != nil {
		return f.full, err
	}
	// A MESSAGE is only scanned while the parser holds nothing, so it can
	// take the whole frame now and hand it straight back.
	c.p.Feed(f.raw)
	return c.p.Next()
}

// skipEOLs drops the heart-beat EOLs at the start of b.
func skipEOLs(b []byte) []byte {
	for len(b) > 0 && (b[0] == '\n' || b[0] == '\r' && len(b) > 1 && b[1] == '\n') {
		if b[0] == '\r' {
			b = b[1:]
		}
		b = b[1:]
	}
	return b
}

// scanMessage reports whether b starts with a whole MESSAGE frame with LF
// line ends and a content-length header, and returns its header lines, its
// body and its length with the NUL. Anything else is left to the parser.
func scanMessage(b []byte) (head, body []byte, n int, ok bool) {
	const command = stomp.CmdMessage + "\n"
	if !bytes.HasPrefix(b, []byte(command)) {
		return nil, nil, 0, false
	}
	rest := b[len(command):]
	end := bytes.Index(rest, []byte("\n\n")) // a header value holds no raw LF, so this ends the headers
	if end < 0 {
		return nil, nil, 0, false
	}
	head = rest[:end+1]
	cl, ok := rawHeader(head, stomp.HdrContentLength)
	size, okSize := parseDigits(cl)
	start := end + 2
	if !ok || !okSize || size > int64(len(rest)-start-1) || rest[start+int(size)] != 0 {
		return nil, nil, 0, false
	}
	return head, rest[start : start+int(size)], len(command) + start + int(size) + 1, true
}

// rawHeader returns the value of the first key line in head.
func rawHeader(head []byte, key string) ([]byte, bool) {
	for len(head) > 0 {
		line := head
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			line, head = head[:i], head[i+1:]
		} else {
			head = nil
		}
		if len(line) > len(key) && line[len(key)] == ':' && string(line[:len(key)]) == key {
			return line[len(key)+1:], true
		}
	}
	return nil, false
}

// parseDigits parses a non-negative decimal int64 without allocating
// (strconv needs a string).
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// benchTalkFields finds the load tool's own TALK text ("bench SENDER SEQ
// UNIXNANO", see benchTalkPrefix) in a chat message's JSON, as the server
// encodes it, without decoding the JSON: the text is digits and spaces, so
// it needs no unescaping, and no other string in the message can hold the
// key with its quotes unescaped.
func benchTalkFields(body []byte) (sender, seq, ts int64, ok bool) {
	if !bytes.Contains(body, []byte(`"type":"`+proto.MsgTalk+`"`)) {
		return 0, 0, 0, false
	}
	const key = `"message":"` + benchTalkPrefix
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return 0, 0, 0, false
	}
	text := body[i+len(key):]
	end := bytes.IndexByte(text, '"')
	if end < 0 {
		return 0, 0, 0, false
	}
	f := bytes.Fields(text[:end])
	if len(f) != 3 {
		return 0, 0, 0, false
	}
	var ok1, ok2, ok3 bool
	sender, ok1 = parseDigits(f[0])
	seq, ok2 = parseDigits(f[1])
	ts, ok3 = parseDigits(f[2])
	return sender, seq, ts, ok1 && ok2 && ok3
}
