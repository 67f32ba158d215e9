package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"stompbox/internal/apperr"
	"stompbox/internal/auth"
	"stompbox/internal/chat"
	"stompbox/internal/files"
	"stompbox/internal/proto"
	"stompbox/internal/ratelimit"
	"stompbox/internal/store"
	"strconv"
	"time"
)

// API limits.
const (
	// MaxAPIBodyBytes bounds every JSON or form body except message posts
	// (chatService.maxInputBytes): room names, logins and settings are small.
	MaxAPIBodyBytes = 64 << 10
)

// API is the HTTP JSON API under /api/. It holds no state of its own;
// handlers are safe for concurrent use.
type API struct {
	chat *chat.Service
	auth *auth.Service
	log  *slog.Logger
	csrf *http.CrossOriginProtection // refuses cross-origin browser writes (Sec-Fetch-Site / Origin)
	lim  *ratelimit.Limiter          // the broker's limiter: message posts share the users' STOMP SEND buckets

	files *files.Service // uploads and downloads (api_files.go); nil: no file routes
}

// NewAPI builds the API; routes registers it on a mux. lim is the broker's
// rate limiter (nil: no limits), shared so that a user's STOMP SENDs and
// HTTP message posts draw from one allowance.
func NewAPI(chat *chat.Service, auth *auth.Service, files *files.Service, lim *ratelimit.Limiter, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{chat: chat, auth: auth, files: files, log: log, csrf: http.NewCrossOriginProtection(), lim: lim}
}

// Routes is the API's one routing table (Go 1.22 patterns).
func (a *API) Routes(mux *http.ServeMux) {
	mux.Handle("POST /api/register", a.handle(a.register))
	mux.Handle("POST /api/login", a.handle(a.login))
	mux.Handle("POST /api/logout", a.handle(a.logout))
	mux.Handle("GET /api/me", a.Authed(a.me))
	mux.Handle("PUT /api/me/webhook", a.Authed(a.setWebhook))
	mux.Handle("GET /api/users", a.Authed(a.users))
	mux.Handle("POST /api/tokens", a.Authed(a.createToken))
	mux.Handle("DELETE /api/tokens/{name}", a.Authed(a.revokeToken))

	mux.Handle("GET /api/rooms", a.Authed(a.rooms))
	mux.Handle("POST /api/rooms", a.Authed(a.createRoom))
	mux.Handle("PATCH /api/rooms/{id}", a.Authed(a.updateRoom))
	mux.Handle("POST /api/rooms/{id}/join", a.Authed(a.join))
	mux.Handle("POST /api/rooms/{id}/leave", a.Authed(a.leave))
	mux.Handle("POST /api/rooms/{id}/members", a.Authed(a.addMember))
	mux.Handle("GET /api/rooms/{id}/members", a.Authed(a.members))
	mux.Handle("DELETE /api/rooms/{id}/members/{username}", a.Authed(a.removeMember))
	mux.Handle("GET /api/rooms/{id}/messages", a.Authed(a.messages))
	mux.Handle("POST /api/rooms/{id}/messages", a.Authed(a.postMessage))
	mux.Handle("PATCH /api/rooms/{id}/messages/{mid}", a.Authed(a.editMessage))
	mux.Handle("DELETE /api/rooms/{id}/messages/{mid}", a.Authed(a.deleteMessage))
	mux.Handle("PUT /api/rooms/{id}/messages/{mid}/reactions/{emoji}", a.Authed(a.react(true)))
	mux.Handle("DELETE /api/rooms/{id}/messages/{mid}/reactions/{emoji}", a.Authed(a.react(false)))
	mux.Handle("POST /api/rooms/{id}/read", a.Authed(a.markRead))
	mux.Handle("GET /api/rooms/{id}/export", a.Authed(a.export))
	mux.Handle("POST /api/dm/{username}", a.Authed(a.openDM))
	mux.Handle("GET /api/search", a.Authed(a.search))
	if a.files != nil {
		a.filesRoutes(mux)
	}

	mux.Handle("GET /api/admin/backup", a.Authed(a.Admin(a.backup)))
	mux.Handle("PUT /api/admin/registration", a.Authed(a.Admin(a.setRegistration)))
	mux.Handle("POST /api/admin/invites", a.Authed(a.Admin(a.createInvite)))
}

type apiFunc func(w http.ResponseWriter, r *http.Request) error
type authedFunc func(w http.ResponseWriter, r *http.Request, u store.User) error

// errCrossOrigin refuses a state-changing request a browser sent from
// another origin. SameSite=Lax alone does not cover other ports of the
// same host, which are "same site": common on an intranet box.
var errCrossOrigin = apperr.New(apperr.ErrForbidden, "cross-origin request refused")

// handle runs h and turns its error into a JSON error response, logged
// once here. Unsafe methods from another origin are refused first.
func (a *API) handle(h apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if err := a.csrf.Check(r); err != nil {
			a.fail(w, r, fmt.Errorf("%w: %v", errCrossOrigin, err))
			return
		}
		if err := h(w, r); err != nil {
			a.fail(w, r, err)
		}
	})
}

// Authed is handle for requests that need a user (Bearer token or cookie).
func (a *API) Authed(h authedFunc) http.Handler {
	return a.handle(func(w http.ResponseWriter, r *http.Request) error {
		u, err := a.auth.UserFromRequest(r)
		if err != nil {
			return err
		}
		if err := checkScope(r, u); err != nil { // a token's scopes (api_tokens.go)
			return err
		}
		return h(w, r, u)
	})
}

// Admin restricts an authed handler to administrators.
func (a *API) Admin(h authedFunc) authedFunc {
	return func(w http.ResponseWriter, r *http.Request, u store.User) error {
		if !u.IsAdmin {
			return apperr.ErrNotAdmin
		}
		if !auth.Allows(u, auth.ScopeAdmin) {
			return auth.ErrScope(auth.ScopeAdmin)
		}
		return h(w, r, u)
	}
}

// fail writes {"error": "..."} with the status httpStatus chooses. Only
// publicMessage's text reaches the client; the log gets the whole error.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := apperr.HTTPStatus(err)
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", status, "err", err}
	switch {
	case status >= 500:
		a.log.Error("api request failed", attrs...)
	case status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge || status == http.StatusTooManyRequests:
		a.log.Warn("api request refused", attrs...)
	default:
		a.log.Debug("api request refused", attrs...)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(auth.BusyRetryAfter))
	}
	writeAPIJSON(w, status, map[string]string{"error": apperr.Message(err)})
}

// writeAPIJSON writes v with status. It returns nil even if the write fails:
// the status line is out, so the only failure left is a client that went
// away, and there is nobody to tell.
func writeAPIJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
	return nil
}

// decodeAPIJSON reads a JSON body of at most limit bytes into v.
func decodeAPIJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return apperr.ErrBadJSON
	}
	return nil
}

// isForm reports whether the body is an HTML form (login and register
// accept forms for the server-rendered pages).
func isForm(r *http.Request) bool {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return ct == "application/x-www-form-urlencoded" || ct == "multipart/form-data"
}

// roomPathID parses the {id} path segment; a malformed id names no room.
func roomPathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, apperr.ErrUnknownRoom
	}
	return id, nil
}

// queryNonNegative parses an optional non-negative integer query parameter.
func queryNonNegative(r *http.Request, name string) (int64, bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, false, apperr.New(apperr.ErrBadRequest, fmt.Sprintf("%s must be a non-negative integer", name))
	}
	return n, true, nil
}

// credentials is the body of /api/register and /api/login.
type credentials struct {
	Username    string `json:"username"`
	DisplayName string `json:"displayName"`
	Password    string `json:"password"`
	Invite      string `json:"invite"`
	Guest       string `json:"guest"` // login only: a guest name instead of username/password
}

func readCredentials(w http.ResponseWriter, r *http.Request) (credentials, error) {
	var c credentials
	if !isForm(r) {
		return c, decodeAPIJSON(w, r, MaxAPIBodyBytes, &c)
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxAPIBodyBytes)
	parse := r.ParseForm
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "multipart/form-data" {
		parse = func() error { return r.ParseMultipartForm(MaxAPIBodyBytes) }
	}
	if err := parse(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return c, err
		}
		return c, apperr.New(apperr.ErrBadRequest, "malformed form")
	}
	c = credentials{
		Username: r.PostForm.Get("username"), DisplayName: r.PostForm.Get("displayName"),
		Password: r.PostForm.Get("password"), Invite: r.PostForm.Get("invite"), Guest: r.PostForm.Get("guest"),
	}
	return c, nil
}

// register creates an account and logs it in: 201 with the user and the
// session cookie.
func (a *API) register(w http.ResponseWriter, r *http.Request) error {
	c, err := readCredentials(w, r)
	if err != nil {
		return err
	}
	u, err := a.auth.Register(r.Context(), auth.Registration{Username: c.Username, DisplayName: c.DisplayName, Password: c.Password, Invite: c.Invite})
	if err != nil {
		return err
	}
	s, err := a.auth.NewSession(r.Context(), u)
	if err != nil {
		return err
	}
	auth.SetSessionCookie(w, r, s)
	return writeAPIJSON(w, http.StatusCreated, u)
}

// login checks username/password (or takes a guest name when guests are
// allowed) and sets the session cookie.
func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	c, err := readCredentials(w, r)
	if err != nil {
		return err
	}
	var (
		u store.User
		s auth.Session
	)
	if c.Guest != "" {
		u, s, err = a.auth.GuestLogin(r.Context(), c.Guest)
	} else {
		u, s, err = a.auth.Login(auth.WithRemote(r.Context(), r.RemoteAddr), c.Username, c.Password) // the throttle counts per account and address
	}
	if err != nil {
		return err
	}
	auth.SetSessionCookie(w, r, s)
	return writeAPIJSON(w, http.StatusOK, u)
}

// logout ends the cookie's loginSession (if any) and clears the cookie.
func (a *API) logout(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(proto.SessionCookieName); err == nil {
		if err := a.auth.Logout(r.Context(), c.Value); err != nil {
			return err
		}
	}
	auth.ClearSessionCookie(w, r)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) me(w http.ResponseWriter, r *http.Request, u store.User) error {
	return writeAPIJSON(w, http.StatusOK, u)
}

func (a *API) setWebhook(w http.ResponseWriter, r *http.Request, u store.User) error {
	var body struct {
		URL string `json:"url"`
	}
	if err := decodeAPIJSON(w, r, MaxAPIBodyBytes, &body); err != nil {
		return err
	}
	if err := a.chat.SetWebhook(r.Context(), u, body.URL); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) users(w http.ResponseWriter, r *http.Request, u store.User) error {
	us, err := a.chat.Users(r.Context())
	if err != nil {
		return err
	}
	return writeAPIJSON(w, http.StatusOK, apiList(us))
}

// apiList makes an empty list encode as [] rather than null.
func apiList[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// backup streams a consistent copy of the database. VACUUM INTO needs a
// file, so the copy goes to a temporary directory beside the database
// (same file system, no surprise /tmp quota) and is removed afterwards.
func (a *API) backup(w http.ResponseWriter, r *http.Request, u store.User) error {
	dir, err := os.MkdirTemp(filepath.Dir(a.chat.St.Path), "backup-")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, store.StoreFileName)
	if err := a.chat.Backup(r.Context(), path); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	name := "stompbox-" + a.chat.St.Now().UTC().Format("20060102-150405") + ".db"
	w.Header().Set("Content-Type", "application/vnd.sqlite3")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	if fi, err := f.Stat(); err == nil {
		w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	}
	if _, err := io.Copy(w, f); err != nil {
		// Headers are gone; all we can do is log and cut the response.
		a.log.Warn("backup download interrupted", "err", err)
	}
	a.log.Info("backup downloaded", "user", u.Username)
	return nil
}

func (a *API) setRegistration(w http.ResponseWriter, r *http.Request, u store.User) error {
	var body struct {
		Mode string `json:"mode"`
	}
	if err := decodeAPIJSON(w, r, MaxAPIBodyBytes, &body); err != nil {
		return err
	}
	if err := a.auth.SetRegistration(r.Context(), u, body.Mode); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) createInvite(w http.ResponseWriter, r *http.Request, u store.User) error {
	code, err := a.auth.CreateInvite(r.Context(), u)
	if err != nil {
		return err
	}
	return writeAPIJSON(w, http.StatusCreated, map[string]any{"code": code, "expiresAt": a.chat.St.Now().Add(auth.DefaultInviteTTL).UTC().Format(time.RFC3339)})
}
