package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"stompbox/internal/broker"
	"stompbox/internal/stomp"
	"stompbox/internal/transport"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// dialers runs a test over each STOMP endpoint: the twin tests of the style guide.
func dialers(srv *server) map[string]func(t *testing.T) *stompClient {
	return map[string]func(t *testing.T) *stompClient{
		"tcp":              func(t *testing.T) *stompClient { return dialTCP(t, srv.TCPAddr()) },
		"ws":               func(t *testing.T) *stompClient { c, _ := dialWS(t, srv, transport.Subprotocols...); return c },
		"sockjs-websocket": func(t *testing.T) *stompClient { return dialSockJSWS(t, srv) },
		"sockjs-xhr":       func(t *testing.T) *stompClient { return dialSockJSXHR(t, srv) },
	}
}

func TestPubSubTopic(t *testing.T) {
	srv := startServer(t)
	for name, dial := range dialers(srv) {
		t.Run(name, func(t *testing.T) {
			for _, dest := range []string{"/topic/greetings", "/sub/news/today"} {
				sub1, sub2, pub := dial(t), dial(t), dial(t)
				sub1.connect()
				sub2.connect()
				pub.connect()
				sub1.roundTrip(stomp.CmdSubscribe, "", "id:0", "destination:"+dest)
				sub2.roundTrip(stomp.CmdSubscribe, "", "id:s2", "destination:"+dest)
				pub.roundTrip(stomp.CmdSend, "안녕하세요", "destination:"+dest, "content-type:text/plain;charset=utf-8", "x-custom:yes")
				for _, c := range []*stompClient{sub1, sub2} {
					m := c.expect(stomp.CmdMessage)
					if string(m.Body) != "안녕하세요" || m.Value(stomp.HdrDestination) != dest ||
						m.Value("x-custom") != "yes" || m.Value(stomp.HdrContentType) != "text/plain;charset=utf-8" || m.Value(stomp.HdrMessageID) == "" {
						t.Fatalf("message %v %q", m.Headers, m.Body)
					}
				}
				// Order per publisher is kept.
				for i := range 50 {
					pub.send(stomp.CmdSend, fmt.Sprint(i), "destination:"+dest)
				}
				for i := range 50 {
					if m := sub1.expect(stomp.CmdMessage); string(m.Body) != fmt.Sprint(i) {
						t.Fatalf("message %d has body %q", i, m.Body)
					}
				}
			}
		})
	}
}

func TestVersionNegotiation(t *testing.T) {
	srv := startServer(t)
	tests := []struct {
		name        string
		subprotocol []string
		headers     []string
		want        string
		wantErr     bool
	}{
		{"1.2", nil, []string{"accept-version:1.0,1.1,1.2"}, "1.2", false},
		{"1.1 only", nil, []string{"accept-version:1.1"}, "1.1", false},
		{"no header means 1.0", nil, nil, "1.0", false},
		{"unknown versions ignored", nil, []string{"accept-version:2.0,1.1"}, "1.1", false},
		{"none in common", nil, []string{"accept-version:3.0"}, "", true},
		{"subprotocol v11 caps", []string{"v11.stomp"}, []string{"accept-version:1.0,1.1,1.2"}, "1.1", false},
		{"subprotocol v10 with no header", []string{"v10.stomp"}, nil, "1.0", false},
		{"subprotocol v12 with no header", []string{"v12.stomp"}, nil, "1.2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ws := dialWS(t, srv, tt.subprotocol...)
			if len(tt.subprotocol) > 0 && ws.Subprotocol() != tt.subprotocol[0] {
				t.Fatalf("subprotocol %q", ws.Subprotocol())
			}
			c.send(stomp.CmdConnect, "", tt.headers...)
			f := c.next()
			if tt.wantErr {
				if f.Command != stomp.CmdError || f.Value(stomp.HdrVersion) != stomp.SupportedVersions {
					t.Fatalf("got %s %v", f.Command, f.Headers)
				}
				c.expectClosed()
				return
			}
			if f.Command != stomp.CmdConnected || f.Value(stomp.HdrVersion) != tt.want {
				t.Fatalf("got %s %v, want version %s", f.Command, f.Headers, tt.want)
			}
		})
	}
	t.Run("STOMP command", func(t *testing.T) {
		c := dialTCP(t, srv.TCPAddr())
		c.send(stomp.CmdStomp, "", "accept-version:1.2", "host:x")
		c.expect(stomp.CmdConnected)
	})
	t.Run("no subprotocol still works", func(t *testing.T) {
		c, ws := dialWS(t, srv)
		if ws.Subprotocol() != "" {
			t.Fatalf("subprotocol %q", ws.Subprotocol())
		}
		c.connect()
	})
}

func TestHeaderEscapingEndToEnd(t *testing.T) {
	srv := startServer(t)
	for _, v := range []string{"1.0", "1.1", "1.2"} {
		t.Run(v, func(t *testing.T) {
			sub, pub := dialTCP(t, srv.TCPAddr()), dialTCP(t, srv.TCPAddr())
			sub.connect("accept-version:" + v)
			pub.connect("accept-version:" + v)
			sub.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/topic/esc")
			value := "a:b\\c\nd"
			if v == "1.0" {
				value = "a-b-c" // 1.0 has no escaping: values cannot hold these characters
			}
			hdr := string(stomp.AppendHeader(nil, "x-odd", value, map[string]stomp.Version{"1.0": stomp.V10, "1.1": stomp.V11, "1.2": stomp.V12}[v]))
			pub.sendRaw("SEND\ndestination:/topic/esc\n" + hdr + "receipt:r\n\nbody\x00")
			pub.expect(stomp.CmdReceipt)
			if m := sub.expect(stomp.CmdMessage); m.Value("x-odd") != value {
				t.Fatalf("x-odd = %q, want %q", m.Value("x-odd"), value)
			}
		})
	}
}

func TestBodyWithNULAndRepeatedHeaders(t *testing.T) {
	srv := startServer(t)
	sub, pub := dialTCP(t, srv.TCPAddr()), dialTCP(t, srv.TCPAddr())
	sub.connect()
	pub.connect()
	sub.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/queue/bin")
	body := "a\x00b\x00c"
	pub.sendRaw(fmt.Sprintf("SEND\ndestination:/queue/bin\nx-k:first\nx-k:second\ncontent-length:%d\nreceipt:1\n\n%s\x00", len(body), body))
	pub.expect(stomp.CmdReceipt)
	m := sub.expect(stomp.CmdMessage)
	if string(m.Body) != body || m.Value("x-k") != "first" {
		t.Fatalf("message %v %q", m.Headers, m.Body)
	}
}

func TestProtocolErrors(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.MaxFrame = 4096 })
	tests := []struct {
		name    string
		connect bool
		raw     string
		want    string
	}{
		{"frame before CONNECT", false, "SEND\ndestination:/topic/a\n\nx\x00", "expected CONNECT"},
		{"unknown command", true, "FOO\n\n\x00", "unknown command"},
		{"missing destination", true, "SEND\n\nx\x00", `missing required header "destination"`},
		{"missing subscription id", true, "SUBSCRIBE\ndestination:/topic/a\n\n\x00", `missing required header "id"`},
		{"malformed header", true, "SEND\ndestination /topic/a\n\n\x00", "malformed header"},
		{"bad content-length", true, "SEND\ndestination:/topic/a\ncontent-length:x\n\n\x00", "content-length"},
		{"content-length too short", true, "SEND\ndestination:/topic/a\ncontent-length:1\n\nabc\x00", "not terminated by NUL"},
		{"frame too large", true, "SEND\ndestination:/topic/a\n\n" + strings.Repeat("x", 5000) + "\x00", "size limit"},
		{"too many headers", true, "SEND\ndestination:/topic/a\n" + strings.Repeat("x:y\n", 100) + "\n\x00", "too many headers"},
		{"header too long", true, "SEND\ndestination:/topic/a\nx:" + strings.Repeat("y", 4100) + "\n\n\x00", ""},
		{"undefined escape", true, "SEND\ndestination:/topic/a\nx:\\t\n\n\x00", "escape"},
		{"duplicate subscription", true, "SUBSCRIBE\nid:1\ndestination:/topic/a\n\n\x00SUBSCRIBE\nid:1\ndestination:/topic/b\n\n\x00", "duplicate subscription"},
		{"bad destination", true, "SEND\ndestination:/topic/../queue/x\n\n\x00", "invalid destination"},
		{"unknown prefix", true, "SEND\ndestination:/exchange/x\n\n\x00", "no configured prefix"},
		{"unknown transaction", true, "COMMIT\ntransaction:t9\n\n\x00", "unknown transaction"},
		{"repeated transaction", true, "BEGIN\ntransaction:t\n\n\x00BEGIN\ntransaction:t\n\n\x00", "already started"},
		{"bad ack mode", true, "SUBSCRIBE\nid:1\ndestination:/topic/a\nack:sometimes\n\n\x00", "ack mode"},
		{"second CONNECT", true, "CONNECT\naccept-version:1.2\n\n\x00", "already connected"},
		{"send to a user destination", true, "SEND\ndestination:/user/bob/queue/x\n\n\x00", "user destinations"},
		{"subscribe to an app destination", true, "SUBSCRIBE\nid:1\ndestination:/app/chat/message\n\n\x00", "application destination"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialTCP(t, srv.TCPAddr())
			if tt.connect {
				c.connect()
			}
			c.sendRaw(tt.raw)
			f := c.expect(stomp.CmdError)
			if !strings.Contains(f.Value(stomp.HdrMessage), tt.want) || len(f.Body) == 0 {
				t.Fatalf("ERROR message %q body %q, want %q", f.Value(stomp.HdrMessage), f.Body, tt.want)
			}
			c.expectClosed()
		})
	}
	// The server and other clients carry on.
	c := dialTCP(t, srv.TCPAddr())
	c.connect()
	c.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/topic/still-ok")
}

func TestErrorCarriesReceiptID(t *testing.T) {
	srv := startServer(t)
	c := dialTCP(t, srv.TCPAddr())
	c.connect()
	c.send(stomp.CmdSend, "x", "destination:/nowhere/x", "receipt:77")
	if f := c.expect(stomp.CmdError); f.Value(stomp.HdrReceiptID) != "77" {
		t.Fatalf("ERROR headers %v", f.Headers)
	}
}

func TestReceiptsAndDisconnect(t *testing.T) {
	srv := startServer(t)
	c := dialTCP(t, srv.TCPAddr())
	c.connect()
	for _, cmd := range []string{stomp.CmdSubscribe, stomp.CmdUnsubscribe} {
		c.roundTrip(cmd, "", "id:x", "destination:/topic/r")
	}
	c.send(stomp.CmdDisconnect, "", "receipt:bye")
	if f := c.expect(stomp.CmdReceipt); f.Value(stomp.HdrReceiptID) != "bye" {
		t.Fatalf("receipt %v", f.Headers)
	}
	c.expectClosed()
	checkFor(t, "session to end", func() bool { return srv.broker.SessionCount() == 0 })
}

func TestUnsubscribeStopsDeliveryAtOnce(t *testing.T) {
	srv := startServer(t)
	sub, pub := dialTCP(t, srv.TCPAddr()), dialTCP(t, srv.TCPAddr())
	sub.connect()
	pub.connect()
	sub.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/topic/u")
	sub.roundTrip(stomp.CmdUnsubscribe, "", "id:1")
	pub.roundTrip(stomp.CmdSend, "late", "destination:/topic/u")
	// Had the message been delivered, it would arrive before this receipt.
	sub.roundTrip(stomp.CmdSubscribe, "", "id:2", "destination:/topic/other")
}

func TestQueueRoundRobinAndHolding(t *testing.T) {
	srv := startServer(t)
	pub := dialTCP(t, srv.TCPAddr())
	pub.connect()
	// Held while nobody consumes.
	for i := range 4 {
		pub.roundTrip(stomp.CmdSend, fmt.Sprint(i), "destination:/queue/work")
	}
	a := dialTCP(t, srv.TCPAddr())
	a.connect()
	a.send(stomp.CmdSubscribe, "", "id:a", "destination:/queue/work", "receipt:sub")
	for i := range 4 { // held messages are delivered as part of the SUBSCRIBE, before its receipt
		if m := a.expect(stomp.CmdMessage); string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("held message %d: %q", i, m.Body)
		}
	}
	a.expect(stomp.CmdReceipt)
	b := dialTCP(t, srv.TCPAddr())
	b.connect()
	b.roundTrip(stomp.CmdSubscribe, "", "id:b", "destination:/queue/work")
	for i := range 10 {
		pub.send(stomp.CmdSend, fmt.Sprint(i), "destination:/queue/work")
	}
	pub.sync()
	got := map[string]int{}
	for range 5 {
		got["a"+string(a.expect(stomp.CmdMessage).Body)]++
		got["b"+string(b.expect(stomp.CmdMessage).Body)]++
	}
	if len(got) != 10 {
		t.Fatalf("deliveries %v: each message must go to exactly one consumer", got)
	}
}

func TestAckModes(t *testing.T) {
	srv := startServer(t)
	t.Run("client-individual NACK redelivers to another consumer", func(t *testing.T) {
		pub, a, b := dialTCP(t, srv.TCPAddr()), dialTCP(t, srv.TCPAddr()), dialTCP(t, srv.TCPAddr())
		pub.connect()
		a.connect()
		a.roundTrip(stomp.CmdSubscribe, "", "id:a", "destination:/queue/nack", "ack:client-individual")
		pub.roundTrip(stomp.CmdSend, "job", "destination:/queue/nack")
		m := a.expect(stomp.CmdMessage)
		if m.Value(stomp.HdrAck) == "" {
			t.Fatal("1.2 MESSAGE in client-individual mode has no ack header")
		}
		b.connect()
		b.roundTrip(stomp.CmdSubscribe, "", "id:b", "destination:/queue/nack", "ack:client-individual")
		a.roundTrip(stomp.CmdNack, "", "id:"+m.Value(stomp.HdrAck))
		if m2 := b.expect(stomp.CmdMessage); string(m2.Body) != "job" {
			t.Fatalf("redelivered %q", m2.Body)
		}
	})
	t.Run("unacked messages go back when the consumer leaves", func(t *testing.T) {
		pub, a := dialTCP(t, srv.TCPAddr()), dialTCP(t, srv.TCPAddr())
		pub.connect()
		a.connect()
		a.roundTrip(stomp.CmdSubscribe, "", "id:a", "destination:/queue/leave", "ack:client")
		pub.roundTrip(stomp.CmdSend, "1", "destination:/queue/leave")
		pub.roundTrip(stomp.CmdSend, "2", "destination:/queue/leave")
		a.expect(stomp.CmdMessage)
		m2 := a.expect(stomp.CmdMessage)
		a.close()
		b := dialTCP(t, srv.TCPAddr())
		b.connect()
		b.send(stomp.CmdSubscribe, "", "id:b", "destination:/queue/leave", "ack:client")
		if string(b.expect(stomp.CmdMessage).Body) != "1" || string(b.expect(stomp.CmdMessage).Body) != "2" {
			t.Fatal("redelivery lost or reordered")
		}
		_ = m2
	})
	t.Run("client mode ACK is cumulative", func(t *testing.T) {
		pub, a := dialTCP(t, srv.TCPAddr()), dialTCP(t, srv.TCPAddr())
		pub.connect()
		a.connect()
		a.roundTrip(stomp.CmdSubscribe, "", "id:a", "destination:/queue/cumul", "ack:client")
		for i := range 3 {
			pub.roundTrip(stomp.CmdSend, fmt.Sprint(i), "destination:/queue/cumul")
		}
		var last *stomp.Frame
		for range 3 {
			last = a.expect(stomp.CmdMessage)
		}
		a.roundTrip(stomp.CmdAck, "", "id:"+last.Value(stomp.HdrAck))
		a.close()
		b := dialTCP(t, srv.TCPAddr())
		b.connect()
		b.roundTrip(stomp.CmdSubscribe, "", "id:b", "destination:/queue/cumul", "ack:client")
		pub.roundTrip(stomp.CmdSend, "after", "destination:/queue/cumul")
		if m := b.expect(stomp.CmdMessage); string(m.Body) != "after" {
			t.Fatalf("acked message came back: %q", m.Body)
		}
	})
	t.Run("1.1 ACK by message-id", func(t *testing.T) {
		pub, a := dialTCP(t, srv.TCPAddr()), dialTCP(t, srv.TCPAddr())
		pub.connect()
		a.connect("accept-version:1.1")
		a.roundTrip(stomp.CmdSubscribe, "", "id:a", "destination:/queue/v11", "ack:client-individual")
		pub.roundTrip(stomp.CmdSend, "x", "destination:/queue/v11")
		m := a.expect(stomp.CmdMessage)
		if m.Value(stomp.HdrAck) != "" {
			t.Fatal("1.1 MESSAGE carries a 1.2 ack header")
		}
		a.roundTrip(stomp.CmdAck, "", "message-id:"+m.Value(stomp.HdrMessageID), "subscription:a")
		a.close()
		b := dialTCP(t, srv.TCPAddr())
		b.connect()
		b.roundTrip(stomp.CmdSubscribe, "", "id:b", "destination:/queue/v11")
		pub.roundTrip(stomp.CmdSend, "y", "destination:/queue/v11")
		if m := b.expect(stomp.CmdMessage); string(m.Body) != "y" {
			t.Fatalf("acked message came back: %q", m.Body)
		}
	})
}

func TestTransactions(t *testing.T) {
	srv := startServer(t)
	sub, pub := dialTCP(t, srv.TCPAddr()), dialTCP(t, srv.TCPAddr())
	sub.connect()
	pub.connect()
	sub.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/topic/tx")
	pub.roundTrip(stomp.CmdBegin, "", "transaction:t1")
	pub.roundTrip(stomp.CmdSend, "in-tx", "destination:/topic/tx", "transaction:t1")
	pub.roundTrip(stomp.CmdBegin, "", "transaction:t2")
	pub.roundTrip(stomp.CmdSend, "aborted", "destination:/topic/tx", "transaction:t2")
	pub.roundTrip(stomp.CmdAbort, "", "transaction:t2")
	pub.roundTrip(stomp.CmdSend, "direct", "destination:/topic/tx")
	pub.roundTrip(stomp.CmdCommit, "", "transaction:t1")
	if m := sub.expect(stomp.CmdMessage); string(m.Body) != "direct" {
		t.Fatalf("first %q: a transactional SEND acted before COMMIT", m.Body)
	}
	if m := sub.expect(stomp.CmdMessage); string(m.Body) != "in-tx" {
		t.Fatalf("second %q", m.Body)
	}
	sub.sync() // nothing from the aborted transaction

	t.Run("transactional ACK acts at COMMIT", func(t *testing.T) {
		q := dialTCP(t, srv.TCPAddr())
		q.connect()
		q.roundTrip(stomp.CmdSubscribe, "", "id:q", "destination:/queue/txack", "ack:client-individual")
		pub.roundTrip(stomp.CmdSend, "m", "destination:/queue/txack")
		m := q.expect(stomp.CmdMessage)
		q.roundTrip(stomp.CmdBegin, "", "transaction:a")
		q.roundTrip(stomp.CmdAck, "", "id:"+m.Value(stomp.HdrAck), "transaction:a")
		q.roundTrip(stomp.CmdAbort, "", "transaction:a")
		q.close() // the ACK was aborted: the message must come back
		r := dialTCP(t, srv.TCPAddr())
		r.connect()
		r.send(stomp.CmdSubscribe, "", "id:r", "destination:/queue/txack")
		if m := r.expect(stomp.CmdMessage); string(m.Body) != "m" {
			t.Fatalf("got %q", m.Body)
		}
	})
	t.Run("open transactions are aborted when the connection goes", func(t *testing.T) {
		p := dialTCP(t, srv.TCPAddr())
		p.connect()
		p.roundTrip(stomp.CmdBegin, "", "transaction:gone")
		p.roundTrip(stomp.CmdSend, "never", "destination:/topic/tx", "transaction:gone")
		p.close()
		pub.roundTrip(stomp.CmdSend, "after", "destination:/topic/tx")
		if m := sub.expect(stomp.CmdMessage); string(m.Body) != "after" {
			t.Fatalf("got %q", m.Body)
		}
	})
}

func TestApplicationDestination(t *testing.T) {
	// A handler like Spring's @MessageMapping("/greet/{name}") with
	// @SendTo: it answers the sender on a user destination, publishes to a
	// topic, or refuses.
	_, addr := startBroker(t, broker.Config{}, func(b *broker.Broker) {
		b.Handle("/greet/{name}", func(_ context.Context, req *broker.AppRequest) error {
			name := req.Params["name"]
			if name == "nobody" {
				return stomp.NewError("no greeting for nobody")
			}
			req.Reply("/user/queue/reply", nil, []byte("sent to "+name))
			return req.Broker.Publish("/topic/greetings", []stomp.Header{{Key: stomp.HdrContentType, Value: "text/plain"}}, []byte("hello, "+name), 0)
		})
	})
	for _, prefix := range []string{"/pub", "/app"} {
		t.Run(prefix, func(t *testing.T) {
			sub, pub := dialTCP(t, addr), dialTCP(t, addr)
			sub.connect()
			pub.connect("accept-version:1.2", "login:kim")
			sub.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/topic/greetings")
			pub.roundTrip(stomp.CmdSubscribe, "", "id:r", "destination:/user/queue/reply")
			pub.send(stomp.CmdSend, "", "destination:"+prefix+"/greet/lee", "receipt:g")
			if m := pub.expect(stomp.CmdMessage); string(m.Body) != "sent to lee" || m.Value(stomp.HdrDestination) != "/user/queue/reply" {
				t.Fatalf("reply %v %q", m.Headers, m.Body)
			}
			pub.expect(stomp.CmdReceipt)
			if m := sub.expect(stomp.CmdMessage); string(m.Body) != "hello, lee" {
				t.Fatalf("got %v %q", m.Headers, m.Body)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		c := dialTCP(t, addr)
		c.connect()
		c.send(stomp.CmdSend, "", "destination:/pub/greet/nobody", "receipt:9")
		if f := c.expect(stomp.CmdError); f.Value(stomp.HdrMessage) != "no greeting for nobody" || f.Value(stomp.HdrReceiptID) != "9" {
			t.Fatalf("ERROR %v", f.Headers)
		}
		c.expectClosed()
	})
	t.Run("no handler", func(t *testing.T) {
		c := dialTCP(t, addr)
		c.connect()
		c.send(stomp.CmdSend, "{}", "destination:/app/nothing/here")
		c.expect(stomp.CmdError)
	})
}

func TestUserDestinations(t *testing.T) {
	b, addr := startBroker(t, broker.Config{}, nil)
	alice1, alice2, bob := dialTCP(t, addr), dialTCP(t, addr), dialTCP(t, addr)
	alice1.connect("accept-version:1.2", "login:alice")
	alice2.connect("accept-version:1.2", "login:alice")
	bob.connect("accept-version:1.2", "login:bob")
	for _, c := range []*stompClient{alice1, alice2, bob} {
		c.roundTrip(stomp.CmdSubscribe, "", "id:n", "destination:/user/queue/notifications")
	}
	b.SendToUser("alice", "/queue/notifications", nil, []byte("for alice"))
	for _, c := range []*stompClient{alice1, alice2} {
		if m := c.expect(stomp.CmdMessage); string(m.Body) != "for alice" || m.Value(stomp.HdrDestination) != "/user/queue/notifications" {
			t.Fatalf("got %v %q", m.Headers, m.Body)
		}
	}
	bob.sync() // bob got nothing
	if !b.IsOnline("alice") || b.IsOnline("carol") {
		t.Fatal("presence is wrong")
	}
}

func TestHeartBeats(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.HeartBeat = 500 * time.Millisecond })
	t.Run("server sends EOLs", func(t *testing.T) {
		conn, err := net.Dial("tcp", srv.TCPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprint(conn, "CONNECT\naccept-version:1.2\nheart-beat:0,500\n\n\x00")
		conn.SetReadDeadline(time.Now().Add(testTimeout))
		buf := make([]byte, 4096)
		var got []byte
		for !strings.HasSuffix(string(got), "\x00\n\n") {
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("read: %v after %q", err, got)
			}
			got = append(got, buf[:n]...)
		}
		if !strings.Contains(string(got), "heart-beat:500,500") {
			t.Fatalf("CONNECTED %q", got)
		}
	})
	t.Run("silent client is closed", func(t *testing.T) {
		c := dialTCP(t, srv.TCPAddr())
		c.connect("accept-version:1.2", "heart-beat:500,0")
		f := c.expect(stomp.CmdError)
		if !strings.Contains(f.Value(stomp.HdrMessage), "heart-beat") {
			t.Fatalf("ERROR %v", f.Headers)
		}
		c.expectClosed()
	})
	t.Run("client that beats stays", func(t *testing.T) {
		c := dialTCP(t, srv.TCPAddr())
		c.connect("accept-version:1.2", "heart-beat:500,0")
		c.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/topic/hb")
		// 15 beats 100 ms apart span 1.5 s, past the 1 s the server waits
		// for a silent client; the 5× slack keeps a loaded machine honest.
		for range 15 {
			c.sendRaw("\n")
			time.Sleep(100 * time.Millisecond)
		}
		c.roundTrip(stomp.CmdUnsubscribe, "", "id:1")
	})
}

func TestSlowConsumerIsCutOff(t *testing.T) {
	srv := startServer(t)
	// A raw TCP client that subscribes and then never reads.
	slow, err := net.Dial("tcp", srv.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprint(slow, "CONNECT\naccept-version:1.2\n\n\x00SUBSCRIBE\nid:1\ndestination:/topic/flood\nreceipt:s\n\n\x00")
	fast, pub := dialTCP(t, srv.TCPAddr()), dialTCP(t, srv.TCPAddr())
	fast.connect()
	pub.connect()
	fast.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/topic/flood")
	checkFor(t, "three sessions", func() bool { return srv.broker.SessionCount() == 3 })
	body := strings.Repeat("x", 16<<10)
	// 1,000 messages of 16 KiB: more than the kernel's socket buffers and the
	// outbox bounds together. The fast reader keeps pace, batch by batch.
	const n, batch = 1000, 50
	for i := 0; i < n; i += batch {
		for range batch {
			pub.send(stomp.CmdSend, body, "destination:/topic/flood")
		}
		for range batch {
			if m := fast.expect(stomp.CmdMessage); len(m.Body) != len(body) {
				t.Fatalf("message %d short", i)
			}
		}
	}
	checkFor(t, "the slow consumer to be cut off", func() bool { return srv.broker.SessionCount() == 2 })
	if n := srv.broker.Stats().SlowConsumers; n != 1 {
		t.Errorf("slow-consumer disconnects counted: %d, want 1", n)
	}
}

func TestOriginCheck(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.AllowedOrigins = []string{"https://*.corp.example"} })
	tests := []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + srv.HTTPAddr(), true},
		{"https://chat.corp.example", true},
		{"https://evil.example", false},
		{"null", false},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			c, resp, err := websocket.Dial(ctx, "ws://"+srv.HTTPAddr()+"/ws", &websocket.DialOptions{HTTPHeader: h})
			if tt.ok != (err == nil) {
				t.Fatalf("dial error %v, want ok=%v", err, tt.ok)
			}
			if err == nil {
				c.CloseNow()
			} else if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d", resp.StatusCode)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.MaxConnections = 2; c.MaxSubscriptions = 2 })
	a := dialTCP(t, srv.TCPAddr())
	a.connect()
	a.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/topic/1")
	a.roundTrip(stomp.CmdSubscribe, "", "id:2", "destination:/topic/2")
	a.send(stomp.CmdSubscribe, "", "id:3", "destination:/topic/3")
	if f := a.expect(stomp.CmdError); !strings.Contains(f.Value(stomp.HdrMessage), "too many subscriptions") {
		t.Fatalf("ERROR %v", f.Headers)
	}
	a.expectClosed()
	checkFor(t, "a to go", func() bool { return srv.broker.SessionCount() == 0 })
	b, c := dialTCP(t, srv.TCPAddr()), dialTCP(t, srv.TCPAddr())
	b.connect()
	c.connect()
	d := dialTCP(t, srv.TCPAddr())
	if f := d.expect(stomp.CmdError); !strings.Contains(f.Value(stomp.HdrMessage), "too many connections") {
		t.Fatalf("ERROR %v", f.Headers)
	}
}

func TestShutdownTellsClients(t *testing.T) {
	srv := startServer(t)
	tcp := dialTCP(t, srv.TCPAddr())
	tcp.connect()
	ws, _ := dialWS(t, srv, transport.Subprotocols...)
	ws.connect()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*stompClient{tcp, ws} {
		if f := c.expect(stomp.CmdError); f.Value(stomp.HdrMessage) != "server shutting down" {
			t.Fatalf("ERROR %v", f.Headers)
		}
		c.expectClosed()
	}
}

func TestConnectCyclesLeaveNothingBehind(t *testing.T) {
	connectCycles(t, startServer(t), 1000)
}

// connectCycles connects, subscribes and leaves n times, alternating TCP
// and WebSocket; every third client just drops its socket, as a phone losing
// its network does, and the others DISCONNECT with a receipt. Afterwards
// sessions, goroutines and open files must be back where they were.
func connectCycles(t *testing.T, srv *server, n int) {
	t.Helper()
	for _, c := range []*stompClient{dialTCP(t, srv.TCPAddr())} { // warm up lazily started runtime goroutines
		c.connect()
		c.close()
	}
	checkFor(t, "warm-up session to end", func() bool { return srv.broker.SessionCount() == 0 })
	goroutines, files := goroutineBaseline(), openFiles(t)
	start := time.Now()
	for i := range n {
		var c *stompClient
		if i%2 == 0 {
			c = dialTCP(t, srv.TCPAddr())
		} else {
			c, _ = dialWS(t, srv, transport.Subprotocols...)
		}
		c.connect()
		c.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:/topic/cycle")
		if i%3 == 0 {
			c.close()
			continue
		}
		c.send(stomp.CmdDisconnect, "", "receipt:bye")
		c.expect(stomp.CmdReceipt)
		c.expectClosed()
		c.close()
	}
	elapsed := time.Since(start)
	checkFor(t, "sessions to end", func() bool { return srv.broker.SessionCount() == 0 })
	checkFor(t, "goroutines back to baseline", func() bool { return goroutineBaseline() <= goroutines })
	checkFor(t, "open files back to baseline", func() bool { return openFiles(t) <= files })
	t.Logf("%d connect/subscribe/leave cycles in %v; goroutines %d → %d, open files %d → %d",
		n, elapsed.Round(time.Millisecond), goroutines, goroutineBaseline(), files, openFiles(t))
}

// openFiles counts this process's open file descriptors (Linux).
func openFiles(t testing.TB) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files here: %v", err)
	}
	return len(entries)
}

func TestOriginPolicyWithoutOriginHeader(t *testing.T) {
	p := transport.NewOriginPolicy([]string{"https://portal.corp.example"})
	tests := []struct {
		name          string
		site, referer string
		ok            bool
	}{
		{"script or device", "", "", true},
		{"same origin iframe", "same-origin", "", true},
		{"cross-site jsonp from an unknown site", "cross-site", "https://evil.example/page", false},
		{"cross-site without referer", "cross-site", "", false},
		{"cross-site from an allowed portal", "cross-site", "https://portal.corp.example/intranet", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "http://chat.local/ws-stomp/1/a/jsonp?c=x", nil)
			if tt.site != "" {
				r.Header.Set("Sec-Fetch-Site", tt.site)
			}
			if tt.referer != "" {
				r.Header.Set("Referer", tt.referer)
			}
			if got := p.Allowed(r); got != tt.ok {
				t.Fatalf("allowed = %v, want %v", got, tt.ok)
			}
		})
	}
}

// TestShutdownDropsStuckClients: WebSocket clients that subscribed and then
// stopped reading, while the server's writers are blocked on them with their
// write deadlines an hour away, must not hold shutdown beyond Broker.Close's
// grace period: Close drops their connections then, all at once (a
// WebSocket close handshake with each in turn would wait 5 seconds on
// every one), and the sessions end.
func TestShutdownDropsStuckClients(t *testing.T) {
	const (
		topic   = "/topic/stuck"
		clients = 4
	)
	b := broker.New(broker.Config{WriteTimeout: time.Hour, OutboxFrames: 1 << 20, OutboxBytes: 1 << 30}, testLogger(t))
	ts := httptest.NewServer(&transport.WSHandler{
		Identify: func(*http.Request) (string, string) { return "", "" },
		Serve:    func(c transport.Conn, info transport.Info) { b.Serve(context.Background(), c, info) },
		MaxFrame: b.Limits().MaxFrame,
		Origins:  transport.NewOriginPolicy(nil),
		Log:      testLogger(t),
	})
	defer ts.Close()
	for range clients {
		c, err := dialRawSTOMP(ts.Listener.Addr().String(), []byte("CONNECT\naccept-version:1.2\nhost:t\nheart-beat:0,0\n\n\x00"+
			"SUBSCRIBE\nid:0\ndestination:"+topic+"\nreceipt:sub\n\n\x00"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	// 40 MiB for clients that read nothing: far more than loopback's socket
	// buffers hold, so every session's writer blocks in a write.
	body := bytes.Repeat([]byte("x"), 32<<10)
	for range 1280 {
		if err := b.Publish(topic, nil, body, 0); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- b.Close(ctx) }()
	select {
	case err := <-closed:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Broker.Close = %v, want the grace period's end (the writers were stuck)", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Broker.Close did not return")
	}
	checkFor(t, "the stuck sessions to end", func() bool { return b.SessionCount() == 0 })
}
