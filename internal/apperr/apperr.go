package apperr

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Error kinds. Every error the chat, auth and store code returns to a caller
// either wraps one of these kinds (through an Error) or is internal.
// HTTPStatus and Message turn them into responses; the lead's STOMP
// code uses Message for ERROR frames. Match with errors.Is.
var (
	KindBadRequest   = errors.New("bad request")       // 400: malformed or invalid input
	KindUnauthorized = errors.New("unauthorized")      // 401: no or bad credentials
	KindForbidden    = errors.New("forbidden")         // 403: authenticated but not allowed
	KindNotFound     = errors.New("not found")         // 404: no such room, user, message
	KindConflict     = errors.New("conflict")          // 409: name taken, already a member
	KindTooLarge     = errors.New("too large")         // 413: message or body over its limit
	KindRateLimited  = errors.New("too many requests") // 429: throttled (login attempts)
	KindBusy         = errors.New("busy")              // 503: momentarily saturated (password checks); retry later
)

// Error is an error whose text is safe to show a client. It wraps its
// kind, so errors.Is(err, KindForbidden) holds for every forbidden error.
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
	ErrBadJSON         = New(KindBadRequest, "malformed JSON")
	ErrBadMessageType  = New(KindBadRequest, "type must be ENTER, TALK or LEAVE")
	ErrEmptyMessage    = New(KindBadRequest, "empty message")
	ErrMessageTooLong  = New(KindTooLarge, "message too long")
	ErrUnknownRoom     = New(KindNotFound, "unknown room")
	ErrUnknownUser     = New(KindNotFound, "unknown user")
	ErrNotMember       = New(KindForbidden, "not a member of this room")
	ErrRoomArchived    = New(KindForbidden, "room is archived")
	ErrNotAdmin        = New(KindForbidden, "administrators only")
	ErrBadCredentials  = New(KindUnauthorized, "wrong username or password")
	ErrNotLoggedIn     = New(KindUnauthorized, "login required")
	ErrNameTaken       = New(KindConflict, "name already taken")
	ErrRegistrationOff = New(KindForbidden, "registration needs an invite")
	ErrBadInvite       = New(KindForbidden, "invalid or used invite code")
	ErrGuestsDisabled  = New(KindForbidden, "guest access is disabled")
	ErrTooManyAttempts = New(KindRateLimited, "too many attempts, try again later")

	// Changes to messages (issue 17: edit, delete, reply, react).
	ErrUnknownMessage   = New(KindNotFound, "unknown message")
	ErrNotAuthor        = New(KindForbidden, "only the author can edit a message")
	ErrCannotDelete     = New(KindForbidden, "only the author, the room's owner or an administrator can delete a message")
	ErrEditTooLate      = New(KindForbidden, "too late to edit this message")
	ErrMessageDeleted   = New(KindConflict, "message was deleted")
	ErrNotChangeable    = New(KindBadRequest, "only chat messages can be changed")
	ErrBadReply         = New(KindBadRequest, "replyTo must be a message of this room")
	ErrBadEmoji         = New(KindBadRequest, "a reaction is one emoji of at most 32 bytes")
	ErrTooManyReactions = New(KindConflict, "too many reactions from you on this message")
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
	case errors.As(err, &mbe), errors.Is(err, KindTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, KindBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, KindUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, KindForbidden):
		return http.StatusForbidden
	case errors.Is(err, KindNotFound):
		return http.StatusNotFound
	case errors.Is(err, KindConflict):
		return http.StatusConflict
	case errors.Is(err, KindRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, KindBusy):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// IsClientError reports whether err is the client's fault (a Error or
// an oversized body) or a momentary refusal (server busy) rather than our
// fault; callers show the former's text and log it at Warn, and log the
// latter at Error.
func IsClientError(err error) bool {
	return HTTPStatus(err) < 500 || errors.Is(err, KindBusy)
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
