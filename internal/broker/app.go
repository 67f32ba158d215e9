package broker

import (
	"context"
	"errors"
	"stompbox/internal/stomp"
	"strings"
)

// AppHandler handles a SEND to an application destination (/pub/..., /app/...),
// the analog of Spring's @MessageMapping. It runs on the sender's reader
// goroutine, so a session's SENDs are handled in order and a RECEIPT is sent
// only after the handler returns. Returning an error refuses the SEND with
// an ERROR frame (protocol errors show their text; others "internal error").
type AppHandler func(ctx context.Context, req *AppRequest) error

// AppRequest is one SEND to an application destination.
type AppRequest struct {
	Broker      *Broker
	Session     *Session
	Frame       *stomp.Frame
	Destination string            // as sent, e.g. /pub/chat/message
	Path        string            // without the application prefix, e.g. /chat/message
	Params      map[string]string // {name} segments of the route pattern
}

// errSendRefused is returned by a handler that refused a SEND but told the
// sender why on a user destination (see Refuse): the connection stays open
// and no RECEIPT is sent, because nothing happened.
var errSendRefused = errors.New("send refused")

// Refuse answers a refused SEND. A sender subscribed to errorsDest (such as
// /user/queue/errors) gets body there and keeps its connection; any other
// sender gets an ERROR frame for err and is disconnected, as STOMP 1.2 §ERROR
// prescribes. The handler returns what Refuse returns.
func (r *AppRequest) Refuse(err error, errorsDest string, body []byte) error {
	if r.Session.hasSubscription(errorsDest) {
		r.Reply(errorsDest, []stomp.Header{{Key: stomp.HdrContentType, Value: "application/json"}}, body)
		return errSendRefused
	}
	return err
}

// Principal returns what the Authenticator attached to the sender's session.
func (r *AppRequest) Principal() any { return r.Session.Principal }

// User returns the name the sender authenticated as, "" if anonymous.
func (r *AppRequest) User() string { return r.Session.User }

// Reply sends a MESSAGE to the sender's own subscriptions of a user
// destination, such as /user/queue/errors (Spring's @SendToUser).
func (r *AppRequest) Reply(dest string, headers []stomp.Header, body []byte) {
	r.Broker.sendToSession(r.Session, dest, headers, body)
}

// appRoute is one registered path pattern.
type appRoute struct {
	segments []string // "{name}" segments match any one segment
	handler  AppHandler
}

// Handle registers h for SENDs whose destination, without the application
// prefix, matches pattern (e.g. "/chat/room/{roomId}"). Register before serving.
func (b *Broker) Handle(pattern string, h AppHandler) {
	b.routes = append(b.routes, appRoute{segments: strings.Split(strings.Trim(pattern, "/"), "/"), handler: h})
}

// dispatchApp finds the handler for path and runs it.
func (b *Broker) dispatchApp(s *Session, f *stomp.Frame, dest, path string) error {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for _, r := range b.routes {
		params, ok := matchRoute(r.segments, segs)
		if !ok {
			continue
		}
		return r.handler(s.ctx, &AppRequest{Broker: b, Session: s, Frame: f, Destination: dest, Path: path, Params: params})
	}
	return errNoHandler
}

func matchRoute(pattern, segs []string) (map[string]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var params map[string]string
	for i, p := range pattern {
		if len(p) > 2 && p[0] == '{' && p[len(p)-1] == '}' {
			if params == nil {
				params = make(map[string]string)
			}
			params[p[1:len(p)-1]] = segs[i]
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return params, true
}
