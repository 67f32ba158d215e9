// Package sockjs is a SockJS server for one endpoint prefix, speaking
// sockjs-protocol 0.3.x as sockjs-client 1.x expects it, so that browsers
// without WebSocket (or behind proxies that break it) still reach the
// broker. It owns the endpoints (Server: /info, /iframe.html, CORS and
// cache headers), the sessions and their transports, and the services
// the protocol's own test suite drives (RunTestServer). Files:
//
//   - sockjs.go: options, the server, routing, /info, /iframe.html, CORS
//     and cache headers, shutdown;
//   - session.go: the session of the HTTP transports (outbound queue,
//     receivers, disconnect timer);
//   - transports.go: the HTTP receivers (xhr, xhr_streaming, eventsource,
//     htmlfile, jsonp) and the send handlers;
//   - websocket.go: the framed and raw WebSocket transports;
//   - hixie76.go: the pre-RFC 6455 handshake the suite still tests;
//   - testserver.go: the services the sockjs-protocol suite expects.
//
// The frames themselves are internal/sockjsframe.
//
// What it promises:
//   - Each session is handed to the accept callback as a transport.Conn,
//     once, on a goroutine the server owns; the callback (the broker's
//     Serve, in main) runs it to its end.
//   - An HTTP session's Write never blocks: messages queue for the next
//     receiver, as one array frame, and nothing is lost or reordered across
//     polls. Past its bound (1 MiB) the session is closed as a slow
//     consumer.
//   - A send request completes only once the application has read its
//     messages, which gives back-pressure; one send request per session
//     holds a body in memory at a time.
//   - The server owns every goroutine it starts, and Close waits for
//     them; sessions per endpoint are bounded. A request's context is
//     never used after a hijack.
//
// It implements transport.Conn and transport.JSONWriter (its HTTP and
// WebSocket sessions). It owns no interface that another package
// implements.
//
// Of stompbox it imports only internal/sockjsframe and internal/transport.
// It carries bytes: it never imports the STOMP codec or the broker
// (layout_test.go).
package sockjs
