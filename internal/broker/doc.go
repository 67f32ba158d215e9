// Package broker is the in-memory STOMP broker. It owns the sessions
// (Broker.Serve runs one per connection), the destinations and their
// classes (topics under /sub/ and /topic/, queues under /queue/,
// application handlers under /pub/ and /app/, user destinations under
// /user/), subscriptions, acks, transactions, heart-beats and limits, each
// session's bounded outbox and its one writer, and the routing of what is
// published: here, or over a Bus to the other nodes.
//
// What it promises:
//   - Publishing never blocks on a subscriber: a delivery is a push onto
//     the subscriber's outbox, and the broker lock is held only to look up
//     or copy, never across I/O or a channel wait.
//   - Per-subscriber order: each session has one outbox and one writer,
//     which writes the frames in the order they were queued.
//   - A RECEIPT goes out only after the frame's effect: for a SEND to an
//     application destination, after its AppHandler returned (the handler
//     runs on the sender's reader goroutine, so one session's SENDs are
//     handled in order).
//   - A slow consumer is cut off, never slows the others: an outbox past
//     its bounds (frames and bytes, after a short grace) gets an ERROR and
//     its connection is closed.
//   - A SEND over its rate is delayed on the sender's reader, not refused
//     (internal/ratelimit), and so is every SEND while the heap is above
//     the memory mark (flow.go).
//   - What queues hold while nobody consumes them is bounded in bytes (in
//     all and per queue), in number of queues and in time; a SEND past a
//     bound gets an ERROR naming it, and nothing receipted is dropped
//     before its expiry (queue_limits.go).
//   - Access ends when it ends (revoke.go): a session whose principal
//     names its login keys (LoginKeyer) is closed with an ERROR "session
//     ended" by CloseLogins, and EndAccess ends its subscriptions to given
//     destinations; nothing queued for them is written afterwards, and
//     they stop counting toward the subscription limits at once.
//   - Each session has exactly one reader and one writer; every write has
//     a deadline. Close tells every session "server shutting down", waits
//     for them, and drops those still stuck when its context ends.
//
// Interfaces it owns, which a higher package implements:
//   - Bus, the broker across nodes: implemented by cluster.Bus.
//   - the Authenticator of Config.Auth (AuthenticateSTOMP): implemented by
//     chatstomp.Glue.
//
// It uses transport.Conn and its optional interfaces (owned by
// internal/transport), and the handlers and hooks registered with Handle,
// OnSubscribe, OnSend, OnUnsubscribe and OnRemotePresence.
//
// Of stompbox it imports only internal/ratelimit, internal/sockjsframe,
// internal/stomp and internal/transport. It never imports the store, the
// chat, the glue (internal/chatstomp) or the cluster: they reach it
// through the interfaces and hooks above (layout_test.go).
package broker
