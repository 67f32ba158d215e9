-- 0003_files: uploaded files and pictures (issue 17). The bytes live in the
-- data folder under files/, named by their SHA-256, so the same content is
-- stored once however often it is uploaded; a row here is one upload of
-- those bytes into one room. A row whose message_id is NULL was uploaded but
-- not yet sent; sending a message attaches it, and deleting the message
-- (retention, or any other deletion) deletes the row with it. Blobs that no
-- row names any more are removed by the file sweep (files.go).
CREATE TABLE files (
	id            INTEGER PRIMARY KEY,
	room_id       INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
	user_id       INTEGER REFERENCES users(id) ON DELETE SET NULL,
	message_id    INTEGER REFERENCES messages(id) ON DELETE CASCADE,
	-- name is the file name the uploader's browser gave, sanitized: shown
	-- to people and put in Content-Disposition, never used as a path.
	name          TEXT    NOT NULL,
	size          INTEGER NOT NULL,
	-- type is sniffed from the content on the server, never taken from the
	-- client.
	type          TEXT    NOT NULL,
	sha256        TEXT    NOT NULL,
	width         INTEGER NOT NULL DEFAULT 0,
	height        INTEGER NOT NULL DEFAULT 0,
	-- thumb_sha256 names the thumbnail blob of a picture, '' for other files
	-- and for pictures too large to decode safely.
	thumb_sha256  TEXT    NOT NULL DEFAULT '',
	thumb_type    TEXT    NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX files_message ON files(message_id);
CREATE INDEX files_user ON files(user_id);
CREATE INDEX files_sha ON files(sha256);
CREATE INDEX files_thumb ON files(thumb_sha256) WHERE thumb_sha256 <> '';
