package main

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Frame commands, STOMP 1.2 §"Client Frames" and §"Server Frames".
const (
	cmdConnect     = "CONNECT"
	cmdStomp       = "STOMP"
	cmdSend        = "SEND"
	cmdSubscribe   = "SUBSCRIBE"
	cmdUnsubscribe = "UNSUBSCRIBE"
	cmdAck         = "ACK"
	cmdNack        = "NACK"
	cmdBegin       = "BEGIN"
	cmdCommit      = "COMMIT"
	cmdAbort       = "ABORT"
	cmdDisconnect  = "DISCONNECT"
	cmdConnected   = "CONNECTED"
	cmdMessage     = "MESSAGE"
	cmdReceipt     = "RECEIPT"
	cmdError       = "ERROR"
)

// Header names, STOMP 1.2 §"Standard Headers" and the per-frame sections.
const (
	hdrAcceptVersion = "accept-version"
	hdrHost          = "host"
	hdrLogin         = "login"
	hdrPasscode      = "passcode"
	hdrHeartBeat     = "heart-beat"
	hdrVersion       = "version"
	hdrSession       = "session"
	hdrServer        = "server"
	hdrDestination   = "destination"
	hdrID            = "id"
	hdrAck           = "ack"
	hdrTransaction   = "transaction"
	hdrReceipt       = "receipt"
	hdrReceiptID     = "receipt-id"
	hdrMessageID     = "message-id"
	hdrSubscription  = "subscription"
	hdrContentLength = "content-length"
	hdrContentType   = "content-type"
	hdrMessage       = "message"
	hdrUserName      = "user-name" // not in the spec; Spring's broker sends it in CONNECTED
)

// version is a negotiated STOMP protocol version.
type version uint8

const (
	v10 version = iota + 1
	v11
	v12
)

// String returns the version as it appears in accept-version and version headers.
func (v version) String() string {
	switch v {
	case v10:
		return "1.0"
	case v11:
		return "1.1"
	case v12:
		return "1.2"
	}
	return "unknown"
}

// supportedVersions is what the server offers, for ERROR frames on a failed negotiation.
const supportedVersions = "1.0,1.1,1.2"

// stompError is a protocol error a client may see: it becomes an ERROR frame
// whose message header is the text, then the connection closes (STOMP 1.2
// §ERROR). Any other error reaching a client is shown as "internal error".
type stompError struct{ msg string }

func (e *stompError) Error() string { return "stomp: " + e.msg }

// Protocol errors of the codec.
var (
	errUnknownCommand     = &stompError{"unknown command"}
	errMalformedHeader    = &stompError{"malformed header line"}
	errBadEscape          = &stompError{"undefined escape sequence in header"}
	errBadContentLength   = &stompError{"invalid content-length"}
	errMissingNUL         = &stompError{"frame body not terminated by NUL"}
	errFrameTooLarge      = &stompError{"frame exceeds the size limit"}
	errTooManyHeaders     = &stompError{"too many headers"}
	errHeaderTooLong      = &stompError{"header line too long"}
	errMissingHeader      = &stompError{"missing required header"}
	errNotConnected       = &stompError{"expected CONNECT or STOMP frame first"}
	errVersionUnsupported = &stompError{"supported protocol versions are " + supportedVersions}
	errBadHeartBeat       = &stompError{"invalid heart-beat header"}
)

// clientMessage returns the text a client may see for err: the protocol
// error's own words, or "internal error" for anything else. It reports
// whether err was a protocol error.
func clientMessage(err error) (string, bool) {
	var se *stompError
	if !errors.As(err, &se) {
		return "internal error", false
	}
	return strings.TrimPrefix(err.Error(), "stomp: "), true
}

// frameLimits bounds what a reader accepts. Each limit is checked before the
// memory for it is used: "Implementations may impose implementation-specific
// limits on unconstrained inputs" (STOMP 1.2 §"Size Limits").
type frameLimits struct {
	MaxFrame      int // whole frame: command, headers and body, in bytes
	MaxHeaders    int // header lines in one frame
	MaxHeaderLine int // bytes in one header line, escapes included
}

const (
	defaultMaxFrame      = 64 << 10 // fits any chat message with room to spare; stops floods of megabyte frames
	defaultMaxHeaders    = 64       // real clients send fewer than 20; Spring's native headers add a few
	defaultMaxHeaderLine = 8 << 10  // long enough for tokens and long destinations, short enough to bound parsing
)

func defaultFrameLimits() frameLimits {
	return frameLimits{MaxFrame: defaultMaxFrame, MaxHeaders: defaultMaxHeaders, MaxHeaderLine: defaultMaxHeaderLine}
}

// header is one decoded header line. Frames keep headers in order and keep
// repeats, because STOMP 1.2 §"Repeated Header Entries" says the first wins
// but the rest are still part of the frame.
type header struct {
	Key, Value string
}

// frame is one decoded STOMP frame.
type frame struct {
	Command string
	Headers []header
	Body    []byte
}

// Get returns the first value of key, as STOMP 1.2 §"Repeated Header Entries" requires.
func (f *frame) Get(key string) (string, bool) {
	for _, h := range f.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return "", false
}

// Value returns the first value of key, or "".
func (f *frame) Value(key string) string {
	v, _ := f.Get(key)
	return v
}

// Add appends a header.
func (f *frame) Add(key, value string) {
	f.Headers = append(f.Headers, header{key, value})
}

// clientCommands are the commands a server accepts (STOMP 1.2 §"Client Frames").
var clientCommands = map[string]bool{
	cmdConnect: true, cmdStomp: true, cmdSend: true, cmdSubscribe: true, cmdUnsubscribe: true,
	cmdAck: true, cmdNack: true, cmdBegin: true, cmdCommit: true, cmdAbort: true, cmdDisconnect: true,
}

// serverCommands are the commands a client accepts (STOMP 1.2 §"Server Frames");
// the load tool and the tests parse with them.
var serverCommands = map[string]bool{cmdConnected: true, cmdMessage: true, cmdReceipt: true, cmdError: true}

// frameParser decodes frames from a byte stream fed in chunks of any size.
// It is a push parser because every transport delivers chunks (a WebSocket
// message, a SockJS message, a TCP read) and none of them aligns with frames.
// It is not safe for concurrent use; each session owns one.
type frameParser struct {
	limits   frameLimits
	commands map[string]bool // the commands this side accepts
	version  version         // escaping rules for non-CONNECT frames; 0 until negotiated (treated as 1.2)
	borrowed bool            // buf is the rest of the caller's chunk, not the parser's own copy
	buf      []byte          // unconsumed input
	own      []byte          // the parser's buffer for partial frames, kept for the next one; nil until one came
	// State of the frame in progress, kept so a frame arriving in many small
	// chunks is scanned once, not once per chunk.
	headerScan int    // offset in buf from which to look for the end of headers
	head       *frame // decoded command and headers, once the blank line was seen
	bodyStart  int    // offset of the body in buf, valid when head != nil
	bodyLen    int    // content-length, or -1 when the body ends at the first NUL
	bodyScan   int    // offset from which to look for the NUL
}

// newFrameParser returns a parser for frames sent to a server; set commands
// to serverCommands to parse the frames a client receives.
func newFrameParser(limits frameLimits) *frameParser {
	return &frameParser{limits: limits, commands: clientCommands}
}

// Feed appends a chunk of input. The parser reads chunk in place until Next
// returns nil or an error, so the caller must not change it before then;
// what it still needs after that (the start of a frame whose end has not
// come) it copies. A chunk of whole frames, the usual case, is thus never
// copied, and a parser between frames holds no buffer: an idle connection
// keeps no copy of the last frames it sent.
func (p *frameParser) Feed(chunk []byte) {
	if len(p.buf) == 0 {
		p.buf, p.borrowed = chunk, true
		return
	}
	p.keep()
	p.buf = append(p.buf, chunk...)
}

// keep makes buf the parser's own: a borrowed chunk is copied into own,
// which is made (or grown) to room for the whole frame when its
// content-length is known, so that the chunks still to come are appended
// without another copy, and to twice the partial frame if not.
func (p *frameParser) keep() {
	if !p.borrowed {
		return
	}
	want := 2 * len(p.buf)
	if p.head != nil && p.bodyLen >= 0 {
		want = max(p.bodyStart+p.bodyLen+1, len(p.buf))
	}
	if cap(p.own) < want {
		p.own = make([]byte, 0, want)
	}
	p.buf, p.borrowed = append(p.own[:0], p.buf...), false
}

// more is Next's answer when the input ends inside a frame: nil, after
// keeping the partial frame, since the caller may reuse its chunk.
func (p *frameParser) more() (*frame, error) {
	p.keep()
	return nil, nil
}

// Next returns the next complete frame, or nil if more input is needed.
// After an error the parser must not be used again.
func (p *frameParser) Next() (f *frame, err error) {
	if p.head == nil {
		// Skip heart-beat EOLs between frames.
		i := 0
		for i < len(p.buf) {
			if p.buf[i] == '\n' {
				i++
			} else if p.buf[i] == '\r' && i+1 < len(p.buf) && p.buf[i+1] == '\n' {
				i += 2
			} else {
				break
			}
		}
		if i > 0 {
			p.consume(i)
		}
		if len(p.buf) == 0 {
			return nil, nil
		}
		end, err := p.findHeaderEnd()
		if err != nil {
			return nil, err
		}
		if end < 0 {
			return p.more()
		}
		head, bodyLen, err := p.parseHead(p.buf[:end])
		if err != nil {
			return nil, err
		}
		p.head, p.bodyLen = head, bodyLen
		p.bodyStart = end
		p.bodyScan = end
	}
	// Body.
	if p.bodyLen >= 0 {
		need := p.bodyStart + p.bodyLen + 1
		if len(p.buf) < need {
			return p.more()
		}
		if p.buf[need-1] != 0 {
			return nil, errMissingNUL
		}
		return p.finish(p.bodyStart+p.bodyLen, need), nil
	}
	nul := bytes.IndexByte(p.buf[p.bodyScan:], 0)
	if nul < 0 {
		p.bodyScan = len(p.buf)
		if len(p.buf) >= p.limits.MaxFrame { // the NUL still to come makes it larger
			return nil, errFrameTooLarge
		}
		return p.more()
	}
	end := p.bodyScan + nul
	if end+1 > p.limits.MaxFrame { // the frame is buf[:end+1], NUL included
		return nil, errFrameTooLarge
	}
	return p.finish(end, end+1), nil
}

// finish takes the frame whose body ends at bodyEnd and whose bytes end at frameEnd.
func (p *frameParser) finish(bodyEnd, frameEnd int) *frame {
	f := p.head
	if bodyEnd > p.bodyStart {
		f.Body = bytes.Clone(p.buf[p.bodyStart:bodyEnd])
	}
	p.consume(frameEnd)
	p.head = nil
	return f
}

// consume drops n bytes of input and resets the scan offsets. Input
// consumed to its end is let go; the parser's own buffer is kept for the
// next partial frame unless it grew large, so a connection that never sent
// a frame in pieces (a WebSocket client sends one per message) pins no
// buffer between frames.
func (p *frameParser) consume(n int) {
	switch rest := len(p.buf) - n; {
	case rest == 0:
		if !p.borrowed {
			p.own = p.buf[:0]
			if cap(p.own) > 2*defaultMaxHeaderLine {
				p.own = nil // don't pin a large buffer to an idle connection
			}
		}
		p.buf, p.borrowed = nil, false
	case p.borrowed:
		p.buf = p.buf[n:] // the caller's memory: never written
	default:
		copy(p.buf, p.buf[n:])
		p.buf = p.buf[:rest]
	}
	p.headerScan, p.bodyScan, p.bodyStart = 0, 0, 0
}

// findHeaderEnd looks for the blank line that ends the headers and returns the
// offset just past it, or -1 if more input is needed. It enforces the frame
// and header-line limits while the headers are still incomplete, so a peer
// cannot make us buffer without bound.
func (p *frameParser) findHeaderEnd() (int, error) {
	// Jump from line end to line end; the scan resumes at the start of the
	// line that the previous call left incomplete.
	start := bytes.LastIndexByte(p.buf[:p.headerScan], '\n') + 1
	for {
		i := bytes.IndexByte(p.buf[start:], '\n')
		if i < 0 {
			break
		}
		// A line ends at start+i. It is blank if it is empty or just "\r";
		// the first line cannot be blank because leading EOLs were skipped.
		line := p.buf[start : start+i]
		if start > 0 && (len(line) == 0 || (len(line) == 1 && line[0] == '\r')) {
			return start + i + 1, nil
		}
		if len(line) > p.limits.MaxHeaderLine {
			return -1, errHeaderTooLong
		}
		start += i + 1
	}
	p.headerScan = len(p.buf)
	if len(p.buf) > p.limits.MaxFrame {
		return -1, errFrameTooLarge
	}
	if last := bytes.LastIndexByte(p.buf, '\n') + 1; len(p.buf)-last > p.limits.MaxHeaderLine {
		return -1, errHeaderTooLong
	}
	return -1, nil
}

// parseHead decodes the command line and the headers, ending with the blank line.
// The head is copied into one string and the command, keys and values are
// substrings of it: one allocation for the whole head instead of two per
// header, which was most of the parser's cost per frame.
func (p *frameParser) parseHead(b []byte) (*frame, int, error) {
	if len(b) > p.limits.MaxFrame {
		return nil, 0, errFrameTooLarge
	}
	// Drop the final LF; what is left ends with the blank line, whose own
	// LF is the last separator.
	head := string(b[:len(b)-1])
	nl := strings.IndexByte(head, '\n')
	cmd := strings.TrimSuffix(head[:nl], "\r")
	if !p.commands[cmd] {
		return nil, 0, fmt.Errorf("%w %q", errUnknownCommand, truncate(cmd, 32))
	}
	rest := head[nl+1 : strings.LastIndexByte(head, '\n')+1] // the header lines, each with its LF
	n := strings.Count(rest, "\n")
	if n > p.limits.MaxHeaders {
		return nil, 0, errTooManyHeaders
	}
	f := &frame{Command: cmd, Headers: make([]header, 0, n)}
	// CONNECT and STOMP frames are never escaped (STOMP 1.2 §"Value Encoding"),
	// and 1.0 has no escaping at all.
	escaped := p.version != v10 && cmd != cmdConnect && cmd != cmdStomp && cmd != cmdConnected
	stripCR := p.version == 0 || p.version == v12 // 1.2 allows CRLF line ends; 1.0/1.1 treat CR as data
	for len(rest) > 0 {
		i := strings.IndexByte(rest, '\n')
		line := rest[:i]
		rest = rest[i+1:]
		if len(line) > p.limits.MaxHeaderLine {
			return nil, 0, errHeaderTooLong
		}
		if stripCR {
			line = strings.TrimSuffix(line, "\r")
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			return nil, 0, errMalformedHeader
		}
		if escaped {
			var err error
			if key, err = unescapeHeader(key, p.version); err != nil {
				return nil, 0, err
			}
			if val, err = unescapeHeader(val, p.version); err != nil {
				return nil, 0, err
			}
		}
		f.Headers = append(f.Headers, header{key, val})
	}
	bodyLen := -1
	if cl, ok := f.Get(hdrContentLength); ok {
		n, err := strconv.Atoi(strings.TrimSpace(cl))
		if err != nil || n < 0 {
			return nil, 0, errBadContentLength
		}
		// Compare without adding to n: a huge n would overflow the sum.
		if n > p.limits.MaxFrame-len(b)-1 {
			return nil, 0, errFrameTooLarge
		}
		bodyLen = n
	}
	return f, bodyLen, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// unescapeHeader decodes STOMP 1.1/1.2 header escapes (STOMP 1.2 §"Value
// Encoding"). An undefined escape is a fatal protocol error; \r exists only in 1.2.
func unescapeHeader(s string, v version) (string, error) {
	if strings.IndexByte(s, '\\') < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", errBadEscape
		}
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 'c':
			b.WriteByte(':')
		case '\\':
			b.WriteByte('\\')
		case 'r':
			if v == v11 {
				return "", errBadEscape
			}
			b.WriteByte('\r')
		default:
			return "", errBadEscape
		}
	}
	return b.String(), nil
}

// appendEscaped appends s with STOMP header escaping for version v.
// Without escaping (1.0, and CONNECT/CONNECTED frames in every version) a
// LF cannot be carried: it is written as a space, because a raw LF would end
// the line and let the value forge headers, or whole frames, for the reader.
func appendEscaped(dst []byte, s string, v version) []byte {
	if v == v10 {
		for {
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				return append(dst, s...)
			}
			dst = append(append(dst, s[:i]...), ' ')
			s = s[i+1:]
		}
	}
	// The plain run before the first byte that may need escaping goes in
	// one copy; most header values are all plain.
	first := escapeIndex(s)
	if first < 0 {
		return append(dst, s...)
	}
	dst = append(dst, s[:first]...)
	for i := first; i < len(s); i++ {
		switch c := s[i]; c {
		case '\n':
			dst = append(dst, '\\', 'n')
		case ':':
			dst = append(dst, '\\', 'c')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\r':
			if v == v12 {
				dst = append(dst, '\\', 'r')
			} else {
				dst = append(dst, c)
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// escapeIndex returns the index of the first byte in s that STOMP 1.1 or
// 1.2 may escape ('\r' is escaped in 1.2 only), or -1 if there is none.
func escapeIndex(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\n', ':', '\\', '\r':
			return i
		}
	}
	return -1
}

// appendHeader appends one "key:value\n" line escaped for v.
func appendHeader(dst []byte, key, value string, v version) []byte {
	dst = appendEscaped(dst, key, v)
	dst = append(dst, ':')
	dst = appendEscaped(dst, value, v)
	return append(dst, '\n')
}

// appendFrame encodes f for version v. It writes a content-length header for
// any non-empty body (so bodies may contain NUL) unless f already has one.
// CONNECTED frames are never escaped (STOMP 1.2 §"Value Encoding").
func appendFrame(dst []byte, f *frame, v version) []byte {
	ev := v
	if f.Command == cmdConnected || f.Command == cmdConnect || f.Command == cmdStomp {
		ev = v10
	}
	dst = append(dst, f.Command...)
	dst = append(dst, '\n')
	hasLen := false
	for _, h := range f.Headers {
		if h.Key == hdrContentLength {
			hasLen = true
		}
		dst = appendHeader(dst, h.Key, h.Value, ev)
	}
	if !hasLen && len(f.Body) > 0 {
		dst = append(dst, hdrContentLength...)
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, int64(len(f.Body)), 10)
		dst = append(dst, '\n')
	}
	dst = append(dst, '\n')
	dst = append(dst, f.Body...)
	return append(dst, 0)
}

// negotiateVersion picks the highest version both sides know. accept is the
// CONNECT accept-version header (absent means 1.0, STOMP 1.2 §"Protocol
// Negotiation"); subprotocol is the agreed WebSocket subprotocol, if any,
// which caps the version.
func negotiateVersion(accept string, hasAccept bool, subprotocol string) (version, error) {
	limit := v12
	switch subprotocol {
	case "v10.stomp":
		limit = v10
	case "v11.stomp":
		limit = v11
	}
	if !hasAccept {
		if subprotocol != "" {
			return limit, nil
		}
		return v10, nil
	}
	var best version
	for _, s := range strings.Split(accept, ",") {
		var v version
		switch strings.TrimSpace(s) {
		case "1.0":
			v = v10
		case "1.1":
			v = v11
		case "1.2":
			v = v12
		default:
			continue
		}
		if v <= limit && v > best {
			best = v
		}
	}
	if best == 0 {
		return 0, errVersionUnsupported
	}
	return best, nil
}

// maxHeartBeat caps each heart-beat value, in milliseconds. A day is longer
// than any real interval, and keeps the millisecond-to-time.Duration
// conversion far from overflow: 76480200929599801 ms wraps to 64 ns.
const maxHeartBeat = 24 * 60 * 60 * 1000

// parseHeartBeat reads a "cx,cy" heart-beat header (STOMP 1.2 §"Heart-beating").
// Absent means 0,0. Values above maxHeartBeat are lowered to it.
func parseHeartBeat(s string, present bool) (cx, cy int, err error) {
	if !present {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, ",")
	if !ok {
		return 0, 0, errBadHeartBeat
	}
	cx, err1 := strconv.Atoi(strings.TrimSpace(a))
	cy, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || cx < 0 || cy < 0 {
		return 0, 0, errBadHeartBeat
	}
	return min(cx, maxHeartBeat), min(cy, maxHeartBeat), nil
}

// negotiateHeartBeat returns the agreed intervals in milliseconds, following
// STOMP 1.2 §"Heart-beating": each direction is the larger of what one side
// can do and the other wants, or 0 if either side declines.
//
//	send: how often the server sends (client's cy against the server's sx)
//	recv: how often the client promised to send (client's cx against the server's sy)
func negotiateHeartBeat(cx, cy, sx, sy int) (send, recv int) {
	if sx > 0 && cy > 0 {
		send = max(sx, cy)
	}
	if cx > 0 && sy > 0 {
		recv = max(cx, sy)
	}
	return send, recv
}
