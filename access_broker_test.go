package main

import (
	"context"
	"stompbox/internal/broker"
	"stompbox/internal/stomp"
	"stompbox/internal/transport"
	"sync/atomic"
	"testing"
)

// access_broker_test.go: the broker's half of access that ends (issue 22),
// without the chat: sessions carry the login keys their principal names;
// CloseLogins ends exactly the sessions resting on a key, and EndAccess
// ends exactly the subscriptions to the named destinations, once (the
// unsubscribe hooks run once even when the client unsubscribes after).

// keyedPrincipal names its session's login keys.
type keyedPrincipal []string

func (k keyedPrincipal) LoginKeys() []string { return k }

// keyedAuth signs the login header in, resting on "user:<login>" and the
// passcode as a second key.
type keyedAuth struct{}

func (keyedAuth) AuthenticateSTOMP(_ context.Context, _ transport.Info, f *stomp.Frame) (string, any, error) {
	login := f.Value(stomp.HdrLogin)
	return login, keyedPrincipal{"user:" + login, "cred:" + f.Value(stomp.HdrPasscode)}, nil
}

func TestBrokerEndsAccess(t *testing.T) {
	var unsubs atomic.Int32
	var b *broker.Broker
	b, addr := startBroker(t, broker.Config{Auth: keyedAuth{}}, func(b *broker.Broker) {
		b.OnUnsubscribe(func(_ *broker.Session, sub *broker.Subscription) {
			if sub.Dest == "/topic/room-1" {
				unsubs.Add(1)
			}
		})
	})
	kimA, kimB, lee, pub := dialTCP(t, addr), dialTCP(t, addr), dialTCP(t, addr), dialTCP(t, addr)
	kimA.connect("accept-version:1.2", "login:kim", "passcode:a")
	kimB.connect("accept-version:1.2", "login:kim", "passcode:b")
	lee.connect("accept-version:1.2", "login:lee", "passcode:c")
	pub.connect()
	for _, c := range []*stompClient{kimA, kimB, lee} {
		c.roundTrip(stomp.CmdSubscribe, "", "id:r1", "destination:/topic/room-1")
		c.roundTrip(stomp.CmdSubscribe, "", "id:r2", "destination:/topic/room-2")
		c.roundTrip(stomp.CmdSubscribe, "", "id:n", "destination:/user/queue/notes")
	}

	// kim loses room 1 on both connections and is told; lee keeps it.
	if n := b.EndAccess("user:kim", []string{"/topic/room-1"}, "/user/queue/notes", nil, []byte("ended")); n != 2 {
		t.Fatalf("EndAccess ended %d subscriptions, want 2", n)
	}
	for _, c := range []*stompClient{kimA, kimB} {
		if m := c.expect(stomp.CmdMessage); string(m.Body) != "ended" || m.Value(stomp.HdrSubscription) != "n" {
			t.Fatalf("notice %v %q", m.Headers, m.Body)
		}
	}
	pub.roundTrip(stomp.CmdSend, "one", "destination:/topic/room-1")
	pub.roundTrip(stomp.CmdSend, "two", "destination:/topic/room-2")
	for _, c := range []*stompClient{kimA, kimB} {
		if m := c.expect(stomp.CmdMessage); string(m.Body) != "two" {
			t.Fatalf("kim got %q after losing room 1", m.Body)
		}
	}
	for _, want := range []string{"one", "two"} {
		if m := lee.expect(stomp.CmdMessage); string(m.Body) != want {
			t.Fatalf("lee got %q, want %q", m.Body, want)
		}
	}
	// The client's own UNSUBSCRIBE of an ended subscription is quiet, and
	// the hooks ran once per subscription.
	kimA.roundTrip(stomp.CmdUnsubscribe, "", "id:r1")
	if n := unsubs.Load(); n != 2 {
		t.Fatalf("unsubscribe hooks ran %d times for room 1, want 2", n)
	}

	// Closing kim's credential "b" ends kimB only, with an ERROR.
	if n := b.CloseLogins("cred:b"); n != 1 {
		t.Fatalf("CloseLogins closed %d sessions, want 1", n)
	}
	if e := kimB.expect(stomp.CmdError); e.Value(stomp.HdrMessage) != "session ended" {
		t.Fatalf("ERROR %v", e.Headers)
	}
	kimB.expectClosed()
	kimA.sync()
	lee.sync()
	if n := b.CloseLogins("user:kim", "user:nobody"); n != 1 {
		t.Fatalf("CloseLogins(user:kim) closed %d sessions, want 1", n)
	}
	kimA.expect(stomp.CmdError)
	kimA.expectClosed()
	lee.sync()
}
