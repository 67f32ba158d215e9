// Package apperr owns the error words the application shows its clients:
// the kinds of error (bad request, unauthorized, forbidden, not found,
// conflict, too large, rate limited, busy), the errors built on them with
// New, and their two forms on the wire: an HTTP status with a JSON body
// {"error": "…"}, and the text of a STOMP ERROR frame or of a refused SEND
// on /user/queue/errors (RefusedSendJSON).
//
// What it promises: internal details never reach a client. Message gives
// an Error's own text and "internal error" for anything else; HTTPStatus
// is the one place that maps an error to a status. Both match with
// errors.Is and errors.As, so a wrapped error keeps its kind.
//
// It owns no interface. It is a leaf: it imports no package of stompbox
// (layout_test.go).
package apperr
