package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"stompbox/internal/apperr"
	"stompbox/internal/proto"
	"stompbox/internal/store"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Account and credential limits.
const (

	// defaultSessionTTL: an intranet chat tab stays open for weeks; asking
	// for the password monthly is the usual compromise.
	defaultSessionTTL = 30 * 24 * time.Hour

	// DefaultInviteTTL gives an invite a week to be used.
	DefaultInviteTTL = 7 * 24 * time.Hour

	minPasswordLen    = 8    // NIST SP 800-63B minimum for user-chosen passwords
	MaxPasswordLen    = 1024 // bounds the argon2 input a client can make us hash
	maxUsernameRunes  = 32   // fits a chat line prefix and an @mention
	maxDisplayRunes   = 64   // room for a full name in Korean or English
	maxTokenNameRunes = 64   // a label such as "ci-bot"

	secretBytes = 32 // session, token and invite secrets: 256 random bits

	// apiTokenPrefix marks API tokens so a STOMP passcode can be told apart
	// from a password, and so they are easy to spot in a leaked log.
	apiTokenPrefix = "sbx_"

	// Login throttling: after maxLoginFailures wrong passwords for one
	// username from one client address (an IPv6 /64 counts as one) within
	// loginFailureWindow, further attempts from that address are refused
	// until the window passes. Argon2 makes each guess cost ~50 ms of CPU
	// already; this stops a patient online guesser. It is per address so
	// that guessing from one machine never locks the owner out from
	// another (issue 22); the per-address login rate (-login-rate,
	// internal/ratelimit) bounds a spray over many accounts. In a cluster
	// each node counts alone, so Options.MaxLoginFailures takes this
	// divided by the number of nodes.
	MaxLoginFailures   = 10
	loginFailureWindow = 5 * time.Minute
	maxLimiterEntries  = 10000 // bounds the limiter's memory under a spray of usernames
)

// ArgonParams are argon2id cost parameters (RFC 9106). They are recorded in
// every hash, so changing the defaults only affects new passwords.
type ArgonParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	KeyLen  uint32
	SaltLen int
}

// DefaultArgonParams follows the OWASP password storage minimum for
// argon2id (19 MiB, 2 passes, 1 lane): affordable on a Raspberry Pi.
func DefaultArgonParams() ArgonParams {
	return ArgonParams{Memory: 19 * 1024, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}
}

// HashPassword returns a PHC-format argon2id string:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>, base64 without padding.
func HashPassword(password string, p ArgonParams) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// errBadHash means a stored hash cannot be parsed; it is our fault, not the user's.
var errBadHash = errors.New("malformed password hash")

// checkPassword reports whether password matches the PHC string, comparing
// in constant time.
func checkPassword(password, encoded string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	var p ArgonParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false, errBadHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// newSecret returns a random URL-safe secret of secretBytes bytes.
func newSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// secretHash is what the database keeps for a session, token or invite.
// A fast hash is enough: the secrets are 256 random bits, not passwords.
func secretHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// ValidUsername checks the name rules: 1–32 letters, digits, '_', '-' or
// '.', starting with a letter or digit. They are exactly the characters an
// @mention matches, so every user can be mentioned.
func ValidUsername(name string) error {
	n := utf8.RuneCountInString(name)
	if n == 0 || n > maxUsernameRunes {
		return apperr.New(apperr.ErrBadRequest, fmt.Sprintf("username must be 1 to %d characters", maxUsernameRunes))
	}
	for i, r := range name {
		if !IsMentionRune(r) || (i == 0 && !unicode.IsLetter(r) && !unicode.IsDigit(r)) {
			return apperr.New(apperr.ErrBadRequest, "username may hold letters, digits, '_', '-' and '.', starting with a letter or digit")
		}
	}
	return nil
}

// IsMentionRune reports whether r may appear in a username (and so in an @mention).
func IsMentionRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-' || r == '.'
}

// cleanDisplayName trims and bounds a display name; empty means "use the username".
func cleanDisplayName(name, username string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return username, nil
	}
	if utf8.RuneCountInString(name) > maxDisplayRunes || strings.ContainsFunc(name, unicode.IsControl) {
		return "", apperr.New(apperr.ErrBadRequest, fmt.Sprintf("display name must be at most %d printable characters", maxDisplayRunes))
	}
	return name, nil
}

func ValidPassword(pw string) error {
	if utf8.RuneCountInString(pw) < minPasswordLen {
		return apperr.New(apperr.ErrBadRequest, fmt.Sprintf("password must be at least %d characters", minPasswordLen))
	}
	if len(pw) > MaxPasswordLen {
		return apperr.New(apperr.ErrBadRequest, "password too long")
	}
	return nil
}

// Options configures authService. The zero value is usable.
type Options struct {
	AllowGuests bool          // let people in with just a name (no password)
	SessionTTL  time.Duration // 0 means defaultSessionTTL
	Argon       ArgonParams   // zero means defaultArgonParams (tests pass cheap ones)
	// MaxLoginFailures is the wrong passwords for one account from one
	// address within the window before that address is refused for it; 0
	// means MaxLoginFailures (a cluster node passes it divided by the
	// number of nodes).
	MaxLoginFailures int
}

// Service owns accounts and credentials: registration, passwords,
// login sessions, API tokens, guests and invites. Safe for concurrent use.
type Service struct {
	st        *store.Store
	opts      Options
	limiter   *loginLimiter
	Gate      *Gate  // bounds the argon2id computations running at once
	dummyHash string // checked against when the user does not exist, so timing does not tell
}

// Session is a login session as handed to the HTTP layer.
type Session struct {
	Token   string        // the cookie value; only its hash is stored
	Expires time.Time     // when the stored session ends (store clock)
	TTL     time.Duration // lifetime from creation; the cookie's Max-Age
}

func New(st *store.Store, opts Options) (*Service, error) {
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = defaultSessionTTL
	}
	if opts.Argon == (ArgonParams{}) {
		opts.Argon = DefaultArgonParams()
	}
	dummy, err := HashPassword("not a password", opts.Argon)
	if err != nil {
		return nil, err
	}
	return &Service{st: st, opts: opts, limiter: newLoginLimiter(st.Now, opts.MaxLoginFailures), Gate: newPasswordGate(), dummyHash: dummy}, nil
}

// Hash computes password's argon2id hash through the password gate; it
// returns errServerBusy when the gate's queue is full.
func (a *Service) Hash(ctx context.Context, password string) (string, error) {
	var h string
	var err error
	if gerr := a.Gate.Do(ctx, func() { h, err = HashPassword(password, a.opts.Argon) }); gerr != nil {
		return "", gerr
	}
	return h, err
}

// check compares password with an argon2id hash through the password gate;
// it returns errServerBusy when the gate's queue is full.
func (a *Service) check(ctx context.Context, password, encoded string) (bool, error) {
	var ok bool
	var err error
	if gerr := a.Gate.Do(ctx, func() { ok, err = checkPassword(password, encoded) }); gerr != nil {
		return false, gerr
	}
	return ok, err
}

// Registration is the input of Register.
type Registration struct {
	Username    string `json:"username"`
	DisplayName string `json:"displayName"`
	Password    string `json:"password"`
	Invite      string `json:"invite"`
}

// Register creates an account. Registration is open unless an admin set it
// to invite-only, in which case a valid unused invite code is required and
// consumed. The first account becomes administrator.
func (a *Service) Register(ctx context.Context, reg Registration) (store.User, error) {
	return a.CreateAccount(ctx, reg, false, true)
}

// CreateAccount is Register without the registration-mode check when
// checkMode is false (the CLI, which runs with file-system access).
func (a *Service) CreateAccount(ctx context.Context, reg Registration, admin, checkMode bool) (store.User, error) {
	if err := ValidUsername(reg.Username); err != nil {
		return store.User{}, err
	}
	display, err := cleanDisplayName(reg.DisplayName, reg.Username)
	if err != nil {
		return store.User{}, err
	}
	if err := ValidPassword(reg.Password); err != nil {
		return store.User{}, err
	}
	nu := store.NewUser{Username: reg.Username, DisplayName: display, Admin: admin}
	if checkMode {
		mode, err := a.st.Setting(ctx, store.SettingRegistration)
		if err != nil {
			return store.User{}, err
		}
		if mode == store.RegistrationInvite {
			if reg.Invite == "" {
				return store.User{}, apperr.ErrRegistrationOff
			}
			nu.InviteHash = secretHash(reg.Invite)
		}
	}
	if nu.PasswordHash, err = a.Hash(ctx, reg.Password); err != nil {
		return store.User{}, err
	}
	return a.st.CreateUser(ctx, nu)
}

// Login checks a username and password and starts a login session. Wrong
// name and wrong password give the same error after the same work.
func (a *Service) Login(ctx context.Context, username, password string) (store.User, Session, error) {
	u, err := a.CheckLogin(ctx, username, password)
	if err != nil {
		return store.User{}, Session{}, err
	}
	s, err := a.NewSession(ctx, u)
	return u, s, err
}

// CheckLogin verifies a password, with throttling and constant-time
// comparison, and returns the account.
func (a *Service) CheckLogin(ctx context.Context, username, password string) (store.User, error) {
	if len(password) > MaxPasswordLen {
		return store.User{}, apperr.ErrBadCredentials
	}
	key := loginKey(username, RemoteFrom(ctx))
	if !a.limiter.allow(key) {
		return store.User{}, apperr.ErrTooManyAttempts
	}
	u, hash, err := a.st.UserWithPassword(ctx, username)
	if err != nil && !errors.Is(err, apperr.ErrUnknownUser) {
		return store.User{}, err
	}
	if hash == "" { // unknown user or guest: do the same work, then fail
		hash = a.dummyHash
		err = apperr.ErrUnknownUser
	}
	ok, herr := a.check(ctx, password, hash)
	if errors.Is(herr, ErrServerBusy) || (herr != nil && ctx.Err() != nil) {
		return store.User{}, herr // busy, or the client left while queued: not a guess, the throttle does not count it
	}
	if herr != nil {
		return store.User{}, fmt.Errorf("login %s: %w", username, herr)
	}
	if !ok || err != nil {
		a.limiter.fail(key)
		return store.User{}, apperr.ErrBadCredentials
	}
	a.limiter.reset(key)
	u.Login = store.PasswordLogin(u.ID, hash)
	return u, nil
}

func (a *Service) NewSession(ctx context.Context, u store.User) (Session, error) {
	tok, err := newSecret()
	if err != nil {
		return Session{}, err
	}
	s := Session{Token: tok, Expires: a.st.Now().Add(a.opts.SessionTTL), TTL: a.opts.SessionTTL}
	if err := a.st.CreateSession(ctx, secretHash(tok), u.ID, s.Expires); err != nil {
		return Session{}, err
	}
	return s, nil
}

// Logout ends the session whose cookie value is token. Unknown tokens are
// not an error: the client is logged out either way.
func (a *Service) Logout(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	return a.st.DeleteSession(ctx, secretHash(token))
}

// UserBySession returns the user of a live login session, or errNotLoggedIn.
func (a *Service) UserBySession(ctx context.Context, token string) (store.User, error) {
	if token == "" {
		return store.User{}, apperr.ErrNotLoggedIn
	}
	return a.st.UserBySession(ctx, secretHash(token))
}

// UserByToken returns the owner of an API token, or errNotLoggedIn.
func (a *Service) UserByToken(ctx context.Context, token string) (store.User, error) {
	if !strings.HasPrefix(token, apiTokenPrefix) {
		return store.User{}, apperr.ErrNotLoggedIn
	}
	return a.st.UserByToken(ctx, secretHash(token))
}

// UserByLogin authenticates the login and passcode headers of a STOMP
// CONNECT. The passcode is the account's password or one of its API tokens
// (bots); an empty passcode makes a guest named login when guests are
// allowed. Failures are errBadCredentials (or errTooManyAttempts).
func (a *Service) UserByLogin(ctx context.Context, login, passcode string) (store.User, error) {
	switch {
	case passcode == "" && a.opts.AllowGuests:
		return a.Guest(ctx, login)
	case strings.HasPrefix(passcode, apiTokenPrefix):
		u, err := a.UserByToken(ctx, passcode)
		if errors.Is(err, apperr.ErrNotLoggedIn) || (err == nil && store.UsernameKey(u.Username) != store.UsernameKey(login)) {
			return store.User{}, apperr.ErrBadCredentials
		}
		return u, err
	default:
		return a.CheckLogin(ctx, login, passcode)
	}
}

// EndedLogins returns the login keys among keys whose credential is gone
// (store.EndedLogins).
func (a *Service) EndedLogins(ctx context.Context, keys []string) ([]string, error) {
	return a.st.EndedLogins(ctx, keys)
}

// UserByLoginKey returns the user of a live login session or unexpired API
// token named by its login key (store.SessionLogin, store.TokenLogin), with
// the token's scopes; errNotLoggedIn when it ended.
func (a *Service) UserByLoginKey(ctx context.Context, key string) (store.User, error) {
	return a.st.UserByLoginKey(ctx, key)
}

// IsAPIToken reports whether a passcode has the form of an API token
// rather than a password.
func IsAPIToken(passcode string) bool {
	return strings.HasPrefix(passcode, apiTokenPrefix)
}

// UserByName looks an account up by name (case-insensitive).
func (a *Service) UserByName(ctx context.Context, name string) (store.User, error) {
	return a.st.UserByName(ctx, name)
}

// Guest returns the guest account called name, creating it if needed. Guests
// have no password, so a guest name identifies nobody: anyone may use a
// guest name nobody registered, but never a registered user's name.
// errGuestsDisabled unless AllowGuests.
func (a *Service) Guest(ctx context.Context, name string) (store.User, error) {
	if !a.opts.AllowGuests {
		return store.User{}, apperr.ErrGuestsDisabled
	}
	if err := ValidUsername(name); err != nil {
		return store.User{}, err
	}
	u, err := a.st.UserByName(ctx, name)
	switch {
	case err == nil && u.IsGuest:
		return u, nil
	case err == nil:
		return store.User{}, apperr.ErrNameTaken
	case !errors.Is(err, apperr.ErrUnknownUser):
		return store.User{}, err
	}
	u, err = a.st.CreateUser(ctx, store.NewUser{Username: name, DisplayName: name, Guest: true})
	if errors.Is(err, apperr.ErrNameTaken) { // another connection created it meanwhile
		return a.Guest(ctx, name)
	}
	return u, err
}

// GuestLogin is Guest plus a login session, for the HTTP guest form.
func (a *Service) GuestLogin(ctx context.Context, name string) (store.User, Session, error) {
	u, err := a.Guest(ctx, name)
	if err != nil {
		return store.User{}, Session{}, err
	}
	s, err := a.NewSession(ctx, u)
	return u, s, err
}

// CreateToken makes a named API token for u with the default scopes
// (post and read) and no expiry; see CreateTokenWith.
func (a *Service) CreateToken(ctx context.Context, u store.User, name string) (string, error) {
	return a.CreateTokenWith(ctx, u, TokenSpec{Name: name})
}

// CreateTokenWith makes a named API token for u and returns it; it is
// shown once and only its hash is kept. Guests cannot have tokens, only
// an administrator's token may have the admin scope, and a request
// authenticated by a token cannot make tokens (a bot must not mint
// itself longer-lived credentials).
func (a *Service) CreateTokenWith(ctx context.Context, u store.User, spec TokenSpec) (string, error) {
	name := strings.TrimSpace(spec.Name)
	if name == "" || utf8.RuneCountInString(name) > maxTokenNameRunes {
		return "", apperr.New(apperr.ErrBadRequest, fmt.Sprintf("token name must be 1 to %d characters", maxTokenNameRunes))
	}
	if u.IsGuest {
		return "", apperr.New(apperr.ErrForbidden, "guests cannot create tokens")
	}
	if u.Scopes != "" {
		return "", apperr.New(apperr.ErrForbidden, "an API token cannot create tokens")
	}
	scopes, err := ParseScopes(spec.Scopes)
	if err != nil {
		return "", err
	}
	if HasScope(scopes, ScopeAdmin) && !u.IsAdmin {
		return "", apperr.New(apperr.ErrForbidden, "only an administrator's token may have the admin scope")
	}
	if !spec.Expires.IsZero() && !spec.Expires.After(a.st.Now()) {
		return "", apperr.New(apperr.ErrBadRequest, "a token's expiry must be in the future")
	}
	secret, err := newSecret()
	if err != nil {
		return "", err
	}
	tok := apiTokenPrefix + secret
	if err := a.st.CreateToken(ctx, store.NewToken{UserID: u.ID, Name: name, TokenHash: secretHash(tok), Scopes: scopes, Expires: spec.Expires}); err != nil {
		return "", err
	}
	return tok, nil
}

// RevokeToken deletes u's token called name.
func (a *Service) RevokeToken(ctx context.Context, u store.User, name string) error {
	return a.st.DeleteToken(ctx, u.ID, name)
}

// CreateInvite returns a one-use registration code; admins only.
func (a *Service) CreateInvite(ctx context.Context, admin store.User) (string, error) {
	if !admin.IsAdmin {
		return "", apperr.ErrNotAdmin
	}
	code, err := newSecret()
	if err != nil {
		return "", err
	}
	if err := a.st.CreateInvite(ctx, secretHash(code), admin.ID, a.st.Now().Add(DefaultInviteTTL)); err != nil {
		return "", err
	}
	return code, nil
}

// Invitation reports who made invite code (their display name, or username;
// "" if the account is gone) and whether the code is still unused and
// unexpired, for the register page.
func (a *Service) Invitation(ctx context.Context, code string) (string, bool, error) {
	return a.st.Invitation(ctx, secretHash(code))
}

// SetRegistration switches registration between "open" and "invite"; admins only.
func (a *Service) SetRegistration(ctx context.Context, admin store.User, mode string) error {
	if !admin.IsAdmin {
		return apperr.ErrNotAdmin
	}
	if mode != store.RegistrationOpen && mode != store.RegistrationInvite {
		return apperr.New(apperr.ErrBadRequest, `registration must be "open" or "invite"`)
	}
	return a.st.SetSetting(ctx, store.SettingRegistration, mode)
}

// UserFromRequest authenticates an HTTP request: "Authorization: Bearer
// <API token>" first, else the session cookie. The WebSocket and SockJS
// handlers use it to fill connInfo.User.
func (a *Service) UserFromRequest(r *http.Request) (store.User, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return store.User{}, apperr.ErrNotLoggedIn
		}
		return a.UserByToken(r.Context(), strings.TrimSpace(tok))
	}
	c, err := r.Cookie(proto.SessionCookieName)
	if err != nil {
		return store.User{}, apperr.ErrNotLoggedIn
	}
	return a.UserBySession(r.Context(), c.Value)
}

// SetSessionCookie sets the login cookie: HttpOnly (scripts cannot read
// it), SameSite=Lax (no cross-site POSTs carry it) and Secure when the
// request came over TLS (plain-HTTP intranet installs must still work).
// Its lifetime is Max-Age, relative, so a browser whose clock disagrees
// with the server's (a Pi without RTC) still keeps it for the TTL.
func SetSessionCookie(w http.ResponseWriter, r *http.Request, s Session) {
	http.SetCookie(w, &http.Cookie{
		Name:     proto.SessionCookieName,
		Value:    s.Token,
		Path:     "/",
		MaxAge:   int(s.TTL.Seconds()),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
}

// ClearSessionCookie removes the login cookie.
func ClearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name:     proto.SessionCookieName,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
}

// loginLimiter counts recent login failures per username and client
// address (loginKey). Safe for concurrent use; the lock is held only for
// map operations.
type loginLimiter struct {
	now func() time.Time
	max int // failures per key within the window
	mu  sync.Mutex
	m   map[string]*loginFailures
}

type loginFailures struct {
	count int
	since time.Time // start of the current window
}

func newLoginLimiter(now func() time.Time, maxFailures int) *loginLimiter {
	if maxFailures <= 0 {
		maxFailures = MaxLoginFailures
	}
	return &loginLimiter{now: now, max: maxFailures, m: make(map[string]*loginFailures)}
}

func (l *loginLimiter) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.m[key]
	if f == nil {
		return true
	}
	if l.now().Sub(f.since) >= loginFailureWindow {
		delete(l.m, key)
		return true
	}
	return f.count < l.max
}

func (l *loginLimiter) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f := l.m[key]
	if f == nil || now.Sub(f.since) >= loginFailureWindow {
		if len(l.m) >= maxLimiterEntries {
			for k, v := range l.m {
				if now.Sub(v.since) >= loginFailureWindow {
					delete(l.m, k)
				}
			}
			if len(l.m) >= maxLimiterEntries {
				clear(l.m) // a spray of names; forgetting beats growing without bound
			}
		}
		f = &loginFailures{since: now}
		l.m[key] = f
	}
	f.count++
}

func (l *loginLimiter) reset(key string) {
	l.mu.Lock()
	delete(l.m, key)
	l.mu.Unlock()
}

// FailedLogins is how many wrong passwords username has had, from every
// address, since the last good one from that address (or since they
// expired).
func (a *Service) FailedLogins(username string) int {
	prefix := store.UsernameKey(username) + "\x00"
	a.limiter.mu.Lock()
	defer a.limiter.mu.Unlock()
	n := 0
	for k, f := range a.limiter.m {
		if strings.HasPrefix(k, prefix) {
			n += f.count
		}
	}
	return n
}

// loginKey is what the login throttle counts by: the account and the
// client's address (AddressKey).
func loginKey(username, remote string) string {
	return store.UsernameKey(username) + "\x00" + AddressKey(remote)
}

// AddressKey is the part of a client address (host:port or a bare host)
// that login limits count by: the host, and for IPv6 its /64, the block
// one machine may pick addresses from at will.
func AddressKey(remote string) string {
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	if ip = ip.Unmap(); ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}

// remoteKey is the context key of the client's address.
type remoteKey struct{}

// WithRemote returns ctx carrying the client's address (host:port), for
// the login throttle: the HTTP login passes r.RemoteAddr, a STOMP CONNECT
// the connection's address.
func WithRemote(ctx context.Context, remote string) context.Context {
	return context.WithValue(ctx, remoteKey{}, remote)
}

// RemoteFrom returns the client's address WithRemote put in ctx, "" if none.
func RemoteFrom(ctx context.Context) string {
	r, _ := ctx.Value(remoteKey{}).(string)
	return r
}
