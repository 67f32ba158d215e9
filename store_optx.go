package main

// What an op of another package (the chat service's) may do inside the
// writer's transaction: each call runs one store statement in the op's
// transaction, at the op's clock reading where it stores a time, so that
// the op stays deterministic (storeOp). Writer goroutine only, while the
// op is applied.

// insertAsMember stores m with sqlInsertAsMember when its sender is a
// member of a room that takes it without further checks, and reports
// whether it did (insertAsMemberTx).
func (e *opEnv) insertAsMember(m *storedMessage) (bool, error) {
	return e.st.insertAsMemberTx(e.ctx, e.tx, m, e.at)
}

// insertMessage stores m and fills in m.ID and m.CreatedAt.
func (e *opEnv) insertMessage(m *storedMessage) error {
	return e.st.insertMessageTx(e.ctx, e.tx, m, e.at)
}

// postAccess is what a post to roomID by userID needs to know about the
// room (postAccessTx).
func (e *opEnv) postAccess(roomID, userID int64) (postAccess, error) {
	return e.st.postAccessTx(e.ctx, e.tx, roomID, userID)
}

// checkAttachable checks that ids are the sender's unsent uploads to m's
// room, else errBadAttachment (checkAttachableTx).
func (e *opEnv) checkAttachable(m *storedMessage, ids []int64) error {
	return checkAttachableTx(e.ctx, e.tx, m, ids)
}

// attachFiles attaches the uploads ids to the stored m (attachFilesTx).
func (e *opEnv) attachFiles(m *storedMessage, ids []int64) error {
	return attachFilesTx(e.ctx, e.tx, m, ids)
}

// replyTarget quotes message msgID of roomID for a reply (replyTargetTx).
func (e *opEnv) replyTarget(roomID, msgID int64) (*replyQuote, error) {
	return replyTargetTx(e.ctx, e.tx, roomID, msgID)
}

// dmPeers returns the other members of roomID (dmPeersTx).
func (e *opEnv) dmPeers(roomID, senderID int64) ([]notifyPeer, error) {
	return dmPeersTx(e.ctx, e.tx, roomID, senderID)
}

// insertNotification stores a notification of userID about messageID and
// returns its id.
func (e *opEnv) insertNotification(userID, messageID int64, reason string) (int64, error) {
	return insertNotificationTx(e.ctx, e.tx, userID, messageID, reason, e.at)
}

// join makes userID a member of roomID and reports whether they were not
// one already (joinTx).
func (e *opEnv) join(roomID, userID int64) (bool, error) {
	return joinTx(e.ctx, e.tx, roomID, userID, e.at)
}

// leave ends userID's membership of roomID and reports whether there was
// one (leaveTx).
func (e *opEnv) leave(roomID, userID int64) (bool, error) {
	return leaveTx(e.ctx, e.tx, roomID, userID)
}

// markRead moves userID's read position in roomID up to messageID and
// reports whether userID is a member (markReadTx).
func (e *opEnv) markRead(roomID, userID, messageID int64) (bool, error) {
	return markReadTx(e.ctx, e.tx, roomID, userID, messageID)
}

// roomsCreated counts the rooms (not DMs) userID created (roomsCreatedTx).
func (e *opEnv) roomsCreated(userID int64) (int, error) {
	return roomsCreatedTx(e.ctx, e.tx, userID)
}

// insertRoom creates a room (insertRoomTx).
func (e *opEnv) insertRoom(name, topic, kind, dmKey string, createdBy int64) (room, error) {
	return insertRoomTx(e.ctx, e.tx, name, topic, kind, dmKey, createdBy, e.at)
}

// updateRoom applies u to roomID (updateRoomTx).
func (e *opEnv) updateRoom(roomID int64, u roomUpdate) (room, error) {
	return updateRoomTx(e.ctx, e.tx, roomID, u)
}

// dmRoom finds the DM room with dmKey (dmRoomTx).
func (e *opEnv) dmRoom(dmKey string) (room, bool, error) {
	return dmRoomTx(e.ctx, e.tx, dmKey)
}

// changeTarget reads what deciding on a change by userID to message msgID
// of roomID needs (changeTargetTx).
func (e *opEnv) changeTarget(roomID, msgID, userID int64) (changeTarget, error) {
	return changeTargetTx(e.ctx, e.tx, roomID, msgID, userID)
}

// editMessage replaces the text of message msgID (editMessageTx).
func (e *opEnv) editMessage(msgID int64, body string) error {
	return editMessageTx(e.ctx, e.tx, msgID, body, e.at)
}

// deleteMessage deletes message msgID and returns the blobs its files
// named (deleteMessageTx).
func (e *opEnv) deleteMessage(msgID int64) ([]string, error) {
	return deleteMessageTx(e.ctx, e.tx, msgID, e.at)
}

// setReaction adds or removes userID's emoji on message msgID and returns
// the message's reactions after the change (setReactionTx).
func (e *opEnv) setReaction(msgID, userID int64, emoji string, add bool) ([]reaction, error) {
	return setReactionTx(e.ctx, e.tx, msgID, userID, emoji, add, e.at)
}
