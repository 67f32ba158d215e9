package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"stompbox/internal/stomp"
	"sync"
	"time"
)

// tcpReadBuffer is the read size for STOMP over TCP; frames span reads freely.
const tcpReadBuffer = 4 << 10

// plainOnTLSTimeout bounds the one write that tells a plain-text client on
// the TLS port what went wrong: it is a courtesy, never worth a wait.
const plainOnTLSTimeout = time.Second

// plainOnTLSMessage is the ERROR a client gets when it speaks plain STOMP
// to the port while TLS is on (as net/http answers plain HTTP on an HTTPS
// port with a 400): a script author learns to use stomp+ssl instead of
// staring at a closed socket. Nothing else is said in the clear.
const plainOnTLSMessage = "this port speaks STOMP over TLS (stomp+ssl); connect with TLS"

// TCPServer serves STOMP over TCP (--stomp-addr), for scripts and
// devices; over TLS when the server has a certificate (its listener is
// then a tls.Listener, and each handshake runs in the connection's first
// Read, bounded by the broker's CONNECT timeout). It owns its accept loop
// and one goroutine per connection, and Close waits for all of them.
type TCPServer struct {
	Ln    net.Listener
	serve func(Conn, Info) // runs one connection's session until it ends (the broker's Serve)
	log   *slog.Logger
	wg    sync.WaitGroup
}

// ServeTCP starts accepting on ln until Close. serve runs each accepted
// connection's STOMP session, on a goroutine of the connection's own, and
// closes the connection before it returns.
func ServeTCP(ln net.Listener, serve func(Conn, Info), log *slog.Logger) *TCPServer {
	s := &TCPServer{Ln: ln, serve: serve, log: log}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

func (s *TCPServer) acceptLoop() {
	defer s.wg.Done()
	var delay time.Duration
	for {
		c, err := s.Ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Error("stomp tcp accept", "err", err, "retry", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(&tcpTransport{c: c}, Info{Transport: "tcp", Remote: c.RemoteAddr().String()})
		}()
	}
}

// Close stops accepting and waits for every connection's session to end;
// end the sessions first (Broker.Close) so that they are told to go.
func (s *TCPServer) Close() error {
	err := s.Ln.Close()
	s.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close stomp listener: %w", err)
	}
	return nil
}

// tcpTransport adapts a TCP or TLS connection to transport. On TCP, writes
// are vectored, so a burst of frames is one system call; TLS cannot take a
// vector, so a burst must reach it as one buffer (the session's writer
// hands one over) to be sealed as few records rather than one record and one
// system call per frame.
type tcpTransport struct {
	c    net.Conn
	buf  []byte
	once sync.Once
}

func (t *tcpTransport) Read(ctx context.Context) ([]byte, error) {
	if t.buf == nil {
		t.buf = make([]byte, tcpReadBuffer)
	}
	if d, ok := ctx.Deadline(); ok {
		t.c.SetReadDeadline(d)
	} else {
		t.c.SetReadDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { t.c.SetReadDeadline(time.Now()) })
	defer stop()
	n, err := t.c.Read(t.buf)
	if n > 0 {
		return t.buf[:n], nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return nil, io.EOF
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, context.DeadlineExceeded
	}
	var rhe tls.RecordHeaderError
	if errors.As(err, &rhe) && rhe.Conn != nil {
		explainTLSOnly(rhe.Conn)
	}
	return nil, fmt.Errorf("tcp read: %w", err)
}

// explainTLSOnly writes plainOnTLSMessage as a STOMP ERROR frame, in the
// clear, to a client whose first bytes were not a TLS handshake. crypto/tls
// hands over the raw connection for just this (RecordHeaderError.Conn);
// the TLS side never wrote to it. Errors are ignored: the connection is
// being closed anyway.
func explainTLSOnly(c net.Conn) {
	f := &stomp.Frame{Command: stomp.CmdError, Body: []byte(plainOnTLSMessage + "\n")}
	f.Add(stomp.HdrMessage, plainOnTLSMessage)
	f.Add(stomp.HdrContentType, "text/plain")
	c.SetWriteDeadline(time.Now().Add(plainOnTLSTimeout))
	c.Write(stomp.AppendFrame(nil, f, stomp.V12))
}

func (t *tcpTransport) Write(ctx context.Context, frames [][]byte) error {
	if d, ok := ctx.Deadline(); ok {
		t.c.SetWriteDeadline(d)
	}
	if _, isTLS := t.c.(*tls.Conn); isTLS && len(frames) > 1 {
		// One record, not one per frame. The session writer hands a batch
		// over as one piece; a caller with several still gets one record.
		if _, err := t.c.Write(bytes.Join(frames, nil)); err != nil {
			return fmt.Errorf("tls write: %w", err)
		}
		return nil
	}
	bufs := net.Buffers(frames)
	if _, err := bufs.WriteTo(t.c); err != nil {
		return fmt.Errorf("tcp write: %w", err)
	}
	return nil
}

func (t *tcpTransport) Close(int, string) error {
	var err error
	t.once.Do(func() { err = t.c.Close() })
	return err
}
