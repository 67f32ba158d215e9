package store

// What an op of another package (the chat service's) may do inside the
// writer's transaction: each call runs one store statement in the op's
// transaction, at the op's clock reading where it stores a time, so that
// the op stays deterministic (storeOp). Writer goroutine only, while the
// op is applied.

// InsertAsMember stores m with sqlInsertAsMember when its sender is a
// member of a room that takes it without further checks, and reports
// whether it did (insertAsMemberTx).
func (e *Tx) InsertAsMember(m *StoredMessage) (bool, error) {
	return e.st.InsertAsMemberTx(e.ctx, e.tx, m, e.At)
}

// InsertMessage stores m and fills in m.ID and m.CreatedAt.
func (e *Tx) InsertMessage(m *StoredMessage) error {
	return e.st.InsertMessageTx(e.ctx, e.tx, m, e.At)
}

// PostAccess is what a post to roomID by userID needs to know about the
// room (postAccessTx).
func (e *Tx) PostAccess(roomID, userID int64) (postAccess, error) {
	return e.st.postAccessTx(e.ctx, e.tx, roomID, userID)
}

// CheckAttachable checks that ids are the sender's unsent uploads to m's
// room, else errBadAttachment (checkAttachableTx).
func (e *Tx) CheckAttachable(m *StoredMessage, ids []int64) error {
	return checkAttachableTx(e.ctx, e.tx, m, ids)
}

// AttachFiles attaches the uploads ids to the stored m (attachFilesTx).
func (e *Tx) AttachFiles(m *StoredMessage, ids []int64) error {
	return attachFilesTx(e.ctx, e.tx, m, ids)
}

// ReplyTarget quotes message msgID of roomID for a reply (replyTargetTx).
func (e *Tx) ReplyTarget(roomID, msgID int64) (*replyQuote, error) {
	return replyTargetTx(e.ctx, e.tx, roomID, msgID)
}

// DmPeers returns the other members of roomID (dmPeersTx).
func (e *Tx) DmPeers(roomID, senderID int64) ([]notifyPeer, error) {
	return dmPeersTx(e.ctx, e.tx, roomID, senderID)
}

// InsertNotification stores a notification of userID about messageID and
// returns its id.
func (e *Tx) InsertNotification(userID, messageID int64, reason string) (int64, error) {
	return insertNotificationTx(e.ctx, e.tx, userID, messageID, reason, e.At)
}

// Join makes userID a member of roomID and reports whether they were not
// one already (joinTx).
func (e *Tx) Join(roomID, userID int64) (bool, error) {
	return joinTx(e.ctx, e.tx, roomID, userID, e.At)
}

// Leave ends userID's membership of roomID and reports whether there was
// one (leaveTx).
func (e *Tx) Leave(roomID, userID int64) (bool, error) {
	return leaveTx(e.ctx, e.tx, roomID, userID)
}

// MarkRead moves userID's read position in roomID up to messageID and
// reports whether userID is a member (markReadTx).
func (e *Tx) MarkRead(roomID, userID, messageID int64) (bool, error) {
	return markReadTx(e.ctx, e.tx, roomID, userID, messageID)
}

// RoomsCreated counts the rooms (not DMs) userID created (roomsCreatedTx).
func (e *Tx) RoomsCreated(userID int64) (int, error) {
	return roomsCreatedTx(e.ctx, e.tx, userID)
}

// InsertRoom creates a room (insertRoomTx).
func (e *Tx) InsertRoom(name, topic, kind, dmKey string, createdBy int64) (Room, error) {
	return insertRoomTx(e.ctx, e.tx, name, topic, kind, dmKey, createdBy, e.At)
}

// UpdateRoom applies u to roomID (updateRoomTx).
func (e *Tx) UpdateRoom(roomID int64, u RoomUpdate) (Room, error) {
	return updateRoomTx(e.ctx, e.tx, roomID, u)
}

// DmRoom finds the DM room with dmKey (dmRoomTx).
func (e *Tx) DmRoom(dmKey string) (Room, bool, error) {
	return dmRoomTx(e.ctx, e.tx, dmKey)
}

// ChangeTarget reads what deciding on a change by userID to message msgID
// of roomID needs (changeTargetTx).
func (e *Tx) ChangeTarget(roomID, msgID, userID int64) (ChangeTarget, error) {
	return changeTargetTx(e.ctx, e.tx, roomID, msgID, userID)
}

// EditMessage replaces the text of message msgID (editMessageTx).
func (e *Tx) EditMessage(msgID int64, body string) error {
	e.st.scrubbed() // the old text goes: checkpoint it out of the WAL
	return editMessageTx(e.ctx, e.tx, msgID, body, e.At)
}

// DeleteMessage deletes message msgID and returns the blobs its files
// named (deleteMessageTx).
func (e *Tx) DeleteMessage(msgID int64) ([]string, error) {
	blobs, err := deleteMessageTx(e.ctx, e.tx, msgID, e.At)
	e.st.scrubbed(blobs...)
	return blobs, err
}

// SetReaction adds or removes userID's emoji on message msgID and returns
// the message's reactions after the change (setReactionTx).
func (e *Tx) SetReaction(msgID, userID int64, emoji string, add bool) ([]Reaction, error) {
	return setReactionTx(e.ctx, e.tx, msgID, userID, emoji, add, e.At)
}
