package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"stompbox/internal/proto"
	"strings"
	"time"
)

// StoredMessage is a chat message as stored and as published to
// /sub/chat/room/{roomId}:
//
//	{"id":42,"type":"TALK","roomId":5,"sender":"alice","message":"hi","createdAt":"2026-01-02T03:04:05.678Z"}
//
// The fields of issue 17 are only present when they say something, so the
// seed's plain message is unchanged: "editedAt" after an edit, "deleted":
// true (with an empty "message") after a deletion, "replyTo" and "reply"
// (a short quote of the original) on a reply, and "reactions" when someone
// reacted.
type StoredMessage struct {
	ID        int64
	Type      string
	RoomID    int64
	Sender    string
	Message   string
	CreatedAt time.Time
	UserID    int64       // the author's account, 0 if deleted; not published
	EditedAt  time.Time   // zero if never edited
	Deleted   bool        // deleted: Message is empty
	ReplyTo   int64       // id of the message answered, 0 if none
	Reply     *replyQuote // the answered message, as it is now; nil if ReplyTo is 0
	Reactions []Reaction  // nil if none; filled for history pages and replay

	// Attachments are the files the message carries (issue 17), in
	// upload order; nil for most messages, and then absent from
	// the JSON, so the seed's plain message is unchanged.
	Attachments []Attachment
}

// replyQuote is what a reply shows of its original: who wrote it and the
// start of its text, or that it is gone.
type replyQuote struct {
	ID      int64  `json:"id"`
	Sender  string `json:"sender,omitempty"`
	Message string `json:"message,omitempty"` // at most replyQuoteRunes characters
	Deleted bool   `json:"deleted,omitempty"` // deleted, or removed by retention
}

// Reaction is one emoji on a message and who chose it, in order of reacting.
type Reaction struct {
	Emoji string   `json:"emoji"`
	Users []string `json:"users"`
}

// MessageJSON is the wire form of StoredMessage: the fields every client
// reads (proto.ChatMessage) and what the page shows besides.
type MessageJSON struct {
	proto.ChatMessage
	EditedAt  string      `json:"editedAt,omitempty"`
	Deleted   bool        `json:"deleted,omitempty"`
	ReplyTo   int64       `json:"replyTo,omitempty"`
	Reply     *replyQuote `json:"reply,omitempty"`
	Reactions []Reaction  `json:"reactions,omitempty"`

	Attachments []Attachment `json:"attachments,omitempty"`
}

// FormatJSONTime formats t as the API does; the zero time gives "".
func FormatJSONTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(proto.TimeFormat)
}

func (m StoredMessage) MarshalJSON() ([]byte, error) {
	return json.Marshal(MessageJSON{
		ChatMessage: proto.ChatMessage{ID: m.ID, Type: m.Type, RoomID: m.RoomID, Sender: m.Sender, Message: m.Message,
			CreatedAt: m.CreatedAt.UTC().Format(proto.TimeFormat)},
		EditedAt: FormatJSONTime(m.EditedAt),
		Deleted:  m.Deleted, ReplyTo: m.ReplyTo, Reply: m.Reply, Reactions: m.Reactions, Attachments: m.Attachments,
	})
}

func (m *StoredMessage) UnmarshalJSON(b []byte) error {
	var j MessageJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, j.CreatedAt)
	if err != nil {
		return err
	}
	var edited time.Time
	if j.EditedAt != "" {
		if edited, err = time.Parse(time.RFC3339Nano, j.EditedAt); err != nil {
			return err
		}
	}
	*m = StoredMessage{ID: j.ID, Type: j.Type, RoomID: j.RoomID, Sender: j.Sender, Message: j.Message, CreatedAt: t,
		EditedAt: edited, Deleted: j.Deleted, ReplyTo: j.ReplyTo, Reply: j.Reply, Reactions: j.Reactions, Attachments: j.Attachments}
	return nil
}

// JSON is the exact body published for m. It cannot fail: every field is a
// string, number or formatted time.
func (m StoredMessage) JSON() []byte {
	b, _ := m.MarshalJSON()
	return b
}

const sqlInsertMessage = `
INSERT INTO messages (room_id, user_id, sender, type, body, created_at, reply_to)
VALUES (?, nullif(?, 0), ?, ?, ?, ?, nullif(?, 0))`

// sqlInsertAsMember is the common chat send in one statement: the room
// check and the insert of postAccessTx plus insertMessageTx, which were two
// statement executions (the check alone was 17 % of the writer's CPU in a
// profile of the rooms load scenario). It inserts only what needs nothing
// else first: a sender who is a member of a room that is neither archived
// nor a DM (a DM's TALK also notifies the peer). Anything else inserts no
// row, and the caller takes the full path, which finds out why.
const sqlInsertAsMember = `
INSERT INTO messages (room_id, user_id, sender, type, body, created_at, reply_to)
SELECT r.id, m.user_id, ?3, ?4, ?5, ?6, nullif(?7, 0)
FROM rooms r JOIN memberships m ON m.room_id = r.id AND m.user_id = ?2
WHERE r.id = ?1 AND r.archived = 0 AND r.kind <> 'dm'`

// InsertAsMemberTx runs sqlInsertAsMember for m at now (Unix ms: an op's
// clock reading, not the store's clock, so that every node stores the same
// created_at). It reports whether m was stored (and then fills in m.ID and
// m.CreatedAt); false means m's sender and room need the full path.
func (s *Store) InsertAsMemberTx(ctx context.Context, tx *sql.Tx, m *StoredMessage, now int64) (bool, error) {
	if m.UserID == 0 {
		return false, nil
	}
	res, err := s.txStmt(ctx, tx, s.stmtInsertAsMember).ExecContext(ctx, m.RoomID, m.UserID, m.Sender, m.Type, m.Message, now, m.ReplyTo)
	if err != nil {
		return false, fmt.Errorf("insert message: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return false, err
	}
	return true, s.inserted(res, m, now)
}

// inserted fills in m.ID and m.CreatedAt from the INSERT that stored m at
// now, and notes the transaction's first message for indexMessagesTx and
// its count for the Stats.
func (s *Store) inserted(res sql.Result, m *StoredMessage, now int64) error {
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("insert message: %w", err)
	}
	m.ID, m.CreatedAt = id, FromMS(now)
	s.txMessages++
	if s.txFirstMessageID == 0 {
		s.txFirstMessageID = m.ID
	}
	return nil
}

// InsertMessageTx stores m at now (Unix ms; see insertAsMemberTx) and
// fills in m.ID and m.CreatedAt.
func (s *Store) InsertMessageTx(ctx context.Context, tx *sql.Tx, m *StoredMessage, now int64) error {
	res, err := s.txStmt(ctx, tx, s.insertMessage).ExecContext(ctx, m.RoomID, m.UserID, m.Sender, m.Type, m.Message, now, m.ReplyTo)
	if err != nil {
		return fmt.Errorf("insert message: %w", err)
	}
	return s.inserted(res, m, now)
}

// New TALK messages are indexed once per transaction, not by a trigger per
// row: FTS5 flushes its pending index to a new segment at every statement
// savepoint (xSavepoint), and a row trigger makes every INSERT a
// statement with a savepoint, so per-row indexing wrote one segment and
// ran merges per message, about a third of the writer's CPU. Ids of one
// transaction are consecutive and above every committed id (one writer,
// AUTOINCREMENT), so "id >= first" is exactly this transaction's rows.
const sqlIndexMessages = `
INSERT INTO messages_fts (rowid, body)
SELECT id, body FROM messages WHERE id >= ? AND type = 'TALK'`

// indexMessagesTx adds the running transaction's new messages to the FTS
// index, just before COMMIT, so index and messages commit together.
func (s *Store) indexMessagesTx(ctx context.Context, tx *sql.Tx) error {
	if s.txFirstMessageID == 0 {
		return nil
	}
	first := s.txFirstMessageID
	s.txFirstMessageID = 0
	if _, err := s.txStmt(ctx, tx, s.stmtIndex).ExecContext(ctx, first); err != nil {
		return fmt.Errorf("index messages: %w", err)
	}
	return nil
}

// messageColumns are the columns of a storedMessage; the queries that use
// them read FROM messageFrom, whose q is the message replied to.
const (
	messageColumns = `m.id, m.room_id, coalesce(m.user_id, 0), m.sender, m.type, m.body, m.created_at,
	coalesce(m.edited_at, 0), m.deleted_at IS NOT NULL, coalesce(m.reply_to, 0),
	coalesce(q.sender, ''), coalesce(substr(q.body, 1, ` + ReplyQuoteRunesSQL + `), ''), q.id IS NULL OR q.deleted_at IS NOT NULL`
	messageFrom = `messages m LEFT JOIN messages q ON q.id = m.reply_to`
)

// replyQuoteRunes is how much of the original a reply quotes: a line or
// two, enough to recognise it (the link leads to the whole message).
const (
	ReplyQuoteRunes    = 140
	ReplyQuoteRunesSQL = "140" // replyQuoteRunes in SQL text; TestReplyQuoteRunesSQL keeps them equal
)

// scanDest returns the Scan destinations of messageColumns for m, after
// extra (columns a query selects before them).
func (m *StoredMessage) scanDest(created, edited *int64, quote *replyQuote, extra ...any) []any {
	return append(extra, &m.ID, &m.RoomID, &m.UserID, &m.Sender, &m.Type, &m.Message, created,
		edited, &m.Deleted, &m.ReplyTo, &quote.Sender, &quote.Message, &quote.Deleted)
}

// scanned finishes a storedMessage after scanDest's row was scanned.
func (m *StoredMessage) scanned(created, edited int64, quote replyQuote) {
	m.CreatedAt = FromMS(created)
	if edited != 0 {
		m.EditedAt = FromMS(edited)
	}
	if m.ReplyTo != 0 {
		quote.ID = m.ReplyTo
		if quote.Deleted {
			quote.Sender, quote.Message = "", ""
		}
		m.Reply = &quote
	}
}

// scanMessageRows scans one row of messageColumns.
func scanMessageRows(r *sql.Rows) (StoredMessage, error) {
	var m StoredMessage
	var created, edited int64
	var quote replyQuote
	err := r.Scan(m.scanDest(&created, &edited, &quote)...)
	m.scanned(created, edited, quote)
	return m, err
}

// History queries. All walk the (room_id, id) index and stop at LIMIT, so a
// page costs the same in a room of a hundred rows or a million.
const (
	sqlMessagesNewest = `SELECT ` + messageColumns + ` FROM ` + messageFrom + ` WHERE m.room_id = ? ORDER BY m.id DESC LIMIT ?`
	sqlMessagesBefore = `SELECT ` + messageColumns + ` FROM ` + messageFrom + ` WHERE m.room_id = ? AND m.id < ? ORDER BY m.id DESC LIMIT ?`
	sqlMessagesAfter  = `SELECT ` + messageColumns + ` FROM ` + messageFrom + ` WHERE m.room_id = ? AND m.id > ? ORDER BY m.id LIMIT ?`
)

// MessagesPage returns up to limit messages of a room in ascending id
// order: the newest ones if before and after are 0, those just below
// before if before > 0, else those just above after.
func (s *Store) MessagesPage(ctx context.Context, roomID, before, after int64, limit int) ([]StoredMessage, error) {
	if after > 0 {
		return s.MessagesAfter(ctx, roomID, after, limit)
	}
	var (
		ms  []StoredMessage
		err error
	)
	if before > 0 {
		ms, err = queryPage(ctx, s.Rdb, scanMessageRows, sqlMessagesBefore, roomID, before, limit)
	} else {
		ms, err = queryPage(ctx, s.Rdb, scanMessageRows, sqlMessagesNewest, roomID, limit)
	}
	if err == nil {
		err = s.withAttachments(ctx, ms)
	}
	if err != nil {
		return nil, fmt.Errorf("messages of room %d: %w", roomID, err)
	}
	slices.Reverse(ms)
	return ms, s.addReactions(ctx, ms)
}

// MessagesAfter returns up to limit messages of a room with id > after, in
// ascending order; after = 0 starts from the oldest.
func (s *Store) MessagesAfter(ctx context.Context, roomID, after int64, limit int) ([]StoredMessage, error) {
	ms, err := queryPage(ctx, s.Rdb, scanMessageRows, sqlMessagesAfter, roomID, after, limit)
	if err == nil {
		err = s.withAttachments(ctx, ms)
	}
	if err != nil {
		return nil, fmt.Errorf("messages of room %d: %w", roomID, err)
	}
	return ms, s.addReactions(ctx, ms)
}

// FTS5 orders by rowid natively, so "ORDER BY f.rowid DESC LIMIT n" stops
// after n readable matches instead of sorting every hit.
const sqlSearch = `
SELECT ` + messageColumns + `
FROM messages_fts f
JOIN messages m ON m.id = f.rowid
LEFT JOIN messages q ON q.id = m.reply_to
JOIN rooms r ON r.id = m.room_id
WHERE messages_fts MATCH ?1
	AND (r.kind = 'public' OR EXISTS (
		SELECT 1 FROM memberships x WHERE x.room_id = r.id AND x.user_id = ?2))
ORDER BY f.rowid DESC
LIMIT ?3`

// SearchMessages runs an FTS5 query over the rooms userID may read, newest first.
func (s *Store) SearchMessages(ctx context.Context, userID int64, match string, limit int) ([]StoredMessage, error) {
	ms, err := queryPage(ctx, s.Rdb, scanMessageRows, sqlSearch, match, userID, limit)
	if err == nil {
		err = s.withAttachments(ctx, ms)
	}
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	return ms, nil
}

// maxSearchTerms bounds the words of one search; more add cost, not precision.
const maxSearchTerms = 8

// FtsQuery turns what a user typed into an FTS5 query: every word becomes a
// quoted prefix term ("word"*), all of them required. Quoting means no
// user input is parsed as FTS5 syntax (AND, NEAR, column filters); the
// prefix lets a Korean stem match its inflected forms ("서울" finds
// "서울에서"), which the unicode61 tokenizer would otherwise miss.
func FtsQuery(q string) (string, bool) {
	words := strings.Fields(q)
	if len(words) == 0 {
		return "", false
	}
	if len(words) > maxSearchTerms {
		words = words[:maxSearchTerms]
	}
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		b.WriteString(strings.ReplaceAll(w, `"`, `""`))
		b.WriteString(`"*`)
	}
	return b.String(), true
}

// purgeChunk is how many messages one retention transaction deletes, so the
// writer never holds the lock long enough for chat sends to notice.
const purgeChunk = 5000

// Ids grow with time, so scanning in id order finds the old rows first and
// LIMIT stops the scan early; no index on created_at is needed (one less
// b-tree to update per message).
const sqlPurge = `DELETE FROM messages WHERE id IN (
	SELECT id FROM messages WHERE created_at < ? ORDER BY id LIMIT ?)`

// PurgeBefore deletes messages created before cutoff, in chunks, and
// returns how many went. FTS rows and notifications follow by trigger and
// foreign key.
func (s *Store) PurgeBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		op := &purgeOp{Before: cutoff.UnixMilli(), Limit: purgeChunk}
		if err := s.Run(ctx, op); err != nil {
			return total, fmt.Errorf("purge: %w", err)
		}
		total += op.n
		if op.n < purgeChunk {
			return total, nil
		}
	}
}

// purgeOp deletes one chunk of messages older than Before (purgeBefore).
// The cutoff and the chunk size are inputs, not the applying node's clock
// and constant, so every node deletes the same rows.
type purgeOp struct {
	Before int64 `json:"before"` // Unix ms
	Limit  int   `json:"limit"`
	n      int64 // messages deleted
}

func (*purgeOp) OpKind() string { return "messages-purge" }

func (o *purgeOp) Apply(e *Tx) (err error) {
	tx := e.tx
	o.n = 0
	blobs, err := purgeBlobsTx(e, o.Before, o.Limit)
	if err != nil {
		return err
	}
	e.st.scrubbed(blobs...)
	res, err := tx.ExecContext(e.ctx, sqlPurge, o.Before, o.Limit)
	if err != nil {
		return err
	}
	o.n, err = res.RowsAffected()
	return err
}

// sqlPurgeBlobs names the blobs of the files of the messages sqlPurge is
// about to delete (the rows go by ON DELETE CASCADE).
const sqlPurgeBlobs = `SELECT sha256, thumb_sha256 FROM files WHERE message_id IN (
	SELECT id FROM messages WHERE created_at < ? ORDER BY id LIMIT ?)`

// purgeBlobsTx returns the blobs of the files of the messages a purge
// chunk deletes, for the file service to remove on every node.
func purgeBlobsTx(e *Tx, before int64, limit int) ([]string, error) {
	rows, err := e.tx.QueryContext(e.ctx, sqlPurgeBlobs, before, limit)
	if err != nil {
		return nil, fmt.Errorf("purge files: %w", err)
	}
	defer rows.Close()
	var blobs []string
	for rows.Next() {
		var sum, thumb string
		if err := rows.Scan(&sum, &thumb); err != nil {
			return nil, fmt.Errorf("purge files: %w", err)
		}
		blobs = append(blobs, sum, thumb)
	}
	return blobs, rows.Err()
}

// Notifications.

// Notification reasons, as in notifications.reason.
const (
	ReasonMention = "mention"
	ReasonDM      = "dm"
)

// Notification is a mention or DM kept for a user who was offline. It is
// what notify and webhooks carry:
//
//	{"id":7,"reason":"mention","createdAt":"…","message":{…storedMessage…}}
type Notification struct {
	ID        int64         `json:"id"`
	Reason    string        `json:"reason"`
	CreatedAt time.Time     `json:"createdAt"`
	Message   StoredMessage `json:"message"`
}

// notifyPeer is a user a message may notify: the other member of a DM,
// or someone @mentioned.
type notifyPeer struct {
	UserID   int64
	Username string
	Webhook  string // "" if none
}

const sqlMentionTarget = `
SELECT u.id, u.username, u.webhook_url, (r.kind = 'public' OR m.user_id IS NOT NULL)
FROM users u
JOIN rooms r ON r.id = ?2
LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = u.id
WHERE u.username_key = ?1 AND u.is_guest = 0`

// MentionTarget looks up the account called name (case-insensitively) for
// a mention in roomID. ok is false when there is no such (non-guest)
// account or room, or when the account cannot read the room: a mention
// must not leak a private room's text.
func (s *Store) MentionTarget(ctx context.Context, name string, roomID int64) (p notifyPeer, ok bool, err error) {
	var canRead bool
	err = s.Rdb.QueryRowContext(ctx, sqlMentionTarget, UsernameKey(name), roomID).Scan(&p.UserID, &p.Username, &p.Webhook, &canRead)
	if errors.Is(err, sql.ErrNoRows) {
		return notifyPeer{}, false, nil
	}
	if err != nil {
		return notifyPeer{}, false, fmt.Errorf("mention %s: %w", name, err)
	}
	return p, canRead, nil
}

const sqlDMPeer = `
SELECT u.id, u.username, u.webhook_url
FROM memberships m JOIN users u ON u.id = m.user_id
WHERE m.room_id = ? AND m.user_id <> ?`

// dmPeersTx returns the other members of a room as notify peers; a post
// calls it for a DM room inside its write transaction, on the writer
// goroutine.
func dmPeersTx(ctx context.Context, tx *sql.Tx, roomID, senderID int64) ([]notifyPeer, error) {
	rows, err := tx.QueryContext(ctx, sqlDMPeer, roomID, senderID)
	if err != nil {
		return nil, fmt.Errorf("dm peer: %w", err)
	}
	defer rows.Close()
	var out []notifyPeer
	for rows.Next() {
		var p notifyPeer
		if err := rows.Scan(&p.UserID, &p.Username, &p.Webhook); err != nil {
			return nil, fmt.Errorf("dm peer: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dm peer: %w", err)
	}
	return out, nil
}

const sqlDMPeerNames = `
SELECT u.username
FROM rooms r JOIN memberships m ON m.room_id = r.id JOIN users u ON u.id = m.user_id
WHERE r.id = ? AND r.kind = 'dm' AND m.user_id <> ?`

// DmPeerNames returns the usernames of the other members of roomID if it
// is a DM room, and none otherwise. It reads the read pool before a post
// is submitted to the cluster log, so that the submitting node can tell
// every node whether the peer is online here (the post op carries it).
func (s *Store) DmPeerNames(ctx context.Context, roomID, senderID int64) ([]string, error) {
	names, err := queryPage(ctx, s.Rdb, func(r *sql.Rows) (string, error) {
		var n string
		return n, r.Scan(&n)
	}, sqlDMPeerNames, roomID, senderID)
	if err != nil {
		return nil, fmt.Errorf("dm peers: %w", err)
	}
	return names, nil
}

// sqlPostedAt finds a post by what its log entry holds: room, author,
// text and the log's time for it. Two posts of the same text by the same
// author in the same millisecond are one resend's original either way.
const sqlPostedAt = `SELECT id FROM messages WHERE room_id = ? AND user_id IS ? AND type = ? AND body = ? AND created_at = ? ORDER BY id LIMIT 1`

// PostedAt returns the id of the first message of type typ with body
// that userID (0: none) posted to roomID at Unix ms at, and false if
// there is none (refused, or deleted since).
func (s *Store) PostedAt(ctx context.Context, roomID, userID int64, typ, body string, at int64) (int64, bool, error) {
	var uid any
	if userID != 0 {
		uid = userID
	}
	var id int64
	err := s.Rdb.QueryRowContext(ctx, sqlPostedAt, roomID, uid, typ, body, at).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return id, true, nil
}

const sqlInsertNotification = `INSERT INTO notifications (user_id, message_id, reason, created_at) VALUES (?, ?, ?, ?) RETURNING id`

func insertNotificationTx(ctx context.Context, tx *sql.Tx, userID, messageID int64, reason string, now int64) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, sqlInsertNotification, userID, messageID, reason, now).Scan(&id)
	return id, err
}

const sqlPendingNotifications = `
SELECT n.id, n.reason, n.created_at, ` + messageColumns + `
FROM notifications n JOIN messages m ON m.id = n.message_id
LEFT JOIN messages q ON q.id = m.reply_to
WHERE n.user_id = ? AND n.delivered_at IS NULL
ORDER BY n.id LIMIT ?`

func (s *Store) PendingNotifications(ctx context.Context, userID int64, limit int) ([]Notification, error) {
	ns, err := queryPage(ctx, s.Rdb, func(r *sql.Rows) (Notification, error) {
		var n Notification
		var created, mcreated, medited int64
		var quote replyQuote
		err := r.Scan(n.Message.scanDest(&mcreated, &medited, &quote, &n.ID, &n.Reason, &created)...)
		n.CreatedAt = FromMS(created)
		n.Message.scanned(mcreated, medited, quote)
		return n, err
	}, sqlPendingNotifications, userID, limit)
	if err == nil && len(ns) > 0 {
		ms := make([]StoredMessage, len(ns))
		for i := range ns {
			ms[i] = ns[i].Message
		}
		if err = s.withAttachments(ctx, ms); err == nil {
			for i := range ns {
				ns[i].Message = ms[i]
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("pending notifications: %w", err)
	}
	return ns, nil
}

const sqlMarkDelivered = `
UPDATE notifications SET delivered_at = ?
WHERE user_id = ? AND id <= ? AND delivered_at IS NULL`

// MarkDelivered marks userID's notifications up to and including upTo as delivered.
func (s *Store) MarkDelivered(ctx context.Context, userID, upTo int64) error {
	if err := s.Run(ctx, &deliveredOp{UserID: userID, UpTo: upTo}); err != nil {
		return fmt.Errorf("mark delivered: %w", err)
	}
	return nil
}

// deliveredOp marks a user's notifications up to UpTo as delivered, at
// the op's clock reading (markDelivered).
type deliveredOp struct {
	UserID int64 `json:"user"`
	UpTo   int64 `json:"upTo"`
}

func (*deliveredOp) OpKind() string { return "notifications-delivered" }

func (o *deliveredOp) Apply(e *Tx) error {
	tx := e.tx
	_, err := tx.ExecContext(e.ctx, sqlMarkDelivered, e.At, o.UserID, o.UpTo)
	return err
}
