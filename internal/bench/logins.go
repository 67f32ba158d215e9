package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// runLogins is the login storm of issue 15: cfg.Conns connections CONNECT
// at the same moment with the same -login and -passcode, as devices do when
// they all reconnect after a restart. Each CONNECT makes the server check a
// password (an argon2id hash of 19 MiB). It reports how many got CONNECTED,
// how many were told "server busy", how long they waited (from dialling to
// CONNECTED), and, with -pid, the server's peak RSS during the storm.
//
// The server must allow that many connections from one address
// (-max-conns-per-ip 0 or more than -conns).
func runLogins(ctx context.Context, cfg Config, d *dialer, r *benchReport, progress io.Writer) error {
	if cfg.Login == "" || cfg.Passcode == "" {
		return errors.New("bench logins: give -login and -passcode of an existing account")
	}
	r.add("conns", cfg.Conns)
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	meter := startServerMeter(cfg.PID)
	connect := cfg.ConnectFrame()

	var (
		mu       sync.Mutex
		waits    []time.Duration // of those that got CONNECTED
		conns    []*Conn
		busy     int
		failed   int
		firstErr error
		wg       sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range cfg.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			t0 := time.Now()
			c, err := d.dial(ctx, i, "", connect)
			wait := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				waits = append(waits, wait)
				conns = append(conns, c)
			case strings.Contains(err.Error(), "server busy"):
				busy++
			default:
				failed++
				if firstErr == nil {
					firstErr = fmt.Errorf("connection %d: %w", i, err)
				}
			}
		}()
	}
	fmt.Fprintf(progress, "bench: %d CONNECTs with a password at once\n", cfg.Conns)
	close(start)
	wg.Wait()
	meter.report(r)
	CloseAll(conns)

	slices.Sort(waits)
	r.add("connected", len(waits))
	r.add("busy", busy)
	r.add("failed", failed)
	if n := len(waits); n > 0 {
		r.add("wait_p50_s", waits[n/2].Seconds())
		r.add("wait_max_s", waits[n-1].Seconds())
	}
	if firstErr != nil {
		return firstErr
	}
	return nil
}
