package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"stompbox/internal/chat"
	"testing"
)

// Deletion deletes (issue 22): what a person deletes, or retention
// removes, leaves every file of every node's data folder, not only the
// answers the server gives.

// uniqueWord is a word nothing else holds; its first letters vary, since
// the full-text index stores a term's prefix shared with the one before
// it only once: tests look for wordTail.
func uniqueWord(t testing.TB) string {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "w" + hex.EncodeToString(b)
}

func wordTail(w string) []byte { return []byte(w[4:]) }

// dataFilesHolding lists the files under dir whose raw bytes hold b: the
// database, its -wal and -shm, the blobs, and whatever else is there.
func dataFilesHolding(t testing.TB, dir string, b []byte) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(raw, b) {
			rel, _ := filepath.Rel(dir, path)
			found = append(found, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestDeletedMessageLeavesDataFolder: alice deletes a message with a
// unique word and an attached file whose bytes hold another: as soon as
// the DELETE is answered, no file under the data folder holds either,
// while bob's message (kept) is still found, so the search can see.
func TestDeletedMessageLeavesDataFolder(t *testing.T) {
	f := newFilesFixture(t)
	word, inFile, keptWord := uniqueWord(t), uniqueWord(t), uniqueWord(t)
	doc := f.uploadOK(t, f.alice, "secret.txt", []byte("the file says "+inFile))
	del := f.post(t, f.alice, f.room, "delete me "+word, doc.ID)
	if r := f.post(t, f.bob, f.room, "keep me "+keptWord); r.status != 201 || del.status != 201 {
		t.Fatalf("posts: %d %s, %d", del.status, del.body, r.status)
	}
	var m struct{ ID int64 }
	if err := json.Unmarshal(del.body, &m); err != nil || m.ID == 0 {
		t.Fatalf("post answer %s: %v", del.body, err)
	}
	dir := f.srv.cfg.DataDir
	if len(dataFilesHolding(t, dir, wordTail(word))) == 0 || len(dataFilesHolding(t, dir, wordTail(inFile))) == 0 {
		t.Fatal("the words are in no file before the deletion: the search is blind")
	}
	if r := f.req(t, f.alice, "DELETE", fmt.Sprintf("/api/rooms/%d/messages/%d", f.room, m.ID), "", nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	for _, w := range []string{word, inFile} {
		if found := dataFilesHolding(t, dir, wordTail(w)); len(found) > 0 {
			t.Errorf("deleted %s still in %v", w, found)
		}
	}
	if found := dataFilesHolding(t, dir, wordTail(keptWord)); len(found) == 0 {
		t.Error("the kept message is in no file")
	}
}

// TestKeepDaysLeavesDataFolder: messages -keep-days removes, and their
// files, are in no file under the data folder once the pass returns.
func TestKeepDaysLeavesDataFolder(t *testing.T) {
	f := newFilesFixture(t, func(c *Config) { c.KeepDays = 1 })
	ctx := context.Background()
	var old []string
	for i := range 20 {
		w, inFile := uniqueWord(t), uniqueWord(t)
		doc := f.uploadOK(t, f.alice, fmt.Sprintf("old%d.txt", i), []byte("old file "+inFile))
		if r := f.post(t, f.alice, f.room, "old "+w, doc.ID); r.status != 201 {
			t.Fatal(r.status, string(r.body))
		}
		old = append(old, w, inFile)
	}
	kept := uniqueWord(t)
	if r := f.post(t, f.bob, f.room, "new "+kept); r.status != 201 {
		t.Fatal(r.status)
	}
	err := f.srv.store.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE messages SET created_at = created_at - 31536000000 WHERE body LIKE 'old %'`)
		return err
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.srv.maintain()
	dir := f.srv.cfg.DataDir
	for _, w := range old {
		if found := dataFilesHolding(t, dir, wordTail(w)); len(found) > 0 {
			t.Errorf("purged %s still in %v", w, found)
		}
	}
	if found := dataFilesHolding(t, dir, wordTail(kept)); len(found) == 0 {
		t.Error("the kept message is in no file")
	}
}

// TestFileOfAnotherRoomIs404: a file in a room one is not in answers 404,
// like a file that does not exist (ids are sequential; a 403 would tell
// which exist), and so does its thumbnail.
func TestFileOfAnotherRoomIs404(t *testing.T) {
	f := newFilesFixture(t)
	pic := f.uploadOK(t, f.alice, "pic.png", pngBytes(t, 40, 40))
	if r := f.post(t, f.alice, f.room, "", pic.ID); r.status != 201 {
		t.Fatal(r.status)
	}
	missing := fmt.Sprintf("/api/files/%d", pic.ID+1000)
	none := f.req(t, f.carol, "GET", missing, "", nil)
	for _, path := range []string{pic.URL, pic.ThumbURL} {
		r := f.req(t, f.carol, "GET", path, "", nil)
		if r.status != http.StatusNotFound || !bytes.Equal(r.body, none.body) {
			t.Errorf("carol GET %s: %d %s; a missing file: %d %s", path, r.status, r.body, none.status, none.body)
		}
	}
	if r := f.req(t, f.bob, "GET", pic.URL, "", nil); r.status != http.StatusOK {
		t.Errorf("bob, a member: %d", r.status)
	}
}

// TestClusterDeletedFileLeavesEveryNode: a file every node of three has
// on its disk (each downloaded it) leaves every node's files folder once
// its message is deleted on one node, not at the daily sweep.
func TestClusterDeletedFileLeavesEveryNode(t *testing.T) {
	cc := newClusterChat(t, 3)
	ctx := context.Background()
	a := cc.nodes[0].server(t)
	content := []byte("cluster file " + uniqueWord(t))
	up, err := a.files.Upload(ctx, cc.kim, cc.room.ID, "doc.txt", bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	m, err := a.chat.Post(ctx, cc.kim, chat.Input{Type: "TALK", RoomID: cc.room.ID, Message: "with a file", Attachments: []int64{up.ID}})
	if err != nil {
		t.Fatal(err)
	}
	cc.waitConverged(cc.nodes...)
	for _, nd := range cc.nodes {
		srv := nd.server(t)
		_, file, err := srv.files.Open(ctx, cc.lee, up.ID, false)
		if err != nil {
			t.Fatalf("node %s: %v", nd.spec.Name, err)
		}
		got, _ := io.ReadAll(file)
		file.Close()
		if !bytes.Equal(got, content) {
			t.Fatalf("node %s served %q", nd.spec.Name, got)
		}
		if _, err := os.Stat(srv.files.BlobPath(up.SHA256)); err != nil {
			t.Fatalf("node %s lacks the blob after serving it: %v", nd.spec.Name, err)
		}
	}
	if err := a.chat.Delete(ctx, cc.kim, cc.room.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	for _, nd := range cc.nodes {
		srv := nd.server(t)
		checkFor(t, "the blob to leave node "+nd.spec.Name, func() bool {
			_, err := os.Stat(srv.files.BlobPath(up.SHA256))
			return os.IsNotExist(err)
		})
	}
	if found := dataFilesHolding(t, a.files.Dir, content); len(found) > 0 {
		t.Errorf("node 1's files folder still holds the bytes: %v", found)
	}
}
