package main

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Error kinds. Every error the chat, auth and store code returns to a caller
// either wraps one of these kinds (through a publicError) or is internal.
// httpStatus and clientMessage turn them into responses; the lead's STOMP
// code uses clientMessage for ERROR frames. Match with errors.Is.
var (
	errBadRequest   = errors.New("bad request")       // 400: malformed or invalid input
	errUnauthorized = errors.New("unauthorized")      // 401: no or bad credentials
	errForbidden    = errors.New("forbidden")         // 403: authenticated but not allowed
	errNotFound     = errors.New("not found")         // 404: no such room, user, message
	errConflict     = errors.New("conflict")          // 409: name taken, already a member
	errTooLarge     = errors.New("too large")         // 413: message or body over its limit
	errRateLimited  = errors.New("too many requests") // 429: throttled (login attempts)
)

// publicError is an error whose text is safe to show a client. It wraps its
// kind, so errors.Is(err, errForbidden) holds for every forbidden error.
type publicError struct {
	kind error
	msg  string
}

func (e *publicError) Error() string { return e.msg }
func (e *publicError) Unwrap() error { return e.kind }

// newPublicError returns an error of kind whose message is shown to clients.
func newPublicError(kind error, msg string) error { return &publicError{kind: kind, msg: msg} }

// Specific sentinels, all publicErrors, for the cases callers test for.
var (
	errBadJSON         = newPublicError(errBadRequest, "malformed JSON")
	errBadMessageType  = newPublicError(errBadRequest, "type must be ENTER, TALK or LEAVE")
	errEmptyMessage    = newPublicError(errBadRequest, "empty message")
	errMessageTooLong  = newPublicError(errTooLarge, "message too long")
	errUnknownRoom     = newPublicError(errNotFound, "unknown room")
	errUnknownUser     = newPublicError(errNotFound, "unknown user")
	errNotMember       = newPublicError(errForbidden, "not a member of this room")
	errRoomArchived    = newPublicError(errForbidden, "room is archived")
	errNotAdmin        = newPublicError(errForbidden, "administrators only")
	errBadCredentials  = newPublicError(errUnauthorized, "wrong username or password")
	errNotLoggedIn     = newPublicError(errUnauthorized, "login required")
	errNameTaken       = newPublicError(errConflict, "name already taken")
	errRegistrationOff = newPublicError(errForbidden, "registration needs an invite")
	errBadInvite       = newPublicError(errForbidden, "invalid or used invite code")
	errGuestsDisabled  = newPublicError(errForbidden, "guest access is disabled")
	errTooManyAttempts = newPublicError(errRateLimited, "too many attempts, try again later")
)

// clientMessage is the text a client may see for err: the publicError's
// message, or "internal error" for anything else (whose details belong in
// the server log, never on the wire).
func clientMessage(err error) string {
	var pe *publicError
	if errors.As(err, &pe) {
		return pe.msg
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return "request body too large"
	}
	return "internal error"
}

// httpStatus maps err to an HTTP status code. It is the one place that
// decides; api.go writes {"error": clientMessage(err)} with it.
func httpStatus(err error) int {
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &mbe), errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errForbidden):
		return http.StatusForbidden
	case errors.Is(err, errNotFound):
		return http.StatusNotFound
	case errors.Is(err, errConflict):
		return http.StatusConflict
	case errors.Is(err, errRateLimited):
		return http.StatusTooManyRequests
	default:
		return http.StatusInternalServerError
	}
}

// isClientError reports whether err is the client's fault (a publicError or
// an oversized body) rather than ours; callers log the former at Warn and
// the latter at Error.
func isClientError(err error) bool { return httpStatus(err) < 500 }

// refusedSend is the JSON a refused STOMP SEND gets on /user/queue/errors
// (see the report to the lead: the connection stays up, unlike an ERROR
// frame, which STOMP 1.2 §ERROR requires to close it).
type refusedSend struct {
	Error       string `json:"error"`                 // clientMessage(err): safe to show
	Status      int    `json:"status"`                // httpStatus(err): lets clients branch without parsing text
	Destination string `json:"destination,omitempty"` // the SEND's destination
	Receipt     string `json:"receipt,omitempty"`     // the SEND's receipt header, so a client can match it
}

// refusedSendJSON builds the /user/queue/errors body for a SEND refused with err.
func refusedSendJSON(err error, destination, receipt string) []byte {
	b, _ := json.Marshal(refusedSend{Error: clientMessage(err), Status: httpStatus(err), Destination: destination, Receipt: receipt})
	return b
}
