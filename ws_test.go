package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"stompbox/internal/stomp"
	"stompbox/internal/transport"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWSEarlyFramesAfterUpgrade sends the upgrade request and the first
// STOMP frames in one write, before the 101 response: the frames sit in
// net/http's reader when the connection is hijacked, and wsHijacker must
// carry them over into the connection's own, smaller reader.
func TestWSEarlyFramesAfterUpgrade(t *testing.T) {
	srv := startServer(t)
	conn, err := net.Dial("tcp", srv.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(testTimeout))
	connect := "CONNECT\naccept-version:1.2\nhost:stompbox\nheart-beat:0,0\n\n\x00" +
		"SUBSCRIBE\nid:0\ndestination:/topic/early\nreceipt:" + strings.Repeat("r", 1500) + "\n\n\x00"
	req := "GET /ws HTTP/1.1\r\nHost: " + srv.HTTPAddr() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v12.stomp\r\n\r\n"
	if _, err := conn.Write(append([]byte(req), maskedTextFrame([]byte(connect))...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	var got []byte
	for !bytes.Contains(got, []byte("RECEIPT\n")) {
		got = append(got, readServerFrame(t, br)...)
	}
	if !bytes.HasPrefix(got, []byte("CONNECTED\n")) {
		t.Fatalf("got %q, want CONNECTED then RECEIPT", stomp.Truncate(string(got), 200))
	}
}

// maskedTextFrame is p as one client-to-server text frame (RFC 6455 §5.2),
// masked with a zero key.
func maskedTextFrame(p []byte) []byte {
	f := []byte{0x81}
	switch {
	case len(p) < 126:
		f = append(f, 0x80|byte(len(p)))
	default:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(len(p)))
	}
	f = append(f, 0, 0, 0, 0)
	return append(f, p...)
}

// readServerFrame reads one unmasked server frame and returns its payload.
func readServerFrame(t *testing.T, r io.Reader) []byte {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatal(err)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			t.Fatal(err)
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			t.Fatal(err)
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWSWriteMessage writes data messages through wsConn and reads them
// back as a client would, at each boundary of the three length encodings
// (RFC 6455 §5.2).
func TestWSWriteMessage(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 200000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			c := &transport.WSConn{Conn: a}
			payload := bytes.Repeat([]byte{'x'}, n)
			errc := make(chan error, 1)
			go func() { errc <- c.WriteMessage(time.Now().Add(testTimeout), transport.WSOpText, payload) }()
			b.SetDeadline(time.Now().Add(testTimeout))
			br := bufio.NewReader(b)
			first, err := br.Peek(1)
			if err != nil {
				t.Fatal(err)
			}
			if first[0] != 0x80|transport.WSOpText {
				t.Fatalf("first byte %#x, want FIN and text", first[0])
			}
			if got := readServerFrame(t, br); !bytes.Equal(got, payload) {
				t.Fatalf("payload of %d bytes, want %d", len(got), n)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestWSHeaderLengths pins the header bytes of each length encoding.
func TestWSHeaderLengths(t *testing.T) {
	tests := []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xff, 0xff}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	}
	for _, tt := range tests {
		if got := transport.AppendWSHeader(nil, transport.WSOpText, tt.n); !bytes.Equal(got, tt.want) {
			t.Errorf("header for %d: % x, want % x", tt.n, got, tt.want)
		}
	}
}

// TestWSConnNoDataAfterClose: once coder/websocket has written the close
// frame, a data message is refused (RFC 6455 §5.5.1).
func TestWSConnNoDataAfterClose(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go io.Copy(io.Discard, b)
	c := &transport.WSConn{Conn: a}
	if _, err := c.Write([]byte{0x80 | transport.WSOpClose, 2, 0x03, 0xe8}); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(time.Now().Add(testTimeout), transport.WSOpText, []byte("MESSAGE\n\n\x00")); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("data after close: %v, want errTransportClosed", err)
	}
}

// TestWSConnNothingAfterFailedWrite: a write that timed out may have left
// part of a frame on the wire, so neither a data message nor
// coder/websocket's close frame may follow it, even once the peer reads
// again; refusing the close frame also spares closing a stuck connection
// another timeout.
func TestWSConnNothingAfterFailedWrite(t *testing.T) {
	a, b := net.Pipe() // nobody reads b yet: the write blocks until its deadline
	defer a.Close()
	defer b.Close()
	c := &transport.WSConn{Conn: a}
	if err := c.WriteMessage(time.Now().Add(20*time.Millisecond), transport.WSOpText, []byte("MESSAGE\n\n\x00")); err == nil {
		t.Fatal("write to a reader that never reads succeeded")
	}
	go io.Copy(io.Discard, b)
	if _, err := c.Write([]byte{0x80 | transport.WSOpClose, 0}); err == nil {
		t.Fatal("close frame after a failed write was accepted")
	}
	if err := c.WriteMessage(time.Now().Add(testTimeout), transport.WSOpText, []byte("x")); err == nil {
		t.Fatal("data after a failed write was accepted")
	}
}
