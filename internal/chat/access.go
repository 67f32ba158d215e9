package chat

import (
	"stompbox/internal/store"
)

// access.go: access that ends while a user is connected (issue 22). When
// an op that ends a user's access to a room, or ends a credential,
// commits on a node (Committed, on every node as the log is applied),
// this node's broker ends the affected subscriptions or connections
// through the hooks in Config.Access.

// AccessHooks are what the chat service calls, on the store's writer
// goroutine right after a commit, when access ended. They must not block
// and must not write to the store. Nil ones do nothing.
type AccessHooks struct {
	// EndRoom ends userID's live subscriptions to the room's destinations
	// on this node and tells the user's pages (ACCESS_ENDED, reason
	// "left" or "removed").
	EndRoom func(roomID, userID int64, reason string)
	// EndLogins closes this node's connections that rest on one of the
	// login keys (store.LoginEnder): logout, token revocation, password
	// change, account deletion.
	EndLogins func(keys []string)
}

// Why a user's access to a room ended, as the page is told.
const (
	AccessLeft    = "left"
	AccessRemoved = "removed"
)

// accessEnder is an op that ended a user's access to a room once it
// committed: RoomLeaveOp, and the removal of a member by the room's owner
// or an administrator. AccessEnded returns roomID 0 when the op changed
// nothing (the user was no member).
type accessEnder interface {
	AccessEnded() (roomID, userID int64)
}

// AccessEnded implements accessEnder: the user left the room.
func (o *RoomLeaveOp) AccessEnded() (roomID, userID int64) {
	if !o.changed {
		return 0, 0
	}
	return o.RoomID, o.UserID
}

// accessCommitted runs the access hooks for a committed op.
func (c *Service) accessCommitted(op store.Op) {
	if ae, ok := op.(accessEnder); ok && c.access.EndRoom != nil {
		if room, user := ae.AccessEnded(); room != 0 {
			reason := AccessRemoved
			if _, left := op.(*RoomLeaveOp); left {
				reason = AccessLeft
			}
			c.access.EndRoom(room, user, reason)
		}
	}
	if le, ok := op.(store.LoginEnder); ok && c.access.EndLogins != nil {
		if keys := le.LoginsEnded(); len(keys) > 0 {
			c.access.EndLogins(keys)
		}
	}
}
