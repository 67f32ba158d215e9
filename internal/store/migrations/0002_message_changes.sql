-- 0002_message_changes: edits, deletions, replies and reactions (issue 17).

-- edited_at is set by the last edit; deleted_at by a deletion, which also
-- empties body (so the text leaves the database and the FTS index through
-- messages_fts_update) but keeps the row, its id and its place in history.
-- reply_to is the id of the message answered, in the same room. It has no
-- REFERENCES clause on purpose: a foreign key would make every retention
-- DELETE look up replies by reply_to (an index and a b-tree update per
-- message for a rare column); a reply whose original is gone shows it as
-- deleted instead.
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
ALTER TABLE messages ADD COLUMN deleted_at INTEGER;
ALTER TABLE messages ADD COLUMN reply_to INTEGER;

-- reactions: one row per (message, person, emoji); a second click removes it.
CREATE TABLE reactions (
	message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
	user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	emoji      TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (message_id, user_id, emoji)
) STRICT, WITHOUT ROWID;
