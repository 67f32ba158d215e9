package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
	"strconv"
	"sync"
	"time"
)

// Churn for the soak (soak.go): connections that come and go,
// some without DISCONNECT, some never reading, so that whatever a
// connection leaves behind on the server adds up over the run.

// churnLoop starts cfg.ChurnRate churn cycles a second until ctx ends, at
// most benchSoakChurnParallel at once; the cycles run under cycleCtx,
// which the load's end does not cancel, and wg counts them.
func (run *soakRun) churnLoop(ctx, cycleCtx context.Context, wg *sync.WaitGroup) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / run.cfg.ChurnRate))
	defer tick.Stop()
	sem := make(chan struct{}, benchSoakChurnParallel)
	for k := 0; ; k++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			run.churnSkipped.Add(1)
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(cycleCtx, benchSoakCycleTimeout)
			defer cancel()
			var err error
			if run.cfg.SlowEvery > 0 && k%run.cfg.SlowEvery == run.cfg.SlowEvery-1 {
				err = run.slowCycle(cctx, k)
			} else {
				err = run.churnCycle(cctx, k)
			}
			if err != nil {
				run.noteErr(&run.churnErrs, fmt.Errorf("churn cycle %d: %w", k, err))
				return
			}
			run.churnCycles.Add(1)
		})
	}
}

// churnCycle is one connection's life: connect, subscribe, send one
// message and wait for its RECEIPT, leave. Cycle k uses transport k mod 3;
// one in five is anonymous and subscribes to the trickle, the others are a
// room member who subscribes to the room and talks in it; one in four
// closes its transport without DISCONNECT.
func (run *soakRun) churnCycle(ctx context.Context, k int) error {
	topic := k%5 == 4
	abrupt := k%4 == 3
	var (
		cookie string
		rm     *soakRoom
	)
	if !topic {
		rm = run.talking[rand.N(len(run.talking))]
		member := rm.members[rand.N(len(rm.members))]
		cookie = run.setup.cookies[member.index%run.users]
	}
	c, err := run.dialers[k%len(soakTransports)].dial(ctx, 0, cookie, run.connect)
	if err != nil {
		return err
	}
	run.churnOpen.Add(1)
	defer run.churnOpen.Add(-1)
	if abrupt {
		defer c.t.close()
	} else {
		defer c.close()
	}
	f := &stomp.Frame{Command: stomp.CmdSend}
	if topic {
		if err := Subscribe(ctx, c, "0", benchSoakFanoutDest); err != nil {
			return err
		}
		f.Headers = []stomp.Header{{Key: stomp.HdrDestination, Value: benchSoakChurnDest}, {Key: stomp.HdrReceipt, Value: "c"}}
		f.Body = []byte("churn " + strconv.Itoa(k))
	} else {
		if err := Subscribe(ctx, c, "0", proto.RoomDestination(rm.id)); err != nil {
			return err
		}
		text := benchSoakChurnPrefix + strconv.Itoa(k) + " " + strconv.FormatInt(time.Now().UnixNano(), 10)
		f.Body, _ = json.Marshal(proto.ChatPost{Type: proto.MsgTalk, RoomID: rm.id, Message: text})
		f.Headers = []stomp.Header{{Key: stomp.HdrDestination, Value: "/pub/chat/message"}, {Key: stomp.HdrContentType, Value: "application/json"}, {Key: stomp.HdrReceipt, Value: "c"}}
	}
	if err := c.write(ctx, f); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if err := awaitReceipt(ctx, c, "c"); err != nil {
		return fmt.Errorf("receipt: %w", err)
	}
	if rm != nil {
		rm.mu.Lock()
		rm.churnAcked = append(rm.churnAcked, k)
		rm.mu.Unlock()
	}
	run.churnSent.Add(1)
	return nil
}

// slowCycle is a slow consumer: it subscribes to a topic of its own and
// floods it with benchSoakSlowFrames messages of benchSoakSlowFrame bytes
// without ever reading, so that the server's outbox overflows and the
// server cuts it off; a write error tells it so. Over raw WebSocket only:
// SockJS xhr-streaming ends each response after 128 KiB anyway.
func (run *soakRun) slowCycle(ctx context.Context, k int) error {
	c, err := run.dialers[0].dial(ctx, 0, "", run.connect)
	if err != nil {
		return err
	}
	run.churnOpen.Add(1)
	defer run.churnOpen.Add(-1)
	defer c.t.close()
	dest := benchSoakSlowDest + strconv.Itoa(k)
	if err := Subscribe(ctx, c, "0", dest); err != nil {
		return err
	}
	f := &stomp.Frame{Command: stomp.CmdSend, Headers: []stomp.Header{{Key: stomp.HdrDestination, Value: dest}}, Body: run.flood}
	for range benchSoakSlowFrames {
		if c.write(ctx, f) != nil {
			run.slowCut.Add(1)
			return nil
		}
	}
	// Everything went out: keep delivering to it until the server gives up
	// (the outbox's grace period, or its write timeout), within a bound.
	poke := &stomp.Frame{Command: stomp.CmdSend, Headers: []stomp.Header{{Key: stomp.HdrDestination, Value: dest}}, Body: []byte("still there?")}
	deadline := time.Now().Add(benchSoakSlowWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if c.write(ctx, poke) != nil {
			run.slowCut.Add(1)
			return nil
		}
		time.Sleep(benchSoakSlowPoke)
	}
	run.slowUncut.Add(1)
	return nil
}
