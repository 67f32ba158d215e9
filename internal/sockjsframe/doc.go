// Package sockjsframe owns the SockJS wire format (sockjs-protocol 0.3):
// the frames a server sends (o, h, c[code,"reason"], and a["m1","m2",…]
// arrays), the JSON string escaping of their messages (as sockjs-node
// escapes them, plus < > & where a frame sits inside a script: htmlfile
// and JSONP), and the decoding of what a client sends.
//
// What it promises: the frames are what the sockjs-protocol suite and
// sockjs-client expect; an escaped message is always valid JSON and valid
// UTF-8; a malformed message from a client is an error.
//
// Both sides share it: the SockJS server (internal/sockjs), the broker's
// writer (which escapes a MESSAGE once per publish for all its SockJS
// subscribers) and the load tool's client (internal/bench).
//
// It owns no interface. It is a leaf: it imports no package of stompbox
// (layout_test.go).
package sockjsframe
