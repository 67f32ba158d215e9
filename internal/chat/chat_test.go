package chat_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"slices"
	"stompbox/internal/apperr"
	"stompbox/internal/chat"
	"stompbox/internal/chat/chattest"
	"stompbox/internal/proto"
	"stompbox/internal/store"
	"stompbox/internal/store/storetest"
	"stompbox/internal/testutil"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseChatInput(t *testing.T) {
	tests := []struct {
		name string
		body string
		want chat.Input
		err  error
	}{
		{"talk", `{"type":"TALK","roomId":5,"sender":"x","message":"hi"}`, chat.Input{Type: "TALK", RoomID: 5, Sender: "x", Message: "hi"}, nil},
		{"room id as string", `{"type":"ENTER","roomId":"7","sender":"x"}`, chat.Input{Type: "ENTER", RoomID: 7, Sender: "x"}, nil},
		{"lower-case type", `{"type":"leave","roomId":1}`, chat.Input{Type: "LEAVE", RoomID: 1}, nil},
		{"bad json", `{"type":"TALK",`, chat.Input{}, apperr.ErrBadJSON},
		{"not an object", `[1,2]`, chat.Input{}, apperr.ErrBadJSON},
		{"no type", `{"roomId":1,"message":"hi"}`, chat.Input{}, apperr.ErrBadMessageType},
		{"bad type", `{"type":"SHOUT","roomId":1,"message":"hi"}`, chat.Input{}, apperr.ErrBadMessageType},
		{"no room", `{"type":"TALK","message":"hi"}`, chat.Input{}, apperr.ErrUnknownRoom},
		{"room zero", `{"type":"TALK","roomId":0,"message":"hi"}`, chat.Input{}, apperr.ErrUnknownRoom},
		{"room uuid", `{"type":"TALK","roomId":"3f2a-11","message":"hi"}`, chat.Input{}, apperr.ErrUnknownRoom},
		{"room float", `{"type":"TALK","roomId":1.5,"message":"hi"}`, chat.Input{}, apperr.ErrUnknownRoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chat.ParseInput([]byte(tt.body))
			if !errors.Is(err, tt.err) || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseChatInput = %+v, %v; want %+v, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestPostValidation(t *testing.T) {
	f := chattest.NewFixture(t, chat.LangEnglish)
	ctx := context.Background()
	private := f.Room(t, f.Alice, "secret", store.RoomPrivate)
	dm, err := f.Chat.OpenDM(ctx, f.Alice, "bob")
	if err != nil {
		t.Fatal(err)
	}
	archived := f.Room(t, f.Alice, "old", store.RoomPublic)
	yes := true
	if _, err := f.Chat.UpdateRoom(ctx, f.Alice, archived.ID, store.RoomUpdate{Archived: &yes}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		u      store.User
		in     chat.Input
		want   error
		status int
	}{
		{"ok", f.Bob, chat.Input{Type: proto.MsgTalk, RoomID: 1, Message: "hi"}, nil, 200},
		{"4000 runes", f.Bob, chat.Input{Type: proto.MsgTalk, RoomID: 1, Message: strings.Repeat("가", chat.MaxMessageRunes)}, nil, 200},
		{"unknown room", f.Bob, chat.Input{Type: proto.MsgTalk, RoomID: 999, Message: "hi"}, apperr.ErrUnknownRoom, 404},
		{"private non-member", f.Bob, chat.Input{Type: proto.MsgTalk, RoomID: private.ID, Message: "hi"}, apperr.ErrNotMember, 403},
		{"private enter non-member", f.Bob, chat.Input{Type: proto.MsgEnter, RoomID: private.ID}, apperr.ErrNotMember, 403},
		{"dm outsider", f.Carol, chat.Input{Type: proto.MsgTalk, RoomID: dm.ID, Message: "hi"}, apperr.ErrNotMember, 403},
		{"dm member", f.Bob, chat.Input{Type: proto.MsgTalk, RoomID: dm.ID, Message: "hi"}, nil, 200},
		{"archived", f.Alice, chat.Input{Type: proto.MsgTalk, RoomID: archived.ID, Message: "hi"}, apperr.ErrRoomArchived, 403},
		{"empty", f.Bob, chat.Input{Type: proto.MsgTalk, RoomID: 1, Message: ""}, apperr.ErrEmptyMessage, 400},
		{"blank", f.Bob, chat.Input{Type: proto.MsgTalk, RoomID: 1, Message: " \n\t"}, apperr.ErrEmptyMessage, 400},
		{"too long", f.Bob, chat.Input{Type: proto.MsgTalk, RoomID: 1, Message: strings.Repeat("가", chat.MaxMessageRunes+1)}, apperr.ErrMessageTooLong, 413},
		{"bad utf-8", f.Bob, chat.Input{Type: proto.MsgTalk, RoomID: 1, Message: "a\xffb"}, apperr.ErrBadRequest, 400},
		{"bad type", f.Bob, chat.Input{Type: "SHOUT", RoomID: 1, Message: "x"}, apperr.ErrBadMessageType, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.Chat.Post(ctx, tt.u, tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Post = %v, want %v", err, tt.want)
			}
			if got := apperr.HTTPStatus(err); got != tt.status {
				t.Errorf("httpStatus = %d, want %d", got, tt.status)
			}
			if err != nil && apperr.Message(err) == "internal error" {
				t.Errorf("client error %v shown as internal", err)
			}
		})
	}
}

func TestPostStoresThenDelivers(t *testing.T) {
	f := chattest.NewFixture(t, chat.LangEnglish)
	ctx := context.Background()
	in, err := chat.ParseInput([]byte(`{"type":"TALK","roomId":1,"sender":"mallory","message":"hello"}`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := f.Chat.Post(ctx, f.Alice, in)
	if err != nil {
		t.Fatal(err)
	}
	if m.Sender != "alice" {
		t.Fatalf("sender = %q, want the authenticated alice", m.Sender)
	}
	ds := f.Rec.Deliveries()
	if len(ds) != 1 || ds[0].RoomID != 1 {
		t.Fatalf("deliveries = %+v", ds)
	}
	want := fmt.Sprintf(`{"id":%d,"type":"TALK","roomId":1,"sender":"alice","message":"hello","createdAt":"2026-01-02T03:04:05.000Z"}`, m.ID)
	if string(ds[0].Body) != want {
		t.Fatalf("published\n%s\nwant\n%s", ds[0].Body, want)
	}
	// The published message is the stored one.
	hist, err := f.Chat.Messages(ctx, f.Bob, 1, 0, 0, 0)
	if err != nil || len(hist) != 1 || string(hist[0].JSON()) != want {
		t.Fatalf("history = %+v, %v", hist, err)
	}
	m2 := f.Post(t, f.Bob, 1, proto.MsgTalk, "again")
	if m2.ID <= m.ID {
		t.Fatalf("ids not increasing: %d then %d", m.ID, m2.ID)
	}
	if dest := proto.RoomDestination(5); dest != "/sub/chat/room/5" {
		t.Fatalf("roomDestination = %q", dest)
	}
	for dest, want := range map[string]int64{"/sub/chat/room/5": 5, "/sub/chat/room/x": 0, "/sub/chat/room/": 0, "/topic/x": 0, "/sub/chat/room/-1": 0,
		"/sub/chat/room/05": 0, "/sub/chat/room/5/presence": 5, "/sub/chat/room/5/typing": 5, "/sub/chat/room/5/other": 0} {
		if id, _, _ := chat.ParseRoomDestination(dest); id != want {
			t.Errorf("ParseRoomDestination(%q) = %d, want %d", dest, id, want)
		}
	}
}

func TestPresenceText(t *testing.T) {
	tests := []struct {
		lang, typ, want string
	}{
		{chat.LangEnglish, proto.MsgEnter, "bob joined."},
		{chat.LangEnglish, proto.MsgLeave, "bob left."},
		{chat.LangKorean, proto.MsgEnter, "bob님이 입장하셨습니다."},
		{chat.LangKorean, proto.MsgLeave, "bob님이 퇴장하셨습니다."},
	}
	for _, tt := range tests {
		t.Run(tt.lang+"/"+tt.typ, func(t *testing.T) {
			f := chattest.NewFixture(t, tt.lang)
			// The client's text is ignored for ENTER and LEAVE.
			m := f.Post(t, f.Bob, 1, tt.typ, "I am the walrus")
			if m.Message != tt.want {
				t.Fatalf("Post text = %q, want %q", m.Message, tt.want)
			}
			if tt.typ != proto.MsgEnter {
				return
			}
			r := f.Room(t, f.Alice, "room", store.RoomPublic)
			if err := f.Chat.Join(context.Background(), f.Bob, r.ID); err != nil {
				t.Fatal(err)
			}
			hist, _ := f.Chat.Messages(context.Background(), f.Bob, r.ID, 0, 0, 0)
			if len(hist) != 1 || hist[0].Message != tt.want || hist[0].Type != proto.MsgEnter {
				t.Fatalf("Join wrote %+v", hist)
			}
		})
	}
	if _, err := chat.New(nil, chat.Config{Lang: "fr"}); err == nil {
		t.Fatal("unsupported language accepted")
	}
}

func TestHistoryPaging(t *testing.T) {
	f := chattest.NewFixture(t, chat.LangEnglish)
	ctx := context.Background()
	var ids []int64
	for i := range 250 {
		ids = append(ids, f.Post(t, f.Alice, 1, proto.MsgTalk, fmt.Sprint("m", i)).ID)
	}
	pageIDs := func(ms []store.StoredMessage) []int64 {
		var out []int64
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	tests := []struct {
		name          string
		before, after int64
		limit         int
		want          []int64
	}{
		{"default newest 50", 0, 0, 0, ids[200:]},
		{"newest 3", 0, 0, 3, ids[247:]},
		{"before", ids[10], 0, 3, ids[7:10]},
		{"before near start", ids[2], 0, 10, ids[:2]},
		{"after", 0, ids[10], 3, ids[11:14]},
		{"after near end", 0, ids[248], 10, ids[249:]},
		{"after the last", 0, ids[249], 10, nil},
		{"limit capped at 200", 0, 0, 1000, ids[50:]},
		{"after capped at 200", 0, ids[0], 1000, ids[1:201]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := f.Chat.Messages(ctx, f.Bob, 1, tt.before, tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got := pageIDs(ms); !slices.Equal(got, tt.want) {
				t.Fatalf("got %d ids %v…, want %d", len(got), got[:min(len(got), 5)], len(tt.want))
			}
		})
	}
	if _, err := f.Chat.Messages(ctx, f.Bob, 1, 5, 5, 10); !errors.Is(err, apperr.ErrBadRequest) {
		t.Fatalf("before and after = %v", err)
	}
	private := f.Room(t, f.Alice, "secret", store.RoomPrivate)
	if _, err := f.Chat.Messages(ctx, f.Bob, private.ID, 0, 0, 0); !errors.Is(err, apperr.ErrNotMember) {
		t.Fatalf("private history for non-member = %v", err)
	}
	after, err := f.Chat.MessagesAfter(ctx, 1, ids[245], 100)
	if err != nil || !slices.Equal(pageIDs(after), ids[246:]) {
		t.Fatalf("MessagesAfter = %v, %v", pageIDs(after), err)
	}
	from0, err := f.Chat.MessagesSince(ctx, f.Bob, 1, 0, 5)
	if err != nil || !slices.Equal(pageIDs(from0), ids[:5]) {
		t.Fatalf("MessagesSince(0) = %v, %v", pageIDs(from0), err)
	}
	if _, err := f.Chat.MessagesSince(ctx, f.Bob, private.ID, 0, 5); !errors.Is(err, apperr.ErrNotMember) {
		t.Fatalf("MessagesSince private = %v", err)
	}
}

func TestSearchOnlyReadableRooms(t *testing.T) {
	f := chattest.NewFixture(t, chat.LangEnglish)
	ctx := context.Background()
	private := f.Room(t, f.Alice, "secret", store.RoomPrivate)
	dm, _ := f.Chat.OpenDM(ctx, f.Alice, "carol")
	pub := f.Post(t, f.Alice, 1, proto.MsgTalk, "banana bread recipe")
	priv := f.Post(t, f.Alice, private.ID, proto.MsgTalk, "banana secret plan")
	dmMsg := f.Post(t, f.Alice, dm.ID, proto.MsgTalk, "banana for carol")
	kor := f.Post(t, f.Bob, 1, proto.MsgTalk, "서울에서 만나요")

	tests := []struct {
		name string
		u    store.User
		q    string
		want []int64
	}{
		{"public only for bob", f.Bob, "banana", []int64{pub.ID}},
		{"alice sees her rooms", f.Alice, "banana", []int64{dmMsg.ID, priv.ID, pub.ID}},
		{"carol sees dm", f.Carol, "banana", []int64{dmMsg.ID, pub.ID}},
		{"all words required", f.Alice, "banana secret", []int64{priv.ID}},
		{"prefix", f.Bob, "ban rec", []int64{pub.ID}},
		{"case-insensitive", f.Bob, "BANANA", []int64{pub.ID}},
		{"korean stem", f.Carol, "서울", []int64{kor.ID}},
		{"fts syntax is text", f.Bob, `banana OR secret`, nil},
		{"quotes are text", f.Bob, `"banana`, []int64{pub.ID}},
		{"no hit", f.Bob, "kiwi", nil},
		{"enter text not indexed", f.Bob, "joined", nil},
	}
	f.Post(t, f.Bob, 1, proto.MsgEnter, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := f.Chat.Search(ctx, tt.u, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, m := range ms {
				got = append(got, m.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Search(%q) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
	if _, err := f.Chat.Search(ctx, f.Bob, "  "); !errors.Is(err, apperr.ErrBadRequest) {
		t.Fatalf("empty search = %v", err)
	}
}

func TestUnreadCounts(t *testing.T) {
	f := chattest.NewFixture(t, chat.LangEnglish)
	ctx := context.Background()
	r := f.Room(t, f.Alice, "team", store.RoomPublic)
	if err := f.Chat.Join(ctx, f.Bob, r.ID); err != nil {
		t.Fatal(err)
	}
	var last store.StoredMessage
	for i := range 3 {
		last = f.Post(t, f.Bob, r.ID, proto.MsgTalk, fmt.Sprint("hi ", i))
	}
	f.Post(t, f.Alice, r.ID, proto.MsgTalk, "my own")
	f.Post(t, f.Bob, r.ID, proto.MsgLeave, "")

	unread := func(u store.User) (int, bool) {
		t.Helper()
		rs, err := f.Chat.Rooms(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range rs {
			if s.ID == r.ID {
				return s.Unread, s.Member
			}
		}
		t.Fatalf("%s does not see room %d", u.Username, r.ID)
		return 0, false
	}
	if n, member := unread(f.Alice); n != 3 || !member {
		t.Fatalf("alice unread = %d (member %v), want 3: bob's TALKs, not her own, not ENTER/LEAVE", n, member)
	}
	if n, _ := unread(f.Bob); n != 1 {
		t.Fatalf("bob unread = %d, want alice's 1", n)
	}
	if n, member := unread(f.Carol); n != 0 || member {
		t.Fatalf("carol (not a member) unread = %d, member %v", n, member)
	}
	if err := f.Chat.MarkRead(ctx, f.Alice, r.ID, last.ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := unread(f.Alice); n != 0 {
		t.Fatalf("after MarkRead unread = %d", n)
	}
	if err := f.Chat.MarkRead(ctx, f.Alice, r.ID, 1); err != nil { // never moves back
		t.Fatal(err)
	}
	if n, _ := unread(f.Alice); n != 0 {
		t.Fatalf("MarkRead moved the position back: unread = %d", n)
	}
	if err := f.Chat.MarkRead(ctx, f.Carol, r.ID, last.ID); !errors.Is(err, apperr.ErrNotMember) {
		t.Fatalf("MarkRead by non-member = %v", err)
	}
	if err := f.Chat.MarkRead(ctx, f.Carol, 999, 1); !errors.Is(err, apperr.ErrUnknownRoom) {
		t.Fatalf("MarkRead unknown room = %v", err)
	}
}

func TestMentionedNames(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"hi @bob", []string{"bob"}},
		{"@bob, @carol and @bob again", []string{"bob", "carol"}},
		{"@Bob @bob", []string{"Bob"}},
		{"mail bob@example.com", nil},
		{"end of sentence @bob.", []string{"bob"}},
		{"@김철수 안녕", []string{"김철수"}},
		{"(@bob)", []string{"bob"}},
		{"@ alone", nil},
		{"@@bob", []string{"bob"}},
		{strings.Repeat("@u ", 1) + "@a @b @c @d @e @f @g @h @i @j @k @l @m @n @o @p @q @r @s @t @v @w", nil},
	}
	for _, tt := range tests[:len(tests)-1] {
		t.Run(tt.in, func(t *testing.T) {
			if got := chat.MentionedNames(tt.in); !slices.Equal(got, tt.want) {
				t.Fatalf("mentionedNames = %v, want %v", got, tt.want)
			}
		})
	}
	if got := chat.MentionedNames(tests[len(tests)-1].in); len(got) != chat.MaxMentionsPerMessage {
		t.Fatalf("%d mentions, want the cap %d", len(got), chat.MaxMentionsPerMessage)
	}
}

func TestNotifications(t *testing.T) {
	f := chattest.NewFixture(t, chat.LangEnglish)
	ctx := context.Background()

	hooks := make(chan []byte, 10)
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hooks <- b
	}))
	defer hookSrv.Close()
	// The fixture allows 127.0.0.1 with an unguarded client; a loopback
	// target cannot be set through SetWebhook (webhookguard_test.go), so
	// it goes straight into the store.
	if err := f.St.SetWebhook(ctx, f.Bob.ID, hookSrv.URL+"/hook"); err != nil {
		t.Fatal(err)
	}
	if err := f.Chat.SetWebhook(ctx, f.Bob, "ftp://x"); !errors.Is(err, apperr.ErrBadRequest) {
		t.Fatalf("ftp webhook = %v", err)
	}

	// Offline mention: stored, webhook POSTed, nothing live.
	m := f.Post(t, f.Alice, 1, proto.MsgTalk, "hey @bob and @alice and @nobody")
	select {
	case b := <-hooks:
		var n store.Notification
		if err := json.Unmarshal(b, &n); err != nil || n.Reason != store.ReasonMention || n.Message.ID != m.ID || n.ID == 0 {
			t.Fatalf("webhook body %s (%v)", b, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook POST")
	}
	if got := f.Rec.Notifications(); len(got) != 0 {
		t.Fatalf("live notifications for offline users: %+v", got)
	}
	// Self-mentions and unknown names notify nobody.
	if ns, _ := f.Chat.PendingNotifications(ctx, f.Alice); len(ns) != 0 {
		t.Fatalf("alice notified about her own message: %+v", ns)
	}

	// DM to offline carol.
	dm, _ := f.Chat.OpenDM(ctx, f.Alice, "carol")
	dmMsg := f.Post(t, f.Alice, dm.ID, proto.MsgTalk, "psst @carol")

	// A mention in a private room bob cannot read notifies nobody.
	priv := f.Room(t, f.Alice, "secret", store.RoomPrivate)
	f.Post(t, f.Alice, priv.ID, proto.MsgTalk, "@bob must not see this")

	// Online mention: live, not stored.
	f.Rec.SetOnline("carol", true)
	live := f.Post(t, f.Bob, 1, proto.MsgTalk, "@carol you there?")
	got := f.Rec.Notifications()
	if len(got) != 1 || got[0].User != "carol" || !bytes.Contains(got[0].Body, []byte(fmt.Sprintf(`"id":%d`, live.ID))) {
		t.Fatalf("live notifications = %+v", got)
	}

	bobs, _ := f.Chat.PendingNotifications(ctx, f.Bob)
	if len(bobs) != 1 || bobs[0].Message.ID != m.ID || bobs[0].Reason != store.ReasonMention {
		t.Fatalf("bob pending = %+v", bobs)
	}
	carols, _ := f.Chat.PendingNotifications(ctx, f.Carol)
	if len(carols) != 1 || carols[0].Message.ID != dmMsg.ID || carols[0].Reason != store.ReasonDM {
		t.Fatalf("carol pending = %+v (the DM notifies once, as dm, though it also mentions her)", carols)
	}

	// Bob comes back: pending ones are delivered once.
	n, err := f.Chat.DeliverPending(ctx, f.Bob)
	if err != nil || n != 1 {
		t.Fatalf("DeliverPending = %d, %v", n, err)
	}
	got = f.Rec.Notifications()
	if last := got[len(got)-1]; last.User != "bob" || !bytes.Contains(last.Body, []byte(`"reason":"mention"`)) {
		t.Fatalf("delivered %+v", last)
	}
	if n, _ := f.Chat.DeliverPending(ctx, f.Bob); n != 0 {
		t.Fatalf("delivered %d twice", n)
	}
}

func TestRoomOperations(t *testing.T) {
	f := chattest.NewFixture(t, chat.LangEnglish)
	ctx := context.Background()
	guest, err := f.Auth.Guest(ctx, "visitor")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("create validation", func(t *testing.T) {
		for _, nr := range []chat.NewRoom{{Name: ""}, {Name: strings.Repeat("x", chat.MaxRoomNameRunes+1)}, {Name: "a", Kind: "dm"}, {Name: "a\x00"}} {
			if _, err := f.Chat.CreateRoom(ctx, f.Bob, nr); !errors.Is(err, apperr.ErrBadRequest) {
				t.Errorf("CreateRoom(%+v) = %v", nr, err)
			}
		}
		if _, err := f.Chat.CreateRoom(ctx, guest, chat.NewRoom{Name: "g"}); !errors.Is(err, apperr.ErrForbidden) {
			t.Errorf("guest CreateRoom = %v", err)
		}
	})

	r := f.Room(t, f.Bob, "bobs", store.RoomPublic)
	t.Run("update permissions", func(t *testing.T) {
		name := "renamed"
		if _, err := f.Chat.UpdateRoom(ctx, f.Carol, r.ID, store.RoomUpdate{Name: &name}); !errors.Is(err, apperr.ErrForbidden) {
			t.Fatalf("carol renames = %v", err)
		}
		got, err := f.Chat.UpdateRoom(ctx, f.Bob, r.ID, store.RoomUpdate{Name: &name})
		if err != nil || got.Name != "renamed" {
			t.Fatalf("creator renames = %+v, %v", got, err)
		}
		topic := "news"
		got, err = f.Chat.UpdateRoom(ctx, f.Alice, r.ID, store.RoomUpdate{Topic: &topic})
		if err != nil || got.Topic != "news" || got.Name != "renamed" {
			t.Fatalf("admin sets topic = %+v, %v", got, err)
		}
	})

	t.Run("join and leave", func(t *testing.T) {
		if err := f.Chat.Join(ctx, f.Carol, r.ID); err != nil {
			t.Fatal(err)
		}
		if err := f.Chat.Join(ctx, f.Carol, r.ID); err != nil {
			t.Fatalf("second join = %v", err)
		}
		if err := f.Chat.Leave(ctx, f.Carol, r.ID); err != nil {
			t.Fatal(err)
		}
		if err := f.Chat.Leave(ctx, f.Carol, r.ID); !errors.Is(err, apperr.ErrNotMember) {
			t.Fatalf("second leave = %v", err)
		}
		hist, _ := f.Chat.Messages(ctx, f.Carol, r.ID, 0, 0, 0)
		if len(hist) != 2 || hist[0].Type != proto.MsgEnter || hist[1].Type != proto.MsgLeave {
			t.Fatalf("history %+v, want one ENTER and one LEAVE", hist)
		}
	})

	t.Run("private membership", func(t *testing.T) {
		p := f.Room(t, f.Alice, "staff", store.RoomPrivate)
		if err := f.Chat.Join(ctx, f.Bob, p.ID); !errors.Is(err, apperr.ErrNotMember) {
			t.Fatalf("join private = %v", err)
		}
		if err := f.Chat.CanRead(ctx, f.Bob, p.ID); !errors.Is(err, apperr.ErrNotMember) {
			t.Fatalf("CanRead = %v", err)
		}
		if err := f.Chat.AddMember(ctx, f.Carol, p.ID, "bob"); !errors.Is(err, apperr.ErrNotMember) {
			t.Fatalf("outsider adds = %v", err)
		}
		if err := f.Chat.AddMember(ctx, f.Alice, p.ID, "bob"); err != nil {
			t.Fatal(err)
		}
		if err := f.Chat.CanPost(ctx, f.Bob, p.ID); err != nil {
			t.Fatalf("CanPost after add = %v", err)
		}
		if err := f.Chat.AddMember(ctx, f.Alice, p.ID, "visitor"); !errors.Is(err, apperr.ErrForbidden) {
			t.Fatalf("guest added to private = %v", err)
		}
	})

	t.Run("dm", func(t *testing.T) {
		a, err := f.Chat.OpenDM(ctx, f.Alice, "BOB")
		if err != nil {
			t.Fatal(err)
		}
		b, err := f.Chat.OpenDM(ctx, f.Bob, "alice")
		if err != nil || b.ID != a.ID || a.Kind != store.RoomDM {
			t.Fatalf("dm rooms %+v and %+v (%v)", a, b, err)
		}
		if _, err := f.Chat.OpenDM(ctx, f.Alice, "alice"); !errors.Is(err, apperr.ErrBadRequest) {
			t.Fatalf("dm self = %v", err)
		}
		if _, err := f.Chat.OpenDM(ctx, f.Alice, "ghost"); !errors.Is(err, apperr.ErrUnknownUser) {
			t.Fatalf("dm unknown = %v", err)
		}
		rs, _ := f.Chat.Rooms(ctx, f.Bob)
		i := slices.IndexFunc(rs, func(s store.RoomSummary) bool { return s.ID == a.ID })
		if i < 0 || rs[i].DMWith != "alice" {
			t.Fatalf("bob's rooms %+v", rs)
		}
		crs, _ := f.Chat.Rooms(ctx, f.Carol)
		if slices.ContainsFunc(crs, func(s store.RoomSummary) bool { return s.ID == a.ID }) {
			t.Fatal("carol sees the alice–bob DM")
		}
	})

	t.Run("guest posts in public", func(t *testing.T) {
		m, err := f.Chat.Post(ctx, guest, chat.Input{Type: proto.MsgTalk, RoomID: 1, Sender: "alice", Message: "hello"})
		if err != nil || m.Sender != "visitor" {
			t.Fatalf("guest post = %+v, %v", m, err)
		}
	})
}

func TestExportRoom(t *testing.T) {
	f := chattest.NewFixture(t, chat.LangEnglish)
	ctx := context.Background()
	const n = store.StorePageSize + 5 // crosses a page boundary
	for i := range n {
		if _, err := storetest.InsertMessage(ctx, f.St, 1, fmt.Sprint("m", i)); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := f.Chat.ExportRoom(ctx, f.Bob, 1, &buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Room     store.Room            `json:"room"`
		Messages []store.StoredMessage `json:"messages"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("export is not JSON: %v", err)
	}
	if doc.Room.ID != 1 || len(doc.Messages) != n || doc.Messages[0].Message != "m0" || doc.Messages[n-1].Message != fmt.Sprint("m", n-1) {
		t.Fatalf("export: room %+v, %d messages", doc.Room, len(doc.Messages))
	}
	p := f.Room(t, f.Alice, "p", store.RoomPrivate)
	if err := f.Chat.ExportRoom(ctx, f.Bob, p.ID, io.Discard); !errors.Is(err, apperr.ErrNotMember) {
		t.Fatalf("export private = %v", err)
	}
}

func TestRetention(t *testing.T) {
	f := chattest.NewFixture(t, chat.LangEnglish)
	ctx := context.Background()
	f.Post(t, f.Alice, 1, proto.MsgTalk, "old")
	f.Clock.Advance(31 * 24 * time.Hour)
	keep := f.Post(t, f.Alice, 1, proto.MsgTalk, "new")
	if _, err := f.Chat.PurgeOlderThan(ctx, 0); !errors.Is(err, apperr.ErrBadRequest) {
		t.Fatalf("0 days = %v", err)
	}
	n, err := f.Chat.PurgeOlderThan(ctx, 30)
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v", n, err)
	}
	ms, _ := f.Chat.Messages(ctx, f.Alice, 1, 0, 0, 0)
	if len(ms) != 1 || ms[0].ID != keep.ID {
		t.Fatalf("left %+v", ms)
	}
}

func TestChatConcurrentPosts(t *testing.T) {
	f := chattest.NewFixture(t, chat.LangEnglish)
	ctx := context.Background()
	const senders, perSender = 8, 200
	users := []store.User{f.Alice, f.Bob, f.Carol}
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			u := users[g%len(users)]
			var last int64
			for i := range perSender {
				m, err := f.Chat.Post(ctx, u, chat.Input{Type: proto.MsgTalk, RoomID: 1, Message: fmt.Sprint(g, "/", i)})
				if err != nil {
					t.Error(err)
					return
				}
				if m.ID <= last {
					t.Errorf("sender %d: id %d after %d", g, m.ID, last)
				}
				last = m.ID
			}
		})
	}
	wg.Wait()
	ds := f.Rec.Deliveries()
	if len(ds) != senders*perSender {
		t.Fatalf("%d deliveries, want %d", len(ds), senders*perSender)
	}
	var prev int64
	for _, d := range ds {
		var m store.StoredMessage
		if err := json.Unmarshal(d.Body, &m); err != nil {
			t.Fatal(err)
		}
		if m.ID <= prev {
			t.Fatalf("delivered id %d after %d: publication out of id order", m.ID, prev)
		}
		prev = m.ID
	}
	var count int
	f.St.Rdb.QueryRow(`SELECT count(*) FROM messages`).Scan(&count)
	if count != senders*perSender {
		t.Fatalf("stored %d, want %d", count, senders*perSender)
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 3 {
		s, err := store.OpenDir(context.Background(), t.TempDir(), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := chat.New(s, chat.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := storetest.InsertMessage(context.Background(), s, 1, "x"); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	testutil.CheckFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestRefusedSendDoesNotDisturbItsGroup(t *testing.T) {
	f := chattest.NewFixture(t, chat.LangEnglish)
	ctx := context.Background()
	private := f.Room(t, f.Alice, "secret", store.RoomPrivate)
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Go(func() {
			u, room := f.Bob, int64(1)
			if i%2 == 1 {
				room = private.ID // bob is not a member: refused
			}
			_, errs[i] = f.Chat.Post(ctx, u, chat.Input{Type: proto.MsgTalk, RoomID: room, Message: fmt.Sprint(i)})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 0 && err != nil {
			t.Errorf("post %d to a public room failed: %v", i, err)
		}
		if i%2 == 1 && !errors.Is(err, apperr.ErrNotMember) {
			t.Errorf("post %d to the private room = %v, want errNotMember", i, err)
		}
	}
	ms, _ := f.Chat.Messages(ctx, f.Bob, 1, 0, 0, 200)
	if len(ms) != 20 {
		t.Fatalf("%d messages stored, want 20", len(ms))
	}
	if len(f.Rec.Deliveries()) != 20 {
		t.Fatalf("%d deliveries, want 20 (refused sends are not published)", len(f.Rec.Deliveries()))
	}
}

func TestDeletedUserKeepsMessages(t *testing.T) {
	f := chattest.NewFixture(t, chat.LangEnglish)
	ctx := context.Background()
	r := f.Room(t, f.Bob, "bobs room", store.RoomPublic)
	m := f.Post(t, f.Bob, r.ID, proto.MsgTalk, "remember me @carol")
	dm, _ := f.Chat.OpenDM(ctx, f.Alice, "bob")
	f.Post(t, f.Bob, dm.ID, proto.MsgTalk, "dm text")
	if err := f.St.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	ms, err := f.Chat.Messages(ctx, f.Carol, r.ID, 0, 0, 0)
	if err != nil || len(ms) != 1 || ms[0].ID != m.ID || ms[0].Sender != "bob" || ms[0].UserID != 0 {
		t.Fatalf("after deleting bob: %+v, %v", ms, err)
	}
	if got, err := f.Chat.Room(ctx, f.Carol, r.ID); err != nil || got.CreatedBy != 0 {
		t.Fatalf("room after its creator left: %+v, %v", got, err)
	}
	// carol's notification about bob's message survives bob.
	if ns, _ := f.Chat.PendingNotifications(ctx, f.Carol); len(ns) != 1 {
		t.Fatalf("carol's notifications: %+v", ns)
	}
}

func FuzzParseChatInput(f *testing.F) {
	for _, seed := range []string{
		`{"type":"TALK","roomId":5,"sender":"x","message":"hi"}`,
		`{"type":"ENTER","roomId":"7"}`,
		`{"type":"leave","roomId":1,"message":"\u0000"}`,
		`{"type":"TALK","roomId":-1}`,
		`{"roomId":1e3}`,
		`[]`, `null`, ``, `{"type":"TALK","roomId":"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := chat.ParseInput(body)
		if err != nil {
			if apperr.Message(err) == "internal error" {
				t.Fatalf("input error %v is not a public error", err)
			}
			return
		}
		if in.RoomID <= 0 || (in.Type != proto.MsgEnter && in.Type != proto.MsgTalk && in.Type != proto.MsgLeave) {
			t.Fatalf("accepted %+v from %q", in, body)
		}
	})
}

// TestInsertAsMember pins the one-statement path of a chat send: it stores
// exactly the sends that need nothing but the insert, and stores nothing
// for the rest, which the full path then checks and refuses or completes
// (joining a public room, notifying a DM's peer).
func TestInsertAsMember(t *testing.T) {
	f := chattest.NewFixture(t, chat.LangEnglish)
	ctx := context.Background()
	public := f.Room(t, f.Bob, "public", store.RoomPublic)
	private := f.Room(t, f.Bob, "private", store.RoomPrivate)
	archived := f.Room(t, f.Bob, "archived", store.RoomPublic)
	yes := true
	if _, err := f.Chat.UpdateRoom(ctx, f.Bob, archived.ID, store.RoomUpdate{Archived: &yes}); err != nil {
		t.Fatal(err)
	}
	dm, err := f.Chat.OpenDM(ctx, f.Bob, "carol")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		u      store.User
		roomID int64
		stored bool
	}{
		{"member of a public room", f.Bob, public.ID, true},
		{"member of a private room", f.Bob, private.ID, true},
		{"not a member of a public room (full path joins)", f.Carol, public.ID, false},
		{"not a member of a private room", f.Carol, private.ID, false},
		{"member of an archived room", f.Bob, archived.ID, false},
		{"member of a DM (full path notifies the peer)", f.Bob, dm.ID, false},
		{"unknown room", f.Bob, 9999, false},
		{"no user", store.User{}, public.ID, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := store.StoredMessage{Type: proto.MsgTalk, RoomID: tc.roomID, UserID: tc.u.ID, Sender: tc.u.Username, Message: "hello " + tc.name}
			var stored bool
			err := f.St.Write(ctx, func(tx *sql.Tx) error {
				var err error
				stored, err = f.St.InsertAsMemberTx(ctx, tx, &m, f.St.NowMS())
				return err
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if stored != tc.stored {
				t.Fatalf("stored = %v, want %v", stored, tc.stored)
			}
			var n int
			var body string
			err = f.St.Rdb.QueryRowContext(ctx, `SELECT count(*), coalesce(max(body), '') FROM messages WHERE body = ?`, m.Message).Scan(&n, &body)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 1, false: 0}[tc.stored]; n != want {
				t.Fatalf("%d rows with the message, want %d", n, want)
			}
			if tc.stored && (m.ID == 0 || m.CreatedAt.IsZero()) {
				t.Errorf("stored message without id or time: %+v", m)
			}
		})
	}
	// A stored send is found by search like any other: the transaction
	// indexed it.
	hits, err := f.Chat.Search(ctx, f.Bob, "public")
	if err != nil || len(hits) != 1 || hits[0].Message != "hello member of a public room" {
		t.Fatalf("search for the stored message: %v, %v", hits, err)
	}
}
