package service

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWatchdogInterval(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    time.Duration
		wantErr bool
	}{
		{"off", nil, 0, false},
		{"half of WatchdogSec", map[string]string{"WATCHDOG_USEC": "30000000"}, 15 * time.Second, false},
		{"for this process", map[string]string{"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 15 * time.Second, false},
		{"for another process", map[string]string{"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, 0, false},
		{"not a number", map[string]string{"WATCHDOG_USEC": "30s"}, 0, true},
		{"zero", map[string]string{"WATCHDOG_USEC": "0"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := WatchdogInterval(func(k string) string { return tt.env[k] }, 42)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Fatalf("got %v, %v; want %v (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestNotifierOff checks that without NOTIFY_SOCKET nothing is sent and
// nothing starts.
func TestNotifierOff(t *testing.T) {
	n := NewNotifier(func(string) string { return "" })
	if n.Enabled() {
		t.Fatal("enabled without NOTIFY_SOCKET")
	}
	if err := n.Notify(Ready); err != nil {
		t.Fatal(err)
	}
	StartWatchdog(t.Context(), n, time.Millisecond, nil)() // a nil logger would panic if a ping ran
}

// TestUnit checks the unit for the choices that README and run rely on;
// .ci/run checks the whole file with systemd-analyze verify.
func TestUnit(t *testing.T) {
	var out bytes.Buffer
	if err := RunCommand([]string{"print"}, &out); err != nil || out.String() != Unit {
		t.Fatalf("service print: %v", err)
	}
	for _, line := range []string{
		"Type=notify", "WatchdogSec=30s", "Restart=on-failure", "ExecStart=/usr/local/bin/stompbox",
		"DynamicUser=yes", "StateDirectory=stompbox", "Environment=STOMPBOX_DATA=%S/stompbox",
		"ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "MemoryDenyWriteExecute=yes",
		"SystemCallArchitectures=native", "CapabilityBoundingSet=",
	} {
		if !strings.Contains(Unit, "\n"+line+"\n") {
			t.Errorf("unit lacks %q", line)
		}
	}
	if err := RunCommand([]string{"install"}, &out); !errors.Is(err, ErrUsage) {
		t.Errorf("service install: %v, want usage", err)
	}
}
