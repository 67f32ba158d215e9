package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// blobBucket is the JetStream object store that holds the replicated
// blobs (internal/files/replica.go), named by their SHA-256 as on disk.
const blobBucket = "stompbox-files"

// scratchBucket is where Put sends the bytes of a blob that blobBucket
// already holds (see Put). It is kept as blobBucket is, on disk with as
// many replicas, so that the bytes travel, are replicated and written as
// a new blob's are (in memory, the upload of known bytes took a fifth
// less time). Nothing in it is kept: after each put its stream is purged
// whole, which removes its message blocks (snapshot_scrub.go), so that
// no copy of a blob's bytes outlives the blob.
const scratchBucket = "stompbox-files-scratch"

// scratchPurgeTimeout bounds the purge that removes scratch objects.
const scratchPurgeTimeout = 30 * time.Second

// scratchTTL is how long a scratch object stays in scratchBucket when no
// purge removed it (the node crashed before it ran). It is
// well past the longest transfer (files.replicaTransferTimeout).
const scratchTTL = time.Hour

// ObjectBlobs is a files.Replica on a JetStream object store: the bucket
// blobBucket, on disk, with as many replicas as the cluster was told, so
// a blob outlives the node that took the upload.
type ObjectBlobs struct {
	Store jetstream.ObjectStore
	js    jetstream.JetStream // to erase a deleted blob's chunks (snapshot_scrub.go)
	// scratch is the bucket scratchBucket; nil only in an ObjectBlobs not
	// made by NewObjectBlobs, whose Put then skips a stored blob.
	scratch jetstream.ObjectStore

	// purgeMu guards purgeWanted and purging: one goroutine at a time
	// empties the scratch bucket (dropScratches), again as long as puts
	// asked for it meanwhile, and ends when none did.
	purgeMu     sync.Mutex
	purgeWanted bool
	purging     bool
}

// NewObjectBlobs opens the bucket blobBucket, creating it (file storage,
// replicas copies; 0 means 1) if needed, or updating its replica count.
//
// While nodes are still joining (or a JetStream leader is being elected)
// creating the bucket can time out; it is tried again until ctx ends, as
// the log's stream is.
func NewObjectBlobs(ctx context.Context, js jetstream.JetStream, replicas int) (*ObjectBlobs, error) {
	cfg := jetstream.ObjectStoreConfig{
		Bucket:      blobBucket,
		Description: "stompbox uploaded files and thumbnails, named by SHA-256",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
	var st jetstream.ObjectStore
	err := retrySetup(ctx, func(ctx context.Context) (err error) {
		st, err = js.CreateOrUpdateObjectStore(ctx, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open object store %s: %w", blobBucket, err)
	}
	scfg := jetstream.ObjectStoreConfig{
		Bucket:      scratchBucket,
		Description: "stompbox: uploads of files already stored, sent and dropped (see cluster.ObjectBlobs.Put)",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		TTL:         scratchTTL,
	}
	var scratch jetstream.ObjectStore
	err = retrySetup(ctx, func(ctx context.Context) (err error) {
		scratch, err = js.CreateOrUpdateObjectStore(ctx, scfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open object store %s: %w", scratchBucket, err)
	}
	return &ObjectBlobs{Store: st, js: js, scratch: scratch}, nil
}

// Put implements files.Replica. It does the same work whether or not the
// bucket already holds name: the file's bytes always go through the
// object store, replicated as any blob is. Skipping bytes the bucket
// already held made the upload of a file someone else had uploaded
// (anywhere in the cluster) measurably faster, which told the uploader
// that those bytes were known: an existence oracle across accounts.
//
// A blob already stored with the digest its name promises is not
// replaced (a node fetching it meanwhile must not see its chunks purged
// under it): the bytes go to a scratch object in scratchBucket (stored
// as blobBucket is), which is checked against the stored digest and
// dropped in the background. The upload waits for the same work as a
// new blob's; only the later purge is more. A scratch object a crash left
// behind expires (scratchTTL).
func (b *ObjectBlobs) Put(ctx context.Context, name, path string) error {
	info, err := b.Store.GetInfo(ctx, name)
	switch {
	case err == nil && info.Digest != "" && info.Digest == objectDigest(name):
		if b.scratch == nil {
			return nil
		}
		return b.putAgain(ctx, name, path)
	case err != nil && !errors.Is(err, jetstream.ErrObjectNotFound):
		return fmt.Errorf("put blob %s: %w", name, err)
	}
	if _, err := b.put(ctx, b.Store, name, path); err != nil {
		return fmt.Errorf("put blob %s: %w", name, err)
	}
	return nil
}

// putAgain sends the file of a blob the bucket already holds to a scratch
// object, compares digests and has the scratch bucket emptied.
func (b *ObjectBlobs) putAgain(ctx context.Context, name, path string) error {
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return fmt.Errorf("put blob %s: %w", name, err)
	}
	scratch := name + "." + hex.EncodeToString(nonce[:]) // two uploads of one blob at once do not share it
	info, err := b.put(ctx, b.scratch, scratch, path)
	if err != nil {
		return fmt.Errorf("put blob %s: %w", name, err) // the object store took back the chunks it had
	}
	// The scratch object goes after Put returns, so that the upload does
	// not wait for a removal that a new blob's upload does not make (a
	// delay that told known bytes apart again, the other way round), and
	// even when the caller's ctx ended. Should that fail, scratchTTL
	// removes it (leaving its bytes in the blocks until the next purge).
	b.wantScratchDropped()
	if info.Digest != objectDigest(name) {
		return fmt.Errorf("put blob %s: the file's bytes do not match their name (%s)", name, info.Digest)
	}
	return nil
}

// wantScratchDropped asks for the scratch bucket to be emptied, starting
// the one goroutine that does it unless it runs already: however many
// known blobs are uploaded at once, one purge runs at a time, and a put
// that asked during a purge gets another after it.
func (b *ObjectBlobs) wantScratchDropped() {
	b.purgeMu.Lock()
	defer b.purgeMu.Unlock()
	b.purgeWanted = true
	if !b.purging {
		b.purging = true
		go b.dropScratches()
	}
}

// dropScratches empties the scratch bucket until no put asks again. Each
// purge is bounded by scratchPurgeTimeout, so the goroutine ends; should
// one fail, scratchTTL removes what it left.
func (b *ObjectBlobs) dropScratches() {
	for {
		b.purgeMu.Lock()
		if !b.purgeWanted {
			b.purging = false
			b.purgeMu.Unlock()
			return
		}
		b.purgeWanted = false
		b.purgeMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), scratchPurgeTimeout)
		b.dropScratch(ctx) //nolint:errcheck // scratchTTL is the fallback
		cancel()
	}
}

// dropScratch empties the scratch bucket: its stream is purged whole, so
// that its message blocks go with their bytes (an object's deletion or a
// purge by subject would leave them in the blocks, to be erased chunk by
// chunk, a round trip each, as a deleted blob's are). The purge takes the
// scratch objects of other uploads in flight too: they lose their chunks,
// which is all that would happen to them anyway (Put does not read back
// what it wrote), and the purge after each of them takes what they wrote
// after this one.
func (b *ObjectBlobs) dropScratch(ctx context.Context) error {
	st, err := b.js.Stream(ctx, objectStream(scratchBucket))
	if err != nil {
		return fmt.Errorf("empty %s: %w", scratchBucket, err)
	}
	if err := st.Purge(ctx); err != nil {
		return fmt.Errorf("empty %s: %w", scratchBucket, err)
	}
	return nil
}

// put streams the file at path into the object name of st.
func (b *ObjectBlobs) put(ctx context.Context, st jetstream.ObjectStore, name, path string) (*jetstream.ObjectInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := st.Put(ctx, jetstream.ObjectMeta{Name: name}, f)
	if err != nil {
		return nil, err
	}
	return info, nil
}

// Get implements files.Replica. The object store checks the digest it
// recorded when the object was put; the caller checks the name.
func (b *ObjectBlobs) Get(ctx context.Context, name string, dst io.Writer) error {
	r, err := b.Store.Get(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("get blob %s: %w", name, fs.ErrNotExist)
	}
	if err != nil {
		return fmt.Errorf("get blob %s: %w", name, err)
	}
	defer r.Close()
	if _, err := io.Copy(dst, r); err != nil {
		return fmt.Errorf("get blob %s: %w", name, err)
	}
	return nil
}

// Delete implements files.Replica. The object is deleted even when its
// chunks could not be erased first (the error says so), with a bound of
// its own if the erase used up ctx: nothing would try it again, and no
// row names it any more.
func (b *ObjectBlobs) Delete(ctx context.Context, name string) error {
	var errs []error
	if b.js != nil { // its bytes leave the message blocks too
		if err := eraseObject(ctx, b.js, b.Store, blobBucket, name); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), blobDeleteAfterErase)
				defer cancel()
			}
		}
	}
	if err := b.Store.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete blob %s: %w", name, err)
	}
	return nil
}

// blobDeleteAfterErase bounds a blob's deletion after its erase failed
// for want of time.
const blobDeleteAfterErase = 5 * time.Second

// objectDigest is the digest the object store records for the bytes whose
// hex SHA-256 is sum ("SHA-256=" and the sum in padded URL base64, as
// jetstream.GetObjectDigestValue writes it), or "" if sum is not one.
func objectDigest(sum string) string {
	b, err := hex.DecodeString(sum)
	if err != nil || len(b) != sha256.Size {
		return ""
	}
	return "SHA-256=" + base64.URLEncoding.EncodeToString(b)
}
