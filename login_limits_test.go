package main

import (
	"encoding/json"
	"net"
	"net/http"
	"stompbox/internal/auth"
	"stompbox/internal/ratelimit"
	"stompbox/internal/stomp"
	"strings"
	"testing"
	"time"
)

// dialTCPFrom is dialTCP from another loopback address (local, such as
// 127.0.0.2): to the server, another machine.
func dialTCPFrom(t *testing.T, addr, local string) *stompClient {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	return newStompClient(t, func(b []byte) error { _, err := conn.Write(b); return err },
		func() { conn.Close() },
		func() ([]byte, error) {
			n, err := conn.Read(buf)
			if n > 0 {
				return buf[:n], nil
			}
			return nil, err
		})
}

// httpFrom is an HTTP client whose connections come from the loopback
// address local.
func httpFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: testTimeout}
}

// stompLogin sends CONNECT with login and passcode and returns the answer:
// CONNECTED, or the ERROR's message.
func stompLogin(t *testing.T, c *stompClient, login, passcode string) (ok bool, msg string) {
	t.Helper()
	c.send(stomp.CmdConnect, "", "accept-version:1.2", "host:stompbox", "heart-beat:0,0", "login:"+login, "passcode:"+passcode)
	f := c.next()
	return f.Command == stomp.CmdConnected, f.Value(stomp.HdrMessage)
}

// postLogin posts a login from client and returns the status and error.
func postLogin(t *testing.T, client *http.Client, srv *server, user, password string) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	resp, err := client.Post("http://"+srv.HTTPAddr()+"/api/login", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error
}

// TestSTOMPConnectCountsLoginRate: a STOMP CONNECT with a password draws
// from the per-address login bucket of the HTTP login (issue 22, 8):
// past it, CONNECT gets an ERROR and the HTTP login 429, whichever way
// the guesses came.
func TestSTOMPConnectCountsLoginRate(t *testing.T) {
	srv, clock := startLimitedServer(t, ratelimit.Limits{LoginsPerIP: 3})
	addUser(t, srv, "kim", "password-kim")
	for i := range 3 {
		ok, msg := stompLogin(t, dialTCP(t, srv.TCPAddr()), "kim", "wrong-password")
		if ok || strings.Contains(msg, "from this address") {
			t.Fatalf("guess %d: connected %v, %q: want refused as a wrong password", i, ok, msg)
		}
	}
	ok, msg := stompLogin(t, dialTCP(t, srv.TCPAddr()), "kim", "password-kim")
	if ok || !strings.Contains(msg, "too many login attempts from this address") {
		t.Fatalf("4th CONNECT: connected %v, %q: want the per-address limit", ok, msg)
	}
	if code, _ := postLogin(t, http.DefaultClient, srv, "kim", "password-kim"); code != http.StatusTooManyRequests {
		t.Fatalf("HTTP login after 3 STOMP guesses: %d, want 429", code)
	}
	if logins, _ := srv.limiter.Refusals(); logins != 2 {
		t.Fatalf("%d login refusals counted, want 2", logins)
	}
	clock.advance(time.Minute / 3) // one attempt back
	if ok, msg := stompLogin(t, dialTCP(t, srv.TCPAddr()), "kim", "password-kim"); !ok {
		t.Fatalf("after refill: %q", msg)
	}
}

// TestGuessesDoNotLockOutOwner: more wrong passwords than the throttle
// allows, over STOMP from one address, lock that address out of the
// account, but never its owner on another address, over STOMP or HTTP
// (issue 22, 8).
func TestGuessesDoNotLockOutOwner(t *testing.T) {
	srv := startServer(t)
	addUser(t, srv, "kim", "password-kim")
	const attacker, owner = "127.0.0.1", "127.0.0.2"
	for i := range auth.MaxLoginFailures + 2 {
		if ok, _ := stompLogin(t, dialTCPFrom(t, srv.TCPAddr(), attacker), "kim", "guess"); ok {
			t.Fatalf("guess %d connected", i)
		}
	}
	if ok, msg := stompLogin(t, dialTCPFrom(t, srv.TCPAddr(), attacker), "kim", "password-kim"); ok || !strings.Contains(msg, "too many attempts") {
		t.Fatalf("the guessing address: connected %v, %q: want throttled", ok, msg)
	}
	if ok, msg := stompLogin(t, dialTCPFrom(t, srv.TCPAddr(), owner), "kim", "password-kim"); !ok {
		t.Fatalf("owner over STOMP from another address: %q", msg)
	}
	if code, msg := postLogin(t, httpFrom(owner), srv, "kim", "password-kim"); code != http.StatusOK {
		t.Fatalf("owner over HTTP from another address: %d %q", code, msg)
	}
	if code, _ := postLogin(t, httpFrom(attacker), srv, "kim", "password-kim"); code != http.StatusTooManyRequests {
		t.Fatalf("the guessing address over HTTP: %d, want 429", code)
	}
}

// TestClusterNodesDivideLoginLimits: each node counts logins alone, so a
// cluster node's per-address login rate and per-account allowance are
// the options divided by the number of nodes (README "HTTPS, limits and
// headers").
func TestClusterNodesDivideLoginLimits(t *testing.T) {
	for _, tt := range []struct {
		peers []string
		want  int
	}{
		{nil, 30},
		{[]string{"10.0.0.1:6222", "10.0.0.2:6222", "10.0.0.3:6222"}, 10},
		{[]string{"10.0.0.1:6222", "10.0.0.2:6222"}, 15},
	} {
		s := &server{cfg: Config{RateLimits: ratelimit.Limits{LoginsPerIP: 30}}, log: testLogger(t)}
		s.cfg.Cluster.Peers = tt.peers
		if err := s.newBroker(); err != nil {
			t.Fatal(err)
		}
		if got := s.limiter.Limits().LoginsPerIP; got != tt.want {
			t.Errorf("%d peers: %d logins a minute per address, want %d", len(tt.peers), got, tt.want)
		}
	}
}
