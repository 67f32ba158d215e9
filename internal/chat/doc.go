// Package chat is the chat domain: rooms (public, private, direct
// messages) and memberships, messages (ENTER, TALK, LEAVE) with replies,
// edits, deletions and reactions, mentions and notifications, webhooks,
// read positions, idempotent sends, history and retention. It validates,
// authorizes, stores and then publishes; it knows nothing of STOMP.
//
// What it promises:
//   - A chat message is stored, then delivered: Service.Post returns only
//     after the commit, and by then Config.Deliver has been called, so a
//     RECEIPT sent after Post returns follows the MESSAGE.
//   - Deliver and Notify run on the store's writer goroutine, right after
//     the commit, in commit (id) order, on every node: each node delivers
//     to its own clients.
//   - The room check runs inside the write transaction, so the decision
//     and the insert see the same state; a refused post is recorded, not
//     failed, so the other senders of the group commit undisturbed.
//   - Every write is an op (PostOp, RoomCreateOp, …) registered with the
//     store: what is random or node-local (the text of ENTER and LEAVE,
//     who is online) is decided before the op is submitted and carried in
//     it, so that every node applies it the same way.
//   - A send with an idempotency key already used within the window
//     stores and delivers nothing and returns the first message.
//   - Access ends as its op commits, on every node (access.go): an op
//     that ends a user's access to a room (accessEnder: leaving, being
//     removed) calls Config.Access.EndRoom, and a store op that ends a
//     credential (store.LoginEnder) calls Config.Access.EndLogins.
//   - Webhooks go only to targets on Config.WebhookAllow, never to a
//     loopback, link-local or unspecified address (checked where it is
//     dialed), and follow no redirect (webhookguard.go).
//
// Interfaces and hooks it owns, which a higher package fills in:
//   - Config.Deliver, Config.Notify (chatstomp.Glue's DeliverRoom and
//     NotifyUser) and Config.Online (broker.Broker.IsOnline);
//   - Config.Access (chatstomp.Glue's EndRoomAccess and EndLogins);
//   - Config.Attachments, the unexported Attachments (Forget):
//     implemented by files.Service.
//
// It implements the store's effects hook (Service.Committed, attached
// with store.Store.SetEffects), and its room gate (NewRoomGate: CanRead,
// CanPost) is the file service's room access.
//
// Of stompbox it imports only internal/apperr, internal/auth,
// internal/proto and internal/store. It never imports the broker, the
// STOMP codec, the glue, the files, the web layer or the cluster
// (layout_test.go).
package chat
