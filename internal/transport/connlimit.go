package transport

import (
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// connlimit.go: the per-address limit on HTTP connections (issue 22, item
// 6), as the broker has for STOMP connections: a listener wrapper, under
// TLS when the server serves HTTPS (so a refused connection costs no
// handshake), that counts each accepted connection against its address
// until it is closed, hijacked WebSocket connections included.

// ConnCounter counts open connections per address: ratelimit.Limiter's
// ConnOpened and ConnClosed, given a limiter of its own for HTTP.
type ConnCounter interface {
	// ConnOpened counts a connection from remote (host:port) and reports
	// false, counting nothing, past the limit.
	ConnOpened(remote string) bool
	// ConnClosed gives back a connection ConnOpened counted.
	ConnClosed(conn any, remote string)
}

// refusalWriteTimeout bounds the one write that tells a refused client why.
const refusalWriteTimeout = time.Second

// LimitListener is a listener that closes, as soon as it is accepted, a
// connection from an address that already has as many open as its
// ConnCounter allows. Safe for concurrent use.
type LimitListener struct {
	net.Listener
	Counter ConnCounter
	// Exempt reports whether connections from ip are not counted: the
	// trusted reverse proxies, whose connections carry many clients.
	// Nil: none.
	Exempt func(ip net.IP) bool
	// Refusal is written to a refused connection before it is closed
	// (a plain HTTP 429 on a plain HTTP listener); nil: closed silently.
	Refusal string
	Log     *slog.Logger

	refused atomic.Uint64
}

// Accept returns the next connection its address's limit admits.
func (l *LimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		remote := c.RemoteAddr().String()
		if l.Exempt != nil {
			if tcp, ok := c.RemoteAddr().(*net.TCPAddr); ok && l.Exempt(tcp.IP) {
				return c, nil
			}
		}
		if l.Counter.ConnOpened(remote) {
			return &countedConn{Conn: c, release: func() { l.Counter.ConnClosed(c, remote) }}, nil
		}
		l.refused.Add(1)
		if l.Log != nil {
			l.Log.Debug("http connection refused: too many from this address", "remote", remote)
		}
		go refuse(c, l.Refusal)
	}
}

// Refused is how many connections the limit refused since start.
func (l *LimitListener) Refused() uint64 { return l.refused.Load() }

// refuse writes msg to c, if any, and closes it.
func refuse(c net.Conn, msg string) {
	if msg != "" {
		c.SetWriteDeadline(time.Now().Add(refusalWriteTimeout))
		io.WriteString(c, msg)
	}
	c.Close()
}

// HTTPTooManyConnections is a LimitListener's Refusal for plain HTTP.
const HTTPTooManyConnections = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: 45\r\n\r\ntoo many connections from this address (429)\n"

// countedConn gives its count back once, when it is first closed.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
