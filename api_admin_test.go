package main

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"runtime"
	"stompbox/internal/latency"
	"stompbox/internal/proto"
	"strings"
	"testing"
)

func TestAPIAdminStats(t *testing.T) {
	srv := startServer(t)
	base := "http://" + srv.HTTPAddr()
	// register returns a client logged in as name; the first account of a
	// fresh server is its administrator.
	register := func(name string) *http.Client {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		resp, err := c.Post(base+"/api/register", "application/json",
			strings.NewReader(`{"username":"`+name+`","displayName":"`+name+`","password":"password-`+name+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("register %s: %d", name, resp.StatusCode)
		}
		return c
	}
	admin := register("root")
	member := register("alice")
	ws, _ := dialWS(t, srv) // one live session to count
	ws.connect()

	tests := []struct {
		name   string
		client *http.Client
		status int
	}{
		{"admin", admin, http.StatusOK},
		{"member", member, http.StatusForbidden},
		{"anonymous", &http.Client{}, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.client.Get(base + "/api/admin/stats")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			var body map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if tc.status != http.StatusOK {
				if _, ok := body["error"]; !ok || body["goroutines"] != nil {
					t.Errorf("refusal body %v", body)
				}
				return
			}
			for _, k := range []string{"goroutines", "heap_alloc_bytes", "heap_inuse_bytes", "stack_bytes", "sys_bytes",
				"num_gc", "stomp_sessions", "sockjs_sessions", "uptime_s", "version"} {
				if _, ok := body[k]; !ok {
					t.Errorf("stats lack %s: %v", k, body)
				}
			}
			if g, _ := body["goroutines"].(float64); g < 1 {
				t.Errorf("goroutines %v", body["goroutines"])
			}
			if h, _ := body["heap_inuse_bytes"].(float64); h <= 0 {
				t.Errorf("heap_inuse_bytes %v", body["heap_inuse_bytes"])
			}
			if n, _ := body["stomp_sessions"].(float64); n < 1 {
				t.Errorf("stomp_sessions %v with a WebSocket session open", body["stomp_sessions"])
			}
			checkStoreStats(t, body["store"])
			// The password queue: one slot a core, nothing waiting after the
			// test's logins; flow control counters present.
			raw, _ := json.Marshal(body["passwords"])
			var pw proto.GateStats
			if err := json.Unmarshal(raw, &pw); err != nil || pw.Slots != runtime.NumCPU() || pw.Waiting != 0 || pw.Running != 0 {
				t.Errorf("passwords %s (%v), want %d slots, none running or waiting", raw, err, runtime.NumCPU())
			}
			if _, ok := body["flow"].(map[string]any)["held_sends"]; !ok {
				t.Errorf("flow %v lacks held_sends", body["flow"])
			}
		})
	}
}

// checkStoreStats checks the writer's figures after the test's two
// registrations (each one write): every write and every commit counted
// once, and the buckets adding up to the counts they summarise.
func checkStoreStats(t *testing.T, v any) {
	t.Helper()
	raw, _ := json.Marshal(v)
	var st proto.StoreStats
	if err := json.Unmarshal(raw, &st); err != nil || v == nil {
		t.Fatalf("store stats %s: %v", raw, err)
	}
	if st.Writes < 2 || st.Transactions < 1 || st.Transactions > st.Writes {
		t.Errorf("writes %d in %d transactions, want at least 2 in 1..writes", st.Writes, st.Transactions)
	}
	for _, c := range []struct {
		name string
		h    latency.Snapshot
		want int64
	}{{"commit", st.Commit, st.Transactions}, {"wait", st.Wait, st.Writes}} {
		var sum uint64
		for _, b := range c.h.Buckets {
			sum += b[1]
		}
		if c.h.N != uint64(c.want) || sum != c.h.N {
			t.Errorf("%s: n %d, buckets add to %d, want %d", c.name, c.h.N, sum, c.want)
		}
		if c.h.P50US > c.h.P99US || c.h.P99US > c.h.MaxUS || c.h.MaxUS <= 0 {
			t.Errorf("%s: p50 %d µs, p99 %d µs, max %d µs", c.name, c.h.P50US, c.h.P99US, c.h.MaxUS)
		}
	}
}
