// Package ratelimit owns the server's rate limits (Limiter, on token
// buckets): STOMP SENDs per connection and per user, STOMP connections per
// client address, and login and registration attempts per address.
//
// What it promises:
//   - A SEND over its rate is not refused but delayed: SendDelay says for
//     how long, and the connection's reader waits in Hold before it reads
//     on, so the client is slowed as TCP flow control slows a fast writer.
//     Nobody else waits, and Hold gives up as soon as the session ended.
//   - An HTTP message post draws from the same per-user bucket as the
//     user's SENDs, and is refused at once (HTTP 429) when it is empty.
//   - Every other method answers at once: the lock is held only for map
//     and arithmetic work. The bucket maps are bounded; idle buckets go
//     first.
//   - A nil *Limiter allows everything; a zero limit is off.
//
// It owns no interface. The broker knows a connection to it only as a key
// (its session). Of stompbox it imports only internal/apperr, for the
// refusal of an HTTP post (layout_test.go).
package ratelimit
