// Package service runs stompbox under a service manager: it speaks
// systemd's notify protocol (sd_notify(3): READY=1, STOPPING=1, WATCHDOG=1
// datagrams to $NOTIFY_SOCKET), pings the watchdog, and holds the systemd
// unit that "stompbox service print" writes out.
//
// It promises nothing when stompbox runs without systemd: with no
// NOTIFY_SOCKET every call is a no-op. It imports nothing of stompbox; the
// caller (run in main.go) decides when the server is ready.
package service
