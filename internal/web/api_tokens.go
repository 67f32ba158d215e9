package web

import (
	"encoding/json"
	"net/http"
	"stompbox/internal/apperr"
	"stompbox/internal/auth"
	"stompbox/internal/store"
	"strings"
)

// api_tokens.go: API tokens with scopes and an expiry (issue 22), and the
// scope each API route needs from a token.

// routeScope is the scope a token needs for r: admin for the
// administrator's routes (/api/admin/…, /metrics), read for GET and HEAD,
// post for every other write.
func routeScope(r *http.Request) string {
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/admin/") || r.URL.Path == "/metrics":
		return auth.ScopeAdmin
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		return auth.ScopeRead
	default:
		return auth.ScopePost
	}
}

// checkScope refuses a request made with a token that lacks the route's scope.
func checkScope(r *http.Request, u store.User) error {
	if sc := routeScope(r); !auth.Allows(u, sc) {
		return auth.ErrScope(sc)
	}
	return nil
}

// tokenRequest is the body of POST /api/tokens:
//
//	{"name":"ci-bot","scopes":["post"],"expires":30}
//
// scopes is a list (or a comma-separated string) of post, read and admin,
// post and read when absent; expires is a number of days, or a time in
// RFC 3339 or a date, never when absent.
type tokenRequest struct {
	Name    string          `json:"name"`
	Scopes  json.RawMessage `json:"scopes"`
	Expires json.RawMessage `json:"expires"`
}

// spec turns the request into a token spec for auth.
func (t tokenRequest) spec(a *API) (auth.TokenSpec, error) {
	spec := auth.TokenSpec{Name: t.Name}
	if len(t.Scopes) > 0 && string(t.Scopes) != "null" {
		var list []string
		var one string
		switch {
		case json.Unmarshal(t.Scopes, &list) == nil:
			spec.Scopes = strings.Join(list, ",")
		case json.Unmarshal(t.Scopes, &one) == nil:
			spec.Scopes = one
		default:
			return spec, apperr.New(apperr.ErrBadRequest, "scopes must be a list of post, read and admin")
		}
		if strings.TrimSpace(spec.Scopes) == "" {
			return spec, apperr.New(apperr.ErrBadRequest, "a token needs at least one scope")
		}
	}
	if len(t.Expires) > 0 && string(t.Expires) != "null" {
		var v string
		var days json.Number
		if json.Unmarshal(t.Expires, &days) == nil {
			v = days.String()
		} else if json.Unmarshal(t.Expires, &v) != nil {
			return spec, apperr.New(apperr.ErrBadRequest, "expires must be a number of days or a time")
		}
		exp, err := auth.ParseExpiry(v, a.chat.St.Now())
		if err != nil {
			return spec, err
		}
		spec.Expires = exp
	}
	return spec, nil
}

// createToken makes an API token; the secret is in this response only.
func (a *API) createToken(w http.ResponseWriter, r *http.Request, u store.User) error {
	var body tokenRequest
	if err := decodeAPIJSON(w, r, MaxAPIBodyBytes, &body); err != nil {
		return err
	}
	spec, err := body.spec(a)
	if err != nil {
		return err
	}
	tok, err := a.auth.CreateTokenWith(r.Context(), u, spec)
	if err != nil {
		return err
	}
	scopes, _ := auth.ParseScopes(spec.Scopes)
	out := map[string]any{"name": strings.TrimSpace(body.Name), "token": tok, "scopes": strings.Split(scopes, ",")}
	if !spec.Expires.IsZero() {
		out["expiresAt"] = spec.Expires.UTC().Format("2006-01-02T15:04:05Z07:00")
	}
	return writeAPIJSON(w, http.StatusCreated, out)
}

// revokeToken deletes one of the caller's tokens; a token cannot manage tokens.
func (a *API) revokeToken(w http.ResponseWriter, r *http.Request, u store.User) error {
	if u.Scopes != "" {
		return apperr.New(apperr.ErrForbidden, "an API token cannot revoke tokens")
	}
	if err := a.auth.RevokeToken(r.Context(), u, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
