package auth

import (
	"fmt"
	"slices"
	"stompbox/internal/apperr"
	"stompbox/internal/store"
	"strconv"
	"strings"
	"time"
)

// scopes.go: what an API token may do (issue 22). A password or a login
// session carries all of its account's powers; a token only its scopes:
//
//	post   post, edit, delete and react in the rooms its account may post to
//	read   read rooms: history, search, exports, files, STOMP room subscriptions
//	admin  the administrator's APIs (backup, stats, metrics, registration,
//	       invites); only an administrator's token may have it
//
// A token made without scopes gets post and read (store.DefaultTokenScopes),
// never admin. A token may also expire; an expired token is refused like
// a revoked one.

// Token scopes.
const (
	ScopePost  = "post"
	ScopeRead  = "read"
	ScopeAdmin = "admin"
)

var scopeOrder = []string{ScopePost, ScopeRead, ScopeAdmin}

// TokenSpec is what CreateTokenWith makes.
type TokenSpec struct {
	Name    string
	Scopes  string    // comma-separated; "" means post,read
	Expires time.Time // zero: never
}

// ParseScopes checks a comma-separated list of scopes and returns it in
// canonical order ("post,read,admin" order, no duplicates); "" gives
// the default, post and read.
func ParseScopes(list string) (string, error) {
	if strings.TrimSpace(list) == "" {
		return ScopePost + "," + ScopeRead, nil
	}
	var got []string
	for _, sc := range strings.Split(list, ",") {
		sc = strings.ToLower(strings.TrimSpace(sc))
		if !slices.Contains(scopeOrder, sc) {
			return "", apperr.New(apperr.ErrBadRequest, fmt.Sprintf("unknown token scope %q (post, read or admin)", sc))
		}
		got = append(got, sc)
	}
	var out []string
	for _, sc := range scopeOrder {
		if slices.Contains(got, sc) {
			out = append(out, sc)
		}
	}
	return strings.Join(out, ","), nil
}

// HasScope reports whether a scope list holds scope.
func HasScope(scopes, scope string) bool {
	for _, sc := range strings.Split(scopes, ",") {
		if sc == scope {
			return true
		}
	}
	return false
}

// Allows reports whether the credential u came through may use scope:
// always for a password or a login session (u.Scopes is ""), else when
// the token has it. The admin scope still needs an administrator.
func Allows(u store.User, scope string) bool {
	return u.Scopes == "" || HasScope(u.Scopes, scope)
}

// ErrScope refuses a request whose token lacks scope.
func ErrScope(scope string) error {
	return apperr.New(apperr.ErrForbidden, fmt.Sprintf("this API token lacks the %q scope", scope))
}

// ParseExpiry reads a token's expiry as given on the command line or in
// the API: a number of days from now ("30" or "30d"), or a time in
// RFC 3339 ("2027-01-01T00:00:00Z") or as a date ("2027-01-01", UTC
// midnight). "" means never.
func ParseExpiry(v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	if n, err := strconv.Atoi(strings.TrimSuffix(v, "d")); err == nil {
		if n <= 0 || n > 100*366 {
			return time.Time{}, apperr.New(apperr.ErrBadRequest, "a token's expiry in days must be 1 to 36600")
		}
		return now.Add(time.Duration(n) * 24 * time.Hour), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, apperr.New(apperr.ErrBadRequest, "expires must be a number of days or a time (RFC 3339)")
}
