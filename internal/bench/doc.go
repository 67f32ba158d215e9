// Package bench is the load tool, "stompbox bench fanout|rooms|idle|soak|logins".
// It drives a STOMP server (stompbox, or any STOMP-over-WebSocket broker
// such as RabbitMQ web-stomp) over raw WebSocket, SockJS WebSocket or
// SockJS xhr-streaming, and prints one line of results. See
// docs/benchmarks.md.
//
// What it promises: it is a client. It speaks to the server only over the
// network, on this machine (the server's URL must be a loopback address),
// and it bounds every scenario by a duration and a count.
//
// It owns no interface. Of stompbox it imports only what a client needs:
// internal/stomp (the codec), internal/sockjsframe (the SockJS wire
// format), internal/proto (the shapes server and client agree on) and
// internal/latency. It never imports a part of the server: not the
// broker, the store, the chat or the transports (layout_test.go).
package bench
