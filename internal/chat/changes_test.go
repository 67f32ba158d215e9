package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"stompbox/internal/apperr"
	"stompbox/internal/auth/authtest"
	"stompbox/internal/chat"
	"stompbox/internal/chat/chattest"
	"stompbox/internal/proto"
	"stompbox/internal/store"
	"strings"
	"testing"
	"time"
)

// changeFixture is a chatFixture with a fourth user, dave (no rights), a
// public room "team" owned by bob, in which carol and dave are members, and
// a private room "secret" of bob's that carol and dave are not in.
type changeFixture struct {
	*chattest.Fixture
	dave         store.User
	team, secret store.Room
}

func newChangeFixture(t *testing.T) *changeFixture {
	t.Helper()
	f := &changeFixture{Fixture: chattest.NewFixture(t, chat.LangEnglish)}
	f.dave = authtest.Register(t, f.Auth, "dave")
	f.team = f.Room(t, f.Bob, "team", store.RoomPublic)
	f.secret = f.Room(t, f.Bob, "secret", store.RoomPrivate)
	for _, u := range []store.User{f.Carol, f.dave} {
		if err := f.Chat.Join(context.Background(), u, f.team.ID); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestMessageChangeAuthorization(t *testing.T) {
	ctx := context.Background()
	f := newChangeFixture(t)
	type setup struct{ carolsTeam, bobsSecret, enter store.StoredMessage }
	tests := []struct {
		name string
		do   func(s setup) error
		want error
	}{
		{"author edits", func(s setup) error {
			_, err := f.Chat.Edit(ctx, f.Carol, f.team.ID, s.carolsTeam.ID, "fixed")
			return err
		}, nil},
		{"room owner cannot edit another's message", func(s setup) error {
			_, err := f.Chat.Edit(ctx, f.Bob, f.team.ID, s.carolsTeam.ID, "mine now")
			return err
		}, apperr.ErrNotAuthor},
		{"administrator cannot edit another's message", func(s setup) error {
			_, err := f.Chat.Edit(ctx, f.Alice, f.team.ID, s.carolsTeam.ID, "mine now")
			return err
		}, apperr.ErrNotAuthor},
		{"empty edit", func(s setup) error {
			_, err := f.Chat.Edit(ctx, f.Carol, f.team.ID, s.carolsTeam.ID, "  ")
			return err
		}, apperr.ErrEmptyMessage},
		{"edit through another room's id", func(s setup) error {
			_, err := f.Chat.Edit(ctx, f.Carol, f.secret.ID, s.carolsTeam.ID, "x")
			return err
		}, apperr.ErrUnknownMessage},
		{"edit an unknown message", func(s setup) error {
			_, err := f.Chat.Edit(ctx, f.Carol, f.team.ID, 999999, "x")
			return err
		}, apperr.ErrUnknownMessage},
		{"edit an ENTER line", func(s setup) error {
			_, err := f.Chat.Edit(ctx, f.Carol, f.team.ID, s.enter.ID, "x")
			return err
		}, apperr.ErrNotChangeable},
		{"non-member edits in a private room", func(s setup) error {
			_, err := f.Chat.Edit(ctx, f.Carol, f.secret.ID, s.bobsSecret.ID, "x")
			return err
		}, apperr.ErrNotMember},
		{"author deletes", func(s setup) error { return f.Chat.Delete(ctx, f.Carol, f.team.ID, s.carolsTeam.ID) }, nil},
		{"room owner deletes", func(s setup) error { return f.Chat.Delete(ctx, f.Bob, f.team.ID, s.carolsTeam.ID) }, nil},
		{"administrator deletes", func(s setup) error { return f.Chat.Delete(ctx, f.Alice, f.team.ID, s.carolsTeam.ID) }, nil},
		{"member without rights cannot delete", func(s setup) error { return f.Chat.Delete(ctx, f.dave, f.team.ID, s.carolsTeam.ID) }, apperr.ErrCannotDelete},
		{"non-member deletes in a private room", func(s setup) error { return f.Chat.Delete(ctx, f.dave, f.secret.ID, s.bobsSecret.ID) }, apperr.ErrNotMember},
		{"delete twice", func(s setup) error {
			if err := f.Chat.Delete(ctx, f.Carol, f.team.ID, s.carolsTeam.ID); err != nil {
				return err
			}
			return f.Chat.Delete(ctx, f.Carol, f.team.ID, s.carolsTeam.ID)
		}, apperr.ErrMessageDeleted},
		{"edit a deleted message", func(s setup) error {
			if err := f.Chat.Delete(ctx, f.Carol, f.team.ID, s.carolsTeam.ID); err != nil {
				return err
			}
			_, err := f.Chat.Edit(ctx, f.Carol, f.team.ID, s.carolsTeam.ID, "back")
			return err
		}, apperr.ErrMessageDeleted},
		{"member reacts", func(s setup) error {
			_, err := f.Chat.React(ctx, f.dave, f.team.ID, s.carolsTeam.ID, "👍", true)
			return err
		}, nil},
		{"non-member of a public room cannot react", func(s setup) error {
			_, err := f.Chat.React(ctx, f.Alice, f.team.ID, s.carolsTeam.ID, "👍", true)
			return err
		}, apperr.ErrNotMember},
		{"non-member of a private room cannot react", func(s setup) error {
			_, err := f.Chat.React(ctx, f.Carol, f.secret.ID, s.bobsSecret.ID, "👍", true)
			return err
		}, apperr.ErrNotMember},
		{"react to a deleted message", func(s setup) error {
			if err := f.Chat.Delete(ctx, f.Carol, f.team.ID, s.carolsTeam.ID); err != nil {
				return err
			}
			_, err := f.Chat.React(ctx, f.dave, f.team.ID, s.carolsTeam.ID, "👍", true)
			return err
		}, apperr.ErrMessageDeleted},
		{"empty emoji", func(s setup) error {
			_, err := f.Chat.React(ctx, f.dave, f.team.ID, s.carolsTeam.ID, "", true)
			return err
		}, apperr.ErrBadEmoji},
		{"emoji too long", func(s setup) error {
			_, err := f.Chat.React(ctx, f.dave, f.team.ID, s.carolsTeam.ID, strings.Repeat("👍", 9), true)
			return err
		}, apperr.ErrBadEmoji},
		{"emoji with a control character", func(s setup) error {
			_, err := f.Chat.React(ctx, f.dave, f.team.ID, s.carolsTeam.ID, "👍\x07", true)
			return err
		}, apperr.ErrBadEmoji},
		{"emoji with a space", func(s setup) error {
			_, err := f.Chat.React(ctx, f.dave, f.team.ID, s.carolsTeam.ID, "a b", true)
			return err
		}, apperr.ErrBadEmoji},
		{"emoji not UTF-8", func(s setup) error {
			_, err := f.Chat.React(ctx, f.dave, f.team.ID, s.carolsTeam.ID, "\xff", true)
			return err
		}, apperr.ErrBadEmoji},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := setup{
				carolsTeam: f.Post(t, f.Carol, f.team.ID, proto.MsgTalk, "hello team"),
				bobsSecret: f.Post(t, f.Bob, f.secret.ID, proto.MsgTalk, "secret plan"),
				enter:      f.Post(t, f.Carol, f.team.ID, proto.MsgEnter, ""),
			}
			before := len(f.Rec.Deliveries())
			err := tt.do(s)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			// A refusal publishes nothing; the cases that delete before the
			// refused step publish that one DELETE.
			if tt.want != nil && len(f.Rec.Deliveries()) > before+1 {
				t.Errorf("a refused change published %d events", len(f.Rec.Deliveries())-before)
			}
		})
	}
	t.Run("archived room", func(t *testing.T) {
		m := f.Post(t, f.Carol, f.team.ID, proto.MsgTalk, "before archiving")
		if _, err := f.Chat.UpdateRoom(ctx, f.Bob, f.team.ID, store.RoomUpdate{Archived: new(true)}); err != nil {
			t.Fatal(err)
		}
		defer f.Chat.UpdateRoom(ctx, f.Bob, f.team.ID, store.RoomUpdate{Archived: new(false)})
		if _, err := f.Chat.Edit(ctx, f.Carol, f.team.ID, m.ID, "x"); !errors.Is(err, apperr.ErrRoomArchived) {
			t.Errorf("edit: %v", err)
		}
		if _, err := f.Chat.React(ctx, f.dave, f.team.ID, m.ID, "👍", true); !errors.Is(err, apperr.ErrRoomArchived) {
			t.Errorf("react: %v", err)
		}
		if err := f.Chat.Delete(ctx, f.Carol, f.team.ID, m.ID); !errors.Is(err, apperr.ErrRoomArchived) {
			t.Errorf("author delete: %v", err)
		}
		if err := f.Chat.Delete(ctx, f.Alice, f.team.ID, m.ID); err != nil {
			t.Errorf("administrator delete: %v", err)
		}
	})
}

func TestEditWindow(t *testing.T) {
	ctx := context.Background()
	f := newChangeFixture(t)
	f.Chat.EditWindow = 10 * time.Minute
	m := f.Post(t, f.Carol, f.team.ID, proto.MsgTalk, "typo")
	f.Clock.Advance(9 * time.Minute)
	if _, err := f.Chat.Edit(ctx, f.Carol, f.team.ID, m.ID, "fixed"); err != nil {
		t.Fatalf("within the window: %v", err)
	}
	f.Clock.Advance(2 * time.Minute)
	if _, err := f.Chat.Edit(ctx, f.Carol, f.team.ID, m.ID, "later"); !errors.Is(err, apperr.ErrEditTooLate) {
		t.Fatalf("after the window: %v", err)
	}
	if err := f.Chat.Delete(ctx, f.Carol, f.team.ID, m.ID); err != nil {
		t.Fatalf("deleting after the window: %v", err)
	}
}

// history returns the room's newest page as bob sees it, by id.
func (f *changeFixture) history(t *testing.T, roomID int64) map[int64]store.StoredMessage {
	t.Helper()
	ms, err := f.Chat.Messages(context.Background(), f.Bob, roomID, 0, 0, 200)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]store.StoredMessage{}
	for _, m := range ms {
		out[m.ID] = m
	}
	return out
}

func (f *changeFixture) lastEvent(t *testing.T) map[string]any {
	t.Helper()
	d := f.Rec.Deliveries()
	var ev map[string]any
	if err := json.Unmarshal(d[len(d)-1].Body, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func (f *changeFixture) searchIDs(t *testing.T, q string) []int64 {
	t.Helper()
	ms, err := f.Chat.Search(context.Background(), f.Bob, q)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

// TestMessageChangesStoredAndPublished: each change is published as its
// event, and history, search, replay and notifications show the final state.
func TestMessageChangesStoredAndPublished(t *testing.T) {
	ctx := context.Background()
	f := newChangeFixture(t)
	m := f.Post(t, f.Carol, f.team.ID, proto.MsgTalk, "lunch at noon @dave")
	plain, _ := json.Marshal(m)
	var keys map[string]any
	json.Unmarshal(plain, &keys)
	if len(keys) != 6 {
		t.Errorf("a plain message has fields beyond the seed's: %s", plain)
	}

	ev, err := f.Chat.Edit(ctx, f.Carol, f.team.ID, m.ID, "lunch at one @dave")
	if err != nil {
		t.Fatal(err)
	}
	got := f.lastEvent(t)
	if got["type"] != chat.MsgEdit || got["messageId"] != float64(m.ID) || got["message"] != "lunch at one @dave" || got["editedAt"] != ev.EditedAt || got["id"] != nil {
		t.Errorf("EDIT event %v", got)
	}
	h := f.history(t, f.team.ID)[m.ID]
	if h.Message != "lunch at one @dave" || h.EditedAt.IsZero() {
		t.Errorf("history after edit: %+v", h)
	}
	if ids := f.searchIDs(t, "noon"); len(ids) != 0 {
		t.Errorf("search finds the old text: %v", ids)
	}
	if ids := f.searchIDs(t, "one"); len(ids) != 1 || ids[0] != m.ID {
		t.Errorf("search for the new text: %v", ids)
	}
	ns, err := f.St.PendingNotifications(ctx, f.dave.ID, 10)
	if err != nil || len(ns) != 1 || ns[0].Message.Message != "lunch at one @dave" {
		t.Errorf("pending notification after edit: %+v %v", ns, err)
	}

	for _, u := range []store.User{f.Bob, f.dave} {
		f.Clock.Advance(time.Second) // reactions are listed in the order they came
		if _, err := f.Chat.React(ctx, u, f.team.ID, m.ID, "👍", true); err != nil {
			t.Fatal(err)
		}
	}
	f.Clock.Advance(time.Second)
	rs, err := f.Chat.React(ctx, f.Bob, f.team.ID, m.ID, "🎉", true)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"emoji":"👍","users":["bob","dave"]},{"emoji":"🎉","users":["bob"]}]`
	if b, _ := json.Marshal(rs); string(b) != want {
		t.Errorf("reactions %s, want %s", b, want)
	}
	if b, _ := json.Marshal(f.history(t, f.team.ID)[m.ID].Reactions); string(b) != want {
		t.Errorf("history reactions %s", b)
	}
	replay, err := f.Chat.MessagesAfter(ctx, f.team.ID, m.ID-1, 10)
	if err != nil || len(replay) == 0 || len(replay[0].Reactions) != 2 {
		t.Errorf("replay after since-id lacks reactions: %+v %v", replay, err)
	}
	if _, err := f.Chat.React(ctx, f.Bob, f.team.ID, m.ID, "👍", true); err != nil {
		t.Errorf("adding the same reaction again: %v", err)
	}
	rs, err = f.Chat.React(ctx, f.Bob, f.team.ID, m.ID, "🎉", false)
	if err != nil || len(rs) != 1 {
		t.Errorf("remove: %v %v", rs, err)
	}
	got = f.lastEvent(t)
	if got["type"] != chat.MsgReaction || got["user"] != "bob" || got["added"] != false || got["emoji"] != "🎉" {
		t.Errorf("REACTION event %v", got)
	}

	if err := f.Chat.Delete(ctx, f.Carol, f.team.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	got = f.lastEvent(t)
	if got["type"] != chat.MsgDelete || got["messageId"] != float64(m.ID) || got["by"] != "carol" {
		t.Errorf("DELETE event %v", got)
	}
	h = f.history(t, f.team.ID)[m.ID]
	if !h.Deleted || h.Message != "" || h.Reactions != nil {
		t.Errorf("history after delete: %+v", h)
	}
	if ids := f.searchIDs(t, "lunch"); len(ids) != 0 {
		t.Errorf("search finds a deleted message: %v", ids)
	}
	if ns, _ := f.St.PendingNotifications(ctx, f.dave.ID, 10); len(ns) != 0 {
		t.Errorf("notification of a deleted message still pending: %+v", ns)
	}
}

func TestReactionLimit(t *testing.T) {
	ctx := context.Background()
	f := newChangeFixture(t)
	m := f.Post(t, f.Carol, f.team.ID, proto.MsgTalk, "vote")
	for i := range store.MaxReactionsPerUser {
		if _, err := f.Chat.React(ctx, f.dave, f.team.ID, m.ID, string(rune('😀'+i)), true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.Chat.React(ctx, f.dave, f.team.ID, m.ID, "🦀", true); !errors.Is(err, apperr.ErrTooManyReactions) {
		t.Fatalf("one more: %v", err)
	}
	if _, err := f.Chat.React(ctx, f.dave, f.team.ID, m.ID, "😀", true); err != nil {
		t.Fatalf("one already there: %v", err)
	}
}

func TestReplies(t *testing.T) {
	ctx := context.Background()
	f := newChangeFixture(t)
	orig := f.Post(t, f.Carol, f.team.ID, proto.MsgTalk, strings.Repeat("가", store.ReplyQuoteRunes+10))
	other := f.Post(t, f.Bob, f.secret.ID, proto.MsgTalk, "elsewhere")
	tests := []struct {
		name    string
		replyTo int64
		want    error
	}{
		{"to a message of the room", orig.ID, nil},
		{"to a message of another room", other.ID, apperr.ErrBadReply},
		{"to no message", 999999, apperr.ErrBadReply},
		{"negative id", -1, apperr.ErrBadReply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := f.Chat.Post(ctx, f.dave, chat.Input{Type: proto.MsgTalk, RoomID: f.team.ID, Message: "answer", ReplyTo: tt.replyTo})
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if err != nil {
				return
			}
			if m.Reply == nil || m.Reply.ID != orig.ID || m.Reply.Sender != "carol" || len([]rune(m.Reply.Message)) != store.ReplyQuoteRunes {
				t.Errorf("posted reply %+v", m.Reply)
			}
			if err := f.Chat.Delete(ctx, f.Carol, f.team.ID, orig.ID); err != nil {
				t.Fatal(err)
			}
			h := f.history(t, f.team.ID)[m.ID]
			if h.ReplyTo != orig.ID || h.Reply == nil || !h.Reply.Deleted || h.Reply.Message != "" {
				t.Errorf("reply after its original was deleted: %+v %+v", h, h.Reply)
			}
		})
	}
}

func TestReplyQuoteRunesSQL(t *testing.T) {
	if store.ReplyQuoteRunesSQL != "140" || store.ReplyQuoteRunes != 140 {
		t.Fatalf("replyQuoteRunes %d and replyQuoteRunesSQL %s differ", store.ReplyQuoteRunes, store.ReplyQuoteRunesSQL)
	}
}

func TestCheckEmoji(t *testing.T) {
	for _, ok := range []string{"👍", "🇰🇷", "👨‍👩‍👧‍👦", "+1", "❤️"} {
		if err := chat.CheckEmoji(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", " ", "\n", "👍 👍", "\u0000", strings.Repeat("x", chat.MaxEmojiBytes+1), "\xc3"} {
		if err := chat.CheckEmoji(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
