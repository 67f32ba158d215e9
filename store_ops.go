package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
)

// storeOp is one write to the database, described by value so that it can
// be replayed: on one node it runs at once in the writer's group commit;
// in a cluster it is appended to the replicated log first and every node
// applies it, in log order, to its own SQLite copy (cluster_log.go).
//
// apply must be deterministic in (database state, the op's exported
// fields, e.at): no clock, no randomness, no node-local state. Anything
// random (tokens, salts) or node-local (who is online here) is decided by
// the caller before submitting and carried in the op. apply may run more
// than once (a group that fails is retried request by request), so it
// resets its results first. Results go into unexported fields, which the
// log does not carry; the submitting node reads them after run returns.
type storeOp interface {
	opKind() string
	apply(e *opEnv, tx *sql.Tx) error
}

// storeEffects is what a committed op does on this node beyond the
// database: the chat service delivers the change to this node's own
// clients. The store calls Committed for every op that committed, local
// or from the cluster log, on the writer goroutine in commit order, so
// that subscribers see messages in id order. Committed must be quick and
// must not write to the store. The op holds its results (and its refusal,
// if it recorded one).
type storeEffects interface {
	Committed(op storeOp)
}

// setEffects attaches fx, whose Committed runs after each op from now on.
// Called once at wiring, before the store serves; without it (the user
// CLI, store tests) ops have no effect beyond the database.
func (s *store) setEffects(fx storeEffects) { s.fx = fx }

// opEnv is what an op may use while it is applied. One exists per op.
type opEnv struct {
	ctx context.Context // the writer's: never a request's (a group must not fail because one sender left)
	st  *store
	at  int64 // the op's clock reading, Unix ms, taken where it was submitted
	// replay is true when the op came from the cluster log: node-local
	// decisions (who is online) were taken by the submitting node and
	// are in the op.
	replay bool
}

// opReplicator sends ops to a replicated log and returns once the op was
// applied on this node (cluster_log.go). nil on a single node.
type opReplicator interface {
	submit(ctx context.Context, op storeOp, dedupKey string) error
	// waitCaughtUp returns once the node has applied what the log holds
	// now, or after a short bound (see store.missAfterCatchUp).
	waitCaughtUp(ctx context.Context)
}

// run applies op: directly on a single node, through the replicated log in
// a cluster. dedupKey, when not empty, names the op for the log's
// duplicate detection (a resent chat message): a second op with the same
// key within the log's window is not applied again.
func (s *store) run(ctx context.Context, op storeOp) error {
	return s.runKeyed(ctx, op, "")
}

// runKeyed is run with a de-duplication key (see run).
func (s *store) runKeyed(ctx context.Context, op storeOp, dedupKey string) error {
	if s.repl != nil {
		return s.repl.submit(ctx, op, dedupKey)
	}
	return s.applyAt(ctx, op, s.nowMS(), false)
}

// applyAt applies op on the writer at clock reading at (Unix ms) and waits
// for its commit; its effects run after the commit. replay is true for an
// op that came from the cluster log (see opEnv).
func (s *store) applyAt(ctx context.Context, op storeOp, at int64, replay bool) error {
	e := s.newEnv(at, replay)
	return s.write(ctx, func(tx *sql.Tx) error { return op.apply(e, tx) }, s.effectsOf(op))
}

// newEnv returns an environment for one op at clock reading at.
func (s *store) newEnv(at int64, replay bool) *opEnv {
	return &opEnv{ctx: context.Background(), st: s, at: at, replay: replay}
}

// effectsOf returns the function the writer runs after op commits, nil
// when no effects are attached.
func (s *store) effectsOf(op storeOp) func() {
	fx := s.fx
	if fx == nil {
		return nil
	}
	return func() { fx.Committed(op) }
}

// opEnvelope is an op as the log carries it.
type opEnvelope struct {
	Kind string          `json:"k"`
	At   int64           `json:"at"`          // clock reading at the submitting node, Unix ms
	Node string          `json:"n"`           // submitting node, for logs and status
	Ref  string          `json:"r,omitempty"` // the submitting node's reference, to find its waiting caller
	Op   json.RawMessage `json:"o"`
}

// encodeOp marshals op with its clock reading for the log.
func encodeOp(op storeOp, at int64, node string) ([]byte, error) {
	return encodeOpRef(op, at, node, "")
}

// encodeOpRef is encodeOp with the submitting node's reference.
func encodeOpRef(op storeOp, at int64, node, ref string) ([]byte, error) {
	b, err := json.Marshal(op)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", op.opKind(), err)
	}
	return json.Marshal(opEnvelope{Kind: op.opKind(), At: at, Node: node, Ref: ref, Op: b})
}

// decodeOp is encodeOp's inverse.
func decodeOp(b []byte) (storeOp, opEnvelope, error) {
	var env opEnvelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, env, fmt.Errorf("decode op: %w", err)
	}
	op := newOpOfKind(env.Kind)
	if op == nil {
		return nil, env, fmt.Errorf("decode op: unknown kind %q (a newer node wrote it?)", env.Kind)
	}
	if err := json.Unmarshal(env.Op, op); err != nil {
		return nil, env, fmt.Errorf("decode %s: %w", env.Kind, err)
	}
	return op, env, nil
}

// opKinds lists every op type, for decodeOp. A kind is part of the log's
// format: renaming one breaks replay of older logs, so kinds are only
// ever added.
func opKinds() []storeOp {
	return []storeOp{
		&markReadOp{},

		// Accounts, sessions, tokens, settings and invites
		// (store_users.go), retention and notifications
		// (store_messages.go), uploads (store_files.go).
		&userCreateOp{},
		&passwordSetOp{},
		&userDeleteOp{},
		&webhookSetOp{},
		&sessionCreateOp{},
		&sessionDeleteOp{},
		&tokenCreateOp{},
		&tokenDeleteOp{},
		&settingSetOp{},
		&inviteCreateOp{},
		&purgeOp{},
		&deliveredOp{},
		&fileInsertOp{},
		&abandonedFilesDeleteOp{},
		&unsentFileDeleteOp{},
		// End of the store_* block.

		// The chat service's writes (chat_post.go, chat_rooms.go,
		// chat_changes.go): posts, rooms and memberships, changes to
		// posted messages.
		&chatPostOp{},
		&roomCreateOp{},
		&roomUpdateOp{},
		&roomAddMemberOp{},
		&roomLeaveOp{},
		&dmOpenOp{},
		&msgEditOp{},
		&msgDeleteOp{},
		&msgReactOp{},
	}
}

// newOpOfKind returns a new zero op of kind, or nil if none is known.
func newOpOfKind(kind string) storeOp {
	ops := opKinds()
	i := slices.IndexFunc(ops, func(o storeOp) bool { return o.opKind() == kind })
	if i < 0 {
		return nil
	}
	return ops[i]
}
