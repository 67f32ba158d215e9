// Package stomp is the STOMP 1.0, 1.1 and 1.2 codec: the commands and
// headers as the spec names them, frames, a push parser fed in chunks
// (Parser), the encoder (AppendFrame), header escaping, the negotiation
// of the version and of heart-beats, and the protocol errors a client may
// see (Error, whose text starts "stomp: ").
//
// What it promises:
//   - Every limit (frame size, header count, header line, content-length)
//     is checked before the memory for it is used.
//   - The parser copes with any chunk boundary: part of a frame, several
//     frames, heart-beat EOLs. A chunk of whole frames is parsed in place,
//     never copied, and a parser between frames holds no buffer.
//   - Escaping follows the version and the command: none in 1.0 nor in
//     CONNECT and CONNECTED, \r only from 1.2; an undefined escape is a
//     fatal error. A header value that cannot be escaped never forges a
//     header or a frame.
//   - ClientMessage shows a client only a protocol error's own words,
//     "internal error" for anything else.
//
// A Parser is not safe for concurrent use: each session owns one.
//
// It owns no interface. It is a leaf: it imports no package of stompbox,
// so that the server and the load tool share it (layout_test.go).
package stomp
