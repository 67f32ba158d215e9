// Package auth owns accounts and credentials: registration and invites,
// passwords (argon2id), login sessions (the session cookie), API tokens
// (an HTTP Bearer token, or a STOMP passcode), guests, and the gate that
// bounds password hashing.
//
// What it promises:
//   - Secrets are stored only as hashes: a password as an argon2id PHC
//     string, a session, token or invite (256 random bits) as its SHA-256.
//   - An unknown user and a wrong password cost the same work and get the
//     same answer; failed logins are throttled per account.
//   - At most one argon2id computation per core runs at once (Gate). The
//     others wait in a bounded queue; past it, or past the longest wait,
//     they get "server busy, retry" (HTTP 503), never an out-of-memory.
//   - An API token has scopes (post, read, admin; scopes.go) and may
//     expire; a password or a login session has all of the account's
//     powers. Only an administrator's token may have admin, and only when
//     asked for; a token cannot make tokens.
//   - Every write goes through the store. Salts, hashes and tokens are
//     made here, before the write, so that a write replayed from the
//     cluster log gives the same rows on every node.
//
// It owns no interface that another package implements. Of stompbox it
// imports only internal/apperr, internal/proto and internal/store: never
// the broker, the chat, the web layer or the cluster (layout_test.go).
package auth
