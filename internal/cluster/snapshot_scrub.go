package cluster

// snapshot_scrub.go: deleted means gone from the disk. A purge or an
// object's deletion only marks JetStream's messages removed; the bytes
// stay in two places until something rewrites them:
//   - the stream's message blocks: a purge up to the log's end removes the
//     blocks, a partial one leaves a block smaller than 2 MB as it was
//     (nats-server's filestore compacts a block's head only past that);
//     an object's chunks are erased (overwritten) one by one before the
//     object is deleted (eraseObject);
//   - each replica's raft log of the stream, which holds every entry
//     until the replica installs a raft snapshot (nats-server does so on
//     its own every 2 to 3 minutes); compactRaft asks the node's embedded
//     server for one at once.
// The database's own free pages and WAL are the store's (Store.Scrub).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// objectStream is the stream behind an object store bucket.
func objectStream(bucket string) string { return "OBJ_" + bucket }

// compactRaft has this node's embedded server install a raft snapshot of
// the log's and the object stores' streams, which drops the raft log's
// entries up to what it applied: a purged entry's bytes leave this
// node's raft log. With -nats the NATS servers do it on their own
// schedule.
func (c *Compactor) compactRaft() error {
	ns := c.l.ns
	if ns == nil || !ns.JetStreamIsClustered() {
		return nil
	}
	acc := ns.GlobalAccount().GetName()
	var errs []error
	for _, name := range []string{logStream, objectStream(snapBucket), objectStream(blobBucket), objectStream(scratchBucket)} {
		if err := ns.JetStreamSnapshotStream(acc, name); err != nil && !isNoStream(err) && !isNoSnapshot(err) {
			errs = append(errs, fmt.Errorf("compact the raft log of %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// isNoStream is true for the error of a stream that does not exist (yet)
// on this server.
func isNoStream(err error) bool {
	return err != nil && (errors.Is(err, jetstream.ErrStreamNotFound) || err.Error() == "stream not found")
}

// isNoSnapshot is true for raft's answer when it has nothing new to
// snapshot (nothing applied since the last one, or nothing yet).
func isNoSnapshot(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no snapshot available")
}

// eraseObject overwrites the chunks of object name in the bucket whose
// stream is stream (JetStream's secure delete, on every replica), so
// that its bytes leave the message blocks and not only the index; the
// caller then deletes the object.
func eraseObject(ctx context.Context, js jetstream.JetStream, obj jetstream.ObjectStore, bucket, name string) error {
	info, err := obj.GetInfo(ctx, name, jetstream.GetObjectInfoShowDeleted())
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("erase object %s: %w", name, err)
	}
	if info.Deleted || info.NUID == "" {
		return nil
	}
	stream, err := js.Stream(ctx, objectStream(bucket))
	if err != nil {
		return fmt.Errorf("erase object %s: %w", name, err)
	}
	chunks := fmt.Sprintf("$O.%s.C.%s", bucket, info.NUID)
	// A plain pull consumer, made and read with ctx: an ordered consumer
	// re-creates itself on each Fetch with retries that ignore the
	// context, forever by default, so a node whose connection closed
	// meanwhile (shutting down) kept the deleting goroutine alive.
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject: chunks, HeadersOnly: true, AckPolicy: jetstream.AckNonePolicy,
		MemoryStorage: true, Replicas: 1, InactiveThreshold: eraseConsumerIdle,
	})
	if err != nil {
		return fmt.Errorf("erase object %s: %w", name, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eraseFetchWait)
		defer cancel()
		stream.DeleteConsumer(dctx, cons.CachedInfo().Name) // else it goes after eraseConsumerIdle
	}()
	pending := info.Chunks
	var seqs []uint64
	for pending > 0 {
		n, last, err := chunkSeqs(ctx, cons, int(min(pending, 256)), &seqs)
		if err != nil {
			return fmt.Errorf("erase object %s: %w", name, err)
		}
		if n == 0 || last {
			break
		}
		pending = max(0, pending-uint32(n))
	}
	for _, seq := range seqs {
		if err := stream.SecureDeleteMsg(ctx, seq); err != nil && !isMsgGone(err) {
			return fmt.Errorf("erase object %s: chunk %d: %w", name, seq, err)
		}
	}
	return nil
}

// isMsgGone is true for the answers to deleting a message that is not
// there (any more): every node erases a deleted object's chunks, so
// another node often overwrote a chunk first. The server says so as
// "message not found" (10037), or, from a delete that lost that race,
// "sequence not found" (10043) or "no message found" (10057), which the
// client hands back as text only.
func isMsgGone(err error) bool {
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return true
	}
	if !errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		return false
	}
	text := err.Error()
	return strings.Contains(text, "err_code=10043 ") || strings.Contains(text, "err_code=10057 ")
}

const (
	// eraseFetchWait bounds one fetch of chunk sequences, and the
	// consumer's deletion after.
	eraseFetchWait = 2 * time.Second
	// eraseConsumerIdle is when the server drops an erase's consumer that
	// its node never deleted (it stopped meanwhile).
	eraseConsumerIdle = time.Minute
)

// chunkSeqs fetches up to batch chunk headers from cons and appends their
// stream sequences to seqs: how many came, and whether the last one was
// the stream's last of that subject.
func chunkSeqs(ctx context.Context, cons jetstream.Consumer, batch int, seqs *[]uint64) (n int, last bool, err error) {
	fctx, cancel := context.WithTimeout(ctx, eraseFetchWait)
	defer cancel()
	msgs, err := cons.Fetch(batch, jetstream.FetchContext(fctx))
	if err != nil {
		return 0, false, err
	}
	for msg := range msgs.Messages() {
		if meta, err := msg.Metadata(); err == nil {
			*seqs = append(*seqs, meta.Sequence.Stream)
			last = last || meta.NumPending == 0
		}
		n++
	}
	if err := msgs.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
		return n, last, err
	}
	if n == 0 && ctx.Err() != nil {
		return 0, false, ctx.Err()
	}
	return n, last, nil
}
