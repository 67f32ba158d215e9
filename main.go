// Command stompbox is a chat appliance in one binary: STOMP over WebSocket,
// SockJS and TCP, an in-memory broker, and chat history in SQLite.
package main

func main() {}
