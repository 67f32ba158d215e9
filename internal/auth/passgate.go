package auth

import (
	"context"
	"runtime"
	"stompbox/internal/apperr"
	"sync/atomic"
	"time"
)

// Password-check queue (issue 15). Every password check or hash is an
// argon2id computation of argonParams.Memory (19 MiB by default). Run
// unbounded, 50 devices logging in together after a restart would ask for
// about 950 MiB at once, more than a Pi Zero has. The gate lets as many run
// as there are cores (more would only share the cores, not finish sooner)
// and queues the rest.
const (
	// passwordQueuePerCore bounds the checks waiting for a slot, per core.
	// A waiter costs nothing but the goroutine its connection or request
	// already has, so the bound is about waiting time, not memory: at about
	// 50 ms a hash on a small server core, 256 waiting take some 13 s to
	// drain, which a reconnecting client still waits out.
	passwordQueuePerCore = 256
	// passwordMaxWait is the longest a check waits for a slot before it is
	// told "server busy, retry", so that nobody waits longer than a client's
	// own connect timeout would allow (stompbox's CONNECT timeout is 10 s
	// from the socket's opening; a browser's login request has longer).
	passwordMaxWait = 20 * time.Second
	// BusyRetryAfter is the Retry-After, in seconds, of an HTTP 503 "server
	// busy": by then a full queue has mostly drained.
	BusyRetryAfter = 5
)

// ErrServerBusy refuses a password check that found the queue full or
// waited passwordMaxWait: HTTP 503 with Retry-After, or a STOMP ERROR after
// which the client reconnects later. Nothing is out of memory, nobody is
// locked out.
var ErrServerBusy = apperr.New(apperr.ErrBusy, "server busy, retry")

// Gate bounds the argon2id computations that run at once (see the
// constants above). Safe for concurrent use.
type Gate struct {
	Slots    chan struct{} // a token per running computation; capacity is the bound
	MaxQueue int64         // most callers waiting for a slot
	MaxWait  time.Duration // longest a caller waits

	Waiting atomic.Int64 // callers waiting now
	Busy    atomic.Uint64
	Peak    atomic.Int64 // most waiting at once, since start (admin stats)
}

// newPasswordGate returns a gate for runtime.NumCPU() computations at once.
func newPasswordGate() *Gate {
	n := runtime.NumCPU()
	return &Gate{
		Slots:    make(chan struct{}, n),
		MaxQueue: int64(n * passwordQueuePerCore),
		MaxWait:  passwordMaxWait,
	}
}

// Do runs fn once a slot is free. It returns errServerBusy without running fn
// when the queue is full or no slot came free within maxWait, and ctx's
// error when ctx ends first.
func (g *Gate) Do(ctx context.Context, fn func()) error {
	select {
	case g.Slots <- struct{}{}: // a free slot: no queueing at all
	default:
		if err := g.wait(ctx); err != nil {
			return err
		}
	}
	defer func() { <-g.Slots }()
	fn()
	return nil
}

// wait queues for a slot. On success the caller holds one.
func (g *Gate) wait(ctx context.Context) error {
	n := g.Waiting.Add(1)
	defer g.Waiting.Add(-1)
	if n > g.MaxQueue {
		g.Busy.Add(1)
		return ErrServerBusy
	}
	for p := g.Peak.Load(); n > p && !g.Peak.CompareAndSwap(p, n); p = g.Peak.Load() {
	}
	t := time.NewTimer(g.MaxWait)
	defer t.Stop()
	select {
	case g.Slots <- struct{}{}:
		return nil
	case <-t.C:
		g.Busy.Add(1)
		return ErrServerBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}
