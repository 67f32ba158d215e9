package broker

import (
	"stompbox/internal/sockjsframe"
	"stompbox/internal/stomp"
	"strconv"
	"sync"
)

// message.go: a published message, shared by all its deliveries,
// and its wire form, encoded at most once per STOMP version.

// message is one published message, shared by all its deliveries. Its wire
// form after the per-delivery headers is encoded at most once per STOMP
// version, by whichever writer needs it first, not once per subscriber.
type message struct {
	dest    string
	headers []stomp.Header
	body    []byte
	storeID int64 // id in the chat store, 0 if not stored
	// Set by a queue when it routes the message (queue_limits.go):
	size    int64 // bytes counted against the queue caps while it is held
	expires int64 // Unix milliseconds after which a held message is dropped; 0 none
	enc     [3]struct {
		once sync.Once
		b    []byte
	}
	encJSON [3]struct { // encoded(v) escaped as JSON string content, for SockJS subscribers
		once sync.Once
		b    []byte
	}
}

// encodedJSON returns encoded(v) escaped as JSON string content (see
// transport.JSONWriter), escaped once by whichever SockJS subscriber's writer needs
// it first.
func (m *message) encodedJSON(v stomp.Version) []byte {
	e := &m.encJSON[v-1]
	e.once.Do(func() { e.b = sockjsframe.AppendContent(nil, m.encoded(v), false) })
	return e.b
}

// encoded returns the shared tail of a MESSAGE frame for version v:
// destination, user headers, content-length, blank line, body, NUL.
func (m *message) encoded(v stomp.Version) []byte {
	e := &m.enc[v-1]
	e.once.Do(func() {
		b := make([]byte, 0, 64+len(m.dest)+len(m.body))
		b = stomp.AppendHeader(b, stomp.HdrDestination, m.dest, v)
		for _, h := range m.headers {
			b = stomp.AppendHeader(b, h.Key, h.Value, v)
		}
		b = append(b, "content-length:"...)
		b = strconv.AppendInt(b, int64(len(m.body)), 10)
		b = append(b, '\n', '\n')
		b = append(b, m.body...)
		e.b = append(b, 0)
	})
	return e.b
}
