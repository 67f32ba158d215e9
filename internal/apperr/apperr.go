package apperr

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Error kinds. Every error the chat, auth and store code returns to a caller
// either wraps one of these kinds (through an Error) or is internal.
// HTTPStatus and Message turn them into responses; the STOMP glue uses
// Message for ERROR frames. Match with errors.Is.
var (
	ErrBadRequest   = errors.New("bad request")       // 400: malformed or invalid input
	ErrUnauthorized = errors.New("unauthorized")      // 401: no or bad credentials
	ErrForbidden    = errors.New("forbidden")         // 403: authenticated but not allowed
	ErrNotFound     = errors.New("not found")         // 404: no such room, user, message
	ErrConflict     = errors.New("conflict")          // 409: name taken, already a member
	ErrTooLarge     = errors.New("too large")         // 413: message or body over its limit
	ErrRateLimited  = errors.New("too many requests") // 429: throttled (login attempts)
	ErrBusy         = errors.New("busy")              // 503: momentarily saturated (password checks); retry later
)

// ErrNoSpace is the kind of a refusal because the disk is below a floor or
// all uploads together are at their cap (issue 22): 507, and like ErrBusy
// a refusal rather than the client's fault or ours.
var ErrNoSpace = errors.New("insufficient storage")

// Error is an error whose text is safe to show a client. It wraps its
// kind, so errors.Is(err, ErrForbidden) holds for every forbidden error.
type Error struct {
	kind error
	msg  string
}

func (e *Error) Error() string { return e.msg }
func (e *Error) Unwrap() error { return e.kind }

// New returns an error of kind whose message is shown to clients.
func New(kind error, msg string) error { return &Error{kind: kind, msg: msg} }

// Specific sentinels, all publicErrors, for the cases callers test for.
var (
	ErrBadJSON         = New(ErrBadRequest, "malformed JSON")
	ErrBadMessageType  = New(ErrBadRequest, "type must be ENTER, TALK or LEAVE")
	ErrEmptyMessage    = New(ErrBadRequest, "empty message")
	ErrMessageTooLong  = New(ErrTooLarge, "message too long")
	ErrUnknownRoom     = New(ErrNotFound, "unknown room")
	ErrUnknownUser     = New(ErrNotFound, "unknown user")
	ErrNotMember       = New(ErrForbidden, "not a member of this room")
	ErrRoomArchived    = New(ErrForbidden, "room is archived")
	ErrNotAdmin        = New(ErrForbidden, "administrators only")
	ErrBadCredentials  = New(ErrUnauthorized, "wrong username or password")
	ErrNotLoggedIn     = New(ErrUnauthorized, "login required")
	ErrNameTaken       = New(ErrConflict, "name already taken")
	ErrRegistrationOff = New(ErrForbidden, "registration needs an invite")
	ErrBadInvite       = New(ErrForbidden, "invalid or used invite code")
	ErrGuestsDisabled  = New(ErrForbidden, "guest access is disabled")
	ErrTooManyAttempts = New(ErrRateLimited, "too many attempts, try again later")

	// Changes to messages (issue 17: edit, delete, reply, react).
	ErrUnknownMessage   = New(ErrNotFound, "unknown message")
	ErrNotAuthor        = New(ErrForbidden, "only the author can edit a message")
	ErrCannotDelete     = New(ErrForbidden, "only the author, the room's owner or an administrator can delete a message")
	ErrEditTooLate      = New(ErrForbidden, "too late to edit this message")
	ErrMessageDeleted   = New(ErrConflict, "message was deleted")
	ErrNotChangeable    = New(ErrBadRequest, "only chat messages can be changed")
	ErrBadReply         = New(ErrBadRequest, "replyTo must be a message of this room")
	ErrBadEmoji         = New(ErrBadRequest, "a reaction is one emoji of at most 32 bytes")
	ErrTooManyReactions = New(ErrConflict, "too many reactions from you on this message")
)

// Message is the text a client may see for err: the Error's
// message, or "internal error" for anything else (whose details belong in
// the server log, never on the wire).
func Message(err error) string {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.msg
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return "request body too large"
	}
	return "internal error"
}

// HTTPStatus maps err to an HTTP status code. It is the one place that
// decides; api.go writes {"error": publicMessage(err)} with it.
func HTTPStatus(err error) int {
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &mbe), errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrBusy):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrNoSpace):
		return http.StatusInsufficientStorage
	default:
		return http.StatusInternalServerError
	}
}

// IsClientError reports whether err is the client's fault (a Error or
// an oversized body) or a momentary refusal (server busy) rather than our
// fault; callers show the former's text and log it at Warn, and log the
// latter at Error.
func IsClientError(err error) bool {
	return HTTPStatus(err) < 500 || errors.Is(err, ErrBusy) || errors.Is(err, ErrNoSpace)
}

// RefusedSend is the JSON a refused STOMP SEND gets on /user/queue/errors
// (see the report to the lead: the connection stays up, unlike an ERROR
// frame, which STOMP 1.2 §ERROR requires to close it).
type RefusedSend struct {
	Error       string `json:"error"`                 // Message(err): safe to show
	Status      int    `json:"status"`                // HTTPStatus(err): lets clients branch without parsing text
	Destination string `json:"destination,omitempty"` // the SEND's destination
	Receipt     string `json:"receipt,omitempty"`     // the SEND's receipt header, so a client can match it
}

// RefusedSendJSON builds the /user/queue/errors body for a SEND refused with err.
func RefusedSendJSON(err error, destination, receipt string) []byte {
	b, _ := json.Marshal(RefusedSend{Error: Message(err), Status: HTTPStatus(err), Destination: destination, Receipt: receipt})
	return b
}
