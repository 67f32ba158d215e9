package apperr

import (
	"encoding/json"
	"net/http"
)

// WriteJSONError writes {"error": msg} with status, as every JSON error
// response of the server is written: UTF-8 JSON, never cached. msg is shown
// to clients: never put internal details in it (Message gives the safe
// text of an error).
func WriteJSONError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
