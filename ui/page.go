package ui

// Page is what every full page needs. Handlers build one per request; the
// components read nothing else, so a test can render any page from values.
type Page struct {
	Loc    Locale  // the language the page is rendered in
	Title  string  // the <title>, already translated
	Assets *Static // resolves fingerprinted static URLs
	Boot   Boot    // handed to app.js as JSON in <script type="application/json" id="boot">

	Invite       *Invitation // the invitation of a /register?invite=… link; nil without one
	Registration string      // the sign-up mode, "open" or "invite", on the admin page; "" unknown
}

// Invitation is what the register page says about the link that led there:
// who invited, to which server, and whether the link still works.
type Invitation struct {
	Inviter string // the inviting administrator's name; "" when the account is gone
	Server  string // the host the link points at, e.g. chat.office.lan:8080
	Valid   bool   // unused and not expired
}

// Boot is the data app.js needs from the server. It travels as a JSON
// element rather than an inline script, so the Content-Security-Policy can
// forbid inline scripts.
type Boot struct {
	Page        string `json:"page"`                  // which page app.js runs: setup, login, register, chat, embed, settings, admin
	Lang        string `json:"lang"`                  // the language the server rendered
	DefaultLang string `json:"defaultLang"`           // the server's default language, app.js's last fallback
	User        *User  `json:"user,omitempty"`        // the signed-in person, nil when signed out
	SockJSPath  string `json:"sockjsPath,omitempty"`  // SockJS endpoint, e.g. /ws-stomp
	WSPath      string `json:"wsPath,omitempty"`      // raw WebSocket endpoint, e.g. /ws, used with ?transport=ws
	RoomID      int64  `json:"roomId,omitempty"`      // the room of an embed page
	Next        string `json:"next,omitempty"`        // where login goes afterwards (a local path)
	HeartbeatMs int    `json:"heartbeatMs,omitempty"` // STOMP heart-beat in both directions
	// MaxMessage and MaxSubscriptions are the server's -max-message and
	// -max-subscriptions, so the composer and the room subscriptions follow
	// the options instead of a copy of their defaults.
	MaxMessage       int `json:"maxMessage,omitempty"`       // characters in one chat message
	MaxSubscriptions int `json:"maxSubscriptions,omitempty"` // subscriptions one connection may hold
	EditMinutes      int `json:"editMinutes,omitempty"`      // -edit-minutes: how long authors may edit a message; 0 forever
	// MaxUpload is -max-upload in bytes, so upload.js refuses a file too
	// large before sending it.
	MaxUpload int64 `json:"maxUpload,omitempty"`
	// Nodes are the web addresses of a cluster's nodes (-cluster-urls):
	// when this node stops answering, the page offers the others.
	Nodes []string `json:"nodes,omitempty"`
}

// User is the signed-in person as the pages see it.
type User struct {
	ID          int64  `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"displayName"`
	IsAdmin     bool   `json:"isAdmin"`
}

// Name is how the person is shown: the display name, or the username.
func (u User) Name() string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return u.Username
}
