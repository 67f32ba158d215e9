package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
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
	msgEdit     = "EDIT"
	msgDelete   = "DELETE"
	msgReaction = "REACTION"
)

// Limits of reactions.
const (
	// maxEmojiBytes bounds one reaction's text: the longest emoji ZWJ
	// sequences in use (families, flags with tags) take about 28 bytes of
	// UTF-8; anything longer is text, not an emoji.
	maxEmojiBytes = 32

	// maxReactionsPerUser bounds the distinct emojis one person puts on one
	// message, so a message's reactions stay a row of badges, not a flood.
	maxReactionsPerUser = 20
)

// defaultEditMinutes is the default of -edit-minutes: a day fixes typos
// and second thoughts at leisure, while a discussion that others have
// answered cannot be rewritten under them weeks later. 0 allows edits
// forever; deleting one's own message is always allowed.
const defaultEditMinutes = 24 * 60

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
	Type      string     `json:"type"`
	RoomID    int64      `json:"roomId"`
	MessageID int64      `json:"messageId"`
	User      string     `json:"user"`
	Emoji     string     `json:"emoji"`
	Added     bool       `json:"added"`
	Reactions []reaction `json:"reactions"` // never null: [] when the last one went
}

// mustJSON marshals an event of strings, numbers and bools; it cannot fail.
func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// checkEmoji validates a reaction: valid UTF-8, 1 to maxEmojiBytes bytes,
// no control characters or spaces. Which emoji it is, is the client's
// business; the server only keeps it from being text or markup-sized.
func checkEmoji(e string) error {
	if e == "" || len(e) > maxEmojiBytes || !utf8.ValidString(e) {
		return errBadEmoji
	}
	for _, r := range e {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return errBadEmoji
		}
	}
	return nil
}

// canReadTarget applies CanRead's rule to a change's target.
func canReadTarget(t changeTarget) error {
	if t.kind != roomPublic && !t.member {
		return errNotMember
	}
	return nil
}

// changeMessage runs decide and apply for message msgID of roomID in one
// write transaction, then publishes event() on commit. A client error
// (public error) from decide or apply is a refusal: it is returned without
// disturbing the other writes of the transaction's group, so apply must
// refuse before it writes.
func (c *chatService) changeMessage(ctx context.Context, u user, roomID, msgID int64, decide func(changeTarget) error, apply func(tx *sql.Tx, now int64) error, event func() []byte) error {
	if roomID <= 0 {
		return errUnknownRoom
	}
	if msgID <= 0 {
		return errUnknownMessage
	}
	var refused error
	err := c.st.write(ctx, func(tx *sql.Tx) error {
		refused = nil
		t, err := changeTargetTx(ctx, tx, roomID, msgID, u.ID)
		if err != nil {
			if isClientError(err) {
				refused = err
				return nil
			}
			return err
		}
		if refused = canReadTarget(t); refused != nil {
			return nil
		}
		if t.typ != msgTalk {
			refused = errNotChangeable
			return nil
		}
		if t.deleted {
			refused = errMessageDeleted
			return nil
		}
		if refused = decide(t); refused != nil {
			return nil
		}
		if err := apply(tx, c.st.nowMS()); err != nil {
			if isClientError(err) {
				refused = err
				return nil
			}
			return err
		}
		return nil
	}, func() {
		if refused == nil {
			c.deliver(roomID, 0, event())
		}
	})
	if err != nil {
		return fmt.Errorf("change message %d: %w", msgID, err)
	}
	return refused
}

// Edit replaces the text of u's own TALK message msgID in roomID, within
// the edit window (-edit-minutes), and publishes an EDIT event. The text
// gets the checks of a post. Mentions added by an edit notify nobody.
func (c *chatService) Edit(ctx context.Context, u user, roomID, msgID int64, text string) (editEvent, error) {
	if err := c.checkBody(text); err != nil {
		return editEvent{}, err
	}
	ev := editEvent{Type: msgEdit, RoomID: roomID, MessageID: msgID, Sender: u.Username, Message: text}
	err := c.changeMessage(ctx, u, roomID, msgID, func(t changeTarget) error {
		switch {
		case t.authorID == 0 || t.authorID != u.ID:
			return errNotAuthor
		case t.archived:
			return errRoomArchived
		case c.editWindow > 0 && c.st.now().Sub(fromMS(t.createdAt)) > c.editWindow:
			return errEditTooLate
		}
		return nil
	}, func(tx *sql.Tx, now int64) error {
		ev.EditedAt = formatJSONTime(fromMS(now))
		return editMessageTx(ctx, tx, msgID, text, now)
	}, func() []byte { return mustJSON(ev) })
	if err != nil {
		return editEvent{}, err
	}
	return ev, nil
}

// Delete deletes message msgID of roomID and publishes a DELETE event. The
// author may delete their own message at any time; the room's owner (its
// creator) and administrators may delete anyone's. Only administrators
// delete in an archived room.
func (c *chatService) Delete(ctx context.Context, u user, roomID, msgID int64) error {
	ev := deleteEvent{Type: msgDelete, RoomID: roomID, MessageID: msgID, By: u.Username}
	var blobs []string
	err := c.changeMessage(ctx, u, roomID, msgID, func(t changeTarget) error {
		author := t.authorID != 0 && t.authorID == u.ID
		owner := t.ownerID != 0 && t.ownerID == u.ID && t.kind != roomDM
		switch {
		case !author && !owner && !u.IsAdmin:
			return errCannotDelete
		case t.archived && !u.IsAdmin:
			return errRoomArchived
		}
		return nil
	}, func(tx *sql.Tx, now int64) (err error) {
		blobs, err = deleteMessageTx(ctx, tx, msgID, now)
		return err
	}, func() []byte { return mustJSON(ev) })
	if err == nil && len(blobs) > 0 && c.filesGone != nil {
		// The rows are gone: nobody can download them any more; now the
		// bytes, even if the client has left meanwhile.
		c.filesGone(context.WithoutCancel(ctx), blobs)
	}
	return err
}

// React adds (add) or removes u's emoji on message msgID of roomID and
// publishes a REACTION event with the message's reactions after it. Only
// members of the room react, and not in an archived room.
func (c *chatService) React(ctx context.Context, u user, roomID, msgID int64, emoji string, add bool) ([]reaction, error) {
	if err := checkEmoji(emoji); err != nil {
		return nil, err
	}
	ev := reactionEvent{Type: msgReaction, RoomID: roomID, MessageID: msgID, User: u.Username, Emoji: emoji, Added: add}
	err := c.changeMessage(ctx, u, roomID, msgID, func(t changeTarget) error {
		switch {
		case !t.member:
			return errNotMember
		case t.archived:
			return errRoomArchived
		}
		return nil
	}, func(tx *sql.Tx, now int64) error {
		rs, err := setReactionTx(ctx, tx, msgID, u.ID, emoji, add, now)
		if rs == nil {
			rs = []reaction{}
		}
		ev.Reactions = rs
		return err
	}, func() []byte { return mustJSON(ev) })
	if err != nil {
		return nil, err
	}
	return ev.Reactions, nil
}

// editWindowFromMinutes turns -edit-minutes into the chat's edit window;
// 0 means no limit.
func editWindowFromMinutes(n int) time.Duration {
	return time.Duration(n) * time.Minute
}
