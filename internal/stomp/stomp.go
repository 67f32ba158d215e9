package stomp

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Frame commands, STOMP 1.2 §"Client Frames" and §"Server Frames".
const (
	CmdConnect     = "CONNECT"
	CmdStomp       = "STOMP"
	CmdSend        = "SEND"
	CmdSubscribe   = "SUBSCRIBE"
	CmdUnsubscribe = "UNSUBSCRIBE"
	CmdAck         = "ACK"
	CmdNack        = "NACK"
	CmdBegin       = "BEGIN"
	CmdCommit      = "COMMIT"
	CmdAbort       = "ABORT"
	CmdDisconnect  = "DISCONNECT"
	CmdConnected   = "CONNECTED"
	CmdMessage     = "MESSAGE"
	CmdReceipt     = "RECEIPT"
	CmdError       = "ERROR"
)

// Header names, STOMP 1.2 §"Standard Headers" and the per-frame sections.
const (
	HdrAcceptVersion = "accept-version"
	HdrHost          = "host"
	HdrLogin         = "login"
	HdrPasscode      = "passcode"
	HdrHeartBeat     = "heart-beat"
	HdrVersion       = "version"
	HdrSession       = "session"
	HdrServer        = "server"
	HdrDestination   = "destination"
	HdrID            = "id"
	HdrAck           = "ack"
	HdrTransaction   = "transaction"
	HdrReceipt       = "receipt"
	HdrReceiptID     = "receipt-id"
	HdrMessageID     = "message-id"
	HdrSubscription  = "subscription"
	HdrContentLength = "content-length"
	HdrContentType   = "content-type"
	HdrMessage       = "message"
	HdrUserName      = "user-name" // not in the spec; Spring's broker sends it in CONNECTED
)

// Version is a negotiated STOMP protocol version.
type Version uint8

const (
	V10 Version = iota + 1
	V11
	V12
)

// String returns the version as it appears in accept-version and version headers.
func (v Version) String() string {
	switch v {
	case V10:
		return "1.0"
	case V11:
		return "1.1"
	case V12:
		return "1.2"
	}
	return "unknown"
}

// SupportedVersions is what the server offers, for ERROR frames on a failed negotiation.
const SupportedVersions = "1.0,1.1,1.2"

// Error is a protocol error a client may see: it becomes an ERROR frame
// whose message header is the text, then the connection closes (STOMP 1.2
// §ERROR). Any other error reaching a client is shown as "internal error".
type Error struct{ msg string }

func (e *Error) Error() string { return "stomp: " + e.msg }

// Protocol errors of the codec.
var (
	ErrUnknownCommand     = &Error{"unknown command"}
	ErrMalformedHeader    = &Error{"malformed header line"}
	ErrBadEscape          = &Error{"undefined escape sequence in header"}
	ErrBadContentLength   = &Error{"invalid content-length"}
	ErrMissingNUL         = &Error{"frame body not terminated by NUL"}
	ErrFrameTooLarge      = &Error{"frame exceeds the size limit"}
	ErrTooManyHeaders     = &Error{"too many headers"}
	ErrHeaderTooLong      = &Error{"header line too long"}
	ErrMissingHeader      = &Error{"missing required header"}
	ErrNotConnected       = &Error{"expected CONNECT or STOMP frame first"}
	ErrVersionUnsupported = &Error{"supported protocol versions are " + SupportedVersions}
	ErrBadHeartBeat       = &Error{"invalid heart-beat header"}
)

// ClientMessage returns the text a client may see for err: the protocol
// error's own words, or "internal error" for anything else. It reports
// whether err was a protocol error.
func ClientMessage(err error) (string, bool) {
	var se *Error
	if !errors.As(err, &se) {
		return "internal error", false
	}
	return strings.TrimPrefix(err.Error(), "stomp: "), true
}

// Limits bounds what a reader accepts. Each limit is checked before the
// memory for it is used: "Implementations may impose implementation-specific
// limits on unconstrained inputs" (STOMP 1.2 §"Size Limits").
type Limits struct {
	MaxFrame      int // whole frame: command, headers and body, in bytes
	MaxHeaders    int // header lines in one frame
	MaxHeaderLine int // bytes in one header line, escapes included
}

const (
	DefaultMaxFrame      = 64 << 10 // fits any chat message with room to spare; stops floods of megabyte frames
	DefaultMaxHeaders    = 64       // real clients send fewer than 20; Spring's native headers add a few
	DefaultMaxHeaderLine = 8 << 10  // long enough for tokens and long destinations, short enough to bound parsing
)

func DefaultLimits() Limits {
	return Limits{MaxFrame: DefaultMaxFrame, MaxHeaders: DefaultMaxHeaders, MaxHeaderLine: DefaultMaxHeaderLine}
}

// Header is one decoded header line. Frames keep headers in order and keep
// repeats, because STOMP 1.2 §"Repeated Header Entries" says the first wins
// but the rest are still part of the frame.
type Header struct {
	Key, Value string
}

// Frame is one decoded STOMP frame.
type Frame struct {
	Command string
	Headers []Header
	Body    []byte
}

// Get returns the first value of key, as STOMP 1.2 §"Repeated Header Entries" requires.
func (f *Frame) Get(key string) (string, bool) {
	for _, h := range f.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return "", false
}

// Value returns the first value of key, or "".
func (f *Frame) Value(key string) string {
	v, _ := f.Get(key)
	return v
}

// Add appends a header.
func (f *Frame) Add(key, value string) {
	f.Headers = append(f.Headers, Header{key, value})
}

// ClientCommands are the commands a server accepts (STOMP 1.2 §"Client Frames").
var ClientCommands = map[string]bool{
	CmdConnect: true, CmdStomp: true, CmdSend: true, CmdSubscribe: true, CmdUnsubscribe: true,
	CmdAck: true, CmdNack: true, CmdBegin: true, CmdCommit: true, CmdAbort: true, CmdDisconnect: true,
}

// ServerCommands are the commands a client accepts (STOMP 1.2 §"Server Frames");
// the load tool and the tests parse with them.
var ServerCommands = map[string]bool{CmdConnected: true, CmdMessage: true, CmdReceipt: true, CmdError: true}

// Parser decodes frames from a byte stream fed in chunks of any size.
// It is a push parser because every transport delivers chunks (a WebSocket
// message, a SockJS message, a TCP read) and none of them aligns with frames.
// It is not safe for concurrent use; each session owns one.
type Parser struct {
	limits   Limits
	Commands map[string]bool // the commands this side accepts
	Version  Version         // escaping rules for non-CONNECT frames; 0 until negotiated (treated as 1.2)
	Borrowed bool            // buf is the rest of the caller's chunk, not the parser's own copy
	Buf      []byte          // unconsumed input
	Own      []byte          // the parser's buffer for partial frames, kept for the next one; nil until one came
	// State of the frame in progress, kept so a frame arriving in many small
	// chunks is scanned once, not once per chunk.
	headerScan int    // offset in buf from which to look for the end of headers
	head       *Frame // decoded command and headers, once the blank line was seen
	bodyStart  int    // offset of the body in buf, valid when head != nil
	bodyLen    int    // content-length, or -1 when the body ends at the first NUL
	bodyScan   int    // offset from which to look for the NUL
}

// NewParser returns a parser for frames sent to a server; set commands
// to serverCommands to parse the frames a client receives.
func NewParser(limits Limits) *Parser {
	return &Parser{limits: limits, Commands: ClientCommands}
}

// Feed appends a chunk of input. The parser reads chunk in place until Next
// returns nil or an error, so the caller must not change it before then;
// what it still needs after that (the start of a frame whose end has not
// come) it copies. A chunk of whole frames, the usual case, is thus never
// copied, and a parser between frames holds no buffer: an idle connection
// keeps no copy of the last frames it sent.
func (p *Parser) Feed(chunk []byte) {
	if len(p.Buf) == 0 {
		p.Buf, p.Borrowed = chunk, true
		return
	}
	p.keep()
	p.Buf = append(p.Buf, chunk...)
}

// keep makes buf the parser's own: a borrowed chunk is copied into own,
// which is made (or grown) to room for the whole frame when its
// content-length is known, so that the chunks still to come are appended
// without another copy, and to twice the partial frame if not.
func (p *Parser) keep() {
	if !p.Borrowed {
		return
	}
	want := 2 * len(p.Buf)
	if p.head != nil && p.bodyLen >= 0 {
		want = max(p.bodyStart+p.bodyLen+1, len(p.Buf))
	}
	if cap(p.Own) < want {
		p.Own = make([]byte, 0, want)
	}
	p.Buf, p.Borrowed = append(p.Own[:0], p.Buf...), false
}

// more is Next's answer when the input ends inside a frame: nil, after
// keeping the partial frame, since the caller may reuse its chunk.
func (p *Parser) more() (*Frame, error) {
	p.keep()
	return nil, nil
}

// Next returns the next complete frame, or nil if more input is needed.
// After an error the parser must not be used again.
func (p *Parser) Next() (f *Frame, err error) {
	if p.head == nil {
		// Skip heart-beat EOLs between frames.
		i := 0
		for i < len(p.Buf) {
			if p.Buf[i] == '\n' {
				i++
			} else if p.Buf[i] == '\r' && i+1 < len(p.Buf) && p.Buf[i+1] == '\n' {
				i += 2
			} else {
				break
			}
		}
		if i > 0 {
			p.consume(i)
		}
		if len(p.Buf) == 0 {
			return nil, nil
		}
		end, err := p.findHeaderEnd()
		if err != nil {
			return nil, err
		}
		if end < 0 {
			return p.more()
		}
		head, bodyLen, err := p.parseHead(p.Buf[:end])
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
		if len(p.Buf) < need {
			return p.more()
		}
		if p.Buf[need-1] != 0 {
			return nil, ErrMissingNUL
		}
		return p.finish(p.bodyStart+p.bodyLen, need), nil
	}
	nul := bytes.IndexByte(p.Buf[p.bodyScan:], 0)
	if nul < 0 {
		p.bodyScan = len(p.Buf)
		if len(p.Buf) >= p.limits.MaxFrame { // the NUL still to come makes it larger
			return nil, ErrFrameTooLarge
		}
		return p.more()
	}
	end := p.bodyScan + nul
	if end+1 > p.limits.MaxFrame { // the frame is buf[:end+1], NUL included
		return nil, ErrFrameTooLarge
	}
	return p.finish(end, end+1), nil
}

// finish takes the frame whose body ends at bodyEnd and whose bytes end at frameEnd.
func (p *Parser) finish(bodyEnd, frameEnd int) *Frame {
	f := p.head
	if bodyEnd > p.bodyStart {
		f.Body = bytes.Clone(p.Buf[p.bodyStart:bodyEnd])
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
func (p *Parser) consume(n int) {
	switch rest := len(p.Buf) - n; {
	case rest == 0:
		if !p.Borrowed {
			p.Own = p.Buf[:0]
			if cap(p.Own) > 2*DefaultMaxHeaderLine {
				p.Own = nil // don't pin a large buffer to an idle connection
			}
		}
		p.Buf, p.Borrowed = nil, false
	case p.Borrowed:
		p.Buf = p.Buf[n:] // the caller's memory: never written
	default:
		copy(p.Buf, p.Buf[n:])
		p.Buf = p.Buf[:rest]
	}
	p.headerScan, p.bodyScan, p.bodyStart = 0, 0, 0
}

// findHeaderEnd looks for the blank line that ends the headers and returns the
// offset just past it, or -1 if more input is needed. It enforces the frame
// and header-line limits while the headers are still incomplete, so a peer
// cannot make us buffer without bound.
func (p *Parser) findHeaderEnd() (int, error) {
	// Jump from line end to line end; the scan resumes at the start of the
	// line that the previous call left incomplete.
	start := bytes.LastIndexByte(p.Buf[:p.headerScan], '\n') + 1
	for {
		i := bytes.IndexByte(p.Buf[start:], '\n')
		if i < 0 {
			break
		}
		// A line ends at start+i. It is blank if it is empty or just "\r";
		// the first line cannot be blank because leading EOLs were skipped.
		line := p.Buf[start : start+i]
		if start > 0 && (len(line) == 0 || (len(line) == 1 && line[0] == '\r')) {
			return start + i + 1, nil
		}
		if len(line) > p.limits.MaxHeaderLine {
			return -1, ErrHeaderTooLong
		}
		start += i + 1
	}
	p.headerScan = len(p.Buf)
	if len(p.Buf) > p.limits.MaxFrame {
		return -1, ErrFrameTooLarge
	}
	if last := bytes.LastIndexByte(p.Buf, '\n') + 1; len(p.Buf)-last > p.limits.MaxHeaderLine {
		return -1, ErrHeaderTooLong
	}
	return -1, nil
}

// parseHead decodes the command line and the headers, ending with the blank line.
// The head is copied into one string and the command, keys and values are
// substrings of it: one allocation for the whole head instead of two per
// header, which was most of the parser's cost per frame.
func (p *Parser) parseHead(b []byte) (*Frame, int, error) {
	if len(b) > p.limits.MaxFrame {
		return nil, 0, ErrFrameTooLarge
	}
	// Drop the final LF; what is left ends with the blank line, whose own
	// LF is the last separator.
	head := string(b[:len(b)-1])
	nl := strings.IndexByte(head, '\n')
	cmd := strings.TrimSuffix(head[:nl], "\r")
	if !p.Commands[cmd] {
		return nil, 0, fmt.Errorf("%w %q", ErrUnknownCommand, Truncate(cmd, 32))
	}
	rest := head[nl+1 : strings.LastIndexByte(head, '\n')+1] // the header lines, each with its LF
	n := strings.Count(rest, "\n")
	if n > p.limits.MaxHeaders {
		return nil, 0, ErrTooManyHeaders
	}
	f := &Frame{Command: cmd, Headers: make([]Header, 0, n)}
	// CONNECT and STOMP frames are never escaped (STOMP 1.2 §"Value Encoding"),
	// and 1.0 has no escaping at all.
	escaped := p.Version != V10 && cmd != CmdConnect && cmd != CmdStomp && cmd != CmdConnected
	stripCR := p.Version == 0 || p.Version == V12 // 1.2 allows CRLF line ends; 1.0/1.1 treat CR as data
	for len(rest) > 0 {
		i := strings.IndexByte(rest, '\n')
		line := rest[:i]
		rest = rest[i+1:]
		if len(line) > p.limits.MaxHeaderLine {
			return nil, 0, ErrHeaderTooLong
		}
		if stripCR {
			line = strings.TrimSuffix(line, "\r")
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			return nil, 0, ErrMalformedHeader
		}
		if escaped {
			var err error
			if key, err = UnescapeHeader(key, p.Version); err != nil {
				return nil, 0, err
			}
			if val, err = UnescapeHeader(val, p.Version); err != nil {
				return nil, 0, err
			}
		}
		f.Headers = append(f.Headers, Header{key, val})
	}
	bodyLen := -1
	if cl, ok := f.Get(HdrContentLength); ok {
		n, err := strconv.Atoi(strings.TrimSpace(cl))
		if err != nil || n < 0 {
			return nil, 0, ErrBadContentLength
		}
		// Compare without adding to n: a huge n would overflow the sum.
		if n > p.limits.MaxFrame-len(b)-1 {
			return nil, 0, ErrFrameTooLarge
		}
		bodyLen = n
	}
	return f, bodyLen, nil
}

func Truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// UnescapeHeader decodes STOMP 1.1/1.2 header escapes (STOMP 1.2 §"Value
// Encoding"). An undefined escape is a fatal protocol error; \r exists only in 1.2.
func UnescapeHeader(s string, v Version) (string, error) {
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
			return "", ErrBadEscape
		}
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 'c':
			b.WriteByte(':')
		case '\\':
			b.WriteByte('\\')
		case 'r':
			if v == V11 {
				return "", ErrBadEscape
			}
			b.WriteByte('\r')
		default:
			return "", ErrBadEscape
		}
	}
	return b.String(), nil
}

// AppendEscaped appends s with STOMP header escaping for version v.
// Without escaping (1.0, and CONNECT/CONNECTED frames in every version) a
// LF cannot be carried: it is written as a space, because a raw LF would end
// the line and let the value forge headers, or whole frames, for the reader.
func AppendEscaped(dst []byte, s string, v Version) []byte {
	if v == V10 {
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
			if v == V12 {
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

// AppendHeader appends one "key:value\n" line escaped for v.
func AppendHeader(dst []byte, key, value string, v Version) []byte {
	dst = AppendEscaped(dst, key, v)
	dst = append(dst, ':')
	dst = AppendEscaped(dst, value, v)
	return append(dst, '\n')
}

// AppendFrame encodes f for version v. It writes a content-length header for
// any non-empty body (so bodies may contain NUL) unless f already has one.
// CONNECTED frames are never escaped (STOMP 1.2 §"Value Encoding").
func AppendFrame(dst []byte, f *Frame, v Version) []byte {
	ev := v
	if f.Command == CmdConnected || f.Command == CmdConnect || f.Command == CmdStomp {
		ev = V10
	}
	dst = append(dst, f.Command...)
	dst = append(dst, '\n')
	hasLen := false
	for _, h := range f.Headers {
		if h.Key == HdrContentLength {
			hasLen = true
		}
		dst = AppendHeader(dst, h.Key, h.Value, ev)
	}
	if !hasLen && len(f.Body) > 0 {
		dst = append(dst, HdrContentLength...)
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, int64(len(f.Body)), 10)
		dst = append(dst, '\n')
	}
	dst = append(dst, '\n')
	dst = append(dst, f.Body...)
	return append(dst, 0)
}

// NegotiateVersion picks the highest version both sides know. accept is the
// CONNECT accept-version header (absent means 1.0, STOMP 1.2 §"Protocol
// Negotiation"); subprotocol is the agreed WebSocket subprotocol, if any,
// which caps the version.
func NegotiateVersion(accept string, hasAccept bool, subprotocol string) (Version, error) {
	limit := V12
	switch subprotocol {
	case "v10.stomp":
		limit = V10
	case "v11.stomp":
		limit = V11
	}
	if !hasAccept {
		if subprotocol != "" {
			return limit, nil
		}
		return V10, nil
	}
	var best Version
	for _, s := range strings.Split(accept, ",") {
		var v Version
		switch strings.TrimSpace(s) {
		case "1.0":
			v = V10
		case "1.1":
			v = V11
		case "1.2":
			v = V12
		default:
			continue
		}
		if v <= limit && v > best {
			best = v
		}
	}
	if best == 0 {
		return 0, ErrVersionUnsupported
	}
	return best, nil
}

// MaxHeartBeat caps each heart-beat value, in milliseconds. A day is longer
// than any real interval, and keeps the millisecond-to-time.Duration
// conversion far from overflow: 76480200929599801 ms wraps to 64 ns.
const MaxHeartBeat = 24 * 60 * 60 * 1000

// ParseHeartBeat reads a "cx,cy" heart-beat header (STOMP 1.2 §"Heart-beating").
// Absent means 0,0. Values above maxHeartBeat are lowered to it.
func ParseHeartBeat(s string, present bool) (cx, cy int, err error) {
	if !present {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, ",")
	if !ok {
		return 0, 0, ErrBadHeartBeat
	}
	cx, err1 := strconv.Atoi(strings.TrimSpace(a))
	cy, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || cx < 0 || cy < 0 {
		return 0, 0, ErrBadHeartBeat
	}
	return min(cx, MaxHeartBeat), min(cy, MaxHeartBeat), nil
}

// NegotiateHeartBeat returns the agreed intervals in milliseconds, following
// STOMP 1.2 §"Heart-beating": each direction is the larger of what one side
// can do and the other wants, or 0 if either side declines.
//
//	send: how often the server sends (client's cy against the server's sx)
//	recv: how often the client promised to send (client's cx against the server's sy)
func NegotiateHeartBeat(cx, cy, sx, sy int) (send, recv int) {
	if sx > 0 && cy > 0 {
		send = max(sx, cy)
	}
	if cx > 0 && sy > 0 {
		recv = max(cx, sy)
	}
	return send, recv
}

// NewError returns a protocol error whose message is sent to the client in
// an ERROR frame's message header.
func NewError(msg string) *Error { return &Error{msg: msg} }
