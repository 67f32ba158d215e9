package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"
)

// The states of the notify protocol that stompbox sends (sd_notify(3),
// "Well-known assignments").
const (
	Ready    = "READY=1"    // startup finished: listeners open, clients are served
	Stopping = "STOPPING=1" // shutdown has begun
	Watchdog = "WATCHDOG=1" // still alive; due every WatchdogSec=
)

// Environment variables that systemd sets for a Type=notify service
// (systemd.exec(5), "Environment Variables Set or Propagated by the
// Service Manager").
const (
	envNotifySocket = "NOTIFY_SOCKET"
	envWatchdogUSec = "WATCHDOG_USEC"
	envWatchdogPID  = "WATCHDOG_PID"
)

// notifyTimeout bounds one datagram's write: the socket is local, so a
// write that waits this long means systemd is gone or stuck, and the server
// must not wait with it.
const notifyTimeout = time.Second

// Notifier sends states to the service manager. Its zero value, and a
// Notifier made without NOTIFY_SOCKET, send nothing. It is safe for
// concurrent use.
//
// This is the protocol in a few lines rather than
// github.com/coreos/go-systemd/v22/daemon, which does the same: that package
// reads os.Getenv itself, while run takes its environment as a function so
// that tests start servers without touching the process's environment.
type Notifier struct {
	addr *net.UnixAddr // nil when not run by a service manager
}

// NewNotifier reads NOTIFY_SOCKET through getenv (os.Getenv in production).
// A name starting with @ is a Linux abstract socket; Go's net package
// handles that spelling itself.
func NewNotifier(getenv func(string) string) *Notifier {
	path := getenv(envNotifySocket)
	if path == "" {
		return &Notifier{}
	}
	return &Notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
}

// Enabled reports whether a service manager listens.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != nil }

// Notify sends one datagram of newline-separated states, such as Ready or
// Ready+"\nSTATUS=…". It returns nil at once when not Enabled.
func (n *Notifier) Notify(states string) error {
	if !n.Enabled() {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("notify %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(notifyTimeout))
	if _, err := c.Write([]byte(states)); err != nil {
		return fmt.Errorf("notify %s: %w", n.addr.Name, err)
	}
	return nil
}

// WatchdogInterval is how often to send Watchdog: half of WATCHDOG_USEC,
// as sd_watchdog_enabled(3) advises, so one late ping is not fatal. It is 0
// when the watchdog is off, or when WATCHDOG_PID names another process
// (the variables were inherited, not meant for this one). pid is
// os.Getpid() in production.
func WatchdogInterval(getenv func(string) string, pid int) (time.Duration, error) {
	v := getenv(envWatchdogUSec)
	if v == "" {
		return 0, nil
	}
	usec, err := strconv.ParseInt(v, 10, 64)
	if err != nil || usec <= 0 {
		return 0, fmt.Errorf("%s=%q: not a positive number of microseconds", envWatchdogUSec, v)
	}
	if p := getenv(envWatchdogPID); p != "" && p != strconv.Itoa(pid) {
		return 0, nil
	}
	return time.Duration(usec) * time.Microsecond / 2, nil
}

// StartWatchdog sends Watchdog through n every interval from a goroutine
// of its own until stop is called or ctx ends. stop ends that goroutine
// and waits for it, so that no ping follows it (call it before sending
// Stopping). A failed ping is logged, and the next one tried: systemd
// restarts the service if they keep failing. With interval 0, or n not
// Enabled, nothing starts.
func StartWatchdog(ctx context.Context, n *Notifier, interval time.Duration, log *slog.Logger) (stop func()) {
	if interval <= 0 || !n.Enabled() {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if err := n.Notify(Watchdog); err != nil && ctx.Err() == nil {
				log.Warn("systemd watchdog ping failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}
