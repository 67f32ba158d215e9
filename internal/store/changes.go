package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"stompbox/internal/apperr"
)

// Changes to stored messages (issue 17): edits, deletions, reactions, and
// the checks a reply needs. Everything here runs inside a write
// transaction on the writer goroutine, except addReactions, which reads.

// MaxReactionsPerUser bounds the distinct emojis one person puts on one
// message, so a message's reactions stay a row of badges, not a flood.
const MaxReactionsPerUser = 20

// ChangeTarget is what deciding on a change to one message needs: the
// message, its room, and the acting user's membership.
type ChangeTarget struct {
	roomID    int64
	AuthorID  int64 // 0 if the author's account is gone
	sender    string
	Typ       string
	CreatedAt int64 // Unix ms
	Deleted   bool
	Kind      string // the room's kind
	Archived  bool
	OwnerID   int64 // the room's creator, 0 if none
	Member    bool  // the acting user is a member of the room
}

const sqlChangeTarget = `
SELECT m.room_id, coalesce(m.user_id, 0), m.sender, m.type, m.created_at, m.deleted_at IS NOT NULL,
	r.kind, r.archived, coalesce(r.created_by, 0),
	EXISTS (SELECT 1 FROM memberships x WHERE x.room_id = r.id AND x.user_id = ?2)
FROM messages m JOIN rooms r ON r.id = m.room_id
WHERE m.id = ?1`

// changeTargetTx reads message msgID for a change by userID. A message that
// does not exist or is in another room than roomID is errUnknownMessage:
// ids are guessable, so another room's message must look like none.
func changeTargetTx(ctx context.Context, tx *sql.Tx, roomID, msgID, userID int64) (ChangeTarget, error) {
	var t ChangeTarget
	err := tx.QueryRowContext(ctx, sqlChangeTarget, msgID, userID).Scan(&t.roomID, &t.AuthorID, &t.sender, &t.Typ, &t.CreatedAt, &t.Deleted,
		&t.Kind, &t.Archived, &t.OwnerID, &t.Member)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && t.roomID != roomID) {
		return ChangeTarget{}, apperr.ErrUnknownMessage
	}
	if err != nil {
		return ChangeTarget{}, fmt.Errorf("message %d: %w", msgID, err)
	}
	return t, nil
}

const sqlEditMessage = `UPDATE messages SET body = ?, edited_at = ? WHERE id = ?`

// editMessageTx replaces the text of a message; the FTS index follows by
// the messages_fts_update trigger.
func editMessageTx(ctx context.Context, tx *sql.Tx, msgID int64, body string, now int64) error {
	if _, err := tx.ExecContext(ctx, sqlEditMessage, body, now, msgID); err != nil {
		return fmt.Errorf("edit message %d: %w", msgID, err)
	}
	return nil
}

// A deletion keeps the row (its id and place in history, so since-id and
// replies stay consistent) but not the text: the body is emptied, which
// takes it out of the FTS index by trigger. Its reactions, the
// notifications it caused and its files go with it.
const (
	sqlDeleteMessage       = `UPDATE messages SET body = '', deleted_at = ? WHERE id = ?`
	sqlDeleteReactions     = `DELETE FROM reactions WHERE message_id = ?`
	sqlDeleteNotifications = `DELETE FROM notifications WHERE message_id = ?`
	sqlDeleteMessageFiles  = `DELETE FROM files WHERE message_id = ? RETURNING sha256, thumb_sha256`
)

// deleteMessageTx deletes message msgID as above. It returns the blob sums
// (files and thumbnails) its files named, for the file service to remove
// once no other upload names them (fileService.Forget).
func deleteMessageTx(ctx context.Context, tx *sql.Tx, msgID int64, now int64) (blobs []string, err error) {
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{sqlDeleteMessage, []any{now, msgID}},
		{sqlDeleteReactions, []any{msgID}},
		{sqlDeleteNotifications, []any{msgID}},
	} {
		if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
			return nil, fmt.Errorf("delete message %d: %w", msgID, err)
		}
	}
	rows, err := tx.QueryContext(ctx, sqlDeleteMessageFiles, msgID)
	if err != nil {
		return nil, fmt.Errorf("delete message %d files: %w", msgID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var sum, thumb string
		if err := rows.Scan(&sum, &thumb); err != nil {
			return nil, fmt.Errorf("delete message %d files: %w", msgID, err)
		}
		blobs = append(blobs, sum)
		if thumb != "" {
			blobs = append(blobs, thumb)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("delete message %d files: %w", msgID, err)
	}
	return blobs, nil
}

const (
	sqlUserReactions  = `SELECT count(*), coalesce(sum(emoji = ?3), 0) FROM reactions WHERE message_id = ?1 AND user_id = ?2`
	sqlAddReaction    = `INSERT OR IGNORE INTO reactions (message_id, user_id, emoji, created_at) VALUES (?, ?, ?, ?)`
	sqlRemoveReaction = `DELETE FROM reactions WHERE message_id = ? AND user_id = ? AND emoji = ?`
	sqlMsgReactions   = `
SELECT r.emoji, u.username FROM reactions r JOIN users u ON u.id = r.user_id
WHERE r.message_id = ? ORDER BY r.created_at, r.emoji, u.username_key`
)

// setReactionTx adds (or removes) userID's emoji on a message and returns
// the message's reactions after the change. Adding one the user already
// has, or removing one they do not have, changes nothing. A new one past
// maxReactionsPerUser is errTooManyReactions, returned before anything is
// written (a refusal, see changeMessage).
func setReactionTx(ctx context.Context, tx *sql.Tx, msgID, userID int64, emoji string, add bool, now int64) ([]Reaction, error) {
	if add {
		var n, has int
		if err := tx.QueryRowContext(ctx, sqlUserReactions, msgID, userID, emoji).Scan(&n, &has); err != nil {
			return nil, fmt.Errorf("react: %w", err)
		}
		if has == 0 && n >= MaxReactionsPerUser {
			return nil, apperr.ErrTooManyReactions
		}
		if _, err := tx.ExecContext(ctx, sqlAddReaction, msgID, userID, emoji, now); err != nil {
			return nil, fmt.Errorf("react: %w", err)
		}
	} else if _, err := tx.ExecContext(ctx, sqlRemoveReaction, msgID, userID, emoji); err != nil {
		return nil, fmt.Errorf("react: %w", err)
	}
	rows, err := tx.QueryContext(ctx, sqlMsgReactions, msgID)
	if err != nil {
		return nil, fmt.Errorf("react: %w", err)
	}
	defer rows.Close()
	var rs []Reaction
	for rows.Next() {
		var e, user string
		if err := rows.Scan(&e, &user); err != nil {
			return nil, fmt.Errorf("react: %w", err)
		}
		rs = appendReaction(rs, e, user)
	}
	return rs, rows.Err()
}

// appendReaction adds user under emoji, keeping emojis in the order they
// first appeared.
func appendReaction(rs []Reaction, emoji, user string) []Reaction {
	for i := range rs {
		if rs[i].Emoji == emoji {
			rs[i].Users = append(rs[i].Users, user)
			return rs
		}
	}
	return append(rs, Reaction{Emoji: emoji, Users: []string{user}})
}

const sqlReplyTarget = `
SELECT sender, substr(body, 1, ` + ReplyQuoteRunesSQL + `), deleted_at IS NOT NULL
FROM messages WHERE id = ? AND room_id = ?`

// replyTargetTx returns the quote of the message a new message in roomID
// answers, or errBadReply when it is not a message of that room.
func replyTargetTx(ctx context.Context, tx *sql.Tx, roomID, msgID int64) (*replyQuote, error) {
	q := &replyQuote{ID: msgID}
	err := tx.QueryRowContext(ctx, sqlReplyTarget, msgID, roomID).Scan(&q.Sender, &q.Message, &q.Deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.ErrBadReply
	}
	if err != nil {
		return nil, fmt.Errorf("reply to %d: %w", msgID, err)
	}
	if q.Deleted {
		q.Sender, q.Message = "", ""
	}
	return q, nil
}

// sqlPageReactions reads the reactions of a page of messages, whose ids
// come as one JSON array parameter (one statement whatever the page size).
const sqlPageReactions = `
SELECT r.message_id, r.emoji, u.username FROM reactions r JOIN users u ON u.id = r.user_id
WHERE r.message_id IN (SELECT value FROM json_each(?))
ORDER BY r.message_id, r.created_at, r.emoji, u.username_key`

// addReactions fills in the Reactions of ms, a page read from the store.
func (s *Store) addReactions(ctx context.Context, ms []StoredMessage) error {
	if len(ms) == 0 {
		return nil
	}
	ids := make([]int64, len(ms))
	at := make(map[int64]int, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
		at[m.ID] = i
	}
	list, _ := json.Marshal(ids) // integers only: cannot fail
	type row struct {
		id          int64
		emoji, user string
	}
	rows, err := queryPage(ctx, s.Rdb, func(r *sql.Rows) (row, error) {
		var x row
		return x, r.Scan(&x.id, &x.emoji, &x.user)
	}, sqlPageReactions, string(list))
	if err != nil {
		return fmt.Errorf("reactions: %w", err)
	}
	for _, x := range rows {
		m := &ms[at[x.id]]
		m.Reactions = appendReaction(m.Reactions, x.emoji, x.user)
	}
	return nil
}
