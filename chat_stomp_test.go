package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"stompbox/internal/apperr"
	"stompbox/internal/chat"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
	"stompbox/internal/store"
	"stompbox/internal/transport"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
)

const testPassword = "correct horse battery"

// stompChatFixture is a server with accounts and one public room.
type stompChatFixture struct {
	srv   *server
	users map[string]store.User
	room  store.Room
}

func newSTOMPChatFixture(t *testing.T, names ...string) *stompChatFixture {
	t.Helper()
	f := &stompChatFixture{srv: startServer(t), users: map[string]store.User{}}
	for _, n := range names {
		f.users[n] = addUser(t, f.srv, n, testPassword)
	}
	var err error
	f.room, err = f.srv.chat.CreateRoom(context.Background(), f.users[names[0]], chat.NewRoom{Name: "general"})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// login connects a STOMP client over TCP as name.
func (f *stompChatFixture) login(t *testing.T, name string) *stompClient {
	t.Helper()
	c := dialTCP(t, f.srv.TCPAddr())
	c.connect("accept-version:1.2", "login:"+name, "passcode:"+testPassword)
	return c
}

func (f *stompChatFixture) roomDest() string { return proto.RoomDestination(f.room.ID) }

func chatBody(typ string, room int64, text string) string {
	b, _ := json.Marshal(map[string]any{"type": typ, "roomId": room, "sender": "mallory", "message": text})
	return string(b)
}

// wireMessage is the published JSON of a stored chat message.
type wireMessage struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"`
	RoomID    int64  `json:"roomId"`
	Sender    string `json:"sender"`
	Message   string `json:"message"`
	CreatedAt string `json:"createdAt"`
}

func decodeChat(t *testing.T, f *stomp.Frame) wireMessage {
	t.Helper()
	var m wireMessage
	if err := json.Unmarshal(f.Body, &m); err != nil {
		t.Fatalf("message body %q: %v", f.Body, err)
	}
	return m
}

// TestChatFlow is the seed's story: two people enter and talk; the message is
// stored before it is delivered; a third, away meanwhile, comes back to the
// history and to the notification for the @mention.
func TestChatFlow(t *testing.T) {
	f := newSTOMPChatFixture(t, "kim", "lee", "park")
	kim, lee := f.login(t, "kim"), f.login(t, "lee")
	lee.roundTrip(stomp.CmdSubscribe, "", "id:room", "destination:"+f.roomDest())
	kim.roundTrip(stomp.CmdSubscribe, "", "id:room", "destination:"+f.roomDest())

	kim.send(stomp.CmdSend, chatBody("ENTER", f.room.ID, ""), "destination:/pub/chat/message", "receipt:enter")
	if m := decodeChat(t, lee.expect(stomp.CmdMessage)); m.Type != "ENTER" || m.Sender != "kim" || m.Message != "kim joined." {
		t.Fatalf("ENTER %+v", m)
	}
	kim.send(stomp.CmdSend, chatBody("TALK", f.room.ID, "안녕하세요 @park, 회의는 3시"), "destination:/app/chat/message", "receipt:talk")
	m := decodeChat(t, lee.expect(stomp.CmdMessage))
	if m.Type != "TALK" || m.Sender != "kim" || m.Message != "안녕하세요 @park, 회의는 3시" || m.ID == 0 || !strings.HasSuffix(m.CreatedAt, "Z") {
		t.Fatalf("TALK %+v: the sender must be the login, with id and createdAt", m)
	}
	// kim gets its own messages, then the receipts, in order: the receipt
	// follows the delivery, which follows the commit.
	kim.expect(stomp.CmdMessage)
	kim.expect(stomp.CmdReceipt)
	kim.expect(stomp.CmdMessage)
	if r := kim.expect(stomp.CmdReceipt); r.Value(stomp.HdrReceiptID) != "talk" {
		t.Fatalf("receipt %v", r.Headers)
	}
	stored, err := f.srv.chat.Messages(context.Background(), f.users["kim"], f.room.ID, 0, 0, 50)
	if err != nil || len(stored) != 2 || stored[1].ID != m.ID {
		t.Fatalf("stored %v, %v", stored, err)
	}

	// park was away: history over HTTP and since-id, and the notification.
	park := f.login(t, "park")
	park.send(stomp.CmdSubscribe, "", "id:n", "destination:/user/queue/notifications", "receipt:n")
	var note map[string]any
	if err := json.Unmarshal(park.expect(stomp.CmdMessage).Body, &note); err != nil || !strings.Contains(fmt.Sprint(note), "회의는 3시") {
		t.Fatalf("notification %v %v", note, err)
	}
	park.expect(stomp.CmdReceipt)
	park.send(stomp.CmdSubscribe, "", "id:room", "destination:"+f.roomDest(), "since-id:0", "receipt:s")
	if a, b := decodeChat(t, park.expect(stomp.CmdMessage)), decodeChat(t, park.expect(stomp.CmdMessage)); a.Type != "ENTER" || b.ID != m.ID {
		t.Fatalf("replay %+v %+v", a, b)
	}
	park.expect(stomp.CmdReceipt)
	// The notification was delivered once: a new subscription gets nothing.
	park.send(stomp.CmdUnsubscribe, "", "id:n")
	park.roundTrip(stomp.CmdSubscribe, "", "id:n2", "destination:/user/queue/notifications")
}

// TestChatSinceIDNoGapNoDuplicate subscribes with since-id while another
// client keeps posting: every message arrives exactly once, in id order.
func TestChatSinceIDNoGapNoDuplicate(t *testing.T) {
	f := newSTOMPChatFixture(t, "kim", "lee")
	kim := f.login(t, "kim")
	const before, during = 30, 200
	for i := range before {
		kim.roundTrip(stomp.CmdSend, chatBody("TALK", f.room.ID, fmt.Sprint("before ", i)), "destination:/pub/chat/message")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range during {
			kim.send(stomp.CmdSend, chatBody("TALK", f.room.ID, fmt.Sprint("during ", i)), "destination:/pub/chat/message")
		}
	}()
	lee := f.login(t, "lee")
	lee.send(stomp.CmdSubscribe, "", "id:room", "destination:"+f.roomDest(), "since-id:0")
	<-done
	var last int64
	for i := 0; i < before+during; i++ {
		m := decodeChat(t, lee.expect(stomp.CmdMessage))
		if m.ID <= last {
			t.Fatalf("message %d has id %d after %d: duplicate or out of order", i, m.ID, last)
		}
		last = m.ID
	}
	kim.sync()
	lee.sync() // nothing more: no duplicates after the last
}

func TestChatRefusedSend(t *testing.T) {
	f := newSTOMPChatFixture(t, "kim")
	t.Run("subscribed to errors: told there, connection kept, no receipt", func(t *testing.T) {
		c := f.login(t, "kim")
		c.roundTrip(stomp.CmdSubscribe, "", "id:e", "destination:/user/queue/errors")
		tests := []struct{ body, want string }{
			{"not json", "malformed JSON"},
			{chatBody("TALK", f.room.ID, ""), "empty message"},
			{chatBody("TALK", f.room.ID, strings.Repeat("말", chat.MaxMessageRunes+1)), "message too long"},
			{chatBody("TALK", 999999, "hi"), "unknown room"},
			{chatBody("SHOUT", f.room.ID, "hi"), "type must be"},
		}
		for i, tt := range tests {
			c.send(stomp.CmdSend, tt.body, "destination:/pub/chat/message", fmt.Sprintf("receipt:r%d", i))
			var e apperr.RefusedSend
			if err := json.Unmarshal(c.expect(stomp.CmdMessage).Body, &e); err != nil || !strings.Contains(e.Error, tt.want) || e.Receipt != fmt.Sprintf("r%d", i) {
				t.Fatalf("%q: error %+v %v", tt.body, e, err)
			}
		}
		c.roundTrip(stomp.CmdSend, chatBody("TALK", f.room.ID, "still connected"), "destination:/pub/chat/message")
	})
	t.Run("not subscribed: ERROR and close", func(t *testing.T) {
		c := f.login(t, "kim")
		c.send(stomp.CmdSend, chatBody("TALK", f.room.ID, ""), "destination:/pub/chat/message", "receipt:x")
		if e := c.expect(stomp.CmdError); e.Value(stomp.HdrMessage) != "empty message" || e.Value(stomp.HdrReceiptID) != "x" {
			t.Fatalf("ERROR %v", e.Headers)
		}
		c.expectClosed()
	})
}

func TestChatAuthorization(t *testing.T) {
	f := newSTOMPChatFixture(t, "kim", "lee", "eve")
	private, err := f.srv.chat.CreateRoom(context.Background(), f.users["kim"], chat.NewRoom{Name: "secret", Kind: store.RoomPrivate})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, who, raw, want string
	}{
		{"non-member subscribes to a private room", "eve", fmt.Sprintf("SUBSCRIBE\nid:1\ndestination:%s\n\n\x00", proto.RoomDestination(private.ID)), "not a member"},
		{"non-member reads private presence", "eve", fmt.Sprintf("SUBSCRIBE\nid:1\ndestination:%s/presence\n\n\x00", proto.RoomDestination(private.ID)), "not a member"},
		{"publishing straight to a room topic", "kim", fmt.Sprintf("SEND\ndestination:%s\n\n{}\x00", f.roomDest()), "through /pub/chat/message"},
		{"unknown room sub-destination", "kim", fmt.Sprintf("SUBSCRIBE\nid:1\ndestination:%s/other\n\n\x00", f.roomDest()), "unknown chat destination"},
		{"room id spelled differently", "kim", fmt.Sprintf("SUBSCRIBE\nid:1\ndestination:/sub/chat/room/0%d\n\n\x00", f.room.ID), "unknown chat destination"},
		{"anonymous subscribes to a room", "", fmt.Sprintf("SUBSCRIBE\nid:1\ndestination:%s\n\n\x00", f.roomDest()), "login required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c *stompClient
			if tt.who == "" {
				c = dialTCP(t, f.srv.TCPAddr())
				c.connect()
			} else {
				c = f.login(t, tt.who)
			}
			c.sendRaw(tt.raw)
			if e := c.expect(stomp.CmdError); !strings.Contains(e.Value(stomp.HdrMessage), tt.want) {
				t.Fatalf("ERROR %q, want %q", e.Value(stomp.HdrMessage), tt.want)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		c := dialTCP(t, f.srv.TCPAddr())
		c.send(stomp.CmdConnect, "", "accept-version:1.2", "login:kim", "passcode:guess")
		if e := c.expect(stomp.CmdError); !strings.Contains(e.Value(stomp.HdrMessage), "wrong username or password") {
			t.Fatalf("ERROR %v", e.Headers)
		}
	})
	t.Run("member reads the private room", func(t *testing.T) {
		c := f.login(t, "kim")
		c.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:"+proto.RoomDestination(private.ID))
	})
}

func TestChatPresenceAndTyping(t *testing.T) {
	f := newSTOMPChatFixture(t, "kim", "lee")
	lee := f.login(t, "lee")
	lee.send(stomp.CmdSubscribe, "", "id:p", "destination:"+f.roomDest()+chat.PresenceSuffix)
	if p := string(lee.expect(stomp.CmdMessage).Body); p != `{"online":[]}` {
		t.Fatalf("first presence %s", p)
	}
	lee.roundTrip(stomp.CmdSubscribe, "", "id:t", "destination:"+f.roomDest()+chat.TypingSuffix)
	kim := f.login(t, "kim")
	kim.roundTrip(stomp.CmdSubscribe, "", "id:room", "destination:"+f.roomDest())
	if p := string(lee.expect(stomp.CmdMessage).Body); p != `{"online":["kim"]}` {
		t.Fatalf("presence after kim came %s", p)
	}
	kim.roundTrip(stomp.CmdSend, fmt.Sprintf(`{"roomId":%d}`, f.room.ID), "destination:/pub/chat/typing")
	if ty := string(lee.expect(stomp.CmdMessage).Body); !strings.Contains(ty, `"user":"kim"`) {
		t.Fatalf("typing %s", ty)
	}
	kim.close()
	if p := string(lee.expect(stomp.CmdMessage).Body); p != `{"online":[]}` {
		t.Fatalf("presence after kim left %s", p)
	}
}

// TestChatCookieAuthOverWebSocket logs in over HTTP and connects to /ws with
// the session cookie and no STOMP credentials, as the web page does.
func TestChatCookieAuthOverWebSocket(t *testing.T) {
	f := newSTOMPChatFixture(t, "kim")
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	resp, err := client.Post(f.srv.URL()+"api/login", "application/json", strings.NewReader(`{"username":"kim","password":"`+testPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login status %d", resp.StatusCode)
	}
	u, _ := url.Parse(f.srv.URL())
	h := http.Header{}
	for _, c := range jar.Cookies(u) {
		h.Add("Cookie", c.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+f.srv.HTTPAddr()+"/ws", &websocket.DialOptions{HTTPHeader: h, Subprotocols: transport.Subprotocols})
	if err != nil {
		t.Fatal(err)
	}
	c := newStompClient(t, func(b []byte) error { return ws.Write(context.Background(), websocket.MessageText, b) },
		func() { ws.CloseNow() },
		func() ([]byte, error) { _, b, err := ws.Read(context.Background()); return b, err })
	if cf := c.connect(); cf.Value(stomp.HdrUserName) != "kim" {
		t.Fatalf("CONNECTED %v", cf.Headers)
	}
	c.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:"+f.roomDest())
}

func TestChatConcurrentSenders(t *testing.T) {
	f := newSTOMPChatFixture(t, "kim")
	const senders, each = 8, 50
	var wg sync.WaitGroup
	for s := range senders {
		c := f.login(t, "kim")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				c.send(stomp.CmdSend, chatBody("TALK", f.room.ID, fmt.Sprintf("s%d-%d", s, i)), "destination:/pub/chat/message", fmt.Sprintf("receipt:%d", i))
			}
		}()
		defer func() {
			for i := range each {
				if r := c.expect(stomp.CmdReceipt); r.Value(stomp.HdrReceiptID) != fmt.Sprint(i) {
					t.Errorf("receipt %v", r.Headers)
				}
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		seen := map[string]bool{}
		var after int64
		for {
			page, err := f.srv.chat.MessagesAfter(context.Background(), f.room.ID, after, 200)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, m := range page {
				if seen[m.Message] {
					t.Fatalf("%s stored twice", m.Message)
				}
				seen[m.Message] = true
				after = m.ID
			}
		}
		if len(seen) != senders*each {
			t.Fatalf("%d messages stored, want %d", len(seen), senders*each)
		}
	})
}
