package cluster

import (
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"
)

// bus_presence.go: presence across nodes: this node's presence as
// numbered deltas, beats and snapshots, and what the other live nodes said
// of theirs.

// PresenceKey is one user at one presence key.
type PresenceKey struct{ key, user string }

// remoteNode is what this node knows of another node's presence.
type remoteNode struct {
	inst     string
	seq      uint64    // state is complete up to this sequence number, when synced
	synced   bool      // false after a gap, until a snapshot arrives
	lastSeen time.Time // anything from the node; presenceTTL after it the node is gone
	asked    time.Time // when we last asked it for a snapshot
	state    map[string]map[string]struct{}
	snap     map[string]map[string]struct{} // the snapshot being received, part by part
	snapSeq  uint64
}

// NoteOnline records that user's first session on this node connected
// (on) or their last went, under connectedKey (Bus).
func (cb *Bus) NoteOnline(user string, on bool) {
	cb.NotePresence(ConnectedKey, user, on)
}

// NotePresence records a change of this node's presence for the next
// delta (Bus): the caller holds its own lock.
func (cb *Bus) NotePresence(key, user string, on bool) {
	cb.pmu.Lock()
	users := cb.local[key]
	if on {
		if users == nil {
			users = make(map[string]struct{})
			cb.local[key] = users
		}
		users[user] = struct{}{}
	} else if users != nil {
		delete(users, user)
		if len(users) == 0 {
			delete(cb.local, key)
		}
	}
	cb.changed[PresenceKey{key, user}] = struct{}{}
	cb.pmu.Unlock()
	wake(cb.presenceDue)
}

// RemoteOnline reports whether user is connected to another live node.
func (cb *Bus) RemoteOnline(user string) bool {
	cb.pmu.RLock()
	defer cb.pmu.RUnlock()
	for _, n := range cb.nodes {
		if _, ok := n.state[ConnectedKey][user]; ok {
			return true
		}
	}
	return false
}

// RemotePresence returns the users present at key on other live nodes,
// unsorted, with a user on two nodes named twice.
func (cb *Bus) RemotePresence(key string) []string {
	cb.pmu.RLock()
	defer cb.pmu.RUnlock()
	var users []string
	for _, n := range cb.nodes {
		for u := range n.state[key] {
			users = append(users, u)
		}
	}
	return users
}

// presenceLoop is the only goroutine that publishes presence: deltas when
// local presence changed, a snapshot when asked, a beat every presenceBeat.
// Each beat it also drops the nodes silent for presenceTTL and wakes
// queueLoop.
func (cb *Bus) presenceLoop() {
	defer cb.wg.Done()
	beat := time.NewTicker(PresenceBeat)
	defer beat.Stop()
	for {
		select {
		case <-cb.ctx.Done():
			return
		case <-cb.presenceDue:
			cb.publishChanges()
		case <-cb.snapshotDue:
			cb.publishSnapshot()
		case now := <-beat.C:
			cb.SendPresence(PresenceMsg{Kind: presenceKindBeat, Seq: cb.seq})
			cb.expireNodes(now)
			wake(cb.queuesDue)
		}
	}
}

// publishChanges publishes the local changes since the last delta, as the
// state they ended in, in as many numbered parts as they need.
func (cb *Bus) publishChanges() {
	cb.pmu.Lock()
	keys := slices.SortedFunc(maps.Keys(cb.changed), func(a, b PresenceKey) int {
		return cmp.Or(strings.Compare(a.key, b.key), strings.Compare(a.user, b.user))
	})
	sp := PresenceSplitter{Budget: cb.partBudget()}
	for _, k := range keys {
		_, on := cb.local[k.key][k.user]
		sp.Add(k.key, k.user, on)
	}
	clear(cb.changed)
	cb.pmu.Unlock()
	for _, part := range sp.Done() {
		cb.seq++
		cb.SendPresence(PresenceMsg{Kind: PresenceKindDelta, Seq: cb.seq, Set: part})
	}
}

// publishSnapshot publishes all of this node's presence under a new
// sequence number, in parts; it covers the changes not yet in a delta.
func (cb *Bus) publishSnapshot() {
	cb.pmu.Lock()
	sp := PresenceSplitter{Budget: cb.partBudget()}
	for key, users := range cb.local {
		for u := range users {
			sp.Add(key, u, true)
		}
	}
	clear(cb.changed)
	cb.pmu.Unlock()
	parts := sp.Done()
	if len(parts) == 0 {
		parts = [][]PresenceGroup{nil}
	}
	cb.seq++
	for i, part := range parts {
		cb.SendPresence(PresenceMsg{Kind: presenceKindSnap, Seq: cb.seq, Part: i, Last: i == len(parts)-1, Set: part})
	}
}

// partBudget is how many bytes of presence go in one NATS message.
func (cb *Bus) partBudget() int {
	if mp := int(cb.nc.MaxPayload()); mp > 0 && mp/2 < presencePartBytes {
		return mp / 2
	}
	return presencePartBytes
}

func (cb *Bus) SendPresence(pm PresenceMsg) {
	pm.Node, pm.Inst = cb.node, cb.inst
	data, err := json.Marshal(pm)
	if err != nil {
		cb.log.Error("cluster presence not encoded", "err", err)
		return
	}
	cb.publishRaw(busPresenceSubject+BusToken(cb.node), data)
}

// PresenceSplitter cuts presence into groups that fit the budget per
// message, by an upper bound of their JSON size.
type PresenceSplitter struct {
	Budget int
	size   int
	cur    []PresenceGroup
	parts  [][]PresenceGroup
}

func (s *PresenceSplitter) Add(key, user string, on bool) {
	n := jsonLen(user) + 1
	last := len(s.cur) - 1
	if last < 0 || s.cur[last].Key != key || s.size+n > s.Budget {
		head := jsonLen(key) + len(`{"key":,"on":[],"off":[]},`)
		if len(s.cur) > 0 && s.size+head+n > s.Budget {
			s.parts = append(s.parts, s.cur)
			s.cur, s.size = nil, 0
		}
		s.cur = append(s.cur, PresenceGroup{Key: key})
		s.size += head
		last = len(s.cur) - 1
	}
	if g := &s.cur[last]; on {
		g.On = append(g.On, user)
	} else {
		g.Off = append(g.Off, user)
	}
	s.size += n
}

func (s *PresenceSplitter) Done() [][]PresenceGroup {
	if len(s.cur) > 0 {
		s.parts = append(s.parts, s.cur)
	}
	return s.parts
}

// jsonLen bounds the length of s as a JSON string: encoding/json writes
// control characters and <, >, & as \u00XX, and U+2028/9 as six bytes for
// three (counted as two per byte of any non-ASCII character).
func jsonLen(s string) int {
	n := 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			n += 6
		case c == '"' || c == '\\' || c >= 0x80:
			n += 2
		default:
			n++
		}
	}
	return n
}

// applyPresence takes in a node's presence message and tells the broker's
// remote presence hooks which lists changed.
func (cb *Bus) applyPresence(data []byte) {
	var pm PresenceMsg
	if err := json.Unmarshal(data, &pm); err != nil || pm.Node == "" {
		cb.log.Error("cluster presence dropped", "err", err)
		return
	}
	if pm.Inst == cb.inst {
		return // our own, back from NATS
	}
	now := time.Now()
	changed := make(map[string]struct{})
	ask := false
	cb.pmu.Lock()
	n := cb.nodes[pm.Node]
	if n != nil && n.inst != pm.Inst {
		cb.dropNodeLocked(pm.Node, n, changed) // restarted: the last run's word is void
		n = nil
	}
	if n == nil && pm.Kind != presenceKindBye {
		n = &remoteNode{inst: pm.Inst, state: make(map[string]map[string]struct{})}
		cb.nodes[pm.Node] = n
	}
	if n != nil {
		n.lastSeen = now
		ask = cb.applyLocked(pm, n, changed)
		if ask && now.Sub(n.asked) >= PresenceBeat {
			n.asked = now
		} else {
			ask = false
		}
	}
	cb.pmu.Unlock()
	if ask {
		cb.publishRaw(busSyncSubject, []byte(pm.Node))
	}
	cb.presenceChanged(changed)
}

// applyLocked applies pm to n and reports whether n must be asked for a
// snapshot: it skipped a sequence number, or we joined after it started.
func (cb *Bus) applyLocked(pm PresenceMsg, n *remoteNode, changed map[string]struct{}) bool {
	switch pm.Kind {
	case presenceKindBye:
		cb.dropNodeLocked(pm.Node, n, changed)
	case presenceKindSnap:
		if pm.Part == 0 {
			n.snap, n.snapSeq = make(map[string]map[string]struct{}), pm.Seq
		}
		if n.snap == nil || n.snapSeq != pm.Seq {
			n.snap, n.synced = nil, false // a part went missing
			return true
		}
		for _, g := range pm.Set {
			for _, u := range g.On {
				addPresence(n.snap, g.Key, u)
			}
		}
		if !pm.Last {
			return false
		}
		for key, users := range n.state {
			for u := range users {
				if _, ok := n.snap[key][u]; !ok {
					cb.setRemoteLocked(n, key, u, false, changed)
				}
			}
		}
		for key, users := range n.snap {
			for u := range users {
				cb.setRemoteLocked(n, key, u, true, changed)
			}
		}
		n.snap, n.seq, n.synced = nil, pm.Seq, true
	case PresenceKindDelta:
		if !n.synced || pm.Seq != n.seq+1 {
			n.synced = false
			return true
		}
		for _, g := range pm.Set {
			for _, u := range g.On {
				cb.setRemoteLocked(n, g.Key, u, true, changed)
			}
			for _, u := range g.Off {
				cb.setRemoteLocked(n, g.Key, u, false, changed)
			}
		}
		n.seq = pm.Seq
	case presenceKindBeat:
		if !n.synced || pm.Seq != n.seq {
			n.synced = false
			return true
		}
	}
	return false
}

func addPresence(m map[string]map[string]struct{}, key, user string) {
	users := m[key]
	if users == nil {
		users = make(map[string]struct{})
		m[key] = users
	}
	users[user] = struct{}{}
}

// setRemoteLocked sets whether user is present at key on node n, and adds
// key to changed when that changes the cluster's list for key.
func (cb *Bus) setRemoteLocked(n *remoteNode, key, user string, on bool, changed map[string]struct{}) {
	if _, had := n.state[key][user]; had == on {
		return
	}
	before := cb.presentLocked(key, user)
	if on {
		addPresence(n.state, key, user)
	} else {
		delete(n.state[key], user)
		if len(n.state[key]) == 0 {
			delete(n.state, key)
		}
	}
	if cb.presentLocked(key, user) != before {
		changed[key] = struct{}{}
	}
}

// presentLocked reports whether user is present at key anywhere.
func (cb *Bus) presentLocked(key, user string) bool {
	if _, ok := cb.local[key][user]; ok {
		return true
	}
	for _, n := range cb.nodes {
		if _, ok := n.state[key][user]; ok {
			return true
		}
	}
	return false
}

// dropNodeLocked forgets node name and everyone on it.
func (cb *Bus) dropNodeLocked(name string, n *remoteNode, changed map[string]struct{}) {
	for key, users := range n.state {
		for u := range users {
			cb.setRemoteLocked(n, key, u, false, changed)
		}
	}
	delete(cb.nodes, name)
}

// expireNodes drops the nodes silent for presenceTTL.
func (cb *Bus) expireNodes(now time.Time) {
	changed := make(map[string]struct{})
	var gone []string
	cb.pmu.Lock()
	for name, n := range cb.nodes {
		if now.Sub(n.lastSeen) > PresenceTTL {
			cb.dropNodeLocked(name, n, changed)
			gone = append(gone, name)
		}
	}
	cb.pmu.Unlock()
	for _, name := range gone {
		cb.log.Info("cluster node silent, its users dropped", "peer", name, "silent-for", PresenceTTL)
	}
	cb.presenceChanged(changed)
}

// presenceChanged runs the broker's remote presence hooks for each key
// whose list changed (not for connectedKey: isOnline asks when it needs to).
func (cb *Bus) presenceChanged(changed map[string]struct{}) {
	for key := range changed {
		if key == ConnectedKey {
			continue
		}
		cb.b.RemotePresenceChanged(key)
	}
}
