package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Rooms scenario setup through the HTTP API.
const (
	benchAdminName   = "benchadmin" // the first account of a fresh server becomes its admin
	benchUserPrefix  = "bench"      // accounts are bench0, bench1, …
	benchRegParallel = 4            // registrations at once: each hashes a password with argon2id (19 MiB), CPU-bound
	benchAPIParallel = 32           // room creations and joins at once: store writes that commit in groups
	benchTalkPrefix  = "bench "     // TALK text: "bench CONN SEQ UNIXNANO"
)

// roomsPerson is one connection of the rooms scenario.
type roomsPerson struct {
	c    *Conn
	room int          // index into rooms
	got  atomic.Int64 // distinct bench messages received, read by the drain loop

	// Owned by the reader goroutine until the run ends.
	seen     map[uint64]struct{} // sender<<32 | seq
	highest  map[int]int         // sender → highest seq seen
	received int
	dup, ooo int
	err      error
}

// runRooms: cfg.Conns people over cfg.Rooms rooms, each sending a TALK to
// /pub/chat/message every cfg.Interval through the real chat path (stored,
// then delivered to /sub/chat/room/{id}). Connection i is in room
// i/perRoom and logs in as account i mod users, so each room holds
// distinct people. Accounts, rooms and memberships are made through the
// HTTP API: register (whose cookie then authenticates the WebSocket and
// SockJS requests, so no CONNECT hashes a password), POST /api/rooms as
// the admin, POST /api/rooms/{id}/join.
func runRooms(ctx context.Context, cfg Config, d *dialer, r *benchReport, progress io.Writer) error {
	users := cfg.Users
	if users <= 0 || users > cfg.Conns {
		users = cfg.Conns
	}
	perRoom := (cfg.Conns + cfg.Rooms - 1) / cfg.Rooms
	r.add("conns", cfg.Conns)
	r.add("rooms", cfg.Rooms)
	r.add("users", users)
	r.add("interval_s", cfg.Interval.Seconds())
	api := &benchAPI{base: strings.TrimRight(cfg.URL, "/"), hc: d.client(0)}
	setupStart := time.Now()
	setup, err := setupRooms(ctx, api, cfg.Conns, cfg.Rooms, users, progress)
	if err != nil {
		return err
	}
	cookies, roomIDs := setup.cookies, setup.roomIDs
	r.add("setup_s", time.Since(setupStart).Seconds())

	// Connect and subscribe everybody before anyone talks.
	people := make([]*roomsPerson, cfg.Conns)
	roomSize := make([]int, cfg.Rooms)
	connect := cfg.ConnectFrame()
	connStart := time.Now()
	// With -sub-urls (a cluster's nodes) connection i is on server i mod
	// the count: each room's people are spread over the nodes, so most
	// deliveries cross from one node to another.
	urls := cfg.SubURLs
	if len(urls) == 0 {
		urls = []string{cfg.URL}
	} else {
		r.add("servers", len(urls))
	}
	var (
		conns  []*Conn
		failed int
	)
	defer func() { CloseAll(conns) }()
	for k, u := range urls {
		sd := d
		if u != cfg.URL {
			sd = NewDialer(u, cfg.WSPath, cfg.SockJSPath, cfg.Transport)
			defer sd.closeIdle()
		}
		n := (cfg.Conns - k + len(urls) - 1) / len(urls) // connections k, k+len, k+2·len, …
		person := func(j int) int { return j*len(urls) + k }
		var cs []*Conn
		var f int
		cs, f, err = DialMany(ctx, sd, n, func(j int) string { return cookies[person(j)%users] }, connect, func(j int, c *Conn) error {
			i := person(j)
			p := &roomsPerson{c: c, room: i / perRoom, seen: map[uint64]struct{}{}, highest: map[int]int{}}
			people[i] = p
			return Subscribe(ctx, c, "0", proto.RoomDestination(roomIDs[p.room]))
		})
		conns = append(conns, cs...)
		failed += f
		if err != nil {
			break
		}
	}
	r.add("connect_s", time.Since(connStart).Seconds())
	if err != nil {
		r.add("connect_failed", failed)
		return err
	}
	for _, p := range people {
		roomSize[p.room]++
	}
	fmt.Fprintf(progress, "bench: %d people connected in %v; talking for %v\n", cfg.Conns, time.Since(connStart).Round(time.Millisecond), cfg.Duration)

	hist := &shardedHist{}
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	var readers sync.WaitGroup
	var refused atomic.Int64
	for i, p := range people {
		readers.Add(1)
		go func() {
			defer readers.Done()
			p.readLoop(rctx, i, hist, &refused)
		}()
	}

	// Talk until cfg.Duration or cfg.Count messages in all.
	storeBefore, storeErr := api.storeStats(ctx, setup.admin)
	meter := startServerMeter(cfg.PID)
	tctx, tcancel := context.WithTimeout(ctx, cfg.Duration)
	defer tcancel()
	var (
		sent, expected atomic.Int64
		sendErrs       atomic.Int64
		talkers        sync.WaitGroup
	)
	talkStart := time.Now()
	for i, p := range people {
		talkers.Add(1)
		go func() {
			defer talkers.Done()
			roomID := roomIDs[p.room]
			f := &stomp.Frame{Command: stomp.CmdSend}
			t := time.NewTimer(rand.N(cfg.Interval)) // spread the first messages over one interval
			defer t.Stop()
			for seq := 0; ; seq++ {
				select {
				case <-tctx.Done():
					return
				case <-t.C:
				}
				if cfg.Count > 0 && sent.Add(1) > int64(cfg.Count) {
					tcancel()
					return
				} else if cfg.Count <= 0 {
					sent.Add(1)
				}
				text := benchTalkPrefix + strconv.Itoa(i) + " " + strconv.Itoa(seq) + " " + strconv.FormatInt(time.Now().UnixNano(), 10)
				body, _ := json.Marshal(proto.ChatPost{Type: proto.MsgTalk, RoomID: roomID, Message: text})
				f.Headers = append(f.Headers[:0], stomp.Header{Key: stomp.HdrDestination, Value: "/pub/chat/message"}, stomp.Header{Key: stomp.HdrContentType, Value: "application/json"},
					stomp.Header{Key: stomp.HdrReceipt, Value: "t" + strconv.Itoa(seq)})
				f.Body = body
				// The write is not cut short when the talking ends: a SEND
				// the server may have taken must be expected.
				expected.Add(int64(roomSize[p.room]))
				wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), benchWriteWait)
				err := p.c.write(wctx, f)
				cancel()
				if err != nil {
					sendErrs.Add(1)
					return
				}
				t.Reset(cfg.Interval)
			}
		}()
	}
	talkers.Wait()
	talkTime := time.Since(talkStart)
	nSent := min(sent.Load(), int64(max(cfg.Count, 0)))
	if cfg.Count <= 0 {
		nSent = sent.Load()
	}

	// Drain: wait until the deliveries stop.
	lastTotal, lastMove := int64(-1), time.Now()
	for ctx.Err() == nil {
		total := totalReceived(people)
		if total >= expected.Load() {
			break
		}
		if total != lastTotal {
			lastTotal, lastMove = total, time.Now()
		} else if time.Since(lastMove) > benchDrainIdle {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	meter.report(r)
	var storeAfter *proto.StoreStats
	if storeErr == nil {
		storeAfter, storeErr = api.storeStats(ctx, setup.admin)
	}
	if storeErr == nil {
		reportStoreWindow(r, storeBefore, storeAfter)
	} else {
		fmt.Fprintf(progress, "bench: no store figures: %v\n", storeErr)
	}
	rcancel()
	CloseAll(conns)
	conns = nil
	readers.Wait()

	var distinct, dup, ooo, dropped int64
	for _, p := range people {
		distinct += int64(len(p.seen))
		dup += int64(p.dup)
		ooo += int64(p.ooo)
		if p.err != nil {
			dropped++
		}
	}
	r.add("sent", nSent)
	r.add("delivered", distinct+dup)
	r.add("talk_s", talkTime.Seconds())
	r.add("msgs_per_s", float64(distinct+dup)/talkTime.Seconds())
	r.addLatency(hist.total())
	r.add("lost", expected.Load()-distinct)
	r.add("dup", dup)
	r.add("ooo", ooo)
	r.add("refused", refused.Load())
	r.add("send_errors", sendErrs.Load())
	r.add("dropped", dropped)
	for _, p := range people {
		if p.err != nil {
			return fmt.Errorf("%d connections dropped, first: %w", dropped, p.err)
		}
	}
	return nil
}

// roomsSetup is what the rooms and soak scenarios make through the HTTP
// API before anyone connects.
type roomsSetup struct {
	admin   string   // benchadmin's session cookie (the server's administrator on a fresh server)
	cookies []string // session cookie of account bench{i}
	roomIDs []int64  // room i's id
	perRoom int      // connection i is in room i/perRoom
}

// setupRooms registers benchadmin and users accounts (or logs them in),
// creates rooms public rooms as the admin, and joins account i mod users
// to room i/perRoom for each of conns connections, perRoom being conns
// divided by rooms, rounded up.
func setupRooms(ctx context.Context, api *benchAPI, conns, rooms, users int, progress io.Writer) (*roomsSetup, error) {
	setupStart := time.Now()
	s := &roomsSetup{perRoom: (conns + rooms - 1) / rooms}
	admin, err := api.account(ctx, benchAdminName)
	if err != nil {
		return nil, err
	}
	s.admin = admin
	s.cookies = make([]string, users)
	if err := parallel(ctx, users, benchRegParallel, func(i int) error {
		c, err := api.account(ctx, benchUserPrefix+strconv.Itoa(i))
		s.cookies[i] = c
		return err
	}); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "bench: %d accounts ready in %v\n", users, time.Since(setupStart).Round(time.Millisecond))
	run := strconv.FormatInt(time.Now().Unix()%100000, 10)
	s.roomIDs = make([]int64, rooms)
	if err := parallel(ctx, rooms, benchAPIParallel, func(i int) error {
		var rm struct {
			ID int64 `json:"id"`
		}
		err := api.call(ctx, admin, "/api/rooms", map[string]string{"name": "bench " + run + "-" + strconv.Itoa(i), "kind": "public"}, &rm)
		s.roomIDs[i] = rm.ID
		return err
	}); err != nil {
		return nil, err
	}
	type membership struct{ user, room int }
	var joins []membership
	joined := map[membership]bool{}
	for i := range conns {
		m := membership{i % users, i / s.perRoom}
		if !joined[m] {
			joined[m] = true
			joins = append(joins, m)
		}
	}
	if err := parallel(ctx, len(joins), benchAPIParallel, func(k int) error {
		m := joins[k]
		return api.call(ctx, s.cookies[m.user], "/api/rooms/"+strconv.FormatInt(s.roomIDs[m.room], 10)+"/join", nil, nil)
	}); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "bench: %d rooms and %d memberships ready in %v\n", rooms, len(joins), time.Since(setupStart).Round(time.Millisecond))
	return s, nil
}

func totalReceived(people []*roomsPerson) int64 {
	var n int64
	for _, p := range people {
		n += p.got.Load()
	}
	return n
}

// readLoop records the TALK messages of the bench in p's room.
func (p *roomsPerson) readLoop(ctx context.Context, key int, hist *shardedHist, refused *atomic.Int64) {
	for {
		f, err := p.c.next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				p.err = err
			}
			return
		}
		now := time.Now()
		switch f.command {
		case stomp.CmdError:
			refused.Add(1)
			p.err = fmt.Errorf("server ERROR: %s", f.full.Value(stomp.HdrMessage))
			return
		case stomp.CmdMessage:
		default:
			continue
		}
		sender64, seq64, ts, ok := benchTalkFields(f.body)
		if !ok || sender64 > math.MaxInt32 || seq64 > math.MaxInt32 {
			continue
		}
		sender, seq := int(sender64), int(seq64)
		hist.add(key, now.Sub(time.Unix(0, ts)))
		p.received++
		k := uint64(sender)<<32 | uint64(uint32(seq))
		if _, ok := p.seen[k]; ok {
			p.dup++
		} else {
			p.seen[k] = struct{}{}
			p.got.Add(1)
			if h, ok := p.highest[sender]; ok && seq < h {
				p.ooo++
			}
			p.highest[sender] = max(p.highest[sender], seq)
		}
	}
}

// benchAPI calls the chat's HTTP API.
type benchAPI struct {
	base string
	hc   *http.Client
}

// account registers name (or logs in if it exists) and returns the
// session cookie as a Cookie header value.
func (a *benchAPI) account(ctx context.Context, name string) (string, error) {
	creds := map[string]string{"username": name, "displayName": name, "password": benchPassword}
	cookie, status, err := a.post(ctx, "", "/api/register", creds, nil)
	if status == http.StatusConflict || (err != nil && strings.Contains(err.Error(), "taken")) {
		cookie, _, err = a.post(ctx, "", "/api/login", creds, nil)
	}
	if err != nil {
		return "", fmt.Errorf("account %s: %w", name, err)
	}
	if cookie == "" {
		return "", fmt.Errorf("account %s: no session cookie", name)
	}
	return cookie, nil
}

// call POSTs body as JSON with the cookie and decodes the answer into out.
func (a *benchAPI) call(ctx context.Context, cookie, path string, body, out any) error {
	_, _, err := a.post(ctx, cookie, path, body, out)
	return err
}

func (a *benchAPI) post(ctx context.Context, cookie, path string, body, out any) (string, int, error) {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+path, rd)
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return "", resp.StatusCode, fmt.Errorf("POST %s: %s %s", path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return "", resp.StatusCode, fmt.Errorf("POST %s: %w", path, err)
		}
	}
	for _, c := range resp.Cookies() {
		if c.Name == proto.SessionCookieName {
			return c.Name + "=" + c.Value, resp.StatusCode, nil
		}
	}
	return "", resp.StatusCode, nil
}

// parallel runs f(0..n-1) with at most width at once and returns the
// first error; after an error no new calls start.
func parallel(ctx context.Context, n, width int, f func(i int) error) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, width)
	for i := range n {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return firstErr
}

// storeStats reads the server's database writer figures from GET
// /api/admin/stats, as the administrator.
func (a *benchAPI) storeStats(ctx context.Context, admin string) (*proto.StoreStats, error) {
	st, err := a.stats(ctx, admin)
	if err != nil {
		return nil, err
	}
	if st.Store == nil {
		return nil, errors.New("the server's stats have no store figures")
	}
	return st.Store, nil
}

// reportStoreWindow adds the server's own view of the talk phase: how the
// writer grouped the messages and how long they waited for their commit,
// fsync included. Set against p50_ms and p99_ms, it tells how much of the
// end-to-end latency is the store (disk and writer queue) and how much is
// the network, the scheduler and the two processes sharing the cores.
func reportStoreWindow(r *benchReport, before, after *proto.StoreStats) {
	commits, writes := after.Transactions-before.Transactions, after.Writes-before.Writes
	r.add("store_writes", writes)
	r.add("store_commits", commits)
	if commits > 0 {
		r.add("store_writes_per_commit", float64(writes)/float64(commits))
	}
	commit := after.Commit.Hist().Since(before.Commit.Hist())
	wait := after.Wait.Hist().Since(before.Wait.Hist())
	r.add("store_wait_p50_ms", wait.Quantile(0.5))
	r.add("store_wait_p99_ms", wait.Quantile(0.99))
	r.add("store_commit_p50_ms", commit.Quantile(0.5))
	r.add("store_commit_p99_ms", commit.Quantile(0.99))
	r.add("store_commit_max_ms", commit.Max)
}
