package main

import (
	"fmt"
	"net/http"
	"net/url"
	"stompbox/internal/chat"
	"stompbox/internal/proto"
	"stompbox/internal/store"
	"strings"
	"testing"
)

// TestAPIMessageChanges covers PATCH and DELETE of a message, the reaction
// routes, and replies through POST, with the authorization of each.
func TestAPIMessageChanges(t *testing.T) {
	f := newAPIFixture(t)
	alice, bob, carol, anon := f.client(t, "alice"), f.client(t, "bob"), f.client(t, "carol"), f.client(t, "")
	team := f.Room(t, f.Bob, "team", store.RoomPublic)
	secret := f.Room(t, f.Bob, "secret", store.RoomPrivate)
	byBob := f.Post(t, f.Bob, team.ID, proto.MsgTalk, "bob's words")
	toDelete := f.Post(t, f.Bob, team.ID, proto.MsgTalk, "going away")
	inSecret := f.Post(t, f.Bob, secret.ID, proto.MsgTalk, "secret words")
	msg := func(r store.Room, m store.StoredMessage) string {
		return fmt.Sprintf("/api/rooms/%d/messages/%d", r.ID, m.ID)
	}
	thumbs := "/reactions/" + url.PathEscape("👍")

	tests := []struct {
		name         string
		c            *http.Client
		method, path string
		body         string
		want         int
		wantBody     string
	}{
		{"edit own", bob, "PATCH", msg(team, byBob), `{"message":"bob's better words"}`, 200, `"type":"EDIT"`},
		{"edit another's", carol, "PATCH", msg(team, byBob), `{"message":"carol's words"}`, 403, "only the author"},
		{"edit signed out", anon, "PATCH", msg(team, byBob), `{"message":"x"}`, 401, "login required"},
		{"edit empty", bob, "PATCH", msg(team, byBob), `{"message":""}`, 400, "empty message"},
		{"edit bad json", bob, "PATCH", msg(team, byBob), `{"message":`, 400, "malformed JSON"},
		{"edit too long", bob, "PATCH", msg(team, byBob), `{"message":"` + strings.Repeat("가", chat.MaxMessageRunes+1) + `"}`, 413, "message too long"},
		{"edit bad message id", bob, "PATCH", fmt.Sprintf("/api/rooms/%d/messages/x", team.ID), `{"message":"x"}`, 404, "unknown message"},
		{"edit through the wrong room", bob, "PATCH", msg(secret, byBob), `{"message":"x"}`, 404, "unknown message"},
		{"non-member edits in a private room", carol, "PATCH", msg(secret, inSecret), `{"message":"x"}`, 403, "not a member"},
		{"react as a non-member", carol, "PUT", msg(team, byBob) + thumbs, "", 403, "not a member"},
		{"react as a member", bob, "PUT", msg(team, byBob) + thumbs, "", 200, `{"reactions":[{"emoji":"👍","users":["bob"]}]}`},
		{"react twice", bob, "PUT", msg(team, byBob) + thumbs, "", 200, `"users":["bob"]`},
		{"react with text", bob, "PUT", msg(team, byBob) + "/reactions/" + url.PathEscape("lots of words here to say"), "", 400, "a reaction is one emoji"},
		{"react in a private room as a non-member", carol, "PUT", msg(secret, inSecret) + thumbs, "", 403, "not a member"},
		{"history carries reactions", bob, "GET", fmt.Sprintf("/api/rooms/%d/messages", team.ID), "", 200, `"reactions":[{"emoji":"👍","users":["bob"]}]`},
		{"history carries the edit", bob, "GET", fmt.Sprintf("/api/rooms/%d/messages", team.ID), "", 200, `"editedAt":"`},
		{"unreact", bob, "DELETE", msg(team, byBob) + thumbs, "", 200, `{"reactions":[]}`},
		{"delete another's without rights", carol, "DELETE", msg(team, toDelete), "", 403, "only the author, the room's owner"},
		{"delete as administrator", alice, "DELETE", msg(team, toDelete), "", 204, ""},
		{"delete again", bob, "DELETE", msg(team, toDelete), "", 409, "message was deleted"},
		{"history shows the deletion", bob, "GET", fmt.Sprintf("/api/rooms/%d/messages?after=%d", team.ID, toDelete.ID-1), "", 200, `"message":"","createdAt"`},
		{"reply", bob, "POST", fmt.Sprintf("/api/rooms/%d/messages", team.ID), fmt.Sprintf(`{"message":"answer","replyTo":%d}`, byBob.ID), 201, `"reply":{"id":`},
		{"reply to another room's message", bob, "POST", fmt.Sprintf("/api/rooms/%d/messages", team.ID), fmt.Sprintf(`{"message":"answer","replyTo":%d}`, inSecret.ID), 400, "replyTo must be"},
		{"reply with a string id", bob, "POST", fmt.Sprintf("/api/rooms/%d/messages", team.ID), `{"message":"answer","replyTo":"1"}`, 400, "malformed JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(t, tt.c, tt.method, tt.path, tt.body, nil)
			if r.StatusCode != tt.want || !strings.Contains(string(r.Body), tt.wantBody) {
				t.Fatalf("%d %s, want %d with %q", r.StatusCode, r.Body, tt.want, tt.wantBody)
			}
		})
	}
}
