package store

// The members of a room, for the page's member list (issue 25). Adding and
// removing members are the chat service's ops (Tx.Join, Tx.Leave).

import (
	"context"
	"database/sql"
	"fmt"
)

const sqlRoomMembers = `SELECT ` + userColumns + ` FROM users
WHERE id IN (SELECT user_id FROM memberships WHERE room_id = ?)
ORDER BY username_key`

// RoomMembers returns the accounts that belong to roomID, by username.
func (s *Store) RoomMembers(ctx context.Context, roomID int64) ([]User, error) {
	us, err := queryPage(ctx, s.Rdb, func(r *sql.Rows) (User, error) { return scanUser(r) }, sqlRoomMembers, roomID)
	if err != nil {
		return nil, fmt.Errorf("members of room %d: %w", roomID, err)
	}
	return us, nil
}
