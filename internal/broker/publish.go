package broker

import (
	"context"
	"stompbox/internal/stomp"
)

// publish.go: how code outside a session publishes. Application
// handlers (/app, /pub) and the chat glue publish with these, as Spring's
// SimpMessagingTemplate does: Publish routes a message as a client's SEND
// would be routed, PublishLocal reaches this node's subscribers only, and
// SendToUser and SendToLocalUser reach one user's sessions.

// Publish delivers a message to every subscriber of a topic destination, or
// to one consumer of a queue destination, on every node of the cluster. It
// never blocks on a subscriber. headers are user headers (content-type and
// custom ones); storeID is the message's id in the chat store, 0 if it is
// not stored. A stored message is delivered on this node only: every node
// delivers stored messages from the replicated log itself. In a cluster a
// queue message waits, at most queueOfferTimeout, for the node that takes
// it (Bus.SendQueue).
func (b *Broker) Publish(dest string, headers []stomp.Header, body []byte, storeID int64) error {
	m := &message{dest: dest, headers: headers, body: body, storeID: storeID}
	b.stats.published.Add(1)
	switch kind, _ := b.classify(dest); kind {
	case destTopic:
		if storeID != 0 {
			b.publishTopic(dest, m)
			return nil
		}
		return b.routeTopic(m)
	case destQueue:
		return b.routeQueue(context.Background(), m)
	default:
		return errUnknownDestination
	}
}

// SendToUser delivers a message to every session of user subscribed to the
// user destination dest (a path such as "/user/queue/notifications" or
// "/queue/notifications"; the user prefix is added when missing), on every
// node of the cluster. Call it once per event, on one node. A bus that
// cannot publish logs the error: the caller (the store's writer) has
// nobody to tell.
func (b *Broker) SendToUser(user, dest string, headers []stomp.Header, body []byte) {
	dest = b.userDest(dest)
	b.stats.published.Add(1)
	if bus := b.loadBus(); bus != nil && user != "" {
		if err := bus.PublishUser(user, dest, headers, body); err != nil {
			b.log.Error("user message not sent to the cluster", "err", err, "user", user, "destination", dest)
		}
		return
	}
	b.publishTopic(userKey(user, 0, dest), &message{dest: dest, headers: headers, body: body})
}

// PublishLocal delivers a message to the subscribers of a topic destination
// on this node only, never through the bus: for what every node computes
// for its own subscribers (a room's merged presence list). It never blocks.
func (b *Broker) PublishLocal(dest string, headers []stomp.Header, body []byte) {
	b.stats.published.Add(1)
	b.publishTopic(dest, &message{dest: dest, headers: headers, body: body})
}
