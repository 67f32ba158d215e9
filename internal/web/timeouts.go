package web

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// timeouts.go: how long a request body may take to arrive (issue 22, item
// 6). http.Server's ReadTimeout would also cut the long-lived requests
// (WebSocket, SockJS streaming and polling) and, once a body has been
// read, cancels the request's context when it passes; so the deadline is
// set per request instead, only while a request's body is being read, and
// taken off as the body ends. A request without a body gets none: its
// headers had their own deadline (ReadHeaderTimeout), and the long-lived
// requests have no body.

// BodyTimeouts says how long request bodies may take.
type BodyTimeouts struct {
	// Body is the most a request body may take to arrive in full; an
	// upload gets longer as it goes (UploadMinRate).
	Body time.Duration
	// UploadMinRate, bytes a second: an upload (IsUpload) may take Body
	// plus its size at this rate, so a large file on a slow network gets
	// there while a body trickled a byte at a time does not.
	UploadMinRate int64
	IsUpload      func(*http.Request) bool
	// Write is the most a request with a body, not an upload, may take
	// until its response is written (an API call's JSON: never a download
	// or a stream); 0: no limit.
	Write time.Duration
}

// LimitBodyTime sets the read deadline of a request with a body to o.Body
// from now (an upload's moves on as its bytes arrive), and the write
// deadline to o.Write; both come off when the body ends and when the
// handler returns. A body that does not arrive in time fails the handler's
// read (400), and the server closes the connection.
func LimitBodyTime(next http.Handler, o BodyTimeouts) http.Handler {
	if o.Body <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		start := time.Now()
		if err := rc.SetReadDeadline(start.Add(o.Body)); err != nil {
			next.ServeHTTP(w, r) // not a connection of ours (tests' recorders)
			return
		}
		b := &deadlineBody{ReadCloser: r.Body, rc: rc, start: start, limit: o.Body}
		upload := o.IsUpload != nil && o.IsUpload(r)
		if upload {
			b.rate = o.UploadMinRate
		}
		r.Body = b
		if o.Write > 0 && !upload { // an upload's handler runs as long as its body
			rc.SetWriteDeadline(start.Add(o.Write))
			defer rc.SetWriteDeadline(time.Time{}) // the next request on this connection may be a stream
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody is a request body that keeps its connection's read
// deadline: moved on with each read of an upload, taken off at its end.
type deadlineBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	limit time.Duration
	rate  int64 // bytes a second an upload must average; 0: not an upload
	n     int64 // bytes read so far
	ended bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	switch {
	case b.ended:
	case errors.Is(err, io.EOF):
		// Read in full: the server now watches the connection for the
		// client going away, and a deadline would end the request.
		b.ended = true
		b.rc.SetReadDeadline(time.Time{})
	case err == nil && b.rate > 0 && n > 0:
		b.rc.SetReadDeadline(b.start.Add(b.limit + time.Duration(b.n*int64(time.Second)/b.rate)))
	}
	return n, err
}
