package main

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Error kinds. Every error the chat, auth and store code returns to a caller
// either wraps one of these kinds (through a publicError) or is internal.
// httpStatus and publicMessage turn them into responses; the lead's STOMP
// code uses publicMessage for ERROR frames. Match with errors.Is.
var (
	errKindBadRequest   = errors.New("bad request")       // 400: malformed or invalid input
	errKindUnauthorized = errors.New("unauthorized")      // 401: no or bad credentials
	errKindForbidden    = errors.New("forbidden")         // 403: authenticated but not allowed
	errKindNotFound     = errors.New("not found")         // 404: no such room, user, message
	errKindConflict     = errors.New("conflict")          // 409: name taken, already a member
	errKindTooLarge     = errors.New("too large")         // 413: message or body over its limit
	errKindRateLimited  = errors.New("too many requests") // 429: throttled (login attempts)
	errKindBusy         = errors.New("busy")              // 503: momentarily saturated (password checks); retry later
)

// publicError is an error whose text is safe to show a client. It wraps its
// kind, so errors.Is(err, errKindForbidden) holds for every forbidden error.
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
	errBadJSON         = newPublicError(errKindBadRequest, "malformed JSON")
	errBadMessageType  = newPublicError(errKindBadRequest, "type must be ENTER, TALK or LEAVE")
	errEmptyMessage    = newPublicError(errKindBadRequest, "empty message")
	errMessageTooLong  = newPublicError(errKindTooLarge, "message too long")
	errUnknownRoom     = newPublicError(errKindNotFound, "unknown room")
	errUnknownUser     = newPublicError(errKindNotFound, "unknown user")
	errNotMember       = newPublicError(errKindForbidden, "not a member of this room")
	errRoomArchived    = newPublicError(errKindForbidden, "room is archived")
	errNotAdmin        = newPublicError(errKindForbidden, "administrators only")
	errBadCredentials  = newPublicError(errKindUnauthorized, "wrong username or password")
	errNotLoggedIn     = newPublicError(errKindUnauthorized, "login required")
	errNameTaken       = newPublicError(errKindConflict, "name already taken")
	errRegistrationOff = newPublicError(errKindForbidden, "registration needs an invite")
	errBadInvite       = newPublicError(errKindForbidden, "invalid or used invite code")
	errGuestsDisabled  = newPublicError(errKindForbidden, "guest access is disabled")
	errTooManyAttempts = newPublicError(errKindRateLimited, "too many attempts, try again later")

	// Changes to messages (issue 17: edit, delete, reply, react).
	errUnknownMessage   = newPublicError(errKindNotFound, "unknown message")
	errNotAuthor        = newPublicError(errKindForbidden, "only the author can edit a message")
	errCannotDelete     = newPublicError(errKindForbidden, "only the author, the room's owner or an administrator can delete a message")
	errEditTooLate      = newPublicError(errKindForbidden, "too late to edit this message")
	errMessageDeleted   = newPublicError(errKindConflict, "message was deleted")
	errNotChangeable    = newPublicError(errKindBadRequest, "only chat messages can be changed")
	errBadReply         = newPublicError(errKindBadRequest, "replyTo must be a message of this room")
	errBadEmoji         = newPublicError(errKindBadRequest, "a reaction is one emoji of at most 32 bytes")
	errTooManyReactions = newPublicError(errKindConflict, "too many reactions from you on this message")
)

// publicMessage is the text a client may see for err: the publicError's
// message, or "internal error" for anything else (whose details belong in
// the server log, never on the wire).
func publicMessage(err error) string {
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
// decides; api.go writes {"error": publicMessage(err)} with it.
func httpStatus(err error) int {
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &mbe), errors.Is(err, errKindTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errKindBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, errKindUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errKindForbidden):
		return http.StatusForbidden
	case errors.Is(err, errKindNotFound):
		return http.StatusNotFound
	case errors.Is(err, errKindConflict):
		return http.StatusConflict
	case errors.Is(err, errKindRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, errKindBusy):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// isClientError reports whether err is the client's fault (a publicError or
// an oversized body) or a momentary refusal (server busy) rather than our
// fault; callers show the former's text and log it at Warn, and log the
// latter at Error.
func isClientError(err error) bool {
	return httpStatus(err) < 500 || errors.Is(err, errKindBusy)
}

// refusedSend is the JSON a refused STOMP SEND gets on /user/queue/errors
// (see the report to the lead: the connection stays up, unlike an ERROR
// frame, which STOMP 1.2 §ERROR requires to close it).
type refusedSend struct {
	Error       string `json:"error"`                 // publicMessage(err): safe to show
	Status      int    `json:"status"`                // httpStatus(err): lets clients branch without parsing text
	Destination string `json:"destination,omitempty"` // the SEND's destination
	Receipt     string `json:"receipt,omitempty"`     // the SEND's receipt header, so a client can match it
}

// refusedSendJSON builds the /user/queue/errors body for a SEND refused with err.
func refusedSendJSON(err error, destination, receipt string) []byte {
	b, _ := json.Marshal(refusedSend{Error: publicMessage(err), Status: httpStatus(err), Destination: destination, Receipt: receipt})
	return b
}
