package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"stompbox/internal/stomp"
	"strings"
	"testing"
)

// TestClusterBusMessageCodec: the bus form of a message round-trips, and
// malformed input is refused without a panic.
func TestClusterBusMessageCodec(t *testing.T) {
	msgs := []struct {
		user string
		m    BusMessage
	}{
		{"", BusMessage{Dest: "/topic/a", Body: []byte("x")}},
		{"alice", BusMessage{Dest: "/user/queue/n", Headers: []stomp.Header{{Key: "content-type", Value: "text/plain"}, {Key: "x-k", Value: ""}}, Body: nil}},
		{"", BusMessage{Dest: "/queue/é.*>", Headers: []stomp.Header{{Key: "a", Value: strings.Repeat("v", 300)}}, Body: []byte("a\x00b")}},
	}
	for _, tt := range msgs {
		enc := AppendBusMessage(nil, tt.user, tt.m)
		user, got, err := DecodeBusMessage(enc)
		if err != nil || user != tt.user || got.Dest != tt.m.Dest || !bytes.Equal(got.Body, tt.m.Body) || !slices.Equal(got.Headers, tt.m.Headers) {
			t.Errorf("%q %+v: got %q %+v %v", tt.user, tt.m, user, got, err)
		}
		for i := range enc { // every truncation but the body's is refused
			if _, _, err := DecodeBusMessage(enc[:i]); err == nil && i < len(enc)-len(tt.m.Body) {
				t.Errorf("%q truncated to %d bytes decoded", enc, i)
			}
		}
	}
	for _, bad := range []string{"", "\x02", "\x01", "\x01\x00", "\x01\x01a\x00\xff\xff\xff\xff\x0f", "\x01\x80"} {
		if _, _, err := DecodeBusMessage([]byte(bad)); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

// TestClusterBusSubjectTokens: whatever a destination, user or node name
// holds, it is one subject token of safe characters, and distinct names
// stay distinct.
func TestClusterBusSubjectTokens(t *testing.T) {
	seen := make(map[string]string)
	for _, s := range []string{"/topic/a", "/topic/a.b", "/topic/a.*", "/topic/>", "/topic/odd name", "/topic/a\tb", "émile", "node 1", "/topic/a/b", "/topic/a_b", "/topic/a-b"} {
		tok := BusToken(s)
		if tok == "" || strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Errorf("%q: token %q", s, tok)
		}
		if other, dup := seen[tok]; dup {
			t.Errorf("%q and %q share token %q", s, other, tok)
		}
		seen[tok] = s
	}
}

// FuzzClusterBusMessage: decoding never panics, and what decodes encodes
// back to the same bytes.
func FuzzClusterBusMessage(f *testing.F) {
	f.Add(AppendBusMessage(nil, "bob", BusMessage{Dest: "/user/queue/x", Headers: []stomp.Header{{Key: "k", Value: "v"}}, Body: []byte("hi")}))
	f.Add([]byte("\x01\x02/a\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		user, m, err := DecodeBusMessage(data)
		if err != nil {
			return
		}
		if again := AppendBusMessage(nil, user, m); !bytes.Equal(again, data) {
			// Non-minimal varints decode too; only the fields must survive.
			u2, m2, err := DecodeBusMessage(again)
			if err != nil || u2 != user || m2.Dest != m.Dest || !bytes.Equal(m2.Body, m.Body) || !slices.Equal(m2.Headers, m.Headers) {
				t.Fatalf("%q re-encoded as %q", data, again)
			}
		}
	})
}

// TestClusterBusPresenceParts: presence too big for one NATS message is
// cut into parts under the budget that together say everything.
func TestClusterBusPresenceParts(t *testing.T) {
	sp := PresenceSplitter{Budget: 300}
	want := make(map[PresenceKey]bool)
	for r := range 5 {
		key := fmt.Sprintf("/sub/chat/room/%d/presence", r)
		for u := range 40 {
			user := fmt.Sprintf("user<%d>", u)
			sp.Add(key, user, u%3 != 0)
			want[PresenceKey{key, user}] = u%3 != 0
		}
	}
	parts := sp.Done()
	if len(parts) < 2 {
		t.Fatalf("%d parts", len(parts))
	}
	got := make(map[PresenceKey]bool)
	for _, part := range parts {
		b, err := json.Marshal(PresenceMsg{Kind: PresenceKindDelta, Node: "n", Inst: "i", Seq: 1, Set: part})
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 300+200 { // the budget counts the groups; the envelope is extra
			t.Errorf("part of %d bytes", len(b))
		}
		for _, g := range part {
			for _, u := range g.On {
				got[PresenceKey{g.Key, u}] = true
			}
			for _, u := range g.Off {
				got[PresenceKey{g.Key, u}] = false
			}
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("parts say %v, want %v", got, want)
	}
}
