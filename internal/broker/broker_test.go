package broker

import (
	"testing"

	"stompbox/internal/stomp"
)

// TestHasUserSubscribers: a user's SUBSCRIBE to a user destination is seen
// under either spelling of it, only for that user and that destination,
// and no longer once it is unsubscribed.
func TestHasUserSubscribers(t *testing.T) {
	b, addr := startTestBroker(t, Config{Auth: keyedAuth{}})
	kim := dialQT(t, addr, "login:kim")
	roundTrip := func(cmd, receipt string, headers ...string) {
		t.Helper()
		kim.send(cmd, nil, append(headers, "receipt:"+receipt)...)
		if f := kim.expect(stomp.CmdReceipt + "|" + stomp.CmdError); f.Command != stomp.CmdReceipt {
			t.Fatalf("%s: ERROR %q %q", cmd, f.Value(stomp.HdrMessage), f.Body)
		}
	}
	roundTrip(stomp.CmdSubscribe, "s", "id:n", "destination:/user/queue/notifications")

	cases := []struct {
		user, dest string
		want       bool
	}{
		{"kim", "/user/queue/notifications", true},
		{"kim", "/queue/notifications", true},
		{"kim", "/user/queue/errors", false},
		{"lee", "/user/queue/notifications", false},
		{"", "/user/queue/notifications", false},
	}
	for _, c := range cases {
		if got := b.HasUserSubscribers(c.user, c.dest); got != c.want {
			t.Errorf("HasUserSubscribers(%q, %q) = %v, want %v", c.user, c.dest, got, c.want)
		}
	}

	roundTrip(stomp.CmdUnsubscribe, "u", "id:n")
	if b.HasUserSubscribers("kim", "/user/queue/notifications") {
		t.Errorf("kim still counts as subscribed after UNSUBSCRIBE")
	}
}
