package apperr

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriteJSONError(t *testing.T) {
	w := httptest.NewRecorder()
	WriteJSONError(w, http.StatusForbidden, `origin "x" not allowed`)
	if w.Code != http.StatusForbidden {
		t.Errorf("status %d", w.Code)
	}
	if got := w.Header().Get("Content-Type"); got != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", got)
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q", got)
	}
	if got, want := w.Body.String(), `{"error":"origin \"x\" not allowed"}`+"\n"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
}
