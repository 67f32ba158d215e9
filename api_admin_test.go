package main

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
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
		})
	}
}
