package chatstomp

import (
	"context"
	"encoding/json"
	"stompbox/internal/auth"
	"stompbox/internal/broker"
	"stompbox/internal/chat"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
	"stompbox/internal/store"
	"time"
)

// access.go: the glue's side of access that ends (issue 22). A session's
// principal is the account it authenticated as, with the key of the
// login it used (store.User.LoginKeys), so the broker can end it. The
// chat service's access hooks (chat.AccessHooks) land here on every node
// as ops are applied; WatchLogins catches what changed behind the
// server's back (`stompbox user passwd`/`del` on a running single node);
// a SEND checks its login once more before it posts.

// DefaultLoginCheck is how often WatchLogins checks the live connections'
// logins against the database (-login-check).
const DefaultLoginCheck = 5 * time.Second

// errLoginEnded refuses a CONNECT whose cookie or token ended between the
// upgrade and the CONNECT, and a SEND whose login ended.
var errLoginEnded = stomp.NewError("session ended")

// EndRoomAccess is the chat's AccessHooks.EndRoom: userID's subscriptions
// on this node to the room's topic, presence and typing end, and the
// user's pages here get {"type":"ACCESS_ENDED","roomId":…,"reason":…} on
// /user/queue/notifications. It never blocks.
func (c *Glue) EndRoomAccess(roomID, userID int64, reason string) {
	room := proto.RoomDestination(roomID)
	body, _ := json.Marshal(struct {
		Type   string `json:"type"`
		RoomID int64  `json:"roomId"`
		Reason string `json:"reason"`
	}{proto.MsgAccessEnded, roomID, reason})
	c.accessMu.Lock()
	defer c.accessMu.Unlock()
	n := c.b.EndAccess(store.UserLogin(userID), []string{room, room + chat.PresenceSuffix, room + chat.TypingSuffix}, chatNotificationsDest, jsonHeaders, body)
	if n > 0 {
		c.log.Info("room access ended", "room", roomID, "user", userID, "reason", reason, "subscriptions", n)
	}
}

// EndLogins is the chat's AccessHooks.EndLogins: this node's connections
// that rest on one of keys get an ERROR "session ended" and close.
func (c *Glue) EndLogins(keys []string) {
	if n := c.b.CloseLogins(keys...); n > 0 {
		c.log.Info("login ended: connections closed", "connections", n)
	}
}

// WatchLogins checks, every interval until ctx ends, that the logins this
// node's connections rest on still exist, and closes the connections of
// those that ended without an op through this server: a password changed
// or an account deleted with `stompbox user` while the server runs, a
// login session or API token that expired. One query per kind of login,
// whatever the number of connections.
func (c *Glue) WatchLogins(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		keys := c.b.LiveLogins()
		if len(keys) == 0 {
			continue
		}
		ended, err := c.auth.EndedLogins(ctx, keys)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("login check failed", "err", err)
			}
			continue
		}
		c.EndLogins(ended)
	}
}

// checkLogin is the SEND's second look (belt and braces): the session must
// not be ending, and its login must still exist. A login found ended
// closes the session's connections at once.
func (c *Glue) checkLogin(ctx context.Context, s *broker.Session, u store.User) error {
	if s.Ended() {
		return errLoginEnded
	}
	// The login alone: its row goes with the account (a session's and a
	// token's by cascade, a password's with the user), so one query says
	// it all; a guest has only its account.
	key := u.Login
	if key == "" {
		key = store.UserLogin(u.ID)
	}
	ended, err := c.auth.EndedLogins(ctx, []string{key})
	if err != nil {
		return err
	}
	if len(ended) > 0 {
		c.EndLogins(ended)
		return errLoginEnded
	}
	return nil
}

// requireScope refuses a frame whose API token lacks scope (a client
// error: 403 in apperr's terms).
func requireScope(u store.User, scope string) error {
	if !auth.Allows(u, scope) {
		return auth.ErrScope(scope)
	}
	return nil
}

// attachIfReadable files a room subscription with the broker if u may read
// the room, and (for the room's messages) counts u present. Check and
// filing happen under accessMu, which EndRoomAccess holds while it ends
// subscriptions: a SUBSCRIBE racing the commit of a leave either sees the
// membership gone or is filed in time to be ended with the others.
func (c *Glue) attachIfReadable(ctx context.Context, sub *broker.Subscription, u store.User, roomID int64, present bool) error {
	c.accessMu.RLock()
	defer c.accessMu.RUnlock()
	if err := c.chat.CanRead(ctx, u, roomID); err != nil {
		return err
	}
	if present {
		c.join(roomID, u.Username)
	}
	sub.Attach()
	return nil
}
