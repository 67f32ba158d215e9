package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"stompbox/internal/apperr"
	"stompbox/internal/chat"
	"stompbox/internal/stomp"
	"stompbox/internal/store"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bounds of the crash test: cycles of kill and restart, and how many
// receipts each cycle waits for before the kill.
const (
	crashCycles      = 20
	crashMinReceipts = 50
	crashMaxReceipts = 300
	crashWindow      = 32               // SENDs in flight at once, so the kill lands mid-commit
	crashBudget      = 50 * time.Second // the test stops starting cycles after this
)

// stompboxBinary builds the server into the test's temporary folder,
// without -race: the child is the system under test, not the test.
func stompboxBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "stompbox")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// childServer is stompbox running as a child process.
type childServer struct {
	cmd       *exec.Cmd
	httpURL   string // http://127.0.0.1:PORT
	stompAddr string
	drained   chan struct{} // closed when stderr reached EOF
}

var (
	runningLine = regexp.MustCompile(`msg="stompbox is running" open=(http://\S+?)/? `)
	stompLine   = regexp.MustCompile(`msg="STOMP over TCP" addr=(\S+)`)
)

// startChild runs the binary on loopback ports with its data in dir and
// waits for the log lines that name its addresses.
func startChild(t *testing.T, bin, dir string) *childServer {
	t.Helper()
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-stomp-addr", "127.0.0.1:0", "-data", dir,
		"-no-browser", "-send-rate", "0", "-user-send-rate", "0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &childServer{cmd: cmd, drained: make(chan struct{})}
	ready := make(chan [2]string, 1)
	go func() { // owned by c: ends at EOF, when the process is gone
		defer close(c.drained)
		sc := bufio.NewScanner(stderr)
		var addrs [2]string
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if m := stompLine.FindStringSubmatch(line); m != nil {
				addrs[1] = m[1]
			}
			if m := runningLine.FindStringSubmatch(line); m != nil && !sent {
				addrs[0] = strings.TrimSuffix(m[1], "/")
				ready <- addrs
				sent = true
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case a := <-ready:
		c.httpURL, c.stompAddr = a[0], a[1]
	case <-c.drained:
		cmd.Wait()
		t.Fatal("the server exited before it was running")
	case <-time.After(testTimeout):
		c.kill()
		t.Fatal("the server did not start in time")
	}
	t.Cleanup(c.kill)
	return c
}

// kill sends SIGKILL and waits for the process; safe to call twice.
func (c *childServer) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	c.cmd.Process.Kill()
	<-c.drained
	c.cmd.Wait()
}

// apiClient logs in over HTTP and returns a client carrying the cookie.
func apiClient(t *testing.T, base, name, password string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: testTimeout}
	resp, err := c.Post(base+"/api/login", "application/json",
		strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, name, password)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	return c
}

// allMessages pages through a room's history with after=, oldest first.
func allMessages(t *testing.T, c *http.Client, base string, room int64) []store.MessageJSON {
	t.Helper()
	var all []store.MessageJSON
	after := int64(0)
	for {
		resp, err := c.Get(fmt.Sprintf("%s/api/rooms/%d/messages?after=%d&limit=%d", base, room, after, chat.MaxHistoryLimit))
		if err != nil {
			t.Fatal(err)
		}
		var page []store.MessageJSON
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("history after %d: status %d, %v", after, resp.StatusCode, err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
}

// TestCrashKeepsReceiptedMessages kills the server with SIGKILL in the
// middle of a burst of receipted chat SENDs, 20 times, restarting it on the
// same data folder each time, and checks that every message whose RECEIPT
// arrived is stored exactly once. Messages sent but not receipted may be
// stored or not (the kill may land after the commit), but never twice.
func TestCrashKeepsReceiptedMessages(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary and kills it 20 times")
	}
	start := time.Now()
	bin := stompboxBinary(t)
	dir := t.TempDir()
	add := exec.Command(bin, "user", "-data", dir, "add", "kim", "--password-stdin")
	add.Stdin = strings.NewReader("password-kim\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	child := startChild(t, bin, dir)
	hc := apiClient(t, child.httpURL, "kim", "password-kim")
	resp, err := hc.Post(child.httpURL+"/api/rooms", "application/json", strings.NewReader(`{"name":"crash"}`))
	if err != nil {
		t.Fatal(err)
	}
	var rm store.Room
	json.NewDecoder(resp.Body).Decode(&rm)
	resp.Body.Close()
	if rm.ID == 0 {
		t.Fatalf("create room: status %d", resp.StatusCode)
	}

	receipted := make(map[string]int) // token → cycle
	sentOnly := make(map[string]bool) // sent, no receipt before the kill
	var cycles, maxLost, totalLost, duplicates, extraStored int
	for cycle := 0; cycle < crashCycles && time.Since(start) < crashBudget; cycle++ {
		cycles++
		t0 := time.Now()
		c := dialTCP(t, child.stompAddr)
		c.connect("accept-version:1.2", "login:kim", "passcode:password-kim", "heart-beat:0,0")
		want := crashMinReceipts + rand.IntN(crashMaxReceipts-crashMinReceipts+1)
		inflight := make(map[string]bool)
		got, next := 0, 0
		for got < want {
			for len(inflight) < crashWindow {
				tok := fmt.Sprintf("crash-%d-%d", cycle, next)
				next++
				c.send(stomp.CmdSend, fmt.Sprintf(`{"type":"TALK","roomId":%d,"message":%q}`, rm.ID, tok),
					"destination:/pub/chat/message", "receipt:"+tok)
				inflight[tok] = true
			}
			f := c.expect(stomp.CmdReceipt)
			tok := f.Value(stomp.HdrReceiptID)
			if !inflight[tok] {
				t.Fatalf("receipt for %q, which is not in flight", tok)
			}
			delete(inflight, tok)
			receipted[tok] = cycle
			got++
		}
		t1 := time.Now()
		child.kill()
		c.close()
		for tok := range inflight {
			sentOnly[tok] = true
		}

		child = startChild(t, bin, dir)
		t2 := time.Now()
		hc = apiClient(t, child.httpURL, "kim", "password-kim")
		t3 := time.Now()
		seen := make(map[string]int)
		for _, m := range allMessages(t, hc, child.httpURL, rm.ID) {
			if strings.HasPrefix(m.Message, "crash-") {
				seen[m.Message]++
			}
		}
		lost := 0
		for tok, cy := range receipted {
			if cy == cycle && seen[tok] == 0 {
				lost++
				t.Errorf("cycle %d: receipted %s is not stored", cycle, tok)
			}
		}
		maxLost = max(maxLost, lost)
		t.Logf("cycle %d: %d receipts in %v, restart %v, login %v, check %v", cycle, want, t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), time.Since(t3))
		totalLost += lost
		if cycle == crashCycles-1 || time.Since(start) >= crashBudget {
			for tok, n := range seen {
				if n > 1 {
					duplicates += n - 1
					t.Errorf("%s stored %d times", tok, n)
				}
				if sentOnly[tok] {
					extraStored++
				}
			}
		}
	}
	t.Logf("crash test: %d cycles in %v, %d receipted, %d found, %d lost (max %d in one cycle), %d duplicates, %d in flight at a kill of which %d were stored anyway",
		cycles, time.Since(start).Round(time.Millisecond), len(receipted), len(receipted)-totalLost, totalLost, maxLost, duplicates, len(sentOnly), extraStored)
	if cycles < 5 {
		t.Errorf("only %d cycles ran within the budget", cycles)
	}
}

// errorOrRefusal waits for the outcome of a SEND that must not succeed: an
// ERROR frame or a /user/queue/errors message. A RECEIPT fails the test,
// since nothing was stored.
func errorOrRefusal(t *testing.T, c *stompClient) string {
	t.Helper()
	f := c.next()
	switch f.Command {
	case stomp.CmdError:
		return "ERROR " + f.Value(stomp.HdrMessage)
	case stomp.CmdMessage:
		return "MESSAGE " + string(f.Body)
	}
	t.Fatalf("got %s %v: a SEND that cannot be stored was acknowledged", f.Command, f.Headers)
	return ""
}

// storeFaultFixture is a server with one user and one room, for the tests
// that break the disk under it.
func storeFaultFixture(t *testing.T, dir string) (*server, int64) {
	t.Helper()
	srv := startServer(t, func(c *Config) { c.DataDir = dir })
	u := addUser(t, srv, "kim", "password-kim")
	rm, err := srv.chat.CreateRoom(context.Background(), u, chat.NewRoom{Name: "disk"})
	if err != nil {
		t.Fatal(err)
	}
	return srv, rm.ID
}

func chatSender(t *testing.T, srv *server) *stompClient {
	t.Helper()
	c := dialTCP(t, srv.TCPAddr())
	c.connect("accept-version:1.2", "login:kim", "passcode:password-kim", "heart-beat:0,0")
	return c
}

func storedCount(t *testing.T, srv *server, room int64, text string) int {
	t.Helper()
	u, err := srv.auth.UserByName(context.Background(), "kim")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := srv.chat.MessagesSince(context.Background(), u, room, 0, chat.MaxHistoryLimit)
	if err != nil {
		t.Fatalf("read history: %v", err)
	}
	n := 0
	for _, m := range ms {
		if m.Message == text {
			n++
		}
	}
	return n
}

// TestReadOnlyDatabaseRefusesSends makes the database files immutable
// (chattr +i: as root, chmod 0444 would not stop the server's writes),
// checks that SENDs are refused with errNotStored (an ERROR, or JSON on
// /user/queue/errors with the connection kept) and never receipted, then
// makes them writable again and checks that new SENDs are stored.
func TestReadOnlyDatabaseRefusesSends(t *testing.T) {
	if testing.Short() {
		t.Skip("needs chattr")
	}
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("no chattr")
	}
	dir := t.TempDir()
	srv, room := storeFaultFixture(t, dir)
	files, _ := filepath.Glob(filepath.Join(dir, "*.db*"))
	if len(files) == 0 {
		t.Fatalf("no database files in %s", dir)
	}
	chattr := func(flag string) error {
		out, err := exec.Command("chattr", append([]string{flag}, files...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("chattr %s: %v %s", flag, err, out)
		}
		return nil
	}
	body := func(text string) string { return fmt.Sprintf(`{"type":"TALK","roomId":%d,"message":%q}`, room, text) }

	// Connect first: with the files immutable even reads fail (WAL readers
	// write the -shm index), so CONNECT could not look the account up.
	plain, queued := chatSender(t, srv), chatSender(t, srv)
	queued.roundTrip(stomp.CmdSubscribe, "", "id:e", "destination:/user/queue/errors")
	if err := chattr("+i"); err != nil {
		t.Skipf("the file system cannot make files immutable here: %v", err)
	}
	t.Cleanup(func() { chattr("-i") })
	t.Run("ERROR without errors queue", func(t *testing.T) {
		c := plain
		c.send(stomp.CmdSend, body("while read-only 1"), "destination:/pub/chat/message", "receipt:ro-1")
		got := errorOrRefusal(t, c)
		t.Logf("refusal: %s", got)
		if got != "ERROR "+apperr.Message(store.ErrNotStored) {
			t.Fatalf("got %s", got)
		}
		c.expectClosed() // STOMP 1.2 §ERROR
	})
	t.Run("user queue errors", func(t *testing.T) {
		c := queued
		c.send(stomp.CmdSend, body("while read-only 2"), "destination:/pub/chat/message", "receipt:ro-2")
		got := errorOrRefusal(t, c)
		t.Logf("refusal: %s", got)
		if !strings.HasPrefix(got, "MESSAGE ") || !strings.Contains(got, apperr.Message(store.ErrNotStored)) || !strings.Contains(got, `"receipt":"ro-2"`) {
			t.Fatalf("got %s", got)
		}
	})
	if err := chattr("-i"); err != nil {
		t.Fatal(err)
	}
	// The connection that was told on /user/queue/errors is still up.
	queued.roundTrip(stomp.CmdSend, body("after recovery"), "destination:/pub/chat/message")
	for _, text := range []string{"while read-only 1", "while read-only 2"} {
		if n := storedCount(t, srv, room, text); n != 0 {
			t.Errorf("%q stored %d times although it was refused", text, n)
		}
	}
	if n := storedCount(t, srv, room, "after recovery"); n != 1 {
		t.Fatalf("after recovery: stored %d times", n)
	}
}

// TestDiskFullRefusesSends puts the data folder on a 2 MiB tmpfs, fills
// it, checks that SENDs are refused and never receipted, frees the space
// and checks that new SENDs are stored.
func TestDiskFullRefusesSends(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root for a tmpfs mount")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs here (%v %s): disk-full not tested", err, out)
	}
	t.Cleanup(func() { // runs after the server's shutdown (cleanups run last-in first-out)
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v %s", err, out)
		}
	})
	srv, room := storeFaultFixture(t, filepath.Join(mnt, "data"))
	c := chatSender(t, srv) // before the disk fills: CONNECT reads the account
	c.roundTrip(stomp.CmdSubscribe, "", "id:e", "destination:/user/queue/errors")
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Logf("filler stopped: %v", err)
			}
			break
		}
	}
	f.Close()
	body := func(text string) string { return fmt.Sprintf(`{"type":"TALK","roomId":%d,"message":%q}`, room, text) }
	// One message may still fit in a page the WAL already has; a few
	// hundred bytes each, a few dozen are certain to need new space.
	refused := 0
	var first string
	for i := 0; i < 200 && refused == 0; i++ {
		text := fmt.Sprintf("while full %d %s", i, strings.Repeat("x", 1000))
		c.send(stomp.CmdSend, body(text), "destination:/pub/chat/message", "receipt:full")
		f := c.next()
		switch f.Command {
		case stomp.CmdReceipt:
			if storedCount(t, srv, room, text) != 1 {
				t.Fatalf("receipted %d but not stored", i)
			}
		case stomp.CmdError:
			t.Fatalf("ERROR %v although the sender listens on /user/queue/errors", f.Headers)
		case stomp.CmdMessage:
			refused++
			first = "MESSAGE " + string(f.Body)
			if !strings.Contains(first, apperr.Message(store.ErrNotStored)) {
				t.Fatalf("got %s", first)
			}
			if storedCount(t, srv, room, text) != 0 {
				t.Fatalf("refused %d but stored", i)
			}
		}
	}
	if refused == 0 {
		t.Fatal("200 messages of 1 KB fitted on a full 2 MiB disk")
	}
	t.Logf("disk full: %s", first)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c.roundTrip(stomp.CmdSend, body("after freeing space"), "destination:/pub/chat/message")
	if n := storedCount(t, srv, room, "after freeing space"); n != 1 {
		t.Fatalf("after freeing space: stored %d times", n)
	}
}
