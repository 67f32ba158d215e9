package main

import (
	"context"
	"encoding/json"
	"net/http"
	"stompbox/internal/chat"
	"stompbox/internal/chat/chattest"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
	"stompbox/internal/store"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestIdempotentPost: a keyed send posted again (a resend after a
// reconnect, or two at once) is stored and delivered once, and every
// caller gets the same message; keys are per user; a refused send may be
// retried with its key; the window ends.
func TestIdempotentPost(t *testing.T) {
	f := chattest.NewFixture(t, chat.LangEnglish)
	ctx := context.Background()
	talk := func(u store.User, key, text string) (store.StoredMessage, error) {
		return f.Chat.Post(ctx, u, chat.Input{Type: proto.MsgTalk, RoomID: 1, Message: text, IdempotencyKey: key})
	}
	delivered := func(text string) int {
		f.Rec.Mu.Lock()
		defer f.Rec.Mu.Unlock()
		n := 0
		for _, d := range f.Rec.Delivered {
			if strings.Contains(string(d.Body), `"message":"`+text+`"`) {
				n++
			}
		}
		return n
	}

	t.Run("resend", func(t *testing.T) {
		a, err := talk(f.Alice, "k-1", "once")
		if err != nil {
			t.Fatal(err)
		}
		b, err := talk(f.Alice, "k-1", "once")
		if err != nil || b.ID != a.ID {
			t.Fatalf("resend got %d, %v; want id %d", b.ID, err, a.ID)
		}
		if n := delivered("once"); n != 1 {
			t.Errorf("delivered %d times", n)
		}
	})
	t.Run("sender gone before the commit", func(t *testing.T) {
		// The sender's context ends at once (a dropped connection): the keyed
		// send still runs to its end, so the retry finds it stored instead
		// of posting it again.
		gone, cancel := context.WithCancel(ctx)
		cancel()
		first, err := f.Chat.Post(gone, f.Alice, chat.Input{Type: proto.MsgTalk, RoomID: 1, Message: "left early", IdempotencyKey: "k-gone"})
		if err != nil {
			t.Fatalf("first attempt: %v", err)
		}
		again, err := talk(f.Alice, "k-gone", "left early")
		if err != nil || again.ID != first.ID {
			t.Fatalf("retry got %d, %v; want id %d", again.ID, err, first.ID)
		}
		if n := delivered("left early"); n != 1 {
			t.Errorf("delivered %d times", n)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		ids := make([]int64, 8)
		for i := range ids {
			wg.Go(func() {
				m, err := talk(f.Bob, "k-2", "at once")
				if err != nil {
					t.Error(err)
				}
				ids[i] = m.ID
			})
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("ids %v", ids)
			}
		}
		if n := delivered("at once"); n != 1 {
			t.Errorf("delivered %d times", n)
		}
	})
	t.Run("keys are per user", func(t *testing.T) {
		a, _ := talk(f.Alice, "shared", "alice's")
		b, _ := talk(f.Bob, "shared", "bob's")
		if a.ID == b.ID || b.Sender != "bob" {
			t.Errorf("alice %d, bob %d %s", a.ID, b.ID, b.Sender)
		}
	})
	t.Run("a refused send may be retried", func(t *testing.T) {
		if _, err := talk(f.Alice, "k-3", "   "); err == nil {
			t.Fatal("blank message stored")
		}
		if m, err := talk(f.Alice, "k-3", "fixed"); err != nil || m.Message != "fixed" {
			t.Fatalf("retry: %+v %v", m, err)
		}
	})
	t.Run("window ends", func(t *testing.T) {
		a, _ := talk(f.Carol, "k-4", "old")
		f.Clock.Advance(chat.IdempotencyWindow + time.Second)
		b, _ := talk(f.Carol, "k-4", "old")
		if a.ID == b.ID {
			t.Error("key remembered past the window")
		}
	})
	t.Run("key too long", func(t *testing.T) {
		if _, err := talk(f.Alice, strings.Repeat("k", chat.MaxIdempotencyKeyLen+1), "x"); err != chat.ErrBadIdempotencyKey {
			t.Errorf("err %v", err)
		}
	})
}

// TestIdempotentHTTPPost: the Idempotency-Key header makes a repeated
// POST /api/rooms/{id}/messages answer the first message.
func TestIdempotentHTTPPost(t *testing.T) {
	f := newFilesFixture(t)
	post := func() store.StoredMessage {
		req, _ := http.NewRequest("POST", f.base+"/api/rooms/1/messages", strings.NewReader(`{"message":"exactly once"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(chat.IdempotencyHTTPHeader, "6f1c2f1e-2b6a-4c8e-9d55-0d0f2a9b7c11")
		resp, err := f.alice.Do(req)
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("post: %v %v", resp, err)
		}
		defer resp.Body.Close()
		var m store.StoredMessage
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b := post(), post()
	if a.ID != b.ID {
		t.Errorf("ids %d and %d", a.ID, b.ID)
	}
	var n int
	f.srv.store.Rdb.QueryRow(`SELECT count(*) FROM messages WHERE body = 'exactly once'`).Scan(&n)
	if n != 1 {
		t.Errorf("%d stored", n)
	}
}

// TestIdempotentSTOMPSend: a SEND repeated with the same idempotency-key
// header (an outbox flushed again after a reconnect) gets its RECEIPT both
// times, and the room sees one MESSAGE.
func TestIdempotentSTOMPSend(t *testing.T) {
	f := newSTOMPChatFixture(t, "kim", "lee")
	lee := f.login(t, "lee")
	lee.roundTrip(stomp.CmdSubscribe, "", "id:room", "destination:"+f.roomDest())
	kim := f.login(t, "kim")
	for range 2 {
		kim.roundTrip(stomp.CmdSend, chatBody("TALK", f.room.ID, "queued offline"), "destination:/pub/chat/message", chat.IdempotencyHeader+":outbox-1")
	}
	kim.roundTrip(stomp.CmdSend, chatBody("TALK", f.room.ID, "after"), "destination:/pub/chat/message")
	if m := decodeChat(t, lee.expect(stomp.CmdMessage)); m.Message != "queued offline" {
		t.Fatalf("first message %q", m.Message)
	}
	if m := decodeChat(t, lee.expect(stomp.CmdMessage)); m.Message != "after" {
		t.Fatalf("second message %q, want the one after (the resend must not be delivered)", m.Message)
	}
}
