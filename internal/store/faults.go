package store

import (
	"errors"
	"stompbox/internal/apperr"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNotStored is what a sender is told when a chat message could not be
// written because of the disk, not the message: a full SD card, a file
// system remounted read-only, an I/O error. Nothing was stored and no
// RECEIPT goes out; the details are in the server log.
var ErrNotStored = apperr.New(errKindUnavailable, "message not saved: the server cannot write to its database (disk full or read-only)")

// errKindUnavailable is the kind of errNotStored (HTTP 500 through
// httpStatus's default; the message says what is wrong).
var errKindUnavailable = errors.New("storage unavailable")

// StorageFault reports whether err comes from SQLite failing to write to
// the disk (SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN and
// their extended codes), as opposed to a bug or a bad request.
func StorageFault(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff { // the primary code of an extended one
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN:
		return true
	}
	return false
}
