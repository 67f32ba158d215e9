// Package authtest helps the tests of auth and of the parts above it: an
// auth service with cheap password hashing, and accounts registered in one
// call. Only tests import it. Of stompbox it imports only internal/auth and
// internal/store (layout_test.go).
package authtest

import (
	"context"
	"testing"

	"stompbox/internal/auth"
	"stompbox/internal/store"
)

// fastArgon keeps tests fast: production parameters are tested once, in
// auth's own tests.
var fastArgon = auth.ArgonParams{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

// New returns an auth service over s with cheap hashing.
func New(t testing.TB, s *store.Store, guests bool) *auth.Service {
	t.Helper()
	a, err := auth.New(s, auth.Options{AllowGuests: guests, Argon: fastArgon})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Register registers name with the password "password-"+name.
func Register(t testing.TB, a *auth.Service, name string) store.User {
	t.Helper()
	u, err := a.Register(context.Background(), auth.Registration{Username: name, Password: "password-" + name})
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return u
}
