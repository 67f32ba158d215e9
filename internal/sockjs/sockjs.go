package sockjs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"stompbox/internal/transport"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults and limits. The protocol values come from sockjs-protocol 0.3 and
// sockjs-node's defaults, which sockjs-client 1.x is tuned for.
const (
	DefaultHeartbeat           = 25 * time.Second               // sockjs-protocol: "The typical delay is 25 seconds"; under the 30–60 s idle timeouts of common proxies
	DefaultDisconnectDelay     = 5 * time.Second                // sockjs-protocol: a session times out 5 s after its last receiving connection
	defaultSockJSResponseLimit = 128 << 10                      // sockjs-protocol: close a streaming response every 128 KiB so the browser can free what it buffered
	defaultSockJSClientURL     = "/static/vendor/sockjs.min.js" // served by the binary itself: the appliance runs offline, no CDN
	sockjsWriteTimeout         = 10 * time.Second               // deadline on every write; a client that cannot take one frame in 10 s is gone
	sockjsMaxQueueBytes        = 1 << 20                        // outbound bytes a session buffers while no receiver polls; beyond that the client is a slow consumer and is closed
	sockjsMaxMessageBytes      = 1 << 20                        // largest xhr_send/jsonp_send body or WebSocket message: STOMP frames are capped at 64 KiB and JSON escaping can grow them 6-fold
	sockjsMaxSessions          = 10000                          // live sessions per endpoint; each costs goroutines and a broker session, so a flood of new session ids is refused
	sockjsCacheMaxAge          = 365 * 24 * time.Hour           // one year, the cache lifetime the suite asks of OPTIONS and /iframe.html
	sockjsXHRStreamingPrelude  = 2048                           // 'h' bytes before the first xhr_streaming frame: old IE fires no progress event before 2 KiB
	sockjsHTMLFilePadding      = 1024                           // the htmlfile prelude is padded past 1 KiB so IE starts rendering the document
	sockjsBusyGrace            = 250 * time.Millisecond         // how long a new receiver waits for the attached one to prove gone before 2010; only misbehaving clients ever pay it
	sockjsAbortGrace           = time.Second                    // after Close's ctx ends and connections are cut, how long Close still waits for goroutines
)

// Options configures one SockJS endpoint. Zero durations, limits,
// strings and slices select the defaults.
type Options struct {
	Prefix          string                                     // path the endpoint is mounted at, e.g. "/ws-stomp"; no trailing slash
	Websocket       bool                                       // false disables the WebSocket transports: /info says websocket:false and /websocket is 404
	CookieNeeded    bool                                       // set a JSESSIONID cookie on session requests, for sticky load balancers (/info cookie_needed)
	Heartbeat       time.Duration                              // silence after which an 'h' frame is sent; 0 = defaultSockJSHeartbeat
	DisconnectDelay time.Duration                              // how long a session waits for a new receiver; 0 = defaultSockJSDisconnectDelay
	ResponseLimit   int                                        // bytes after which a streaming response is ended; 0 = defaultSockJSResponseLimit
	ClientURL       string                                     // sockjs-client URL loaded by /iframe.html; "" = defaultSockJSClientURL
	CheckOrigin     func(r *http.Request) bool                 // origin policy for every request (403 when false); nil allows every origin, as the suite needs
	Origins         []string                                   // reported by /info "origins"; nil = ["*:*"] (sockjs-client ignores it)
	Identify        func(r *http.Request) (user, login string) // the user the HTTP layer authenticated (cookie) and its credential's key, for transport.Info; nil = none
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	o.Prefix = strings.TrimSuffix(o.Prefix, "/")
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.DisconnectDelay <= 0 {
		o.DisconnectDelay = DefaultDisconnectDelay
	}
	if o.ResponseLimit <= 0 {
		o.ResponseLimit = defaultSockJSResponseLimit
	}
	if o.ClientURL == "" {
		o.ClientURL = defaultSockJSClientURL
	}
	if o.Origins == nil {
		o.Origins = []string{"*:*"}
	}
	return o
}

// identify returns the authenticated user of the request that opens a session.
func (o Options) identify(r *http.Request) (user, login string) {
	if o.Identify == nil {
		return "", ""
	}
	return o.Identify(r)
}

// errSockJSShuttingDown is returned when a session is requested after Close.
var errSockJSShuttingDown = errors.New("sockjs: server shutting down")

// Server serves one SockJS endpoint: every path under opts.Prefix.
//
// Ownership: the server owns every session and every goroutine it starts
// (the accept callbacks, WebSocket readers and heart-beaters, disconnect
// timers). They are counted in wg, which Close waits for. Lock order:
// sockjsSession.mu before sockjsServer.mu; no lock is held across I/O.
type Server struct {
	Opts       Options
	log        *slog.Logger
	accept     func(t transport.Conn, info transport.Info) // runs one session to completion
	iframe     []byte                                      // the /iframe.html body
	iframeETag string                                      // strong ETag of iframe

	ctx      context.Context    // base for hijacked connections; never r.Context() after Accept
	cancel   context.CancelFunc // ends ctx: the last step of Close, or when Close gives up
	stopping chan struct{}      // closed when Close begins: sessions say "Go away!"
	wg       sync.WaitGroup     // every goroutine the server owns and every request in ServeHTTP
	nextID   atomic.Uint64      // numbers sessions for logs (the SockJS session id must stay private)
	wsLive   atomic.Int64       // live WebSocket sessions (not in sessions: ids may be reused)

	mu       sync.Mutex
	closing  bool                      // set by Close; no new session or request is tracked after it
	drained  chan struct{}             // closed when wg has drained after Close began
	sessions map[string]*sockjsSession // HTTP-transport sessions by SockJS session id
}

// New returns a server for opts. accept is called once per new
// session, on a goroutine the server owns; it must run the session to
// completion (until Read fails) and return. Close waits for it.
func New(opts Options, log *slog.Logger, accept func(t transport.Conn, info transport.Info)) *Server {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		Opts:     opts,
		log:      log.With("endpoint", opts.Prefix),
		accept:   accept,
		ctx:      ctx,
		cancel:   cancel,
		stopping: make(chan struct{}),
		sessions: make(map[string]*sockjsSession),
	}
	s.iframe = fmt.Appendf(nil, sockjsIframeTemplate, html.EscapeString(opts.ClientURL))
	sum := sha256.Sum256(s.iframe)
	s.iframeETag = `"` + hex.EncodeToString(sum[:16]) + `"`
	return s
}

// sockjsIframeTemplate is the page sockjs-client loads in a hidden iframe for
// transports that cannot go cross-origin (sockjs-protocol 0.3, "IFrame
// page"); the suite matches it byte for byte except the script URL.
const sockjsIframeTemplate = `<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script src="%s"></script>
  <script>
    document.domain = document.domain;
    SockJS.bootstrap_iframe();
  </script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>`

// track counts one more owned goroutine or request. It fails once Close has
// begun, so wg.Add never races with wg.Wait.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.wg.Add(1)
	return true
}

// Sessions returns the number of live sessions of every transport. An HTTP
// session counts until it is reaped, DisconnectDelay after its last request;
// a WebSocket session until its connection is closed.
func (s *Server) Sessions() int {
	s.mu.Lock()
	n := len(s.sessions)
	s.mu.Unlock()
	return n + int(s.wsLive.Load())
}

// Close ends every session, with the close frame c[3000,"Go away!"] where the
// transport can still carry it, and waits for every goroutine the server
// owns, including the accept callbacks (which must return once Read fails).
// If ctx ends first it cuts every connection, waits at most sockjsAbortGrace
// more and returns ctx's error. Requests arriving after Close get 503. Call
// it before http.Server.Shutdown, which does not wait for hijacked WebSocket
// connections. Close may be called more than once.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	first := !s.closing
	var sessions []*sockjsSession
	if first {
		s.closing = true
		close(s.stopping)
		for _, sess := range s.sessions {
			sessions = append(sessions, sess)
		}
		s.drained = make(chan struct{})
		go func() { // ends with the last owned goroutine
			s.wg.Wait()
			close(s.drained)
		}()
	}
	drained := s.drained
	s.mu.Unlock()

	for _, sess := range sessions {
		sess.goAway()
	}
	select {
	case <-drained:
		s.cancel()
		return nil
	case <-ctx.Done():
	}
	s.cancel()
	select {
	case <-drained:
	case <-time.After(sockjsAbortGrace):
		s.log.Error("sockjs close: goroutines still running", "grace", sockjsAbortGrace)
	}
	return fmt.Errorf("close sockjs %s: %w", s.Opts.Prefix, ctx.Err())
}

// ServeHTTP serves every path under the prefix. Mount it for both the
// prefix and the subtree (mux.Handle(prefix, s); mux.Handle(prefix+"/", s)).
// http.ServeMux redirects paths holding "//" to their cleaned form, where the
// protocol asks for 404; clients never send such paths, so that is harmless,
// but the conformance test server dispatches by prefix itself.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, s.Opts.Prefix)
	if !ok || rest != "" && rest[0] != '/' {
		http.NotFound(w, r)
		return
	}
	if !s.track() {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	// SockJS answers CORS for any Origin (with credentials, so cookies
	// flow), and a text/plain xhr_send needs no preflight: without this
	// check any web page could drive a session with the user's cookies.
	// Requests without an Origin header (a <script> for jsonp, an iframe
	// for htmlfile, non-browser clients) reach CheckOrigin too.
	if s.Opts.CheckOrigin != nil && !s.Opts.CheckOrigin(r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	s.route(w, r, rest)
}

// route dispatches on the path below the prefix. A hand-written table, not
// http.ServeMux patterns: the suite wants 404 (not a redirect) for "//" and
// for dots in the server or session segment, and 405 with an Allow header
// but no body.
func (s *Server) route(w http.ResponseWriter, r *http.Request, rest string) {
	switch {
	case rest == "" || rest == "/":
		if !allowMethods(w, r, http.MethodGet) {
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=UTF-8")
		h.Set("Content-Length", "19")
		_, _ = w.Write([]byte("Welcome to SockJS!\n"))
	case rest == "/info":
		s.serveInfo(w, r)
	case isSockJSIframePath(rest):
		s.serveIframe(w, r)
	case rest == "/websocket":
		if !s.Opts.Websocket {
			http.NotFound(w, r)
			return
		}
		if allowMethods(w, r, http.MethodGet) {
			s.serveWebSocket(w, r, true)
		}
	default:
		server, session, kind, ok := splitSockJSSessionPath(rest)
		if !ok {
			http.NotFound(w, r)
			return
		}
		_ = server // for load balancers only; the protocol says to ignore it
		s.serveSessionPath(w, r, session, kind)
	}
}

// serveSessionPath serves /{server}/{session}/{kind}.
func (s *Server) serveSessionPath(w http.ResponseWriter, r *http.Request, session, kind string) {
	switch kind {
	case "websocket":
		if !s.Opts.Websocket {
			http.NotFound(w, r)
			return
		}
		if allowMethods(w, r, http.MethodGet) {
			s.serveWebSocket(w, r, false)
		}
	case "xhr", "xhr_streaming", "xhr_send":
		if r.Method == http.MethodOptions {
			s.servePreflight(w, r, "OPTIONS, POST", true)
			return
		}
		if !allowMethods(w, r, http.MethodPost) {
			return
		}
		if kind == "xhr_send" {
			s.serveSend(w, r, session, false)
			return
		}
		s.serveReceiver(w, r, session, sockjsReceiverKinds[kind])
	case "eventsource", "htmlfile", "jsonp":
		if allowMethods(w, r, http.MethodGet) {
			s.serveReceiver(w, r, session, sockjsReceiverKinds[kind])
		}
	case "jsonp_send":
		if allowMethods(w, r, http.MethodPost) {
			s.serveSend(w, r, session, true)
		}
	default:
		http.NotFound(w, r)
	}
}

// splitSockJSSessionPath splits "/{server}/{session}/{kind}". Server and
// session must be non-empty and free of dots (sockjs-protocol 0.3, "Session
// URLs").
func splitSockJSSessionPath(rest string) (server, session, kind string, ok bool) {
	parts := strings.Split(rest, "/")
	if len(parts) != 4 || parts[0] != "" {
		return "", "", "", false
	}
	server, session, kind = parts[1], parts[2], parts[3]
	if server == "" || session == "" || strings.Contains(server, ".") || strings.Contains(session, ".") {
		return "", "", "", false
	}
	return server, session, kind, true
}

// isSockJSIframePath matches /iframe.html and the versioned
// /iframe-<version>.html, case-sensitively, as sockjs-node's
// ^/iframe[0-9-.a-z_]*\.html$ does.
func isSockJSIframePath(p string) bool {
	mid, ok := strings.CutPrefix(p, "/iframe")
	if !ok {
		return false
	}
	mid, ok = strings.CutSuffix(mid, ".html")
	if !ok {
		return false
	}
	for i := 0; i < len(mid); i++ {
		c := mid[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// allowMethods answers 405 with an Allow header and no body (as the suite's
// verify405 wants) unless r uses one of methods.
func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	w.WriteHeader(http.StatusMethodNotAllowed)
	return false
}

// sockjsInfo is the /info body (sockjs-protocol 0.3, "Info test").
type sockjsInfo struct {
	Websocket    bool     `json:"websocket"`     // the WebSocket transports are enabled
	CookieNeeded bool     `json:"cookie_needed"` // transports must carry JSESSIONID
	Origins      []string `json:"origins"`       // informational; sockjs-client ignores it
	Entropy      uint32   `json:"entropy"`       // seeds the browser's weak random generator
}

func (s *Server) serveInfo(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodOptions:
		s.servePreflight(w, r, "OPTIONS, GET", false)
		return
	case http.MethodGet:
	default:
		allowMethods(w, r, http.MethodGet, http.MethodOptions)
		return
	}
	body, err := json.Marshal(sockjsInfo{
		Websocket:    s.Opts.Websocket,
		CookieNeeded: s.Opts.CookieNeeded,
		Origins:      s.Opts.Origins,
		Entropy:      rand.Uint32(),
	})
	if err != nil {
		s.log.Error("sockjs info", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	setSockJSCORS(h, r)
	setSockJSNoCache(h)
	h.Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(body)
}

func (s *Server) serveIframe(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodGet) {
		return
	}
	h := w.Header()
	setSockJSCacheForever(h)
	h.Set("ETag", s.iframeETag)
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, s.iframeETag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "text/html; charset=UTF-8")
	_, _ = w.Write(s.iframe)
}

// servePreflight answers a CORS preflight (OPTIONS) for a SockJS URL: 204,
// cacheable for a year.
func (s *Server) servePreflight(w http.ResponseWriter, r *http.Request, methods string, session bool) {
	h := w.Header()
	setSockJSCORS(h, r)
	setSockJSCacheForever(h)
	h.Set("Access-Control-Allow-Methods", methods)
	h.Set("Access-Control-Max-Age", strconv.Itoa(int(sockjsCacheMaxAge/time.Second)))
	if session {
		s.setCookie(w, r)
	}
	w.WriteHeader(http.StatusNoContent)
}

// setSockJSCORS sets the CORS headers sockjs-client needs for the xhr
// transports and /info: the request's Origin is echoed (credentials allowed,
// so the JSESSIONID cookie flows); without an Origin the answer is "*". The
// origin check that matters, for the WebSocket upgrade, is CheckOrigin.
func setSockJSCORS(h http.Header, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != "" {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
	} else {
		h.Set("Access-Control-Allow-Origin", "*")
	}
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
	}
}

// setSockJSNoCache forbids caching of a private response (iOS 6 caches POSTs;
// the GET transports must never be cached).
func setSockJSNoCache(h http.Header) {
	h.Set("Cache-Control", "no-store, no-cache, no-transform, must-revalidate, max-age=0")
}

// setSockJSCacheForever makes a response cacheable for sockjsCacheMaxAge.
func setSockJSCacheForever(h http.Header) {
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(sockjsCacheMaxAge/time.Second)))
	h.Set("Expires", time.Now().Add(sockjsCacheMaxAge).UTC().Format(http.TimeFormat))
}

// setCookie sets JSESSIONID when CookieNeeded, echoing the client's value so
// a sticky load balancer keeps routing the client to this server.
func (s *Server) setCookie(w http.ResponseWriter, r *http.Request) {
	if !s.Opts.CookieNeeded {
		return
	}
	value := "dummy"
	if c, err := r.Cookie("JSESSIONID"); err == nil && c.Value != "" {
		value = c.Value
	}
	http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: value, Path: "/"})
}
