package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/nats-io/nats.go/jetstream"
)

// blobBucket is the JetStream object store that holds the replicated
// blobs (internal/files/replica.go), named by their SHA-256 as on disk.
const blobBucket = "stompbox-files"

// ObjectBlobs is a files.Replica on a JetStream object store: the bucket
// blobBucket, on disk, with as many replicas as the cluster was told, so
// a blob outlives the node that took the upload.
type ObjectBlobs struct {
	Store jetstream.ObjectStore
	js    jetstream.JetStream // to erase a deleted blob's chunks (snapshot_scrub.go)
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
	return &ObjectBlobs{Store: st, js: js}, nil
}

// Put implements files.Replica. A blob already in the bucket with the
// digest its name promises is not sent again: the same picture uploaded
// on two nodes is one object.
func (b *ObjectBlobs) Put(ctx context.Context, name, path string) error {
	info, err := b.Store.GetInfo(ctx, name)
	switch {
	case err == nil && info.Digest != "" && info.Digest == objectDigest(name):
		return nil
	case err != nil && !errors.Is(err, jetstream.ErrObjectNotFound):
		return fmt.Errorf("put blob %s: %w", name, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("put blob %s: %w", name, err)
	}
	defer f.Close()
	if _, err := b.Store.Put(ctx, jetstream.ObjectMeta{Name: name}, f); err != nil {
		return fmt.Errorf("put blob %s: %w", name, err)
	}
	return nil
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

// Delete implements files.Replica.
func (b *ObjectBlobs) Delete(ctx context.Context, name string) error {
	if b.js != nil { // its bytes leave the message blocks too
		if err := eraseObject(ctx, b.js, b.Store, blobBucket, name); err != nil {
			return fmt.Errorf("delete blob %s: %w", name, err)
		}
	}
	if err := b.Store.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete blob %s: %w", name, err)
	}
	return nil
}

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
