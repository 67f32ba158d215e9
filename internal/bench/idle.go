package bench

import (
	"context"
	"fmt"
	"io"
	"stompbox/internal/stomp"
	"sync"
	"sync/atomic"
	"time"
)

// benchIdleSettle is how long the idle scenario lets the server settle
// (finish handshakes, let the garbage collector run) before reading RSS.
const benchIdleSettle = 2 * time.Second

// runIdle opens cfg.Conns connections that CONNECT and SUBSCRIBE to
// cfg.Dest, holds them cfg.Hold, and reports the server's RSS per
// connection. At the end one message is published to cfg.Dest: every
// connection still held must receive it, which proves they all survived.
func runIdle(ctx context.Context, cfg Config, d *dialer, r *benchReport, progress io.Writer) error {
	r.add("conns", cfg.Conns)
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	meter := startServerMeter(cfg.PID)
	before := meter.start
	connect := cfg.ConnectFrame()
	start := time.Now()
	// Connection 0 is the publisher of the final check; 1..Conns are idle.
	conns, failed, err := DialMany(ctx, d, cfg.Conns+1, nil, connect, func(i int, c *Conn) error {
		if i == 0 {
			return nil
		}
		return Subscribe(ctx, c, "0", cfg.Dest)
	})
	defer func() { CloseAll(conns) }()
	r.add("connect_s", time.Since(start).Seconds())
	r.add("connect_failed", failed)
	if err != nil {
		fmt.Fprintf(progress, "bench: %d of %d connections failed, first: %v\n", failed, cfg.Conns, err)
	}
	held := 0
	for _, c := range conns[1:] {
		if c != nil {
			held++
		}
	}
	fmt.Fprintf(progress, "bench: %d connections held; holding %v\n", held, cfg.Hold)

	var (
		got     atomic.Int64 // connections that received the check message
		dropped atomic.Int64 // connections the server ended during the hold
		readers sync.WaitGroup
	)
	rctx, rcancel := context.WithCancel(ctx)
	for _, c := range conns[1:] {
		if c == nil {
			continue
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				f, err := c.read(rctx)
				if err != nil || f.Command == stomp.CmdError {
					if rctx.Err() == nil {
						dropped.Add(1)
					}
					return
				}
				if f.Command == stomp.CmdMessage {
					got.Add(1)
				}
			}
		}()
	}
	select {
	case <-time.After(max(cfg.Hold, benchIdleSettle)):
	case <-ctx.Done():
	}
	if cfg.PID > 0 {
		if after, err := readProcStats(cfg.PID); err == nil && held > 0 {
			r.add("rss_before_mib", float64(before.RSS)/(1<<20))
			r.add("rss_after_mib", float64(after.RSS)/(1<<20))
			r.add("rss_per_conn_kib", float64(after.RSS-before.RSS)/1024/float64(held))
		}
	}
	// The liveness check: one message to everybody.
	var checkErr error
	if pub := conns[0]; pub != nil && held > 0 {
		f := &stomp.Frame{Command: stomp.CmdSend, Body: []byte("are you there")}
		f.Add(stomp.HdrDestination, cfg.Dest)
		checkErr = pub.write(ctx, f)
		// Wait while deliveries keep coming: a busy server may take
		// seconds to reach tens of thousands of subscribers.
		last, lastMove := int64(-1), time.Now()
		for got.Load()+dropped.Load() < int64(held) && ctx.Err() == nil {
			if n := got.Load(); n != last {
				last, lastMove = n, time.Now()
			} else if time.Since(lastMove) > benchDrainIdle {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	meter.report(r)
	rcancel()
	CloseAll(conns)
	conns = nil
	readers.Wait()
	r.add("held", held)
	r.add("dropped", dropped.Load())
	r.add("check_received", got.Load())
	r.add("lost", int64(held)-got.Load())
	if err != nil {
		return err
	}
	if checkErr != nil {
		return fmt.Errorf("publish check message: %w", checkErr)
	}
	if d := dropped.Load(); d > 0 {
		return fmt.Errorf("%d idle connections were dropped", d)
	}
	return nil
}
