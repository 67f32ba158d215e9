package sockjs

// The hixie-76 WebSocket draft (draft-hixie-thewebsocketprotocol-76), which
// predates RFC 6455. No current browser speaks it, but the sockjs-protocol
// suite (Websocket.test_haproxy) still checks its handshake, and HAProxy-era
// deployments relied on the server answering the headers before the 8-byte
// key arrives. coder/websocket implements RFC 6455 only, so this small
// implementation covers the draft: handshake, text frames 0x00…0xFF, and
// the 0xFF 0x00 closing frame.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// errSockJSHixie76 wraps hixie-76 handshake and framing failures.
var errSockJSHixie76 = errors.New("sockjs: hixie-76")

// isHixie76 reports whether r is a hixie-76 upgrade: two numeric keys and no
// RFC 6455 version header.
func isHixie76(r *http.Request) bool {
	return r.Header.Get("Sec-WebSocket-Key1") != "" && r.Header.Get("Sec-WebSocket-Key2") != "" &&
		r.Header.Get("Sec-WebSocket-Version") == ""
}

// hixie76Key decodes a Sec-WebSocket-Key header: its digits as a number
// divided by its count of spaces, which must divide it exactly.
func hixie76Key(k string) (uint32, bool) {
	var n, spaces uint64
	for i := 0; i < len(k); i++ {
		switch c := k[i]; {
		case c >= '0' && c <= '9':
			n = n*10 + uint64(c-'0')
			if n > 1<<40 { // far beyond any valid key; stop before overflow
				return 0, false
			}
		case c == ' ':
			spaces++
		}
	}
	if spaces == 0 || n%spaces != 0 || n/spaces > 1<<32-1 {
		return 0, false
	}
	return uint32(n / spaces), true
}

// hixie76Conn is an accepted hixie-76 connection. wmu serializes writes so
// frames never interleave; it is the connection's own write lock (as in
// coder/websocket), held only for one frame with a deadline.
type hixie76Conn struct {
	nc          net.Conn
	br          *bufio.Reader
	subprotocol string
	wmu         sync.Mutex
}

// acceptHixie76 hijacks the connection and completes the handshake: headers
// first, then the 8-byte key, then the 16-byte MD5 answer.
func acceptHixie76(w http.ResponseWriter, r *http.Request, subprotocols []string) (*hixie76Conn, error) {
	k1, ok1 := hixie76Key(r.Header.Get("Sec-WebSocket-Key1"))
	k2, ok2 := hixie76Key(r.Header.Get("Sec-WebSocket-Key2"))
	if !ok1 || !ok2 {
		http.Error(w, "invalid Sec-WebSocket-Key", http.StatusBadRequest)
		return nil, fmt.Errorf("%w: invalid key", errSockJSHixie76)
	}
	var proto string
	for _, offered := range strings.Split(r.Header.Get("Sec-WebSocket-Protocol"), ",") {
		for _, p := range subprotocols {
			if proto == "" && strings.TrimSpace(offered) == p {
				proto = p
			}
		}
	}
	scheme := "ws"
	if r.TLS != nil {
		scheme = "wss"
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return nil, fmt.Errorf("%w: hijack: %w", errSockJSHixie76, err)
	}
	c := &hixie76Conn{nc: nc, br: brw.Reader, subprotocol: proto}
	if err := c.handshake(brw.Writer, r, scheme, k1, k2); err != nil {
		_ = nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *hixie76Conn) handshake(bw *bufio.Writer, r *http.Request, scheme string, k1, k2 uint32) error {
	_ = c.nc.SetDeadline(time.Now().Add(sockjsWriteTimeout))
	fmt.Fprintf(bw, "HTTP/1.1 101 WebSocket Protocol Handshake\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Origin: %s\r\nSec-WebSocket-Location: %s://%s%s\r\n",
		r.Header.Get("Origin"), scheme, r.Host, r.URL.RequestURI())
	if c.subprotocol != "" {
		fmt.Fprintf(bw, "Sec-WebSocket-Protocol: %s\r\n", c.subprotocol)
	}
	bw.WriteString("\r\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("%w: write handshake: %w", errSockJSHixie76, err)
	}
	var challenge [16]byte
	binary.BigEndian.PutUint32(challenge[0:], k1)
	binary.BigEndian.PutUint32(challenge[4:], k2)
	if _, err := io.ReadFull(c.br, challenge[8:]); err != nil {
		return fmt.Errorf("%w: read key: %w", errSockJSHixie76, err)
	}
	sum := md5.Sum(challenge[:])
	if _, err := c.nc.Write(sum[:]); err != nil {
		return fmt.Errorf("%w: write answer: %w", errSockJSHixie76, err)
	}
	_ = c.nc.SetDeadline(time.Time{})
	return nil
}

// ReadMessage reads the next text frame. The closing frame yields io.EOF.
func (c *hixie76Conn) ReadMessage(ctx context.Context) ([]byte, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetReadDeadline(time.Now()) })
	defer stop()
	typ, err := c.br.ReadByte()
	if err != nil {
		return nil, err
	}
	switch typ {
	case 0x00:
		var msg bytes.Buffer
		for {
			b, err := c.br.ReadByte()
			if err != nil {
				return nil, err
			}
			if b == 0xff {
				break
			}
			if msg.Len() >= sockjsMaxMessageBytes {
				return nil, fmt.Errorf("%w: message too big", errSockJSHixie76)
			}
			msg.WriteByte(b)
		}
		if !utf8.Valid(msg.Bytes()) {
			return nil, fmt.Errorf("%w: invalid UTF-8", errSockJSHixie76)
		}
		return msg.Bytes(), nil
	case 0xff:
		if b, err := c.br.ReadByte(); err != nil || b != 0x00 {
			return nil, fmt.Errorf("%w: bad closing frame", errSockJSHixie76)
		}
		return nil, io.EOF
	default:
		// Length-prefixed (binary) frames were never used by browsers.
		return nil, fmt.Errorf("%w: unsupported frame type %#x", errSockJSHixie76, typ)
	}
}

// WriteMessage writes p as one text frame.
func (c *hixie76Conn) WriteMessage(ctx context.Context, p []byte) error {
	frame := make([]byte, 0, len(p)+2)
	frame = append(frame, 0x00)
	frame = append(frame, p...)
	frame = append(frame, 0xff)
	return c.writeFrame(ctx, frame)
}

func (c *hixie76Conn) writeFrame(ctx context.Context, frame []byte) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(sockjsWriteTimeout)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(deadline)
	_, err := c.nc.Write(frame)
	return err
}

// Close sends the closing frame (the draft has no code or reason) and closes
// the connection.
func (c *hixie76Conn) Close(int, string) error {
	ctx, cancel := context.WithTimeout(context.Background(), sockjsWriteTimeout)
	defer cancel()
	err := c.writeFrame(ctx, []byte{0xff, 0x00})
	if cerr := c.nc.Close(); err == nil {
		err = cerr
	}
	return err
}

// CloseNow closes the connection.
func (c *hixie76Conn) CloseNow() error { return c.nc.Close() }
