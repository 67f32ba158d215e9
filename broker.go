// broker.go is the broker's face: it builds the broker from the options,
// with the STOMP glue that authenticates connections and routes the chat's
// destinations, and on a cluster node attaches the cluster bus so that
// topics, queues, user destinations and presence span the nodes. The
// broker itself is internal/broker; the bus that implements its Bus
// interface is internal/cluster.

package main

import (
	"fmt"

	"stompbox/internal/broker"
	"stompbox/internal/chatstomp"
	"stompbox/internal/cluster"
	"stompbox/internal/ratelimit"
	"stompbox/internal/stomp"
)

// newBroker makes the rate limiter, the STOMP glue and the broker. The
// glue authenticates for the broker; it gets its chat service later
// (newChat), before any connection is served.
func (s *server) newBroker() error {
	limits := stomp.DefaultLimits()
	if s.cfg.MaxFrame > 0 {
		limits.MaxFrame = s.cfg.MaxFrame
	}
	s.limiter = ratelimit.New(s.cfg.RateLimits)
	s.glue = chatstomp.New(s.auth, s.log)
	s.broker = broker.New(broker.Config{
		Limits:               limits,
		MaxConnections:       s.cfg.MaxConnections,
		MaxSubscriptions:     s.cfg.MaxSubscriptions,
		MaxUserSubscriptions: s.cfg.MaxUserSubs,
		HeartBeat:            s.cfg.HeartBeat,
		ServerName:           "stompbox/" + buildVersion,
		Auth:                 s.glue,
		Limiter:              s.limiter,
	}, s.log)
	return nil
}

// attachClusterBus makes the bus that carries the broker's traffic to the
// other nodes, on a cluster node. It comes before the log is applied and
// before any client: the bus learns presence and queues only from changes
// it sees. leaveCluster closes it.
func (s *server) attachClusterBus() error {
	if s.cluster == nil {
		return nil
	}
	bus, err := cluster.NewBus(s.cluster.Nc, s.broker, s.cluster.Node, s.log)
	if err != nil {
		return fmt.Errorf("cluster bus: %w", err)
	}
	s.bus = bus
	return nil
}
