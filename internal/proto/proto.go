// Package proto holds what the server and its clients must agree on: the
// endpoints' default paths, the session cookie's name, the chat message
// types, the room destinations, and the JSON shapes of a chat post, a chat
// message and the admin statistics. It is a leaf (it imports no package of
// ours but internal/latency, for the histogram snapshot), so that a client
// such as the load tool (internal/bench) can speak to the server without
// importing the server. The server's parts use these definitions rather
// than copies of them.
package proto

import (
	"strconv"

	"stompbox/internal/latency"
)

// Endpoints a client connects to when it is given only the server's address.
const (
	DefaultWSPath     = "/ws"       // STOMP over WebSocket
	DefaultSockJSPath = "/ws-stomp" // the seed article's endpoint, as Spring's registerStompEndpoints("/ws-stomp").withSockJS()
)

// SessionCookieName is the cookie that carries a signed-in browser's session.
const SessionCookieName = "stompbox_session"

// Message types, as in the Spring chat examples' ChatMessage.MessageType
// and in messages.type.
const (
	MsgEnter = "ENTER"
	MsgTalk  = "TALK"
	MsgLeave = "LEAVE"
)

// MsgAccessEnded is the type of the notice a page gets on
// /user/queue/notifications when its user's access to a room ended:
// {"type":"ACCESS_ENDED","roomId":5,"reason":"left"|"removed"}. Its
// subscriptions to the room have ended by then.
const MsgAccessEnded = "ACCESS_ENDED"

// RoomDestinationPrefix starts every room's topic: /sub/chat/room/{id}.
const RoomDestinationPrefix = "/sub/chat/room/"

// RoomDestination is the STOMP destination of a room's messages.
func RoomDestination(roomID int64) string {
	return RoomDestinationPrefix + strconv.FormatInt(roomID, 10)
}

// TimeFormat is RFC 3339 in UTC with fixed milliseconds: the precision
// we store, and a fixed width that sorts as text.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// ChatMessage is what every client reads of a chat message delivered on a
// room's topic or listed by the API; the server sends more fields beside
// these (edits, replies, reactions, attachments: internal/store's
// MessageJSON).
type ChatMessage struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"`
	RoomID    int64  `json:"roomId"`
	Sender    string `json:"sender"`
	Message   string `json:"message"`
	CreatedAt string `json:"createdAt"` // TimeFormat
}

// ChatPost is the body of a SEND to /pub/chat/message (and of POST
// /api/rooms/{id}/messages) in its plain form: the seed article's
// ChatMessage. The server accepts more (replies, attachments; see
// internal/chat's Input).
type ChatPost struct {
	Type    string `json:"type"` // MsgTalk, MsgEnter or MsgLeave
	RoomID  int64  `json:"roomId"`
	Message string `json:"message"`
}

// AdminStats is the body of GET /api/admin/stats. The soak scenario of
// the load tool (internal/bench/soak.go) polls it to tell a leak from a plateau.
type AdminStats struct {
	Goroutines     int            `json:"goroutines"`       // runtime.NumGoroutine
	HeapAllocBytes uint64         `json:"heap_alloc_bytes"` // bytes of heap objects
	HeapInuseBytes uint64         `json:"heap_inuse_bytes"` // bytes of in-use heap spans
	StackBytes     uint64         `json:"stack_bytes"`      // bytes of goroutine stacks
	SysBytes       uint64         `json:"sys_bytes"`        // bytes mapped by the Go runtime
	NumGC          uint64         `json:"num_gc"`           // completed GC cycles
	STOMPSessions  int            `json:"stomp_sessions"`   // broker sessions, every transport
	SockJSSessions int            `json:"sockjs_sessions"`  // SockJS sessions, including HTTP ones awaiting their disconnect delay
	UptimeS        float64        `json:"uptime_s"`         // seconds since the routes were built (server start)
	Version        string         `json:"version"`
	Store          *StoreStats    `json:"store,omitempty"` // the database writer, since start
	Flow           FlowStats      `json:"flow"`            // SENDs held back by their rate, since start
	Passwords      *GateStats     `json:"passwords,omitempty"`
	Cluster        *ClusterStatus `json:"cluster,omitempty"` // cluster nodes only: the log and this node's place in it
}

// FlowStats says how much the SEND rates slowed clients down: many held
// SENDs with little held time are bursts just over the rate; long held times
// are a client (a bot, a script) that sends faster than -send-rate or
// -user-send-rate allow.
type FlowStats struct {
	HeldSends   uint64  `json:"held_sends"`   // SEND frames that waited for their rate
	HeldSeconds float64 `json:"held_seconds"` // their waits added up
}

// GateStats is the password-check queue (passgate.go), since start.
type GateStats struct {
	Slots       int    `json:"slots"`        // checks that may run at once (cores)
	Running     int    `json:"running"`      // running now
	Waiting     int64  `json:"waiting"`      // waiting for a slot now
	PeakWaiting int64  `json:"peak_waiting"` // most that waited at once
	Busy        uint64 `json:"busy"`         // refused "server busy, retry"
}

// StoreStats is the writer's part of GET /api/admin/stats. Commits
// long against waits short mean a slow disk; waits long against commits
// short mean a queue: more writes than one writer can take.
type StoreStats struct {
	Transactions int64            `json:"transactions"` // committed write transactions
	Writes       int64            `json:"writes"`       // requests they held: Writes/Transactions is the mean group
	Retried      int64            `json:"retried"`      // groups that failed and were retried one by one
	Commit       latency.Snapshot `json:"commit"`       // each transaction, BEGIN to COMMIT returned, fsync included
	Wait         latency.Snapshot `json:"wait"`         // each request (a chat message is one), from being queued to its commit returning
}

// ClusterStatus is the log as this node sees it.
type ClusterStatus struct {
	Node     string        `json:"node"`
	Applied  uint64        `json:"applied"`           // last log entry this node's database holds
	LogEnd   uint64        `json:"logEnd"`            // last entry of the log
	Behind   uint64        `json:"behind"`            // LogEnd - Applied
	Replicas int           `json:"replicas"`          // copies of each entry
	Leader   string        `json:"leader"`            // the node that orders the log now
	Failed   int64         `json:"failed"`            // ops that failed here with an internal error
	Stopped  string        `json:"stopped,omitempty"` // why this node's applier stopped (it refuses writes until restarted); "" while it applies
	Nodes    []string      `json:"nodes,omitempty"`   // JetStream servers of the cluster (embedded NATS only)
	Routes   int           `json:"routes,omitempty"`  // route connections this node's NATS has
	Peers    []ClusterPeer `json:"peers"`             // the nodes that keep the log
}

// ClusterPeer is one copy of the log.
type ClusterPeer struct {
	Name    string  `json:"name"`
	Current bool    `json:"current"` // caught up with the leader
	Offline bool    `json:"offline"`
	LagOps  uint64  `json:"lag"`     // entries behind the leader
	SeenAgo float64 `json:"seenAgo"` // seconds since the leader heard from it
}
