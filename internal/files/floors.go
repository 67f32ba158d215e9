package files

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"stompbox/internal/apperr"
	"stompbox/internal/store"
	"sync"
)

// floors.go: disk floors (issue 22). Open registration and a per-account
// quota alone let a few accounts fill the disk, after which nothing works,
// deleting included. Three limits keep the server usable:
//
//   - the uploads' total cap (-files-max-total): all uploads together,
//     by default a quarter of the data folder's file system;
//   - the free-space floor (-min-free): below it uploads are refused;
//   - the post floor, a quarter of -min-free: below it posts, edits,
//     reactions, new rooms and new accounts are refused too (the store's
//     growing ops, store.GrowsDisk).
//
// Refusals are HTTP 507 (apperr.ErrNoSpace) with a message naming the
// limit, and the same text in a refused STOMP SEND. Deleting is never
// refused, and a small reserve file in the data folder is given back when
// the disk falls below the post floor, so that SQLite has room to delete
// (and checkpoint) even when something else filled the disk.
const (
	// DefaultMinFreeMiB is the default of -min-free: half a GiB leaves
	// the system of a small board room for its logs and updates, and the
	// database room to checkpoint.
	DefaultMinFreeMiB = 512

	// DefaultFilesMaxTotalPercent is the default of -files-max-total, as
	// a share of the data folder's file system: on a 32 GB card, 8 GiB
	// (eight accounts at the default quota), leaving three quarters for
	// the system, the database and a backup beside it.
	DefaultFilesMaxTotalPercent = 25

	// postFloorDivisor makes the post floor a quarter of -min-free (128
	// MiB by default): text is small, so chat goes on well after uploads
	// stopped, and stops while there is still room to delete.
	postFloorDivisor = 4

	// reserveName and reserveBytes: the reserve file, given back when the
	// disk falls below the post floor.
	reserveName  = "disk-reserve"
	reserveBytes = 8 << 20

	// fallbackMaxTotal is the total cap where a percentage cannot be
	// taken because the platform does not say the disk's size.
	fallbackMaxTotal = 8 << 30
)

// DiskSpace is what the file system of the data folder reports, in bytes.
type DiskSpace struct {
	Free  uint64 // available to this (unprivileged) process
	Total uint64 // the file system's size
}

// StatFS reads the space of the file system holding dir. Tests replace it
// (Options.StatFS).
type StatFS func(dir string) (DiskSpace, error)

// errSpaceUnknown is what statFS returns where the platform has no way to
// ask (floors_other.go): the free-space floors are then not enforced.
var errSpaceUnknown = errors.New("free space unknown on this platform")

// floors enforces the limits above. Safe for concurrent use.
type floors struct {
	dir       string // the data folder
	statfs    StatFS
	minFree   uint64 // -min-free, bytes; 0: no floors
	postFloor uint64 // minFree / postFloorDivisor
	maxTotal  int64  // the uploads' total cap, bytes; 0: none

	mu       sync.Mutex // guards reserved
	reserved bool       // the reserve file is in place
}

// newFloors measures the disk once (for a percentage cap), and puts the
// reserve file in place where there is room for it.
func newFloors(dir string, opts Options) (*floors, error) {
	f := &floors{dir: dir, statfs: opts.StatFS, minFree: uint64(max(opts.MinFree, 0)), maxTotal: opts.MaxTotal}
	if f.statfs == nil {
		f.statfs = statFS
	}
	f.postFloor = f.minFree / postFloorDivisor
	space, err := f.statfs(dir)
	if err != nil && !errors.Is(err, errSpaceUnknown) {
		return nil, fmt.Errorf("disk space of %s: %w", dir, err)
	}
	switch {
	case opts.MaxTotalPercent > 0 && err == nil:
		f.maxTotal = int64(space.Total / 100 * uint64(opts.MaxTotalPercent))
	case opts.MaxTotalPercent > 0:
		f.maxTotal = fallbackMaxTotal
	}
	if err == nil && f.minFree > 0 && space.Free > f.minFree {
		f.putReserve()
	}
	return f, nil
}

// space reads the disk; ok is false when it cannot be known (no floors).
func (f *floors) space() (DiskSpace, bool) {
	s, err := f.statfs(f.dir)
	return s, err == nil
}

// noSpace is a refusal naming the limit.
func noSpace(format string, args ...any) error {
	return apperr.New(apperr.ErrNoSpace, fmt.Sprintf(format, args...))
}

// checkUpload refuses an upload of size bytes (0: not known yet) when the
// free space would fall below -min-free.
func (f *floors) checkUpload(size int64) error {
	s, ok := f.space()
	if !ok || f.minFree == 0 {
		return nil
	}
	if s.Free < f.minFree+uint64(max(size, 0)) {
		f.lowSpace(s)
		return noSpace("disk nearly full: uploads are refused while less than %d MiB is free (-min-free); delete files to make room", f.minFree>>20)
	}
	if s.Free > f.minFree+reserveBytes && !f.isReserved() {
		f.putReserve() // room again: the next full disk finds the reserve in place
	}
	return nil
}

func (f *floors) isReserved() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reserved
}

// checkOp is the store's space check (store.SetSpaceCheck): ops that grow
// the database are refused below the post floor; before any other op
// (a deletion) the reserve is given back if the disk is that low.
func (f *floors) checkOp(op store.Op) error {
	s, ok := f.space()
	if !ok || f.minFree == 0 {
		return nil
	}
	if !store.GrowsDisk(op) {
		f.lowSpace(s)
		return nil
	}
	if s.Free < f.postFloor {
		f.lowSpace(s)
		return noSpace("disk nearly full: posting is refused while less than %d MiB is free (a quarter of -min-free); delete messages or files to make room", f.postFloor>>20)
	}
	return nil
}

// checkTotal refuses an upload of size that would take all uploads
// (used bytes, from the store) over the total cap.
func (f *floors) checkTotal(used, size int64) error {
	if f.maxTotal > 0 && used+size > f.maxTotal {
		return f.totalError()
	}
	return nil
}

func (f *floors) totalError() error {
	return noSpace("the server's space for files is full: all uploads together may take %d MiB (-files-max-total); delete files to make room", f.maxTotal>>20)
}

// lowSpace gives the reserve file back once the disk is below the post
// floor, so that deletions have room.
func (f *floors) lowSpace(s DiskSpace) {
	if s.Free >= f.postFloor {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.reserved {
		return
	}
	if err := os.Remove(filepath.Join(f.dir, reserveName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return
	}
	f.reserved = false
}

// putReserve writes the reserve file (real blocks, not a sparse file).
func (f *floors) putReserve() {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := filepath.Join(f.dir, reserveName)
	if fi, err := os.Stat(path); err == nil && fi.Size() == reserveBytes {
		f.reserved = true
		return
	}
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	_, err = w.Write(make([]byte, reserveBytes))
	if err == nil {
		err = w.Sync()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return
	}
	f.reserved = true
}
