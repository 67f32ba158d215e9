package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Room and history limits.
const (
	maxRoomNameRunes = 64  // a sidebar line
	maxTopicRunes    = 256 // a sentence or two

	defaultHistoryLimit = 50  // one screen of chat
	maxHistoryLimit     = 200 // bounds one history read (and its memory)
	maxSearchResults    = 50  // a page of hits; refine the query for more

	// defaultMaxRoomsPerUser is the default of -max-rooms-per-user: how
	// many rooms (public and private, archived ones too) one account may
	// create. A team lead who makes a room per project stays far below
	// it; a script or a stolen token that makes rooms in a loop, filling
	// everyone's room list and the database, stops there.
	defaultMaxRoomsPerUser = 200
)

// errRoomLimit refuses a room past -max-rooms-per-user. It is 403, not
// 429: waiting does not help (rooms are never deleted, only archived), so
// there is no Retry-After to give; an administrator must create the room
// or raise the limit. 409 would suggest a clash with another room.
func errRoomLimit(max int) error {
	return newPublicError(errKindForbidden, fmt.Sprintf("room limit reached: an account may create at most %d rooms; ask an administrator", max))
}

func checkRoomName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > maxRoomNameRunes || strings.ContainsFunc(name, unicode.IsControl) {
		return "", newPublicError(errKindBadRequest, fmt.Sprintf("room name must be 1 to %d printable characters", maxRoomNameRunes))
	}
	return name, nil
}

func checkTopic(topic string) (string, error) {
	topic = strings.TrimSpace(topic)
	if utf8.RuneCountInString(topic) > maxTopicRunes || strings.ContainsFunc(topic, unicode.IsControl) {
		return "", newPublicError(errKindBadRequest, fmt.Sprintf("topic must be at most %d printable characters", maxTopicRunes))
	}
	return topic, nil
}

// newRoom is the input of CreateRoom.
type newRoom struct {
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
func (c *chatService) CreateRoom(ctx context.Context, u user, nr newRoom) (room, error) {
	if u.IsGuest {
		return room{}, newPublicError(errKindForbidden, "guests cannot create rooms")
	}
	name, err := checkRoomName(nr.Name)
	if err != nil {
		return room{}, err
	}
	topic, err := checkTopic(nr.Topic)
	if err != nil {
		return room{}, err
	}
	kind := nr.Kind
	if kind == "" {
		kind = roomPublic
	}
	if kind != roomPublic && kind != roomPrivate {
		return room{}, newPublicError(errKindBadRequest, `kind must be "public" or "private"`)
	}
	var (
		r       room
		refused error // the room limit, recorded rather than returned (see chatService.store)
	)
	err = c.st.write(ctx, func(tx *sql.Tx) error {
		now := c.st.nowMS()
		refused = nil
		if c.maxRooms > 0 && !u.IsAdmin {
			// Counted inside the write transaction, so racing creates cannot pass the limit together.
			n, err := roomsCreatedTx(ctx, tx, u.ID)
			if err != nil {
				return err
			}
			if n >= c.maxRooms {
				refused = errRoomLimit(c.maxRooms)
				return nil
			}
		}
		var err error
		if r, err = insertRoomTx(ctx, tx, name, topic, kind, "", u.ID, now); err != nil {
			return err
		}
		_, err = joinTx(ctx, tx, r.ID, u.ID, now)
		return err
	}, nil)
	if err != nil {
		return room{}, fmt.Errorf("create room: %w", err)
	}
	if refused != nil {
		return room{}, refused
	}
	return r, nil
}

// UpdateRoom renames a room, changes its topic or (un)archives it. Only its
// creator or an admin may; DMs cannot be changed.
func (c *chatService) UpdateRoom(ctx context.Context, u user, roomID int64, up roomUpdate) (room, error) {
	r, _, err := c.st.roomAccess(ctx, roomID, u.ID)
	if err != nil {
		return room{}, err
	}
	if r.Kind == roomDM {
		return room{}, newPublicError(errKindForbidden, "direct-message rooms cannot be changed")
	}
	if !u.IsAdmin && (r.CreatedBy == 0 || r.CreatedBy != u.ID) {
		return room{}, newPublicError(errKindForbidden, "only the room's creator or an administrator may change it")
	}
	if up.Name != nil {
		n, err := checkRoomName(*up.Name)
		if err != nil {
			return room{}, err
		}
		up.Name = &n
	}
	if up.Topic != nil {
		tp, err := checkTopic(*up.Topic)
		if err != nil {
			return room{}, err
		}
		up.Topic = &tp
	}
	err = c.st.write(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = updateRoomTx(ctx, tx, roomID, up)
		return err
	}, nil)
	if err != nil {
		return room{}, fmt.Errorf("update room: %w", err)
	}
	return r, nil
}

// Rooms lists the rooms u can see (public ones and those u belongs to) with
// unread counts.
func (c *chatService) Rooms(ctx context.Context, u user) ([]roomSummary, error) {
	return c.st.roomsForUser(ctx, u.ID)
}

// Room returns one room if u may read it.
func (c *chatService) Room(ctx context.Context, u user, roomID int64) (room, error) {
	r, member, err := c.st.roomAccess(ctx, roomID, u.ID)
	if err != nil {
		return room{}, err
	}
	if r.Kind != roomPublic && !member {
		return room{}, errNotMember
	}
	return r, nil
}

// Join makes u a member of a public room and posts the ENTER message. It
// is a no-op (nil) if u already is a member. Private rooms and DMs are
// joined only by being added (errNotMember).
func (c *chatService) Join(ctx context.Context, u user, roomID int64) error {
	r, member, err := c.st.roomAccess(ctx, roomID, u.ID)
	if err != nil {
		return err
	}
	if member {
		return nil
	}
	if r.Kind != roomPublic {
		return errNotMember
	}
	if r.Archived {
		return errRoomArchived
	}
	m := storedMessage{Type: msgEnter, RoomID: r.ID, Sender: u.Username, UserID: u.ID, Message: presenceText(c.lang, msgEnter, u.Username)}
	_, err = c.store(ctx, m, nil, nil) // an ENTER by a non-member of a public room joins
	return err
}

// AddMember adds the user called name to a private room u belongs to, and
// posts their ENTER message. Members of a private room may add others.
func (c *chatService) AddMember(ctx context.Context, u user, roomID int64, name string) error {
	r, member, err := c.st.roomAccess(ctx, roomID, u.ID)
	if err != nil {
		return err
	}
	if r.Kind == roomDM {
		return newPublicError(errKindForbidden, "direct-message rooms have exactly two members")
	}
	if r.Kind == roomPrivate && !member {
		return errNotMember
	}
	if r.Archived {
		return errRoomArchived
	}
	other, err := c.st.userByName(ctx, name)
	if err != nil {
		return err
	}
	if other.IsGuest && r.Kind == roomPrivate {
		return newPublicError(errKindForbidden, "guests cannot join private rooms")
	}
	m := storedMessage{Type: msgEnter, RoomID: r.ID, Sender: other.Username, UserID: other.ID, Message: presenceText(c.lang, msgEnter, other.Username)}
	var joined bool
	err = c.st.write(ctx, func(tx *sql.Tx) error {
		var err error
		if joined, err = joinTx(ctx, tx, r.ID, other.ID, c.st.nowMS()); err != nil || !joined {
			return err
		}
		return c.st.insertMessageTx(ctx, tx, &m)
	}, func() {
		if joined {
			c.deliver(m.RoomID, m.ID, m.JSON())
		}
	})
	if err != nil {
		return fmt.Errorf("add member: %w", err)
	}
	return nil
}

// Leave ends u's membership and posts the LEAVE message. Leaving a room
// one is not in is errNotMember.
func (c *chatService) Leave(ctx context.Context, u user, roomID int64) error {
	r, member, err := c.st.roomAccess(ctx, roomID, u.ID)
	if err != nil {
		return err
	}
	if !member {
		return errNotMember
	}
	m := storedMessage{Type: msgLeave, RoomID: r.ID, Sender: u.Username, UserID: u.ID, Message: presenceText(c.lang, msgLeave, u.Username)}
	var left bool
	err = c.st.write(ctx, func(tx *sql.Tx) error {
		var err error
		if left, err = leaveTx(ctx, tx, r.ID, u.ID); err != nil || !left {
			return err
		}
		return c.st.insertMessageTx(ctx, tx, &m)
	}, func() {
		if left {
			c.deliver(m.RoomID, m.ID, m.JSON())
		}
	})
	if err != nil {
		return fmt.Errorf("leave room %d: %w", roomID, err)
	}
	return nil
}

// OpenDM returns the direct-message room of u and the user called name,
// creating it on first use; both are (again) members afterwards. The
// room's unique dm_key makes concurrent opens converge on one room.
func (c *chatService) OpenDM(ctx context.Context, u user, name string) (room, error) {
	if u.IsGuest {
		return room{}, newPublicError(errKindForbidden, "guests cannot send direct messages")
	}
	other, err := c.st.userByName(ctx, name)
	if err != nil {
		return room{}, err
	}
	if other.ID == u.ID {
		return room{}, newPublicError(errKindBadRequest, "cannot open a direct message with yourself")
	}
	if other.IsGuest {
		return room{}, newPublicError(errKindForbidden, "guests cannot receive direct messages")
	}
	key := dmKey(u.ID, other.ID)
	var r room
	err = c.st.write(ctx, func(tx *sql.Tx) error {
		now := c.st.nowMS()
		found, ok, err := dmRoomTx(ctx, tx, key)
		if err != nil {
			return err
		}
		if ok {
			r = found
		} else if r, err = insertRoomTx(ctx, tx, u.Username+", "+other.Username, "", roomDM, key, u.ID, now); err != nil {
			return err
		}
		for _, id := range []int64{u.ID, other.ID} {
			if _, err := joinTx(ctx, tx, r.ID, id, now); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	if err != nil {
		return room{}, fmt.Errorf("open dm: %w", err)
	}
	return r, nil
}

// historyLimit clamps a requested page size: 0 means the default, and
// nothing exceeds maxHistoryLimit.
func historyLimit(limit int) int {
	if limit <= 0 {
		return defaultHistoryLimit
	}
	return min(limit, maxHistoryLimit)
}

// Messages returns a page of a room's history in ascending id order: the
// newest if before and after are 0, else those just below before or just
// above after. The limit is clamped to maxHistoryLimit.
func (c *chatService) Messages(ctx context.Context, u user, roomID, before, after int64, limit int) ([]storedMessage, error) {
	if before < 0 || after < 0 || (before > 0 && after > 0) {
		return nil, newPublicError(errKindBadRequest, "give before or after, not both")
	}
	if err := c.CanRead(ctx, u, roomID); err != nil {
		return nil, err
	}
	return c.st.messagesPage(ctx, roomID, before, after, historyLimit(limit))
}

// MessagesSince is MessagesAfter for u, with the CanRead check; after = 0
// reads from the oldest message (GET …/messages?after=0).
func (c *chatService) MessagesSince(ctx context.Context, u user, roomID, after int64, limit int) ([]storedMessage, error) {
	if after < 0 {
		return nil, newPublicError(errKindBadRequest, "after must not be negative")
	}
	if err := c.CanRead(ctx, u, roomID); err != nil {
		return nil, err
	}
	return c.st.messagesAfter(ctx, roomID, after, historyLimit(limit))
}

// MessagesAfter returns up to limit messages of a room with id > afterID
// (0: from the oldest), ascending, for the broker's since-id replay on
// SUBSCRIBE. It does no authorization: the broker checks CanRead when the
// client subscribes. The limit is clamped to maxHistoryLimit.
func (c *chatService) MessagesAfter(ctx context.Context, roomID, afterID int64, limit int) ([]storedMessage, error) {
	return c.st.messagesAfter(ctx, roomID, max(afterID, 0), historyLimit(limit))
}

// Search finds TALK messages matching every word of q (as word prefixes)
// in the rooms u can read, newest first.
func (c *chatService) Search(ctx context.Context, u user, q string) ([]storedMessage, error) {
	match, ok := ftsQuery(q)
	if !ok {
		return nil, newPublicError(errKindBadRequest, "empty search")
	}
	return c.st.searchMessages(ctx, u.ID, match, maxSearchResults)
}

// MarkRead moves u's read position in a room up to messageID (never back).
func (c *chatService) MarkRead(ctx context.Context, u user, roomID, messageID int64) error {
	op := &markReadOp{RoomID: roomID, UserID: u.ID, MessageID: messageID}
	if err := c.st.run(ctx, op); err != nil {
		return fmt.Errorf("mark read: %w", err)
	}
	if !op.ok {
		if _, err := c.st.roomByID(ctx, roomID); err != nil {
			return err
		}
		return errNotMember
	}
	return nil
}

// Users lists the registered (non-guest) accounts.
func (c *chatService) Users(ctx context.Context) ([]user, error) {
	return c.st.listUsers(ctx)
}

// ExportRoom writes a room u can read as one JSON document,
// {"room":{…},"messages":[…]}, oldest first. It reads storePageSize
// messages at a time and closes each page's Rows before writing, so a slow
// client never holds a read transaction open.
func (c *chatService) ExportRoom(ctx context.Context, u user, roomID int64, w io.Writer) error {
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
		page, err := c.st.messagesAfter(ctx, roomID, after, storePageSize)
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
		if len(page) < storePageSize {
			break
		}
		after = page[len(page)-1].ID
	}
	if _, err := io.WriteString(w, "]}\n"); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// markReadOp moves a member's read position up (MarkRead).
type markReadOp struct {
	RoomID    int64 `json:"room"`
	UserID    int64 `json:"user"`
	MessageID int64 `json:"msg"`
	ok        bool  // u is a member of the room
}

func (*markReadOp) opKind() string { return "mark-read" }

func (o *markReadOp) apply(e *opEnv, tx *sql.Tx) (err error) {
	o.ok, err = markReadTx(e.ctx, tx, o.RoomID, o.UserID, o.MessageID)
	return err
}
