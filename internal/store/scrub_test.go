package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"stompbox/internal/testutil"
)

// testDeleteOp deletes a message as the chat's delete does (Tx.DeleteMessage).
type testDeleteOp struct{ ID int64 }

func (*testDeleteOp) OpKind() string { return "test-delete" }
func (o *testDeleteOp) Apply(e *Tx) error {
	_, err := e.DeleteMessage(o.ID)
	return err
}

// testEditOp replaces a message's text as the chat's edit does.
type testEditOp struct {
	ID   int64
	Text string
}

func (*testEditOp) OpKind() string      { return "test-edit" }
func (o *testEditOp) Apply(e *Tx) error { return e.EditMessage(o.ID, o.Text) }

// canaryWord is a word no other message holds. Its first letters vary
// (the full-text index stores a term's prefix shared with the one before
// it only once), so the test looks for its tail in the raw bytes.
func canaryWord(t testing.TB) string {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "q" + hex.EncodeToString(b)
}

// canaryTail is the part of w every copy of it on disk holds.
func canaryTail(w string) []byte { return []byte(w[4:]) }

// filesHolding returns the files under dir whose raw bytes hold b.
func filesHolding(t testing.TB, dir string, b []byte) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(raw, b) {
			found = append(found, filepath.Base(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestStoreDeletedTextLeavesEveryFile deletes, edits and keeps messages
// with unique words and reads the raw bytes of every file of the data
// folder (the database, -wal, -shm) while the store is open: a deleted or
// replaced text is in none of them as soon as the deletion returns; a kept
// one is (so the search itself works).
func TestStoreDeletedTextLeavesEveryFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenDir(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	type msg struct {
		word string
		id   int64
	}
	var all []msg
	for i := range 60 {
		w := canaryWord(t)
		m, err := insertTestMessage(ctx, s, 1, "note "+w+" filler words to share pages "+string(rune('a'+i%26)))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, msg{w, m.ID})
	}
	var deleted, kept []msg
	for i, m := range all {
		if i%4 == 1 {
			continue // edited below, after the deletions (whose checkpoints would hide a missing one)
		}
		if i%2 == 0 {
			if err := s.ApplyAt(ctx, &testDeleteOp{m.id}, s.NowMS(), false); err != nil {
				t.Fatal(err)
			}
			deleted = append(deleted, m)
		} else {
			kept = append(kept, m)
		}
	}
	for i, m := range all {
		if i%4 == 1 { // edited: the old text goes like a deleted one
			if err := s.ApplyAt(ctx, &testEditOp{m.id, "edited " + canaryWord(t)}, s.NowMS(), false); err != nil {
				t.Fatal(err)
			}
			deleted = append(deleted, m)
		}
	}
	for _, m := range deleted {
		if f := filesHolding(t, dir, canaryTail(m.word)); len(f) > 0 {
			t.Errorf("deleted word %s still in %v", m.word, f)
		}
		if hits, _ := s.SearchMessages(ctx, 0, `"`+m.word+`"`, 10); len(hits) != 0 {
			t.Errorf("search still finds deleted %s", m.word)
		}
	}
	for _, m := range kept[:3] {
		if f := filesHolding(t, dir, canaryTail(m.word)); len(f) == 0 {
			t.Errorf("kept word %s is in no file: the search is blind", m.word)
		}
	}
}

// TestStorePurgedTextLeavesEveryFile is the same for retention
// (-keep-days): purged messages' words are in no file once PurgeBefore
// returns.
func TestStorePurgedTextLeavesEveryFile(t *testing.T) {
	ctx := context.Background()
	clock := testutil.NewClock()
	dir := t.TempDir()
	s, err := OpenDir(ctx, dir, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var old []string
	for range 40 {
		w := canaryWord(t)
		if _, err := insertTestMessage(ctx, s, 1, "old "+w+" and some common words"); err != nil {
			t.Fatal(err)
		}
		old = append(old, w)
	}
	clock.Advance(48 * time.Hour)
	keep := canaryWord(t)
	if _, err := insertTestMessage(ctx, s, 1, "new "+keep+" and some common words"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeBefore(ctx, clock.Now().Add(-24*time.Hour)); err != nil || n != 40 {
		t.Fatalf("purged %d, %v", n, err)
	}
	for _, w := range old {
		if f := filesHolding(t, dir, canaryTail(w)); len(f) > 0 {
			t.Errorf("purged word %s still in %v", w, f)
		}
	}
	if f := filesHolding(t, dir, canaryTail(keep)); len(f) == 0 {
		t.Errorf("kept word %s is in no file: the search is blind", keep)
	}
}

// TestStoreOwnerOnly opens a store in a folder that existed with 0755 and
// a database file made 0644 before: both become the owner's alone, and
// so do the -wal and -shm files.
func TestStoreOwnerOnly(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, StoreFileName), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, StoreFileName), 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	s, err := OpenDir(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := insertTestMessage(ctx, s, 1, "hello"); err != nil {
		t.Fatal(err)
	}
	check := func(path string, want os.FileMode) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", filepath.Base(path), got, want)
		}
	}
	check(dir, 0o700)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		check(filepath.Join(dir, StoreFileName+suffix), 0o600)
	}
}

// TestStoreReleasesDeletedBlobs: a deletion hands the blobs of the files
// its rows named to the hook, after the commit.
func TestStoreReleasesDeletedBlobs(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, nil)
	got := make(chan []string, 4)
	s.OnBlobsReleased(func(b []string) { got <- b })
	u, err := s.CreateUser(ctx, NewUser{Username: "u", DisplayName: "u"})
	if err != nil {
		t.Fatal(err)
	}
	f := StoredFile{RoomID: 1, UserID: u.ID, Name: "a", Size: 1, Type: "text/plain", SHA256: "aa" + hexZeros(62)}
	if ok, err := s.InsertFile(ctx, &f, 0); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, _, err := s.DeleteUnsentFile(ctx, f.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if len(b) != 1 || b[0] != f.SHA256 {
			t.Fatalf("released %v, want [%s]", b, f.SHA256)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no blobs released")
	}
}

func hexZeros(n int) string { return string(bytes.Repeat([]byte("0"), n)) }

// TestKnownThumbnailOwnUploadsOnly: an upload reuses the thumbnail of the
// same bytes only from the uploader's own earlier upload; another user's
// would make their upload measurably faster, telling them that someone
// has that picture (issue 22).
func TestKnownThumbnailOwnUploadsOnly(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, nil)
	var users []User
	for _, name := range []string{"ann", "ben"} {
		u, err := s.CreateUser(ctx, NewUser{Username: name, DisplayName: name})
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	sum := "bb" + hexZeros(62)
	f := StoredFile{RoomID: 1, UserID: users[0].ID, Name: "p.png", Size: 10, Type: "image/png", SHA256: sum,
		Width: 4, Height: 4, ThumbSHA256: "cc" + hexZeros(62), ThumbType: "image/png"}
	if ok, err := s.InsertFile(ctx, &f, 0); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, ok, err := s.KnownThumbnail(ctx, sum, users[0].ID); err != nil || !ok {
		t.Errorf("the uploader's own thumbnail: %v %v", ok, err)
	}
	if _, ok, err := s.KnownThumbnail(ctx, sum, users[1].ID); err != nil || ok {
		t.Errorf("another user's thumbnail reused: %v %v", ok, err)
	}
}
