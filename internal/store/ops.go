package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Op is one write to the database, described by value so that it can
// be replayed: on one node it runs at once in the writer's group commit;
// in a cluster it is appended to the replicated log first and every node
// applies it, in log order, to its own SQLite copy (internal/cluster/log.go).
//
// Apply must be deterministic in (database state, the op's exported
// fields, e.at): no clock, no randomness, no node-local state. Anything
// random (tokens, salts) or node-local (who is online here) is decided by
// the caller before submitting and carried in the op. Apply may run more
// than once (a group that fails is retried request by request), so it
// resets its results first. Results go into unexported fields, which the
// log does not carry; the submitting node reads them after run returns.
type Op interface {
	OpKind() string
	Apply(e *Tx) error
}

// Effects is what a committed op does on this node beyond the
// database: the chat service delivers the change to this node's own
// clients. The store calls Committed for every op that committed, local
// or from the cluster log, on the writer goroutine in commit order, so
// that subscribers see messages in id order. Committed must be quick and
// must not write to the store. The op holds its results (and its refusal,
// if it recorded one).
type Effects interface {
	Committed(op Op)
}

// SetEffects attaches fx, whose Committed runs after each op from now on.
// Called once at wiring, before the store serves; without it (the user
// CLI, store tests) ops have no effect beyond the database.
func (s *Store) SetEffects(fx Effects) { s.fx = fx }

// Tx is an op's view of the writer's transaction while it is applied:
// the store's own ops use ctx and tx directly, other packages' ops its
// methods (optx.go). One exists per op; Apply must not keep it.
type Tx struct {
	ctx context.Context // the writer's: never a request's (a group must not fail because one sender left)
	tx  *sql.Tx         // the running transaction; set for each attempt (a failed group is retried op by op)
	st  *Store
	At  int64 // the op's clock reading, Unix ms, taken where it was submitted
	// replay is true when the op came from the cluster log: node-local
	// decisions (who is online) were taken by the submitting node and
	// are in the op.
	Replay bool
}

// Replicator sends ops to a replicated log and returns once the op was
// applied on this node (internal/cluster/log.go). nil on a single node.
type Replicator interface {
	Submit(ctx context.Context, op Op, dedupKey string) error
	// WaitCaughtUp returns once the node has applied what the log holds
	// now, or after a short bound (see store.missAfterCatchUp).
	WaitCaughtUp(ctx context.Context)
}

// SetReplicator makes r carry every op from now on (a cluster node).
// Called once at wiring, before any write.
func (s *Store) SetReplicator(r Replicator) { s.repl = r }

// Replicated reports whether ops go through a replicated log.
func (s *Store) Replicated() bool { return s.repl != nil }

// Run applies op: directly on a single node, through the replicated log in
// a cluster. dedupKey, when not empty, names the op for the log's
// duplicate detection (a resent chat message): a second op with the same
// key within the log's window is not applied again.
func (s *Store) Run(ctx context.Context, op Op) error {
	return s.RunKeyed(ctx, op, "")
}

// RunKeyed is run with a de-duplication key (see run).
func (s *Store) RunKeyed(ctx context.Context, op Op, dedupKey string) error {
	if err := s.checkSpace(op); err != nil {
		return err
	}
	if s.repl != nil {
		return s.repl.Submit(ctx, op, dedupKey)
	}
	return s.ApplyAt(ctx, op, s.NowMS(), false)
}

// ApplyAt applies op on the writer at clock reading at (Unix ms) and waits
// for its commit; its effects run after the commit. replay is true for an
// op that came from the cluster log (see opEnv).
func (s *Store) ApplyAt(ctx context.Context, op Op, at int64, replay bool) error {
	e := s.newEnv(at, replay)
	return s.Write(ctx, func(tx *sql.Tx) error {
		e.tx = tx
		return op.Apply(e)
	}, s.effectsOf(op))
}

// newEnv returns an environment for one op at clock reading at.
func (s *Store) newEnv(at int64, replay bool) *Tx {
	return &Tx{ctx: context.Background(), st: s, At: at, Replay: replay}
}

// effectsOf returns the function the writer runs after op commits, nil
// when no effects are attached.
func (s *Store) effectsOf(op Op) func() {
	fx := s.fx
	if fx == nil {
		return nil
	}
	return func() { fx.Committed(op) }
}

// ResultLookup is an op that can find what its application produced (a
// message's id) in the database, given the clock reading it was applied
// with.
type ResultLookup interface {
	LookupResult(ctx context.Context, st *Store, at int64) error
}

// LookupResult fills in op's results from the database when op is the
// copy of an op applied at clock reading at, too long ago for the cluster
// log to remember its results, and op can find them (resultLookup);
// otherwise it does nothing.
func (s *Store) LookupResult(ctx context.Context, op Op, at int64) error {
	if r, ok := op.(ResultLookup); ok {
		return r.LookupResult(ctx, s, at)
	}
	return nil
}

// Envelope is an op as the log carries it.
type Envelope struct {
	// V is the log format version an entry needs: the format its kind was
	// registered with (RegisterOpFormat). Entries written before versions
	// existed have none and mean version 1 (Version).
	V    int             `json:"v,omitempty"`
	Kind string          `json:"k"`
	At   int64           `json:"at"`          // clock reading at the submitting node, Unix ms
	Node string          `json:"n"`           // submitting node, for logs and status
	Ref  string          `json:"r,omitempty"` // the submitting node's reference, to find its waiting caller
	Op   json.RawMessage `json:"o"`
}

// Version is the log format version the entry needs: 1 when it says none.
func (e Envelope) Version() int { return max(e.V, 1) }

// BaseLogFormat is the log format every stompbox applies: the entries of
// the first cluster release, which carried no version.
const BaseLogFormat = 1

// FormatError is an entry this binary cannot apply: a newer format
// version than it knows, or an op kind it does not know (an entry written
// by a newer stompbox). A node that meets one stops applying the log
// before it and refuses writes until it runs a binary that knows it;
// skipping the entry would leave its copy different from the others'.
type FormatError struct {
	Version   int    // the entry's format version
	Supported int    // the newest format this binary applies
	Kind      string // the entry's op kind
	Unknown   bool   // the version is supported but the kind is not known
}

func (e *FormatError) Error() string {
	if e.Unknown {
		return fmt.Sprintf("log entry of unknown kind %q (format version %d): written by a newer stompbox; this node needs a newer binary", e.Kind, e.Version)
	}
	return fmt.Sprintf("log entry %q needs log format version %d; this node applies up to version %d and needs a newer binary", e.Kind, e.Version, e.Supported)
}

// Needed is the format version a binary must apply to apply the entry:
// for an unknown kind at a supported version, at least the next one.
func (e *FormatError) Needed() int {
	if e.Unknown {
		return max(e.Version, e.Supported+1)
	}
	return e.Version
}

// EncodeOp marshals op for the log with its clock reading, the node that
// submitted it and that node's reference for it ("" when none). The
// entry carries the format version its kind needs.
func EncodeOp(op Op, at int64, node, ref string) ([]byte, error) {
	b, err := json.Marshal(op)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", op.OpKind(), err)
	}
	return json.Marshal(Envelope{V: opFormat(op.OpKind()), Kind: op.OpKind(), At: at, Node: node, Ref: ref, Op: b})
}

// DecodeOp is EncodeOp's inverse. An entry this binary cannot apply (a
// newer format version, an unknown kind) is a *FormatError; the envelope
// comes back with it, for the caller's log.
func DecodeOp(b []byte) (Op, Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, env, fmt.Errorf("decode op: %w", err)
	}
	if supported := LogFormat(); env.Version() > supported {
		return nil, env, &FormatError{Version: env.Version(), Supported: supported, Kind: env.Kind}
	}
	op := NewOpOfKind(env.Kind)
	if op == nil {
		return nil, env, &FormatError{Version: env.Version(), Supported: LogFormat(), Kind: env.Kind, Unknown: true}
	}
	if err := json.Unmarshal(env.Op, op); err != nil {
		return nil, env, fmt.Errorf("decode %s: %w", env.Kind, err)
	}
	return op, env, nil
}

// opType is a registered kind of op.
type opType struct {
	format int                    // the log format version its entries need
	newOp  func() Op              // a zero op of the kind, to decode into
	adopt  func(dst, src Op) bool // copies src into dst, results included, when both are of the kind
}

// opRegistry holds every kind of op a log may carry: the store's own
// (registered below) and those of the packages above it, which register
// theirs at init, before any store opens.
var opRegistry = struct {
	sync.RWMutex
	byKind map[string]opType
	format int // the highest format among byKind's
}{byKind: make(map[string]opType)}

// RegisterOp adds the op type *T to the registry under its kind, for
// decodeOp, as a kind of the base log format (BaseLogFormat). A kind is
// part of the log's format: renaming one breaks replay of older logs, so
// kinds are only ever added. It panics when the kind is empty or taken.
func RegisterOp[T any, P interface {
	*T
	Op
}]() {
	RegisterOpFormat[T, P](BaseLogFormat)
}

// RegisterOpFormat is RegisterOp for a kind added in log format version
// format: its entries carry that version, and a node whose binary knows
// only older formats stops applying at the first of them instead of
// misapplying it (see FormatError, README "Upgrading a cluster"). A
// release that adds a kind older nodes must not skip, or changes what an
// existing kind means, registers it with the next version; entries of
// the older kinds keep their version, so older nodes go on applying them
// during a rolling upgrade.
func RegisterOpFormat[T any, P interface {
	*T
	Op
}](format int) {
	kind := P(new(T)).OpKind()
	opRegistry.Lock()
	defer opRegistry.Unlock()
	if kind == "" {
		panic(fmt.Sprintf("registerOp: %T has an empty kind", P(nil)))
	}
	if format < BaseLogFormat {
		panic(fmt.Sprintf("registerOp: kind %q has format version %d", kind, format))
	}
	if prev, ok := opRegistry.byKind[kind]; ok {
		panic(fmt.Sprintf("registerOp: kind %q of %T is taken by %T", kind, P(nil), prev.newOp()))
	}
	opRegistry.byKind[kind] = opType{
		format: format,
		newOp:  func() Op { return P(new(T)) },
		adopt: func(dst, src Op) bool {
			d, ok := dst.(P)
			s, ok2 := src.(P)
			if ok && ok2 {
				*d = *s
			}
			return ok && ok2
		},
	}
	opRegistry.format = max(opRegistry.format, format)
}

// LogFormat is the newest log format version this binary applies: the
// highest among its registered kinds.
func LogFormat() int {
	opRegistry.RLock()
	defer opRegistry.RUnlock()
	return max(opRegistry.format, BaseLogFormat)
}

// opFormat is the format version entries of kind carry.
func opFormat(kind string) int {
	opRegistry.RLock()
	defer opRegistry.RUnlock()
	return max(opRegistry.byKind[kind].format, BaseLogFormat)
}

// The store's own ops: accounts, sessions, tokens, settings and invites
// (users.go), retention and notifications (messages.go),
// uploads (files.go).
func init() {
	RegisterOp[UserCreateOp]()
	RegisterOp[passwordSetOp]()
	RegisterOp[userDeleteOp]()
	RegisterOp[webhookSetOp]()
	RegisterOp[sessionCreateOp]()
	RegisterOp[sessionDeleteOp]()
	RegisterOp[tokenCreateOp]()
	RegisterOp[tokenDeleteOp]()
	RegisterOp[settingSetOp]()
	RegisterOp[inviteCreateOp]()
	RegisterOp[purgeOp]()
	RegisterOp[deliveredOp]()
	RegisterOp[fileInsertOp]()
	RegisterOp[abandonedFilesDeleteOp]()
	RegisterOp[unsentFileDeleteOp]()
}

// opKinds returns a zero op of every registered kind, sorted by kind.
func opKinds() []Op {
	opRegistry.RLock()
	defer opRegistry.RUnlock()
	ops := make([]Op, 0, len(opRegistry.byKind))
	for _, t := range opRegistry.byKind {
		ops = append(ops, t.newOp())
	}
	slices.SortFunc(ops, func(a, b Op) int { return strings.Compare(a.OpKind(), b.OpKind()) })
	return ops
}

// NewOpOfKind returns a new zero op of kind, or nil if none is registered.
func NewOpOfKind(kind string) Op {
	opRegistry.RLock()
	t, ok := opRegistry.byKind[kind]
	opRegistry.RUnlock()
	if !ok {
		return nil
	}
	return t.newOp()
}

// AdoptOp copies src, an op already applied, into dst, results included,
// when both are of the same kind, and reports whether it did: a resent op
// (cluster log de-duplication) gets its original's answer.
func AdoptOp(dst, src Op) bool {
	opRegistry.RLock()
	t, ok := opRegistry.byKind[dst.OpKind()]
	opRegistry.RUnlock()
	return ok && t.adopt(dst, src)
}
