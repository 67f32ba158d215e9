package cluster

// members.go: a node that will not come back is removed from the
// replicated streams (the log and the object stores), so that JetStream
// puts their copies on the live nodes and the cluster reports 3 current
// copies again.
//
// What it does not do: remove the node from JetStream's meta group, which
// only a system-account connection may ask ($JS.API.SERVER.REMOVE) and the
// embedded server's configuration has none. The meta group then still
// counts the dead node among its peers.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// peerRemoveTimeout bounds one stream's peer removal request.
const peerRemoveTimeout = 10 * time.Second

// ErrPeerOnline refuses to remove a node that is still up.
var ErrPeerOnline = errors.New("cluster: that node is online: stop it for good first")

// replicatedStreams are the streams whose copies a removed node held.
func replicatedStreams() []string {
	return []string{logStream, objectStream(blobBucket), objectStream(snapBucket)}
}

// RemovePeer removes node from every replicated stream's copies (JetStream
// peer removal): each stream's meta leader places a new copy on a live
// node that holds none, which then catches up. It refuses this node
// itself and a node that the log reports online. It returns the streams
// the node was removed from.
func (l *Log) RemovePeer(ctx context.Context, node string) ([]string, error) {
	if node == "" || node == l.node {
		return nil, fmt.Errorf("cluster: cannot remove %q: name another node than this one", node)
	}
	info, err := l.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster remove: %w", err)
	}
	if c := info.Cluster; c != nil {
		if c.Leader == node {
			return nil, ErrPeerOnline
		}
		for _, r := range c.Replicas {
			if r.Name == node && !r.Offline && r.Active < 10*time.Second {
				return nil, ErrPeerOnline
			}
		}
	}
	var removed []string
	var errs []error
	for _, name := range replicatedStreams() {
		ok, err := l.removeStreamPeer(ctx, name, node)
		switch {
		case err != nil:
			errs = append(errs, err)
		case ok:
			removed = append(removed, name)
		}
	}
	return removed, errors.Join(errs...)
}

// removeStreamPeer asks JetStream to drop node's copy of stream. ok is
// false when node held none.
func (l *Log) removeStreamPeer(ctx context.Context, stream, node string) (ok bool, err error) {
	s, err := l.Js.Stream(ctx, stream)
	if err != nil {
		return false, fmt.Errorf("cluster remove: %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("cluster remove: %s: %w", stream, err)
	}
	if info.Cluster == nil || !slices.ContainsFunc(info.Cluster.Replicas, func(r *jetstream.PeerInfo) bool { return r.Name == node }) {
		return false, nil
	}
	req, _ := json.Marshal(map[string]string{"peer": node})
	rctx, cancel := context.WithTimeout(ctx, peerRemoveTimeout)
	defer cancel()
	msg, err := l.Js.Conn().RequestWithContext(rctx, "$JS.API.STREAM.PEER.REMOVE."+stream, req)
	if err != nil {
		return false, fmt.Errorf("cluster remove: %s: %w", stream, err)
	}
	var resp struct {
		Success bool `json:"success"`
		Error   *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return false, fmt.Errorf("cluster remove: %s: %w", stream, err)
	}
	if resp.Error != nil || !resp.Success {
		d := "refused"
		if resp.Error != nil {
			d = resp.Error.Description
		}
		return false, fmt.Errorf("cluster remove: %s: %s", stream, d)
	}
	return true, nil
}
