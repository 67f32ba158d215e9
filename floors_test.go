package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"stompbox/internal/files"
	"stompbox/internal/stomp"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeDisk is a data folder's disk whose free space the test sets.
type fakeDisk struct{ free atomic.Uint64 }

func (d *fakeDisk) statFS(string) (files.DiskSpace, error) {
	return files.DiskSpace{Free: d.free.Load(), Total: 100 << 30}, nil
}

// refusal checks a 507 with a JSON error naming the limit.
func refusal(t *testing.T, what string, r httpResult, limit string) {
	t.Helper()
	var e struct{ Error string }
	if r.status != http.StatusInsufficientStorage || json.Unmarshal(r.body, &e) != nil || !bytes.Contains([]byte(e.Error), []byte(limit)) {
		t.Errorf("%s: %d %s, want 507 naming %s", what, r.status, r.body, limit)
	}
}

// TestDiskFloors: below -min-free uploads get 507 and posts still work;
// below a quarter of it posts get 507 too; deleting works throughout,
// and the reserve file is given back when the disk is that low.
func TestDiskFloors(t *testing.T) {
	disk := &fakeDisk{}
	disk.free.Store(2 << 30)
	f := newFilesFixture(t, func(c *Config) { c.MinFreeMiB = 512; c.statFS = disk.statFS })
	reserve := filepath.Join(f.srv.cfg.DataDir, "disk-reserve")
	if _, err := os.Stat(reserve); err != nil {
		t.Fatalf("no reserve file: %v", err)
	}
	doc := f.uploadOK(t, f.alice, "a.txt", []byte("before"))

	disk.free.Store(300 << 20) // under -min-free, over a quarter of it
	refusal(t, "upload under -min-free", f.upload(t, f.alice, f.room, "b.txt", []byte("refused")), "-min-free")
	r := f.post(t, f.alice, f.room, "still posting", doc.ID)
	if r.status != http.StatusCreated {
		t.Fatalf("post over the post floor: %d %s", r.status, r.body)
	}
	var m struct{ ID int64 }
	json.Unmarshal(r.body, &m)

	disk.free.Store(50 << 20) // under the post floor
	refusal(t, "post under the post floor", f.post(t, f.bob, f.room, "refused"), "-min-free")
	sc := dialTCP(t, f.srv.TCPAddr())
	sc.connect("accept-version:1.2", "login:bob", "passcode:password-bob")
	sc.send(stomp.CmdSend, chatBody("TALK", f.room, "refused too"), "destination:/pub/chat/message", "receipt:r1")
	if fr := sc.expect(stomp.CmdError); !strings.Contains(fr.Value("message"), "-min-free") {
		t.Errorf("STOMP SEND under the post floor: ERROR %q, want it to name -min-free", fr.Value("message"))
	}
	if r := f.req(t, f.alice, "DELETE", fmt.Sprintf("/api/rooms/%d/messages/%d", f.room, m.ID), "", nil); r.status != http.StatusNoContent {
		t.Fatalf("delete on a full disk: %d %s", r.status, r.body)
	}
	if _, err := os.Stat(reserve); !os.IsNotExist(err) {
		t.Errorf("reserve file kept on a full disk: %v", err)
	}
	if b := f.blobs(t); len(b) != 0 {
		t.Errorf("blobs after the deletion: %v", b)
	}

	disk.free.Store(2 << 30)
	if r := f.post(t, f.bob, f.room, "room again"); r.status != http.StatusCreated {
		t.Errorf("post with room again: %d %s", r.status, r.body)
	}
	f.uploadOK(t, f.alice, "c.txt", []byte("room again"))
	if _, err := os.Stat(reserve); err != nil {
		t.Errorf("reserve not put back with room again: %v", err)
	}
	if st := f.srv.files.Stats(); st.RefusedNoSpace != 1 {
		t.Errorf("stats: %d uploads refused for space, want 1", st.RefusedNoSpace)
	}
}

// TestFilesMaxTotal: all uploads together stay under -files-max-total,
// whoever uploads: past it, 507 naming the limit.
func TestFilesMaxTotal(t *testing.T) {
	f := newFilesFixture(t, func(c *Config) { c.FilesMaxTotalMiB = 1 })
	f.uploadOK(t, f.alice, "a.bin", bytes.Repeat([]byte("a"), 700<<10))
	refusal(t, "bob past the total", f.upload(t, f.bob, f.room, "b.bin", bytes.Repeat([]byte("b"), 700<<10)), "-files-max-total")
	f.checkNothingLeft(t, 1)
	f.uploadOK(t, f.bob, "small.bin", bytes.Repeat([]byte("c"), 100<<10))
	if st := f.srv.files.Stats(); st.RefusedNoSpace != 1 {
		t.Errorf("stats: %d uploads refused for space, want 1", st.RefusedNoSpace)
	}
}
