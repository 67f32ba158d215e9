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
	rates := s.cfg.RateLimits
	if n := s.clusterNodes(); n > 1 && rates.LoginsPerIP > 0 {
		rates.LoginsPerIP = max(1, rates.LoginsPerIP/n) // each node counts alone: the cluster's total stays -login-rate
	}
	s.limiter = ratelimit.New(rates)
	s.glue = chatstomp.New(s.auth, s.log)
	s.glue.LimitLogins(s.limiter) // a STOMP CONNECT with a password counts as an HTTP login does
	s.broker = broker.New(broker.Config{
		Limits:               limits,
		MaxConnections:       s.cfg.MaxConnections,
		MaxSubscriptions:     s.cfg.MaxSubscriptions,
		MaxUserSubscriptions: s.cfg.MaxUserSubs,
		HeartBeat:            s.cfg.HeartBeat,
		ServerName:           "stompbox/" + buildVersion,
		Auth:                 s.glue,
		Limiter:              s.limiter,
		QueueBytes:           mibOrOff(s.cfg.QueueMiB),
		QueueBytesPerQueue:   mibOrOff(s.cfg.QueueMiBPerQueue),
		MaxQueues:            s.cfg.MaxQueues,
		QueueTTL:             s.cfg.QueueTTL,
		MemoryMark:           mibOrOff(s.cfg.MemoryMarkMiB),
		DenyAnonymousQueues:  s.cfg.NoAnonQueues,
	}, s.log)
	return nil
}

// mibOrOff turns an option in MiB into the broker's bytes: 0 stays 0 (the
// default), below 0 stays below (off).
func mibOrOff(n int) int64 {
	if n < 0 {
		return -1
	}
	return int64(n) << 20
}

// clusterNodes is how many nodes the login limits are shared by: each
// node counts logins alone, so the per-node limits are the options
// divided by it. It is the larger of -cluster-peers' length (the README
// lists every node there) and the nodes this node found from it (up to
// three); 1 on a single node. With -nats only the log's replica count is
// known.
func (s *server) clusterNodes() int {
	n := len(s.cfg.Cluster.Peers)
	if s.cluster != nil {
		n = max(n, s.cluster.Replicas)
	}
	return max(n, 1)
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
