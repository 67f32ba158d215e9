package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"stompbox/internal/apperr"
	"strconv"
	"strings"
)

// logins.go: login keys, the names of the credentials a live connection
// rests on, so that a connection ends when its credential does (issue 22).
// A STOMP session carries the keys of the login it authenticated with
// (internal/chatstomp); an op that ends a credential says which keys it
// ended (LoginEnder), and every node closes its connections that carry
// one of them as it applies the op. EndedLogins finds the keys a change
// made outside the server ended (the `stompbox user` command writes the
// database directly): the server checks its live keys now and then.

// Login key kinds.
const (
	loginUser     = "user:"     // every signed-in connection: the account
	loginSession  = "session:"  // a browser's login session (the cookie)
	loginToken    = "token:"    // an API token
	loginPassword = "password:" // a STOMP CONNECT with the password: id and a fingerprint of its hash
)

// UserLogin is the key every connection of the account userID carries.
func UserLogin(userID int64) string { return loginUser + strconv.FormatInt(userID, 10) }

// SessionLogin is the key of a login session, from its stored hash.
func SessionLogin(tokenHash []byte) string { return loginSession + hex.EncodeToString(tokenHash) }

// TokenLogin is the key of an API token, from its stored hash.
func TokenLogin(tokenHash []byte) string { return loginToken + hex.EncodeToString(tokenHash) }

// PasswordLogin is the key of a connection that logged in with the
// password whose stored hash is passwordHash: a new password ends it.
func PasswordLogin(userID int64, passwordHash string) string {
	fp := sha256.Sum256([]byte(passwordHash))
	return loginPassword + strconv.FormatInt(userID, 10) + ":" + hex.EncodeToString(fp[:8])
}

// LoginEnder is an op that ended credentials: LoginsEnded returns their
// keys once the op committed (nil when it ended none). The effects hook
// closes this node's connections that rest on them.
type LoginEnder interface {
	LoginsEnded() []string
}

// Sweep queries: each takes a JSON array of the values to check and
// returns those still valid.
const (
	sqlLiveUsers    = `SELECT id FROM users WHERE id IN (SELECT value FROM json_each(?))`
	sqlLiveSessions = `SELECT hex(token_hash) FROM login_sessions WHERE token_hash IN (SELECT unhex(value) FROM json_each(?1)) AND expires_at > ?2`
	sqlLiveTokens   = `SELECT hex(token_hash) FROM api_tokens WHERE token_hash IN (SELECT unhex(value) FROM json_each(?1)) AND (expires_at IS NULL OR expires_at > ?2)`
	sqlLivePassword = `SELECT id, password_hash FROM users WHERE id IN (SELECT value FROM json_each(?))`
)

// EndedLogins returns the keys among keys whose credential is gone: the
// account deleted, the session ended or expired, the token revoked or
// expired, the password changed. Keys of unknown kinds are kept.
func (s *Store) EndedLogins(ctx context.Context, keys []string) ([]string, error) {
	var sessions, tokens []string
	var users, pwUsers []int64
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, loginUser):
			if id, err := strconv.ParseInt(k[len(loginUser):], 10, 64); err == nil {
				users = append(users, id)
			}
		case strings.HasPrefix(k, loginSession):
			sessions = append(sessions, k[len(loginSession):])
		case strings.HasPrefix(k, loginToken):
			tokens = append(tokens, k[len(loginToken):])
		case strings.HasPrefix(k, loginPassword):
			idText, _, _ := strings.Cut(k[len(loginPassword):], ":")
			if id, err := strconv.ParseInt(idText, 10, 64); err == nil {
				pwUsers = append(pwUsers, id)
			}
		}
	}
	live := make(map[string]bool, len(keys))
	now := s.NowMS()
	collect := func(query string, vals any, n int, key func(string) string, args ...any) error {
		if n == 0 {
			return nil
		}
		arr, _ := json.Marshal(vals)
		rows, err := s.Rdb.QueryContext(ctx, query, append([]any{string(arr)}, args...)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				return err
			}
			live[key(v)] = true
		}
		return rows.Err()
	}
	lower := func(p string) func(string) string { return func(v string) string { return p + strings.ToLower(v) } }
	if err := collect(sqlLiveUsers, users, len(users), func(v string) string { return loginUser + v }); err != nil {
		return nil, fmt.Errorf("check logins: %w", err)
	}
	if err := collect(sqlLiveSessions, sessions, len(sessions), lower(loginSession), now); err != nil {
		return nil, fmt.Errorf("check logins: %w", err)
	}
	if err := collect(sqlLiveTokens, tokens, len(tokens), lower(loginToken), now); err != nil {
		return nil, fmt.Errorf("check logins: %w", err)
	}
	if len(pwUsers) > 0 {
		arr, _ := json.Marshal(pwUsers)
		rows, err := s.Rdb.QueryContext(ctx, sqlLivePassword, string(arr))
		if err != nil {
			return nil, fmt.Errorf("check logins: %w", err)
		}
		for rows.Next() {
			var id int64
			var hash string
			if err := rows.Scan(&id, &hash); err != nil {
				rows.Close()
				return nil, fmt.Errorf("check logins: %w", err)
			}
			live[PasswordLogin(id, hash)] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("check logins: %w", err)
		}
	}
	var ended []string
	for _, k := range keys {
		known := strings.HasPrefix(k, loginUser) || strings.HasPrefix(k, loginSession) || strings.HasPrefix(k, loginToken) || strings.HasPrefix(k, loginPassword)
		if known && !live[k] {
			ended = append(ended, k)
		}
	}
	return ended, nil
}

// LoginKeys names the credentials a connection of u rests on: the account
// and, when known, the login that authenticated it (u.Login). It makes
// User the broker's LoginKeyer, so that a STOMP session whose principal
// is u ends with them.
func (u User) LoginKeys() []string {
	if u.ID == 0 {
		return nil
	}
	if u.Login == "" {
		return []string{UserLogin(u.ID)}
	}
	return []string{UserLogin(u.ID), u.Login}
}

// UserByLoginKey returns the user of the live login session or unexpired
// API token a login key names, as UserBySession and UserByToken do;
// errNotLoggedIn for a key of another kind or a credential that ended.
func (s *Store) UserByLoginKey(ctx context.Context, key string) (User, error) {
	var hash []byte
	var err error
	switch {
	case strings.HasPrefix(key, loginSession):
		if hash, err = hex.DecodeString(key[len(loginSession):]); err == nil {
			return s.UserBySession(ctx, hash)
		}
	case strings.HasPrefix(key, loginToken):
		if hash, err = hex.DecodeString(key[len(loginToken):]); err == nil {
			return s.UserByToken(ctx, hash)
		}
	}
	return User{}, apperr.ErrNotLoggedIn
}
