package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"stompbox/internal/apperr"
	"stompbox/internal/chat"
	"stompbox/internal/proto"
	"stompbox/internal/store"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The replicated log.
const (
	logStream  = "STOMPBOX"
	LogSubject = "stompbox.log"
	// logEndSubject carries, on core NATS, the sequence of each entry a
	// node just appended: a signal for the other nodes' appliers to read
	// (log_reader.go). It is not the log's subject: a plain subscriber to
	// that one stalled the stream's writes after a leader change (a
	// rebuilt node's test, TestClusterNodeRebuildsDamagedStore).
	logEndSubject = "stompbox.log-end"
	// logDedupWindow is how long JetStream remembers an op's de-duplication
	// key: a client that resends a message after a failover within it
	// (same receipt or idempotency-key) does not post twice. It matches
	// the single node's idempotency window.
	logDedupWindow = chat.IdempotencyWindow
	// PublishTimeout bounds the wait for a quorum to store an op; past it
	// the op is refused (errClusterUnavailable) and never acknowledged.
	// It outlasts a JetStream leader election (raft's election timeout is
	// 4 to 9 s), so that the loss of the log's leader delays writes on the
	// healthy nodes instead of refusing them.
	PublishTimeout = 10 * time.Second
	// publishRetry is the pause between attempts while no leader answers.
	publishRetry = 250 * time.Millisecond
	// recentOps is how many applied ops a node keeps by sequence, to
	// answer a resend that JetStream found to be a duplicate with the
	// result of the original: as many as the single node's idempotency
	// keys. An older original is read back from the log (answerDuplicate).
	recentOps = chat.MaxIdempotencyKeys
	// catchUpWait bounds how long a lookup that found nothing (an account,
	// a session) waits for this node to apply the log's newest entries
	// before answering "not found", while this node applies nothing;
	// catchUpMax bounds the wait while it is applying (a node that is
	// far behind, or slowed by load, but getting there): someone may just
	// have registered or signed in on another node.
	catchUpWait = 2 * time.Second
	catchUpMax  = 10 * time.Second
	// idlePoll is how often an idle applier asks the replicas for new
	// entries when no signal came (a signal is a plain NATS message and
	// may be lost); quickPollMin and quickPollMax bound the pauses while it
	// expects an entry the replica asked does not hold yet (it is known to
	// be in the log), and quickFor how long a failed read keeps it asking
	// quickly.
	idlePoll     = 200 * time.Millisecond
	quickPollMin = 250 * time.Microsecond
	quickPollMax = 20 * time.Millisecond
	quickFor     = time.Second
	// gapCheck is how long an entry known to be in the log may stay
	// unanswered before the applier asks whether it was purged (purgedPast).
	gapCheck = time.Second
	// idleGapCheck is how often an idle applier asks anyway: a node that
	// was paused or cut off heard of no new entry, and the log may have
	// been purged up to its end.
	idleGapCheck = 10 * time.Second
	// streamSetupRetry is the pause between attempts to create or find
	// the log while the cluster is forming (no JetStream quorum yet), and
	// streamSetupAttempt bounds one attempt: a request sent before the
	// JetStream meta leader was elected gets no answer, and the nodes
	// creating the same stream at once may leave one unanswered, so a
	// short attempt and another beat one long wait.
	streamSetupRetry   = 500 * time.Millisecond
	streamSetupAttempt = 2 * time.Second
)

// errClusterUnavailable is a write refused because no quorum stored it.
var errClusterUnavailable = apperr.New(apperr.ErrBusy, "cluster unavailable: message not stored")

// Log is this node's side of the replicated log: it submits ops
// (opReplicator) and applies every op of the stream, in order, to the
// local store. Owned by the server; close stops the applier.
type Log struct {
	Js       jetstream.JetStream
	ns       *natsserver.Server // the embedded server, nil with -nats
	stream   jetstream.Stream
	st       *store.Store
	node     string
	replicas int
	log      *slog.Logger
	boot     string // distinguishes this run's op references from an earlier run's
	sysPass  string // the embedded server's system user's password (members.go)

	nextRef atomic.Uint64
	Applied atomic.Uint64 // highest sequence applied (committed or refused) here
	failed  atomic.Int64  // ops whose apply failed with an internal error on this node
	queued  atomic.Uint64 // highest sequence handed to the writer (checkFollows, snapshot_adopt.go)
	stats   logCounters   // quorum write times, for Stats (stats.go)

	mu      sync.Mutex
	pending map[string]*pendingOp // by reference: ops this node submitted, not yet applied
	waiting map[uint64][]chan struct{}
	recent  map[uint64]store.Op // applied ops by sequence, at most keepRecent
	// keepRecent is recentOps and publishWait publishTimeout unless a
	// test lowered them (clusterConfig's hooks): to reach answerDuplicate's
	// read-back path, and to see refusals sooner.
	keepRecent  uint64
	publishWait time.Duration

	// known is the highest sequence known to be in the log (a write's
	// acknowledgement, the stream's end): the applier keeps asking its
	// replica until it has applied it. wake tells the applier there may be
	// something new (buffered(1)).
	known atomic.Uint64
	wake  chan struct{}
	// stall is set, and stalled closed, when the applier stopped at an
	// entry this binary cannot apply (log_format.go).
	stall   atomic.Pointer[logStall]
	stalled chan struct{}
	gapped  chan struct{} // closed when it stopped at a gap (stallGap)

	// answer is the subscription answering the compactor's question how
	// far this node applied (log_applied.go); hold pauses the applier
	// (HoldApplier, tests only).
	answer *nats.Subscription
	hold   atomic.Pointer[chan struct{}]

	cancel context.CancelFunc
	done   chan struct{} // closed when the applier has stopped
}

// pendingOp is an op this node submitted, waiting for its application.
type pendingOp struct {
	op   store.Op
	done chan error // buffered(1): the apply result
}

// OpenLog creates or finds the log stream and returns the log,
// not yet applying (see catchUp).
func OpenLog(ctx context.Context, cc *Conn, st *store.Store, log *slog.Logger) (*Log, error) {
	js, err := jetstream.New(cc.Nc)
	if err != nil {
		return nil, fmt.Errorf("cluster log: %w", err)
	}
	cfg := jetstream.StreamConfig{
		Name:        logStream,
		Subjects:    []string{LogSubject},
		Storage:     jetstream.FileStorage,
		Replicas:    cc.Replicas,
		Duplicates:  logDedupWindow,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		AllowDirect: true,
	}
	log.Info("cluster: the log keeps each entry on this many nodes", "replicas", cc.Replicas)
	var stream jetstream.Stream
	attempt := 0
	if err := retrySetup(ctx, func(ctx context.Context) (err error) {
		if stream, err = js.CreateOrUpdateStream(ctx, cfg); err != nil && attempt%10 == 0 {
			log.Info("cluster: waiting for the other nodes to form the log", "err", err)
		}
		attempt++
		return err
	}); err != nil {
		return nil, fmt.Errorf("cluster log: waiting for the cluster: %w", err)
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	l := &Log{
		Js: js, ns: cc.Ns, stream: stream, st: st, node: cc.Node, replicas: cc.Replicas, log: log, sysPass: cc.systemPassword,
		boot:        fmt.Sprintf("%x", rnd),
		pending:     make(map[string]*pendingOp),
		waiting:     make(map[uint64][]chan struct{}),
		recent:      make(map[uint64]store.Op),
		keepRecent:  recentOps,
		publishWait: PublishTimeout,
		wake:        make(chan struct{}, 1),
		stalled:     make(chan struct{}),
		gapped:      make(chan struct{}),
		done:        make(chan struct{}),
	}
	if cc.publishWait > 0 {
		l.publishWait = cc.publishWait
	}
	if cc.keepRecent > 0 {
		l.keepRecent = cc.keepRecent
	}
	return l, nil
}

// Start begins applying the stream after the last sequence the local
// database has applied, and returns once it has caught up with the
// stream's end as of now: only then may the node accept clients.
func (l *Log) Start(ctx context.Context) error {
	from, err := l.st.AppliedSeq(ctx)
	if err != nil {
		return err
	}
	l.Applied.Store(from)
	// A stream just created may not have elected its leader yet, and no
	// one answers until it has: ask again until ctx ends.
	var info *jetstream.StreamInfo
	if err := retrySetup(ctx, func(ctx context.Context) (err error) {
		info, err = l.stream.Info(ctx)
		return err
	}); err != nil {
		return fmt.Errorf("cluster log: %w", err)
	}
	last := info.State.LastSeq
	if err := checkStart(from, info.State.FirstSeq); err != nil { // snapshot_adopt.go
		return err
	}
	l.learned(last)
	// From now on a compaction leaves this node the entries it has not
	// applied (Compactor.appliedBound).
	if err := l.answerApplied(); err != nil {
		return err
	}
	rd, err := newLogReader(l.Js.Conn(), logStream)
	if err != nil {
		l.answer.Unsubscribe()
		return err
	}
	// Each node announces the entries it appends (Submit): a signal to
	// read up to there. A lost signal costs at most idlePoll.
	sig, err := l.Js.Conn().Subscribe(logEndSubject, func(m *nats.Msg) {
		if seq, err := strconv.ParseUint(string(m.Data), 10, 64); err == nil {
			l.learned(seq)
		}
	})
	if err != nil {
		rd.close()
		l.answer.Unsubscribe()
		return fmt.Errorf("cluster log: %w", err)
	}
	actx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go func() {
		defer sig.Unsubscribe()
		defer rd.close()
		l.runApplier(actx, rd, from+1)
	}()
	if last > from {
		l.log.Info("cluster: catching up from the log", "applied", from, "log_end", last, "to_apply", last-from)
	}
	began := time.Now()
	if err := l.waitApplied(ctx, last); err != nil {
		if l.stall.Load() != nil {
			// Serve what it has: reads go on, writes are refused.
			l.log.Warn("cluster: serving this node's copy of the data as far as it could apply the log", "applied", l.Applied.Load(), "log_end", last)
			return nil
		}
		l.Close()
		return fmt.Errorf("cluster log: catching up: %w", err)
	}
	l.log.Info("cluster: database caught up with the log", "seq", last, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// retrySetup runs a JetStream request, each attempt bounded by
// streamSetupAttempt, until it succeeds or ctx ends (its last error).
func retrySetup(ctx context.Context, do func(context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, streamSetupAttempt)
		err := do(actx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(streamSetupRetry):
		}
	}
}

// Close stops the applier and waits for it.
func (l *Log) Close() {
	if l.answer != nil {
		l.answer.Unsubscribe()
		l.answer = nil
	}
	if l.cancel != nil {
		l.cancel()
		<-l.done
		l.cancel = nil
	}
}

// runApplier reads the log from entry next on, in order, and hands each
// entry's op to the store's writer without waiting for the commit, so that
// ops group into shared transactions as local writes do. The writer keeps
// the order. It returns when ctx ends or at a failure of the store; at an
// entry it cannot apply it stops applying and waits for ctx.
func (l *Log) runApplier(ctx context.Context, rd *logReader, next uint64) {
	defer close(l.done)
	quickUntil := time.Time{}
	pause := quickPollMin
	var lastWarn time.Time
	failed := 0 // reads in a row that got no answer
	lastGapCheck := time.Now()
	for ctx.Err() == nil {
		l.held(ctx)
		entries, err := rd.fetch(ctx, next)
		for _, e := range entries {
			if aerr := l.applyEntry(ctx, e.seq, e.data); aerr != nil {
				if fe := (*store.FormatError)(nil); errors.As(aerr, &fe) && ctx.Err() == nil {
					// Stopped, not gone: reads go on until the node is
					// restarted on a binary that knows the entry.
					l.stallAt(e.seq, fe)
					<-ctx.Done()
					return
				}
				if errors.Is(aerr, errLogGap) && ctx.Err() == nil {
					l.stallGap(e.seq, aerr)
					<-ctx.Done()
					return
				}
				if ctx.Err() == nil {
					l.log.Error("cluster: applier stopped", "err", aerr)
				}
				return
			}
			next = e.seq + 1
		}
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errLogGap):
			// Entries this node never applied were compacted away: it
			// restores the newest snapshot when restarted (snapshot_adopt.go);
			// until then it serves reads and refuses writes.
			l.stallGap(next, err)
			<-ctx.Done()
			return
		case err != nil:
			// The replica asked died with the request, or none answers (no
			// quorum, the cluster forming). Ask again at once (another
			// replica answers), then less often.
			if failed++; failed > 2 {
				if time.Since(lastWarn) > 10*time.Second {
					l.log.Warn("cluster: reading the log", "next", next, "err", err)
					lastWarn = time.Now()
				}
				l.sleep(ctx, 100*time.Millisecond)
			}
			quickUntil = time.Now().Add(quickFor)
			continue
		}
		failed = 0
		if len(entries) > 0 {
			pause = quickPollMin
			continue // there may be more
		}
		// The replica holds nothing at next yet. When the entry is known to
		// exist, or a signal just came, it is on its way: ask again soon.
		// Known to exist for long and still not there, it may have been
		// purged with nothing after it (a reply skipping to a later entry
		// shows a gap at once, an empty log does not): ask where the log
		// starts; and now and then while idle.
		if since := time.Since(lastGapCheck); l.known.Load() >= next && since > gapCheck || since > idleGapCheck {
			lastGapCheck = time.Now()
			if l.purgedPast(ctx, next) {
				l.stallGap(next, fmt.Errorf("the log starts after entry %d: %w", next, errLogGap))
				<-ctx.Done()
				return
			}
		}
		if l.known.Load() >= next || time.Now().Before(quickUntil) {
			if l.sleep(ctx, pause) {
				quickUntil = time.Now().Add(quickFor)
				pause = quickPollMin
			} else {
				pause = min(2*pause, quickPollMax)
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
			quickUntil = time.Now().Add(quickFor)
			pause = quickPollMin
		case <-time.After(idlePoll):
		}
	}
}

// purgedPast reports whether the log's first entry is after next (the
// stream says so; not when it cannot be asked).
func (l *Log) purgedPast(ctx context.Context, next uint64) bool {
	ictx, cancel := context.WithTimeout(ctx, catchUpWait)
	defer cancel()
	info, err := l.stream.Info(ictx)
	return err == nil && info.State.FirstSeq > next
}

// sleep pauses for d or until ctx ends; a signal cuts it short, and
// then it reports true.
func (l *Log) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-l.wake:
		return true
	}
	return false
}

// poke tells the applier there may be new entries.
func (l *Log) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// learned records that the log holds entry seq (acknowledged to a
// writer, or its end as the stream reported it): the applier asks for it
// until it has it.
func (l *Log) learned(seq uint64) {
	for {
		k := l.known.Load()
		if seq <= k || l.known.CompareAndSwap(k, seq) {
			break
		}
	}
	l.poke()
}

// applyEntry queues one log entry's op on the writer.
func (l *Log) applyEntry(ctx context.Context, seq uint64, data []byte) error {
	if seq <= l.Applied.Load() {
		return nil // the consumer restarted behind us
	}
	if skip, err := l.checkFollows(seq); skip || err != nil { // snapshot_adopt.go
		return err
	}
	op, env, err := store.DecodeOp(data)
	if err != nil {
		// A newer node's entry (a *store.FormatError), or a damaged one:
		// applying the rest out of order would be worse than stopping.
		return fmt.Errorf("entry %d: %w", seq, err)
	}
	var p *pendingOp
	if env.Node == l.node && env.Ref != "" {
		l.mu.Lock()
		p = l.pending[env.Ref]
		delete(l.pending, env.Ref)
		l.mu.Unlock()
		if p != nil {
			op = p.op // the submitter's own value: it reads its results from it
		}
	}
	return l.st.ApplyLogged(ctx, seq, op, env.At, func(err error) {
		if err != nil && !apperr.IsClientError(err) && !errors.Is(err, store.ErrStoreClosed) {
			l.failed.Add(1)
			l.log.Error("cluster: op failed on this node", "seq", seq, "kind", env.Kind, "err", err)
		}
		l.markApplied(seq, op)
		if p != nil {
			p.done <- err
		}
	})
}

// markApplied records seq as applied and wakes whoever waits for it.
// Runs on the writer goroutine, in sequence order.
func (l *Log) markApplied(seq uint64, op store.Op) {
	l.Applied.Store(seq)
	l.mu.Lock()
	l.recent[seq] = op
	if seq > l.keepRecent {
		delete(l.recent, seq-l.keepRecent)
	}
	var wake []chan struct{}
	for s, chs := range l.waiting {
		if s <= seq {
			wake = append(wake, chs...)
			delete(l.waiting, s)
		}
	}
	l.mu.Unlock()
	for _, ch := range wake {
		close(ch)
	}
}

// waitApplied returns once seq has been applied here, or ctx ends, or
// the applier stopped before seq (the stall's refusal).
func (l *Log) waitApplied(ctx context.Context, seq uint64) error {
	if s := l.stall.Load(); s != nil && seq >= s.seq {
		return s.client
	}
	l.mu.Lock()
	if l.Applied.Load() >= seq {
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	l.waiting[seq] = append(l.waiting[seq], ch)
	l.mu.Unlock()
	stalled := l.stalled
	for {
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-l.done:
			return store.ErrStoreClosed
		case <-stalled:
			if s := l.stall.Load(); seq >= s.seq {
				return s.client
			}
			stalled = nil // an entry before the stop: it is being applied
		}
	}
}

// Submit appends op to the log and returns once a quorum stored it and
// this node applied it: a RECEIPT after Submit means the message is on
// the majority's disks and in this node's database. Refused ops (client
// errors) come back from the apply as on a single node.
func (l *Log) Submit(ctx context.Context, op store.Op, dedupKey string) error {
	if err := l.stallErr(); err != nil {
		return err // this node could not apply it, nor answer
	}
	ref := l.boot + "-" + strconv.FormatUint(l.nextRef.Add(1), 36)
	data, err := store.EncodeOp(op, l.st.NowMS(), l.node, ref)
	if err != nil {
		return err
	}
	p := &pendingOp{op: op, done: make(chan error, 1)}
	l.mu.Lock()
	l.pending[ref] = p
	l.mu.Unlock()
	msgID := dedupKey
	if msgID == "" {
		msgID = l.node + "-" + ref
	}
	start := time.Now()
	ack, err := l.publish(ctx, data, msgID)
	if err != nil {
		// Not stored on a quorum as far as we know. If it was stored
		// after all, the applier applies it like any other entry.
		l.mu.Lock()
		delete(l.pending, ref)
		l.mu.Unlock()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.log.Warn("cluster: op not stored", "kind", op.OpKind(), "err", err)
		l.stats.unstored.Add(1)
		return errClusterUnavailable
	}
	l.stats.observeQuorum(time.Since(start))
	l.learned(ack.Sequence)
	// The other nodes' appliers read it now rather than at their next poll.
	l.Js.Conn().Publish(logEndSubject, strconv.AppendUint(nil, ack.Sequence, 10))
	if ack.Duplicate {
		l.mu.Lock()
		delete(l.pending, ref)
		l.mu.Unlock()
		return l.answerDuplicate(ctx, op, ack.Sequence)
	}
	stalled := l.stalled
	for {
		select {
		case err := <-p.done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-l.done:
			return store.ErrStoreClosed
		case <-stalled:
			s := l.stall.Load()
			if ack.Sequence < s.seq {
				stalled = nil // stored before the entry it stopped at: applied
				continue
			}
			// Stored in the log, but this node will not apply it: the
			// others will, and a resend with the same key is recognised.
			l.mu.Lock()
			delete(l.pending, ref)
			l.mu.Unlock()
			return s.client
		}
	}
}

// publish appends data to the log with its de-duplication id, trying
// again while no stream leader answers (an election after the leader's
// node died) until publishTimeout. Retries are safe: JetStream drops a
// second copy with the same id.
func (l *Log) publish(ctx context.Context, data []byte, msgID string) (*jetstream.PubAck, error) {
	pctx, cancel := context.WithTimeout(ctx, l.publishWait)
	defer cancel()
	for {
		ack, err := l.Js.PublishMsg(pctx, &nats.Msg{Subject: LogSubject, Data: data}, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(logStream))
		if err == nil {
			return ack, nil
		}
		select {
		case <-pctx.Done():
			return nil, err
		case <-time.After(publishRetry):
		}
	}
}

// answerDuplicate waits until the original of a resent op is applied here
// and copies its results into op, so the resender gets the first answer.
func (l *Log) answerDuplicate(ctx context.Context, op store.Op, seq uint64) error {
	if err := l.waitApplied(ctx, seq); err != nil {
		return err
	}
	l.mu.Lock()
	orig := l.recent[seq]
	l.mu.Unlock()
	if orig != nil && store.AdoptOp(op, orig) {
		return nil
	}
	// Applied too long ago to be remembered: read the original back from
	// the log and look its result up in the database.
	raw, err := l.stream.GetMsg(ctx, seq)
	if err != nil {
		return fmt.Errorf("cluster log: original of a resent op: %w", err)
	}
	orig, env, err := store.DecodeOp(raw.Data)
	if err != nil {
		return fmt.Errorf("cluster log: original of a resent op: %w", err)
	}
	if !store.AdoptOp(op, orig) {
		return nil // the same key for another kind of write: nothing to copy
	}
	return l.st.LookupResult(ctx, op, env.At)
}

// WaitCaughtUp returns once this node has applied every entry the log
// held when it was called, or gives up: after catchUpWait in which it
// applied nothing, after catchUpMax in all, or at once when the applier
// stopped at an entry it cannot apply. A lookup that found nothing calls
// it before answering so: the account or session may exist in an entry
// not yet applied here (read-your-writes across nodes).
func (l *Log) WaitCaughtUp(ctx context.Context) {
	ictx, cancel := context.WithTimeout(ctx, catchUpWait)
	info, err := l.stream.Info(ictx)
	cancel()
	if err != nil {
		l.log.Debug("cluster: cannot see the log's end; answering from this node's copy", "err", err)
		return
	}
	end := info.State.LastSeq
	l.learned(end)
	giveUp := time.Now().Add(catchUpMax)
	for {
		before := l.Applied.Load()
		wctx, cancel := context.WithTimeout(ctx, min(catchUpWait, time.Until(giveUp)))
		err := l.waitApplied(wctx, end)
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) || l.Applied.Load() == before || time.Now().After(giveUp) {
			l.log.Debug("cluster: not caught up in time; answering from this node's copy", "err", err, "applied", l.Applied.Load(), "log_end", end)
			return
		}
	}
}

// Status reads the stream's state and this node's position.
func (l *Log) Status(ctx context.Context) (proto.ClusterStatus, error) {
	st := proto.ClusterStatus{Node: l.node, Applied: l.Applied.Load(), Replicas: l.replicas, Failed: l.failed.Load(), Stopped: l.Stopped()}
	if ns := l.ns; ns != nil {
		st.Nodes = JetStreamNodes(ns)
		st.Routes = ns.NumRoutes()
	}
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := l.stream.Info(ictx)
	if err != nil {
		return st, fmt.Errorf("cluster status: %w", err)
	}
	st.LogEnd = info.State.LastSeq
	if st.LogEnd > st.Applied {
		st.Behind = st.LogEnd - st.Applied
	}
	if c := info.Cluster; c != nil {
		st.Leader = c.Leader
		if c.Leader != "" {
			st.Peers = append(st.Peers, proto.ClusterPeer{Name: c.Leader, Current: true})
		}
		for _, r := range c.Replicas {
			st.Peers = append(st.Peers, proto.ClusterPeer{Name: r.Name, Current: r.Current, Offline: r.Offline, LagOps: r.Lag, SeenAgo: r.Active.Seconds()})
		}
	}
	return st, nil
}

// JetStreamNodes names the servers of JetStream's meta group as this
// node's server knows them (any node, not only the meta leader), sorted.
func JetStreamNodes(ns *natsserver.Server) []string {
	jsz, err := ns.Jsz(&natsserver.JSzOptions{})
	if err != nil || jsz.Meta == nil {
		return nil
	}
	nodes := []string{ns.Name()} // the meta group's replicas are the others
	if jsz.Meta.Leader != "" && jsz.Meta.Leader != ns.Name() {
		nodes = append(nodes, jsz.Meta.Leader)
	}
	for _, r := range jsz.Meta.Replicas {
		if r != nil && !slices.Contains(nodes, r.Name) {
			nodes = append(nodes, r.Name)
		}
	}
	slices.Sort(nodes)
	return nodes
}
