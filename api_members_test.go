package main

import (
	"fmt"
	"net/http"
	"stompbox/internal/store"
	"strings"
	"testing"
)

// TestAPIRoomMembers: GET /api/rooms/{id}/members lists a readable room's
// members; DELETE /api/rooms/{id}/members/{username} is the room owner's
// or an administrator's, with clear refusals for everyone else.
func TestAPIRoomMembers(t *testing.T) {
	f := newAPIFixture(t) // alice is the administrator
	alice, bob, carol := f.client(t, "alice"), f.client(t, "bob"), f.client(t, "carol")
	room := f.Room(t, f.Bob, "plans", store.RoomPrivate)
	members := fmt.Sprintf("/api/rooms/%d/members", room.ID)
	tests := []struct {
		name         string
		c            *http.Client
		method, path string
		body         string
		want         int
		wantBody     string
	}{
		{"owner lists", bob, "GET", members, "", 200, `{"members":[{"username":"bob","displayName":"bob","owner":true}]}`},
		{"outsider may not list a private room", carol, "GET", members, "", 403, "not a member"},
		{"owner adds carol", bob, "POST", members, `{"username":"carol"}`, 204, ""},
		{"carol lists", carol, "GET", members, "", 200, `"username":"carol"`},
		{"carol may not remove bob", carol, "DELETE", members + "/bob", "", 403, "only the room's owner or an administrator"},
		{"owner may not remove themself", bob, "DELETE", members + "/bob", "", 400, "leave the room"},
		{"no such person", bob, "DELETE", members + "/nobody", "", 404, "unknown user"},
		{"owner removes carol", bob, "DELETE", members + "/carol", "", 204, ""},
		{"carol is out", carol, "GET", members, "", 403, "not a member"},
		{"not a member any more", bob, "DELETE", members + "/carol", "", 404, "carol is not a member"},
		{"administrator removes bob", alice, "DELETE", members + "/bob", "", 204, ""},
		{"no such room", bob, "DELETE", "/api/rooms/999/members/carol", "", 404, "unknown room"},
	}
	for _, tt := range tests {
		r := f.do(t, tt.c, tt.method, tt.path, tt.body, nil)
		if r.StatusCode != tt.want || !strings.Contains(string(r.Body), tt.wantBody) {
			t.Errorf("%s: %d %s, want %d with %q", tt.name, r.StatusCode, r.Body, tt.want, tt.wantBody)
		}
	}
}
