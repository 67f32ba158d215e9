package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"stompbox/internal/apperr"
	"stompbox/internal/auth"
	"stompbox/internal/proto"
	"stompbox/internal/store"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Chat limits.
const (
	// MaxMessageRunes is the default of -max-message, the most characters
	// (runes) in one chat message: a long paste fits, a novel does not, and
	// 4000 runes stay under 16 KiB of UTF-8.
	MaxMessageRunes = 4000

	// maxJSONBytesPerRune is the most one rune can take in a JSON string:
	// a character outside the BMP escaped as a surrogate pair, \uD83D\uDE00.
	maxJSONBytesPerRune = 12

	// chatInputOverhead is room for the other fields of a send
	// ({"type":…,"roomId":…,"sender":…}) beside the message itself.
	chatInputOverhead = 4 << 10

	// MaxMentionsPerMessage bounds the notifications one message can cause.
	MaxMentionsPerMessage = 20

	// maxAttachments bounds the files one message carries: a handful of
	// screenshots or a folder's worth of documents, not an archive.
	maxAttachments = 20
)

// errTooManyAttachments refuses a send with more than maxAttachments files.
var errTooManyAttachments = apperr.New(apperr.ErrBadRequest, fmt.Sprintf("too many attachments: at most %d", maxAttachments))

// Server languages for the ENTER/LEAVE texts (--lang).
const (
	LangEnglish = "en"
	LangKorean  = "ko"
)

// Suffixes of a room's topic for what is not a message.
const (
	PresenceSuffix = "/presence" // /sub/chat/room/{id}/presence: who is in the room
	TypingSuffix   = "/typing"   // /sub/chat/room/{id}/typing: who is typing
)

// ParseRoomDestination is the one parser of room destinations: it splits
// /sub/chat/room/{id}[/presence|/typing] into the room id and the suffix
// ("" for the messages themselves). The id must be written canonically
// (no sign, no leading zero), so one room has one spelling.
func ParseRoomDestination(dest string) (id int64, suffix string, ok bool) {
	rest, ok := strings.CutPrefix(dest, proto.RoomDestinationPrefix)
	if !ok {
		return 0, "", false
	}
	num, suffix, _ := strings.Cut(rest, "/")
	if suffix != "" {
		suffix = "/" + suffix
		if suffix != PresenceSuffix && suffix != TypingSuffix {
			return 0, "", false
		}
	}
	id, err := strconv.ParseInt(num, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != num {
		return 0, "", false
	}
	return id, suffix, true
}

// Input is the body a client SENDs to /pub/chat/message:
// {"type":"TALK","roomId":5,"sender":"…","message":"…"}. Sender is ignored:
// the server writes the authenticated user's name. A TALK may answer
// another message of the room with "replyTo": its id.
type Input struct {
	Type    string `json:"type"`
	RoomID  int64  `json:"roomId"`
	Sender  string `json:"sender"`
	Message string `json:"message"`
	ReplyTo int64  `json:"replyTo,omitempty"`

	// Attachments are ids of files the sender uploaded to the room
	// (POST /api/rooms/{id}/files) and sends with this message.
	Attachments []int64 `json:"attachments,omitempty"`

	// IdempotencyKey, from the SEND's idempotency-key header or the HTTP
	// Idempotency-Key header, makes a resend of the same message within
	// idempotencyWindow return the first one instead of posting twice.
	IdempotencyKey string `json:"-"`

	// dedupKey, when not empty, names this post for the cluster log's
	// duplicate detection (store.runKeyed): a post resubmitted with the
	// same key, by any node, is stored once. Empty on a single node.
	DedupKey string
}

// ParseInput decodes and checks the shape of a SEND body: valid JSON
// (errBadJSON), a known type (errBadMessageType) and a room id
// (errUnknownRoom). roomId may be a number or a string of digits, since
// some Spring examples send it as a string. Whether the room exists and
// the message is acceptable is Post's business. attachments, if present,
// is a list of file ids, each a number or an object with an "id" (so a
// client may echo the attachment objects it got back from the upload);
// duplicates are dropped (errBadAttachment for anything else). The body's size is
// bounded before it gets here: by -max-frame on STOMP, and by
// chatService.maxInputBytes on HTTP.
func ParseInput(body []byte) (Input, error) {
	var raw struct {
		Type    string          `json:"type"`
		RoomID  json.RawMessage `json:"roomId"`
		Sender  string          `json:"sender"`
		Message string          `json:"message"`
		ReplyTo int64           `json:"replyTo"`

		Attachments []json.RawMessage `json:"attachments"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return Input{}, apperr.ErrBadJSON
	}
	in := Input{Type: strings.ToUpper(raw.Type), Sender: raw.Sender, Message: raw.Message, ReplyTo: raw.ReplyTo}
	var err error
	if in.Attachments, err = ParseAttachmentIDs(raw.Attachments); err != nil {
		return Input{}, err
	}
	switch in.Type {
	case proto.MsgEnter, proto.MsgTalk, proto.MsgLeave:
	default:
		return Input{}, apperr.ErrBadMessageType
	}
	id := string(bytes.Trim(raw.RoomID, `"`))
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return Input{}, apperr.ErrUnknownRoom
	}
	in.RoomID = n
	return in, nil
}

// ParseAttachmentIDs reads the attachments of a send: numbers or objects
// with an "id", at most maxAttachments distinct ones, duplicates dropped.
func ParseAttachmentIDs(raw []json.RawMessage) ([]int64, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	if len(raw) > maxAttachments {
		return nil, errTooManyAttachments
	}
	ids := make([]int64, 0, len(raw))
	for _, r := range raw {
		var id int64
		if err := json.Unmarshal(r, &id); err != nil {
			var obj struct {
				ID int64 `json:"id"`
			}
			if json.Unmarshal(r, &obj) != nil {
				return nil, store.ErrBadAttachment
			}
			id = obj.ID
		}
		if id <= 0 {
			return nil, store.ErrBadAttachment
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// Config wires chatService to the rest of the program.
type Config struct {
	Lang string // langEnglish or langKorean; "" means English

	// Deliver publishes a stored message (its exact JSON, and its id for
	// the broker's since-id dedupe) to /sub/chat/room/{roomID}. It is called on the store's writer
	// goroutine right after the commit, in id order, so it must not block
	// and must not call back into chatService writes. Nil drops.
	Deliver func(roomID, msgID int64, msg []byte)

	// Notify hands a notification (JSON) to a connected user's queue
	// (/user/queue/notifications). Same rules as Deliver. Nil drops.
	Notify func(username string, body []byte)

	// Online reports whether a user has a live connection. Nil means
	// nobody is, so every mention is stored. On a single node it is also
	// called on the writer goroutine (for DM peers, see chatPostOp), so it
	// must be quick and must not block: a lock-protected map lookup.
	Online func(username string) bool

	// MaxMessageRunes is the most characters in one TALK message
	// (-max-message); 0 means maxMessageRunes.
	MaxMessageRunes int

	// MaxRoomsPerUser is how many rooms one account may create
	// (-max-rooms-per-user); 0 means no limit. See CreateRoom.
	MaxRoomsPerUser int

	// EditWindow is how long after posting an author may edit a message
	// (-edit-minutes); 0 means forever. See Edit.
	EditWindow time.Duration

	// Attachments removes the bytes of a deleted message's files (the
	// file service); nil leaves them to the daily sweep.
	Attachments Attachments

	Webhooks *http.Client // client for webhook POSTs; nil means one with webhookTimeout
	Access   AccessHooks  // what to end when access ends (access.go)
	// WebhookAllow lists the webhook targets users may set (host names,
	// *.domain patterns, IP addresses, CIDR ranges); empty turns webhooks
	// off (webhookguard.go). Webhooks with a nil client are guarded:
	// never loopback or link-local, no redirects.
	WebhookAllow []string
	Log          *slog.Logger // nil means discard
}

// Attachments is what the chat service needs of the files that
// messages carry (the file service, files.go, implements it).
type Attachments interface {
	// Forget removes the blobs of a deleted message's files, unless
	// another upload still names them. It is called once the message's
	// rows are gone, on a context that outlives the request. Safe for
	// concurrent use.
	Forget(ctx context.Context, blobs []string)
}

// Service is the chat domain: it validates, authorizes, stores and then
// publishes. Safe for concurrent use. The caller owns it and calls Close
// (which stops the webhook sender) before closing the store.
type Service struct {
	RoomGate // CanRead, CanPost
	St       *store.Store
	lang     string
	deliver  func(roomID, msgID int64, msg []byte)
	notify   func(username string, body []byte)
	online   func(username string) bool
	MaxRunes int          // most characters in one TALK message
	MaxRooms int          // most rooms one non-admin account may create; 0: no limit
	idem     *idempotency // recent keyed sends (idempotency.go)
	// editWindow is how long a message stays editable by its author; 0: forever.
	EditWindow time.Duration
	// files removes the blobs of a deleted message's files once no other
	// upload names them (chatConfig.Attachments); nil leaves them to the
	// daily sweep.
	files    Attachments
	webhooks *webhookSender
	access   AccessHooks // access.go
	// webhookAllow is Config.WebhookAllow, parsed (webhookguard.go).
	webhookAllow webhookAllow
	log          *slog.Logger
}

func New(st *store.Store, cfg Config) (*Service, error) {
	c := &Service{RoomGate: NewRoomGate(st), St: st, files: cfg.Attachments, lang: cfg.Lang, deliver: cfg.Deliver, notify: cfg.Notify, online: cfg.Online, MaxRunes: cfg.MaxMessageRunes, MaxRooms: cfg.MaxRoomsPerUser, EditWindow: cfg.EditWindow, log: cfg.Log}
	c.access = cfg.Access
	if c.MaxRunes <= 0 {
		c.MaxRunes = MaxMessageRunes
	}
	switch c.lang {
	case "":
		c.lang = LangEnglish
	case LangEnglish, LangKorean:
	default:
		return nil, fmt.Errorf("chat: unsupported language %q (want %s or %s)", cfg.Lang, LangEnglish, LangKorean)
	}
	if c.deliver == nil {
		c.deliver = func(int64, int64, []byte) {}
	}
	if c.notify == nil {
		c.notify = func(string, []byte) {}
	}
	if c.online == nil {
		c.online = func(string) bool { return false }
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	allow, err := parseWebhookAllow(cfg.WebhookAllow)
	if err != nil {
		return nil, err
	}
	c.webhookAllow = allow
	c.webhooks = newWebhookSender(cfg.Webhooks, c.webhookAllow, c.log)
	c.idem = newIdempotency(st.Now)
	st.SetEffects(c) // ops applied from now on deliver through c (ops.go)
	return c, nil
}

// Close stops the webhook sender and waits for it. Posts after Close still
// work but send no webhooks.
func (c *Service) Close() error {
	c.webhooks.Close()
	return nil
}

// presenceText is the server-written body of ENTER and LEAVE messages.
func presenceText(lang, typ, name string) string {
	switch {
	case lang == LangKorean && typ == proto.MsgEnter:
		return name + "님이 입장하셨습니다."
	case lang == LangKorean:
		return name + "님이 퇴장하셨습니다."
	case typ == proto.MsgEnter:
		return name + " joined."
	default:
		return name + " left."
	}
}

// MaxInputBytes bounds the raw JSON of one HTTP message post before it is
// parsed: a message of the most runes, each escaped at its longest, plus
// the other fields. (A STOMP SEND is bounded by -max-frame instead.)
func (c *Service) MaxInputBytes() int64 {
	return int64(c.MaxRunes)*maxJSONBytesPerRune + chatInputOverhead
}

// checkBody validates the text of a TALK message: valid UTF-8, not blank,
// at most maxRunes characters (a messageTooLongError otherwise). It runs
// before anything is written, so a refused message is never stored.
func (c *Service) checkBody(msg string) error {
	if !utf8.ValidString(msg) {
		return apperr.New(apperr.ErrBadRequest, "message is not valid UTF-8")
	}
	if strings.TrimSpace(msg) == "" {
		return apperr.ErrEmptyMessage
	}
	// Counting stops one past the limit: a huge body costs no more than a legal one.
	n := 0
	for range msg {
		if n++; n > c.MaxRunes {
			return MessageTooLongError{Max: c.MaxRunes}
		}
	}
	return nil
}

// MessageTooLongError is errMessageTooLong with the limit in its text, so
// that people see how much fits ("message too long: at most 4000
// characters"). errors.Is matches errMessageTooLong, httpStatus gives 413,
// and the STOMP refusal shows the same text.
type MessageTooLongError struct{ Max int }

func (e MessageTooLongError) Error() string { return e.public().Error() }

// Unwrap gives the publicError that publicMessage and httpStatus look for.
func (e MessageTooLongError) Unwrap() error { return e.public() }

func (e MessageTooLongError) Is(target error) bool { return target == apperr.ErrMessageTooLong }

func (e MessageTooLongError) public() error {
	return apperr.New(apperr.ErrTooLarge, fmt.Sprintf("%s: at most %d characters", apperr.ErrMessageTooLong, e.Max))
}

// Post stores a chat message from u and publishes it. It checks the type
// and the text (errBadMessageType, errEmptyMessage, errMessageTooLong),
// then, inside the write transaction, the room (errUnknownRoom,
// errRoomArchived, errNotMember); it writes the sender from u, stores the
// message, waits for the commit and returns it. Deliver has been called by
// then, so a RECEIPT sent after Post returns follows the MESSAGE. ENTER and
// LEAVE get the server's text in its language. ENTER and TALK in a public
// room make u a member. Mentions of offline users and DMs to offline users
// become notifications. A send with an IdempotencyKey that u already used
// within idempotencyWindow returns the message stored then, and stores and
// delivers nothing.
func (c *Service) Post(ctx context.Context, u store.User, in Input) (store.StoredMessage, error) {
	if key := in.IdempotencyKey; key != "" {
		in.IdempotencyKey = ""
		if c.Clustered() {
			// The node-local key table cannot see a resend that arrives
			// at another node after a failover; the log's de-duplication can.
			in.DedupKey = DedupKeyOf("idem", u.ID, key)
		}
		// A keyed send runs to its end even if the sender leaves meanwhile
		// (store.write would give up waiting and leave the outcome unknown):
		// the key must record whether the message was stored, or a retry
		// with it after a dropped connection could post it twice.
		return c.idem.do(ctx, u.ID, key, func() (store.StoredMessage, error) { return c.Post(context.WithoutCancel(ctx), u, in) })
	}
	m := store.StoredMessage{Type: in.Type, RoomID: in.RoomID, Sender: u.Username, UserID: u.ID}
	switch in.Type {
	case proto.MsgTalk:
		err := c.checkBody(in.Message)
		if errors.Is(err, apperr.ErrEmptyMessage) && len(in.Attachments) > 0 {
			err = nil // a picture needs no words
		}
		if err != nil {
			return store.StoredMessage{}, err
		}
		if in.ReplyTo < 0 {
			return store.StoredMessage{}, apperr.ErrBadReply
		}
		m.Message, m.ReplyTo = in.Message, in.ReplyTo
	case proto.MsgEnter, proto.MsgLeave:
		m.Message = presenceText(c.lang, in.Type, u.Username)
	default:
		return store.StoredMessage{}, apperr.ErrBadMessageType
	}
	if in.RoomID <= 0 {
		return store.StoredMessage{}, apperr.ErrUnknownRoom
	}
	var mentions []notifyTarget
	if in.Type == proto.MsgTalk && strings.ContainsRune(m.Message, '@') {
		var err error
		if mentions, err = c.mentionTargets(ctx, in.RoomID, u, m.Message); err != nil {
			return store.StoredMessage{}, err
		}
	}
	if in.Type != proto.MsgTalk && len(in.Attachments) > 0 {
		return store.StoredMessage{}, store.ErrBadAttachment
	}
	return c.store(ctx, m, mentions, in.Attachments, in.DedupKey)
}

// RoomGate decides who may read and post in a room, from the store
// alone. The chat service embeds one; a service built before the chat
// service, to be given to it (the file service), gets its own from
// newRoomGate. Safe for concurrent use.
type RoomGate struct{ st *store.Store }

func NewRoomGate(st *store.Store) RoomGate { return RoomGate{st: st} }

// CanRead reports whether u may read (and subscribe to) a room: nil, or
// errUnknownRoom / errNotMember. Public rooms are readable by everyone
// logged in, private rooms and DMs by their members.
func (g RoomGate) CanRead(ctx context.Context, u store.User, roomID int64) error {
	r, member, err := g.st.RoomAccess(ctx, roomID, u.ID)
	if err != nil {
		return err
	}
	if r.Kind != store.RoomPublic && !member {
		return apperr.ErrNotMember
	}
	return nil
}

// CanPost reports whether u may post to a room: CanRead, and the room is
// not archived.
func (g RoomGate) CanPost(ctx context.Context, u store.User, roomID int64) error {
	r, member, err := g.st.RoomAccess(ctx, roomID, u.ID)
	if err != nil {
		return err
	}
	if r.Kind != store.RoomPublic && !member {
		return apperr.ErrNotMember
	}
	if r.Archived {
		return apperr.ErrRoomArchived
	}
	return nil
}

// MentionedNames returns the distinct usernames @mentioned in body, in
// order of appearance, at most maxMentionsPerMessage. A mention is '@'
// at the start or after a character that cannot be in a name (so e-mail
// addresses are not mentions), followed by name characters; a trailing
// '.' or '-' is punctuation, not part of the name.
func MentionedNames(body string) []string {
	var out []string
	seen := map[string]bool{}
	prev := ' '
	for i, r := range body {
		if r != '@' || auth.IsMentionRune(prev) {
			prev = r
			continue
		}
		prev = r
		rest := body[i+1:]
		end := strings.IndexFunc(rest, func(r rune) bool { return !auth.IsMentionRune(r) })
		if end < 0 {
			end = len(rest)
		}
		name := strings.TrimRight(rest[:end], ".-")
		if name == "" || auth.ValidUsername(name) != nil || seen[store.UsernameKey(name)] {
			continue
		}
		seen[store.UsernameKey(name)] = true
		out = append(out, name)
		if len(out) == MaxMentionsPerMessage {
			break
		}
	}
	return out
}

// notificationJSON is the body of a notification on the user queue and in
// a webhook POST.
func notificationJSON(n store.Notification) []byte {
	b, _ := json.Marshal(n) // only strings, numbers and present-day times: cannot fail
	return b
}

// sinceDays is the retention cutoff: days days before now.
func sinceDays(now time.Time, days int) time.Time {
	return now.Add(-time.Duration(days) * 24 * time.Hour)
}

// PurgeOlderThan deletes messages older than days days (retention) and
// returns how many went.
func (c *Service) PurgeOlderThan(ctx context.Context, days int) (int64, error) {
	if days <= 0 {
		return 0, apperr.New(apperr.ErrBadRequest, "retention must be at least one day")
	}
	n, err := c.St.PurgeBefore(ctx, sinceDays(c.St.Now(), days))
	if err == nil && n > 0 {
		c.log.Info("retention purge", "days", days, "deleted", n)
	}
	return n, err
}

// Backup writes a consistent copy of the database to path (see store.Backup).
func (c *Service) Backup(ctx context.Context, path string) error {
	return c.St.Backup(ctx, path)
}
