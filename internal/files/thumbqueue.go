package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"time"
)

// thumbqueue.go: the pictures waiting for their thumbnail, and the few
// that are being made (issue 22, item 5). One user's pictures never hold up
// another's for longer than one decode: a user has at most one thumbnail
// being made at a time and at most thumbPerUser pictures waiting or being
// made (past that, the picture is stored and shown as a file), turns go
// round the users with pictures waiting, and the thumbnails being made at
// once share one memory budget (maxDecodeBytes), counted from each
// picture's header before anything is decoded (decodeCost).

// Thumbnail queue limits.
const (
	// thumbSlots is how many thumbnails are made at once: two, so that one
	// user's large picture leaves a slot to everyone else, on a board with
	// four cores that also serves the chat.
	thumbSlots = 2

	// thumbPerUser bounds the pictures one user may have waiting or being
	// made: a handful of photos dropped at once all get thumbnails, a
	// flood does not queue without end.
	thumbPerUser = 8

	// thumbWait is the longest a picture waits for its turn; then it is
	// stored without a thumbnail.
	thumbWait = 30 * time.Second

	// thumbTimeout is the longest one decode may take: the largest picture
	// under maxDecodeBytes takes well under a second on a Raspberry Pi 4,
	// so only a picture built to be slow reaches it.
	thumbTimeout = 10 * time.Second

	// thumbFreeAfter is the cost above which the memory of a decode is
	// given back to the system before its share of the budget is: the
	// garbage collector would otherwise keep it, and the next decode
	// would come on top (the budget counts what the process holds).
	thumbFreeAfter = 32 << 20
)

// errThumbQueueFull means the uploader already has thumbPerUser pictures
// waiting or being made; errThumbWait, that the turn did not come within
// thumbWait.
var (
	errThumbQueueFull = errors.New("thumbnail queue full for this user")
	errThumbWait      = errors.New("thumbnail waited too long for its turn")
)

// thumbQueue hands out turns to make a thumbnail: at most slots at once,
// one per user at a time, round-robin between users, within budget bytes.
// A turn is taken by the goroutine of the upload itself (acquire, then the
// release it returns): nothing runs in the background. Safe for concurrent
// use.
type thumbQueue struct {
	slots   int
	perUser int
	budget  int64
	wait    time.Duration
	timeout time.Duration

	mu      sync.Mutex
	users   map[int64]*thumbUser // users with a picture waiting or being made
	ring    []int64              // users with a picture waiting, the next turn's first
	running int                  // turns taken
	inUse   int64                // the costs of the turns taken
	waiting int                  // pictures waiting
}

// thumbUser is one user's pictures in the queue.
type thumbUser struct {
	waiting []*thumbTurn // in upload order
	running int
}

// thumbTurn is one picture waiting for its turn.
type thumbTurn struct {
	cost    int64
	ready   chan struct{} // closed when the turn is given
	granted bool          // guarded by thumbQueue.mu
}

func newThumbQueue() *thumbQueue {
	return &thumbQueue{slots: thumbSlots, perUser: thumbPerUser, budget: maxDecodeBytes,
		wait: thumbWait, timeout: thumbTimeout, users: make(map[int64]*thumbUser)}
}

// acquire waits for user's turn to use cost bytes of the budget, and
// returns the release to call when done. It refuses at once with
// errThumbQueueFull when user has perUser pictures in the queue already,
// and gives up with errThumbWait after wait or with ctx's error.
func (q *thumbQueue) acquire(ctx context.Context, user int64, cost int64) (release func(), err error) {
	cost = min(max(cost, 0), q.budget) // a picture over the budget was refused by its header; alone it fits
	t := &thumbTurn{cost: cost, ready: make(chan struct{})}
	q.mu.Lock()
	u := q.users[user]
	if u == nil {
		u = &thumbUser{}
		q.users[user] = u
	}
	if len(u.waiting)+u.running >= q.perUser {
		q.mu.Unlock()
		return nil, errThumbQueueFull
	}
	u.waiting = append(u.waiting, t)
	q.waiting++
	if len(u.waiting) == 1 {
		q.ring = append(q.ring, user)
	}
	q.dispatchLocked()
	q.mu.Unlock()

	releaseLocked := func() {
		q.running--
		q.inUse -= cost
		u.running--
		q.forgetLocked(user, u)
		q.dispatchLocked()
	}
	release = func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		releaseLocked()
	}
	timer := time.NewTimer(q.wait)
	defer timer.Stop()
	select {
	case <-t.ready:
		return release, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = errThumbWait
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if t.granted { // given between the wake-up and the lock: hand it on
		releaseLocked()
		return nil, err
	}
	for i, w := range u.waiting {
		if w == t {
			u.waiting = append(u.waiting[:i], u.waiting[i+1:]...)
			break
		}
	}
	q.waiting--
	if len(u.waiting) == 0 {
		q.removeFromRingLocked(user)
	}
	q.forgetLocked(user, u)
	return nil, err
}

// dispatchLocked gives turns while slots are free: to the first user in
// the ring with nothing being made whose first picture fits in what is
// left of the budget; that user goes to the back of the ring.
func (q *thumbQueue) dispatchLocked() {
	for q.running < q.slots {
		found := -1
		for i, id := range q.ring {
			u := q.users[id]
			if u.running == 0 && q.inUse+u.waiting[0].cost <= q.budget {
				found = i
				break
			}
		}
		if found < 0 {
			return
		}
		id := q.ring[found]
		u := q.users[id]
		t := u.waiting[0]
		u.waiting = u.waiting[1:]
		u.running++
		q.waiting--
		q.running++
		q.inUse += t.cost
		t.granted = true
		close(t.ready)
		q.ring = append(q.ring[:found], q.ring[found+1:]...)
		if len(u.waiting) > 0 {
			q.ring = append(q.ring, id)
		}
	}
}

func (q *thumbQueue) removeFromRingLocked(user int64) {
	for i, id := range q.ring {
		if id == user {
			q.ring = append(q.ring[:i], q.ring[i+1:]...)
			return
		}
	}
}

// forgetLocked drops u from the users when it has nothing left queued.
func (q *thumbQueue) forgetLocked(user int64, u *thumbUser) {
	if len(u.waiting) == 0 && u.running == 0 {
		delete(q.users, user)
	}
}

// counts are the pictures waiting for their turn and being made now.
func (q *thumbQueue) counts() (waiting, running int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.waiting, q.running
}

// makeThumbnail makes the thumbnail of the picture of type typ at path,
// uploaded by user: its header is read first (readPictureHeader: a picture
// too costly to decode is refused there), then it waits for its turn in
// the queue, then it is decoded within q.timeout. The size the header
// claims is returned whatever happens after.
func (q *thumbQueue) makeThumbnail(ctx context.Context, user int64, path, typ string) (pictureInfo, error) {
	open := func() (io.ReadCloser, error) { return os.Open(path) }
	h, err := readPictureHeader(open, typ)
	if err != nil {
		return h.info, err
	}
	release, err := q.acquire(ctx, user, h.cost)
	if err != nil {
		return h.info, err
	}
	defer release()
	dctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	info, err := decodeThumbnail(dctx, open, typ, h)
	if h.cost >= thumbFreeAfter {
		debug.FreeOSMemory() // before release: the next turn's budget is free memory, not garbage
	}
	if err != nil && dctx.Err() != nil && ctx.Err() == nil {
		err = fmt.Errorf("thumbnail took over %v: %w", q.timeout, err)
	}
	return info, err
}
