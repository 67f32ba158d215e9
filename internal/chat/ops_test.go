package chat_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"stompbox/internal/apperr"
	"stompbox/internal/chat"
	"stompbox/internal/chat/chattest"
	"stompbox/internal/proto"
	"stompbox/internal/store"
	"sync"
	"testing"
	"time"
)

// chatOpKinds are the kinds of the chat service's ops.
var chatOpKinds = []string{"chat-post", "room-create", "room-update", "room-add-member", "room-leave", "room-remove-member", "dm-open", "msg-edit", "msg-delete", "msg-react"}

func TestChatOpsRoundTrip(t *testing.T) {
	name, topic, archived := "renamed", "a topic", true
	tests := []store.Op{
		&chat.MarkReadOp{RoomID: 3, UserID: 4, MessageID: 5},
		&chat.PostOp{Type: proto.MsgTalk, RoomID: 5, UserID: 2, Sender: "bob", Message: "hi @carol 👋", ReplyTo: 9, Files: []int64{3, 4},
			Mentions: []chat.PostMention{{UserID: 3, Username: "carol", Webhook: "https://example.test/hook"}}, Online: []string{"carol", "dave"}},
		&chat.PostOp{Type: proto.MsgEnter, RoomID: 1, UserID: 1, Sender: "alice", Message: "alice님이 입장하셨습니다."},
		&chat.RoomCreateOp{UserID: 2, Admin: true, Name: "team", Topic: "plans", Kind: store.RoomPrivate, MaxRooms: 200},
		&chat.RoomUpdateOp{RoomID: 5, Update: store.RoomUpdate{Name: &name, Topic: &topic, Archived: &archived}},
		&chat.RoomUpdateOp{RoomID: 5, Update: store.RoomUpdate{Topic: &topic}},
		&chat.RoomAddMemberOp{RoomPresence: chat.RoomPresence{RoomID: 5, UserID: 3, Username: "carol", Message: "carol joined."}},
		&chat.RoomLeaveOp{RoomPresence: chat.RoomPresence{RoomID: 5, UserID: 3, Username: "carol", Message: "carol left."}},
		&chat.RoomRemoveMemberOp{RoomPresence: chat.RoomPresence{RoomID: 5, UserID: 3, Username: "carol", Message: "carol left."}, By: 2},
		&chat.DmOpenOp{UserID: 1, Username: "alice", OtherID: 2, OtherName: "bob"},
		&chat.MsgEditOp{RoomID: 5, MsgID: 42, UserID: 3, Username: "carol", Text: "fixed", WindowMS: 600_000},
		&chat.MsgDeleteOp{RoomID: 5, MsgID: 42, UserID: 1, Username: "alice", Admin: true},
		&chat.MsgReactOp{RoomID: 5, MsgID: 42, UserID: 2, Username: "bob", Emoji: "👍", Add: true},
	}
	covered := map[string]bool{}
	for _, op := range tests {
		t.Run(op.OpKind(), func(t *testing.T) {
			b, err := store.EncodeOp(op, 1767323045123, "node-a", "")
			if err != nil {
				t.Fatal(err)
			}
			got, env, err := store.DecodeOp(b)
			if err != nil {
				t.Fatal(err)
			}
			if env.At != 1767323045123 || env.Node != "node-a" || env.Kind != op.OpKind() {
				t.Errorf("envelope %+v", env)
			}
			if !reflect.DeepEqual(got, op) {
				t.Errorf("decoded %#v, want %#v", got, op)
			}
		})
		covered[op.OpKind()] = true
	}
	for _, k := range chatOpKinds {
		if !covered[k] {
			t.Errorf("kind %s has no round-trip case", k)
		}
		if store.NewOpOfKind(k) == nil {
			t.Errorf("kind %s is not in opKinds", k)
		}
	}
}

// replayReplicator stands in for the cluster log in a test: each op
// submitted on store a is encoded, applied on a from the "log" (replay),
// and decoded and applied on b, in submission order.
type replayReplicator struct {
	a, b *store.Store

	mu    sync.Mutex
	kinds map[string]int // ops seen, by kind
	keys  []string       // the non-empty de-duplication keys, in order
}

func (r *replayReplicator) WaitCaughtUp(context.Context) {}

func (r *replayReplicator) Submit(ctx context.Context, op store.Op, dedupKey string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := r.a.NowMS()
	buf, err := store.EncodeOp(op, at, "a", "")
	if err != nil {
		return err
	}
	r.kinds[op.OpKind()]++
	if dedupKey != "" {
		r.keys = append(r.keys, dedupKey)
	}
	// a applies the submitted value: its caller reads the results from it.
	if err := applyReplayed(ctx, r.a, op, at); err != nil {
		return fmt.Errorf("apply on a: %w", err)
	}
	onB, env, err := store.DecodeOp(buf)
	if err != nil {
		return err
	}
	if err := applyReplayed(ctx, r.b, onB, env.At); err != nil {
		return fmt.Errorf("apply on b: %w", err)
	}
	return nil
}

// applyReplayed applies op on s as a node applies an op from the cluster log.
func applyReplayed(ctx context.Context, s *store.Store, op store.Op, at int64) error {
	return s.ApplyAt(ctx, op, at, true)
}

// dumpRows reads every row of query as text, for comparing two databases.
func dumpRows(t *testing.T, s *store.Store, query string) []string {
	t.Helper()
	rows, err := s.Rdb.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%v", vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestChatOpsReplayDeterministic runs a scripted session through node a's
// chat service and replays every op on node b, whose clock, language,
// limits and online users all differ from a's: both databases and both
// nodes' deliveries must come out identical. Any apply that reads the
// local clock, the local configuration or who is online locally breaks
// it.
func TestChatOpsReplayDeterministic(t *testing.T) {
	ctx := context.Background()
	a := chattest.NewFixture(t, chat.LangEnglish)
	b := chattest.NewFixture(t, chat.LangKorean)
	if a.Alice.ID != b.Alice.ID || a.Bob.ID != b.Bob.ID || a.Carol.ID != b.Carol.ID {
		t.Fatal("the fixtures' users differ")
	}
	b.Clock.Advance(time.Hour + 1234*time.Millisecond)
	a.Chat.MaxRooms, b.Chat.MaxRooms = 2, 0
	a.Chat.EditWindow, b.Chat.EditWindow = 10*time.Minute, 0
	a.Rec.SetOnline("bob", true)
	b.Rec.SetOnline("carol", true)

	// Carol's uploads to general, made on both nodes before the log starts.
	var uploads [2]int64
	for _, f := range []*chattest.Fixture{a, b} {
		for i, sum := range []string{"abc", "def"} {
			sf := store.StoredFile{RoomID: 1, UserID: f.Carol.ID, Name: sum + ".txt", Size: 3, Type: "text/plain", SHA256: sum}
			if ok, err := f.St.InsertFile(ctx, &sf, 0); err != nil || !ok {
				t.Fatalf("upload: %v %v", ok, err)
			}
			uploads[i] = sf.ID
		}
	}
	rep := &replayReplicator{a: a.St, b: b.St, kinds: map[string]int{}}
	a.St.SetReplicator(rep)

	c := a.Chat
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	post := func(u store.User, in chat.Input) store.StoredMessage {
		t.Helper()
		m, err := c.Post(ctx, u, in)
		must("post "+in.Message, err)
		a.Clock.Advance(1500 * time.Millisecond)
		return m
	}
	room := func(u store.User, name, kind string) store.Room {
		t.Helper()
		r, err := c.CreateRoom(ctx, u, chat.NewRoom{Name: name, Kind: kind})
		must("create "+name, err)
		return r
	}

	hello := post(a.Alice, chat.Input{Type: proto.MsgTalk, RoomID: 1, Message: "hello", DedupKey: "alice-1"})
	team := room(a.Bob, "team", store.RoomPublic)
	secret := room(a.Bob, "secret", store.RoomPrivate)
	if _, err := c.CreateRoom(ctx, a.Bob, chat.NewRoom{Name: "third"}); err == nil {
		t.Fatal("a third room passed a's limit of 2")
	}
	must("add carol", c.AddMember(ctx, a.Bob, secret.ID, "carol"))
	must("join team", c.Join(ctx, a.Carol, team.ID))
	// bob is online on a only, alice on neither: a live and a stored mention.
	plan := post(a.Carol, chat.Input{Type: proto.MsgTalk, RoomID: secret.ID, Message: "@bob @alice the plan"})
	standup := post(a.Carol, chat.Input{Type: proto.MsgTalk, RoomID: team.ID, Message: "@alice @bob standup?"})
	post(a.Bob, chat.Input{Type: proto.MsgTalk, RoomID: team.ID, Message: "yes", ReplyTo: standup.ID})
	// DM peers: bob online on a only, carol on b only.
	dmBob, err := c.OpenDM(ctx, a.Alice, "bob")
	must("dm bob", err)
	dmCarol, err := c.OpenDM(ctx, a.Alice, "carol")
	must("dm carol", err)
	post(a.Alice, chat.Input{Type: proto.MsgTalk, RoomID: dmBob.ID, Message: "psst"})
	post(a.Alice, chat.Input{Type: proto.MsgTalk, RoomID: dmCarol.ID, Message: "psst"})
	if _, err := c.OpenDM(ctx, a.Bob, "alice"); err != nil {
		t.Fatal(err)
	}
	withFile := post(a.Carol, chat.Input{Type: proto.MsgTalk, RoomID: 1, Message: "see file", Attachments: []int64{uploads[0]}})
	post(a.Carol, chat.Input{Type: proto.MsgTalk, RoomID: 1, Attachments: []int64{uploads[1]}})
	topic := "weekly plans"
	_, err = c.UpdateRoom(ctx, a.Bob, team.ID, store.RoomUpdate{Topic: &topic})
	must("update", err)

	_, err = c.React(ctx, a.Bob, secret.ID, plan.ID, "👍", true)
	must("react", err)
	_, err = c.React(ctx, a.Carol, secret.ID, plan.ID, "🎉", true)
	must("react", err)
	_, err = c.React(ctx, a.Bob, secret.ID, plan.ID, "👍", false)
	must("unreact", err)
	a.Clock.Advance(5 * time.Minute)
	_, err = c.Edit(ctx, a.Carol, secret.ID, plan.ID, "@bob the new plan")
	must("edit", err)
	a.Clock.Advance(6 * time.Minute) // past a's window of 10 minutes
	if _, err := c.Edit(ctx, a.Carol, secret.ID, plan.ID, "too late"); !errors.Is(err, apperr.ErrEditTooLate) {
		t.Fatalf("edit after the window: %v", err)
	}
	must("delete", c.Delete(ctx, a.Carol, 1, withFile.ID))
	must("delete hello", c.Delete(ctx, a.Alice, 1, hello.ID))
	must("add alice", c.AddMember(ctx, a.Carol, secret.ID, "alice"))
	must("leave", c.Leave(ctx, a.Carol, secret.ID))
	must("remove alice", c.RemoveMember(ctx, a.Bob, secret.ID, "alice"))
	post(a.Bob, chat.Input{Type: proto.MsgLeave, RoomID: team.ID})

	for _, k := range chatOpKinds {
		if rep.kinds[k] == 0 {
			t.Errorf("the script ran no %s op", k)
		}
	}
	if !slices.Equal(rep.keys, []string{"alice-1"}) {
		t.Errorf("de-duplication keys %q, want the post's", rep.keys)
	}

	for _, q := range []string{
		`SELECT * FROM messages ORDER BY id`,
		`SELECT id, name, topic, kind, archived, dm_key, created_by, CASE WHEN id = 1 THEN 0 ELSE created_at END FROM rooms ORDER BY id`, // room 1 is made by the migration, at each node's own time
		`SELECT * FROM memberships ORDER BY room_id, user_id`,
		`SELECT * FROM reactions ORDER BY message_id, user_id, emoji`,
		`SELECT * FROM notifications ORDER BY id`,
		`SELECT id, message_id FROM files ORDER BY id`,
	} {
		ra, rb := dumpRows(t, a.St, q), dumpRows(t, b.St, q)
		if len(ra) == 0 {
			t.Errorf("%s: no rows", q)
		}
		if !slices.Equal(ra, rb) {
			t.Errorf("%s differs:\na: %q\nb: %q", q, ra, rb)
		}
	}
	if da, db := a.Rec.Deliveries(), b.Rec.Deliveries(); len(da) == 0 || !reflect.DeepEqual(da, db) {
		t.Errorf("deliveries differ or none:\na: %d\nb: %d", len(da), len(db))
		for i := range min(len(da), len(db)) {
			if !reflect.DeepEqual(da[i], db[i]) {
				t.Errorf("first difference: room %d\na: %s\nb: %s", da[i].RoomID, da[i].Body, db[i].Body)
				break
			}
		}
	}
	if na, nb := a.Rec.Notifications(), b.Rec.Notifications(); len(na) == 0 || !reflect.DeepEqual(na, nb) {
		t.Errorf("live notifications differ or none:\na: %q\nb: %q", na, nb)
	}
	if n := dumpRows(t, b.St, `SELECT 1 FROM notifications`); len(n) == 0 {
		t.Error("no stored notifications")
	}
}
