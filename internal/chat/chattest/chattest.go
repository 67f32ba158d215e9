// Package chattest helps the tests of chat and of the parts above it: a
// chat service over a real store with three accounts (alice, an
// administrator, bob and carol), and a recorder of what it delivers and
// notifies in place of the broker. Only tests import it. Of stompbox it
// imports only internal/auth, internal/auth/authtest, internal/chat,
// internal/store and internal/store/storetest (layout_test.go).
package chattest

import (
	"context"
	"net/http"
	"slices"
	"stompbox/internal/auth"
	"stompbox/internal/auth/authtest"
	"stompbox/internal/chat"
	"stompbox/internal/store"
	"stompbox/internal/store/storetest"
	"stompbox/internal/testutil"
	"sync"
	"testing"
	"time"
)

// chatRecorder records what chatService hands to the broker.
type chatRecorder struct {
	Mu        sync.Mutex
	Delivered []recordedDelivery
	notified  []recordedNotify
	online    map[string]bool
}

func (r *chatRecorder) deliver(roomID, _ int64, b []byte) {
	r.Mu.Lock()
	r.Delivered = append(r.Delivered, recordedDelivery{roomID, slices.Clone(b)})
	r.Mu.Unlock()
}

func (r *chatRecorder) notify(u string, b []byte) {
	r.Mu.Lock()
	r.notified = append(r.notified, recordedNotify{u, slices.Clone(b)})
	r.Mu.Unlock()
}

func (r *chatRecorder) isOnline(u string) bool {
	r.Mu.Lock()
	defer r.Mu.Unlock()
	return r.online[u]
}

func (r *chatRecorder) SetOnline(u string, on bool) {
	r.Mu.Lock()
	r.online[u] = on
	r.Mu.Unlock()
}

func (r *chatRecorder) Notifications() []recordedNotify {
	r.Mu.Lock()
	defer r.Mu.Unlock()
	return slices.Clone(r.notified)
}

func (r *chatRecorder) Deliveries() []recordedDelivery {
	r.Mu.Lock()
	defer r.Mu.Unlock()
	return slices.Clone(r.Delivered)
}

// Fixture is a store, auth and chat service over a temp file, with
// users alice (admin), bob and carol.
type Fixture struct {
	St                *store.Store
	Auth              *auth.Service
	Chat              *chat.Service
	Rec               *chatRecorder
	Clock             *testutil.Clock
	Alice, Bob, Carol store.User
}

func NewFixture(t testing.TB, lang string) *Fixture {
	t.Helper()
	f := &Fixture{Clock: testutil.NewClock(), Rec: &chatRecorder{online: map[string]bool{}}}
	f.St = storetest.Open(t, f.Clock)
	f.Auth = authtest.New(t, f.St, true)
	var err error
	f.Chat, err = chat.New(f.St, chat.Config{Lang: lang, Deliver: f.Rec.deliver, Notify: f.Rec.notify, Online: f.Rec.isOnline,
		WebhookAllow: []string{"127.0.0.1"}, Webhooks: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Chat.Close() })
	f.Alice = authtest.Register(t, f.Auth, "alice")
	f.Bob = authtest.Register(t, f.Auth, "bob")
	f.Carol = authtest.Register(t, f.Auth, "carol")
	return f
}

func (f *Fixture) Post(t testing.TB, u store.User, roomID int64, typ, msg string) store.StoredMessage {
	t.Helper()
	m, err := f.Chat.Post(context.Background(), u, chat.Input{Type: typ, RoomID: roomID, Message: msg})
	if err != nil {
		t.Fatalf("post %q as %s: %v", msg, u.Username, err)
	}
	return m
}

func (f *Fixture) Room(t testing.TB, u store.User, name, kind string) store.Room {
	t.Helper()
	r, err := f.Chat.CreateRoom(context.Background(), u, chat.NewRoom{Name: name, Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type recordedDelivery struct {
	RoomID int64
	Body   []byte
}

type recordedNotify struct {
	User string
	Body []byte
}
