package main

import (
	"context"
	"fmt"
	"stompbox/internal/chat"
	"strings"
	"testing"
	"time"
)

// TestStompJSFlows runs the flows of testdata/stompjs/flows.mjs: the same
// features as the Go tests, through @stomp/stompjs (the client browser and
// Spring apps use) in Node over the ws package.
func TestStompJSFlows(t *testing.T) {
	t.Parallel()
	// A short heart-beat so the heartbeat flow sees several within seconds,
	// with slack for a loaded machine (stompjs allows twice the interval).
	srv := startServer(t, func(c *Config) { c.HeartBeat = 500 * time.Millisecond })
	url := "STOMPBOX_WS_URL=ws://" + srv.HTTPAddr() + "/ws"
	const password = "correct horse battery"
	kim := addUser(t, srv, "kim", password)
	addUser(t, srv, "lee", password)
	room, err := srv.chat.CreateRoom(context.Background(), kim, chat.NewRoom{Name: "general"})
	if err != nil {
		t.Fatal(err)
	}
	chatEnv := []string{"STOMPBOX_PASSCODE=" + password, fmt.Sprintf("STOMPBOX_ROOM=%d", room.ID)}
	flows := []string{
		"pubsub", "versions", "binary", "queue-nack-redelivery", "queue-round-robin",
		"transaction", "unsubscribe", "app-destination", "error-frame", "heartbeat",
	}
	for _, flow := range flows {
		t.Run(flow, func(t *testing.T) {
			out := runNode(t, "flows.mjs", append([]string{url, "STOMPBOX_FLOW=" + flow}, chatEnv...)...)
			if strings.TrimSpace(out) != "ok "+flow {
				t.Fatalf("flow output %q", out)
			}
		})
	}
	checkFor(t, "sessions to end", func() bool { return srv.broker.SessionCount() == 0 })
}
