package cluster

// What a node does with a log entry it cannot apply: one of a newer log
// format than its binary knows, or of an op kind it does not know (see
// store.FormatError). It never skips or misapplies one: it stops applying
// the log before it, so that its database stays a faithful copy up to the
// entry before; it refuses writes, whose answers it could not give; it
// goes on serving what it has (history, sign-in of known accounts); and
// its log says which version it needs. Restarted on a binary that knows
// the entry, it applies it and the rest (README, Upgrading a cluster).

import (
	"fmt"
	"stompbox/internal/apperr"
	"stompbox/internal/store"
)

// logStall is why and where the applier stopped.
type logStall struct {
	seq    uint64             // the entry it cannot apply; everything before is applied
	format *store.FormatError // nil for a gap (stallGap)
	client error              // what a write is refused with
	why    string             // for the cluster status (Status's Stopped)
}

// stallAt stops the applier before entry seq, which this binary cannot
// apply, and makes every write refused from now on. Applier goroutine only,
// once.
func (l *Log) stallAt(seq uint64, fe *store.FormatError) {
	s := &logStall{seq: seq, format: fe, client: apperr.New(apperr.ErrBusy, fmt.Sprintf(
		"this node needs a newer stompbox: the log holds an entry of format version %d, and it applies up to version %d; writes are refused here until it is upgraded",
		fe.Needed(), fe.Supported)),
		why: fmt.Sprintf("stopped before log entry %d: it needs log format version %d (a newer stompbox)", seq, fe.Needed())}
	l.stall.Store(s)
	close(l.stalled)
	l.log.Error("cluster: stopped applying the log; this node needs a newer stompbox and refuses writes until it is restarted on one (reads go on)",
		"seq", seq, "kind", fe.Kind, "needs_format", fe.Needed(), "applies_format", fe.Supported, "err", fe.Error())
}

// stallErr is the refusal of a write while the applier is stopped at an
// entry it cannot apply, nil while it applies.
func (l *Log) stallErr() error {
	if s := l.stall.Load(); s != nil {
		return s.client
	}
	return nil
}

// NeedsFormat is the log format version this node must be upgraded to
// before it applies the log again, 0 while it applies.
func (l *Log) NeedsFormat() int {
	if s := l.stall.Load(); s != nil && s.format != nil {
		return s.format.Needed()
	}
	return 0
}

// stallGap stops the applier before entry seq, which the log no longer
// holds (errLogGap: it was compacted away while this node was running
// but cut off from the others, so the compactor did not hear how far it
// had applied), and refuses writes from now on; reads go on. Restarted,
// the node restores the newest snapshot and applies the rest. It is not
// restored in place: the database is open under every part of the
// server (sessions, subscriptions, caches), and swapping it there would
// hand clients a mix of two copies. Applier goroutine only, once.
func (l *Log) stallGap(seq uint64, err error) {
	s := &logStall{seq: seq,
		client: apperr.New(apperr.ErrBusy, "this node missed log entries that were compacted away and refuses writes until it is restarted (it then restores the newest snapshot); use another node"),
		why:    fmt.Sprintf("stopped before log entry %d, which was compacted away while this node was cut off: restart it (it restores the newest snapshot)", seq)}
	l.stall.Store(s)
	close(l.stalled)
	close(l.gapped)
	l.log.Error("cluster: stopped applying the log: entries this node never applied were compacted away while it was cut off; it refuses writes until it is restarted, and then restores the newest snapshot (reads go on)",
		"next", seq, "applied", l.Applied.Load(), "err", err)
}

// Gapped is closed when the applier stopped at a gap (stallGap): the
// node's program exits then, so that its restart restores the newest
// snapshot (main.go's run).
func (l *Log) Gapped() <-chan struct{} { return l.gapped }

// Stopped says why the applier stopped, "" while it applies.
func (l *Log) Stopped() string {
	if s := l.stall.Load(); s != nil {
		return s.why
	}
	return ""
}
