package apperr

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		msg    string
	}{
		{"bad json", ErrBadJSON, 400, "malformed JSON"},
		{"wrapped once", fmt.Errorf("post to room 5: %w", ErrNotMember), 403, "not a member of this room"},
		{"too long", ErrMessageTooLong, 413, "message too long"},
		{"max bytes", &http.MaxBytesError{Limit: 10}, 413, "request body too large"},
		{"unknown room", ErrUnknownRoom, 404, "unknown room"},
		{"taken", ErrNameTaken, 409, "name already taken"},
		{"login", ErrBadCredentials, 401, "wrong username or password"},
		{"throttled", ErrTooManyAttempts, 429, "too many attempts, try again later"},
		{"internal", errors.New("disk I/O error at /data/stompbox.db"), 500, "internal error"},
		{"closed store", fmt.Errorf("post: %w", errors.New("store closed")), 500, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HTTPStatus(tt.err); got != tt.status {
				t.Errorf("httpStatus = %d, want %d", got, tt.status)
			}
			if got := Message(tt.err); got != tt.msg {
				t.Errorf("publicMessage = %q, want %q", got, tt.msg)
			}
			if IsClientError(tt.err) != (tt.status < 500) {
				t.Errorf("isClientError disagrees with status %d", tt.status)
			}
		})
	}
	got := string(RefusedSendJSON(fmt.Errorf("x: %w", ErrEmptyMessage), "/pub/chat/message", "r-7"))
	want := `{"error":"empty message","status":400,"destination":"/pub/chat/message","receipt":"r-7"}`
	if got != want {
		t.Errorf("refusedSendJSON = %s, want %s", got, want)
	}
}

// TestNoSpace: a disk-floor refusal is 507 with its text, and a refusal
// (shown to the client), not an internal error.
func TestNoSpace(t *testing.T) {
	err := fmt.Errorf("upload: %w", New(ErrNoSpace, "disk nearly full"))
	if got := HTTPStatus(err); got != http.StatusInsufficientStorage {
		t.Errorf("status %d, want 507", got)
	}
	if got := Message(err); got != "disk nearly full" {
		t.Errorf("message %q", got)
	}
	if !IsClientError(err) {
		t.Error("not a refusal")
	}
}
