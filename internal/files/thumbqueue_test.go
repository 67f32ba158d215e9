package files

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// queued is a picture of a test waiting in a thumbQueue.
type queued struct {
	user    int64
	release chan func()
	err     chan error
}

// enqueue calls acquire for user in a goroutine and returns at once.
func enqueue(ctx context.Context, q *thumbQueue, user, cost int64) queued {
	p := queued{user, make(chan func(), 1), make(chan error, 1)}
	go func() {
		rel, err := q.acquire(ctx, user, cost)
		if err != nil {
			p.err <- err
			return
		}
		p.release <- rel
	}()
	return p
}

// granted waits (a little) for p's turn and returns its release; nil if
// the turn did not come.
func (p queued) granted(t *testing.T, within time.Duration) func() {
	t.Helper()
	select {
	case rel := <-p.release:
		return rel
	case err := <-p.err:
		t.Fatalf("user %d: %v", p.user, err)
	case <-time.After(within):
	}
	return nil
}

// waitQueued waits until the queue holds n pictures waiting and at least
// one being made.
func waitQueued(t *testing.T, q *thumbQueue, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if w, r := q.counts(); w == n && r > 0 {
			return
		}
		if time.Now().After(deadline) {
			w, r := q.counts()
			t.Fatalf("%d waiting, %d running; want %d waiting", w, r, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestThumbQueue: turns are one per user at a time, round-robin between
// users, within the budget, and a user's queue is bounded.
func TestThumbQueue(t *testing.T) {
	ctx := context.Background()
	const never = 50 * time.Millisecond // long enough to see a turn not given
	t.Run("another user gets the second slot at once", func(t *testing.T) {
		q := newThumbQueue()
		a0 := enqueue(ctx, q, 1, 10).granted(t, time.Second)
		var rest []queued
		for i := range 5 {
			rest = append(rest, enqueue(ctx, q, 1, 10))
			waitQueued(t, q, i+1) // in this order
		}
		if rel := enqueue(ctx, q, 2, 10).granted(t, time.Second); rel == nil {
			t.Fatal("user 2 waits behind user 1's pictures")
		} else {
			rel()
		}
		a0()
		for _, p := range rest { // user 1's, one after another
			p.granted(t, time.Second)()
		}
	})
	t.Run("round robin", func(t *testing.T) {
		q := newThumbQueue()
		q.slots = 1
		a0 := enqueue(ctx, q, 1, 10).granted(t, time.Second)
		a1 := enqueue(ctx, q, 1, 10)
		waitQueued(t, q, 1)
		a2 := enqueue(ctx, q, 1, 10)
		waitQueued(t, q, 2)
		b := enqueue(ctx, q, 2, 10)
		waitQueued(t, q, 3)
		a0()
		a1.granted(t, time.Second)() // user 1 came first into the ring
		if rel := b.granted(t, time.Second); rel == nil {
			t.Fatal("user 2 did not get the next turn")
		} else {
			rel()
		}
		a2.granted(t, time.Second)()
	})
	t.Run("per-user bound", func(t *testing.T) {
		q := newThumbQueue()
		var ps []queued
		for i := range thumbPerUser {
			ps = append(ps, enqueue(ctx, q, 1, 10))
			waitQueued(t, q, i) // in this order, the first given its turn
		}
		if _, err := q.acquire(ctx, 1, 10); !errors.Is(err, errThumbQueueFull) {
			t.Fatalf("picture %d of one user: %v, want errThumbQueueFull", thumbPerUser+1, err)
		}
		for _, p := range ps {
			p.granted(t, time.Second)()
		}
		if w, r := q.counts(); w != 0 || r != 0 || len(q.users) != 0 || len(q.ring) != 0 {
			t.Fatalf("left %d waiting, %d running, users %v, ring %v", w, r, q.users, q.ring)
		}
	})
	t.Run("budget", func(t *testing.T) {
		q := newThumbQueue()
		q.slots, q.budget = 3, 100
		a := enqueue(ctx, q, 1, 70).granted(t, time.Second)
		b := enqueue(ctx, q, 2, 70)
		waitQueued(t, q, 1)
		if rel := enqueue(ctx, q, 3, 20).granted(t, time.Second); rel == nil { // fits beside user 1's
			t.Fatal("a small picture waits behind a large one that does not fit")
		} else {
			rel()
		}
		if b.granted(t, never) != nil {
			t.Fatal("over the budget")
		}
		a()
		b.granted(t, time.Second)()
	})
	t.Run("wait timeout and cancel", func(t *testing.T) {
		q := newThumbQueue()
		q.slots, q.wait = 1, 20*time.Millisecond
		a := enqueue(ctx, q, 1, 10).granted(t, time.Second)
		if _, err := q.acquire(ctx, 2, 10); !errors.Is(err, errThumbWait) {
			t.Fatalf("%v, want errThumbWait", err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := q.acquire(cctx, 3, 10); !errors.Is(err, context.Canceled) {
			t.Fatalf("%v, want context.Canceled", err)
		}
		a()
		if w, r := q.counts(); w != 0 || r != 0 || len(q.users) != 0 || len(q.ring) != 0 {
			t.Fatalf("left %d waiting, %d running, users %v, ring %v", w, r, q.users, q.ring)
		}
	})
}

// TestThumbnailTimeout: a decode stops at its first read after its time is
// up (thumbTimeout), and the queue reports it as over the time.
func TestThumbnailTimeout(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/bomb.png"
	if err := os.WriteFile(path, pictureBomb(t, 1000, 1000, "slow"), 0o600); err != nil {
		t.Fatal(err)
	}
	q := newThumbQueue()
	q.timeout = time.Nanosecond
	info, err := q.makeThumbnail(context.Background(), 1, path, typePNG)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || info.thumb != nil || info.width != 1000 {
		t.Fatalf("info %+v, err %v; want the claimed size, no thumbnail, context.DeadlineExceeded", info, err)
	}
	if w, r := q.counts(); w != 0 || r != 0 {
		t.Fatalf("left %d waiting, %d running", w, r)
	}
	q.timeout = thumbTimeout
	if info, err := q.makeThumbnail(context.Background(), 1, path, typePNG); err != nil || info.thumb == nil {
		t.Fatalf("in time: %+v, %v", info, err)
	}
}
