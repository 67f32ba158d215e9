package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
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
	stomp := "CONNECT\naccept-version:1.2\nhost:stompbox\nheart-beat:0,0\n\n\x00" +
		"SUBSCRIBE\nid:0\ndestination:/topic/early\nreceipt:" + strings.Repeat("r", 1500) + "\n\n\x00"
	req := "GET /ws HTTP/1.1\r\nHost: " + srv.HTTPAddr() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v12.stomp\r\n\r\n"
	if _, err := conn.Write(append([]byte(req), maskedTextFrame([]byte(stomp))...)); err != nil {
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
		t.Fatalf("got %q, want CONNECTED then RECEIPT", truncate(string(got), 200))
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
