package cluster

// How a node reads the log: entries by sequence, in batches, with
// JetStream's direct get, woken by the sequence each node announces on
// core NATS when it appended an entry (logEndSubject), and by a poll. Every replica of the stream answers direct gets (a queue group),
// so no single node stands between the log and this node's database
// beyond the quorum that stores an entry and the stream leader that orders
// it. A NATS server does not prefer its own queue member for a client's
// request (it does only for requests that came over a route), so a request
// goes to a random replica: one that died with the request in flight costs
// one short wait (fetchFirstWait), and the next request goes to a live one
// (a dead node's route closes, and its members with it). A replica that
// lags answers "nothing yet", and the applier asks again.
//
// The reader used to be an ordered consumer, which JetStream placed on a
// random node: when that node died, this node heard nothing until the
// client library noticed two missed heartbeats and rebuilt it (10 s, at
// times 20 s), and every RECEIPT waited as long (issue 23).

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

const (
	// fetchBatch is how many entries one direct get asks for, and
	// fetchMaxBytes how many bytes at most: a node catching up reads the
	// log in large steps, a node keeping up gets what is new.
	fetchBatch    = 256
	fetchMaxBytes = 4 << 20
	// fetchFirstWait bounds the wait for a replica's first answer, and
	// fetchNextWait for each further entry of a batch: a replica answers
	// in well under a millisecond, so a request that gets no answer was
	// lost with its replica and is sent again.
	fetchFirstWait = 150 * time.Millisecond
	fetchNextWait  = time.Second
)

// logEntry is one entry of the log.
type logEntry struct {
	seq  uint64
	data []byte
}

// logReader reads the log's entries by sequence with batched direct gets.
// One goroutine (the applier) uses it.
type logReader struct {
	nc      *nats.Conn
	subject string // the stream's direct get subject
	inbox   string // replies come to inbox.<request number>
	sub     *nats.Subscription
	nreq    uint64
}

// newLogReader subscribes to the replies of its direct gets on the log
// stream. close releases it.
func newLogReader(nc *nats.Conn, stream string) (*logReader, error) {
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox + ".*")
	if err != nil {
		return nil, fmt.Errorf("cluster log reader: %w", err)
	}
	return &logReader{nc: nc, subject: "$JS.API.DIRECT.GET." + stream, inbox: inbox, sub: sub}, nil
}

// close ends the reply subscription.
func (r *logReader) close() { r.sub.Unsubscribe() }

// fetch returns the entries from seq on that the answering replica holds,
// in order and without gaps, at most fetchBatch of them: none when it
// does not hold seq yet. An error after some entries comes with them: the
// caller applies those first. A reply that skips an entry is errLogGap
// (snapshot_adopt.go): the log no longer holds it, and applying the next
// one would leave this node's copy different from the others'.
func (r *logReader) fetch(ctx context.Context, seq uint64) ([]logEntry, error) {
	r.nreq++
	reply := r.inbox + "." + strconv.FormatUint(r.nreq, 36)
	req := fmt.Appendf(nil, `{"seq":%d,"batch":%d,"max_bytes":%d}`, seq, fetchBatch, fetchMaxBytes)
	if err := r.nc.PublishRequest(r.subject, reply, req); err != nil {
		return nil, fmt.Errorf("read the log at %d: %w", seq, err)
	}
	var out []logEntry
	wait := fetchFirstWait
	for {
		wctx, cancel := context.WithTimeout(ctx, wait)
		msg, err := r.sub.NextMsgWithContext(wctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("no answer in %v", wait)
			}
			return out, fmt.Errorf("read the log at %d: %w", seq, err)
		}
		wait = fetchNextWait
		if msg.Subject != reply {
			continue // the late answer to an earlier request that timed out
		}
		if len(msg.Data) == 0 && msg.Header.Get("Status") != "" {
			switch st := msg.Header.Get("Status"); st {
			case "404", "204": // nothing at seq yet; the end of the batch
				return out, nil
			case "503":
				return out, fmt.Errorf("read the log at %d: no replica answers", seq)
			default:
				return out, fmt.Errorf("read the log at %d: %s %s", seq, st, msg.Header.Get("Description"))
			}
		}
		got, err := strconv.ParseUint(msg.Header.Get(nats.JSSequence), 10, 64)
		if err != nil {
			return out, fmt.Errorf("read the log at %d: entry without its sequence: %w", seq, err)
		}
		if want := seq + uint64(len(out)); got != want {
			return out, fmt.Errorf("read the log: asked for entry %d, got %d: %w", want, got, errLogGap)
		}
		out = append(out, logEntry{seq: got, data: msg.Data})
	}
}
