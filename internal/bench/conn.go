package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"stompbox/internal/sockjsframe"
	"stompbox/internal/stomp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// Transports the load tool speaks.
const (
	WS              = "ws"         // raw WebSocket at -ws-path, STOMP subprotocol v12.stomp
	SockJSWS        = "sockjs-ws"  // SockJS websocket transport at -sockjs-path
	SockJSXHR       = "sockjs-xhr" // SockJS xhr_streaming to receive, xhr_send to send
	benchReadLimit  = 1 << 20      // largest WebSocket message accepted; STOMP frames are far smaller
	benchSourceConn = 20000        // connections per 127.0.0.x source address: stays under the 28,232 ephemeral ports of Linux's default range
	benchWriteWait  = 10 * time.Second
	benchCloseWait  = time.Second // how long close lets queued xhr_send messages go out
)

// benchTransport carries STOMP bytes one way and the other. send may be
// called by one goroutine at a time (benchConn serializes it), recv only by
// the connection's reader; close may be called by anyone, more than once.
type benchTransport interface {
	send(ctx context.Context, b []byte) error
	recv(ctx context.Context) ([]byte, error)
	close()
}

// Conn is one STOMP client connection of the load tool.
type Conn struct {
	t    benchTransport
	wmu  sync.Mutex // serializes send
	p    *stomp.Parser
	pend []byte // the rest of the last chunk received, not yet scanned (see next); reader only
	buf  []byte // encode buffer, guarded by wmu
}

// dialer opens the tool's connections: it knows the server, the transport
// and the 127.0.0.x source address of each connection number.
type dialer struct {
	base       string // http://host:port
	wsPath     string
	sockjsPath string
	transport  string
	clients    []*http.Client // one per source address, index i/benchSourceConn
	mu         sync.Mutex
}

func NewDialer(base, wsPath, sockjsPath, transport string) *dialer {
	return &dialer{base: strings.TrimRight(base, "/"), wsPath: wsPath, sockjsPath: sockjsPath, transport: transport}
}

// client returns the HTTP client whose connections start at the source
// address of connection i: 127.0.0.1 for the first benchSourceConn, then
// 127.0.0.2, and so on, so the tool can open more connections than one
// address has ephemeral ports.
func (d *dialer) client(i int) *http.Client {
	k := i / benchSourceConn
	d.mu.Lock()
	defer d.mu.Unlock()
	for len(d.clients) <= k {
		n := len(d.clients)
		nd := &net.Dialer{Timeout: benchWriteWait}
		if n > 0 {
			nd.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+n))}
		}
		tr := &http.Transport{
			DialContext:         nd.DialContext,
			MaxIdleConnsPerHost: 4096, // xhr_send requests reuse connections instead of exhausting ports
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		}
		d.clients = append(d.clients, &http.Client{Transport: tr})
	}
	return d.clients[k]
}

// closeIdle releases pooled HTTP connections.
func (d *dialer) closeIdle() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.clients {
		c.CloseIdleConnections()
	}
}

// dial opens connection number i (which picks its source address) and
// completes the STOMP CONNECT. cookie, if set, is sent with every HTTP
// request, as a browser sends the session cookie.
func (d *dialer) dial(ctx context.Context, i int, cookie string, connect *stomp.Frame) (*Conn, error) {
	var t benchTransport
	var err error
	switch d.transport {
	case WS:
		t, err = dialBenchWS(ctx, d.client(i), wsURL(d.base)+d.wsPath, cookie, []string{"v12.stomp"}, false)
	case SockJSWS:
		t, err = dialBenchWS(ctx, d.client(i), wsURL(d.base)+sockjsSessionPath(d.sockjsPath)+"/websocket", cookie, nil, true)
	case SockJSXHR:
		t, err = dialBenchXHR(ctx, d.client(i), d.base+sockjsSessionPath(d.sockjsPath), cookie)
	default:
		err = fmt.Errorf("unknown transport %q (ws, sockjs-ws or sockjs-xhr)", d.transport)
	}
	if err != nil {
		return nil, err
	}
	p := stomp.NewParser(stomp.Limits{MaxFrame: benchReadLimit, MaxHeaders: stomp.DefaultMaxHeaders, MaxHeaderLine: stomp.DefaultMaxHeaderLine})
	p.Commands = stomp.ServerCommands
	c := &Conn{t: t, p: p}
	if err := c.write(ctx, connect); err != nil {
		c.t.close()
		return nil, err
	}
	f, err := c.read(ctx)
	if err != nil {
		c.t.close()
		return nil, fmt.Errorf("read CONNECTED: %w", err)
	}
	if f.Command != stomp.CmdConnected {
		c.t.close()
		return nil, fmt.Errorf("connect refused: %s %s", f.Value(stomp.HdrMessage), stomp.Truncate(string(f.Body), 200))
	}
	p.Version = stomp.V12
	return c, nil
}

func wsURL(base string) string {
	if rest, ok := strings.CutPrefix(base, "https://"); ok {
		return "wss://" + rest
	}
	return "ws://" + strings.TrimPrefix(base, "http://")
}

// sockjsSessionPath is prefix/{server}/{session}, as sockjs-client makes them.
func sockjsSessionPath(prefix string) string {
	return fmt.Sprintf("%s/%03d/%016x", prefix, rand.IntN(1000), rand.Uint64())
}

// write encodes and sends one frame.
func (c *Conn) write(ctx context.Context, f *stomp.Frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.buf = stomp.AppendFrame(c.buf[:0], f, stomp.V12)
	return c.t.send(ctx, c.buf)
}

// close sends DISCONNECT (best effort, so the server frees the session at
// once rather than at a SockJS timeout) and closes the transport.
func (c *Conn) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	c.write(ctx, &stomp.Frame{Command: stomp.CmdDisconnect})
	cancel()
	c.t.close()
}

// benchWSTransport is raw STOMP over WebSocket, or SockJS framing over it.
type benchWSTransport struct {
	c       *websocket.Conn
	sockjs  bool
	rbuf    []byte // the last message read, reused: recv's caller copies it (frameParser.Feed)
	payload []byte // SockJS: the STOMP bytes of the last message, reused likewise

	// A context that ends while a read waits closes the connection, which
	// is what coder/websocket does when a read's context ends. The watch is
	// registered once per context instead of once per read (a watch per read
	// was 8 % of the tool's CPU in a rooms run); reading says whether a read
	// is under way and under which watch, so a context that ends between
	// reads, or one replaced by the next read's, closes nothing.
	// watchedDone, watchGen and unwatch are owned by the reader.
	reading     atomic.Uint64 // watchGen of the read under way; 0 between reads
	watchGen    uint64
	watchedDone <-chan struct{}
	unwatch     func() bool
}

func dialBenchWS(ctx context.Context, hc *http.Client, url, cookie string, subprotocols []string, sockjs bool) (*benchWSTransport, error) {
	h := http.Header{}
	if cookie != "" {
		h.Set("Cookie", cookie)
	}
	dctx, cancel := context.WithTimeout(ctx, benchWriteWait)
	defer cancel()
	c, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{
		HTTPClient: hc, HTTPHeader: h, Subprotocols: subprotocols, CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	c.SetReadLimit(benchReadLimit)
	t := &benchWSTransport{c: c, sockjs: sockjs}
	if sockjs { // the open frame comes first
		if _, b, err := c.Read(dctx); err != nil || string(b) != "o" {
			c.CloseNow()
			return nil, fmt.Errorf("sockjs open frame: %q %v", b, err)
		}
	}
	return t, nil
}

func (t *benchWSTransport) send(ctx context.Context, b []byte) error {
	if t.sockjs {
		b = SockJSArray(b)
	}
	return t.c.Write(ctx, websocket.MessageText, b)
}

func (t *benchWSTransport) recv(ctx context.Context) ([]byte, error) {
	for {
		b, err := t.read(ctx)
		if err != nil {
			return nil, err
		}
		if !t.sockjs {
			return b, nil
		}
		if out, ok, err := sockjsChunk(&t.payload, b); err != nil || ok {
			return out, err
		}
	}
}

// read reads one message into rbuf. Unlike Conn.Read it allocates nothing
// once rbuf has grown to the largest message: with a thousand subscribers in
// one process, the tool's own garbage would otherwise compete with the
// server for the shared cores.
func (t *benchWSTransport) read(ctx context.Context) ([]byte, error) {
	if done := ctx.Done(); done != t.watchedDone {
		t.stopWatching()
		t.watchedDone = done
		t.watchGen++
		if done != nil {
			gen := t.watchGen
			t.unwatch = context.AfterFunc(ctx, func() {
				if t.reading.Load() == gen {
					t.c.CloseNow()
				}
			})
		}
	}
	// Set before checking ctx: a context that ends after the check finds
	// its read under way and closes; one that ended before fails the check.
	t.reading.Store(t.watchGen)
	defer t.reading.Store(0)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	_, r, err := t.c.Reader(context.Background())
	if err != nil {
		t.stopWatching() // the connection is done: do not hold the context's list
		return nil, err
	}
	b := t.rbuf[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			t.rbuf = b
			return b, nil
		}
		if err != nil {
			t.stopWatching()
			return nil, err
		}
	}
}

func (t *benchWSTransport) stopWatching() {
	if t.unwatch != nil {
		t.unwatch()
		t.unwatch, t.watchedDone = nil, nil
	}
}

func (t *benchWSTransport) close() { t.c.CloseNow() }

// SockJSArray wraps one STOMP chunk as a SockJS message array ["…"].
func SockJSArray(b []byte) []byte {
	s, _ := json.Marshal([]string{string(b)})
	return s
}

// SockJSPayload returns the STOMP bytes in one SockJS frame: nil for the
// open and heartbeat frames, io.EOF for a close frame.
func SockJSPayload(b []byte) ([]byte, error) {
	out, err := appendSockJSPayload(nil, b)
	if out == nil && err == nil && isSockJSArray(b) {
		out = []byte{} // an empty array carries no bytes, but is a message
	}
	return out, err
}

// isSockJSArray reports whether b is an array frame.
func isSockJSArray(b []byte) bool {
	b = bytes.TrimRight(b, "\n")
	return len(b) > 0 && b[0] == 'a'
}

// sockjsChunk turns one SockJS frame into what recv returns: ok is false
// for a frame that carries no STOMP bytes (open, heartbeat), a close frame
// is io.EOF, and an array frame's bytes are decoded into *buf, reused.
func sockjsChunk(buf *[]byte, b []byte) (out []byte, ok bool, err error) {
	if !isSockJSArray(b) {
		_, err := appendSockJSPayload(nil, b)
		return nil, false, err
	}
	out, err = appendSockJSPayload((*buf)[:0], b)
	*buf = out
	return out, true, err
}

// appendSockJSPayload appends the STOMP bytes of one SockJS frame to dst:
// nothing for the open and heartbeat frames, io.EOF for a close frame.
// An array frame's strings are decoded straight into dst
// (appendJSONStrings): encoding/json, with a string per message, was more
// than half of the tool's CPU in an xhr-streaming fan-out.
func appendSockJSPayload(dst, b []byte) ([]byte, error) {
	b = bytes.TrimRight(b, "\n")
	if len(b) == 0 {
		return dst, nil
	}
	switch b[0] {
	case 'o', 'h':
		return dst, nil
	case 'c':
		return dst, fmt.Errorf("sockjs close %s: %w", b[1:], io.EOF)
	case 'a':
		out, err := appendJSONStrings(dst, b[1:])
		if err != nil {
			return dst, fmt.Errorf("sockjs array: %w", err)
		}
		return out, nil
	}
	return dst, fmt.Errorf("unknown sockjs frame %q", stomp.Truncate(string(b), 40))
}

var errJSONStrings = errors.New("not a JSON array of strings")

// appendJSONStrings decodes p, a JSON array of strings (RFC 8259), and
// appends the strings' contents one after the other to dst. It accepts
// what encoding/json accepts for []string, except null; an unpaired
// surrogate escape becomes U+FFFD, as there.
func appendJSONStrings(dst, p []byte) ([]byte, error) {
	p = sockjsframe.TrimJSONSpace(p)
	if len(p) < 2 || p[0] != '[' || p[len(p)-1] != ']' {
		return dst, errJSONStrings
	}
	p = sockjsframe.TrimJSONSpace(p[1 : len(p)-1])
	for first := true; len(p) > 0 || first; first = false {
		if len(p) == 0 { // "[]"
			break
		}
		if !first {
			if p[0] != ',' {
				return dst, errJSONStrings
			}
			p = sockjsframe.TrimJSONSpace(p[1:])
		}
		var err error
		if dst, p, err = appendJSONString(dst, p); err != nil {
			return dst, err
		}
		p = sockjsframe.TrimJSONSpace(p)
	}
	return dst, nil
}

// appendJSONString appends the contents of the string literal at the start
// of p and returns what follows it.
func appendJSONString(dst, p []byte) ([]byte, []byte, error) {
	if len(p) == 0 || p[0] != '"' {
		return dst, nil, errJSONStrings
	}
	p = p[1:]
	for {
		i := 0
		for i+8 <= len(p) && jsonPlain8(binary.LittleEndian.Uint64(p[i:])) {
			i += 8
		}
		for i < len(p) && p[i] != '"' && p[i] != '\\' && p[i] >= 0x20 {
			i++
		}
		dst = append(dst, p[:i]...)
		if i == len(p) || p[i] < 0x20 {
			return dst, nil, errJSONStrings // unterminated, or a raw control character
		}
		if p[i] == '"' {
			return dst, p[i+1:], nil
		}
		p = p[i:] // at a backslash
		if len(p) < 2 {
			return dst, nil, errJSONStrings
		}
		switch c := p[1]; c {
		case '"', '\\', '/':
			dst = append(dst, c)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(p[2:])
			if !ok {
				return dst, nil, errJSONStrings
			}
			p = p[6:]
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if len(p) >= 6 && p[0] == '\\' && p[1] == 'u' {
					r2, ok = hex4(p[2:])
				}
				if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
					r = dec
					p = p[6:]
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return dst, nil, errJSONStrings
		}
		p = p[2:]
	}
}

// jsonPlain8 reports whether none of the 8 bytes in x ends a run of plain
// string content: a quote, a backslash or a control character. It tests all
// eight at once (the "has a zero byte" and "has a byte less than n" bit
// tricks, exact when asked whether any byte matches), since scanning a
// SockJS array a byte at a time was a third of the tool's CPU in an
// xhr-streaming fan-out, CPU the server it measures could not have.
func jsonPlain8(x uint64) bool {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	q := x ^ (ones * '"')
	b := x ^ (ones * '\\')
	return ((q-ones)&^q|(b-ones)&^b|(x-ones*0x20)&^x)&high == 0
}

// hex4 decodes the four hex digits of a \u escape.
func hex4(p []byte) (rune, bool) {
	if len(p) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// benchXHRTransport is SockJS xhr_streaming plus xhr_send. The server ends each
// streaming response after 128 KiB; recv then opens the next one on the
// same session, as sockjs-client does.
type benchXHRTransport struct {
	hc     *http.Client
	url    string // …/{server}/{session}
	cookie string
	ctx    context.Context // lives as long as the transport; close cancels it
	cancel context.CancelFunc
	body   io.ReadCloser // current streaming response, owned by recv
	r      *bufio.Reader

	lineBuf []byte // the frame being read, reused; recv only
	payload []byte // what recv returned last, reused: its caller copies it

	// Outgoing messages, sent as sockjs-client sends them: while one
	// xhr_send is in flight, later messages wait and go together in the
	// next one. Without this the sender's throughput would be one message
	// per HTTP round trip, which no browser client suffers.
	smu      sync.Mutex
	pending  []string      // messages waiting for the next xhr_send
	inFlight bool          // a flush goroutine owns the sending
	sendErr  error         // the first failed xhr_send; every later send returns it
	flushed  chan struct{} // closed when the current flush goroutine ends; nil when none ran
}

func dialBenchXHR(ctx context.Context, hc *http.Client, url, cookie string) (*benchXHRTransport, error) {
	tctx, cancel := context.WithCancel(context.Background())
	t := &benchXHRTransport{hc: hc, url: url, cookie: cookie, ctx: tctx, cancel: cancel}
	stop := context.AfterFunc(ctx, cancel) // dialing ends with ctx
	defer stop()
	if err := t.open(); err != nil {
		cancel()
		return nil, err
	}
	b, err := t.line() // prelude
	if err == nil && len(b) > 0 && b[0] == 'h' {
		b, err = t.line()
	}
	if err != nil || string(b) != "o" {
		t.close()
		return nil, fmt.Errorf("sockjs open frame: %q %v", b, err)
	}
	return t, nil
}

func (t *benchXHRTransport) request(ctx context.Context, kind string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url+"/"+kind, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	if t.cookie != "" {
		req.Header.Set("Cookie", t.cookie)
	}
	return t.hc.Do(req)
}

func (t *benchXHRTransport) open() error {
	if t.body != nil {
		t.body.Close()
	}
	resp, err := t.request(t.ctx, "xhr_streaming", nil)
	if err != nil {
		return fmt.Errorf("xhr_streaming: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return fmt.Errorf("xhr_streaming: status %d", resp.StatusCode)
	}
	t.body, t.r = resp.Body, bufio.NewReaderSize(resp.Body, 64<<10)
	return nil
}

// line reads one newline-terminated SockJS frame into t.lineBuf.
func (t *benchXHRTransport) line() ([]byte, error) {
	t.lineBuf = t.lineBuf[:0]
	for {
		b, err := t.r.ReadSlice('\n')
		t.lineBuf = append(t.lineBuf, b...)
		if err == nil {
			return t.lineBuf[:len(t.lineBuf)-1], nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

func (t *benchXHRTransport) recv(ctx context.Context) ([]byte, error) {
	for {
		b, err := t.line()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			if err := t.open(); err != nil { // response limit reached: poll again
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(b) > 0 && b[0] == 'h' && len(b) > 1 { // a new response's prelude
			continue
		}
		if out, ok, err := sockjsChunk(&t.payload, b); err != nil || ok {
			return out, err
		}
	}
}

// send queues b and returns at once; a flush goroutine owned by the
// transport posts the queue in order, one xhr_send at a time, and ends when
// the queue is empty or the transport closes. An error of an earlier
// xhr_send is returned by the next send.
func (t *benchXHRTransport) send(ctx context.Context, b []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t.smu.Lock()
	defer t.smu.Unlock()
	if t.sendErr != nil {
		return t.sendErr
	}
	if err := t.ctx.Err(); err != nil {
		return fmt.Errorf("xhr_send: %w", err) // closed
	}
	t.pending = append(t.pending, string(b))
	if !t.inFlight {
		t.inFlight = true
		t.flushed = make(chan struct{})
		go t.flush(t.flushed)
	}
	return nil
}

func (t *benchXHRTransport) flush(done chan struct{}) {
	defer close(done)
	for {
		t.smu.Lock()
		batch := t.pending
		t.pending = nil
		if len(batch) == 0 {
			t.inFlight = false
			t.smu.Unlock()
			return
		}
		t.smu.Unlock()
		body, _ := json.Marshal(batch)
		err := t.post(body)
		if err != nil {
			t.smu.Lock()
			t.sendErr, t.pending, t.inFlight = err, nil, false
			t.smu.Unlock()
			return
		}
	}
}

func (t *benchXHRTransport) post(body []byte) error {
	resp, err := t.request(t.ctx, "xhr_send", body)
	if err != nil {
		return fmt.Errorf("xhr_send: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("xhr_send: status %d", resp.StatusCode)
	}
	return nil
}

// close gives queued messages (a DISCONNECT, typically) up to
// benchCloseWait to go out, then ends the streaming request (recv's owner
// closes the body) and any xhr_send, and waits for the flush goroutine.
func (t *benchXHRTransport) close() {
	t.smu.Lock()
	done := t.flushed
	t.smu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-time.After(benchCloseWait):
		}
	}
	t.cancel()
	if done != nil {
		<-done
	}
}
