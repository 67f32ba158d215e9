package chat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"stompbox/internal/apperr"
	"stompbox/internal/store"
	"strconv"
	"sync"
	"time"
)

// Idempotent sends (issue 17, the installable app's offline outbox). A
// client that is not sure a send arrived (the connection dropped before the
// RECEIPT) sends it again with the same key; within the window, the second
// send gets the first one's stored message back instead of posting twice.
const (
	// IdempotencyHeader is the STOMP SEND header and the HTTP request
	// header (the IETF httpapi draft's name) that carry the key.
	IdempotencyHeader     = "idempotency-key"
	IdempotencyHTTPHeader = "Idempotency-Key"

	// IdempotencyWindow is how long a key is remembered: an outbox flushes
	// within seconds of the connection coming back, and reconnect backoff
	// tops out at 30 s, so ten minutes covers many retries.
	IdempotencyWindow = 10 * time.Minute

	// MaxIdempotencyKeys bounds the memory the window takes (about 200
	// bytes a key plus the message): a busy team's ten minutes.
	MaxIdempotencyKeys = 20_000

	// MaxIdempotencyKeyLen bounds one key: a UUID is 36 characters.
	MaxIdempotencyKeyLen = 128
)

// ErrBadIdempotencyKey refuses a key too long to be one.
var ErrBadIdempotencyKey = apperr.New(apperr.ErrBadRequest, "idempotency key too long")

// idemKey is one user's key; keys of different users never collide.
type idemKey struct {
	userID int64
	key    string
}

// idemEntry is one remembered send. done is closed when the first send
// finished; msg and ok are set before that.
type idemEntry struct {
	done chan struct{}
	msg  store.StoredMessage
	ok   bool // the first send stored msg; false: it failed, and a retry runs again
	at   time.Time
}

// idempotency remembers recent keyed sends in memory, bounded in time and
// count. Memory only: a restart forgets the keys, which costs at most a
// duplicate of a message whose RECEIPT was lost in the restart. Safe for
// concurrent use.
type idempotency struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[idemKey]*idemEntry
	order   []idemKey // insertion order, for expiry; entries may have left the map
}

func newIdempotency(now func() time.Time) *idempotency {
	return &idempotency{now: now, entries: make(map[idemKey]*idemEntry)}
}

// do runs post once per (user, key) within the window. A concurrent or
// later call with the same key waits for the first and returns its stored
// message; if the first failed, it runs post itself.
func (d *idempotency) do(ctx context.Context, userID int64, key string, post func() (store.StoredMessage, error)) (store.StoredMessage, error) {
	if len(key) > MaxIdempotencyKeyLen {
		return store.StoredMessage{}, ErrBadIdempotencyKey
	}
	k := idemKey{userID, key}
	for {
		d.mu.Lock()
		d.expire()
		e, seen := d.entries[k]
		if !seen {
			e = &idemEntry{done: make(chan struct{}), at: d.now()}
			d.entries[k] = e
			d.order = append(d.order, k)
		}
		d.mu.Unlock()
		if !seen {
			m, err := post()
			d.mu.Lock()
			e.msg, e.ok = m, err == nil
			if err != nil {
				delete(d.entries, k) // a refused or failed send may be tried again
			}
			d.mu.Unlock()
			close(e.done)
			return m, err
		}
		select {
		case <-e.done:
		case <-ctx.Done():
			return store.StoredMessage{}, ctx.Err()
		}
		if e.ok {
			return e.msg, nil
		}
		// The first attempt failed and was forgotten: try again (loop).
	}
}

// expire drops keys older than the window, and the oldest beyond
// maxIdempotencyKeys. A send still in flight is kept (its waiters need
// it) without stopping the sweep behind it. The caller holds mu.
func (d *idempotency) expire() {
	cut := d.now().Add(-IdempotencyWindow)
	var inFlight []idemKey
	i := 0
	for ; i < len(d.order); i++ {
		k := d.order[i]
		e, ok := d.entries[k]
		if !ok {
			continue // its send failed and was forgotten
		}
		if e.at.After(cut) && len(d.entries) <= MaxIdempotencyKeys {
			break
		}
		if !isClosed(e.done) {
			inFlight = append(inFlight, k)
			continue
		}
		delete(d.entries, k)
	}
	if i > 0 { // in flight first (they are the oldest), then the rest, in place
		n := copy(d.order, inFlight)
		n += copy(d.order[n:], d.order[i:])
		d.order = d.order[:n]
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Clustered reports whether writes go through a cluster's log.
func (c *Service) Clustered() bool { return c.St.Replicated() }

// DedupKeyOf names a post for the cluster log's de-duplication (JetStream's
// Nats-Msg-Id): the same user resending the same thing within the log's
// window gets the first post's answer. parts are what makes it the same:
// an idempotency key, or a receipt with the destination and body.
func DedupKeyOf(kind string, userID int64, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	return kind + "-" + strconv.FormatInt(userID, 10) + "-" + hex.EncodeToString(h.Sum(nil)[:16])
}
