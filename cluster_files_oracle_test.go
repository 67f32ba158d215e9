package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"stompbox/internal/cluster"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// cluster_files_oracle_test.go: an upload's time in a cluster does not
// tell whether someone else already uploaded the same bytes (issue 22).
// The object store replica (cluster.ObjectBlobs.Put) used to skip bytes
// it already held, so a large upload of known bytes took a fraction of
// the time of new ones. The test asserts what is deterministic: the
// upload of known bytes streams as many chunks through the object store
// as that of new bytes of the same size. It logs the median times too,
// for the record; they are not asserted.

// oracleUploadSize is a few object store chunks (128 KiB each) and big
// enough that sending them dominates an upload's time. The environment's
// STOMPBOX_ORACLE_MIB and STOMPBOX_ORACLE_RUNS change the size and the
// number of runs, for a closer look at the times.
const oracleUploadSize = 4 << 20

// oracleChunk is the object store's chunk size (nats.go's default).
const oracleChunk = 128 << 10

func TestClusterUploadKnownBytesSameWork(t *testing.T) {
	t.Parallel()
	cc := newClusterChat(t, 3)
	a, b := cc.nodes[0].server(t), cc.nodes[1].server(t)
	kim, lee := loginCookie(t, a, "kim"), loginCookie(t, b, "lee")
	// Messages put into the object store's streams so far: the blobs'
	// bucket, and the scratch bucket that takes known bytes (absent
	// before the fix).
	lastSeq := func() uint64 {
		t.Helper()
		var n uint64
		for _, name := range []string{"OBJ_stompbox-files", "OBJ_stompbox-files-scratch"} {
			stream, err := b.clog.Js.Stream(context.Background(), name)
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			info, err := stream.Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			n += info.State.LastSeq
		}
		return n
	}
	size, runs := oracleUploadSize, 5
	if n, err := strconv.Atoi(os.Getenv("STOMPBOX_ORACLE_MIB")); err == nil && n > 0 {
		size = n << 20
	}
	if n, err := strconv.Atoi(os.Getenv("STOMPBOX_ORACLE_RUNS")); err == nil && n > 0 {
		runs = n
	}
	// A text in every known upload, to look for in the scratch stream's
	// files at the end.
	canary := fmt.Sprintf("scratch-canary-%x", time.Now().UnixNano())
	// kim's uploads first, all of them: now known to the cluster, and
	// done replicating before lee's start.
	olds := make([][]byte, runs)
	for i := range olds {
		olds[i] = randomBytes(t, size)
		copy(olds[i][size/2:], canary)
		uploadTimed(t, a, kim, cc.room.ID, olds[i])
	}
	var known, fresh []time.Duration
	for i, old := range olds {
		// lee uploads kim's bytes and new bytes on another node, in
		// turns first, so that a warming cluster favours neither.
		for _, isKnown := range []bool{i%2 == 0, i%2 != 0} {
			data := old
			if !isKnown {
				data = randomBytes(t, size)
			}
			before := lastSeq()
			d := uploadTimed(t, b, lee, cc.room.ID, data)
			sent := lastSeq() - before
			if min := uint64(size / oracleChunk); sent < min {
				t.Fatalf("run %d: lee's upload of %s bytes put %d messages into the object store, want at least %d (its chunks): the upload skipped work",
					i, map[bool]string{true: "known", false: "new"}[isKnown], sent, min)
			}
			if isKnown {
				known = append(known, d)
			} else {
				fresh = append(fresh, d)
			}
		}
	}
	// The scratch copies go, chunks and meta messages.
	checkFor(t, "the scratch copies of known bytes deleted", func() bool {
		stream, err := b.clog.Js.Stream(context.Background(), "OBJ_stompbox-files-scratch")
		if err != nil {
			t.Fatal(err)
		}
		info, err := stream.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs == 0
	})
	// Nor are their bytes left in the scratch stream's message blocks on
	// any node (its raft log is the scrubber's, snapshot_scrub.go).
	for _, nd := range cc.nodes {
		for _, f := range filesHolding(t, filepath.Join(nd.spec.Dir, cluster.JetStreamDir), canary) {
			if strings.Contains(f, "OBJ_stompbox-files-scratch") {
				t.Errorf("node %s: known bytes left in %s", nd.spec.Name, f)
			}
		}
	}
	t.Logf("upload of %d MiB on a 3-node cluster, median of %d: known bytes %v, new bytes %v (known %v, new %v)",
		size>>20, runs, median(known), median(fresh), known, fresh)
}

// randomBytes returns n random bytes.
func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// uploadTimed uploads data to room on srv with the session cookie and
// returns how long the request took, from sending to the answer.
func uploadTimed(t *testing.T, srv *server, cookie *http.Cookie, room int64, data []byte) time.Duration {
	t.Helper()
	ct, body := multipartBody("blob.bin", data)
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://%s/api/rooms/%d/files", srv.HTTPAddr(), room), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	req.AddCookie(cookie)
	began := time.Now()
	resp, err := http.DefaultClient.Do(req)
	took := time.Since(began)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %s", resp.Status)
	}
	return took
}

// median of ds (the upper one for an even count).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
