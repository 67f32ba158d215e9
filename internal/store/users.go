package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"stompbox/internal/apperr"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// User is an account as the rest of the program sees it. The password hash
// never leaves users.go and internal/auth.
type User struct {
	ID          int64     `json:"id"`
	Username    string    `json:"username"`
	DisplayName string    `json:"displayName"`
	IsAdmin     bool      `json:"isAdmin"`
	IsGuest     bool      `json:"isGuest,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`

	// Scopes is set when the account was reached through an API token:
	// the token's scopes ("post,read", …; internal/auth says what each
	// allows). "" for a password or a login session, which carry all of
	// the account's powers.
	Scopes string `json:"scopes,omitempty"`
	// Login is the key of the credential that authenticated the request
	// (logins.go), "" when it is not known.
	Login string `json:"-"`
}

// UsernameKey is the case-insensitive identity of a username: the unique
// index is on it, and every lookup by name goes through it.
func UsernameKey(name string) string { return strings.ToLower(name) }

const userColumns = `id, username, display_name, is_admin, is_guest, created_at`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var created int64
	err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &u.IsAdmin, &u.IsGuest, &created)
	u.CreatedAt = FromMS(created)
	return u, err
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// constraint failure, which callers turn into errNameTaken or similar.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// The first non-guest account becomes administrator. The check runs inside
// the insert, on the single writer, so two racing registrations cannot both
// see an empty table.
const sqlInsertUser = `
INSERT INTO users (username, username_key, display_name, password_hash, is_admin, is_guest, created_at)
VALUES (?1, ?2, ?3, ?4,
	?5 OR (?6 = 0 AND NOT EXISTS (SELECT 1 FROM users WHERE is_guest = 0)),
	?6, ?7)
RETURNING ` + userColumns

// NewUser is what createUser needs. Validation (name rules, password
// length) is auth.go's job; the store only enforces uniqueness. It is
// also the input of userCreateOp, so its fields are part of the log's
// format.
type NewUser struct {
	Username     string `json:"name"`
	DisplayName  string `json:"display"`
	PasswordHash string `json:"hash"`   // "" for guests
	Admin        bool   `json:"admin"`  // force admin (CLI --admin); the first account is admin anyway
	Guest        bool   `json:"guest"`  // a guest account: no password, never the first admin
	InviteHash   []byte `json:"invite"` // if not nil, the invite is consumed in the same transaction (no omitempty: nil and empty differ)
}

// CreateUser inserts an account; errNameTaken if the name (in any case) exists.
func (s *Store) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	op := &UserCreateOp{NewUser: nu}
	if err := s.Run(ctx, op); err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	return op.user, nil
}

// UserCreateOp inserts an account (createUser). Whether it becomes the
// first administrator is decided inside the insert, from the database, so
// every node decides the same.
type UserCreateOp struct {
	NewUser
	user User // the stored account
}

func (*UserCreateOp) OpKind() string { return "user-create" }

func (o *UserCreateOp) Apply(e *Tx) error {
	tx := e.tx
	o.user = User{}
	u, err := scanUser(tx.QueryRowContext(e.ctx, sqlInsertUser,
		o.Username, UsernameKey(o.Username), o.DisplayName, o.PasswordHash, o.Admin, o.Guest, e.At))
	if isUniqueViolation(err) {
		return apperr.ErrNameTaken
	}
	if err != nil {
		return err
	}
	if o.InviteHash != nil {
		if err := useInviteTx(e.ctx, tx, o.InviteHash, u.ID, e.At); err != nil {
			return err
		}
	}
	o.user = u
	return nil
}

const sqlHasAccounts = `SELECT EXISTS(SELECT 1 FROM users WHERE is_guest = 0)`

// HasAccounts reports whether any real (non-guest) account exists; until one
// does, the pages lead to first-run setup.
func (s *Store) HasAccounts(ctx context.Context) (bool, error) {
	var ok bool
	if err := s.Rdb.QueryRowContext(ctx, sqlHasAccounts).Scan(&ok); err != nil {
		return false, fmt.Errorf("count accounts: %w", err)
	}
	return ok, nil
}

const sqlUserByName = `SELECT ` + userColumns + ` FROM users WHERE username_key = ?`

// UserByName finds an account by username, ignoring case; errUnknownUser if none.
func (s *Store) UserByName(ctx context.Context, name string) (User, error) {
	u, err := scanUser(s.Rdb.QueryRowContext(ctx, sqlUserByName, UsernameKey(name)))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, apperr.ErrUnknownUser
	}
	if err != nil {
		return User{}, fmt.Errorf("user by name: %w", err)
	}
	return u, nil
}

const sqlPasswordHash = `SELECT ` + userColumns + `, password_hash FROM users WHERE username_key = ?`

// UserWithPassword returns the account and its password hash, for login.
func (s *Store) UserWithPassword(ctx context.Context, name string) (User, string, error) {
	var u User
	var created int64
	var hash string
	scan := func() error {
		return s.Rdb.QueryRowContext(ctx, sqlPasswordHash, UsernameKey(name)).Scan(
			&u.ID, &u.Username, &u.DisplayName, &u.IsAdmin, &u.IsGuest, &created, &hash)
	}
	err := scan()
	if errors.Is(err, sql.ErrNoRows) && s.missAfterCatchUp(ctx) {
		err = scan()
	}
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, "", apperr.ErrUnknownUser
	}
	if err != nil {
		return User{}, "", fmt.Errorf("user by name: %w", err)
	}
	u.CreatedAt = FromMS(created)
	return u, hash, nil
}

const sqlListUsers = `SELECT ` + userColumns + ` FROM users WHERE is_guest = 0 ORDER BY username_key LIMIT ?`

// maxListUsers bounds GET /api/users and `user list`; an intranet appliance
// has tens or hundreds of accounts, not more.
const maxListUsers = 10000

func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	us, err := queryPage(ctx, s.Rdb, func(r *sql.Rows) (User, error) { return scanUser(r) }, sqlListUsers, maxListUsers)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return us, nil
}

const (
	sqlOldPassword = `SELECT id, password_hash FROM users WHERE username_key = ? AND is_guest = 0`
	sqlSetPassword = `UPDATE users SET password_hash = ? WHERE id = ?`
	sqlDropLogins  = `DELETE FROM login_sessions WHERE user_id = ? RETURNING token_hash`
)

// SetPassword replaces a user's password hash and ends their login
// sessions (a password change should log out a stolen session).
func (s *Store) SetPassword(ctx context.Context, name, hash string) error {
	if err := s.Run(ctx, &passwordSetOp{Username: name, Hash: hash}); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	return nil
}

// passwordSetOp replaces a password hash and ends the account's login
// sessions (setPassword). The hash is computed by the caller: argon2id
// salts are random.
type passwordSetOp struct {
	Username string `json:"name"`
	Hash     string `json:"hash"`

	ended []string // login keys of the old password and the dropped sessions
}

// LoginsEnded implements LoginEnder: connections that logged in with the
// old password, or through one of the dropped sessions, end.
func (o *passwordSetOp) LoginsEnded() []string { return o.ended }

func (*passwordSetOp) OpKind() string { return "user-password" }

func (o *passwordSetOp) Apply(e *Tx) error {
	tx := e.tx
	o.ended = nil
	var id int64
	var old string
	err := tx.QueryRowContext(e.ctx, sqlOldPassword, UsernameKey(o.Username)).Scan(&id, &old)
	if errors.Is(err, sql.ErrNoRows) {
		return apperr.ErrUnknownUser
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(e.ctx, sqlSetPassword, o.Hash, id); err != nil {
		return err
	}
	ended := []string{PasswordLogin(id, old)}
	rows, err := tx.QueryContext(e.ctx, sqlDropLogins, id)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			return err
		}
		ended = append(ended, SessionLogin(h))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	o.ended = ended
	return nil
}

const sqlDeleteUser = `DELETE FROM users WHERE username_key = ? RETURNING id`

// DeleteUser removes an account; its sessions, tokens, memberships and
// notifications go with it (ON DELETE CASCADE), its messages stay with
// user_id NULL and the sender name they were posted under.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	if err := s.Run(ctx, &userDeleteOp{Username: name}); err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	return nil
}

// userDeleteOp removes an account by name (deleteUser).
type userDeleteOp struct {
	Username string `json:"name"`

	id int64 // the deleted account
}

// LoginsEnded implements LoginEnder: every connection of the account ends.
func (o *userDeleteOp) LoginsEnded() []string {
	if o.id == 0 {
		return nil
	}
	return []string{UserLogin(o.id)}
}

func (*userDeleteOp) OpKind() string { return "user-delete" }

func (o *userDeleteOp) Apply(e *Tx) error {
	tx := e.tx
	o.id = 0
	err := tx.QueryRowContext(e.ctx, sqlDeleteUser, UsernameKey(o.Username)).Scan(&o.id)
	if errors.Is(err, sql.ErrNoRows) {
		return apperr.ErrUnknownUser
	}
	if err != nil {
		return err
	}
	e.st.scrubbed() // the password hash and sessions go: checkpoint them out of the WAL
	return nil
}

const sqlSetWebhook = `UPDATE users SET webhook_url = ? WHERE id = ?`

func (s *Store) SetWebhook(ctx context.Context, userID int64, rawURL string) error {
	if err := s.Run(ctx, &webhookSetOp{UserID: userID, URL: rawURL}); err != nil {
		return fmt.Errorf("set webhook: %w", err)
	}
	return nil
}

// webhookSetOp sets (or, with "", clears) a user's webhook (setWebhook).
// The URL was validated by the caller.
type webhookSetOp struct {
	UserID int64  `json:"user"`
	URL    string `json:"url"`
}

func (*webhookSetOp) OpKind() string { return "webhook-set" }

func (o *webhookSetOp) Apply(e *Tx) error {
	tx := e.tx
	_, err := tx.ExecContext(e.ctx, sqlSetWebhook, o.URL, o.UserID)
	return err
}

// Login sessions.

const (
	sqlInsertSession = `INSERT INTO login_sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)`
	// Expired sessions are swept whenever someone logs in, so the table
	// stays small without a timer goroutine.
	sqlSweepSessions = `DELETE FROM login_sessions WHERE expires_at <= ?`
	sqlUserBySession = `SELECT ` + userColumnsU + ` FROM login_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ?`
	sqlDeleteSession = `DELETE FROM login_sessions WHERE token_hash = ?`
	userColumnsU     = `u.id, u.username, u.display_name, u.is_admin, u.is_guest, u.created_at`
)

func (s *Store) CreateSession(ctx context.Context, tokenHash []byte, userID int64, expires time.Time) error {
	op := &sessionCreateOp{TokenHash: tokenHash, UserID: userID, ExpiresAt: expires.UnixMilli()}
	if err := s.Run(ctx, op); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// sessionCreateOp stores a login session and sweeps the expired ones
// (createSession). "Expired" is judged at the op's clock reading, not the
// applying node's, so every node sweeps the same rows.
type sessionCreateOp struct {
	TokenHash []byte `json:"hash"` // SHA-256 of the cookie, which only the client holds
	UserID    int64  `json:"user"`
	ExpiresAt int64  `json:"exp"` // Unix ms
}

func (*sessionCreateOp) OpKind() string { return "session-create" }

func (o *sessionCreateOp) Apply(e *Tx) error {
	tx := e.tx
	if _, err := tx.ExecContext(e.ctx, sqlSweepSessions, e.At); err != nil {
		return err
	}
	_, err := tx.ExecContext(e.ctx, sqlInsertSession, o.TokenHash, o.UserID, e.At, o.ExpiresAt)
	return err
}

func (s *Store) UserBySession(ctx context.Context, tokenHash []byte) (User, error) {
	u, err := scanUser(s.Rdb.QueryRowContext(ctx, sqlUserBySession, tokenHash, s.NowMS()))
	if errors.Is(err, sql.ErrNoRows) && s.missAfterCatchUp(ctx) {
		u, err = scanUser(s.Rdb.QueryRowContext(ctx, sqlUserBySession, tokenHash, s.NowMS()))
	}
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, apperr.ErrNotLoggedIn
	}
	if err != nil {
		return User{}, fmt.Errorf("user by session: %w", err)
	}
	u.Login = SessionLogin(tokenHash)
	return u, nil
}

func (s *Store) DeleteSession(ctx context.Context, tokenHash []byte) error {
	if err := s.Run(ctx, &sessionDeleteOp{TokenHash: tokenHash}); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// sessionDeleteOp ends a login session (deleteSession, logout).
type sessionDeleteOp struct {
	TokenHash []byte `json:"hash"`
}

// LoginsEnded implements LoginEnder: the connections of the session end.
func (o *sessionDeleteOp) LoginsEnded() []string { return []string{SessionLogin(o.TokenHash)} }

func (*sessionDeleteOp) OpKind() string { return "session-delete" }

func (o *sessionDeleteOp) Apply(e *Tx) error {
	tx := e.tx
	_, err := tx.ExecContext(e.ctx, sqlDeleteSession, o.TokenHash)
	return err
}

// API tokens.

// apiToken describes a token without its secret.
type apiToken struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Scopes    string     `json:"scopes"`
	CreatedAt time.Time  `json:"createdAt"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"` // nil: never
}

const (
	sqlInsertToken  = `INSERT INTO api_tokens (user_id, name, token_hash, created_at, scopes, expires_at) VALUES (?, ?, ?, ?, ?, ?)`
	sqlUserByToken  = `SELECT ` + userColumnsU + `, t.scopes FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?1 AND (t.expires_at IS NULL OR t.expires_at > ?2)`
	sqlDeleteToken  = `DELETE FROM api_tokens WHERE user_id = ? AND name = ? RETURNING token_hash`
	sqlListTokens   = `SELECT id, name, scopes, created_at, expires_at FROM api_tokens WHERE user_id = ? ORDER BY name LIMIT ?`
	maxTokensListed = 1000 // far more than any user names by hand
)

// DefaultTokenScopes is what a token gets when its maker names no scopes.
const DefaultTokenScopes = "post,read"

// NewToken is what CreateToken stores.
type NewToken struct {
	UserID    int64
	Name      string
	TokenHash []byte    // SHA-256 of the secret, which the caller generated
	Scopes    string    // comma-separated, validated by the caller; "" means DefaultTokenScopes
	Expires   time.Time // zero: never
}

func (s *Store) CreateToken(ctx context.Context, t NewToken) error {
	op := &tokenCreateOp{UserID: t.UserID, Name: t.Name, TokenHash: t.TokenHash, Scopes: t.Scopes}
	if !t.Expires.IsZero() {
		op.ExpiresAt = t.Expires.UnixMilli()
	}
	if err := s.Run(ctx, op); err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

// tokenCreateOp stores a named API token (createToken); errNameTaken if
// the user already has one of that name.
type tokenCreateOp struct {
	UserID    int64  `json:"user"`
	Name      string `json:"name"`
	TokenHash []byte `json:"hash"`             // SHA-256 of the secret, which the caller generated
	Scopes    string `json:"scopes,omitempty"` // "" (and every entry older than scopes): DefaultTokenScopes
	ExpiresAt int64  `json:"exp,omitempty"`    // Unix ms; 0: never
}

func (*tokenCreateOp) OpKind() string { return "token-create" }

func (o *tokenCreateOp) Apply(e *Tx) error {
	tx := e.tx
	scopes := o.Scopes
	if scopes == "" {
		scopes = DefaultTokenScopes
	}
	var exp any
	if o.ExpiresAt != 0 {
		exp = o.ExpiresAt
	}
	_, err := tx.ExecContext(e.ctx, sqlInsertToken, o.UserID, o.Name, o.TokenHash, e.At, scopes, exp)
	if isUniqueViolation(err) {
		return apperr.ErrNameTaken
	}
	return err
}

// UserByToken returns the owner of an unexpired API token, with the
// token's scopes and login key; errNotLoggedIn when there is none.
func (s *Store) UserByToken(ctx context.Context, tokenHash []byte) (User, error) {
	scan := func() (User, error) {
		var u User
		var created int64
		err := s.Rdb.QueryRowContext(ctx, sqlUserByToken, tokenHash, s.NowMS()).Scan(
			&u.ID, &u.Username, &u.DisplayName, &u.IsAdmin, &u.IsGuest, &created, &u.Scopes)
		u.CreatedAt = FromMS(created)
		u.Login = TokenLogin(tokenHash)
		return u, err
	}
	u, err := scan()
	if errors.Is(err, sql.ErrNoRows) && s.missAfterCatchUp(ctx) {
		u, err = scan()
	}
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, apperr.ErrNotLoggedIn
	}
	if err != nil {
		return User{}, fmt.Errorf("user by token: %w", err)
	}
	return u, nil
}

func (s *Store) DeleteToken(ctx context.Context, userID int64, name string) error {
	if err := s.Run(ctx, &tokenDeleteOp{UserID: userID, Name: name}); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	return nil
}

// tokenDeleteOp revokes a user's API token by name (deleteToken).
type tokenDeleteOp struct {
	UserID int64  `json:"user"`
	Name   string `json:"name"`

	hash []byte // the revoked token's
}

// LoginsEnded implements LoginEnder: the token's connections end.
func (o *tokenDeleteOp) LoginsEnded() []string {
	if o.hash == nil {
		return nil
	}
	return []string{TokenLogin(o.hash)}
}

func (*tokenDeleteOp) OpKind() string { return "token-delete" }

func (o *tokenDeleteOp) Apply(e *Tx) error {
	tx := e.tx
	o.hash = nil
	err := tx.QueryRowContext(e.ctx, sqlDeleteToken, o.UserID, o.Name).Scan(&o.hash)
	if errors.Is(err, sql.ErrNoRows) {
		return apperr.New(apperr.ErrNotFound, "unknown token")
	}
	return err
}

func (s *Store) ListTokens(ctx context.Context, userID int64) ([]apiToken, error) {
	ts, err := queryPage(ctx, s.Rdb, func(r *sql.Rows) (apiToken, error) {
		var t apiToken
		var created int64
		var exp sql.NullInt64
		err := r.Scan(&t.ID, &t.Name, &t.Scopes, &created, &exp)
		t.CreatedAt = FromMS(created)
		if exp.Valid {
			at := FromMS(exp.Int64)
			t.ExpiresAt = &at
		}
		return t, err
	}, sqlListTokens, userID, maxTokensListed)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return ts, nil
}

// Settings and invites.

const (
	SettingRegistration = "registration" // "open" or "invite"
	RegistrationOpen    = "open"
	RegistrationInvite  = "invite"

	sqlGetSetting = `SELECT value FROM settings WHERE key = ?`
	sqlSetSetting = `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`
)

func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.Rdb.QueryRowContext(ctx, sqlGetSetting, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("setting %s: %w", key, err)
	}
	return v, nil
}

func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	if err := s.Run(ctx, &settingSetOp{Key: key, Value: value}); err != nil {
		return fmt.Errorf("set %s: %w", key, err)
	}
	return nil
}

// settingSetOp stores one server setting (setSetting).
type settingSetOp struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func (*settingSetOp) OpKind() string { return "setting-set" }

func (o *settingSetOp) Apply(e *Tx) error {
	tx := e.tx
	_, err := tx.ExecContext(e.ctx, sqlSetSetting, o.Key, o.Value)
	return err
}

const (
	sqlInsertInvite = `INSERT INTO invites (code_hash, created_by, created_at, expires_at) VALUES (?, ?, ?, ?)`
	sqlUseInvite    = `UPDATE invites SET used_by = ?, used_at = ? WHERE code_hash = ? AND used_by IS NULL AND expires_at > ?`
)

func (s *Store) CreateInvite(ctx context.Context, codeHash []byte, createdBy int64, expires time.Time) error {
	op := &inviteCreateOp{CodeHash: codeHash, CreatedBy: createdBy, ExpiresAt: expires.UnixMilli()}
	if err := s.Run(ctx, op); err != nil {
		return fmt.Errorf("create invite: %w", err)
	}
	return nil
}

// inviteCreateOp stores a one-use registration code (createInvite).
type inviteCreateOp struct {
	CodeHash  []byte `json:"hash"` // SHA-256 of the code, which the caller generated
	CreatedBy int64  `json:"by"`
	ExpiresAt int64  `json:"exp"` // Unix ms
}

func (*inviteCreateOp) OpKind() string { return "invite-create" }

func (o *inviteCreateOp) Apply(e *Tx) error {
	tx := e.tx
	_, err := tx.ExecContext(e.ctx, sqlInsertInvite, o.CodeHash, o.CreatedBy, e.At, o.ExpiresAt)
	return err
}

const sqlInvitation = `
SELECT coalesce(nullif(u.display_name, ''), u.username, ''), i.used_by IS NULL AND i.expires_at > ?2
FROM invites i LEFT JOIN users u ON u.id = i.created_by
WHERE i.code_hash = ?1`

// Invitation returns the inviter's name and whether the invite is still
// usable; an unknown code is ("", false, nil).
func (s *Store) Invitation(ctx context.Context, codeHash []byte) (string, bool, error) {
	var name string
	var ok bool
	err := s.Rdb.QueryRowContext(ctx, sqlInvitation, codeHash, s.NowMS()).Scan(&name, &ok)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("invitation: %w", err)
	}
	return name, ok, nil
}

// useInviteTx consumes an invite for userID, or fails with errBadInvite
// (which rolls back the account created in the same transaction).
func useInviteTx(ctx context.Context, tx *sql.Tx, codeHash []byte, userID, now int64) error {
	res, err := tx.ExecContext(ctx, sqlUseInvite, userID, now, codeHash, now)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apperr.ErrBadInvite
	}
	return nil
}
