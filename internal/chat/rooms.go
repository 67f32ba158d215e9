package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"stompbox/internal/apperr"
	"stompbox/internal/proto"
	"stompbox/internal/store"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Room and history limits.
const (
	MaxRoomNameRunes = 64  // a sidebar line
	maxTopicRunes    = 256 // a sentence or two

	defaultHistoryLimit = 50  // one screen of chat
	MaxHistoryLimit     = 200 // bounds one history read (and its memory)
	maxSearchResults    = 50  // a page of hits; refine the query for more

	// DefaultMaxRoomsPerUser is the default of -max-rooms-per-user: how
	// many rooms (public and private, archived ones too) one account may
	// create. A team lead who makes a room per project stays far below
	// it; a script or a stolen token that makes rooms in a loop, filling
	// everyone's room list and the database, stops there.
	DefaultMaxRoomsPerUser = 200
)

// errRoomLimit refuses a room past -max-rooms-per-user. It is 403, not
// 429: waiting does not help (rooms are never deleted, only archived), so
// there is no Retry-After to give; an administrator must create the room
// or raise the limit. 409 would suggest a clash with another room.
func errRoomLimit(max int) error {
	return apperr.New(apperr.ErrForbidden, fmt.Sprintf("room limit reached: an account may create at most %d rooms; ask an administrator", max))
}

func checkRoomName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > MaxRoomNameRunes || strings.ContainsFunc(name, unicode.IsControl) {
		return "", apperr.New(apperr.ErrBadRequest, fmt.Sprintf("room name must be 1 to %d printable characters", MaxRoomNameRunes))
	}
	return name, nil
}

func checkTopic(topic string) (string, error) {
	topic = strings.TrimSpace(topic)
	if utf8.RuneCountInString(topic) > maxTopicRunes || strings.ContainsFunc(topic, unicode.IsControl) {
		return "", apperr.New(apperr.ErrBadRequest, fmt.Sprintf("topic must be at most %d printable characters", maxTopicRunes))
	}
	return topic, nil
}

// NewRoom is the input of CreateRoom.
type NewRoom struct {
	Name  string `json:"name"`
	Topic string `json:"topic"`
	Kind  string `json:"kind"` // "public" (default) or "private"
}

// CreateRoom makes a public or private room with u as its first member.
// Guests cannot create rooms. An account that has created maxRooms rooms
// (archived ones included) gets errRoomLimit; administrators are exempt,
// since they set up rooms for everyone and can raise the limit anyway.
//
// Only creation is bounded, not membership: creating is what adds rows and
// fills every user's room list, whereas joining public rooms is bounded by
// the rooms that exist, which this limit bounds in turn. Direct messages
// are not counted: there is at most one per pair of accounts.
func (c *Service) CreateRoom(ctx context.Context, u store.User, nr NewRoom) (store.Room, error) {
	if u.IsGuest {
		return store.Room{}, apperr.New(apperr.ErrForbidden, "guests cannot create rooms")
	}
	name, err := checkRoomName(nr.Name)
	if err != nil {
		return store.Room{}, err
	}
	topic, err := checkTopic(nr.Topic)
	if err != nil {
		return store.Room{}, err
	}
	kind := nr.Kind
	if kind == "" {
		kind = store.RoomPublic
	}
	if kind != store.RoomPublic && kind != store.RoomPrivate {
		return store.Room{}, apperr.New(apperr.ErrBadRequest, `kind must be "public" or "private"`)
	}
	op := &RoomCreateOp{UserID: u.ID, Admin: u.IsAdmin, Name: name, Topic: topic, Kind: kind, MaxRooms: c.MaxRooms}
	if err := c.St.Run(ctx, op); err != nil {
		return store.Room{}, fmt.Errorf("create room: %w", err)
	}
	if op.refused != nil {
		return store.Room{}, op.refused
	}
	return op.room, nil
}

// UpdateRoom renames a room, changes its topic or (un)archives it. Only its
// creator or an admin may; DMs cannot be changed.
func (c *Service) UpdateRoom(ctx context.Context, u store.User, roomID int64, up store.RoomUpdate) (store.Room, error) {
	r, _, err := c.St.RoomAccess(ctx, roomID, u.ID)
	if err != nil {
		return store.Room{}, err
	}
	if r.Kind == store.RoomDM {
		return store.Room{}, apperr.New(apperr.ErrForbidden, "direct-message rooms cannot be changed")
	}
	if !u.IsAdmin && (r.CreatedBy == 0 || r.CreatedBy != u.ID) {
		return store.Room{}, apperr.New(apperr.ErrForbidden, "only the room's creator or an administrator may change it")
	}
	if up.Name != nil {
		n, err := checkRoomName(*up.Name)
		if err != nil {
			return store.Room{}, err
		}
		up.Name = &n
	}
	if up.Topic != nil {
		tp, err := checkTopic(*up.Topic)
		if err != nil {
			return store.Room{}, err
		}
		up.Topic = &tp
	}
	op := &RoomUpdateOp{RoomID: roomID, Update: up}
	if err := c.St.Run(ctx, op); err != nil {
		return store.Room{}, fmt.Errorf("update room: %w", err)
	}
	if op.refused != nil {
		return store.Room{}, op.refused
	}
	return op.room, nil
}

// Rooms lists the rooms u can see (public ones and those u belongs to) with
// unread counts.
func (c *Service) Rooms(ctx context.Context, u store.User) ([]store.RoomSummary, error) {
	return c.St.RoomsForUser(ctx, u.ID)
}

// Room returns one room if u may read it.
func (c *Service) Room(ctx context.Context, u store.User, roomID int64) (store.Room, error) {
	r, member, err := c.St.RoomAccess(ctx, roomID, u.ID)
	if err != nil {
		return store.Room{}, err
	}
	if r.Kind != store.RoomPublic && !member {
		return store.Room{}, apperr.ErrNotMember
	}
	return r, nil
}

// Join makes u a member of a public room and posts the ENTER message. It
// is a no-op (nil) if u already is a member. Private rooms and DMs are
// joined only by being added (errNotMember).
func (c *Service) Join(ctx context.Context, u store.User, roomID int64) error {
	r, member, err := c.St.RoomAccess(ctx, roomID, u.ID)
	if err != nil {
		return err
	}
	if member {
		return nil
	}
	if r.Kind != store.RoomPublic {
		return apperr.ErrNotMember
	}
	if r.Archived {
		return apperr.ErrRoomArchived
	}
	m := store.StoredMessage{Type: proto.MsgEnter, RoomID: r.ID, Sender: u.Username, UserID: u.ID, Message: presenceText(c.lang, proto.MsgEnter, u.Username)}
	_, err = c.store(ctx, m, nil, nil, "") // an ENTER by a non-member of a public room joins
	return err
}

// AddMember adds the user called name to a private room u belongs to, and
// posts their ENTER message. Members of a private room may add others.
func (c *Service) AddMember(ctx context.Context, u store.User, roomID int64, name string) error {
	r, member, err := c.St.RoomAccess(ctx, roomID, u.ID)
	if err != nil {
		return err
	}
	if r.Kind == store.RoomDM {
		return apperr.New(apperr.ErrForbidden, "direct-message rooms have exactly two members")
	}
	if r.Kind == store.RoomPrivate && !member {
		return apperr.ErrNotMember
	}
	if r.Archived {
		return apperr.ErrRoomArchived
	}
	other, err := c.St.UserByName(ctx, name)
	if err != nil {
		return err
	}
	if other.IsGuest && r.Kind == store.RoomPrivate {
		return apperr.New(apperr.ErrForbidden, "guests cannot join private rooms")
	}
	op := &RoomAddMemberOp{RoomPresence{RoomID: r.ID, UserID: other.ID, Username: other.Username, Message: presenceText(c.lang, proto.MsgEnter, other.Username)}}
	if err := c.St.Run(ctx, op); err != nil {
		return fmt.Errorf("add member: %w", err)
	}
	return nil
}

// Leave ends u's membership and posts the LEAVE message. Leaving a room
// one is not in is errNotMember.
func (c *Service) Leave(ctx context.Context, u store.User, roomID int64) error {
	r, member, err := c.St.RoomAccess(ctx, roomID, u.ID)
	if err != nil {
		return err
	}
	if !member {
		return apperr.ErrNotMember
	}
	op := &RoomLeaveOp{RoomPresence{RoomID: r.ID, UserID: u.ID, Username: u.Username, Message: presenceText(c.lang, proto.MsgLeave, u.Username)}}
	if err := c.St.Run(ctx, op); err != nil {
		return fmt.Errorf("leave room %d: %w", roomID, err)
	}
	return nil
}

// Member is one member of a room as the page's member list shows it.
type Member struct {
	Username    string `json:"username"`
	DisplayName string `json:"displayName"`
	IsAdmin     bool   `json:"isAdmin,omitempty"`
	Owner       bool   `json:"owner,omitempty"`  // created the room
	Online      bool   `json:"online,omitempty"` // connected to this node now
}

// RoomMembers lists the members of a room u may read, by username, with
// who is online (this node's knowledge, as presence is).
func (c *Service) RoomMembers(ctx context.Context, u store.User, roomID int64) ([]Member, error) {
	r, err := c.Room(ctx, u, roomID)
	if err != nil {
		return nil, err
	}
	us, err := c.St.RoomMembers(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	out := make([]Member, 0, len(us))
	for _, m := range us {
		out = append(out, Member{Username: m.Username, DisplayName: m.DisplayName, IsAdmin: m.IsAdmin, Owner: r.CreatedBy != 0 && r.CreatedBy == m.ID, Online: c.online(m.Username)})
	}
	return out, nil
}

// errCannotRemove refuses a removal by someone who is neither the room's
// owner nor an administrator.
var errCannotRemove = apperr.New(apperr.ErrForbidden, "only the room's owner or an administrator can remove members")

// RemoveMember ends the membership of the user called name in a room, on
// behalf of u, who must be the room's owner or an administrator, and posts
// their LEAVE message. Once the op is committed, every node ends that
// user's live subscriptions to the room (AccessEnded). Removing oneself is
// refused (leaving is Leave); so are DM rooms, which have exactly two
// members, and someone who is not a member.
func (c *Service) RemoveMember(ctx context.Context, u store.User, roomID int64, name string) error {
	r, _, err := c.St.RoomAccess(ctx, roomID, u.ID)
	if err != nil {
		return err
	}
	if r.Kind == store.RoomDM {
		return apperr.New(apperr.ErrForbidden, "direct-message rooms have exactly two members")
	}
	if !u.IsAdmin && (r.CreatedBy == 0 || r.CreatedBy != u.ID) {
		return errCannotRemove
	}
	other, err := c.St.UserByName(ctx, name)
	if err != nil {
		return err
	}
	if other.ID == u.ID {
		return apperr.New(apperr.ErrBadRequest, "to remove yourself, leave the room")
	}
	if _, member, err := c.St.RoomAccess(ctx, roomID, other.ID); err != nil {
		return err
	} else if !member {
		return apperr.New(apperr.ErrNotFound, other.Username+" is not a member of this room")
	}
	op := &RoomRemoveMemberOp{RoomPresence: RoomPresence{RoomID: r.ID, UserID: other.ID, Username: other.Username, Message: presenceText(c.lang, proto.MsgLeave, other.Username)}, By: u.ID}
	if err := c.St.Run(ctx, op); err != nil {
		return fmt.Errorf("remove member of room %d: %w", roomID, err)
	}
	return nil
}

// OpenDM returns the direct-message room of u and the user called name,
// creating it on first use; both are (again) members afterwards. The
// room's unique dm_key makes concurrent opens converge on one room.
func (c *Service) OpenDM(ctx context.Context, u store.User, name string) (store.Room, error) {
	if u.IsGuest {
		return store.Room{}, apperr.New(apperr.ErrForbidden, "guests cannot send direct messages")
	}
	other, err := c.St.UserByName(ctx, name)
	if err != nil {
		return store.Room{}, err
	}
	if other.ID == u.ID {
		return store.Room{}, apperr.New(apperr.ErrBadRequest, "cannot open a direct message with yourself")
	}
	if other.IsGuest {
		return store.Room{}, apperr.New(apperr.ErrForbidden, "guests cannot receive direct messages")
	}
	op := &DmOpenOp{UserID: u.ID, Username: u.Username, OtherID: other.ID, OtherName: other.Username}
	if err := c.St.Run(ctx, op); err != nil {
		return store.Room{}, fmt.Errorf("open dm: %w", err)
	}
	return op.room, nil
}

// historyLimit clamps a requested page size: 0 means the default, and
// nothing exceeds maxHistoryLimit.
func historyLimit(limit int) int {
	if limit <= 0 {
		return defaultHistoryLimit
	}
	return min(limit, MaxHistoryLimit)
}

// Messages returns a page of a room's history in ascending id order: the
// newest if before and after are 0, else those just below before or just
// above after. The limit is clamped to maxHistoryLimit.
func (c *Service) Messages(ctx context.Context, u store.User, roomID, before, after int64, limit int) ([]store.StoredMessage, error) {
	if before < 0 || after < 0 || (before > 0 && after > 0) {
		return nil, apperr.New(apperr.ErrBadRequest, "give before or after, not both")
	}
	if err := c.CanRead(ctx, u, roomID); err != nil {
		return nil, err
	}
	return c.St.MessagesPage(ctx, roomID, before, after, historyLimit(limit))
}

// MessagesSince is MessagesAfter for u, with the CanRead check; after = 0
// reads from the oldest message (GET …/messages?after=0).
func (c *Service) MessagesSince(ctx context.Context, u store.User, roomID, after int64, limit int) ([]store.StoredMessage, error) {
	if after < 0 {
		return nil, apperr.New(apperr.ErrBadRequest, "after must not be negative")
	}
	if err := c.CanRead(ctx, u, roomID); err != nil {
		return nil, err
	}
	return c.St.MessagesAfter(ctx, roomID, after, historyLimit(limit))
}

// MessagesAfter returns up to limit messages of a room with id > afterID
// (0: from the oldest), ascending, for the broker's since-id replay on
// SUBSCRIBE. It does no authorization: the broker checks CanRead when the
// client subscribes. The limit is clamped to maxHistoryLimit.
func (c *Service) MessagesAfter(ctx context.Context, roomID, afterID int64, limit int) ([]store.StoredMessage, error) {
	return c.St.MessagesAfter(ctx, roomID, max(afterID, 0), historyLimit(limit))
}

// Search finds TALK messages matching every word of q (as word prefixes)
// in the rooms u can read, newest first.
func (c *Service) Search(ctx context.Context, u store.User, q string) ([]store.StoredMessage, error) {
	match, ok := store.FtsQuery(q)
	if !ok {
		return nil, apperr.New(apperr.ErrBadRequest, "empty search")
	}
	return c.St.SearchMessages(ctx, u.ID, match, maxSearchResults)
}

// MarkRead moves u's read position in a room up to messageID (never back).
func (c *Service) MarkRead(ctx context.Context, u store.User, roomID, messageID int64) error {
	op := &MarkReadOp{RoomID: roomID, UserID: u.ID, MessageID: messageID}
	if err := c.St.Run(ctx, op); err != nil {
		return fmt.Errorf("mark read: %w", err)
	}
	if !op.ok {
		if _, err := c.St.RoomByID(ctx, roomID); err != nil {
			return err
		}
		return apperr.ErrNotMember
	}
	return nil
}

// Users lists the registered (non-guest) accounts.
func (c *Service) Users(ctx context.Context) ([]store.User, error) {
	return c.St.ListUsers(ctx)
}

// ExportRoom writes a room u can read as one JSON document,
// {"room":{…},"messages":[…]}, oldest first. It reads storePageSize
// messages at a time and closes each page's Rows before writing, so a slow
// client never holds a read transaction open.
func (c *Service) ExportRoom(ctx context.Context, u store.User, roomID int64, w io.Writer) error {
	r, err := c.Room(ctx, u, roomID)
	if err != nil {
		return err
	}
	head, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if _, err := fmt.Fprintf(w, `{"room":%s,"messages":[`, head); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	var after int64
	first := true
	for {
		page, err := c.St.MessagesAfter(ctx, roomID, after, store.StorePageSize)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		for _, m := range page {
			if !first {
				if _, err := io.WriteString(w, ",\n"); err != nil {
					return fmt.Errorf("export: %w", err)
				}
			}
			first = false
			if _, err := w.Write(m.JSON()); err != nil {
				return fmt.Errorf("export: %w", err)
			}
		}
		if len(page) < store.StorePageSize {
			break
		}
		after = page[len(page)-1].ID
	}
	if _, err := io.WriteString(w, "]}\n"); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// MarkReadOp moves a member's read position up (MarkRead).
type MarkReadOp struct {
	RoomID    int64 `json:"room"`
	UserID    int64 `json:"user"`
	MessageID int64 `json:"msg"`
	ok        bool  // u is a member of the room
}

func (*MarkReadOp) OpKind() string { return "mark-read" }

func (o *MarkReadOp) Apply(e *store.Tx) (err error) {
	o.ok, err = e.MarkRead(o.RoomID, o.UserID, o.MessageID)
	return err
}

// RoomCreateOp creates a room with its creator as the first member
// (CreateRoom). The room limit is carried, since nodes may be configured
// differently while a cluster is being reconfigured.
type RoomCreateOp struct {
	UserID   int64  `json:"user"`
	Admin    bool   `json:"admin,omitempty"` // administrators are exempt from MaxRooms
	Name     string `json:"name"`            // checked by the caller
	Topic    string `json:"topic,omitempty"` // checked by the caller
	Kind     string `json:"kind"`            // roomPublic or roomPrivate
	MaxRooms int    `json:"max,omitempty"`   // rooms one account may create; 0: no limit

	room    store.Room
	refused error // the room limit, recorded rather than returned (see chatService.store)
}

func (*RoomCreateOp) OpKind() string { return "room-create" }

func (o *RoomCreateOp) Apply(e *store.Tx) error {
	o.room, o.refused = store.Room{}, nil
	if o.MaxRooms > 0 && !o.Admin {
		// Counted inside the write transaction, so racing creates cannot pass the limit together.
		n, err := e.RoomsCreated(o.UserID)
		if err != nil {
			return err
		}
		if n >= o.MaxRooms {
			o.refused = errRoomLimit(o.MaxRooms)
			return nil
		}
	}
	r, err := e.InsertRoom(o.Name, o.Topic, o.Kind, "", o.UserID)
	if err != nil {
		return err
	}
	if _, err := e.Join(r.ID, o.UserID); err != nil {
		return err
	}
	o.room = r
	return nil
}

// RoomUpdateOp renames a room, changes its topic or (un)archives it
// (UpdateRoom, which checked who may).
type RoomUpdateOp struct {
	RoomID int64            `json:"room"`
	Update store.RoomUpdate `json:"up"`

	room    store.Room
	refused error // errUnknownRoom, recorded rather than returned
}

func (*RoomUpdateOp) OpKind() string { return "room-update" }

func (o *RoomUpdateOp) Apply(e *store.Tx) error {
	o.room, o.refused = store.Room{}, nil
	r, err := e.UpdateRoom(o.RoomID, o.Update)
	if errors.Is(err, apperr.ErrUnknownRoom) {
		o.refused = err
		return nil
	}
	o.room = r
	return err
}

// RoomPresence is a membership change with its ENTER or LEAVE message,
// the part roomAddMemberOp and roomLeaveOp share.
type RoomPresence struct {
	RoomID   int64  `json:"room"`
	UserID   int64  `json:"user"`
	Username string `json:"name"`
	Message  string `json:"msg"` // the server's text, in the submitting node's language

	msg     store.StoredMessage // the stored ENTER or LEAVE
	changed bool                // the membership changed and msg was stored
}

// store stores the presence message of type typ at now, once the
// membership changed.
func (p *RoomPresence) store(e *store.Tx, typ string) error {
	p.msg = store.StoredMessage{Type: typ, RoomID: p.RoomID, Sender: p.Username, UserID: p.UserID, Message: p.Message}
	return e.InsertMessage(&p.msg)
}

// committed publishes the presence message to this node's clients.
func (p *RoomPresence) committed(c *Service) {
	if p.changed {
		c.deliver(p.msg.RoomID, p.msg.ID, p.msg.JSON())
	}
}

// RoomAddMemberOp adds a member to a room and posts their ENTER (AddMember).
// Adding someone who already is a member changes nothing.
type RoomAddMemberOp struct{ RoomPresence }

func (*RoomAddMemberOp) OpKind() string { return "room-add-member" }

func (o *RoomAddMemberOp) Apply(e *store.Tx) (err error) {
	o.msg = store.StoredMessage{}
	if o.changed, err = e.Join(o.RoomID, o.UserID); err != nil || !o.changed {
		return err
	}
	return o.store(e, proto.MsgEnter)
}

// committed publishes the ENTER to the room and tells the added person's
// open pages on this node (their notification queue, reason "added"), so
// the room appears in their list at once.
func (o *RoomAddMemberOp) committed(c *Service) {
	o.RoomPresence.committed(c)
	if o.changed {
		c.notify(o.Username, notificationJSON(store.Notification{Reason: ReasonAdded, CreatedAt: o.msg.CreatedAt, Message: o.msg}))
	}
}

// ReasonAdded is the reason of the notification someone gets when they
// are added to a room.
const ReasonAdded = "added"

// RoomLeaveOp ends a membership and posts the LEAVE (Leave). Leaving a
// room one has already left changes nothing.
type RoomLeaveOp struct{ RoomPresence }

func (*RoomLeaveOp) OpKind() string { return "room-leave" }

func (o *RoomLeaveOp) Apply(e *store.Tx) (err error) {
	o.msg = store.StoredMessage{}
	if o.changed, err = e.Leave(o.RoomID, o.UserID); err != nil || !o.changed {
		return err
	}
	return o.store(e, proto.MsgLeave)
}

// RoomRemoveMemberOp ends someone else's membership, by the room's owner
// or an administrator (RemoveMember), and posts their LEAVE. Removing
// someone who is no longer a member changes nothing. It ends the removed
// user's access: on every node, once committed, their live subscriptions
// to the room end and their pages are told (AccessEnded).
type RoomRemoveMemberOp struct {
	RoomPresence
	By int64 `json:"by"` // who removed them
}

func (*RoomRemoveMemberOp) OpKind() string { return "room-remove-member" }

func (o *RoomRemoveMemberOp) Apply(e *store.Tx) (err error) {
	o.msg = store.StoredMessage{}
	if o.changed, err = e.Leave(o.RoomID, o.UserID); err != nil || !o.changed {
		return err
	}
	return o.store(e, proto.MsgLeave)
}

// AccessEnded names the room and the user whose access the op ended.
func (o *RoomRemoveMemberOp) AccessEnded() (roomID, userID int64) { return o.RoomID, o.UserID }

// DmOpenOp finds or creates the DM room of two users and makes both
// members (again) (OpenDM). The room's unique dm_key, from the two ids,
// makes concurrent opens converge on one room.
type DmOpenOp struct {
	UserID    int64  `json:"user"`
	Username  string `json:"name"`
	OtherID   int64  `json:"other"`
	OtherName string `json:"otherName"`

	room store.Room
}

func (*DmOpenOp) OpKind() string { return "dm-open" }

func (o *DmOpenOp) Apply(e *store.Tx) error {
	o.room = store.Room{}
	r, ok, err := e.DmRoom(store.DmKey(o.UserID, o.OtherID))
	if err != nil {
		return err
	}
	if !ok {
		if r, err = e.InsertRoom(o.Username+", "+o.OtherName, "", store.RoomDM, store.DmKey(o.UserID, o.OtherID), o.UserID); err != nil {
			return err
		}
	}
	for _, id := range []int64{o.UserID, o.OtherID} {
		if _, err := e.Join(r.ID, id); err != nil {
			return err
		}
	}
	o.room = r
	return nil
}
