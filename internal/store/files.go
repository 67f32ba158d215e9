package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"stompbox/internal/apperr"
	"stompbox/internal/proto"
	"strconv"
	"strings"
	"time"
)

// File errors the store returns, all public.
var (
	ErrUnknownFile   = apperr.New(apperr.ErrNotFound, "unknown file")
	ErrBadAttachment = apperr.New(apperr.ErrBadRequest, "unknown attachment: upload the file to this room first, and send it once")
)

// StoredFile is one row of the files table: an upload of some bytes
// (named by their SHA-256) into a room.
type StoredFile struct {
	ID          int64
	RoomID      int64
	UserID      int64
	MessageID   int64 // 0 until a message attaches it
	Name        string
	Size        int64
	Type        string // sniffed MIME type, without parameters
	SHA256      string // hex; the blob's name
	Width       int
	Height      int
	ThumbSHA256 string // "" without a thumbnail
	ThumbType   string
	CreatedAt   time.Time
}

// Attachment is a file as a message carries it, over STOMP and HTTP:
//
//	{"id":7,"name":"a.png","size":1234,"type":"image/png","width":800,"height":600,
//	 "url":"/api/files/7","thumbUrl":"/api/files/7/thumb"}
//
// width and height are 0 (and omitted) for other files; thumbUrl is
// omitted when there is no thumbnail, and the file is then shown as a card.
type Attachment struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	Type     string `json:"type"`
	Width    int    `json:"width,omitempty"`
	Height   int    `json:"height,omitempty"`
	URL      string `json:"url"`
	ThumbURL string `json:"thumbUrl,omitempty"`
}

// filesURLPrefix is where files are downloaded: /api/files/{id} and
// /api/files/{id}/thumb.
const filesURLPrefix = "/api/files/"

// Attachment is f as a message carries it.
func (f StoredFile) Attachment() Attachment {
	a := Attachment{ID: f.ID, Name: f.Name, Size: f.Size, Type: f.Type, Width: f.Width, Height: f.Height,
		URL: filesURLPrefix + strconv.FormatInt(f.ID, 10)}
	if f.ThumbSHA256 != "" {
		a.ThumbURL = a.URL + "/thumb"
	}
	return a
}

const fileColumns = `f.id, f.room_id, coalesce(f.user_id, 0), coalesce(f.message_id, 0), f.name, f.size, f.type, f.sha256,
	f.width, f.height, f.thumb_sha256, f.thumb_type, f.created_at`

func scanFileRows(r *sql.Rows) (StoredFile, error) {
	var f StoredFile
	var created int64
	err := r.Scan(&f.ID, &f.RoomID, &f.UserID, &f.MessageID, &f.Name, &f.Size, &f.Type, &f.SHA256,
		&f.Width, &f.Height, &f.ThumbSHA256, &f.ThumbType, &created)
	f.CreatedAt = FromMS(created)
	return f, err
}

// sqlInsertFile stores an upload if the uploader stays within quota
// (?9, bytes; 0 means no quota): the check and the insert are one
// statement on the one writer, so concurrent uploads cannot both squeeze
// past the limit.
//
// ?13 is the uploads' total cap (bytes; 0: none, -files-max-total),
// checked the same way.
const sqlInsertFile = `
INSERT INTO files (room_id, user_id, name, size, type, sha256, width, height, thumb_sha256, thumb_type, created_at)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?10, ?11, ?12
WHERE (?9 = 0 OR (SELECT coalesce(sum(size), 0) FROM files WHERE user_id = ?2) + ?4 <= ?9)
	AND (?13 = 0 OR (SELECT coalesce(sum(size), 0) FROM files) + ?4 <= ?13)
RETURNING id`

// InsertFile stores f (its blob is already in place) and fills in f.ID
// and f.CreatedAt. ok is false when the uploader's quota (bytes, 0: none)
// would be exceeded; nothing is stored then.
func (s *Store) InsertFile(ctx context.Context, f *StoredFile, quota int64) (ok bool, err error) {
	return s.InsertFileCapped(ctx, f, quota, 0)
}

// InsertFileCapped is InsertFile that also keeps all uploads together
// within maxTotal bytes (0: no cap); ok is false when either limit would
// be exceeded.
func (s *Store) InsertFileCapped(ctx context.Context, f *StoredFile, quota, maxTotal int64) (ok bool, err error) {
	op := &fileInsertOp{RoomID: f.RoomID, UserID: f.UserID, Name: f.Name, Size: f.Size, Type: f.Type,
		SHA256: f.SHA256, Width: f.Width, Height: f.Height, ThumbSHA256: f.ThumbSHA256, ThumbType: f.ThumbType,
		Quota: quota, MaxTotal: maxTotal}
	if err := s.Run(ctx, op); err != nil {
		return false, fmt.Errorf("insert file: %w", err)
	}
	if op.ok {
		f.ID = op.id
		f.CreatedAt = FromMS(op.createdAt)
	}
	return op.ok, nil
}

// fileInsertOp stores an upload's row if the uploader stays within Quota
// (insertFile). The blob itself is not in the op: it is already in this
// node's file store, named by its SHA-256.
type fileInsertOp struct {
	RoomID      int64  `json:"room"`
	UserID      int64  `json:"user"`
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	Type        string `json:"type"`
	SHA256      string `json:"sha256"`
	Width       int    `json:"w"`
	Height      int    `json:"h"`
	ThumbSHA256 string `json:"thumb"`
	ThumbType   string `json:"thumbType"`
	Quota       int64  `json:"quota"`              // bytes; 0: none. The submitting node's setting, so all nodes judge alike
	MaxTotal    int64  `json:"maxTotal,omitempty"` // all uploads' cap, bytes; 0 (and entries from before it): none
	id          int64  // the new row's id
	createdAt   int64  // its created_at, Unix ms
	ok          bool   // false: over quota, nothing stored
}

func (*fileInsertOp) OpKind() string { return "file-insert" }

func (o *fileInsertOp) Apply(e *Tx) error {
	tx := e.tx
	o.id, o.createdAt, o.ok = 0, 0, false
	err := tx.QueryRowContext(e.ctx, sqlInsertFile, o.RoomID, o.UserID, o.Name, o.Size, o.Type, o.SHA256,
		o.Width, o.Height, o.Quota, o.ThumbSHA256, o.ThumbType, e.At, o.MaxTotal).Scan(&o.id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	o.createdAt, o.ok = e.At, true
	return nil
}

const sqlFileByID = `SELECT ` + fileColumns + ` FROM files f WHERE f.id = ?`

// FileByID returns a file row, or errUnknownFile.
func (s *Store) FileByID(ctx context.Context, id int64) (StoredFile, error) {
	fs, err := queryPage(ctx, s.Rdb, scanFileRows, sqlFileByID, id)
	if err != nil {
		return StoredFile{}, fmt.Errorf("file %d: %w", id, err)
	}
	if len(fs) == 0 {
		return StoredFile{}, ErrUnknownFile
	}
	return fs[0], nil
}

const (
	sqlUploadedBytes = `SELECT coalesce(sum(size), 0) FROM files WHERE user_id = ?`
	sqlTotalBytes    = `SELECT coalesce(sum(size), 0) FROM files`
)

// TotalUploadedBytes is how much all uploads take against the total cap.
func (s *Store) TotalUploadedBytes(ctx context.Context) (int64, error) {
	var n int64
	if err := s.Rdb.QueryRowContext(ctx, sqlTotalBytes).Scan(&n); err != nil {
		return 0, fmt.Errorf("total uploaded bytes: %w", err)
	}
	return n, nil
}

// UploadedBytes is how much a user's uploads take against their quota.
func (s *Store) UploadedBytes(ctx context.Context, userID int64) (int64, error) {
	var n int64
	if err := s.Rdb.QueryRowContext(ctx, sqlUploadedBytes, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("uploaded bytes: %w", err)
	}
	return n, nil
}

// idList renders ids as a SQL list of integer literals. The ids are
// int64s, so nothing a client sent can reach the SQL text; a list keeps a
// page's lookups to one statement.
func idList(ids []int64) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	return b.String()
}

// checkAttachableTx checks, inside the sender's write transaction and
// before m is stored, that every id in ids is an upload of m's sender into
// m's room that no message carries yet; otherwise it returns
// errBadAttachment and the message is refused.
func checkAttachableTx(ctx context.Context, tx *sql.Tx, m *StoredMessage, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM files WHERE id IN (`+idList(ids)+`)
		AND room_id = ? AND user_id = ? AND message_id IS NULL`, m.RoomID, m.UserID).Scan(&n)
	if err != nil {
		return fmt.Errorf("check attachments: %w", err)
	}
	if n != len(ids) {
		return ErrBadAttachment
	}
	return nil
}

// attachFilesTx records that the stored message m carries the files ids
// (checked by checkAttachableTx in the same transaction) and puts them on
// m, in upload (id) order, as history shows them.
func attachFilesTx(ctx context.Context, tx *sql.Tx, m *StoredMessage, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE files SET message_id = ? WHERE id IN (`+idList(ids)+`)`, m.ID); err != nil {
		return fmt.Errorf("attach files: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+fileColumns+` FROM files f WHERE f.message_id = ? ORDER BY f.id`, m.ID)
	if err != nil {
		return fmt.Errorf("attach files: %w", err)
	}
	defer rows.Close()
	m.Attachments = make([]Attachment, 0, len(ids))
	for rows.Next() {
		f, err := scanFileRows(rows)
		if err != nil {
			return fmt.Errorf("attach files: %w", err)
		}
		m.Attachments = append(m.Attachments, f.Attachment())
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("attach files: %w", err)
	}
	return nil
}

// withAttachments fills in the attachments of a page of messages read
// from the store, with one query for the whole page.
func (s *Store) withAttachments(ctx context.Context, ms []StoredMessage) error {
	if len(ms) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(ms))
	for _, m := range ms {
		if m.Type == proto.MsgTalk {
			ids = append(ids, m.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	fs, err := queryPage(ctx, s.Rdb, scanFileRows, `SELECT `+fileColumns+` FROM files f WHERE f.message_id IN (`+idList(ids)+`) ORDER BY f.id`)
	if err != nil {
		return fmt.Errorf("attachments: %w", err)
	}
	if len(fs) == 0 {
		return nil
	}
	byMsg := make(map[int64][]Attachment, len(fs))
	for _, f := range fs {
		byMsg[f.MessageID] = append(byMsg[f.MessageID], f.Attachment())
	}
	for i := range ms {
		ms[i].Attachments = byMsg[ms[i].ID]
	}
	return nil
}

// sqlDeleteAbandoned deletes uploads that were never sent before cutoff.
const sqlDeleteAbandoned = `DELETE FROM files WHERE message_id IS NULL AND created_at < ? RETURNING sha256, thumb_sha256`

// DeleteAbandonedFiles removes rows of uploads never attached to a message
// and older than cutoff, and reports how many went.
func (s *Store) DeleteAbandonedFiles(ctx context.Context, cutoff time.Time) (int64, error) {
	op := &abandonedFilesDeleteOp{Before: cutoff.UnixMilli()}
	if err := s.Run(ctx, op); err != nil {
		return 0, fmt.Errorf("delete abandoned files: %w", err)
	}
	return op.n, nil
}

// abandonedFilesDeleteOp deletes the rows of uploads never sent and
// created before Before (deleteAbandonedFiles). The blobs are each
// node's own business: its sweep removes those no row names any more.
type abandonedFilesDeleteOp struct {
	Before int64 `json:"before"` // Unix ms, from the submitting node's clock
	n      int64 // rows deleted
}

func (*abandonedFilesDeleteOp) OpKind() string { return "files-delete-abandoned" }

func (o *abandonedFilesDeleteOp) Apply(e *Tx) (err error) {
	tx := e.tx
	o.n = 0
	rows, err := tx.QueryContext(e.ctx, sqlDeleteAbandoned, o.Before)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var sum, thumb string
		if err := rows.Scan(&sum, &thumb); err != nil {
			return err
		}
		o.n++
		e.st.scrubbed(sum, thumb)
	}
	return rows.Err()
}

const sqlBlobReferenced = `SELECT EXISTS (SELECT 1 FROM files WHERE sha256 = ?1) OR EXISTS (SELECT 1 FROM files WHERE thumb_sha256 = ?1)`

// BlobReferenced reports whether any file row names the blob sum (as its
// content or its thumbnail).
func (s *Store) BlobReferenced(ctx context.Context, sum string) (bool, error) {
	var ok bool
	if err := s.Rdb.QueryRowContext(ctx, sqlBlobReferenced, sum).Scan(&ok); err != nil {
		return false, fmt.Errorf("blob referenced: %w", err)
	}
	return ok, nil
}

const sqlDeleteUnsentFile = `DELETE FROM files WHERE id = ? AND user_id = ? AND message_id IS NULL RETURNING sha256, thumb_sha256`

// DeleteUnsentFile deletes an upload of userID that no message carries and
// returns its blobs' names, or errUnknownFile.
func (s *Store) DeleteUnsentFile(ctx context.Context, id, userID int64) (sum, thumb string, err error) {
	op := &unsentFileDeleteOp{FileID: id, UserID: userID}
	if err := s.Run(ctx, op); err != nil {
		return "", "", fmt.Errorf("delete file %d: %w", id, err)
	}
	if !op.found {
		return "", "", ErrUnknownFile
	}
	return op.sum, op.thumb, nil
}

// unsentFileDeleteOp deletes an upload of UserID that no message carries
// (deleteUnsentFile). A missing file is a result, not an error, so that it
// does not make the rest of its commit group roll back and retry.
type unsentFileDeleteOp struct {
	FileID int64  `json:"file"`
	UserID int64  `json:"user"`
	found  bool   // the row existed, was the user's and unsent
	sum    string // its blob
	thumb  string // its thumbnail's blob, "" if none
}

func (*unsentFileDeleteOp) OpKind() string { return "file-delete-unsent" }

func (o *unsentFileDeleteOp) Apply(e *Tx) error {
	tx := e.tx
	o.found, o.sum, o.thumb = false, "", ""
	err := tx.QueryRowContext(e.ctx, sqlDeleteUnsentFile, o.FileID, o.UserID).Scan(&o.sum, &o.thumb)
	if errors.Is(err, sql.ErrNoRows) {
		o.sum, o.thumb = "", ""
		return nil
	}
	if err != nil {
		return err
	}
	o.found = true
	e.st.scrubbed(o.sum, o.thumb)
	return nil
}

const sqlKnownThumbnail = `SELECT width, height, thumb_sha256, thumb_type FROM files WHERE sha256 = ? AND user_id = ? AND thumb_sha256 <> '' LIMIT 1`

// KnownThumbnail returns the size and thumbnail of an earlier upload of
// the same bytes by the same user, so that uploading a picture again does
// not decode it again; ok is false when there is none. Only the user's own
// uploads count: reusing someone else's would make the upload measurably
// faster, telling the uploader that someone, in some room, has the
// picture (issue 22).
func (s *Store) KnownThumbnail(ctx context.Context, sum string, userID int64) (f StoredFile, ok bool, err error) {
	err = s.Rdb.QueryRowContext(ctx, sqlKnownThumbnail, sum, userID).Scan(&f.Width, &f.Height, &f.ThumbSHA256, &f.ThumbType)
	if err == sql.ErrNoRows {
		return f, false, nil
	}
	if err != nil {
		return f, false, fmt.Errorf("known thumbnail: %w", err)
	}
	return f, true, nil
}

const sqlBlobSums = `SELECT sha256 FROM files UNION SELECT thumb_sha256 FROM files WHERE thumb_sha256 <> ''`

// BackupBlobSums opens the database copy at path (a Backup) read-only and
// returns the SHA-256 of every blob it names, files and thumbnails.
func BackupBlobSums(ctx context.Context, path string) ([]string, error) {
	db, err := sql.Open("sqlite", storeDSN(path, defaultSynchronous, roleReader))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return queryPage(ctx, db, func(r *sql.Rows) (string, error) {
		var s string
		return s, r.Scan(&s)
	}, sqlBlobSums)
}
