package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"path/filepath"
	"stompbox/internal/certs"
	"stompbox/internal/chat"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// dialStompTLS connects a STOMP client over TLS to addr with cfg.
func dialStompTLS(t *testing.T, addr string, cfg *tls.Config) (*stompClient, error) {
	t.Helper()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: testTimeout}, Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn := nc.(*tls.Conn)
	buf := make([]byte, 64<<10)
	return newStompClient(t, func(b []byte) error { _, err := conn.Write(b); return err },
		func() { conn.Close() },
		func() ([]byte, error) {
			n, err := conn.Read(buf)
			if n > 0 {
				return buf[:n], nil
			}
			return nil, err
		}), nil
}

// TestTLSStomp: with TLS on, -stomp-addr speaks STOMP over TLS with the
// HTTPS certificate (stomp+ssl). A client that pins the certificate logs
// in and chats; one that does not trust it fails the handshake; a
// plain-text client gets an ERROR saying the port wants TLS, never
// CONNECTED.
func TestTLSStomp(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, func(c *Config) { c.DataDir = dir; c.TLSSelfSigned = true })
	kim := addUser(t, srv, "kim", testPassword)
	rm, err := srv.chat.CreateRoom(context.Background(), kim, chat.NewRoom{Name: "general"})
	if err != nil {
		t.Fatal(err)
	}
	_, cert := pinnedClient(t, filepath.Join(dir, certs.SelfSignedCertFile))
	pool := x509.NewCertPool()
	pool.AddCert(cert)

	t.Run("pinned certificate", func(t *testing.T) {
		c, err := dialStompTLS(t, srv.TCPAddr(), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		c.connect("accept-version:1.2", "login:kim", "passcode:"+testPassword)
		c.roundTrip(stomp.CmdSubscribe, "", "id:0", "destination:"+proto.RoomDestination(rm.ID))
		c.send(stomp.CmdSend, chatBody(proto.MsgTalk, rm.ID, "over TLS"), "destination:/pub/chat/message", "receipt:s")
		m := decodeChat(t, c.expect(stomp.CmdMessage))
		if m.Message != "over TLS" || m.Sender != "kim" {
			t.Fatalf("MESSAGE %+v", m)
		}
		c.expect(stomp.CmdReceipt)

		// A burst arrives whole and in order (the writer batches frames into few TLS records).
		const burst = 200
		c.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/topic/burst")
		var frames []byte
		for i := range burst {
			frames = stomp.AppendFrame(frames, &stomp.Frame{Command: stomp.CmdSend, Headers: []stomp.Header{{Key: stomp.HdrDestination, Value: "/topic/burst"}}, Body: []byte(strconv.Itoa(i))}, stomp.V12)
		}
		c.sendRaw(string(frames))
		for i := range burst {
			if f := c.expect(stomp.CmdMessage); string(f.Body) != strconv.Itoa(i) {
				t.Fatalf("message %d: %q", i, f.Body)
			}
		}
	})

	t.Run("by host name", func(t *testing.T) {
		_, port, _ := net.SplitHostPort(srv.TCPAddr())
		c, err := dialStompTLS(t, net.JoinHostPort("127.0.0.1", port), &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		c.connect("accept-version:1.2", "login:kim", "passcode:"+testPassword)
	})

	// Issue 26: no TLS session tickets on the STOMP port (see listenStompTLS);
	// the HTTPS port still sends them, which shows that the check sees them.
	t.Run("no session tickets", func(t *testing.T) {
		cache := &ticketCache{}
		c, err := dialStompTLS(t, srv.TCPAddr(), &tls.Config{RootCAs: pool, ClientSessionCache: cache, MinVersion: tls.VersionTLS13})
		if err != nil {
			t.Fatal(err)
		}
		c.connect("accept-version:1.2", "login:kim", "passcode:"+testPassword)
		c.roundTrip(stomp.CmdSend, "after tickets would have come", "destination:/topic/tickets")
		if n := cache.count(); n != 0 {
			t.Errorf("STOMP port sent %d session tickets, want none", n)
		}

		web, err := tls.Dial("tcp", srv.HTTPAddr(), &tls.Config{RootCAs: pool, ClientSessionCache: cache, MinVersion: tls.VersionTLS13})
		if err != nil {
			t.Fatal(err)
		}
		defer web.Close()
		if _, err := web.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, web); err != nil { // tickets come before the response
			t.Fatal(err)
		}
		if cache.count() == 0 {
			t.Error("HTTPS port sent no session ticket: the check cannot see them")
		}
	})

	t.Run("untrusted certificate", func(t *testing.T) {
		_, err := dialStompTLS(t, srv.TCPAddr(), &tls.Config{MinVersion: tls.VersionTLS12})
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("dial without the certificate: %v, want an unknown-authority error", err)
		}
	})

	t.Run("plain text", func(t *testing.T) {
		c := dialTCP(t, srv.TCPAddr())
		c.send(stomp.CmdConnect, "", "accept-version:1.2", "host:stompbox", "login:kim", "passcode:"+testPassword)
		e := c.expect(stomp.CmdError)
		if !strings.Contains(e.Value(stomp.HdrMessage), "STOMP over TLS") {
			t.Errorf("ERROR %q", e.Value(stomp.HdrMessage))
		}
		c.expectClosed()
	})

	checkFor(t, "every session gone", func() bool { return srv.broker.SessionCount() == 0 })
}

// ticketCache is a tls.ClientSessionCache that counts the session tickets
// a server sends and keeps none.
type ticketCache struct {
	mu   sync.Mutex
	puts int
}

func (c *ticketCache) Get(string) (*tls.ClientSessionState, bool) { return nil, false }

func (c *ticketCache) Put(_ string, cs *tls.ClientSessionState) {
	if cs == nil { // a removal, not a ticket
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.puts++
}

func (c *ticketCache) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.puts
}

// TestTLSStompOff: without a certificate -stomp-addr stays plain TCP.
func TestTLSStompOff(t *testing.T) {
	srv := startServer(t)
	addUser(t, srv, "kim", testPassword)
	c := dialTCP(t, srv.TCPAddr())
	c.connect("accept-version:1.2", "login:kim", "passcode:"+testPassword)
}
