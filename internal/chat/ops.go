package chat

import "stompbox/internal/store"

// The chat service's side of the store's ops: its kinds of op, and what
// they do on this node after they commit.

// The chat service's writes (post.go, rooms.go,
// changes.go): posts, rooms and memberships, read positions, changes
// to posted messages. Registered with the store for decoding the cluster
// log; a kind is part of the log's format and is only ever added.
func init() {
	store.RegisterOp[MarkReadOp]()
	store.RegisterOp[PostOp]()
	store.RegisterOp[RoomCreateOp]()
	store.RegisterOp[RoomUpdateOp]()
	store.RegisterOp[RoomAddMemberOp]()
	store.RegisterOp[RoomLeaveOp]()
	store.RegisterOp[RoomRemoveMemberOp]()
	store.RegisterOp[DmOpenOp]()
	store.RegisterOp[MsgEditOp]()
	store.RegisterOp[MsgDeleteOp]()
	store.RegisterOp[MsgReactOp]()
}

// chatEffect is a chat op with an effect after its commit, run on every
// node in commit order: delivering the change to that node's own clients.
// It must be quick and must not write to the store.
type chatEffect interface {
	committed(c *Service)
}

// Committed runs a committed op's effect on this node's clients
// (storeEffects): the store calls it for every op, local or from the
// cluster log, on its writer goroutine, in commit order.
func (c *Service) Committed(op store.Op) {
	if o, ok := op.(chatEffect); ok {
		o.committed(c)
	}
	c.accessCommitted(op) // access.go
}
