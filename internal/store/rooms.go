package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"stompbox/internal/apperr"
	"time"
)

// Room kinds, as stored in rooms.kind.
const (
	RoomPublic  = "public"  // anyone logged in may read; posting joins
	RoomPrivate = "private" // members only; the creator or an admin adds members
	RoomDM      = "dm"      // a private room of exactly two, found by the pair
)

// Room is one chat room.
type Room struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Topic     string    `json:"topic"`
	Kind      string    `json:"kind"`
	Archived  bool      `json:"archived"`
	CreatedBy int64     `json:"createdBy,omitempty"` // 0 when the creator is gone or the room came with the schema
	CreatedAt time.Time `json:"createdAt"`
}

// RoomSummary is a room as listed for one user.
type RoomSummary struct {
	Room
	Member     bool   `json:"member"`
	LastReadID int64  `json:"lastReadId"`
	Unread     int    `json:"unread"`           // others' TALK messages after LastReadID, capped at maxUnreadCount
	DMWith     string `json:"dmWith,omitempty"` // for a DM, the other person's username
}

// maxUnreadCount caps unread counting so that listing rooms stays cheap when
// someone returns to a room with a million unread messages; clients show
// "999+".
const maxUnreadCount = 999

// maxRoomsListed bounds one room listing; a user of an intranet chat is in
// far fewer rooms than this.
const maxRoomsListed = 2000

const roomColumns = `r.id, r.name, r.topic, r.kind, r.archived, coalesce(r.created_by, 0), r.created_at`

func scanRoom(row interface{ Scan(...any) error }, extra ...any) (Room, error) {
	var r Room
	var created int64
	dest := append([]any{&r.ID, &r.Name, &r.Topic, &r.Kind, &r.Archived, &r.CreatedBy, &created}, extra...)
	err := row.Scan(dest...)
	r.CreatedAt = FromMS(created)
	return r, err
}

const sqlRoomByID = `SELECT ` + roomColumns + ` FROM rooms r WHERE r.id = ?`

// RoomByID returns the room or errUnknownRoom.
func (s *Store) RoomByID(ctx context.Context, id int64) (Room, error) {
	r, err := scanRoom(s.Rdb.QueryRowContext(ctx, sqlRoomByID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Room{}, apperr.ErrUnknownRoom
	}
	if err != nil {
		return Room{}, fmt.Errorf("room %d: %w", id, err)
	}
	return r, nil
}

const sqlRoomAccess = `
SELECT ` + roomColumns + `, m.user_id IS NOT NULL
FROM rooms r LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = ?2
WHERE r.id = ?1`

// RoomAccess returns the room and whether userID is a member, in one read.
func (s *Store) RoomAccess(ctx context.Context, roomID, userID int64) (Room, bool, error) {
	var member bool
	r, err := scanRoom(s.stmtRoomAccess.QueryRowContext(ctx, roomID, userID), &member)
	if errors.Is(err, sql.ErrNoRows) {
		return Room{}, false, apperr.ErrUnknownRoom
	}
	if err != nil {
		return Room{}, false, fmt.Errorf("room %d: %w", roomID, err)
	}
	return r, member, nil
}

// sqlPostAccess is the room check of every chat send, inside the write
// transaction. It returns three integers rather than the whole room:
// scanning and converting columns costs more than the lookup itself.
const sqlPostAccess = `
SELECT CASE r.kind WHEN 'public' THEN 0 WHEN 'private' THEN 1 ELSE 2 END, r.archived, m.user_id IS NOT NULL
FROM rooms r LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = ?2
WHERE r.id = ?1`

// postAccess is what a chat send needs to know about its room.
type postAccess struct {
	Kind     string
	Archived bool
	Member   bool
}

// postAccessTx runs sqlPostAccess inside a write transaction (writer
// goroutine): the check and the insert it guards see the same state, and
// a chat send needs no separate read transaction. errUnknownRoom if the
// room does not exist.
func (s *Store) postAccessTx(ctx context.Context, tx *sql.Tx, roomID, userID int64) (postAccess, error) {
	var kind int
	var a postAccess
	err := s.txStmt(ctx, tx, s.stmtPostAccess).QueryRowContext(ctx, roomID, userID).Scan(&kind, &a.Archived, &a.Member)
	if errors.Is(err, sql.ErrNoRows) {
		return postAccess{}, apperr.ErrUnknownRoom
	}
	if err != nil {
		return postAccess{}, fmt.Errorf("room %d: %w", roomID, err)
	}
	a.Kind = [...]string{RoomPublic, RoomPrivate, RoomDM}[kind]
	return a, nil
}

const sqlRoomsForUser = `
SELECT ` + roomColumns + `,
	m.user_id IS NOT NULL,
	coalesce(m.last_read_id, 0),
	CASE WHEN r.kind = 'dm' THEN coalesce((
		SELECT u.username FROM memberships o JOIN users u ON u.id = o.user_id
		WHERE o.room_id = r.id AND o.user_id <> ?1 LIMIT 1), '') ELSE '' END,
	CASE WHEN m.user_id IS NULL THEN 0 ELSE (
		SELECT count(*) FROM (
			SELECT 1 FROM messages x
			WHERE x.room_id = r.id AND x.id > m.last_read_id AND x.type = 'TALK'
				AND coalesce(x.user_id, 0) <> ?1
			LIMIT ?2)) END
FROM rooms r LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = ?1
WHERE r.kind = 'public' OR m.user_id IS NOT NULL
ORDER BY r.kind = 'dm', lower(r.name), r.id
LIMIT ?3`

// RoomsForUser lists the public rooms and the rooms userID belongs to, with
// unread counts for the latter.
func (s *Store) RoomsForUser(ctx context.Context, userID int64) ([]RoomSummary, error) {
	rs, err := queryPage(ctx, s.Rdb, func(rows *sql.Rows) (RoomSummary, error) {
		var rs RoomSummary
		var err error
		rs.Room, err = scanRoom(rows, &rs.Member, &rs.LastReadID, &rs.DMWith, &rs.Unread)
		return rs, err
	}, sqlRoomsForUser, userID, maxUnreadCount, maxRoomsListed)
	if err != nil {
		return nil, fmt.Errorf("list rooms: %w", err)
	}
	return rs, nil
}

// Write helpers: each runs inside a transaction handed out by store.write.

const sqlInsertRoom = `
INSERT INTO rooms (name, topic, kind, dm_key, created_by, created_at)
VALUES (?, ?, ?, ?, nullif(?, 0), ?)
RETURNING ` + `id, name, topic, kind, archived, coalesce(created_by, 0), created_at`

// insertRoomTx creates a room. dmKey is "" except for DMs.
func insertRoomTx(ctx context.Context, tx *sql.Tx, name, topic, kind, dmKey string, createdBy, now int64) (Room, error) {
	var key any
	if dmKey != "" {
		key = dmKey
	}
	r, err := scanRoom(tx.QueryRowContext(ctx, sqlInsertRoom, name, topic, kind, key, createdBy, now))
	if isUniqueViolation(err) {
		return Room{}, apperr.ErrNameTaken
	}
	return r, err
}

const sqlRoomsCreated = `SELECT count(*) FROM rooms WHERE created_by = ? AND kind != 'dm'`

// roomsCreatedTx counts the public and private rooms userID created, for
// -max-rooms-per-user. The rooms table is small (tens to thousands of
// rows on an intranet box), so the scan needs no index.
func roomsCreatedTx(ctx context.Context, tx *sql.Tx, userID int64) (int, error) {
	var n int
	if err := tx.QueryRowContext(ctx, sqlRoomsCreated, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count rooms of user %d: %w", userID, err)
	}
	return n, nil
}

const sqlDMRoom = `SELECT ` + roomColumns + ` FROM rooms r WHERE r.dm_key = ?`

// dmRoomTx returns the DM room for dmKey, if there is one.
func dmRoomTx(ctx context.Context, tx *sql.Tx, dmKey string) (Room, bool, error) {
	r, err := scanRoom(tx.QueryRowContext(ctx, sqlDMRoom, dmKey))
	if errors.Is(err, sql.ErrNoRows) {
		return Room{}, false, nil
	}
	return r, err == nil, err
}

// DmKey names the DM room of two users, whatever the order.
func DmKey(a, b int64) string {
	if a > b {
		a, b = b, a
	}
	return fmt.Sprintf("%d:%d", a, b)
}

// A new member starts with everything before they joined read: the
// join's own ENTER message and what came before are not "unread".
const sqlJoin = `
INSERT INTO memberships (room_id, user_id, last_read_id, joined_at)
VALUES (?1, ?2, coalesce((SELECT max(id) FROM messages WHERE room_id = ?1), 0), ?3)
ON CONFLICT (room_id, user_id) DO NOTHING`

// joinTx makes userID a member of roomID; it reports false if they already were.
func joinTx(ctx context.Context, tx *sql.Tx, roomID, userID, now int64) (bool, error) {
	res, err := tx.ExecContext(ctx, sqlJoin, roomID, userID, now)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

const sqlLeave = `DELETE FROM memberships WHERE room_id = ? AND user_id = ?`

// leaveTx removes the membership; it reports false if there was none.
func leaveTx(ctx context.Context, tx *sql.Tx, roomID, userID int64) (bool, error) {
	res, err := tx.ExecContext(ctx, sqlLeave, roomID, userID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

const sqlUpdateRoom = `
UPDATE rooms SET
	name = coalesce(?2, name),
	topic = coalesce(?3, topic),
	archived = coalesce(?4, archived)
WHERE id = ?1
RETURNING id, name, topic, kind, archived, coalesce(created_by, 0), created_at`

// RoomUpdate holds the fields PATCH /api/rooms/{id} may change; nil leaves
// a field as it is.
type RoomUpdate struct {
	Name     *string `json:"name"`
	Topic    *string `json:"topic"`
	Archived *bool   `json:"archived"`
}

func updateRoomTx(ctx context.Context, tx *sql.Tx, roomID int64, u RoomUpdate) (Room, error) {
	r, err := scanRoom(tx.QueryRowContext(ctx, sqlUpdateRoom, roomID, u.Name, u.Topic, u.Archived))
	if errors.Is(err, sql.ErrNoRows) {
		return Room{}, apperr.ErrUnknownRoom
	}
	return r, err
}

// Read position.

const sqlMarkRead = `
UPDATE memberships SET last_read_id = max(last_read_id, ?3)
WHERE room_id = ?1 AND user_id = ?2`

// markReadTx moves the user's read position forward (never back).
func markReadTx(ctx context.Context, tx *sql.Tx, roomID, userID, messageID int64) (bool, error) {
	res, err := tx.ExecContext(ctx, sqlMarkRead, roomID, userID, messageID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}
