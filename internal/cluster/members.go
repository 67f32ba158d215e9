package cluster

// members.go: a node that will not come back is removed from the
// replicated streams (the log and the object stores), so that JetStream
// puts their copies on the live nodes and the cluster reports 3 current
// copies again, and from JetStream's meta group ($JS.API.SERVER.REMOVE,
// over an in-process connection as the embedded server's system user),
// so that the cluster counts only live servers and its quorum is a
// majority of them.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// peerRemoveTimeout bounds one stream's peer removal request.
const peerRemoveTimeout = 10 * time.Second

// ErrPeerOnline refuses to remove a node that is still up.
var ErrPeerOnline = errors.New("cluster: that node is online: stop it for good first")

// replicatedStreams are the streams whose copies a removed node held.
func replicatedStreams() []string {
	return []string{logStream, objectStream(blobBucket), objectStream(snapBucket), objectStream(scratchBucket)}
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
	var info *jetstream.StreamInfo
	if err := retryTransient(ctx, func(ctx context.Context) (err error) {
		info, err = l.stream.Info(ctx)
		return err
	}); err != nil {
		return nil, fmt.Errorf("cluster remove: %w", err)
	}
	if c := info.Cluster; c != nil {
		if c.Leader == node {
			return nil, ErrPeerOnline
		}
		if l.ns == nil { // with -nats: as the log's copies see it
			for _, r := range c.Replicas {
				if r.Name == node && !r.Offline && r.Active < 10*time.Second {
					return nil, ErrPeerOnline
				}
			}
		}
	}
	if l.routed(node) {
		return nil, ErrPeerOnline
	}
	var removed []string
	var errs []error
	for _, name := range replicatedStreams() {
		var ok bool
		err := retryTransient(ctx, func(ctx context.Context) (err error) {
			ok, err = l.removeStreamPeer(ctx, name, node)
			return err
		})
		switch {
		case err != nil:
			errs = append(errs, err)
		case ok:
			removed = append(removed, name)
		}
	}
	if len(errs) > 0 {
		return removed, errors.Join(errs...)
	}
	var ok bool
	err := retryTransient(ctx, func(ctx context.Context) (err error) {
		ok, err = l.removeServer(ctx, node)
		return err
	})
	if ok {
		removed = append(removed, MetaGroup)
	}
	return removed, err
}

// retryTransient runs a removal step again while it fails for a while
// only (no JetStream leader, as after the removed node's own stop, or a
// request without an answer), for at most peerRemoveTimeout.
func retryTransient(ctx context.Context, step func(context.Context) error) error {
	giveUp := time.Now().Add(peerRemoveTimeout)
	for {
		sctx, cancel := context.WithTimeout(ctx, peerRemoveTimeout/3)
		err := step(sctx)
		cancel()
		transient := err != nil && ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
			errors.Is(err, nats.ErrNoResponders) || strings.Contains(err.Error(), "temporarily unavailable"))
		if !transient || time.Now().After(giveUp) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// MetaGroup names JetStream's meta group among RemovePeer's answers.
const MetaGroup = "meta group"

// removeServer removes node from JetStream's meta group. ok is false when
// it was no member (removed before) or with an external NATS, whose
// operator removes servers with its own tools.
func (l *Log) removeServer(ctx context.Context, node string) (ok bool, err error) {
	if l.ns == nil {
		return false, nil
	}
	nc, err := nats.Connect("", nats.InProcessServer(l.ns), nats.UserInfo(systemUser, l.sysPass), nats.Name("stompbox "+l.node+" (system)"))
	if err != nil {
		return false, fmt.Errorf("cluster remove: meta group: %w", err)
	}
	defer nc.Close()
	req, _ := json.Marshal(map[string]string{"peer": node})
	giveUp := time.Now().Add(peerRemoveTimeout)
	for {
		rctx, cancel := context.WithTimeout(ctx, peerRemoveTimeout)
		msg, err := nc.RequestWithContext(rctx, "$JS.API.SERVER.REMOVE", req)
		cancel()
		if err != nil {
			return false, fmt.Errorf("cluster remove: meta group: %w", err)
		}
		var resp struct {
			Success bool `json:"success"`
			Error   *struct {
				Code        int    `json:"err_code"`
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(msg.Data, &resp); err != nil {
			return false, fmt.Errorf("cluster remove: meta group: %w", err)
		}
		switch {
		case resp.Error == nil && resp.Success:
			return true, nil
		case resp.Error != nil && resp.Error.Code == int(natsserver.JSClusterServerNotMemberErr):
			return false, nil
		case resp.Error != nil && resp.Error.Code == int(natsserver.JSClusterServerMemberChangeInflightErr):
			// One change at a time: the streams' own may still be going on.
			if time.Now().After(giveUp) {
				return false, fmt.Errorf("cluster remove: meta group: %s", resp.Error.Description)
			}
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		default:
			d := "refused"
			if resp.Error != nil {
				d = resp.Error.Description
			}
			return false, fmt.Errorf("cluster remove: meta group: %s", d)
		}
	}
}

// removeStreamPeer asks JetStream to drop node's copy of stream. ok is
// false when node held none.
func (l *Log) removeStreamPeer(ctx context.Context, stream, node string) (ok bool, err error) {
	s, err := l.Js.Stream(ctx, stream)
	if isNoStream(err) {
		return false, nil // not made yet (a bucket this version added): no copies to move
	}
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

// routed reports whether this node's NATS has a route to node's: the
// nodes route to each other directly, and a node that died loses its
// routes at once. (JetStream's own view of a peer, its last-seen time,
// is kept by a group's leader only, and a killed server is marked
// offline only minutes later.)
func (l *Log) routed(node string) bool {
	if l.ns == nil {
		return false
	}
	rz, err := l.ns.Routez(&natsserver.RoutezOptions{})
	if err != nil {
		return false
	}
	for _, r := range rz.Routes {
		if r.RemoteName == node {
			return true
		}
	}
	return false
}
