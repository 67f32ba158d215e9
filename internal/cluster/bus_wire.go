package cluster

import (
	"encoding/base64"
	"encoding/binary"
	"slices"
	"stompbox/internal/stomp"
)

// bus_wire.go: what nodes say to each other: the subjects, their
// tokens, the binary form of topic, queue and user messages, and the JSON
// of presence.

// Cluster bus subjects. A destination, user or node name is always one
// subject token, base64url without padding (busToken): '.', '*', '>' and
// spaces in it can never split a subject or act as a wildcard.
const (
	busTopicSubject      = "stompbox.bus.topic."    // + token(destination): topic messages; every node subscribes to stompbox.bus.topic.*
	busQueueSubject      = "stompbox.bus.queue."    // + token(destination): queue offers, requests to the queue group busQueueGroup
	busQueueReadySubject = "stompbox.bus.qready."   // + token(destination): a node has its first consumer of the queue
	busUserSubject       = "stompbox.bus.user."     // + token(user): messages for a user's sessions
	busPresenceSubject   = "stompbox.bus.presence." // + token(node): a node's presence deltas, snapshots, beats and goodbye
	busSyncSubject       = "stompbox.bus.sync"      // body: a node name, or empty for every node: publish a presence snapshot
	busQueueGroup        = "stompbox"               // the NATS queue group of every queue subject: one node takes each offer
)

// Cluster bus wire values: what nodes say to each other.
const (
	busWireVersion    = 1             // first byte of every topic, queue and user message (appendBusMessage)
	queueReplyTaken   = "taken"       // offer answer: in this node's queue now
	queueReplyFull    = "full"        // offer answer: this node's queue is full (errQueueFull)
	queueReplyRefused = "no-consumer" // offer answer: no consumer here any more; ask another node
	PresenceKindDelta = "delta"       // changes since the previous sequence number
	presenceKindSnap  = "snapshot"    // everything, in parts; the last part completes it
	presenceKindBeat  = "beat"        // alive, at this sequence number
	presenceKindBye   = "bye"         // the node leaves: drop its users now
	ConnectedKey      = ""            // the presence key of being connected at all (NoteOnline, RemoteOnline)
)

// PresenceMsg is what nodes publish on busPresenceSubject, as JSON.
type PresenceMsg struct {
	Kind string          `json:"kind"`
	Node string          `json:"node"`
	Inst string          `json:"inst"`
	Seq  uint64          `json:"seq"`
	Part int             `json:"part,omitempty"` // snapshot part, from 0
	Last bool            `json:"last,omitempty"` // the snapshot's last part
	Set  []PresenceGroup `json:"set,omitempty"`
}

// PresenceGroup is a change of, or in a snapshot all of, one presence key.
type PresenceGroup struct {
	Key string   `json:"key"`
	On  []string `json:"on,omitempty"`
	Off []string `json:"off,omitempty"`
}

// BusToken is s as one NATS subject token.
func BusToken(s string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// BusMessage is a topic, queue or user message as the bus carries it.
type BusMessage struct {
	Dest    string
	Headers []stomp.Header
	Body    []byte
}

// AppendBusMessage appends the bus form of m for user's sessions (user ""
// for topics and queues): busWireVersion; the destination, the user and
// each header's key and value as a uvarint length and the bytes, with the
// header count as a uvarint before the headers; then the body to the end.
func AppendBusMessage(dst []byte, user string, m BusMessage) []byte {
	n := 1 + 3*binary.MaxVarintLen32 + len(m.Dest) + len(user) + len(m.Body)
	for _, h := range m.Headers {
		n += 2*binary.MaxVarintLen32 + len(h.Key) + len(h.Value)
	}
	dst = slices.Grow(dst, n)
	dst = append(dst, busWireVersion)
	dst = appendBusString(dst, m.Dest)
	dst = appendBusString(dst, user)
	dst = binary.AppendUvarint(dst, uint64(len(m.Headers)))
	for _, h := range m.Headers {
		dst = appendBusString(dst, h.Key)
		dst = appendBusString(dst, h.Value)
	}
	return append(dst, m.Body...)
}

func appendBusString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// DecodeBusMessage reverses appendBusMessage. The message's body shares
// data's memory (nats.go gives each message its own).
func DecodeBusMessage(data []byte) (user string, m BusMessage, err error) {
	if len(data) == 0 || data[0] != busWireVersion {
		return "", BusMessage{}, errBadBusMessage
	}
	d := busDecoder{rest: data[1:]}
	dest := d.string()
	user = d.string()
	n := d.uvarint()
	if d.bad || n > uint64(len(d.rest))/2 { // each header takes two bytes at least
		return "", BusMessage{}, errBadBusMessage
	}
	var headers []stomp.Header
	if n > 0 {
		headers = make([]stomp.Header, n)
		for i := range headers {
			headers[i].Key = d.string()
			headers[i].Value = d.string()
		}
	}
	if d.bad || dest == "" {
		return "", BusMessage{}, errBadBusMessage
	}
	return user, BusMessage{Dest: dest, Headers: headers, Body: d.rest}, nil
}

// busDecoder reads appendBusMessage's fields; bad sticks once a read runs
// past the end.
type busDecoder struct {
	rest []byte
	bad  bool
}

func (d *busDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.rest)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.rest = d.rest[n:]
	return v
}

func (d *busDecoder) string() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.rest)) {
		d.bad = true
		return ""
	}
	s := string(d.rest[:n])
	d.rest = d.rest[n:]
	return s
}
