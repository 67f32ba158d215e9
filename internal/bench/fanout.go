package bench

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"stompbox/internal/stomp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Headers the fanout publisher puts on each message. Custom headers pass
// through stompbox and RabbitMQ unchanged (STOMP 1.2 §SEND: "the broker
// SHOULD preserve" them).
const (
	hdrBenchSeq = "bench-seq" // 0, 1, 2, … per run
	hdrBenchTS  = "bench-ts"  // send time, Unix nanoseconds (client and server share a clock)
)

// fanoutSub is one subscriber's state. Its reader goroutine owns seq; the
// publisher reads got and dead to bound how far ahead it runs.
type fanoutSub struct {
	c        *Conn
	seq      *SeqTracker
	got      atomic.Int64 // distinct messages received
	received atomic.Int64 // every MESSAGE, duplicates included
	last     atomic.Int64 // Unix ns of the last MESSAGE
	dead     atomic.Bool  // the connection ended before the run did
	err      error        // why it ended, set before dead
}

// runFanout: one publisher, cfg.Subs subscribers of cfg.Dest, cfg.Count
// messages of cfg.Size bytes.
func runFanout(ctx context.Context, cfg Config, d *dialer, r *benchReport, progress io.Writer) error {
	r.add("subs", cfg.Subs)
	r.add("size", cfg.Size)
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	connect := cfg.ConnectFrame()
	subs := make([]*fanoutSub, cfg.Subs)
	var conns []*Conn
	defer func() { CloseAll(conns) }()
	if len(cfg.SubURLs) == 0 {
		cfg.SubURLs = []string{cfg.URL}
	}
	// Subscribers are spread over the servers in equal shares: subs[i]
	// is on SubURLs[i*len/Subs].
	for k, u := range cfg.SubURLs {
		from, to := k*cfg.Subs/len(cfg.SubURLs), (k+1)*cfg.Subs/len(cfg.SubURLs)
		sd := d
		if u != cfg.URL {
			sd = NewDialer(u, cfg.WSPath, cfg.SockJSPath, cfg.Transport)
			defer sd.closeIdle()
		}
		cs, failed, err := DialMany(ctx, sd, to-from, nil, connect, func(i int, c *Conn) error {
			subs[from+i] = &fanoutSub{c: c, seq: NewSeqTracker(cfg.Count)}
			return Subscribe(ctx, c, "0", cfg.Dest)
		})
		conns = append(conns, cs...)
		if err != nil {
			r.add("connect_failed", failed)
			return err
		}
	}
	if len(cfg.SubURLs) > 1 {
		r.add("sub_servers", len(cfg.SubURLs))
	}
	pd := d
	if cfg.PubURL != "" && cfg.PubURL != cfg.URL {
		pd = NewDialer(cfg.PubURL, cfg.WSPath, cfg.SockJSPath, cmp.Or(cfg.PubTransport, cfg.Transport))
		defer pd.closeIdle()
		r.add("pub_url", cfg.PubURL)
	} else if cfg.PubTransport != "" && cfg.PubTransport != cfg.Transport {
		pd = NewDialer(cfg.URL, cfg.WSPath, cfg.SockJSPath, cfg.PubTransport)
		defer pd.closeIdle()
		r.add("pub_transport", cfg.PubTransport)
	}
	pub, err := pd.dial(ctx, cfg.Subs, "", connect)
	if err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	conns = append(conns, pub)
	fmt.Fprintf(progress, "bench: %d subscribers and the publisher connected\n", cfg.Subs)

	hist := &shardedHist{}
	var readers sync.WaitGroup
	for i, s := range subs {
		readers.Add(1)
		go func() {
			defer readers.Done()
			s.readLoop(ctx, i, hist)
		}()
	}
	meter := startServerMeter(cfg.PID)
	start := time.Now()
	sent, pubErr := publishFanout(ctx, cfg, pub, subs)
	sendTime := time.Since(start)

	// Wait until every live subscriber has everything, or nothing moves
	// for benchDrainIdle, or the run's time is up.
	lastTotal, lastMove := int64(-1), time.Now()
	for ctx.Err() == nil {
		var total int64
		done := true
		for _, s := range subs {
			g := s.got.Load()
			total += g
			if g < int64(sent) && !s.dead.Load() {
				done = false
			}
		}
		if done {
			break
		}
		if total != lastTotal {
			lastTotal, lastMove = total, time.Now()
		} else if time.Since(lastMove) > benchDrainIdle {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	meter.report(r)
	cancel()
	CloseAll(conns)
	conns = nil
	readers.Wait()

	var delivered, lost, dup, ooo, dead int64
	var last int64
	for _, s := range subs {
		delivered += s.received.Load()
		lost += int64(sent - s.seq.Distinct)
		dup += int64(s.seq.Dup)
		ooo += int64(s.seq.Ooo)
		last = max(last, s.last.Load())
		if s.err != nil {
			dead++
		}
	}
	elapsed := time.Duration(last - start.UnixNano())
	if elapsed <= 0 {
		elapsed = sendTime
	}
	r.add("sent", sent)
	r.add("delivered", delivered)
	r.add("elapsed_s", elapsed.Seconds())
	r.add("msgs_per_s", float64(delivered)/elapsed.Seconds())
	r.add("pub_msgs_per_s", float64(sent)/sendTime.Seconds())
	r.addLatency(hist.total())
	r.add("lost", lost)
	r.add("dup", dup)
	r.add("ooo", ooo)
	r.add("subs_dropped", dead)
	if pubErr != nil {
		return fmt.Errorf("publish: %w", pubErr)
	}
	if dead > 0 {
		for _, s := range subs {
			if s.err != nil {
				return fmt.Errorf("%d subscribers dropped, first: %w", dead, s.err)
			}
		}
	}
	return nil
}

// readLoop records every MESSAGE until the connection ends.
func (s *fanoutSub) readLoop(ctx context.Context, key int, hist *shardedHist) {
	for {
		f, err := s.c.next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.err = err
				s.dead.Store(true)
			}
			return
		}
		now := time.Now()
		switch f.command {
		case stomp.CmdMessage:
		case stomp.CmdError:
			s.err = fmt.Errorf("server ERROR: %s", f.full.Value(stomp.HdrMessage))
			s.dead.Store(true)
			return
		default:
			continue
		}
		s.received.Add(1)
		s.last.Store(now.UnixNano())
		seq := -1
		if n, ok := f.number(hdrBenchSeq); ok && n <= math.MaxInt32 {
			seq = int(n)
		}
		if s.seq.Observe(seq) {
			s.got.Add(1)
		}
		if ts, ok := f.number(hdrBenchTS); ok {
			hist.add(key, now.Sub(time.Unix(0, ts)))
		}
	}
}

// publishFanout sends cfg.Count messages, a RECEIPT requested every
// cfg.Window and at most two windows unconfirmed, pacing to cfg.Rate and
// waiting whenever the slowest live subscriber is cfg.MaxLag behind. It
// returns how many it sent.
func publishFanout(ctx context.Context, cfg Config, pub *Conn, subs []*fanoutSub) (int, error) {
	receipts := make(chan error, 4)
	go func() { // the publisher's reader: RECEIPTs, or the ERROR that ends it
		for {
			f, err := pub.read(ctx)
			if err != nil {
				receipts <- err
				return
			}
			switch f.Command {
			case stomp.CmdReceipt:
				receipts <- nil
			case stomp.CmdError:
				receipts <- fmt.Errorf("server ERROR: %s", f.Value(stomp.HdrMessage))
				return
			}
		}
	}()
	body := bytes.Repeat([]byte("x"), cfg.Size)
	f := &stomp.Frame{Command: stomp.CmdSend, Body: body}
	start := time.Now()
	outstanding := 0
	minGot := int64(0)
	for i := range cfg.Count {
		if ctx.Err() != nil {
			return i, nil // -duration reached
		}
		if cfg.Rate > 0 {
			due := start.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				time.Sleep(wait)
			}
		}
		if cfg.MaxLag > 0 {
			for int64(i)-minGot > int64(cfg.MaxLag) && ctx.Err() == nil {
				minGot = slowest(subs, int64(i))
				if int64(i)-minGot > int64(cfg.MaxLag) {
					time.Sleep(100 * time.Microsecond)
				}
			}
		}
		f.Headers = append(f.Headers[:0],
			stomp.Header{Key: stomp.HdrDestination, Value: cfg.Dest},
			stomp.Header{Key: hdrBenchSeq, Value: strconv.Itoa(i)},
			stomp.Header{Key: hdrBenchTS, Value: strconv.FormatInt(time.Now().UnixNano(), 10)},
			stomp.Header{Key: stomp.HdrContentType, Value: "text/plain"},
		)
		withReceipt := (i+1)%cfg.Window == 0 || i == cfg.Count-1
		if withReceipt {
			f.Add(stomp.HdrReceipt, "p"+strconv.Itoa(i))
		}
		if ctx.Err() != nil {
			return i, nil // -duration reached while waiting
		}
		// The write is not cut short by -duration: a SEND the server may
		// have taken must be counted as sent.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), benchWriteWait)
		err := pub.write(wctx, f)
		cancel()
		if err != nil {
			return i, err
		}
		if withReceipt {
			outstanding++
			for outstanding > 1 || (i == cfg.Count-1 && outstanding > 0) {
				select {
				case err := <-receipts:
					if err != nil {
						return i + 1, err
					}
					outstanding--
				case <-ctx.Done():
					return i + 1, nil
				}
			}
		}
	}
	return cfg.Count, nil
}

// slowest returns the least any live subscriber has received (upTo if all
// are dead, so the publisher does not wait for nobody).
func slowest(subs []*fanoutSub, upTo int64) int64 {
	m := upTo
	for _, s := range subs {
		if !s.dead.Load() {
			m = min(m, s.got.Load())
		}
	}
	return m
}
