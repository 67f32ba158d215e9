package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"stompbox/internal/apperr"
	"stompbox/internal/proto"
	"stompbox/internal/store"
	"time"
	"unicode"
	"unicode/utf8"
)

// Changes to posted messages (issue 17): edit, delete, react. Like a post,
// each is decided and stored in one write transaction, then published on
// the room's destination by Deliver, in commit order, before the caller
// answers (RECEIPT or HTTP 2xx): a client that got the answer can rely on
// the change being on disk and on its way to everyone in the room.

// Event types published on /sub/chat/room/{id} beside ENTER, TALK and
// LEAVE. They carry "messageId" (the message changed) and no "id" of their
// own, so a client that only knows stored messages (the seed's, which
// keys messages by "id") has nothing to show twice and can ignore them.
const (
	MsgEdit     = "EDIT"
	MsgDelete   = "DELETE"
	MsgReaction = "REACTION"
)

// Limits of reactions.
const (
	// MaxEmojiBytes bounds one reaction's text: the longest emoji ZWJ
	// sequences in use (families, flags with tags) take about 28 bytes of
	// UTF-8; anything longer is text, not an emoji.
	MaxEmojiBytes = 32
)

// DefaultEditMinutes is the default of -edit-minutes: a day fixes typos
// and second thoughts at leisure, while a discussion that others have
// answered cannot be rewritten under them weeks later. 0 allows edits
// forever; deleting one's own message is always allowed.
const DefaultEditMinutes = 24 * 60

// editEvent is published when a message was edited:
//
//	{"type":"EDIT","roomId":5,"messageId":42,"sender":"kim","message":"new text","editedAt":"…"}
type editEvent struct {
	Type      string `json:"type"`
	RoomID    int64  `json:"roomId"`
	MessageID int64  `json:"messageId"`
	Sender    string `json:"sender"`
	Message   string `json:"message"`
	EditedAt  string `json:"editedAt"`
}

// deleteEvent is published when a message was deleted:
//
//	{"type":"DELETE","roomId":5,"messageId":42,"by":"lee"}
type deleteEvent struct {
	Type      string `json:"type"`
	RoomID    int64  `json:"roomId"`
	MessageID int64  `json:"messageId"`
	By        string `json:"by"` // who deleted it: the author, the room's owner or an administrator
}

// reactionEvent is published when someone added or removed a reaction; it
// carries the message's reactions after the change, so clients replace
// rather than count:
//
//	{"type":"REACTION","roomId":5,"messageId":42,"user":"lee","emoji":"👍","added":true,"reactions":[{"emoji":"👍","users":["lee"]}]}
type reactionEvent struct {
	Type      string           `json:"type"`
	RoomID    int64            `json:"roomId"`
	MessageID int64            `json:"messageId"`
	User      string           `json:"user"`
	Emoji     string           `json:"emoji"`
	Added     bool             `json:"added"`
	Reactions []store.Reaction `json:"reactions"` // never null: [] when the last one went
}

// mustJSON marshals an event of strings, numbers and bools; it cannot fail.
func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// CheckEmoji validates a reaction: valid UTF-8, 1 to maxEmojiBytes bytes,
// no control characters or spaces. Which emoji it is, is the client's
// business; the server only keeps it from being text or markup-sized.
func CheckEmoji(e string) error {
	if e == "" || len(e) > MaxEmojiBytes || !utf8.ValidString(e) {
		return apperr.ErrBadEmoji
	}
	for _, r := range e {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return apperr.ErrBadEmoji
		}
	}
	return nil
}

// canReadTarget applies CanRead's rule to a change's target.
func canReadTarget(t store.ChangeTarget) error {
	if t.Kind != store.RoomPublic && !t.Member {
		return apperr.ErrNotMember
	}
	return nil
}

// changeOp is an edit, deletion or reaction: its refusal, if any, is
// recorded by Apply rather than returned.
type changeOp interface {
	store.Op
	chatEffect
	refusal() error
}

// change checks the ids, runs op and returns its refusal. A client error
// (public error) found while op is applied is a refusal: it is returned
// without disturbing the other writes of the transaction's group.
func (c *Service) change(ctx context.Context, roomID, msgID int64, op changeOp) error {
	if roomID <= 0 {
		return apperr.ErrUnknownRoom
	}
	if msgID <= 0 {
		return apperr.ErrUnknownMessage
	}
	if err := c.St.Run(ctx, op); err != nil {
		return fmt.Errorf("change message %d: %w", msgID, err)
	}
	return op.refusal()
}

// changeMessageTx decides on a change by userID to message msgID of roomID
// (the rules every change shares, then decide) and, if allowed, makes it
// with write. It returns the refusal, or the error that fails the
// transaction. A client error from write is a refusal too, so write must
// refuse before it writes.
func changeMessageTx(e *store.Tx, roomID, msgID, userID int64, decide func(store.ChangeTarget) error, write func() error) (refused, err error) {
	t, err := e.ChangeTarget(roomID, msgID, userID)
	if err != nil {
		if apperr.IsClientError(err) {
			return err, nil
		}
		return nil, err
	}
	if err := canReadTarget(t); err != nil {
		return err, nil
	}
	if t.Typ != proto.MsgTalk {
		return apperr.ErrNotChangeable, nil
	}
	if t.Deleted {
		return apperr.ErrMessageDeleted, nil
	}
	if err := decide(t); err != nil {
		return err, nil
	}
	if err := write(); err != nil {
		if apperr.IsClientError(err) {
			return err, nil
		}
		return nil, err
	}
	return nil, nil
}

// Edit replaces the text of u's own TALK message msgID in roomID, within
// the edit window (-edit-minutes), and publishes an EDIT event. The text
// gets the checks of a post. Mentions added by an edit notify nobody.
func (c *Service) Edit(ctx context.Context, u store.User, roomID, msgID int64, text string) (editEvent, error) {
	if err := c.checkBody(text); err != nil {
		return editEvent{}, err
	}
	op := &MsgEditOp{RoomID: roomID, MsgID: msgID, UserID: u.ID, Username: u.Username, Text: text, WindowMS: windowMS(c.EditWindow)}
	if err := c.change(ctx, roomID, msgID, op); err != nil {
		return editEvent{}, err
	}
	return op.ev, nil
}

// windowMS is an edit window in Unix ms for msgEditOp: 0 (no limit) stays
// 0, and a window under a millisecond becomes one rather than no limit.
func windowMS(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return max(d.Milliseconds(), 1)
}

// Delete deletes message msgID of roomID and publishes a DELETE event. The
// author may delete their own message at any time; the room's owner (its
// creator) and administrators may delete anyone's. Only administrators
// delete in an archived room.
func (c *Service) Delete(ctx context.Context, u store.User, roomID, msgID int64) error {
	op := &MsgDeleteOp{RoomID: roomID, MsgID: msgID, UserID: u.ID, Username: u.Username, Admin: u.IsAdmin}
	err := c.change(ctx, roomID, msgID, op)
	if err == nil && len(op.blobs) > 0 && c.files != nil {
		// The rows are gone: nobody can download them any more; now the
		// bytes, even if the client has left meanwhile.
		c.files.Forget(context.WithoutCancel(ctx), op.blobs)
	}
	return err
}

// React adds (add) or removes u's emoji on message msgID of roomID and
// publishes a REACTION event with the message's reactions after it. Only
// members of the room react, and not in an archived room.
func (c *Service) React(ctx context.Context, u store.User, roomID, msgID int64, emoji string, add bool) ([]store.Reaction, error) {
	if err := CheckEmoji(emoji); err != nil {
		return nil, err
	}
	op := &MsgReactOp{RoomID: roomID, MsgID: msgID, UserID: u.ID, Username: u.Username, Emoji: emoji, Add: add}
	if err := c.change(ctx, roomID, msgID, op); err != nil {
		return nil, err
	}
	return op.ev.Reactions, nil
}

// MsgEditOp replaces the text of its author's message (Edit). The edit
// window is carried, and measured against the op's clock reading, so
// that every node decides alike.
type MsgEditOp struct {
	RoomID   int64  `json:"room"`
	MsgID    int64  `json:"msgId"`
	UserID   int64  `json:"user"`
	Username string `json:"name"`
	Text     string `json:"text"`             // checked by the caller
	WindowMS int64  `json:"window,omitempty"` // how long after posting the author may edit, ms; 0: forever

	ev      editEvent
	refused error
}

func (*MsgEditOp) OpKind() string   { return "msg-edit" }
func (o *MsgEditOp) refusal() error { return o.refused }

func (o *MsgEditOp) Apply(e *store.Tx) (err error) {
	o.ev = editEvent{Type: MsgEdit, RoomID: o.RoomID, MessageID: o.MsgID, Sender: o.Username, Message: o.Text, EditedAt: store.FormatJSONTime(store.FromMS(e.At))}
	o.refused, err = changeMessageTx(e, o.RoomID, o.MsgID, o.UserID, func(t store.ChangeTarget) error {
		switch {
		case t.AuthorID == 0 || t.AuthorID != o.UserID:
			return apperr.ErrNotAuthor
		case t.Archived:
			return apperr.ErrRoomArchived
		case o.WindowMS > 0 && e.At-t.CreatedAt > o.WindowMS:
			return apperr.ErrEditTooLate
		}
		return nil
	}, func() error { return e.EditMessage(o.MsgID, o.Text) })
	return err
}

func (o *MsgEditOp) committed(c *Service) { deliverChange(c, o.refused, o.RoomID, o.ev) }

// MsgDeleteOp deletes a message (Delete).
type MsgDeleteOp struct {
	RoomID   int64  `json:"room"`
	MsgID    int64  `json:"msgId"`
	UserID   int64  `json:"user"`
	Username string `json:"name"`
	Admin    bool   `json:"admin,omitempty"` // the deleting user is an administrator

	blobs   []string // the blobs its files named, for chatConfig.Attachments on the submitting node
	refused error
}

func (*MsgDeleteOp) OpKind() string   { return "msg-delete" }
func (o *MsgDeleteOp) refusal() error { return o.refused }

func (o *MsgDeleteOp) Apply(e *store.Tx) (err error) {
	o.blobs = nil
	o.refused, err = changeMessageTx(e, o.RoomID, o.MsgID, o.UserID, func(t store.ChangeTarget) error {
		author := t.AuthorID != 0 && t.AuthorID == o.UserID
		owner := t.OwnerID != 0 && t.OwnerID == o.UserID && t.Kind != store.RoomDM
		switch {
		case !author && !owner && !o.Admin:
			return apperr.ErrCannotDelete
		case t.Archived && !o.Admin:
			return apperr.ErrRoomArchived
		}
		return nil
	}, func() (err error) {
		o.blobs, err = e.DeleteMessage(o.MsgID)
		return err
	})
	return err
}

func (o *MsgDeleteOp) committed(c *Service) {
	deliverChange(c, o.refused, o.RoomID, deleteEvent{Type: MsgDelete, RoomID: o.RoomID, MessageID: o.MsgID, By: o.Username})
}

// MsgReactOp adds or removes a reaction (React).
type MsgReactOp struct {
	RoomID   int64  `json:"room"`
	MsgID    int64  `json:"msgId"`
	UserID   int64  `json:"user"`
	Username string `json:"name"`
	Emoji    string `json:"emoji"` // checked by the caller
	Add      bool   `json:"add,omitempty"`

	ev      reactionEvent // with the message's reactions after the change
	refused error
}

func (*MsgReactOp) OpKind() string   { return "msg-react" }
func (o *MsgReactOp) refusal() error { return o.refused }

func (o *MsgReactOp) Apply(e *store.Tx) (err error) {
	o.ev = reactionEvent{Type: MsgReaction, RoomID: o.RoomID, MessageID: o.MsgID, User: o.Username, Emoji: o.Emoji, Added: o.Add}
	o.refused, err = changeMessageTx(e, o.RoomID, o.MsgID, o.UserID, func(t store.ChangeTarget) error {
		switch {
		case !t.Member:
			return apperr.ErrNotMember
		case t.Archived:
			return apperr.ErrRoomArchived
		}
		return nil
	}, func() error {
		rs, err := e.SetReaction(o.MsgID, o.UserID, o.Emoji, o.Add)
		if rs == nil {
			rs = []store.Reaction{}
		}
		o.ev.Reactions = rs
		return err
	})
	return err
}

func (o *MsgReactOp) committed(c *Service) { deliverChange(c, o.refused, o.RoomID, o.ev) }

// deliverChange publishes a change's event to this node's clients in the
// room, unless the change was refused.
func deliverChange(c *Service, refused error, roomID int64, ev any) {
	if refused == nil {
		c.deliver(roomID, 0, mustJSON(ev))
	}
}

// EditWindowFromMinutes turns -edit-minutes into the chat's edit window;
// 0 means no limit.
func EditWindowFromMinutes(n int) time.Duration {
	return time.Duration(n) * time.Minute
}
