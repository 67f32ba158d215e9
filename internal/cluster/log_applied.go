package cluster

// log_applied.go: how far each running node applied the log, asked over
// core NATS. A compaction purges the log only below the lowest position a
// running node has applied (Compactor.appliedBound): the nodes read the
// log by sequence with direct gets (log_reader.go), so no consumer's
// delivered position tells the compactor who still needs which entries.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
)

const (
	// appliedSubject is where every running node answers with its name
	// and the last log entry its database holds (appliedReply).
	appliedSubject = "stompbox.cluster.applied"
	// appliedAskWait bounds how long a compaction collects the answers: a
	// node answers in well under a millisecond, so one that is silent
	// this long is not serving (or cut off) and the purge waits for the
	// next compaction.
	appliedAskWait = 2 * time.Second
)

// appliedReply is one node's answer on appliedSubject.
type appliedReply struct {
	Node    string `json:"node"`
	Applied uint64 `json:"applied"`
	// Stopped is true when the node's applier stopped (a gap, an entry
	// of a newer format): it restores the newest snapshot when restarted,
	// and holds no purge.
	Stopped bool `json:"stopped,omitempty"`
}

// answerApplied starts answering on appliedSubject; Close ends it.
func (l *Log) answerApplied() error {
	sub, err := l.Js.Conn().Subscribe(appliedSubject, func(m *nats.Msg) {
		b, _ := json.Marshal(appliedReply{Node: l.node, Applied: l.Applied.Load(), Stopped: l.stall.Load() != nil})
		m.Respond(b)
	})
	if err != nil {
		return fmt.Errorf("cluster log: answer the applied position: %w", err)
	}
	l.answer = sub
	return nil
}

// askApplied collects the nodes' answers on appliedSubject for at most
// appliedAskWait, or until every node in want answered.
func askApplied(ctx context.Context, nc *nats.Conn, want []string) (map[string]appliedReply, error) {
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("ask the nodes' applied positions: %w", err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(appliedSubject, inbox, nil); err != nil {
		return nil, fmt.Errorf("ask the nodes' applied positions: %w", err)
	}
	got := make(map[string]appliedReply)
	actx, cancel := context.WithTimeout(ctx, appliedAskWait)
	defer cancel()
	for {
		if len(want) > 0 && !slices.ContainsFunc(want, func(n string) bool { _, ok := got[n]; return !ok }) {
			return got, nil
		}
		msg, err := sub.NextMsgWithContext(actx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return got, nil // the time is up: who answered, answered
		}
		var r appliedReply
		if json.Unmarshal(msg.Data, &r) != nil || r.Node == "" {
			continue
		}
		got[r.Node] = r
	}
}

// HoldApplier makes the applier stop reading the log until release is
// called, as a slow node's would: for tests of what a compaction leaves
// to a node that has not applied the newest entries.
func (l *Log) HoldApplier() (release func()) {
	ch := make(chan struct{})
	l.hold.Store(&ch)
	return func() {
		if l.hold.CompareAndSwap(&ch, nil) {
			close(ch)
		}
	}
}

// held waits while a test holds the applier (HoldApplier), or until ctx
// ends.
func (l *Log) held(ctx context.Context) {
	if h := l.hold.Load(); h != nil {
		select {
		case <-ctx.Done():
		case <-*h:
		}
	}
}
