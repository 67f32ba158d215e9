package main

import (
	"encoding/json"
	"fmt"
	"stompbox/internal/apperr"
	"stompbox/internal/chat"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
	"stompbox/internal/store"
	"strings"
	"testing"
)

func changeBody(roomID, msgID int64, extra string) string {
	return fmt.Sprintf(`{"roomId":%d,"messageId":%d%s}`, roomID, msgID, extra)
}

// TestChatChangesOverSTOMP: an edit, a reaction and a deletion sent over
// STOMP reach every subscriber of the room as events before the sender's
// RECEIPT; refusals go to /user/queue/errors; a client resuming with
// since-id sees the final state.
func TestChatChangesOverSTOMP(t *testing.T) {
	f := newSTOMPChatFixture(t, "kim", "lee", "eve")
	if err := f.srv.chat.Join(t.Context(), f.users["lee"], f.room.ID); err != nil {
		t.Fatal(err)
	}
	kim, lee := f.login(t, "kim"), f.login(t, "lee")
	kim.roundTrip(stomp.CmdSubscribe, "", "id:room", "destination:"+f.roomDest())
	lee.roundTrip(stomp.CmdSubscribe, "", "id:e", "destination:/user/queue/errors")
	lee.roundTrip(stomp.CmdSubscribe, "", "id:room", "destination:"+f.roomDest())

	kim.send(stomp.CmdSend, chatBody("TALK", f.room.ID, "첫 메시지"), "destination:/pub/chat/message", "receipt:talk")
	m := decodeChat(t, lee.expect(stomp.CmdMessage))
	kim.expect(stomp.CmdMessage)
	kim.expect(stomp.CmdReceipt)

	event := func(c *stompClient) map[string]any {
		t.Helper()
		var ev map[string]any
		if err := json.Unmarshal(c.expect(stomp.CmdMessage).Body, &ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}

	kim.send(stomp.CmdSend, changeBody(f.room.ID, m.ID, `,"message":"고친 메시지"`), "destination:/pub/chat/edit", "receipt:edit")
	if ev := event(lee); ev["type"] != "EDIT" || ev["message"] != "고친 메시지" || ev["messageId"] != float64(m.ID) {
		t.Fatalf("lee got %v", ev)
	}
	event(kim)
	kim.expect(stomp.CmdReceipt)

	lee.send(stomp.CmdSend, changeBody(f.room.ID, m.ID, `,"emoji":"👍"`), "destination:/app/chat/react", "receipt:react")
	if ev := event(kim); ev["type"] != "REACTION" || ev["user"] != "lee" || fmt.Sprint(ev["reactions"]) != "[map[emoji:👍 users:[lee]]]" {
		t.Fatalf("kim got %v", ev)
	}
	event(lee)
	lee.expect(stomp.CmdReceipt)

	refusals := []struct{ dest, body, want string }{
		{"/pub/chat/edit", changeBody(f.room.ID, m.ID, `,"message":"lee was here"`), "only the author"},
		{"/pub/chat/delete", changeBody(f.room.ID, m.ID, ""), "only the author, the room's owner"},
		{"/pub/chat/react", changeBody(f.room.ID, m.ID, `,"emoji":""`), "a reaction is one emoji"},
		{"/pub/chat/edit", `{"roomId":"x"}`, "malformed JSON"},
		{"/pub/chat/delete", changeBody(f.room.ID, 0, ""), "unknown message"},
		{"/pub/chat/delete", changeBody(0, m.ID, ""), "unknown room"},
	}
	for i, r := range refusals {
		lee.send(stomp.CmdSend, r.body, "destination:"+r.dest, fmt.Sprintf("receipt:no%d", i))
		var e apperr.RefusedSend
		if err := json.Unmarshal(lee.expect(stomp.CmdMessage).Body, &e); err != nil || !strings.Contains(e.Error, r.want) || e.Receipt != fmt.Sprintf("no%d", i) {
			t.Fatalf("%s %s: %+v %v, want %q", r.dest, r.body, e, err, r.want)
		}
	}

	kim.send(stomp.CmdSend, changeBody(f.room.ID, m.ID, ""), "destination:/pub/chat/delete", "receipt:del")
	if ev := event(lee); ev["type"] != "DELETE" || ev["by"] != "kim" {
		t.Fatalf("lee got %v", ev)
	}
	event(kim)
	kim.expect(stomp.CmdReceipt)

	t.Run("a non-member cannot change anything in a private room", func(t *testing.T) {
		private, err := f.srv.chat.CreateRoom(t.Context(), f.users["kim"], chat.NewRoom{Name: "secret", Kind: store.RoomPrivate})
		if err != nil {
			t.Fatal(err)
		}
		pm, err := f.srv.chat.Post(t.Context(), f.users["kim"], chat.Input{Type: proto.MsgTalk, RoomID: private.ID, Message: "hidden"})
		if err != nil {
			t.Fatal(err)
		}
		eve := f.login(t, "eve")
		eve.roundTrip(stomp.CmdSubscribe, "", "id:e", "destination:/user/queue/errors")
		for _, dest := range []string{"/pub/chat/edit", "/pub/chat/delete", "/pub/chat/react"} {
			eve.send(stomp.CmdSend, changeBody(private.ID, pm.ID, `,"message":"x","emoji":"👍"`), "destination:"+dest)
			var e apperr.RefusedSend
			if err := json.Unmarshal(eve.expect(stomp.CmdMessage).Body, &e); err != nil || e.Error != "not a member of this room" {
				t.Fatalf("%s: %+v %v", dest, e, err)
			}
		}
	})

	t.Run("since-id replay shows the final state", func(t *testing.T) {
		park := f.login(t, "eve")
		park.send(stomp.CmdSubscribe, "", "id:room", "destination:"+f.roomDest(), fmt.Sprintf("since-id:%d", m.ID-1), "receipt:s")
		var got store.StoredMessage
		if err := json.Unmarshal(park.expect(stomp.CmdMessage).Body, &got); err != nil || got.ID != m.ID || !got.Deleted || got.Message != "" || got.EditedAt.IsZero() {
			t.Fatalf("replayed %+v %v", got, err)
		}
		park.expect(stomp.CmdReceipt)
	})
}
