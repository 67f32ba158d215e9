package chatstomp

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"stompbox/internal/apperr"
	"stompbox/internal/auth"
	"stompbox/internal/broker"
	"stompbox/internal/chat"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
	"stompbox/internal/store"
	"stompbox/internal/transport"
	"strconv"
	"sync"
)

// Chat destinations beyond the room topic (roomDestinationPrefix).
const (
	ErrorsDest            = "/user/queue/errors"        // refused SENDs, for senders subscribed to it
	chatNotificationsDest = "/user/queue/notifications" // mentions and DMs stored while the user was away
	replayPage            = 200                         // messages per store read while replaying since-id
)

// Glue connects the chat service to the broker: STOMP authentication
// through the account store, the seed's /pub/chat/message handler (stored,
// then delivered), since-id replay, room authorization, presence and typing.
type Glue struct {
	chat *chat.Service
	auth *auth.Service
	b    *broker.Broker
	log  *slog.Logger

	mu       sync.Mutex
	presence map[int64]map[string]int // room → user → live room subscriptions

	// accessMu orders room subscriptions against access that ends
	// (access.go): SUBSCRIBE checks and files under RLock, EndRoomAccess
	// ends subscriptions under Lock.
	accessMu sync.RWMutex

	logins LoginLimiter // the per-address login rate; nil: none
}

// LoginLimiter is the per-address login rate that a CONNECT with a
// password draws from, the very bucket of the HTTP login
// (ratelimit.Limiter.AllowLogin).
type LoginLimiter interface {
	AllowLogin(addr string) bool
}

// errTooManyLogins refuses a CONNECT past the per-address login rate, in
// the HTTP login's words.
var errTooManyLogins = stomp.NewError("too many login attempts from this address; try again in a minute")

// LimitLogins makes every CONNECT that tries a password count against l,
// as the HTTP login does. Call it before serving.
func (c *Glue) LimitLogins(l LoginLimiter) {
	c.logins = l
}

// New returns the glue for auth, whose broker and chat service are
// set by attach: the broker needs the authenticator first, and the chat
// service needs the broker's delivery functions.
func New(auth *auth.Service, log *slog.Logger) *Glue {
	return &Glue{auth: auth, log: log, presence: make(map[int64]map[string]int)}
}

// Attach registers the chat's handlers and hooks with b. Call it before serving.
func (c *Glue) Attach(b *broker.Broker, svc *chat.Service) {
	c.b, c.chat = b, svc
	b.Handle("/chat/message", c.handleChatMessage) // under every application prefix: /pub and /app
	b.Handle("/chat/typing", c.handleTyping)
	b.Handle("/chat/edit", c.handleChange(c.edit))
	b.Handle("/chat/delete", c.handleChange(c.delete))
	b.Handle("/chat/react", c.handleChange(c.react))
	b.OnSubscribe(proto.RoomDestinationPrefix, c.onRoomSubscribe)
	b.OnSend(proto.RoomDestinationPrefix, c.onRoomSend)
	b.OnSubscribe(chatNotificationsDest, c.onNotificationsSubscribe)
	b.OnUnsubscribe(c.onUnsubscribe)
	b.OnRemotePresence(c.onRemotePresence)
}

// AuthenticateSTOMP implements authenticator: the HTTP session cookie (or
// bearer token) first, then login/passcode (password or API token; a guest
// name when guests are allowed). No credentials at all gives an anonymous
// connection, which may use plain broker destinations but no chat room.
func (c *Glue) AuthenticateSTOMP(ctx context.Context, info transport.Info, f *stomp.Frame) (string, any, error) {
	if info.Login != "" {
		// The cookie (or bearer token) of the upgrade request, checked
		// again: it may have ended since. The session rests on it
		// (store.User.LoginKeys) and keeps a token's scopes.
		u, err := c.auth.UserByLoginKey(ctx, info.Login)
		if err != nil {
			if apperr.IsClientError(err) {
				return "", nil, errLoginEnded
			}
			return "", nil, fmt.Errorf("load cookie user: %w", err)
		}
		return u.Username, u, nil
	}
	if info.User != "" {
		u, err := c.auth.UserByName(ctx, info.User)
		if err != nil {
			return "", nil, fmt.Errorf("load cookie user: %w", err)
		}
		return u.Username, u, nil
	}
	login, passcode := f.Value(stomp.HdrLogin), f.Value(stomp.HdrPasscode)
	if login == "" && passcode == "" {
		return "", nil, nil
	}
	if c.logins != nil && triesPassword(passcode) && !c.logins.AllowLogin(info.Remote) {
		return "", nil, errTooManyLogins
	}
	u, err := c.auth.UserByLogin(auth.WithRemote(ctx, info.Remote), login, passcode)
	if err != nil {
		if apperr.IsClientError(err) {
			return "", nil, stomp.NewError(apperr.Message(err))
		}
		return "", nil, err
	}
	return u.Username, u, nil
}

// triesPassword reports whether a CONNECT's passcode is a password guess:
// not empty (a guest name) and not an API token (256 random bits, which
// no rate makes guessable; bots reconnect with them).
func triesPassword(passcode string) bool {
	return passcode != "" && !auth.IsAPIToken(passcode)
}

// chatUser returns the sender's account, or an error for anonymous sessions.
func chatUser(s *broker.Session) (store.User, error) {
	u, ok := s.Principal.(store.User)
	if !ok {
		return store.User{}, apperr.ErrNotLoggedIn
	}
	return u, nil
}

// poster returns the account of a session that SENDs a chat change (a
// message, an edit, typing): its token must allow posting, and its login
// must still exist (checkLogin).
func (c *Glue) poster(ctx context.Context, s *broker.Session) (store.User, error) {
	u, err := chatUser(s)
	if err != nil {
		return u, err
	}
	if err := requireScope(u, auth.ScopePost); err != nil {
		return u, err
	}
	return u, c.checkLogin(ctx, s, u)
}

// asSTOMPError turns a chat error into what the broker shows: client errors
// keep their text, others stay internal (logged, shown as "internal error").
func asSTOMPError(err error) error {
	if apperr.IsClientError(err) {
		return stomp.NewError(apperr.Message(err))
	}
	return err
}

// handleChatMessage is the seed's @MessageMapping("/chat/message"): the
// message is stored, then published to /sub/chat/room/{roomId} by the
// chat service's Deliver, and only then does the SEND's RECEIPT go out.
// A refused SEND is explained on /user/queue/errors when the sender
// subscribed to it (the connection stays open), else by an ERROR frame.
func (c *Glue) handleChatMessage(ctx context.Context, req *broker.AppRequest) error {
	u, err := c.poster(ctx, req.Session)
	if err == nil {
		var in chat.Input
		if in, err = chat.ParseInput(req.Frame.Body); err == nil {
			in.IdempotencyKey = req.Frame.Value(chat.IdempotencyHeader)
			if r := req.Frame.Value(stomp.HdrReceipt); r != "" && in.IdempotencyKey == "" && c.chat.Clustered() {
				// A client that resends after its node died reuses the
				// receipt id (stompjs and Spring clients do): with the same
				// destination and body it is the same message, posted once.
				in.DedupKey = chat.DedupKeyOf("rcpt", u.ID, r, req.Destination, string(req.Frame.Body))
			}
			_, err = c.chat.Post(ctx, u, in)
		}
	}
	return c.refuse(req, err)
}

// refuse answers a chat SEND that failed with err: nil is success, a
// client error or a storage fault is explained on /user/queue/errors (or
// by an ERROR frame when the sender is not subscribed there), anything
// else is internal and goes to the broker.
func (c *Glue) refuse(req *broker.AppRequest, err error) error {
	if err == nil {
		return nil
	}
	if store.StorageFault(err) { // the disk, not the message: say so (internal/store/faults.go)
		c.log.Error("message not stored", "err", err, "user", req.Session.User)
		err = store.ErrNotStored
	}
	if !apperr.IsClientError(err) && err != store.ErrNotStored {
		return err
	}
	return req.Refuse(stomp.NewError(apperr.Message(err)), ErrorsDest, apperr.RefusedSendJSON(err, req.Destination, req.Frame.Value(stomp.HdrReceipt)))
}

// changeInput is the body of a SEND to /pub/chat/edit, /pub/chat/delete
// or /pub/chat/react:
//
//	{"roomId":5,"messageId":42,"message":"new text"}          edit
//	{"roomId":5,"messageId":42}                               delete
//	{"roomId":5,"messageId":42,"emoji":"👍","remove":false}    react (remove: true takes it back)
type changeInput struct {
	RoomID    int64  `json:"roomId"`
	MessageID int64  `json:"messageId"`
	Message   string `json:"message"`
	Emoji     string `json:"emoji"`
	Remove    bool   `json:"remove"`
}

// handleChange adapts one of the change handlers (edit, delete, react) to
// the broker: it decodes the body, runs do for the sender, and refuses as
// handleChatMessage does. Like a message, the change is stored and
// published before the SEND's RECEIPT goes out.
func (c *Glue) handleChange(do func(ctx context.Context, u store.User, in changeInput) error) broker.AppHandler {
	return func(ctx context.Context, req *broker.AppRequest) error {
		u, err := c.poster(ctx, req.Session)
		if err == nil {
			var in changeInput
			if json.Unmarshal(req.Frame.Body, &in) != nil {
				err = apperr.ErrBadJSON
			} else {
				err = do(ctx, u, in)
			}
		}
		return c.refuse(req, err)
	}
}

func (c *Glue) edit(ctx context.Context, u store.User, in changeInput) error {
	_, err := c.chat.Edit(ctx, u, in.RoomID, in.MessageID, in.Message)
	return err
}

func (c *Glue) delete(ctx context.Context, u store.User, in changeInput) error {
	return c.chat.Delete(ctx, u, in.RoomID, in.MessageID)
}

func (c *Glue) react(ctx context.Context, u store.User, in changeInput) error {
	_, err := c.chat.React(ctx, u, in.RoomID, in.MessageID, in.Emoji, !in.Remove)
	return err
}

// handleTyping relays {"roomId":N} as {"user":name} to the room's typing
// topic on every node, for members only. Nothing is stored.
func (c *Glue) handleTyping(ctx context.Context, req *broker.AppRequest) error {
	u, err := c.poster(ctx, req.Session)
	if err != nil {
		return asSTOMPError(err)
	}
	var in struct {
		RoomID int64 `json:"roomId"`
	}
	if err := json.Unmarshal(req.Frame.Body, &in); err != nil || in.RoomID <= 0 {
		return asSTOMPError(apperr.ErrBadJSON)
	}
	if err := c.chat.CanPost(ctx, u, in.RoomID); err != nil {
		return req.Refuse(asSTOMPError(err), ErrorsDest, apperr.RefusedSendJSON(err, req.Destination, req.Frame.Value(stomp.HdrReceipt)))
	}
	body, _ := json.Marshal(map[string]string{"user": u.Username, "displayName": u.DisplayName})
	return c.b.Publish(proto.RoomDestination(in.RoomID)+chat.TypingSuffix, jsonHeaders, body, 0)
}

var jsonHeaders = []stomp.Header{{Key: stomp.HdrContentType, Value: "application/json"}}

var errNoSuchRoomDest = stomp.NewError("unknown chat destination")

// onRoomSubscribe authorizes a room subscription and, with a since-id
// header, replays what the client missed before it goes live: the
// subscription is held (live messages buffered), attached, filled from the
// store page by page, then released without the ids already replayed. So
// there is no gap and no duplicate, even while messages keep arriving.
func (c *Glue) onRoomSubscribe(ctx context.Context, s *broker.Session, sub *broker.Subscription, f *stomp.Frame) error {
	id, suffix, ok := chat.ParseRoomDestination(sub.Dest)
	if !ok {
		return errNoSuchRoomDest
	}
	u, err := chatUser(s)
	if err != nil {
		return asSTOMPError(err)
	}
	if err := requireScope(u, auth.ScopeRead); err != nil {
		return asSTOMPError(err)
	}
	after := int64(-1) // no since-id
	if since, ok := f.Get("since-id"); ok && suffix == "" {
		if after, err = strconv.ParseInt(since, 10, 64); err != nil || after < 0 {
			return stomp.NewError("since-id must be a message id")
		}
	}
	// The presence list and a since-id replay go first: live messages
	// are held until they are out.
	replay := suffix == chat.PresenceSuffix || after >= 0
	if replay {
		sub.Hold()
	}
	if err := c.attachIfReadable(ctx, sub, u, id, suffix == ""); err != nil {
		return asSTOMPError(err)
	}
	if suffix == chat.PresenceSuffix {
		// The current list first, then changes, so a new subscriber is never
		// left with an empty one.
		sub.Replay(jsonHeaders, c.presenceJSON(id), 0)
		sub.Release(0)
		return nil
	}
	if !replay {
		return nil
	}
	last := after
	for {
		msgs, err := c.chat.MessagesAfter(ctx, id, last, replayPage)
		if err != nil {
			sub.Release(last)
			return fmt.Errorf("replay room %d: %w", id, err)
		}
		for _, m := range msgs {
			sub.Replay(jsonHeaders, m.JSON(), m.ID)
			last = m.ID
		}
		if len(msgs) < replayPage {
			break
		}
	}
	sub.Release(last)
	return nil
}

var errRoomPublishDenied = stomp.NewError("chat rooms take messages through /pub/chat/message")

// onRoomSend stops clients from publishing straight to a room topic, which
// would skip storage, authorization and the sender check.
func (c *Glue) onRoomSend(context.Context, *broker.Session, *stomp.Frame) error {
	return errRoomPublishDenied
}

// onNotificationsSubscribe hands a returning user what was stored for them
// while they were away: held, attached, delivered, released, so that the
// notifications land in this very subscription.
func (c *Glue) onNotificationsSubscribe(ctx context.Context, s *broker.Session, sub *broker.Subscription, _ *stomp.Frame) error {
	u, err := chatUser(s)
	if err != nil || !auth.Allows(u, auth.ScopeRead) {
		return nil // an anonymous session (or a post-only token) has nobody's notifications
	}
	sub.Hold()
	sub.Attach()
	_, err = c.chat.DeliverPending(ctx, u)
	sub.Release(0)
	if err != nil {
		return fmt.Errorf("deliver pending notifications: %w", err)
	}
	return nil
}

// onUnsubscribe keeps room presence current.
func (c *Glue) onUnsubscribe(s *broker.Session, sub *broker.Subscription) {
	if id, suffix, ok := chat.ParseRoomDestination(sub.Dest); ok && suffix == "" && s.User != "" {
		c.leave(id, s.User)
	}
}

// join and leave count a user's subscriptions to a room and publish the
// room's online list when someone arrives or the last tab of someone goes.
// In a cluster they tell the other nodes too, under c.mu so that the
// cluster sees one user's arrivals and departures in their order here.
func (c *Glue) join(room int64, user string) {
	c.mu.Lock()
	m := c.presence[room]
	if m == nil {
		m = make(map[string]int)
		c.presence[room] = m
	}
	m[user]++
	changed := m[user] == 1
	if changed {
		c.b.NotePresence(proto.RoomDestination(room)+chat.PresenceSuffix, user, true)
	}
	c.mu.Unlock()
	if changed {
		c.publishPresence(room)
	}
}

func (c *Glue) leave(room int64, user string) {
	c.mu.Lock()
	m := c.presence[room]
	changed := false
	if m[user] > 0 {
		m[user]--
		if m[user] == 0 {
			delete(m, user)
			changed = true
			c.b.NotePresence(proto.RoomDestination(room)+chat.PresenceSuffix, user, false)
		}
	}
	if len(m) == 0 {
		delete(c.presence, room)
	}
	c.mu.Unlock()
	if changed {
		c.publishPresence(room)
	}
}

// presenceJSON is {"online":[names…]} for a room, sorted: the users here
// and, in a cluster, those on the other live nodes.
func (c *Glue) presenceJSON(room int64) []byte {
	remote := c.b.RemotePresence(proto.RoomDestination(room) + chat.PresenceSuffix)
	c.mu.Lock()
	online := make([]string, 0, len(c.presence[room])+len(remote))
	for u := range c.presence[room] {
		online = append(online, u)
	}
	c.mu.Unlock()
	online = append(online, remote...)
	slices.Sort(online)
	online = slices.Compact(online)
	b, _ := json.Marshal(map[string][]string{"online": online})
	return b
}

// onRemotePresence sends this node's subscribers of a room's presence the
// merged list when another node's share of it changed.
func (c *Glue) onRemotePresence(dest string) {
	if id, suffix, ok := chat.ParseRoomDestination(dest); ok && suffix == chat.PresenceSuffix && c.b.HasSubscribers(dest) {
		c.publishPresence(id)
	}
}

// publishPresence sends the room's merged list to the subscribers of its
// presence on this node only: every node sends its own subscribers its own
// merged view, so a list is never delivered twice.
func (c *Glue) publishPresence(room int64) {
	dest := proto.RoomDestination(room) + chat.PresenceSuffix
	c.b.PublishLocal(dest, jsonHeaders, c.presenceJSON(room))
}

// DeliverRoom is the chat service's Deliver: it publishes a stored message to
// its room. It runs on the store's writer goroutine and never blocks.
func (c *Glue) DeliverRoom(roomID, msgID int64, msg []byte) {
	c.b.Publish(proto.RoomDestination(roomID), jsonHeaders, msg, msgID)
}

// NotifyUser is the chat service's Notify.
func (c *Glue) NotifyUser(username string, body []byte) {
	// Called as a post is applied, which every cluster node does: each
	// delivers to its own sessions, so the user gets it once.
	c.b.SendToLocalUser(username, chatNotificationsDest, jsonHeaders, body)
}
