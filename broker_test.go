package main

import (
	"strings"
	"testing"
)

// dialers runs a test over each STOMP endpoint: the twin tests of the style guide.
func dialers(srv *server) map[string]func(t *testing.T) *stompClient {
	return map[string]func(t *testing.T) *stompClient{
		"tcp": func(t *testing.T) *stompClient { return dialTCP(t, srv.TCPAddr()) },
		"ws":  func(t *testing.T) *stompClient { c, _ := dialWS(t, srv, stompSubprotocols...); return c },
	}
}

func TestPubSubTopic(t *testing.T) {
	srv := startServer(t)
	for name, dial := range dialers(srv) {
		t.Run(name, func(t *testing.T) {
			sub, pub := dial(t), dial(t)
			sub.connect()
			pub.connect()
			sub.roundTrip(cmdSubscribe, "", "id:0", "destination:/topic/greetings")
			pub.roundTrip(cmdSend, "안녕하세요", "destination:/topic/greetings", "content-type:text/plain;charset=utf-8", "x-custom:yes")
			m := sub.expect(cmdMessage)
			if string(m.Body) != "안녕하세요" || m.Value(hdrDestination) != "/topic/greetings" || m.Value(hdrSubscription) != "0" ||
				m.Value("x-custom") != "yes" || m.Value(hdrContentType) != "text/plain;charset=utf-8" || m.Value(hdrMessageID) == "" {
				t.Fatalf("message %v %q", m.Headers, m.Body)
			}
			_ = strings.TrimSpace
		})
	}
}
