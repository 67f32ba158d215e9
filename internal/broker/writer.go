package broker

import (
	"context"
	"slices"
	"stompbox/internal/sockjsframe"
	"stompbox/internal/stomp"
	"stompbox/internal/transport"
	"strconv"
	"sync"
	"time"
)

// writer.go: a session's writer: the goroutine that drains the
// outbox in batches, encodes them (STOMP bytes, or JSON string content for
// SockJS), writes them with a deadline, and sends heart-beats.

// startWriter starts a writer goroutine. The outbox calls it, under its
// lock, when something is queued and no writer runs; so there is never more
// than one, and the Add happens before Serve's final Wait.
func (s *Session) startWriter() {
	s.wg.Add(1)
	go s.writer()
}

// heartBeatDue runs on the heart-beat timer's goroutine: it asks for a
// writer, which sends an EOL unless it has frames to write anyway.
func (s *Session) heartBeatDue() {
	s.out.pushHeartBeat()
}

// writeBatch is a writer's scratch space, pooled so that an idle
// connection holds none and a burst does not allocate it afresh.
type writeBatch struct {
	items []outItem
	raw   []byte // JSON mode: one frame's bytes before escaping
	buf   []byte
	one   [1][]byte // what goes out, as the batch's only element
}

// writeBatches holds writeBatch values between bursts. It is a cache of
// scratch memory shared by all sessions, not state.
var writeBatches = sync.Pool{New: func() any { return new(writeBatch) }}

// maxKeptBatch is the largest batch buffer returned to writeBatches: a
// burst's big buffer is left to the garbage collector.
const maxKeptBatch = 256 << 10

// maxKeptItems is the largest queue array returned to writeBatches (the
// arrays go back and forth between outbox and writer; see outbox.take).
const maxKeptItems = 256

// writeLoop is the session's only writer, started by the outbox when it
// has something to write (startWriter). It drains the outbox in batches,
// and returns when it finds the outbox empty: the next push starts a new
// writer. When the outbox is closed it writes what is left and the final
// frame, then closes the transport and returns for good. Every write has a
// deadline.
func (s *Session) writeLoop() {
	defer s.wg.Done()
	wb := writeBatches.Get().(*writeBatch)
	defer func() {
		clear(wb.items[:cap(wb.items)])
		wb.items, wb.one[0] = wb.items[:0], nil
		if cap(wb.items) > maxKeptItems {
			wb.items = nil
		}
		if cap(wb.buf) > maxKeptBatch {
			wb.buf = nil
		}
		if cap(wb.raw) > maxKeptBatch {
			wb.raw = nil
		}
		writeBatches.Put(wb)
	}()
	if s.ver == 0 {
		s.ver = stomp.V12
	}
	for {
		var t taken
		wb.items, t = s.out.take(wb.items[:0])
		if !t.more {
			return
		}
		items := wb.items
		var sent sentFrames
		buf := slices.Grow(wb.buf[:0], batchSize(items, s.ver)) // one allocation per burst, not a growslice per frame
		for i := range items {
			if items[i].heartBeat > 0 {
				s.hbEvery = items[i].heartBeat
			}
			if items[i].ver > 0 {
				s.ver = items[i].ver
			}
			// A topic message queued before an UNSUBSCRIBE is dropped: delivery
			// stops at once. Queue messages are still written: an auto-ack one
			// has nobody else to go to (unacked ones were already requeued).
			if it := &items[i]; it.sub != nil && it.sub.q == nil && it.sub.removed.Load() {
				items[i] = outItem{}
				continue
			}
			if it := &items[i]; it.frame != nil {
				sent.add(it.frame.Command)
			} else {
				sent[cmdMessage]++
			}
			if s.json != nil {
				buf = s.encodeJSON(buf, &items[i], s.ver, wb)
			} else {
				buf = s.encode(buf, &items[i], s.ver)
			}
			items[i] = outItem{}
		}
		if t.final != nil {
			sent.add(t.final.Command)
			if s.json != nil {
				wb.raw = stomp.AppendFrame(wb.raw[:0], t.final, s.ver)
				buf = sockjsframe.AppendContent(buf, wb.raw, false)
			} else {
				buf = stomp.AppendFrame(buf, t.final, s.ver)
			}
		}
		wb.buf = buf
		// Every frame was appended to buf, so buf holds them back to back
		// (an append that moves it copies what came before): the batch goes
		// to the transport as one piece, which it writes as one WebSocket
		// message, one TLS record or one SockJS message. (Several frames in
		// one message is STOMP-over-WebSocket practice; stomp.js and Spring
		// split them.)
		out := buf
		if len(out) == 0 && t.heartBeat && !t.closed {
			// STOMP 1.2 §Heart-beating: an EOL when nothing else went out.
			out = heartBeatEOL
			if s.json != nil {
				out = heartBeatEOLJSON
			}
		}
		if len(out) > 0 {
			wb.one[0] = out
			// Counted before the write, so that a frame a client has
			// read is counted; a write that fails ends the connection,
			// and its one batch is counted all the same.
			s.b.stats.addSent(&sent)
			if err := s.write(wb.one[:]); err != nil {
				s.abort(err)
				return
			}
		}
		if t.closed {
			if s.hb != nil {
				s.hb.Stop()
			}
			reason := "bye"
			code := t.code
			if code == 0 {
				code = transport.CloseNormal
			}
			if t.final != nil {
				reason = t.final.Value(stomp.HdrMessage)
			}
			s.t.Close(code, reason)
			return
		}
		if s.hbEvery > 0 && len(out) > 0 {
			if s.hb == nil {
				s.hb = time.AfterFunc(s.hbEvery, s.heartBeatDue)
			} else {
				s.hb.Reset(s.hbEvery)
			}
		}
	}
}

// heartBeatEOL is the server's heart-beat; heartBeatEOLJSON the same
// escaped as JSON string content.
var (
	heartBeatEOL     = []byte{'\n'}
	heartBeatEOLJSON = []byte(`\n`)
)

// batchSize estimates the encoded size of items: the shared MESSAGE tails
// (encoded here once, and cached for the other subscribers) plus a bound
// on the per-delivery headers.
func batchSize(items []outItem, v stomp.Version) int {
	n := 0
	for i := range items {
		if m := items[i].msg; m != nil {
			n += len(m.encoded(v)) + 64 + len(items[i].sub.id) + 2*len(items[i].sub.id)
		} else {
			n += 256 + len(items[i].frame.Body)
		}
	}
	return n
}

// write sends parts with the write deadline. In JSON mode parts is one
// piece of escaped content.
func (s *Session) write(parts [][]byte) error {
	if s.json != nil {
		return s.json.WriteJSON(time.Now().Add(s.b.cfg.WriteTimeout), parts[0])
	}
	if w, ok := s.t.(transport.DeadlineWriter); ok {
		return w.WriteBy(time.Now().Add(s.b.cfg.WriteTimeout), parts)
	}
	// Not derived from s.ctx: the final ERROR is written after the session
	// was cancelled. The deadline bounds it.
	ctx, cancel := context.WithTimeout(context.Background(), s.b.cfg.WriteTimeout)
	defer cancel()
	return s.t.Write(ctx, parts)
}

// abort ends a session whose transport failed: nothing more can be written.
// Only the writer calls it; it leaves the outbox closed with its writer
// marked as running, so no other writer ever starts.
func (s *Session) abort(err error) {
	s.log.Debug("write failed", "err", err)
	if s.hb != nil {
		s.hb.Stop()
	}
	s.failed.Store(true)
	s.out.closeWith(nil, transport.CloseInternal)
	s.t.Close(transport.CloseInternal, "write failed")
	s.cancel()
}

// encode appends the wire form of one queued item.
func (s *Session) encode(buf []byte, it *outItem, v stomp.Version) []byte {
	if it.frame != nil {
		return stomp.AppendFrame(buf, it.frame, v)
	}
	return append(s.encodeHead(buf, it, v), it.msg.encoded(v)...)
}

// encodeJSON appends one queued item escaped as JSON string content (see
// transport.JSONWriter), using wb.raw as scratch: a MESSAGE's own headers are
// escaped here, its shared tail comes escaped from the message.
func (s *Session) encodeJSON(buf []byte, it *outItem, v stomp.Version, wb *writeBatch) []byte {
	if it.frame != nil {
		wb.raw = stomp.AppendFrame(wb.raw[:0], it.frame, v)
		return sockjsframe.AppendContent(buf, wb.raw, false)
	}
	wb.raw = s.encodeHead(wb.raw[:0], it, v)
	buf = sockjsframe.AppendContent(buf, wb.raw, false)
	return append(buf, it.msg.encodedJSON(v)...)
}

// encodeHead appends the command and per-delivery headers of a MESSAGE:
// what differs from one subscriber to the next.
func (s *Session) encodeHead(buf []byte, it *outItem, v stomp.Version) []byte {
	buf = append(buf, "MESSAGE\nsubscription:"...)
	buf = stomp.AppendEscaped(buf, it.sub.id, v)
	buf = append(buf, "\nmessage-id:"...)
	buf = append(buf, s.idStr...)
	buf = append(buf, '-')
	buf = strconv.AppendUint(buf, it.seq, 10)
	buf = append(buf, '\n')
	if v == stomp.V12 && it.sub.ack != ackAuto {
		buf = append(buf, "ack:"...)
		buf = append(buf, s.idStr...)
		buf = append(buf, '-')
		buf = strconv.AppendUint(buf, it.seq, 10)
		buf = append(buf, '\n')
	}
	return buf
}
