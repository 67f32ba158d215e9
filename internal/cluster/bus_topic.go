package cluster

import (
	"fmt"
	"stompbox/internal/stomp"

	"github.com/nats-io/nats.go"
)

// bus_topic.go: topic and user messages across nodes: every node,
// the sender included, delivers what comes back from NATS.

// PublishTopic sends a topic message to every node, this one included
// (Bus). It returns NATS's error (a closed connection, a message over
// max_payload); the caller's session then gets "internal error" and the
// log the rest.
func (cb *Bus) PublishTopic(dest string, headers []stomp.Header, body []byte) error {
	return cb.publish(busTopicSubject, "", BusMessage{Dest: dest, Headers: headers, Body: body})
}

// PublishUser sends a message for user's sessions to every node (Bus).
func (cb *Bus) PublishUser(user, dest string, headers []stomp.Header, body []byte) error {
	return cb.publish(busUserSubject, user, BusMessage{Dest: dest, Headers: headers, Body: body})
}

// publish sends m to every node: to its topic (user "") or to user's
// sessions (prefix busUserSubject).
func (cb *Bus) publish(prefix, user string, m BusMessage) error {
	if cb.ctx.Err() != nil {
		return errBusClosed
	}
	token := m.Dest
	if prefix == busUserSubject {
		token = user
	}
	if err := cb.nc.Publish(prefix+BusToken(token), AppendBusMessage(nil, user, m)); err != nil {
		return fmt.Errorf("cluster publish: %w", err)
	}
	return nil
}

// deliverTopic hands a topic message from NATS to the broker's local
// subscribers.
func (cb *Bus) deliverTopic(m *nats.Msg) {
	if _, msg, err := DecodeBusMessage(m.Data); err != nil {
		cb.log.Error("cluster message dropped", "err", err, "subject", m.Subject)
	} else {
		cb.b.DeliverRemoteTopic(msg.Dest, msg.Headers, msg.Body)
	}
}

// deliverUser hands a message for a user's sessions from NATS to the
// broker's local sessions of that user.
func (cb *Bus) deliverUser(m *nats.Msg) {
	if user, msg, err := DecodeBusMessage(m.Data); err != nil || user == "" {
		cb.log.Error("cluster message dropped", "err", err, "subject", m.Subject)
	} else {
		cb.b.DeliverRemoteUser(user, msg.Dest, msg.Headers, msg.Body)
	}
}
