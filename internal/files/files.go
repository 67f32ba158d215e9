package files

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"stompbox/internal/apperr"
	"stompbox/internal/store"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// File limits and defaults (issue 17).
const (
	// DefaultMaxUploadMiB is the default of -max-upload: a phone video
	// clip or a scanned document fits; a disk image does not.
	DefaultMaxUploadMiB = 50

	// DefaultUploadQuotaMiB is the default of -upload-quota, what one
	// account may keep uploaded: 1 GiB is a year of daily screenshots and
	// documents, and twenty such accounts still leave room on a 32 GB SD
	// card for the system and the database.
	DefaultUploadQuotaMiB = 1024

	// FilesDirName is the folder of the data folder that holds the blobs.
	FilesDirName = "files"

	// FilesTmpDirName holds uploads while they arrive, inside filesDirName
	// so the final rename stays on one file system (atomic).
	FilesTmpDirName = "tmp"

	// maxFileNameBytes bounds a stored file name: 255 is what most file
	// systems allow, so a download can be saved under its own name.
	maxFileNameBytes = 255

	// AbandonedUploadAge is how long an upload may wait to be sent with a
	// message before the sweep deletes it: a day covers a draft left open
	// overnight.
	AbandonedUploadAge = 24 * time.Hour
)

// File errors, all public.
var (
	errEmptyUpload      = apperr.New(apperr.ErrBadRequest, "empty upload")
	ErrUploadIncomplete = apperr.New(apperr.ErrBadRequest, "upload incomplete: the body ended before the file did")
	ErrNotMultipart     = apperr.New(apperr.ErrBadRequest, `expected multipart/form-data with a "file" part`)
)

// UploadTooLargeError is an upload over -max-upload, with the limit in
// its text ("file too large: at most 50 MiB"); HTTP 413.
type UploadTooLargeError struct{ MaxMiB int64 }

func (e UploadTooLargeError) Error() string { return e.Unwrap().Error() }
func (e UploadTooLargeError) Unwrap() error {
	return apperr.New(apperr.ErrTooLarge, fmt.Sprintf("file too large: at most %d MiB", e.MaxMiB))
}

// uploadQuotaError is an upload that would take its account over
// -upload-quota; HTTP 413 like any upload too large, with its own text.
type uploadQuotaError struct{ quotaMiB int64 }

func (e uploadQuotaError) Error() string { return e.Unwrap().Error() }
func (e uploadQuotaError) Unwrap() error {
	return apperr.New(apperr.ErrTooLarge, fmt.Sprintf("upload quota exceeded: each account may keep %d MiB of files", e.quotaMiB))
}

// Service stores uploaded files in the data folder and hands them out
// to those who may read them. Blobs are named by the SHA-256 of their
// bytes (files/ab/abcdef…), so the same content is stored once; a blob is
// written once and never changed, and removed by sweep when no row of the
// files table names it. In a cluster, replica holds every blob as well
// (replica.go). Safe for concurrent use.
type Service struct {
	st       *store.Store
	rooms    RoomAccess
	Dir      string // <data>/files
	Tmp      string // <data>/files/tmp: uploads in flight
	MaxBytes int64  // -max-upload
	quota    int64  // -upload-quota in bytes; 0: none
	log      *slog.Logger

	// replica keeps the blobs on other nodes too; nil on a single node.
	// Uploads put into it before they are recorded, downloads fetch from
	// it what this disk lacks, removals delete from it.
	replica   Replica
	transfers flightGroup // replica puts and fetches in progress, one per blob

	// blobMu is held while a blob is put in place and its row inserted,
	// and while sweep decides a blob is unreferenced and removes it, so a
	// sweep never removes a blob an upload is about to name.
	blobMu sync.Mutex
	pinned map[string]int // blobs an upload is putting into the replica, with blobMu released: no removal takes them; guarded by blobMu

	// thumbs hands out the turns to make thumbnails (thumbqueue.go).
	thumbs *thumbQueue

	// floors are the disk floors and the uploads' total cap (floors.go).
	floors *floors

	// releasedMu guards releasedQ, releasing, releaseClosed and
	// releaseStop: blobs the store released (deletions, on every node),
	// waiting for removal (released.go). Close sets releaseClosed (queue
	// no more) and releaseStop (stop after the blob in progress);
	// releaseWG counts the draining goroutine.
	releasedMu    sync.Mutex
	releasedQ     []string
	releasing     bool // a goroutine is draining releasedQ
	releaseClosed bool
	releaseStop   bool
	releaseWG     sync.WaitGroup

	stats counters // for Stats (stats.go)
}

// RoomAccess is what the file service asks of the chat rules (chat.go)
// about a room: whether u may upload to it (CanPost) and download from
// it (CanRead), nil or why not.
type RoomAccess interface {
	CanPost(ctx context.Context, u store.User, roomID int64) error
	CanRead(ctx context.Context, u store.User, roomID int64) error
}

// Options configures newFileService.
type Options struct {
	DataDir   string
	MaxUpload int64 // bytes; 0 means defaultMaxUploadMiB
	Quota     int64 // bytes; 0 means no quota
	Log       *slog.Logger
	Replica   Replica // the cluster's copy of the blobs; nil on a single node

	// Disk floors (floors.go).
	MinFree         int64  // -min-free, bytes: uploads refused below it, posts below a quarter of it; 0: no floors
	MaxTotal        int64  // -files-max-total in bytes; 0: none (unless MaxTotalPercent)
	MaxTotalPercent int    // -files-max-total as a share of the file system; 0: MaxTotal
	StatFS          StatFS // nil: ask the kernel; tests fake it
}

// New prepares <data>/files and removes what uploads cut short
// by a crash left in its tmp folder. rooms decides who may upload to and
// download from a room.
func New(st *store.Store, rooms RoomAccess, opts Options) (*Service, error) {
	s := &Service{
		st: st, rooms: rooms,
		Dir:      filepath.Join(opts.DataDir, FilesDirName),
		MaxBytes: opts.MaxUpload,
		quota:    opts.Quota,
		log:      opts.Log,
		replica:  opts.Replica,
		pinned:   make(map[string]int),
		thumbs:   newThumbQueue(),
	}
	s.Tmp = filepath.Join(s.Dir, FilesTmpDirName)
	if s.MaxBytes <= 0 {
		s.MaxBytes = DefaultMaxUploadMiB << 20
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := os.RemoveAll(s.Tmp); err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	if err := os.MkdirAll(s.Tmp, 0o700); err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	if err := os.Chmod(s.Dir, 0o700); err != nil { // one made before with another mode (issue 22)
		return nil, fmt.Errorf("files: %w", err)
	}
	var err error
	if s.floors, err = newFloors(opts.DataDir, opts); err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	st.SetSpaceCheck(s.floors.checkOp)
	st.OnBlobsReleased(s.released)
	return s, nil
}

// BlobPath is where the blob with hex SHA-256 sum lives. sum is always
// our own hash, never client input.
func (s *Service) BlobPath(sum string) string {
	return filepath.Join(s.Dir, sum[:2], sum)
}

// sanitizeFileName makes a client's file name safe to store and show: the
// last path element (either slash), no control or format characters, valid
// UTF-8, no leading dots or spaces, at most maxFileNameBytes. It is only
// ever shown and put in Content-Disposition; blobs are named by hash.
func sanitizeFileName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.ToValidUTF8(name, "")
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, name)
	name = strings.TrimLeft(strings.TrimSpace(name), ".")
	for len(name) > maxFileNameBytes {
		_, n := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-n]
	}
	if name = strings.TrimSpace(name); name == "" {
		return "file"
	}
	return name
}

// Upload stores a file u sends to a room: it checks that u may post there
// and has quota left before reading anything, streams src to a temporary
// file while hashing it (never holding it in memory), sniffs its type,
// makes a thumbnail of a picture, puts the blob in place (or finds it
// there already) and records the upload. The file is on disk (fsynced)
// and committed when Upload returns, and in the replica if there is one
// (errFileNotStored if the replica fails). On any error, nothing is left
// behind.
func (s *Service) Upload(ctx context.Context, u store.User, roomID int64, name string, src io.Reader) (f store.StoredFile, err error) {
	defer func() { s.stats.countUpload(f.Size, err) }()
	if err := s.rooms.CanPost(ctx, u, roomID); err != nil {
		return store.StoredFile{}, err
	}
	if s.quota > 0 {
		used, err := s.st.UploadedBytes(ctx, u.ID)
		if err != nil {
			return store.StoredFile{}, err
		}
		if used >= s.quota {
			return store.StoredFile{}, uploadQuotaError{s.quota >> 20}
		}
	}
	if err := s.checkSpace(ctx, 0); err != nil {
		return store.StoredFile{}, err
	}
	tmp, err := os.CreateTemp(s.Tmp, "upload-*")
	if err != nil {
		return store.StoredFile{}, fmt.Errorf("upload: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	}()
	h := sha256.New()
	head := &headBuffer{max: sniffLen}
	n, err := io.Copy(io.MultiWriter(tmp, h, head), io.LimitReader(src, s.MaxBytes+1))
	switch {
	case err != nil && IsBodyTooLarge(err):
		return store.StoredFile{}, UploadTooLargeError{s.MaxBytes >> 20}
	case err != nil && isLocalWriteError(err):
		return store.StoredFile{}, fmt.Errorf("upload: %w", err)
	case err != nil:
		return store.StoredFile{}, fmt.Errorf("%w (%v)", ErrUploadIncomplete, err)
	case n > s.MaxBytes:
		return store.StoredFile{}, UploadTooLargeError{s.MaxBytes >> 20}
	case n == 0:
		return store.StoredFile{}, errEmptyUpload
	}
	if err := tmp.Sync(); err != nil { // a 2xx promises the bytes are on disk
		return store.StoredFile{}, fmt.Errorf("upload: %w", err)
	}
	if err := s.checkSpace(ctx, n); err != nil { // the bytes are on the disk now: the floor counts them
		return store.StoredFile{}, err
	}
	f = store.StoredFile{RoomID: roomID, UserID: u.ID, Name: sanitizeFileName(name), Size: n,
		Type: sniffType(head.b), SHA256: hex.EncodeToString(h.Sum(nil))}
	var (
		thumb []byte
		known store.StoredFile // an earlier upload of the same picture, whose thumbnail serves again
		reuse bool
	)
	if IsSafeRaster(f.Type) {
		if known, reuse, err = s.st.KnownThumbnail(ctx, f.SHA256, u.ID); err != nil {
			return store.StoredFile{}, err
		}
		if !reuse {
			thumb = s.thumbnail(ctx, tmp.Name(), &f)
		}
	}

	s.blobMu.Lock()
	defer s.blobMu.Unlock()
	if err := s.placeBlob(tmp.Name(), f.SHA256); err != nil {
		return store.StoredFile{}, err
	}
	if reuse {
		// Under blobMu (and then pinned, in a cluster) the sweep cannot
		// take the thumbnail between this check and the insert; if it
		// already did, make it again.
		if s.blobAvailableLocked(ctx, known.ThumbSHA256) {
			f.Width, f.Height, f.ThumbSHA256, f.ThumbType = known.Width, known.Height, known.ThumbSHA256, known.ThumbType
		} else {
			thumb = s.thumbnail(ctx, s.BlobPath(f.SHA256), &f)
		}
	}
	if thumb != nil {
		if f.ThumbSHA256, err = s.writeBlob(thumb); err != nil {
			s.removeUnreferenced(ctx, f.SHA256)
			return store.StoredFile{}, err
		}
	}
	if s.replica != nil {
		if err := s.replicateLocked(ctx, &f); err != nil {
			// The cluster just failed: leave it alone. What it may have
			// taken is an orphan object, the same bytes as any later
			// upload of them.
			s.removeLocalUnreferenced(ctx, f.SHA256)
			s.removeLocalUnreferenced(ctx, f.ThumbSHA256)
			return store.StoredFile{}, err
		}
	}
	ok, err := s.st.InsertFileCapped(ctx, &f, s.quota, s.floors.maxTotal)
	if err != nil || !ok {
		s.removeUnreferenced(ctx, f.SHA256)
		s.removeUnreferenced(ctx, f.ThumbSHA256)
		if err != nil {
			return store.StoredFile{}, err
		}
		if used, uerr := s.st.UploadedBytes(ctx, u.ID); uerr == nil && s.quota > 0 && used+f.Size > s.quota {
			return store.StoredFile{}, uploadQuotaError{s.quota >> 20}
		}
		return store.StoredFile{}, s.floors.totalError()
	}
	return f, nil
}

// checkSpace refuses an upload of size bytes (0 before its bytes
// arrived) below the free-space floor or over the uploads' total cap.
func (s *Service) checkSpace(ctx context.Context, size int64) error {
	if err := s.floors.checkUpload(0); err != nil {
		return err
	}
	if s.floors.maxTotal <= 0 {
		return nil
	}
	used, err := s.st.TotalUploadedBytes(ctx)
	if err != nil {
		return err
	}
	return s.floors.checkTotal(used, size)
}

// thumbnail makes the thumbnail of the picture at path and fills in f's
// displayed size. A picture that cannot be decoded, or is too large to
// decode safely, gets no thumbnail and is shown as a file.
func (s *Service) thumbnail(ctx context.Context, path string, f *store.StoredFile) []byte {
	info, err := s.thumbs.makeThumbnail(ctx, f.UserID, path, f.Type)
	f.Width, f.Height = info.width, info.height
	if err != nil {
		s.stats.noThumbnail.Add(1)
		s.log.Info("no thumbnail", "name", f.Name, "type", f.Type, "width", info.width, "height", info.height, "err", err)
		return nil
	}
	f.ThumbType = info.thumbType
	s.stats.thumbnails.Add(1)
	return info.thumb
}

// placeBlob moves the finished upload at tmp to its content address, or
// drops it when a blob with those bytes is already there. The caller
// holds blobMu.
func (s *Service) placeBlob(tmp, sum string) error {
	dst := s.BlobPath(sum)
	if _, err := os.Stat(dst); err == nil {
		// The same bytes were uploaded before: keep one copy. The folder
		// is synced all the same, so that the answer takes as long as for
		// new bytes: an upload's time must not tell whether someone, in
		// some room, has the file (issue 22).
		return syncDir(filepath.Dir(dst))
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	return syncDir(filepath.Dir(dst))
}

// writeBlob stores b (a thumbnail) under its SHA-256 and returns it. The
// caller holds blobMu.
func (s *Service) writeBlob(b []byte) (string, error) {
	sum := sha256.Sum256(b)
	hexSum := hex.EncodeToString(sum[:])
	// Written and synced even when the blob exists (placeBlob then drops
	// it): the same work whoever made the thumbnail first (issue 22).
	tmp, err := os.CreateTemp(s.Tmp, "thumb-*")
	if err != nil {
		return "", fmt.Errorf("thumbnail: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("thumbnail: %w", err)
	}
	return hexSum, s.placeBlob(tmp.Name(), hexSum)
}

// removeUnreferenced removes the blob sum, here and in the replica, if
// no file row names it and no upload has pinned it. The caller holds
// blobMu.
func (s *Service) removeUnreferenced(ctx context.Context, sum string) {
	if s.removeLocalUnreferenced(ctx, sum) {
		s.forgetReplicated(ctx, sum)
	}
}

// removeLocalUnreferenced is removeUnreferenced on this disk only; it
// reports whether the blob was unreferenced. The caller holds blobMu.
func (s *Service) removeLocalUnreferenced(ctx context.Context, sum string) bool {
	if sum == "" || s.pinned[sum] > 0 {
		return false
	}
	ref, err := s.st.BlobReferenced(ctx, sum)
	if err != nil || ref {
		return false
	}
	if err := os.Remove(s.BlobPath(sum)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("remove file", "sha256", sum, "err", err)
	}
	return true
}

// Open returns the file row id and its opened blob (the thumbnail's if
// thumb), for u to download. Every call checks access: an attached file
// needs CanRead on its room; an upload not sent yet is its uploader's
// alone. Either way a file u may not see is errUnknownFile (404), like one
// that does not exist: ids are sequential, and a 403 would tell which
// exist (issue 22). A blob
// this node lacks is fetched from the replica first, if there is one. The
// caller closes the file.
func (s *Service) Open(ctx context.Context, u store.User, id int64, thumb bool) (store.StoredFile, *os.File, error) {
	f, err := s.st.FileByID(ctx, id)
	if err != nil {
		return store.StoredFile{}, nil, err
	}
	if f.MessageID == 0 && f.UserID != u.ID {
		return store.StoredFile{}, nil, store.ErrUnknownFile
	}
	if err := s.rooms.CanRead(ctx, u, f.RoomID); err != nil {
		if apperr.IsClientError(err) {
			return store.StoredFile{}, nil, store.ErrUnknownFile
		}
		return store.StoredFile{}, nil, err
	}
	sum := f.SHA256
	if thumb {
		if sum = f.ThumbSHA256; sum == "" {
			return store.StoredFile{}, nil, store.ErrUnknownFile
		}
	}
	file, err := os.Open(s.BlobPath(sum))
	if errors.Is(err, fs.ErrNotExist) && s.replica != nil {
		if err = s.fetch(ctx, sum); err == nil {
			file, err = os.Open(s.BlobPath(sum))
		}
	}
	if err != nil {
		return store.StoredFile{}, nil, fmt.Errorf("open file %d: %w", id, err)
	}
	return f, file, nil
}

// DeleteUnsent deletes an upload of u that no message carries yet (the
// Remove of the upload tray), and its blobs unless another file shares
// them. Anything else, sent files included, is errUnknownFile.
func (s *Service) DeleteUnsent(ctx context.Context, u store.User, id int64) error {
	s.blobMu.Lock()
	defer s.blobMu.Unlock()
	sum, thumb, err := s.st.DeleteUnsentFile(ctx, id, u.ID)
	if err != nil {
		return err
	}
	s.removeUnreferenced(ctx, sum)
	s.removeUnreferenced(ctx, thumb)
	return nil
}

// Forget removes the blobs sums, those of a deleted message's files, unless
// another upload still names them. Safe for concurrent use.
func (s *Service) Forget(ctx context.Context, sums []string) {
	s.blobMu.Lock()
	defer s.blobMu.Unlock()
	for _, sum := range sums {
		s.removeUnreferenced(ctx, sum)
	}
}

// Sweep deletes uploads never sent before abandonedBefore, then removes
// every blob on this disk that no file row names any more (and deletes it
// from the replica): those of messages that retention or a deletion
// removed (their rows went with them, ON DELETE CASCADE), and leftovers
// of a crash between rename and commit. It returns how many blobs it
// removed.
func (s *Service) Sweep(ctx context.Context, abandonedBefore time.Time) (int, error) {
	if _, err := s.st.DeleteAbandonedFiles(ctx, abandonedBefore); err != nil {
		return 0, err
	}
	removed := 0
	err := filepath.WalkDir(s.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == s.Tmp {
				return filepath.SkipDir
			}
			return nil
		}
		sum := d.Name()
		if len(sum) != sha256.Size*2 || filepath.Base(filepath.Dir(path)) != sum[:2] {
			return nil // not ours
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		s.blobMu.Lock()
		defer s.blobMu.Unlock()
		if s.pinned[sum] > 0 {
			return nil // an upload is putting it into the replica, and will name it
		}
		ref, err := s.st.BlobReferenced(ctx, sum)
		if err != nil || ref {
			return err
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		s.forgetReplicated(ctx, sum)
		removed++
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("sweep files: %w", err)
	}
	return removed, nil
}

// headBuffer keeps the first max bytes written to it, for sniffing.
type headBuffer struct {
	b   []byte
	max int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := h.max - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// IsBodyTooLarge reports whether err comes from http.MaxBytesReader.
func IsBodyTooLarge(err error) bool {
	_, ok := errors.AsType[*http.MaxBytesError](err)
	return ok
}

// isLocalWriteError reports whether a copy failed on our side (the disk),
// not the client's: an *fs.PathError names our temporary file.
func isLocalWriteError(err error) bool {
	_, ok := errors.AsType[*fs.PathError](err)
	return ok
}

// syncDir fsyncs a directory so that a rename into it survives power loss.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && runtime.GOOS != "windows" { // Windows cannot fsync a directory
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// BackupFilesSuffix names the folder that `stompbox backup FILE` writes
// the files into: FILE.files/, laid out like the data folder's files/.
const BackupFilesSuffix = ".files"

// Backup copies every blob the database copy at dbCopy names (files
// and thumbnails) from dataDir into dbCopy+backupFilesSuffix. Blobs never
// change once written, so a copy made after the database snapshot is
// consistent with it; a blob that retention removed in between is
// reported as missing and skipped. It hard-links where it can (same file
// system: instant, no extra space) and copies otherwise.
func Backup(ctx context.Context, dataDir, dbCopy string) (copied, missing int, err error) {
	sums, err := store.BackupBlobSums(ctx, dbCopy)
	if err != nil {
		return 0, 0, fmt.Errorf("backup files: %w", err)
	}
	src := filepath.Join(dataDir, FilesDirName)
	dst := dbCopy + BackupFilesSuffix
	for _, sum := range sums {
		if len(sum) != sha256.Size*2 {
			continue
		}
		from, to := filepath.Join(src, sum[:2], sum), filepath.Join(dst, sum[:2], sum)
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			return copied, missing, fmt.Errorf("backup files: %w", err)
		}
		if err := linkOrCopy(from, to); errors.Is(err, fs.ErrNotExist) {
			missing++
			continue
		} else if err != nil {
			return copied, missing, fmt.Errorf("backup files: %w", err)
		}
		copied++
	}
	return copied, missing, nil
}

// linkOrCopy makes to a hard link of from, or a copy where links fail.
func linkOrCopy(from, to string) error {
	if _, err := os.Stat(from); err != nil {
		return err
	}
	if os.Link(from, to) == nil {
		return nil
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
