package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"stompbox/internal/apperr"
	"stompbox/internal/auth/authtest"
	"stompbox/internal/chat"
	"stompbox/internal/chat/chattest"
	"stompbox/internal/proto"
	"stompbox/internal/store"
	"testing"
)

// TestRemoveMember: the room's owner or an administrator removes someone
// from a room; the LEAVE is delivered and the member list follows.
func TestRemoveMember(t *testing.T) {
	ctx := context.Background()
	f := chattest.NewFixture(t, chat.LangEnglish) // alice is the administrator
	dave := authtest.Register(t, f.Auth, "dave")
	room := f.Room(t, f.Bob, "plans", store.RoomPrivate)
	for _, u := range []store.User{f.Carol, dave} {
		if err := f.Chat.AddMember(ctx, f.Bob, room.ID, u.Username); err != nil {
			t.Fatal(err)
		}
	}
	dm, err := f.Chat.OpenDM(ctx, f.Bob, "carol")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		by     store.User
		room   int64
		target string
		want   error // nil, or the apperr kind
	}{
		{"a member who is not the owner", f.Carol, room.ID, "dave", apperr.ErrForbidden},
		{"the owner removes themself", f.Bob, room.ID, "bob", apperr.ErrBadRequest},
		{"no such person", f.Bob, room.ID, "nobody", apperr.ErrNotFound},
		{"the owner", f.Bob, room.ID, "carol", nil},
		{"again", f.Bob, room.ID, "carol", apperr.ErrNotFound},
		{"an administrator who is not a member", f.Alice, room.ID, "dave", nil},
		{"a direct-message room", f.Bob, dm.ID, "carol", apperr.ErrForbidden},
		{"no such room", f.Bob, 999, "carol", apperr.ErrNotFound},
	}
	for _, tt := range tests {
		err := f.Chat.RemoveMember(ctx, tt.by, tt.room, tt.target)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.want)
		}
	}
	ms, err := f.Chat.RoomMembers(ctx, f.Bob, room.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Username != "bob" || !ms[0].Owner {
		t.Errorf("members after the removals: %+v, want bob, the owner", ms)
	}
	if _, err := f.Chat.RoomMembers(ctx, f.Carol, room.ID); !errors.Is(err, apperr.ErrNotMember) {
		t.Errorf("removed carol lists the members: %v, want not a member", err)
	}
	if _, err := f.Chat.Messages(ctx, f.Carol, room.ID, 0, 0, 0); err == nil {
		t.Errorf("removed carol still reads the history")
	}
	var leaves []string
	for _, d := range f.Rec.Deliveries() {
		var m struct{ Type, Sender string }
		if err := json.Unmarshal(d.Body, &m); err == nil && d.RoomID == room.ID && m.Type == proto.MsgLeave {
			leaves = append(leaves, m.Sender)
		}
	}
	if !slices.Equal(leaves, []string{"carol", "dave"}) {
		t.Errorf("LEAVE deliveries of %q, want carol's and dave's", leaves)
	}
}

// TestRoomRemoveMemberOpEndsAccess: the op names the room and user whose
// access it ends, for the broker (the contract's accessEnder).
func TestRoomRemoveMemberOpEndsAccess(t *testing.T) {
	var op store.Op = &chat.RoomRemoveMemberOp{RoomPresence: chat.RoomPresence{RoomID: 5, UserID: 3}}
	ender, ok := op.(interface{ AccessEnded() (int64, int64) })
	if !ok {
		t.Fatal("RoomRemoveMemberOp has no AccessEnded")
	}
	if r, u := ender.AccessEnded(); r != 5 || u != 3 {
		t.Errorf("AccessEnded() = %d, %d, want 5, 3", r, u)
	}
}

// TestRoomMembersOnline: the list says who is connected.
func TestRoomMembersOnline(t *testing.T) {
	ctx := context.Background()
	f := chattest.NewFixture(t, chat.LangEnglish)
	room := f.Room(t, f.Bob, "open", store.RoomPublic)
	if err := f.Chat.Join(ctx, f.Carol, room.ID); err != nil {
		t.Fatal(err)
	}
	f.Rec.SetOnline("carol", true)
	ms, err := f.Chat.RoomMembers(ctx, f.Alice, room.ID) // a public room: anyone may look
	if err != nil {
		t.Fatal(err)
	}
	want := []chat.Member{{Username: "bob", DisplayName: ms[0].DisplayName, Owner: true}, {Username: "carol", DisplayName: ms[1].DisplayName, Online: true}}
	if !slices.Equal(ms, want) {
		t.Errorf("members %+v, want %+v", ms, want)
	}
}

// TestAddMemberNotifies: the person added to a room is told on their own
// queue (reason "added"), so their page lists the room at once.
func TestAddMemberNotifies(t *testing.T) {
	ctx := context.Background()
	f := chattest.NewFixture(t, chat.LangEnglish)
	room := f.Room(t, f.Bob, "plans", store.RoomPrivate)
	if err := f.Chat.AddMember(ctx, f.Bob, room.ID, "carol"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range f.Rec.Notifications() {
		var v store.Notification
		if err := json.Unmarshal(n.Body, &v); err != nil {
			t.Fatal(err)
		}
		got = append(got, n.User+" "+v.Reason+" "+v.Message.Type)
		if v.Message.RoomID != room.ID {
			t.Errorf("notification of room %d, want %d", v.Message.RoomID, room.ID)
		}
	}
	if !slices.Equal(got, []string{"carol added ENTER"}) {
		t.Errorf("notifications %q, want carol's", got)
	}
}
