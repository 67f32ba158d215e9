package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"io/fs"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"stompbox/internal/chat"
	"stompbox/internal/cli"
	"stompbox/internal/files"
	"stompbox/internal/stomp"
	"stompbox/internal/store"
	"stompbox/internal/web"
	"strings"
	"testing"
)

// filesFixture is a full server with alice (admin), bob and carol signed
// in over HTTP, and a private room of alice and bob that carol is not in.
type filesFixture struct {
	srv                         *server
	base                        string
	alice, bob, carol           *http.Client
	aliceUser, bobUser, carolUs store.User
	room                        int64 // private: alice and bob
}

func newFilesFixture(t *testing.T, mutate ...func(*Config)) *filesFixture {
	t.Helper()
	srv := startServer(t, mutate...)
	f := &filesFixture{srv: srv, base: strings.TrimSuffix(srv.URL(), "/")}
	ctx := context.Background()
	f.aliceUser = addUser(t, srv, "alice", "password-alice")
	f.bobUser = addUser(t, srv, "bob", "password-bob")
	f.carolUs = addUser(t, srv, "carol", "password-carol")
	f.alice, f.bob, f.carol = f.login(t, "alice"), f.login(t, "bob"), f.login(t, "carol")
	r, err := srv.chat.CreateRoom(ctx, f.aliceUser, chat.NewRoom{Name: "files", Kind: store.RoomPrivate})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.chat.AddMember(ctx, f.aliceUser, r.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	f.room = r.ID
	return f
}

func (f *filesFixture) login(t *testing.T, name string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Post(f.base+"/api/login", "application/json", strings.NewReader(`{"username":"`+name+`","password":"password-`+name+`"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("login %s: %v %v", name, resp, err)
	}
	resp.Body.Close()
	return c
}

// multipartBody is a multipart/form-data body with one "file" part.
func multipartBody(name string, content []byte) (string, []byte) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.SetBoundary("stompbox-test-boundary") // one Content-Type fits every body
	mw.WriteField("note", "ignored")
	w, _ := mw.CreateFormFile("file", name)
	w.Write(content)
	mw.Close()
	return mw.FormDataContentType(), buf.Bytes()
}

type httpResult struct {
	status int
	header http.Header
	body   []byte
}

func (f *filesFixture) req(t *testing.T, c *http.Client, method, path, ctype string, body io.Reader) httpResult {
	t.Helper()
	req, err := http.NewRequest(method, f.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{resp.StatusCode, resp.Header, b}
}

// upload sends one file to room and returns the result.
func (f *filesFixture) upload(t *testing.T, c *http.Client, room int64, name string, content []byte) httpResult {
	t.Helper()
	ct, body := multipartBody(name, content)
	return f.req(t, c, "POST", fmt.Sprintf("/api/rooms/%d/files", room), ct, bytes.NewReader(body))
}

func (f *filesFixture) uploadOK(t *testing.T, c *http.Client, name string, content []byte) store.Attachment {
	t.Helper()
	r := f.upload(t, c, f.room, name, content)
	if r.status != http.StatusCreated {
		t.Fatalf("upload %s: %d %s", name, r.status, r.body)
	}
	var a store.Attachment
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

// post sends a message with attachments over HTTP.
func (f *filesFixture) post(t *testing.T, c *http.Client, room int64, text string, ids ...int64) httpResult {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"message": text, "attachments": ids})
	return f.req(t, c, "POST", fmt.Sprintf("/api/rooms/%d/messages", room), "application/json", bytes.NewReader(b))
}

// blobs lists the blob files under the data folder's files/ (not tmp/).
func (f *filesFixture) blobs(t *testing.T) []string {
	t.Helper()
	var out []string
	root := filepath.Join(f.srv.cfg.DataDir, files.FilesDirName)
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(p, filepath.Join(root, files.FilesTmpDirName)) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// checkNothingLeft checks that no temporary upload is left and the files
// table holds want rows.
func (f *filesFixture) checkNothingLeft(t *testing.T, want int) {
	t.Helper()
	checkFor(t, "temporary uploads removed", func() bool {
		es, err := os.ReadDir(f.srv.files.Tmp)
		return err == nil && len(es) == 0
	})
	var n int
	if err := f.srv.store.Rdb.QueryRow(`SELECT count(*) FROM files`).Scan(&n); err != nil || n != want {
		t.Errorf("files table has %d rows (%v), want %d", n, err, want)
	}
}

func pngBytes(t testing.TB, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestUploadRefusals: every refused upload gets its status and a JSON
// error, and leaves no temporary file and no row behind.
func TestUploadRefusals(t *testing.T) {
	f := newFilesFixture(t, func(c *Config) { c.MaxUploadMiB = 1 })
	big := bytes.Repeat([]byte("x"), 1<<20+1)
	ct, valid := multipartBody("a.txt", []byte("hello"))
	tests := []struct {
		name   string
		client *http.Client
		room   int64
		ctype  string
		body   io.Reader
		status int
		errSub string
	}{
		{"empty file", f.alice, f.room, ct, bytes.NewReader(must(multipartBody("e.txt", nil))), 400, "empty upload"},
		{"over -max-upload", f.alice, f.room, ct, bytes.NewReader(must(multipartBody("big.bin", big))), 413, "at most 1 MiB"},
		{"over -max-upload, chunked", f.alice, f.room, ct, io.MultiReader(bytes.NewReader(must(multipartBody("big.bin", big)))), 413, "at most 1 MiB"},
		{"truncated multipart", f.alice, f.room, ct, bytes.NewReader(valid[:len(valid)-20]), 400, "upload incomplete"},
		{"not multipart", f.alice, f.room, "application/octet-stream", strings.NewReader("hello"), 400, "multipart"},
		{"no file part", f.alice, f.room, "multipart/form-data; boundary=x", strings.NewReader("--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n"), 400, "multipart"},
		{"non-member", f.carol, f.room, ct, bytes.NewReader(valid), 403, "not a member"},
		{"unknown room", f.alice, 999, ct, bytes.NewReader(valid), 404, "unknown room"},
		{"signed out", http.DefaultClient, f.room, ct, bytes.NewReader(valid), 401, "login required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body
			if tt.name == "over -max-upload, chunked" {
				body = struct{ io.Reader }{body} // hides the length: sent chunked
			}
			r := f.req(t, tt.client, "POST", fmt.Sprintf("/api/rooms/%d/files", tt.room), tt.ctype, body)
			var e struct{ Error string }
			json.Unmarshal(r.body, &e)
			if r.status != tt.status || !strings.Contains(e.Error, tt.errSub) {
				t.Errorf("got %d %s, want %d with %q", r.status, r.body, tt.status, tt.errSub)
			}
			f.checkNothingLeft(t, 0)
		})
	}
	if b := f.blobs(t); len(b) != 0 {
		t.Errorf("blobs left: %v", b)
	}
	if st := f.srv.files.Stats(); st.RefusedTooLarge != 2 || st.Uploads != 0 || st.UploadBytes != 0 {
		t.Errorf("stats %+v: want two refused by -max-upload, none stored", st)
	}
}

func must(_ string, b []byte) []byte { return b }

// TestUploadTypesAndDownload: the type comes from the content, pictures get
// thumbnails, and downloads carry the headers that keep uploaded content
// from running as the app.
func TestUploadTypesAndDownload(t *testing.T) {
	f := newFilesFixture(t)
	html := []byte("<!DOCTYPE html><html><script>alert(document.cookie)</script></html>")
	svg := []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)
	tests := []struct {
		name, file    string
		content       []byte
		wantType      string
		wantServed    string
		wantInline    bool
		wantThumb     bool
		wantW, wantH  int
		wantName      string
		wantDispoName string
	}{
		{"png", "pic.png", pngBytes(t, 600, 300), "image/png", "image/png", true, true, 600, 300, "pic.png", `filename*=UTF-8''pic.png`},
		{"html named .png", "evil.png", html, "text/html", web.FileOpaqueType, false, false, 0, 0, "evil.png", "attachment"},
		{"svg", "logo.svg", svg, "text/plain", web.FileOpaqueType, false, false, 0, 0, "logo.svg", "attachment"},
		{"path as name", "../../etc/passwd", []byte("root:x:0:0"), "text/plain", web.FileOpaqueType, false, false, 0, 0, "passwd", "attachment"},
		{"backslash path", `..\..\boot.ini`, []byte("[boot]"), "text/plain", web.FileOpaqueType, false, false, 0, 0, "boot.ini", "attachment"},
		{"korean name", "회의록 1.txt", []byte("안건"), "text/plain", web.FileOpaqueType, false, false, 0, 0, "회의록 1.txt", `filename*=UTF-8''%ED%9A%8C%EC%9D%98%EB%A1%9D%201.txt`},
		{"svg with xml declaration", "logo2.svg", append([]byte(`<?xml version="1.0"?>`), svg...), "text/xml", web.FileOpaqueType, false, false, 0, 0, "logo2.svg", "attachment"},
		{"control characters", "a\tb\u200ec.txt", []byte("x"), "text/plain", web.FileOpaqueType, false, false, 0, 0, "abc.txt", "attachment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := f.uploadOK(t, f.alice, tt.file, tt.content)
			if a.Type != tt.wantType || a.Name != tt.wantName || a.Size != int64(len(tt.content)) || a.Width != tt.wantW || a.Height != tt.wantH || (a.ThumbURL != "") != tt.wantThumb {
				t.Errorf("attachment %+v", a)
			}
			r := f.req(t, f.alice, "GET", a.URL, "", nil)
			if r.status != 200 || !bytes.Equal(r.body, tt.content) {
				t.Fatalf("download: %d, %d bytes", r.status, len(r.body))
			}
			h := r.header
			if h.Get("Content-Type") != tt.wantServed || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Security-Policy") != web.FileCSP ||
				!strings.Contains(h.Get("Content-Disposition"), tt.wantDispoName) || strings.HasPrefix(h.Get("Content-Disposition"), "inline") != tt.wantInline {
				t.Errorf("headers %v", h)
			}
			if tt.wantThumb {
				th := f.req(t, f.bob, "GET", a.ThumbURL, "", nil)
				if th.status != 404 { // not sent yet: the uploader's alone
					t.Errorf("bob got the unsent thumbnail: %d", th.status)
				}
				th = f.req(t, f.alice, "GET", a.ThumbURL, "", nil)
				img, _, err := image.Decode(bytes.NewReader(th.body))
				if th.status != 200 || err != nil || img.Bounds().Dx() != files.ThumbMaxSide {
					t.Errorf("thumbnail: %d %v", th.status, err)
				}
			}
		})
	}
	// Nothing was written outside the data folder's files/ and the database.
	filepath.WalkDir(f.srv.cfg.DataDir, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(f.srv.cfg.DataDir, p)
		if !d.IsDir() && !strings.HasPrefix(rel, files.FilesDirName+string(filepath.Separator)) && !strings.HasPrefix(rel, store.StoreFileName) {
			t.Errorf("unexpected file %s", rel)
		}
		return nil
	})
}

// TestUploadDedup: the same bytes uploaded twice are two files in the
// API and one blob on disk (and one thumbnail blob); the blob goes when
// the last file goes. Bob's upload is decoded again rather than given
// alice's thumbnail: reusing it would make his upload measurably faster,
// telling him someone has the picture (issue 22).
func TestUploadDedup(t *testing.T) {
	f := newFilesFixture(t)
	content := pngBytes(t, 50, 50)
	a1 := f.uploadOK(t, f.alice, "one.png", content)
	a2 := f.uploadOK(t, f.bob, "two.png", content)
	if a1.ID == a2.ID {
		t.Fatal("same id twice")
	}
	if a2.ThumbURL == "" || a2.Width != 50 || a2.Height != 50 { // the same thumbnail, made again
		t.Errorf("second upload %+v", a2)
	}
	if b := f.blobs(t); len(b) != 2 { // the file and its thumbnail, once each
		t.Fatalf("blobs %v, want the file and one thumbnail", b)
	}
	if st := f.srv.files.Stats(); st.Uploads != 2 || st.UploadBytes != 2*uint64(len(content)) || st.Thumbnails != 2 || st.ThumbnailsWaiting != 0 || st.ThumbnailsRunning != 0 {
		t.Errorf("stats %+v: want two uploads, two thumbnails made (one per uploader), none queued", st)
	}

	// Taking one back keeps the blob the other still names; taking both
	// back removes it. Nobody else may take an upload back.
	if r := f.req(t, f.alice, "DELETE", a2.URL, "", nil); r.status != 404 {
		t.Errorf("alice deleted bob's upload: %d", r.status)
	}
	if r := f.req(t, f.bob, "DELETE", a2.URL, "", nil); r.status != 204 {
		t.Fatalf("bob takes his back: %d %s", r.status, r.body)
	}
	if b := f.blobs(t); len(b) != 2 {
		t.Errorf("blobs %v after one of two went", b)
	}
	if r := f.req(t, f.alice, "DELETE", a1.URL, "", nil); r.status != 204 {
		t.Fatalf("alice takes hers back: %d", r.status)
	}
	if b := f.blobs(t); len(b) != 0 {
		t.Errorf("blobs %v after both went", b)
	}
}

// TestAttachments: a message references uploads of its sender in its room;
// the stored message carries them in history, export and search; nobody
// can attach someone else's file, a file twice, or to a room they cannot
// post to; and a message without files has no "attachments" key.
func TestAttachments(t *testing.T) {
	f := newFilesFixture(t)
	pic := f.uploadOK(t, f.alice, "pic.png", pngBytes(t, 20, 10))
	doc := f.uploadOK(t, f.alice, "doc.txt", []byte("minutes"))
	bobs := f.uploadOK(t, f.bob, "bob.txt", []byte("bob's"))

	r := f.post(t, f.alice, f.room, "", doc.ID, pic.ID)
	if r.status != 201 {
		t.Fatalf("post: %d %s", r.status, r.body)
	}
	var m store.StoredMessage
	json.Unmarshal(r.body, &m)
	if len(m.Attachments) != 2 || m.Attachments[0] != pic || m.Attachments[1].ID != doc.ID { // in upload order
		t.Fatalf("attachments %+v", m.Attachments)
	}

	refusals := []struct {
		name   string
		client *http.Client
		room   int64
		ids    []int64
		status int
	}{
		{"someone else's file", f.alice, f.room, []int64{bobs.ID}, 400},
		{"a file sent already", f.alice, f.room, []int64{pic.ID}, 400},
		{"unknown file", f.alice, f.room, []int64{987654}, 400},
		{"non-member", f.carol, f.room, []int64{bobs.ID}, 403},
		{"file of another room", f.bob, 1, []int64{bobs.ID}, 400},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			if r := f.post(t, tt.client, tt.room, "look", tt.ids...); r.status != tt.status {
				t.Errorf("got %d %s, want %d", r.status, r.body, tt.status)
			}
		})
	}

	// Non-members may not download (404, as if there were no such file);
	// members may, once it is sent.
	if r := f.req(t, f.carol, "GET", pic.URL, "", nil); r.status != 404 {
		t.Errorf("carol downloads: %d", r.status)
	}
	if r := f.req(t, f.carol, "GET", pic.ThumbURL, "", nil); r.status != 404 {
		t.Errorf("carol downloads the thumbnail: %d", r.status)
	}
	if r := f.req(t, f.bob, "GET", pic.URL, "", nil); r.status != 200 {
		t.Errorf("bob downloads: %d", r.status)
	}

	if r := f.req(t, f.alice, "DELETE", pic.URL, "", nil); r.status != 404 {
		t.Errorf("a sent file was taken back: %d", r.status)
	}

	plain := f.post(t, f.bob, f.room, "no files")
	if bytes.Contains(plain.body, []byte("attachments")) {
		t.Errorf("plain message %s carries an attachments key", plain.body)
	}
	hist := f.req(t, f.bob, "GET", fmt.Sprintf("/api/rooms/%d/messages", f.room), "", nil)
	var ms []store.StoredMessage
	json.Unmarshal(hist.body, &ms)
	if len(ms) != 3 || len(ms[1].Attachments) != 2 || ms[1].Attachments[0].ThumbURL != pic.ThumbURL || ms[2].Attachments != nil { // ENTER, files, plain
		t.Errorf("history %s", hist.body)
	}
	exp := f.req(t, f.bob, "GET", fmt.Sprintf("/api/rooms/%d/export", f.room), "", nil)
	if !bytes.Contains(exp.body, []byte(`"url":"`+pic.URL+`"`)) {
		t.Errorf("export lacks the attachment: %s", exp.body)
	}
}

// TestUploadClientAbort: a client that goes away halfway leaves nothing.
func TestUploadClientAbort(t *testing.T) {
	f := newFilesFixture(t)
	addr := f.srv.HTTPAddr()
	var cookie string
	u, _ := http.NewRequest("GET", f.base, nil)
	for _, c := range f.alice.Jar.Cookies(u.URL) {
		cookie += c.Name + "=" + c.Value
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /api/rooms/%d/files HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 10000000\r\n\r\n", f.room, addr, cookie)
	fmt.Fprintf(conn, "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"half.bin\"\r\n\r\n")
	conn.Write(bytes.Repeat([]byte("y"), 300<<10))
	checkFor(t, "the upload to start", func() bool {
		es, _ := os.ReadDir(f.srv.files.Tmp)
		return len(es) == 1
	})
	conn.Close()
	f.checkNothingLeft(t, 0)
}

// TestUploadQuota: an account over -upload-quota gets 413 with the quota in
// the text, and the refused bytes are not kept.
func TestUploadQuota(t *testing.T) {
	f := newFilesFixture(t, func(c *Config) { c.UploadQuotaMiB = 1 })
	f.uploadOK(t, f.alice, "a.bin", bytes.Repeat([]byte("a"), 700<<10))
	r := f.upload(t, f.alice, f.room, "b.bin", bytes.Repeat([]byte("b"), 700<<10))
	if r.status != 413 || !bytes.Contains(r.body, []byte("upload quota exceeded")) {
		t.Fatalf("second upload: %d %s", r.status, r.body)
	}
	f.checkNothingLeft(t, 1)
	if b := f.blobs(t); len(b) != 1 {
		t.Errorf("blobs %v, want only the first upload", b)
	}
	f.uploadOK(t, f.bob, "b.bin", bytes.Repeat([]byte("b"), 700<<10)) // bob has his own quota
}

// TestFileRetention: -keep-days deletes a file with its last message, and
// the sweep removes uploads never sent; blobs go with their last row.
func TestFileRetention(t *testing.T) {
	f := newFilesFixture(t, func(c *Config) { c.KeepDays = 1 })
	ctx := context.Background()
	old := f.uploadOK(t, f.alice, "old.png", pngBytes(t, 30, 30))
	kept := f.uploadOK(t, f.alice, "kept.txt", []byte("kept"))
	unsent := f.uploadOK(t, f.alice, "draft.txt", []byte("never sent"))
	if r := f.post(t, f.alice, f.room, "old", old.ID); r.status != 201 {
		t.Fatal(r.status)
	}
	if r := f.post(t, f.alice, f.room, "new", kept.ID); r.status != 201 {
		t.Fatal(r.status)
	}
	// Age the first message and the unsent upload by a year.
	err := f.srv.store.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET created_at = created_at - 31536000000 WHERE body = 'old'`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE files SET created_at = created_at - 31536000000 WHERE id = ?`, unsent.ID)
		return err
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.blobs(t)); n != 4 { // old.png, its thumbnail, kept.txt, draft.txt
		t.Fatalf("%d blobs before retention", n)
	}
	f.srv.maintain()
	for _, gone := range []store.Attachment{old, unsent} {
		if r := f.req(t, f.alice, "GET", gone.URL, "", nil); r.status != 404 {
			t.Errorf("%s after retention: %d", gone.Name, r.status)
		}
	}
	if r := f.req(t, f.alice, "GET", kept.URL, "", nil); r.status != 200 {
		t.Errorf("kept file: %d", r.status)
	}
	if b := f.blobs(t); len(b) != 1 {
		t.Errorf("blobs after retention %v, want only kept.txt", b)
	}
}

// TestBackupIncludesFiles: `stompbox backup FILE` writes FILE.files/ with
// every blob the copied database names.
func TestBackupIncludesFiles(t *testing.T) {
	f := newFilesFixture(t)
	a := f.uploadOK(t, f.alice, "pic.png", pngBytes(t, 40, 40))
	f.post(t, f.alice, f.room, "", a.ID)
	dst := filepath.Join(t.TempDir(), "backup.db")
	if err := cli.Backup(context.Background(), f.srv.cfg.DataDir, dst); err != nil {
		t.Fatal(err)
	}
	for _, b := range f.blobs(t) {
		sum := filepath.Base(b)
		got, err := os.ReadFile(filepath.Join(dst+files.BackupFilesSuffix, sum[:2], sum))
		want, _ := os.ReadFile(b)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("blob %s not in the backup: %v", sum, err)
		}
	}
}

// TestAttachmentsOverSTOMP: a SEND may name its attachments by id or as
// the objects the upload returned; subscribers get them in the MESSAGE,
// and a plain message stays exactly the seed's shape.
func TestAttachmentsOverSTOMP(t *testing.T) {
	f := newSTOMPChatFixture(t, "kim", "lee")
	ctx := context.Background()
	lee := f.login(t, "lee")
	lee.roundTrip(stomp.CmdSubscribe, "", "id:room", "destination:"+f.roomDest())
	kim := f.login(t, "kim")
	up, err := f.srv.files.Upload(ctx, f.users["kim"], f.room.ID, "a.png", bytes.NewReader(pngBytes(t, 10, 10)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"type": "TALK", "roomId": f.room.ID, "message": "", "attachments": []any{up.Attachment()}})
	kim.roundTrip(stomp.CmdSend, string(body), "destination:/pub/chat/message")
	kim.roundTrip(stomp.CmdSend, chatBody("TALK", f.room.ID, "plain"), "destination:/pub/chat/message")

	var got store.StoredMessage
	if err := json.Unmarshal(lee.expect(stomp.CmdMessage).Body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Attachments) != 1 || got.Attachments[0] != up.Attachment() {
		t.Errorf("attachments %+v, want %+v", got.Attachments, up.Attachment())
	}
	plain := lee.expect(stomp.CmdMessage).Body
	var keys map[string]any
	json.Unmarshal(plain, &keys)
	if _, ok := keys["attachments"]; ok || len(keys) != 6 {
		t.Errorf("plain message %s: want only id, type, roomId, sender, message, createdAt", plain)
	}
}

// TestDeletingMessageDeletesItsFiles: deleting a message takes its files
// with it at once: their downloads answer 404 and their bytes leave the
// disk, unless another upload of the same bytes still names them.
func TestDeletingMessageDeletesItsFiles(t *testing.T) {
	f := newFilesFixture(t)
	pic := f.uploadOK(t, f.alice, "pic.png", pngBytes(t, 40, 40))
	doc := f.uploadOK(t, f.alice, "doc.txt", []byte("shared bytes"))
	same := f.uploadOK(t, f.bob, "copy.txt", []byte("shared bytes")) // the same blob as doc
	del := f.post(t, f.alice, f.room, "to delete", pic.ID, doc.ID)
	keep := f.post(t, f.bob, f.room, "to keep", same.ID)
	if del.status != 201 || keep.status != 201 {
		t.Fatalf("posts: %d %s, %d %s", del.status, del.body, keep.status, keep.body)
	}
	var m struct{ ID int64 }
	if err := json.Unmarshal(del.body, &m); err != nil || m.ID == 0 {
		t.Fatalf("post answer %s: %v", del.body, err)
	}
	if n := len(f.blobs(t)); n != 3 { // the picture, its thumbnail, the shared text
		t.Fatalf("%d blobs before the deletion", n)
	}
	if r := f.req(t, f.alice, "DELETE", fmt.Sprintf("/api/rooms/%d/messages/%d", f.room, m.ID), "", nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	for _, gone := range []string{pic.URL, pic.ThumbURL, doc.URL} {
		if r := f.req(t, f.bob, "GET", gone, "", nil); r.status != http.StatusNotFound {
			t.Errorf("GET %s after the deletion: %d", gone, r.status)
		}
	}
	if r := f.req(t, f.alice, "GET", same.URL, "", nil); r.status != http.StatusOK || string(r.body) != "shared bytes" {
		t.Errorf("the other message's file: %d %q", r.status, r.body)
	}
	if b := f.blobs(t); len(b) != 1 {
		t.Errorf("blobs after the deletion %v, want only the shared text", b)
	}
	f.checkNothingLeft(t, 1)
}
