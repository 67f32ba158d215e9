package web

import (
	"encoding/json"
	"net/http"
	"stompbox/internal/apperr"
)

// WriteJSON writes v as a JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeJSONError writes {"error": msg} with status (apperr.WriteJSONError).
// msg is shown to clients: never put internal details in it.
func writeJSONError(w http.ResponseWriter, status int, msg string) {
	apperr.WriteJSONError(w, status, msg)
}
