package broker

import (
	"context"
	"stompbox/internal/stomp"
	"stompbox/internal/transport"
	"testing"
	"time"
)

// keyedPrincipal rests its session on its login keys (LoginKeyer).
type keyedPrincipal []string

func (k keyedPrincipal) LoginKeys() []string { return k }

// keyedAuth signs in the login header as that user, resting on
// "user:<login>".
type keyedAuth struct{}

func (keyedAuth) AuthenticateSTOMP(_ context.Context, _ transport.Info, f *stomp.Frame) (string, any, error) {
	login := f.Value(stomp.HdrLogin)
	return login, keyedPrincipal{"user:" + login}, nil
}

// TestEndedSubscriptionsFreeTheirSlots: a subscription EndAccess ended no
// longer counts toward -max-subscriptions (the connection's) nor
// -max-user-subscriptions (the user's over all connections), its id may
// be subscribed again, and an UNSUBSCRIBE of it is answered with its
// RECEIPT, not an ERROR.
func TestEndedSubscriptionsFreeTheirSlots(t *testing.T) {
	b, addr := startTestBroker(t, Config{Auth: keyedAuth{}, MaxSubscriptions: 2, MaxUserSubscriptions: 3})
	kimA := dialQT(t, addr, "login:kim")
	kimB := dialQT(t, addr, "login:kim")
	pub := dialQT(t, addr, "login:lee")
	subscribe := func(c *qtClient, id, dest string) {
		t.Helper()
		c.send(stomp.CmdSubscribe, nil, "id:"+id, "destination:"+dest, "receipt:s-"+id)
		if f := c.expect(stomp.CmdReceipt + "|" + stomp.CmdError); f.Command != stomp.CmdReceipt {
			t.Fatalf("SUBSCRIBE id %s to %s: ERROR %q %q", id, dest, f.Value(stomp.HdrMessage), f.Body)
		}
	}
	// kimA holds its 2, and kim 3 over both connections: both limits reached.
	subscribe(kimA, "a", "/topic/room-1")
	subscribe(kimA, "b", "/topic/room-2")
	subscribe(kimB, "x", "/topic/room-1")

	if n := b.EndAccess("user:kim", []string{"/topic/room-1"}, "", nil, nil); n != 2 {
		t.Fatalf("EndAccess ended %d subscriptions, want 2", n)
	}
	if n := b.UserSubCount("kim"); n != 1 {
		t.Fatalf("kim counts %d subscriptions after the end, want 1", n)
	}
	// The ended subscription's slot on the connection is free, and so is
	// its id "a".
	subscribe(kimA, "c", "/topic/room-3")
	kimA.send(stomp.CmdUnsubscribe, nil, "id:c")
	subscribe(kimA, "a", "/topic/room-3")
	// kimB's ended "x" left kim's count: two more fit (b, a, y = 3).
	subscribe(kimB, "y", "/topic/room-3")
	// The client told of the end unsubscribes the ended id: quiet.
	kimB.send(stomp.CmdUnsubscribe, nil, "id:x", "receipt:u-x")
	if f := kimB.expect(stomp.CmdReceipt + "|" + stomp.CmdError); f.Command != stomp.CmdReceipt || f.Value(stomp.HdrReceiptID) != "u-x" {
		t.Fatalf("UNSUBSCRIBE of the ended id: %s %v %q", f.Command, f.Headers, f.Body)
	}
	if n := b.UserSubCount("kim"); n != 3 {
		t.Fatalf("kim counts %d subscriptions, want 3", n)
	}

	// Room 1 reaches neither connection; room 3 reaches the new "a" and "y".
	pub.send(stomp.CmdSend, []byte("one"), "destination:/topic/room-1")
	pub.send(stomp.CmdSend, []byte("three"), "destination:/topic/room-3", "receipt:p")
	pub.expect(stomp.CmdReceipt)
	for _, c := range []struct {
		c   *qtClient
		sub string
	}{{kimA, "a"}, {kimB, "y"}} {
		f := c.c.expect(stomp.CmdMessage)
		if string(f.Body) != "three" || f.Value(stomp.HdrSubscription) != c.sub {
			t.Fatalf("got %q on subscription %q, want \"three\" on %q", f.Body, f.Value(stomp.HdrSubscription), c.sub)
		}
		if extra, _ := c.c.next(100 * time.Millisecond); extra != nil {
			t.Fatalf("unexpected %s %v %q", extra.Command, extra.Headers, extra.Body)
		}
	}
}
