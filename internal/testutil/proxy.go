package testutil

// proxy.go: a TCP proxy that records what crosses it, for tests that
// check what an eavesdropper on the LAN would see (the cluster's routes).

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
)

// RecordingProxy forwards TCP connections to a target and records the
// bytes both ways. Connections that arrive before SetTarget are closed
// (NATS dials again). It stops with the test, once its forwarding ended.
type RecordingProxy struct {
	ln net.Listener
	wg sync.WaitGroup

	mu     sync.Mutex
	target string
	buf    bytes.Buffer
}

// NewRecordingProxy listens on a random loopback port until the test ends.
func NewRecordingProxy(t testing.TB) *RecordingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &RecordingProxy{ln: ln}
	t.Cleanup(p.Close)
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.forward(c) })
		}
	})
	return p
}

// Close stops accepting and waits for the forwarding to end (the peers
// close their connections first). Safe to call twice.
func (p *RecordingProxy) Close() {
	p.ln.Close()
	p.wg.Wait()
}

// Addr is the address to dial instead of the target.
func (p *RecordingProxy) Addr() string { return p.ln.Addr().String() }

// SetTarget sets where connections from now on are forwarded.
func (p *RecordingProxy) SetTarget(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = addr
}

// Bytes is a copy of everything recorded so far, both ways.
func (p *RecordingProxy) Bytes() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.buf.Bytes())
}

// Write records b.
func (p *RecordingProxy) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

// forward copies both ways until either side closes.
func (p *RecordingProxy) forward(c net.Conn) {
	defer c.Close()
	p.mu.Lock()
	target := p.target
	p.mu.Unlock()
	if target == "" {
		return
	}
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(io.MultiWriter(dst, p), src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}
