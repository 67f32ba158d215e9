package cluster

import (
	"context"
	"errors"
	"fmt"
	"stompbox/internal/broker"
	"stompbox/internal/stomp"
	"strings"

	"github.com/nats-io/nats.go"
)

// bus_queue.go: queue messages across nodes: a NATS queue group per
// queue with a consumer on a node, offers and their answers, and the held
// messages offered again.

// offerResult is how a queue offer went, short of an error.
type offerResult int

const (
	offerTaken   offerResult = iota // a node has it in its queue
	offerRefused                    // the node chosen had just lost its consumers
	offerNobody                     // no node consumes the queue
)

// SendQueue hands a message to one consumer of queue dest somewhere in the
// cluster (Bus): one node in the queue's group takes it into its local
// queue and answers, so a RECEIPT for the SEND means it is in some node's
// queue, and a full one is refused (errQueueFull) as on a single node.
// Whichever node holds a message applies its own caps (bytes per queue
// and in all, number of queues, expiry: broker/queue_limits.go): the node
// that takes an offer, and this node while it holds what nobody consumes;
// a refusal names the limit that refused. When
// no node has a consumer it reports taken=false: the broker holds the
// message in this node's queue (up to its depth), and the bus offers it
// again when a node announces one, and every presenceBeat (offerHeld). It
// runs on the sender's reader goroutine and waits for the answer, at most
// queueOfferTimeout (errQueueNoAnswer; the message may then have been
// taken or not).
func (cb *Bus) SendQueue(ctx context.Context, dest string, headers []stomp.Header, body []byte) (bool, error) {
	if cb.ctx.Err() != nil {
		return false, errBusClosed
	}
	subj := busQueueSubject + BusToken(dest)
	data := AppendBusMessage(nil, "", BusMessage{Dest: dest, Headers: headers, Body: body})
	for range queueOfferTries {
		res, err := cb.offer(ctx, subj, data)
		if err != nil {
			return false, err
		}
		if res == offerTaken {
			return true, nil
		}
		if res == offerNobody {
			break
		}
	}
	return false, nil
}

// offer asks the queue group of subj to take data.
func (cb *Bus) offer(ctx context.Context, subj string, data []byte) (offerResult, error) {
	ctx, cancel := context.WithTimeout(ctx, queueOfferTimeout)
	defer cancel()
	reply, err := cb.nc.RequestWithContext(ctx, subj, data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return offerNobody, nil
	case errors.Is(err, context.DeadlineExceeded):
		return 0, errQueueNoAnswer
	case err != nil:
		return 0, fmt.Errorf("cluster queue offer: %w", err)
	}
	switch r := string(reply.Data); {
	case r == queueReplyTaken:
		return offerTaken, nil
	case strings.HasPrefix(r, queueReplyFull):
		// "full" and the refusal's words (takeOffer): the sender's ERROR
		// names the limit of the node that refused, as on one node.
		return 0, broker.RemoteQueueFull(strings.TrimSpace(strings.TrimPrefix(r, queueReplyFull)))
	}
	return offerRefused, nil
}

// takeOffer answers a queue offer made to this node: into the local queue
// if it still has a consumer here, else refused so that the sender asks
// another node.
func (cb *Bus) takeOffer(m *nats.Msg) {
	reply := queueReplyRefused
	if _, msg, err := DecodeBusMessage(m.Data); err != nil {
		cb.log.Error("cluster queue offer refused", "err", err, "subject", m.Subject)
	} else if taken, err := cb.b.TakeRemoteQueue(msg.Dest, msg.Headers, msg.Body); err != nil {
		text, _ := stomp.ClientMessage(err)
		reply = queueReplyFull + " " + text // the caps of the node that holds it (queue_limits.go)
	} else if taken {
		reply = queueReplyTaken
	}
	if err := m.Respond([]byte(reply)); err != nil {
		cb.log.Error("cluster queue answer failed", "err", err, "subject", m.Subject)
	}
}

// QueueConsumersChanged makes this node a member of queue dest's group
// while the queue has a consumer here, and not otherwise (Bus). The queue
// calls it when its first consumer comes and its last goes (outside its
// lock), queueLoop every beat; it reads the current count, so calls that
// race settle on the truth.
func (cb *Bus) QueueConsumersChanged(dest string) {
	cb.qmu.Lock()
	defer cb.qmu.Unlock()
	if cb.qclosed {
		return
	}
	want := cb.b.QueueConsumers(dest) > 0
	sub, have := cb.qsubs[dest]
	switch {
	case want && !have:
		token := BusToken(dest)
		s, err := cb.nc.ChanQueueSubscribe(busQueueSubject+token, busQueueGroup, cb.in)
		if err != nil {
			cb.log.Error("cluster queue subscribe failed", "err", err, "destination", dest)
			return
		}
		cb.qsubs[dest] = s
		// Nodes holding messages for the queue offer them now. This is
		// published after the subscription on the same connection, so the
		// server knows the new member by the time they ask.
		cb.publishRaw(busQueueReadySubject+token, nil)
	case !want && have:
		if err := cb.unsubscribe([]*nats.Subscription{sub}); err != nil {
			cb.log.Error("cluster queue unsubscribe failed", "err", err, "destination", dest)
		}
		delete(cb.qsubs, dest)
		wake(cb.queuesDue) // what is held here, or comes back unacknowledged, goes elsewhere
	}
}

// HeldIdle is told that a queue holds messages with no consumer here (Bus).
func (cb *Bus) HeldIdle() {
	wake(cb.queuesDue)
}

// queueLoop offers the messages that queues hold while they have no
// consumer here to the other nodes, when woken (a node announced a
// consumer, this node lost its last one) and every beat.
func (cb *Bus) queueLoop() {
	defer cb.wg.Done()
	for {
		select {
		case <-cb.ctx.Done():
			return
		case <-cb.queuesDue:
			cb.offerHeld()
		}
	}
}

// offerHeld offers each idle queue's messages in order, and gives back
// what nobody took, stopping at the first refusal. A message whose offer
// timed out is given back too, so it may reach two consumers: at least
// once here, rather than lost.
func (cb *Bus) offerHeld() {
	for _, name := range cb.b.Queues() {
		if cb.ctx.Err() != nil {
			return
		}
		cb.QueueConsumersChanged(name) // heals a subscribe that failed
		subj := ""
		cb.b.OfferIdleQueue(name, func(dest string, headers []stomp.Header, body []byte) bool {
			if subj == "" {
				subj = busQueueSubject + BusToken(name)
			}
			res, err := cb.offer(cb.ctx, subj, AppendBusMessage(nil, "", BusMessage{Dest: dest, Headers: headers, Body: body}))
			if err != nil && cb.ctx.Err() == nil && !errors.Is(err, broker.ErrQueueFull) {
				cb.log.Warn("held queue message not offered", "err", err, "destination", name)
			}
			return err == nil && res == offerTaken
		})
	}
}
