package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"stompbox/internal/stomp"
	"stompbox/internal/web"
	"strings"
	"testing"
	"time"
)

// dialFrom opens a TCP connection to addr from the local address ip (any
// 127.0.0.0/8 address works on Linux loopback), as another machine would.
func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// clientFrom is an HTTP client whose connections come from ip.
func clientFrom(ip string) *http.Client {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

// closedWithin reads c until it ends and reports whether that happened
// within d (the bytes read, anything the server said, are returned).
func closedWithin(c net.Conn, d time.Duration) (bool, string) {
	c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c)
	return !isTimeout(err), string(b) // io.ReadAll's nil is the end; a reset is an end too
}

// isTimeout reports whether err is a read deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestHTTPSlowBodyCut: a login whose body trickles in a byte at a time
// (slowloris) is cut once -http-body-timeout has passed, while a body that
// arrives in time is answered (issue 22, item 6).
func TestHTTPSlowBodyCut(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.HTTPBodyTimeout = 500 * time.Millisecond })
	c := dialFrom(t, "127.0.0.1", srv.HTTPAddr())
	fmt.Fprintf(c, "POST /api/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", srv.HTTPAddr())
	stop := make(chan struct{})
	defer close(stop)
	go func() { // a byte every 200 ms, until the server hangs up
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if _, err := c.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	closed, said := closedWithin(c, 5*time.Second)
	if !closed {
		t.Fatalf("the slow body was still being read after %v (server said %q)", time.Since(start), said)
	}
	t.Logf("cut after %v: %q", time.Since(start), firstLine(said))

	// A body in time is served as ever.
	resp, err := http.Post(srv.URL()+"api/login", "application/json", strings.NewReader(`{"username":"nobody","password":"wrong"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("login in time: %d, want 401", resp.StatusCode)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// TestHTTPIdleKeepAliveClosed: a keep-alive connection that asks nothing
// more is closed after -http-idle-timeout (issue 22, item 6).
func TestHTTPIdleKeepAliveClosed(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.HTTPIdleTimeout = 300 * time.Millisecond })
	c := dialFrom(t, "127.0.0.1", srv.HTTPAddr())
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", srv.HTTPAddr())
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := br.ReadByte(); err == nil || isTimeout(err) {
		t.Fatalf("idle keep-alive connection still open after %v (%v)", time.Since(start), err)
	}
	t.Logf("idle connection closed after %v", time.Since(start))
}

// TestHTTPConnsPerIP: past -max-http-conns-per-ip connections from one
// address the next is refused (plain HTTP: a 429, then closed; HTTPS:
// closed before the handshake), while another address still gets in, and
// a closed connection makes room (issue 22, item 6).
func TestHTTPConnsPerIP(t *testing.T) {
	const limit = 3
	for _, https := range []bool{false, true} {
		t.Run(fmt.Sprint("https=", https), func(t *testing.T) {
			srv := startServer(t, func(c *Config) { c.HTTPConnsPerIP = limit; c.TLSSelfSigned = https })
			addr := srv.HTTPAddr()
			get := func(from string) error {
				c := clientFrom(from)
				c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // the self-signed certificate
				defer c.CloseIdleConnections()
				resp, err := c.Get(srv.URL() + "healthz")
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
				return nil
			}
			var held []net.Conn
			for range limit {
				held = append(held, dialFrom(t, "127.0.0.1", addr)) // open, asking nothing
			}
			over := dialFrom(t, "127.0.0.1", addr)
			if !https {
				fmt.Fprintf(over, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
			}
			closed, said := closedWithin(over, 3*time.Second)
			if !closed || (!https && !strings.HasPrefix(said, "HTTP/1.1 429")) || (https && said != "") {
				t.Fatalf("connection %d from one address: closed %v, server said %q; want it closed (with a 429 on plain HTTP)", limit+1, closed, firstLine(said))
			}
			if err := get("127.0.0.1"); err == nil {
				t.Fatal("a request from the full address got through")
			}
			if err := get("127.0.0.2"); err != nil {
				t.Fatalf("another address: %v", err)
			}
			held[0].Close() // gives its place back
			checkFor(t, "a place freed", func() bool { return get("127.0.0.1") == nil })
		})
	}
}

// TestTrustedProxies: X-Forwarded-For and X-Forwarded-Proto count from a
// -trusted-proxies peer only: through it the session cookie is Secure when
// the proxy says https and the login limit counts the real client; from
// anyone else the headers change nothing (issue 22, item 9).
func TestTrustedProxies(t *testing.T) {
	proxies, err := web.ParseTrustedProxies([]string{"127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, func(c *Config) {
		c.TrustedProxies = proxies
		c.RateLimits.LoginsPerIP = 2
		c.HTTPConnsPerIP = 1
	})
	addUser(t, srv, "alice", "password-alice")
	login := func(t *testing.T, from, forwardedFor, proto, password string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), "POST", srv.URL()+"api/login",
			strings.NewReader(`{"username":"alice","password":"`+password+`"}`))
		req.Header.Set("Content-Type", "application/json")
		if forwardedFor != "" {
			req.Header.Set("X-Forwarded-For", forwardedFor)
		}
		if proto != "" {
			req.Header.Set("X-Forwarded-Proto", proto)
		}
		c := clientFrom(from)
		defer c.CloseIdleConnections()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	secure := func(resp *http.Response) bool {
		for _, ck := range resp.Cookies() {
			if ck.Secure {
				return true
			}
		}
		return false
	}
	t.Run("secure cookie", func(t *testing.T) {
		if r := login(t, "127.0.0.2", "10.0.0.1", "https", "password-alice"); r.StatusCode != 200 || !secure(r) {
			t.Errorf("through the trusted proxy saying https: %d, cookies %v; want a Secure cookie", r.StatusCode, r.Header.Values("Set-Cookie"))
		}
		if r := login(t, "127.0.0.1", "10.0.0.1", "https", "password-alice"); r.StatusCode != 200 || secure(r) {
			t.Errorf("from an untrusted peer saying https: %d, cookies %v; want no Secure cookie", r.StatusCode, r.Header.Values("Set-Cookie"))
		}
	})
	t.Run("login limit by the real client", func(t *testing.T) {
		for range 2 {
			login(t, "127.0.0.2", "10.0.0.3", "", "wrong")
		}
		if r := login(t, "127.0.0.2", "10.0.0.3", "", "wrong"); r.StatusCode != http.StatusTooManyRequests {
			t.Errorf("third guess from 10.0.0.3 through the proxy: %d, want 429", r.StatusCode)
		}
		if r := login(t, "127.0.0.2", "10.0.0.4", "", "password-alice"); r.StatusCode != http.StatusOK {
			t.Errorf("10.0.0.4 through the same proxy: %d, want 200 (another client)", r.StatusCode)
		}
		// From an untrusted peer, X-Forwarded-For is ignored: changing it
		// does not escape that peer's own count (127.0.0.1 made one
		// attempt above, with the Secure cookie).
		login(t, "127.0.0.1", "10.0.0.5", "", "wrong")
		if r := login(t, "127.0.0.1", "10.0.0.6", "", "wrong"); r.StatusCode != http.StatusTooManyRequests {
			t.Errorf("untrusted peer with a new X-Forwarded-For: %d, want 429 (its own address counts)", r.StatusCode)
		}
	})
	t.Run("proxy exempt from the connection limit", func(t *testing.T) {
		a, b := dialFrom(t, "127.0.0.2", srv.HTTPAddr()), dialFrom(t, "127.0.0.2", srv.HTTPAddr())
		for _, c := range []net.Conn{a, b} {
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("two connections from the trusted proxy with a limit of 1: %v %v", resp, err)
			}
			resp.Body.Close()
		}
	})
}

// TestHTTPTimeoutsSpareStreams: the body and idle timeouts do not cut the
// long-lived requests: a STOMP session over /ws, one over SockJS xhr
// polling (whose poll waits with no body), and an xhr_streaming response
// still sending heartbeats, all live on past both.
func TestHTTPTimeoutsSpareStreams(t *testing.T) {
	srv := startServer(t, func(c *Config) {
		c.HTTPBodyTimeout = 300 * time.Millisecond
		c.HTTPIdleTimeout = 300 * time.Millisecond
		c.SockJSHeartbeat = 100 * time.Millisecond
	})
	ws, _ := dialWS(t, srv)
	ws.connect()
	xhr := dialSockJS(t, srv, dialSockJSXHR)
	xhr.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/topic/streams")

	resp, err := http.Post(sockjsSessionURL(sockjsBase(srv), "xhr_streaming"), "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	lines := make(chan time.Duration, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() == "h" {
				lines <- time.Since(start)
			}
		}
	}()
	var last time.Duration
	for d := range lines {
		if last = d; d > time.Second {
			break
		}
	}
	if last <= time.Second {
		t.Errorf("xhr_streaming ended after %v", time.Since(start))
	}

	ws.sync()
	ws.send(stomp.CmdSend, "still here", "destination:/topic/streams")
	if m := xhr.expect(stomp.CmdMessage); string(m.Body) != "still here" {
		t.Fatalf("message %q", m.Body)
	}
	xhr.sync()
}

// TestHTTPUploadBodyDeadline: an upload may take longer than
// -http-body-timeout while its bytes keep coming at the upload rate (16
// KiB/s), and is cut when they only trickle (issue 22, item 6).
func TestHTTPUploadBodyDeadline(t *testing.T) {
	f := newFilesFixture(t, func(c *Config) { c.HTTPBodyTimeout = 300 * time.Millisecond })
	upload := func(chunk int, every time.Duration, chunks int) (int, error) {
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		go func() {
			w, _ := mw.CreateFormFile("file", "slow.bin")
			for range chunks {
				if _, err := w.Write(bytes.Repeat([]byte("x"), chunk)); err != nil {
					pw.CloseWithError(err)
					return
				}
				time.Sleep(every)
			}
			mw.Close()
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/rooms/%d/files", f.base, f.room), pr)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := f.alice.Do(req)
		pr.CloseWithError(io.ErrClosedPipe) // stops the writer if the server gave up
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	start := time.Now()
	if code, err := upload(32<<10, 400*time.Millisecond, 4); code != http.StatusCreated {
		t.Fatalf("upload at 80 KiB/s for %v: %d %v, want 201", time.Since(start), code, err)
	}
	start = time.Now()
	code, err := upload(1, 100*time.Millisecond, 100)
	if code == http.StatusCreated || time.Since(start) > 5*time.Second {
		t.Fatalf("upload trickled a byte at a time: %d %v after %v, want it cut", code, err, time.Since(start))
	}
	t.Logf("trickled upload cut after %v: %d %v", time.Since(start), code, err)
}
