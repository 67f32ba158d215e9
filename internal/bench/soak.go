package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"stompbox/internal/latency"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The soak scenario (issue 6: "30 minutes of mixed load with memory and
// goroutines flat"). Its defaults replace the other scenarios' when the
// flag is not given (soakDefaults); every count and the duration are
// bounded (validateSoak).
const (
	benchSoakDuration      = 30 * time.Minute        // the figure
	benchSoakMaxDuration   = 24 * time.Hour          // bound on any soak
	benchSoakSample        = 30 * time.Second        // 60 samples in 30 minutes: enough quarters for the flatness rule
	benchSoakMinSample     = 100 * time.Millisecond  // a stats request and a /proc read per sample
	benchSoakConns         = 300                     // chat people, a few hundred at a human rate
	benchSoakRooms         = 30                      // 10 people a room
	benchSoakUsers         = 50                      // accounts, one argon2id hash each; ≥ 10 so a room's people are distinct accounts
	benchSoakInterval      = 3500 * time.Millisecond // mean gap between one person's messages; uniform in [1.75 s, 5.25 s]
	benchSoakSubs          = 200                     // fan-out trickle subscribers
	benchSoakRate          = 5                       // fan-out trickle messages per second
	benchSoakChurnRate     = 20                      // churn cycles started per second
	benchSoakMaxChurnRate  = 1000                    // bound: each cycle is a connection, and port reuse waits out TIME_WAIT
	benchSoakSlowEvery     = 100                     // one slow consumer every 5 s at 20 cycles/s: each pushes up to 32 MiB through the server
	benchSoakChurnParallel = 64                      // churn cycles in flight at most; a tick that finds this many is skipped and counted
	benchSoakCycleTimeout  = 20 * time.Second        // bound on one churn cycle (a slow consumer's included)
	benchSoakWarmupMax     = 2 * time.Minute         // the warm-up is a tenth of the duration, at most this
	benchSoakSlowFrame     = 32 << 10                // a slow consumer's flood message: half the 64 KiB frame limit
	benchSoakSlowFrames    = 1000                    // 32 MiB: past loopback socket buffers plus twice the 4 MiB outbox
	benchSoakSlowWait      = 10 * time.Second        // after its flood, how long a slow consumer pokes before it counts as not cut off
	benchSoakSlowPoke      = 100 * time.Millisecond  // gap between those pokes
	benchSoakDrainMax      = 30 * time.Second        // bound on the final wait for deliveries
	benchSoakStatsPath     = "/api/admin/stats"      // api_admin.go
	benchSoakFanoutDest    = "/topic/soak-fanout"    // the trickle; churners subscribe to it too
	benchSoakChurnDest     = "/topic/soak-churn"     // where topic churners send: nobody listens
	benchSoakSlowDest      = "/topic/soak-slow-"     // + cycle: a slow consumer floods its own topic
	benchSoakChurnPrefix   = "soakchurn "            // churn TALK text: "soakchurn CYCLE UNIXNANO"
)

// soakTransports are the transports the soak mixes: connection i uses
// soakTransports[i%3].
var soakTransports = [...]string{WS, SockJSWS, SockJSXHR}

// Mixed is the soak's transport in its report: all of them.
const Mixed = "mixed"

// soakDefaults sets the soak's own defaults for the flags not given.
func (c *Config) soakDefaults(given map[string]bool) {
	set := func(name string, apply func()) {
		if !given[name] {
			apply()
		}
	}
	set("duration", func() { c.Duration = benchSoakDuration })
	set("conns", func() { c.Conns = benchSoakConns })
	set("rooms", func() { c.Rooms = benchSoakRooms })
	set("users", func() { c.Users = benchSoakUsers })
	set("interval", func() { c.Interval = benchSoakInterval })
	set("subs", func() { c.Subs = benchSoakSubs })
	set("rate", func() { c.Rate = benchSoakRate })
	c.Transport = Mixed
}

// validateSoak checks the soak's bounds.
func (c *Config) validateSoak() error {
	switch {
	case c.PID <= 0:
		return errors.New("bench: soak needs -pid, the server's process, for its RSS")
	case c.Duration > benchSoakMaxDuration:
		return fmt.Errorf("bench: soak -duration is at most %v", benchSoakMaxDuration)
	case c.Sample < benchSoakMinSample || c.Sample > c.Duration:
		return fmt.Errorf("bench: soak -sample must be between %v and -duration", benchSoakMinSample)
	case c.Warmup < 0 || c.Warmup >= c.Duration:
		return errors.New("bench: soak -warmup must be shorter than -duration")
	case c.Rate <= 0:
		return errors.New("bench: soak needs a positive -rate for its fan-out trickle")
	case c.ChurnRate < 0 || c.ChurnRate > benchSoakMaxChurnRate:
		return fmt.Errorf("bench: soak -churn-rate must be between 0 and %d", benchSoakMaxChurnRate)
	case c.SlowEvery < 0:
		return errors.New("bench: soak -slow-every must not be negative")
	}
	return nil
}

// soakRun is one soak: its connections, its counters and its trackers.
// runSoak's goroutine owns it; the counters are atomics and each
// receiver's trackers sit under that receiver's mutex, so the sampler can
// read them while the readers write.
type soakRun struct {
	cfg     Config
	dialers [len(soakTransports)]*dialer
	setup   *roomsSetup
	users   int
	people  []*soakPerson // stable chat connections, by number
	rooms   []*soakRoom   // by index
	talking []*soakRoom   // the rooms that have people: churners pick among them
	subs    []*soakSub    // fan-out trickle subscribers
	hist    *shardedHist  // latency since the last sample; the sampler drains it
	connect *stomp.Frame
	flood   []byte // a slow consumer's message body, read-only

	delivered    atomic.Int64 // bench MESSAGEs received by stable connections
	chatSent     atomic.Int64
	fanoutSent   atomic.Int64
	fanoutAcked  atomic.Int64 // trickle messages 0..n-1 acknowledged by RECEIPT
	churnCycles  atomic.Int64 // completed churn cycles
	churnSent    atomic.Int64 // churn SENDs acknowledged
	churnOpen    atomic.Int64 // churn connections open now
	churnErrs    atomic.Int64
	churnSkipped atomic.Int64
	slowCut      atomic.Int64 // slow consumers the server cut off
	slowUncut    atomic.Int64 // slow consumers still connected after benchSoakSlowWait
	sendErrs     atomic.Int64
	statsErrs    atomic.Int64
	errs         atomic.Int64 // every unexpected failure, the above included

	errMu    sync.Mutex
	firstErr error

	closeOnce sync.Once // closeStable
}

// soakRoom is one chat room of the soak.
type soakRoom struct {
	index   int
	id      int64
	members []*soakPerson // by position

	mu         sync.Mutex
	churnAcked []int // cycle numbers of churn TALKs the server acknowledged; append only
}

// soakPerson is one stable chat connection. Its reader goroutine writes
// the trackers under mu; the sampler reads them under mu.
type soakPerson struct {
	c     *Conn
	index int
	room  *soakRoom
	pos   int          // index in room.members
	acked atomic.Int64 // own TALKs with seq < acked were acknowledged (RECEIPTs come in order)
	dead  atomic.Bool  // the server ended the connection before the run did

	mu    sync.Mutex
	from  []*SeqTracker // per room member, by position: that member's sequence numbers seen here
	churn *SeqTracker   // churn cycle numbers seen here
}

// soakSub is one subscriber of the fan-out trickle.
type soakSub struct {
	c    *Conn
	dead atomic.Bool

	mu  sync.Mutex
	seq *SeqTracker
}

// runSoak runs the soak: cfg.Conns chat people in cfg.Rooms rooms through
// the real chat path (the rooms scenario's setup and text), a trickle of
// cfg.Rate messages per second from one publisher to cfg.Subs subscribers
// of benchSoakFanoutDest, and cfg.ChurnRate churn cycles per second, all
// for cfg.Duration, with every transport in the mix. Every cfg.Sample it
// prints a sample line to cfg.Out; at the end r gets the summary and the
// flatness verdict. Cancelling ctx ends the load early: the deliveries
// are still drained and the summary made.
func runSoak(ctx context.Context, cfg Config, r *benchReport, progress io.Writer) error {
	run := &soakRun{cfg: cfg, hist: &shardedHist{}, connect: cfg.ConnectFrame(), flood: bytes.Repeat([]byte("x"), benchSoakSlowFrame)}
	for i, t := range soakTransports {
		run.dialers[i] = NewDialer(cfg.URL, cfg.WSPath, cfg.SockJSPath, t)
		defer run.dialers[i].closeIdle()
	}
	run.users = cfg.Users
	if run.users <= 0 || run.users > cfg.Conns {
		run.users = cfg.Conns
	}
	warmup := cfg.Warmup
	if warmup == 0 {
		warmup = min(cfg.Duration/10, benchSoakWarmupMax)
	}
	out := cfg.Out
	if out == nil {
		out = progress
	}
	for _, kv := range []struct {
		k string
		v any
	}{{"conns", cfg.Conns}, {"rooms", cfg.Rooms}, {"users", run.users}, {"interval_s", cfg.Interval.Seconds()},
		{"fanout_subs", cfg.Subs}, {"fanout_rate", cfg.Rate}, {"churn_rate", cfg.ChurnRate}, {"slow_every", cfg.SlowEvery},
		{"duration_s", cfg.Duration.Seconds()}, {"sample_s", cfg.Sample.Seconds()}, {"warmup_s", warmup.Seconds()}} {
		r.add(kv.k, kv.v)
	}

	// Setup: accounts, rooms and memberships as in the rooms scenario;
	// benchadmin, the first account, reads the server's figures.
	api := &benchAPI{base: strings.TrimRight(cfg.URL, "/"), hc: run.dialers[0].client(0)}
	setupStart := time.Now()
	setup, err := setupRooms(ctx, api, cfg.Conns, cfg.Rooms, run.users, progress)
	if err != nil {
		return err
	}
	run.setup = setup
	if _, err := api.stats(ctx, setup.admin); err != nil {
		return fmt.Errorf("%w (the soak logs in as %s, the first account of a fresh server, its administrator)", err, benchAdminName)
	}
	r.add("setup_s", time.Since(setupStart).Seconds())

	// The stable connections: people, then the trickle's subscribers.
	// All are open and subscribed before anyone talks.
	connStart := time.Now()
	if err := run.dialStable(ctx); err != nil {
		run.closeStable()
		return err
	}
	defer run.closeStable()
	pub, err := run.dialers[0].dial(ctx, 0, "", run.connect)
	if err != nil {
		return fmt.Errorf("fan-out publisher: %w", err)
	}
	var pubOnce sync.Once
	closePub := func() { pubOnce.Do(pub.close) }
	defer closePub()
	r.add("connect_s", time.Since(connStart).Seconds())
	fmt.Fprintf(progress, "bench: %d people, %d subscribers and the publisher connected in %v; soaking for %v\n",
		cfg.Conns, cfg.Subs, time.Since(connStart).Round(time.Millisecond), cfg.Duration)

	// Readers live until the end; the load until cfg.Duration or ctx's
	// end; churn cycles each until their own bound. None of them is
	// cancelled by ctx: a cancelled soak still drains and reports.
	runCtx, stopReaders := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReaders()
	var readers sync.WaitGroup
	for _, p := range run.people {
		readers.Go(func() { p.readLoop(runCtx, run) })
	}
	for i, s := range run.subs {
		readers.Go(func() { s.readLoop(runCtx, run, cfg.Conns+i) })
	}

	meter := startServerMeter(cfg.PID)
	loadCtx, stopLoad := context.WithTimeout(ctx, cfg.Duration)
	defer stopLoad()
	var load, churn sync.WaitGroup
	for _, p := range run.people {
		load.Go(func() { run.talk(loadCtx, p) })
	}
	load.Go(func() { run.publish(loadCtx, pub) })
	if cfg.ChurnRate > 0 {
		load.Go(func() { run.churnLoop(loadCtx, runCtx, &churn) })
	}

	// Sample until the load ends.
	start := time.Now()
	var samples []SoakSample
	total := &latency.Hist{}
	mark := run.mark()
	lastDelivered, lastAt := int64(0), start
	tick := time.NewTicker(cfg.Sample)
	for loadCtx.Err() == nil {
		select {
		case <-loadCtx.Done():
			continue
		case <-tick.C:
		}
		s := SoakSample{At: time.Since(start)}
		if ps, err := readProcStats(cfg.PID); err == nil {
			s.Rss = ps.RSS
		} else {
			run.noteErr(&run.statsErrs, err)
		}
		sctx, cancel := context.WithTimeout(ctx, benchWriteWait)
		s.Stats, err = api.stats(sctx, setup.admin)
		cancel()
		if err == nil {
			s.Ok = true
		} else if loadCtx.Err() == nil {
			run.noteErr(&run.statsErrs, err)
		}
		interval := drainHist(run.hist)
		total.Merge(interval)
		now, delivered := time.Now(), run.delivered.Load()
		tally := run.tally(mark)
		mark = run.mark()
		samples = append(samples, s)
		fmt.Fprintln(out, run.sampleLine(s, float64(delivered-lastDelivered)/now.Sub(lastAt).Seconds(), interval, tally))
		lastDelivered, lastAt = delivered, now
	}
	tick.Stop()
	loadTime := time.Since(start)
	load.Wait()
	churn.Wait()
	if ctx.Err() != nil {
		fmt.Fprintf(progress, "bench: soak interrupted after %v; draining\n", loadTime.Round(time.Second))
	}

	// Drain: wait until every acknowledged message has reached every
	// receiver still connected, or nothing moved for benchDrainIdle.
	drainStart, lastMove, lastTotal := time.Now(), time.Now(), int64(-1)
	for time.Since(drainStart) < benchSoakDrainMax {
		t := run.tally(run.mark())
		if t.chatLost+t.fanoutLost == 0 {
			break
		}
		if n := run.delivered.Load(); n != lastTotal {
			lastTotal, lastMove = n, time.Now()
		} else if time.Since(lastMove) > benchDrainIdle {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	final := run.tally(run.mark())
	meter.report(r)
	total.Merge(drainHist(run.hist))
	stopReaders()
	run.closeStable()
	closePub()
	readers.Wait()

	var dropped int64
	for _, p := range run.people {
		if p.dead.Load() {
			dropped++
		}
	}
	for _, s := range run.subs {
		if s.dead.Load() {
			dropped++
		}
	}
	run.summarize(r, samples, warmup)
	sent := run.chatSent.Load() + run.fanoutSent.Load() + run.churnSent.Load()
	r.add("chat_sent", run.chatSent.Load())
	r.add("fanout_sent", run.fanoutSent.Load())
	r.add("churn_sent", run.churnSent.Load())
	r.add("sent", sent)
	r.add("delivered", run.delivered.Load())
	r.add("msgs_per_s", float64(run.delivered.Load())/loadTime.Seconds())
	r.add("latency_samples", total.N)
	r.add("p50_ms", total.Quantile(0.50))
	r.add("p99_ms", total.Quantile(0.99))
	r.add("max_ms", total.Max)
	r.add("lost", final.chatLost+final.fanoutLost)
	r.add("chat_lost", final.chatLost)
	r.add("fanout_lost", final.fanoutLost)
	r.add("dup", final.dup)
	r.add("ooo", final.ooo)
	r.add("churn_cycles", run.churnCycles.Load())
	r.add("churn_errors", run.churnErrs.Load())
	r.add("churn_skipped", run.churnSkipped.Load())
	r.add("slow_cut", run.slowCut.Load())
	r.add("slow_uncut", run.slowUncut.Load())
	r.add("dropped", dropped)
	r.add("send_errors", run.sendErrs.Load())
	r.add("stats_errors", run.statsErrs.Load())
	r.add("errors", run.errs.Load())
	flat, why := SoakVerdict(samples)
	r.add("flat", flat)
	if why != "" {
		fmt.Fprintf(progress, "bench: not flat: %s\n", why)
	}

	run.errMu.Lock()
	firstErr := run.firstErr
	run.errMu.Unlock()
	switch {
	case final.chatLost+final.fanoutLost > 0:
		return fmt.Errorf("soak: %d chat and %d fan-out messages acknowledged but not delivered", final.chatLost, final.fanoutLost)
	case dropped > 0:
		return fmt.Errorf("soak: %d stable connections dropped, first: %w", dropped, firstErr)
	case ctx.Err() != nil:
		return fmt.Errorf("soak interrupted after %v: %w", loadTime.Round(time.Second), ctx.Err())
	}
	return nil
}

// noteErr counts an unexpected failure in errs and, unless nil, in c,
// and keeps the first.
func (run *soakRun) noteErr(c *atomic.Int64, err error) {
	if c != nil {
		c.Add(1)
	}
	run.errs.Add(1)
	run.errMu.Lock()
	if run.firstErr == nil {
		run.firstErr = err
	}
	run.errMu.Unlock()
}

// dialStable opens and subscribes the people and the subscribers,
// benchDialParallel at a time.
func (run *soakRun) dialStable(ctx context.Context) error {
	cfg := run.cfg
	run.rooms = make([]*soakRoom, cfg.Rooms)
	for i := range run.rooms {
		run.rooms[i] = &soakRoom{index: i, id: run.setup.roomIDs[i]}
	}
	run.people = make([]*soakPerson, cfg.Conns)
	for i := range run.people {
		rm := run.rooms[i/run.setup.perRoom]
		p := &soakPerson{index: i, room: rm, pos: len(rm.members), churn: NewSeqTracker(0)}
		rm.members = append(rm.members, p)
		run.people[i] = p
	}
	for _, rm := range run.rooms {
		if len(rm.members) > 0 {
			run.talking = append(run.talking, rm)
		}
		for _, p := range rm.members {
			p.from = make([]*SeqTracker, len(rm.members))
			for k := range p.from {
				p.from[k] = NewSeqTracker(0)
			}
		}
	}
	run.subs = make([]*soakSub, cfg.Subs)
	for i := range run.subs {
		run.subs[i] = &soakSub{seq: NewSeqTracker(0)}
	}
	err := parallel(ctx, cfg.Conns, benchDialParallel, func(i int) error {
		p := run.people[i]
		c, err := run.dialers[i%len(soakTransports)].dial(ctx, i, run.setup.cookies[i%run.users], run.connect)
		if err != nil {
			return fmt.Errorf("person %d: %w", i, err)
		}
		p.c = c
		return Subscribe(ctx, c, "0", proto.RoomDestination(p.room.id))
	})
	if err != nil {
		return err
	}
	return parallel(ctx, cfg.Subs, benchDialParallel, func(i int) error {
		s := run.subs[i]
		c, err := run.dialers[i%len(soakTransports)].dial(ctx, cfg.Conns+i, "", run.connect)
		if err != nil {
			return fmt.Errorf("subscriber %d: %w", i, err)
		}
		s.c = c
		return Subscribe(ctx, c, "0", benchSoakFanoutDest)
	})
}

// closeStable closes every stable connection (those that were opened)
// once; later calls do nothing.
func (run *soakRun) closeStable() {
	run.closeOnce.Do(func() {
		conns := make([]*Conn, 0, len(run.people)+len(run.subs))
		for _, p := range run.people {
			conns = append(conns, p.c)
		}
		for _, s := range run.subs {
			conns = append(conns, s.c)
		}
		CloseAll(conns)
	})
}

// talk sends p's TALK messages, one every cfg.Interval on average, until
// ctx ends. A RECEIPT is asked for each; p's reader records it.
func (run *soakRun) talk(ctx context.Context, p *soakPerson) {
	interval := run.cfg.Interval
	f := &stomp.Frame{Command: stomp.CmdSend}
	t := time.NewTimer(rand.N(interval)) // spread the first messages over one interval
	defer t.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if p.dead.Load() {
			return
		}
		text := benchTalkPrefix + strconv.Itoa(p.index) + " " + strconv.Itoa(seq) + " " + strconv.FormatInt(time.Now().UnixNano(), 10)
		body, _ := json.Marshal(proto.ChatPost{Type: proto.MsgTalk, RoomID: p.room.id, Message: text})
		f.Headers = append(f.Headers[:0], stomp.Header{Key: stomp.HdrDestination, Value: "/pub/chat/message"}, stomp.Header{Key: stomp.HdrContentType, Value: "application/json"},
			stomp.Header{Key: stomp.HdrReceipt, Value: "t" + strconv.Itoa(seq)})
		f.Body = body
		// Not cut short when the load ends: a SEND the server may have
		// taken is awaited like any other.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), benchWriteWait)
		err := p.c.write(wctx, f)
		cancel()
		if err != nil {
			if !p.dead.Load() {
				run.noteErr(&run.sendErrs, fmt.Errorf("person %d send: %w", p.index, err))
			}
			return
		}
		run.chatSent.Add(1)
		t.Reset(interval/2 + rand.N(interval))
	}
}

// readLoop records the bench TALKs of p's room and p's RECEIPTs.
func (p *soakPerson) readLoop(ctx context.Context, run *soakRun) {
	var m proto.ChatMessage
	for {
		f, err := p.c.read(ctx)
		if err != nil {
			if ctx.Err() == nil {
				p.fail(run, err)
			}
			return
		}
		now := time.Now()
		switch f.Command {
		case stomp.CmdReceipt:
			if n, err := strconv.ParseInt(strings.TrimPrefix(f.Value(stomp.HdrReceiptID), "t"), 10, 64); err == nil {
				storeMax(&p.acked, n+1)
			}
			continue
		case stomp.CmdError:
			p.fail(run, fmt.Errorf("server ERROR: %s", f.Value(stomp.HdrMessage)))
			return
		case stomp.CmdMessage:
		default:
			continue
		}
		m = proto.ChatMessage{}
		if json.Unmarshal(f.Body, &m) != nil || m.Type != proto.MsgTalk {
			continue // presence and the like
		}
		var ts int64
		if rest, ok := strings.CutPrefix(m.Message, benchTalkPrefix); ok {
			fields := strings.Fields(rest)
			if len(fields) != 3 {
				continue
			}
			sender, err1 := strconv.Atoi(fields[0])
			seq, err2 := strconv.Atoi(fields[1])
			ts, _ = strconv.ParseInt(fields[2], 10, 64)
			p.mu.Lock()
			if err1 != nil || err2 != nil || sender < 0 || sender >= len(run.people) || run.people[sender].room != p.room {
				p.from[p.pos].Dup++ // not a message this room should carry: count it against the server
			} else {
				p.from[run.people[sender].pos].Observe(seq)
			}
			p.mu.Unlock()
		} else if rest, ok := strings.CutPrefix(m.Message, benchSoakChurnPrefix); ok {
			fields := strings.Fields(rest)
			if len(fields) != 2 {
				continue
			}
			cycle, _ := strconv.Atoi(fields[0])
			ts, _ = strconv.ParseInt(fields[1], 10, 64)
			p.mu.Lock()
			p.churn.Observe(cycle)
			p.mu.Unlock()
		} else {
			continue
		}
		run.delivered.Add(1)
		run.hist.add(p.index, now.Sub(time.Unix(0, ts)))
	}
}

func (p *soakPerson) fail(run *soakRun, err error) {
	p.dead.Store(true)
	run.noteErr(nil, fmt.Errorf("person %d: %w", p.index, err))
}

// readLoop records the trickle's messages.
func (s *soakSub) readLoop(ctx context.Context, run *soakRun, key int) {
	for {
		f, err := s.c.read(ctx)
		if err != nil && ctx.Err() != nil {
			return // the run is over
		}
		if err == nil && f.Command == stomp.CmdError {
			err = fmt.Errorf("server ERROR: %s", f.Value(stomp.HdrMessage))
		}
		if err != nil {
			s.dead.Store(true)
			run.noteErr(nil, fmt.Errorf("subscriber %d: %w", key-run.cfg.Conns, err))
			return
		}
		if f.Command != stomp.CmdMessage {
			continue
		}
		now := time.Now()
		seq, err := strconv.Atoi(f.Value(hdrBenchSeq))
		if err != nil {
			seq = -1
		}
		s.mu.Lock()
		s.seq.Observe(seq)
		s.mu.Unlock()
		run.delivered.Add(1)
		if ts, err := strconv.ParseInt(f.Value(hdrBenchTS), 10, 64); err == nil {
			run.hist.add(key, now.Sub(time.Unix(0, ts)))
		}
	}
}

// publish sends the trickle: cfg.Rate messages per second, each with a
// RECEIPT awaited before the next, until ctx ends.
func (run *soakRun) publish(ctx context.Context, pub *Conn) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / run.cfg.Rate))
	defer tick.Stop()
	body := bytes.Repeat([]byte("x"), run.cfg.Size)
	f := &stomp.Frame{Command: stomp.CmdSend, Body: body}
	for seq := 0; ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		id := "p" + strconv.Itoa(seq)
		f.Headers = append(f.Headers[:0], stomp.Header{Key: stomp.HdrDestination, Value: benchSoakFanoutDest}, stomp.Header{Key: hdrBenchSeq, Value: strconv.Itoa(seq)},
			stomp.Header{Key: hdrBenchTS, Value: strconv.FormatInt(time.Now().UnixNano(), 10)}, stomp.Header{Key: stomp.HdrContentType, Value: "text/plain"}, stomp.Header{Key: stomp.HdrReceipt, Value: id})
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), benchWriteWait)
		err := pub.write(wctx, f)
		if err == nil {
			run.fanoutSent.Add(1)
			err = awaitReceipt(wctx, pub, id)
		}
		cancel()
		if err != nil {
			run.noteErr(&run.sendErrs, fmt.Errorf("fan-out publisher: %w", err))
			return
		}
		run.fanoutAcked.Store(int64(seq + 1))
	}
}

// awaitReceipt reads c until the RECEIPT for id, skipping MESSAGEs; an
// ERROR ends the wait. Only c's reader calls it.
func awaitReceipt(ctx context.Context, c *Conn, id string) error {
	for {
		f, err := c.read(ctx)
		if err != nil {
			return err
		}
		switch {
		case f.Command == stomp.CmdReceipt && f.Value(stomp.HdrReceiptID) == id:
			return nil
		case f.Command == stomp.CmdError:
			return fmt.Errorf("server ERROR: %s", f.Value(stomp.HdrMessage))
		}
	}
}
