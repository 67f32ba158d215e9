package store

// space.go: the disk floors' hook (issue 22). The file service measures
// the disk (internal/files, floors.go); the store asks it, before an op is
// submitted, whether the op may add to a disk that is nearly full. The
// decision is taken where the op is submitted, never where it is applied,
// so that every node of a cluster applies the same ops.

// SpaceCheck returns nil when the disk has room for op, or an error to
// give the client (HTTP 507, a STOMP refusal) naming the limit. It is
// asked about every op, so that it can make room before a deletion, and
// refuses only ops that grow the database (GrowsDisk).
type SpaceCheck func(op Op) error

// SetSpaceCheck attaches fn, asked before each op is submitted from now
// on. Called once at wiring.
func (s *Store) SetSpaceCheck(fn SpaceCheck) { s.space.Store(&fn) }

// growingKinds are the kinds of op that add what people choose to add:
// posts, edits, reactions, rooms, accounts, uploads. Below the post floor
// they are refused. Everything else stays allowed: deletions free space,
// and signing in, leaving a room or marking messages read take next to
// none; a full disk must never keep anyone from freeing it. Kinds are the
// log's names (ops of the chat package included), which never change.
var growingKinds = map[string]bool{
	"chat-post":     true,
	"msg-edit":      true,
	"msg-react":     true,
	"room-create":   true,
	"room-update":   true,
	"dm-open":       true,
	"user-create":   true,
	"invite-create": true,
	"token-create":  true,
	"webhook-set":   true,
	"file-insert":   true,
}

// GrowsDisk reports whether op is of a kind refused below the post floor.
func GrowsDisk(op Op) bool { return growingKinds[op.OpKind()] }

// checkSpace asks the space check about op.
func (s *Store) checkSpace(op Op) error {
	if fn := s.space.Load(); fn != nil && *fn != nil {
		return (*fn)(op)
	}
	return nil
}
