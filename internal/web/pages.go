package web

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/a-h/templ"

	"stompbox/internal/proto"
	"stompbox/ui"
)

// UIUser is the signed-in person as the pages need them. The lead's auth
// code converts its own user type into this one in pagesOptions.currentUser.
type UIUser struct {
	ID          int64
	Username    string
	DisplayName string
	IsAdmin     bool
}

// PagesOptions is everything the HTML pages need from the rest of the
// server, as functions, so pages.go depends on no store type and tests can
// use fakes.
type PagesOptions struct {
	// currentUser returns the person signed in by r's session cookie. It must
	// be safe to call from many goroutines.
	CurrentUser func(r *http.Request) (UIUser, bool)
	// hasAnyUser reports whether any account exists; when none does, every
	// page leads to /setup, which creates the administrator.
	HasAnyUser func(ctx context.Context) (bool, error)
	// lang is the server's default language ("ko" or "en"), used when neither
	// the language cookie nor Accept-Language decides.
	Lang string
	// sockjsPath is the SockJS endpoint app.js connects to (default "/ws-stomp").
	SockJSPath string
	// wsPath is the raw WebSocket endpoint, used when a page is opened with
	// ?transport=ws (default "/ws").
	WSPath string
	// maxMessage is the most characters in one chat message (-max-message)
	// and maxSubscriptions the most subscriptions per connection
	// (-max-subscriptions); app.js checks and plans with them. Zero leaves
	// app.js's own defaults, which equal the server's.
	MaxMessage, MaxSubscriptions int
	// editMinutes is -edit-minutes, so app.js offers "edit" only while the
	// server would accept it (0: forever).
	EditMinutes int
	// maxUpload is -max-upload in bytes, for upload.js; zero leaves its default.
	MaxUpload int64
	// frameAncestors are the origins allowed to frame /embed/room/{id}
	// (CSP frame-ancestors sources, e.g. "https://intranet.corp.example").
	// Empty allows only this server itself. Other pages may never be framed.
	FrameAncestors []string
	// nodeURLs are -cluster-urls: the chat page offers them when the
	// connection to this node stays down.
	NodeURLs []string
	// static serves /static/ and fingerprints the URLs the pages link to.
	// Pass the server's own instance so the files are loaded and gzipped once;
	// nil makes newPages load them itself.
	Static *ui.Static
	// registration returns the sign-up mode ("open" or "invite"), which the
	// admin page shows as the pressed button; nil shows neither.
	Registration func(ctx context.Context) (string, error)
	// invitation returns the name of who made an invite code and whether
	// the code is unused and unexpired, for the register page; nil skips it.
	Invitation func(ctx context.Context, code string) (inviter string, ok bool, err error)
	// log receives page-rendering errors; nil discards them.
	Log *slog.Logger
}

// Defaults of pagesOptions.
const (
	defaultUIWSPath   = "/ws"
	uiHeartBeatMillis = 10000 // STOMP heart-beat app.js asks for: stompjs's default, and the broker's
	pageCacheControl  = "no-store"
	pageCSPScriptSrc  = "'self'" // no 'unsafe-inline': app.js gets its data from the boot JSON element
	maxNextPathLength = 512      // a login "next" longer than this is not a page of ours
)

// Pages serves the HTML pages and the static files. It holds only values
// set in newPages, so its handlers may run concurrently.
type Pages struct {
	opts   PagesOptions
	static *ui.Static
	log    *slog.Logger
}

// NewPages builds the page handlers. Without opts.static it loads the
// embedded static files, and panics if that fails, which only a broken build
// can cause.
func NewPages(opts PagesOptions) *Pages {
	static := opts.Static
	if static == nil {
		var err error
		if static, err = ui.NewStatic(); err != nil {
			panic(fmt.Sprintf("stompbox: %v", err))
		}
	}
	if opts.SockJSPath == "" {
		opts.SockJSPath = proto.DefaultSockJSPath
	}
	if opts.WSPath == "" {
		opts.WSPath = defaultUIWSPath
	}
	if !ui.SupportedLang(opts.Lang) {
		opts.Lang = ui.LangEnglish
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pages{opts: opts, static: static, log: log}
}

// Routes registers the pages and GET /static/ on mux. (The server must not
// register /static/ itself as well: ServeMux panics on a duplicate pattern.)
func (p *Pages) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", p.serveChat)
	mux.HandleFunc("GET /setup", p.serveSetup)
	mux.HandleFunc("GET /login", p.serveLogin)
	mux.HandleFunc("GET /register", p.serveRegister)
	mux.HandleFunc("GET /settings", p.serveSettings)
	mux.HandleFunc("GET /admin", p.serveAdmin)
	mux.HandleFunc("GET /embed/room/{id}", p.serveEmbed)
	mux.Handle("GET "+ui.StaticPrefix, p.static)
	mux.HandleFunc("GET /sw.js", p.serveServiceWorker)
}

// serveServiceWorker serves static/sw.js at /sw.js: a service worker's
// scope is the folder it is served from, and the app's is the whole site.
// It is always revalidated (no ?v= fingerprint), so a new version reaches
// browsers on their next visit.
func (p *Pages) serveServiceWorker(w http.ResponseWriter, r *http.Request) {
	r2 := r.Clone(r.Context())
	r2.URL.Path = ui.StaticPrefix + "sw.js"
	r2.URL.RawQuery = ""
	p.static.ServeHTTP(w, r2)
}

// gate decides where a request for a page that needs an account goes: to
// /setup when there is no account at all, to /login when signed out. It
// writes the redirect or error and returns false, or returns the user.
func (p *Pages) gate(w http.ResponseWriter, r *http.Request) (UIUser, bool) {
	if u, ok := p.opts.CurrentUser(r); ok {
		return u, true
	}
	exists, err := p.opts.HasAnyUser(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return UIUser{}, false
	}
	if !exists {
		http.Redirect(w, r, "/setup", http.StatusSeeOther)
		return UIUser{}, false
	}
	target := "/login"
	if r.URL.RequestURI() != "/" {
		target += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return UIUser{}, false
}

func (p *Pages) serveChat(w http.ResponseWriter, r *http.Request) {
	u, ok := p.gate(w, r)
	if !ok {
		return
	}
	pg := p.page(r, "chat", "app.name", &u)
	p.render(w, r, http.StatusOK, ui.ChatPage(pg, toUIUser(u)), nil)
}

func (p *Pages) serveSetup(w http.ResponseWriter, r *http.Request) {
	exists, err := p.opts.HasAnyUser(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if exists {
		http.Redirect(w, r, "/", http.StatusSeeOther) // / sends signed-out people on to /login
		return
	}
	p.render(w, r, http.StatusOK, ui.SetupPage(p.page(r, "setup", "setup.title", nil)), nil)
}

// serveLogin and serveRegister send people who are already signed in to the
// chat, and everyone to /setup while there is no account.
func (p *Pages) serveLogin(w http.ResponseWriter, r *http.Request) {
	p.serveSignedOut(w, r, "login", "login.title", ui.LoginPage)
}

func (p *Pages) serveRegister(w http.ResponseWriter, r *http.Request) {
	p.serveSignedOut(w, r, "register", "register.title", func(pg ui.Page) templ.Component {
		if code := r.URL.Query().Get("invite"); code != "" && p.opts.Invitation != nil {
			inviter, ok, err := p.opts.Invitation(r.Context(), code)
			if err != nil {
				p.log.Error("page", "path", r.URL.Path, "err", err) // the form still works without the note
			} else {
				pg.Invite = &ui.Invitation{Inviter: inviter, Server: r.Host, Valid: ok}
			}
		}
		return ui.RegisterPage(pg)
	})
}

func (p *Pages) serveSignedOut(w http.ResponseWriter, r *http.Request, name, title string, comp func(ui.Page) templ.Component) {
	next := SafeNext(r.URL.Query().Get("next"))
	if _, ok := p.opts.CurrentUser(r); ok {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	exists, err := p.opts.HasAnyUser(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if !exists {
		http.Redirect(w, r, "/setup", http.StatusSeeOther)
		return
	}
	pg := p.page(r, name, title, nil)
	pg.Boot.Next = next
	p.render(w, r, http.StatusOK, comp(pg), nil)
}

func (p *Pages) serveSettings(w http.ResponseWriter, r *http.Request) {
	u, ok := p.gate(w, r)
	if !ok {
		return
	}
	p.render(w, r, http.StatusOK, ui.SettingsPage(p.page(r, "settings", "settings.title", &u), toUIUser(u)), nil)
}

func (p *Pages) serveAdmin(w http.ResponseWriter, r *http.Request) {
	u, ok := p.gate(w, r)
	if !ok {
		return
	}
	if !u.IsAdmin {
		p.render(w, r, http.StatusForbidden, ui.ForbiddenPage(p.page(r, "forbidden", "admin.title", &u)), nil)
		return
	}
	pg := p.page(r, "admin", "admin.title", &u)
	if p.opts.Registration != nil {
		mode, err := p.opts.Registration(r.Context())
		if err != nil {
			p.fail(w, r, err)
			return
		}
		pg.Registration = mode
	}
	p.render(w, r, http.StatusOK, ui.AdminPage(pg), nil)
}

// serveEmbed renders one room for an iframe. A signed-out visitor gets a
// link that opens the login page in a new tab, not a redirect: the login
// page refuses to be framed, and the session cookie set in a top-level tab is
// what the frame then uses (when the embedding page is same-site).
func (p *Pages) serveEmbed(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		http.NotFound(w, r)
		return
	}
	u, signedIn := p.opts.CurrentUser(r)
	var up *UIUser
	if signedIn {
		up = &u
	}
	pg := p.page(r, "embed", "app.name", up)
	pg.Boot.RoomID = id
	p.render(w, r, http.StatusOK, ui.EmbedPage(pg, signedIn), p.embedAncestors())
}

// embedAncestors is the CSP frame-ancestors source list of the embed page.
func (p *Pages) embedAncestors() []string {
	return append([]string{"'self'"}, p.opts.FrameAncestors...)
}

// page builds the data every page component gets.
func (p *Pages) page(r *http.Request, name, titleKey string, u *UIUser) ui.Page {
	lang := p.lang(r)
	loc := ui.NewLocale(lang)
	title := loc.T(titleKey)
	if titleKey != "app.name" {
		title += " · stompbox"
	}
	pg := ui.Page{
		Loc:    loc,
		Title:  title,
		Assets: p.static,
		Boot: ui.Boot{
			Page:        name,
			Lang:        lang,
			DefaultLang: p.opts.Lang,
			SockJSPath:  p.opts.SockJSPath,
			WSPath:      p.opts.WSPath,
			HeartbeatMs: uiHeartBeatMillis,

			MaxMessage:       p.opts.MaxMessage,
			MaxSubscriptions: p.opts.MaxSubscriptions,
			EditMinutes:      p.opts.EditMinutes,
			MaxUpload:        p.opts.MaxUpload,
			Nodes:            p.opts.NodeURLs,
		},
	}
	if u != nil {
		uu := toUIUser(*u)
		pg.Boot.User = &uu
	}
	return pg
}

// lang picks the page language: the stompbox_lang cookie app.js sets, then
// Accept-Language, then the server default.
func (p *Pages) lang(r *http.Request) string {
	cookie := ""
	if c, err := r.Cookie(ui.LangCookie); err == nil {
		cookie = c.Value
	}
	return ui.MatchLang(cookie, r.Header.Get("Accept-Language"), p.opts.Lang)
}

// render writes a page with the headers every page gets: no caching (pages
// carry the person's name), a CSP without inline scripts or styles, and no
// framing except for the embed page, which passes its ancestors.
func (p *Pages) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component, frameAncestors []string) {
	ancestors := "'none'"
	if len(frameAncestors) > 0 {
		ancestors = strings.Join(frameAncestors, " ")
	} else {
		w.Header().Set("X-Frame-Options", "DENY") // for browsers without CSP frame-ancestors
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", pageCacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src "+pageCSPScriptSrc+
		"; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors "+ancestors)
	// Render into memory first, so a template error becomes a clean 500
	// instead of half a page.
	var buf bytes.Buffer
	if err := c.Render(r.Context(), &buf); err != nil {
		p.fail(w, r, fmt.Errorf("render page: %w", err))
		return
	}
	w.WriteHeader(status)
	buf.WriteTo(w)
}

// fail logs an internal error and answers 500 without details.
func (p *Pages) fail(w http.ResponseWriter, r *http.Request, err error) {
	p.log.Error("page", "path", r.URL.Path, "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// SafeNext returns next if it is a path on this server, else "/": a login
// link must not send people to another site (open redirect).
func SafeNext(next string) string {
	if next == "" || len(next) > maxNextPathLength || !strings.HasPrefix(next, "/") ||
		strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}

func toUIUser(u UIUser) ui.User {
	return ui.User{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, IsAdmin: u.IsAdmin}
}
