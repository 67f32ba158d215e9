package sockjs

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"stompbox/internal/sockjsframe"
	"stompbox/internal/transport"
	"strings"
	"time"
)

// sockjsReceiverKind describes one receiving HTTP transport: how its
// response starts and how it wraps each frame (sockjs-protocol 0.3,
// sections XhrPolling, XhrStreaming, EventSource, HtmlFile, JsonPolling).
type sockjsReceiverKind struct {
	transport   string                                    // connInfo.Transport
	contentType string                                    // of the response
	streaming   bool                                      // many frames per response, until ResponseLimit
	callback    bool                                      // needs a valid "c" query parameter
	cors        bool                                      // an XHR transport: CORS headers
	prelude     func(callback string) []byte              // written before the first frame; nil for none
	wrap        func(dst, frame []byte, cb string) []byte // appends frame in the transport's envelope
	line        bool                                      // the envelope is wrapSockJSLine's: the frame and a newline
}

// sockjsReceiverKinds is a read-only table of the receiving transports by URL suffix.
var sockjsReceiverKinds = map[string]*sockjsReceiverKind{
	"xhr": {
		transport:   "sockjs-xhr",
		contentType: "application/javascript; charset=UTF-8",
		cors:        true,
		wrap:        wrapSockJSLine,
		line:        true,
	},
	"xhr_streaming": {
		transport:   "sockjs-xhr-streaming",
		contentType: "application/javascript; charset=UTF-8",
		streaming:   true,
		cors:        true,
		prelude: func(string) []byte {
			return append([]byte(strings.Repeat("h", sockjsXHRStreamingPrelude)), '\n')
		},
		wrap: wrapSockJSLine,
		line: true,
	},
	"eventsource": {
		transport:   "sockjs-eventsource",
		contentType: "text/event-stream",
		streaming:   true,
		// A leading empty line works around an old Opera bug.
		prelude: func(string) []byte { return []byte("\r\n") },
		wrap: func(dst, frame []byte, _ string) []byte {
			dst = append(dst, "data: "...)
			dst = append(dst, frame...)
			return append(dst, "\r\n\r\n"...)
		},
	},
	"htmlfile": {
		transport:   "sockjs-htmlfile",
		contentType: "text/html; charset=UTF-8",
		streaming:   true,
		callback:    true,
		prelude: func(cb string) []byte {
			p := fmt.Appendf(nil, sockjsHTMLFileTemplate, cb)
			if n := sockjsHTMLFilePadding - len(p); n > 0 {
				p = append(p, strings.Repeat(" ", n)...)
			}
			return append(p, "\r\n\r\n"...)
		},
		wrap: func(dst, frame []byte, _ string) []byte {
			dst = append(dst, "<script>\np("...)
			dst = sockjsframe.AppendString(dst, frame, true)
			return append(dst, ");\n</script>\r\n"...)
		},
	},
	"jsonp": {
		transport:   "sockjs-jsonp",
		contentType: "application/javascript; charset=UTF-8",
		callback:    true,
		wrap: func(dst, frame []byte, cb string) []byte {
			// The leading comment defeats the Rosetta Flash JSONP attack.
			dst = append(dst, "/**/"...)
			dst = append(dst, cb...)
			dst = append(dst, '(')
			dst = sockjsframe.AppendString(dst, frame, true)
			return append(dst, ");\r\n"...)
		},
	},
}

func wrapSockJSLine(dst, frame []byte, _ string) []byte {
	dst = append(dst, frame...)
	return append(dst, '\n')
}

// sockjsHTMLFileTemplate starts the htmlfile response; %s is the validated
// callback name.
const sockjsHTMLFileTemplate = `<!doctype html>
<html><head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
</head><body><h2>Don't panic!</h2>
  <script>
    document.domain = document.domain;
    var c = parent.%s;
    c.start();
    function p(d) {c.message(d);};
    window.onload = function() {c.stop();};
  </script>`

// validSockJSCallback reports whether cb matches ^[a-zA-Z0-9_.]+$: it is
// written into a script, so nothing else may pass.
func validSockJSCallback(cb string) bool {
	if cb == "" {
		return false
	}
	for i := 0; i < len(cb); i++ {
		c := cb[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// sockjsResponse writes frames of one receiving response: each write has a
// deadline and is flushed at once.
type sockjsResponse struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	kind     *sockjsReceiverKind
	callback string
	sent     int    // frame bytes written after the prelude, for ResponseLimit
	buf      []byte // reused envelope buffer
}

func (r *sockjsResponse) writeRaw(p []byte) error {
	if err := r.rc.SetWriteDeadline(time.Now().Add(sockjsWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := r.w.Write(p); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	if err := r.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("flush frame: %w", err)
	}
	return nil
}

func (r *sockjsResponse) writeFrame(frame []byte) error {
	r.buf = r.kind.wrap(r.buf[:0], frame, r.callback)
	r.sent += len(r.buf)
	return r.writeRaw(r.buf)
}

// serveReceiver serves a receiving request: it creates the session if
// needed, attaches to it and writes frames until the response is done
// (polling: one frame; streaming: ResponseLimit bytes or the close frame).
func (s *Server) serveReceiver(w http.ResponseWriter, r *http.Request, id string, kind *sockjsReceiverKind) {
	var callback string
	if kind.callback {
		callback = r.URL.Query().Get("c")
		if callback == "" {
			http.Error(w, `"callback" parameter required`, http.StatusInternalServerError)
			return
		}
		if !validSockJSCallback(callback) {
			http.Error(w, `invalid "callback" parameter`, http.StatusInternalServerError)
			return
		}
	}
	info := transport.Info{Transport: kind.transport, Remote: r.RemoteAddr}
	info.User, info.Login = s.Opts.identify(r)
	rcv := &sockjsReceiver{ctx: r.Context()}
	var (
		sess       *sockjsSession
		created    bool
		res        attachResult
		closeFrame []byte
	)
	for waited := false; ; {
		var (
			err  error
			busy <-chan struct{}
		)
		sess, created, err = s.session(id, rcv, info)
		if err != nil {
			http.Error(w, "service unavailable", http.StatusServiceUnavailable)
			return
		}
		if created {
			res = attachOK
			break
		}
		res, closeFrame, busy = sess.attach(rcv)
		if res == attachGone {
			s.removeSession(sess)
			continue
		}
		if res == attachBusy && !waited {
			// The receiver in the way may belong to a client that has
			// just gone away and reconnected: its FIN can be in the
			// kernel while the server has not read it yet. Give it
			// sockjsBusyGrace to show before answering 2010, so an
			// abort followed by a new request is seen in order
			// (HandlingClose.test_abort_* in the suite).
			waited = true
			grace := time.NewTimer(sockjsBusyGrace)
			select {
			case <-busy:
				grace.Stop()
				continue
			case <-grace.C:
			case <-r.Context().Done():
				grace.Stop()
				return
			}
			continue
		}
		break
	}

	h := w.Header()
	h.Set("Content-Type", kind.contentType)
	setSockJSNoCache(h)
	if kind.cors {
		setSockJSCORS(h, r)
	}
	if kind.streaming {
		h.Set("X-Accel-Buffering", "no")
	}
	s.setCookie(w, r)
	w.WriteHeader(http.StatusOK)

	resp := &sockjsResponse{w: w, rc: http.NewResponseController(w), kind: kind, callback: callback}
	// The server writes the end of the response after we return: give it a
	// fresh deadline, not one that expired while we waited for messages.
	defer func() { _ = resp.rc.SetWriteDeadline(time.Now().Add(sockjsWriteTimeout)) }()
	var err error
	if kind.prelude != nil {
		err = resp.writeRaw(kind.prelude(callback))
	}
	switch res {
	case attachBusy:
		if err == nil {
			_ = resp.writeFrame(sockjsframe.CloseFrame(sockjsframe.CodeAnotherConnection, sockjsframe.ReasonAnotherConnection))
		}
		return
	case attachClosed:
		if err == nil {
			_ = resp.writeFrame(closeFrame)
		}
		return
	}
	if err != nil {
		sess.log.Debug("sockjs receiver write", "err", err)
		sess.interrupt(rcv)
		return
	}
	if created && !kind.streaming {
		// Detach before the last write: once the client has the frame
		// it may send its next poll before this handler has returned.
		sess.detach(rcv)
		if err := resp.writeFrame(sockjsframe.OpenFrame); err != nil {
			sess.fail(err)
		}
		return
	}
	if created {
		if err := resp.writeFrame(sockjsframe.OpenFrame); err != nil {
			sess.log.Debug("sockjs receiver write", "err", err)
			sess.interrupt(rcv)
			return
		}
	}
	s.receive(sess, rcv, resp)
}

// receive runs an attached receiver until its response is complete. The
// receiver detaches before writing its last frame (see serveReceiver); a
// failed write of taken messages closes the session, since they are lost.
func (s *Server) receive(sess *sockjsSession, rcv *sockjsReceiver, resp *sockjsResponse) {
	heartbeat := time.NewTimer(s.Opts.Heartbeat)
	defer heartbeat.Stop()
	for {
		array, closeFrame := sess.take()
		var frame []byte
		switch {
		case array != nil:
			frame = array
		case closeFrame != nil:
			frame = closeFrame
		default:
			select {
			case <-sess.wake:
				continue
			case <-heartbeat.C:
				frame = sockjsframe.HeartbeatFrame
			case <-rcv.ctx.Done():
				sess.interrupt(rcv)
				return
			}
		}
		out := frame
		if resp.kind.line && array != nil {
			out = append(array, '\n') // the array is ours: no copy into an envelope
			array = out
		} else {
			resp.buf = resp.kind.wrap(resp.buf[:0], frame, resp.callback)
			out = resp.buf
		}
		last := closeFrame != nil || !resp.kind.streaming || resp.sent+len(out) >= s.Opts.ResponseLimit
		if last {
			sess.detach(rcv) // past ResponseLimit the client reconnects with a fresh response
		}
		resp.sent += len(out)
		err := resp.writeRaw(out)
		if array != nil {
			sess.recycle(array)
		}
		if err != nil {
			sess.log.Debug("sockjs receiver write", "err", err)
			if array != nil || last {
				sess.fail(err)
			} else {
				sess.interrupt(rcv)
			}
			return
		}
		if last {
			return
		}
		heartbeat.Reset(s.Opts.Heartbeat)
	}
}

// serveSend serves xhr_send (204) and jsonp_send (200 "ok"): it decodes the
// messages and hands them to the session's application.
func (s *Server) serveSend(w http.ResponseWriter, r *http.Request, id string, jsonp bool) {
	h := w.Header()
	if !jsonp {
		setSockJSCORS(h, r)
	}
	setSockJSNoCache(h)
	s.setCookie(w, r)
	sess, _, err := s.session(id, nil, transport.Info{})
	if err != nil {
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	if sess == nil {
		http.NotFound(w, r)
		return
	}
	release := sess.acquireSender(r.Context())
	if release == nil {
		return // the client is gone
	}
	defer release()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, sockjsMaxMessageBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "Payload too large.", http.StatusRequestEntityTooLarge)
		}
		return // otherwise the client is gone
	}
	if jsonp {
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" {
			form, err := url.ParseQuery(string(body))
			if err != nil {
				http.Error(w, "Broken JSON encoding.", http.StatusInternalServerError)
				return
			}
			body = []byte(form.Get("d"))
		}
	}
	msgs, err := sockjsframe.DecodeMessages(body)
	switch {
	case errors.Is(err, sockjsframe.ErrPayloadExpected):
		http.Error(w, "Payload expected.", http.StatusInternalServerError)
		return
	case err != nil:
		http.Error(w, "Broken JSON encoding.", http.StatusInternalServerError)
		return
	}
	if err := sess.deliver(r.Context(), msgs); err != nil && !errors.Is(err, transport.ErrClosed) {
		return // the client is gone
	}
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	if jsonp {
		_, _ = w.Write([]byte("ok"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
