package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"stompbox/internal/apperr"
	"stompbox/internal/testutil"
	"strings"
	"testing"
	"time"
)

// TestOpsRoundTrip checks that every op survives the log's encoding with
// its inputs intact, and that the registry knows each kind once.
func TestOpsRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		op   Op
	}{
		{"user-create", &UserCreateOp{NewUser: NewUser{Username: "Alice", DisplayName: "Alice A.",
			PasswordHash: "$argon2id$v=19$…", Admin: true, InviteHash: []byte{1, 2, 3}}}},
		{"user-create guest", &UserCreateOp{NewUser: NewUser{Username: "g", DisplayName: "g", Guest: true}}},
		// nil means "no invite", an empty hash means "an invite that
		// cannot match": the encoding must keep them apart.
		{"user-create empty invite", &UserCreateOp{NewUser: NewUser{Username: "e", InviteHash: []byte{}}}},
		{"user-password", &passwordSetOp{Username: "alice", Hash: "$argon2id$x"}},
		{"user-delete", &userDeleteOp{Username: "bob"}},
		{"webhook-set", &webhookSetOp{UserID: 7, URL: "https://example.com/hook"}},
		{"session-create", &sessionCreateOp{TokenHash: []byte("0123456789abcdef0123456789abcdef"), UserID: 7, ExpiresAt: 1767323045000}},
		{"session-delete", &sessionDeleteOp{TokenHash: []byte{0, 255, 9}}},
		{"token-create", &tokenCreateOp{UserID: 7, Name: "bot", TokenHash: []byte{4, 5}}},
		{"token-delete", &tokenDeleteOp{UserID: 7, Name: "bot"}},
		{"setting-set", &settingSetOp{Key: SettingRegistration, Value: RegistrationInvite}},
		{"invite-create", &inviteCreateOp{CodeHash: []byte{6, 7}, CreatedBy: 1, ExpiresAt: 1767323045000}},
		{"messages-purge", &purgeOp{Before: 1767323045000, Limit: purgeChunk}},
		{"notifications-delivered", &deliveredOp{UserID: 7, UpTo: 99}},
		{"file-insert", &fileInsertOp{RoomID: 1, UserID: 7, Name: "a b.png", Size: 1234, Type: "image/png",
			SHA256: strings.Repeat("ab", 32), Width: 800, Height: 600, ThumbSHA256: strings.Repeat("cd", 32),
			ThumbType: "image/jpeg", Quota: 1 << 30}},
		{"files-delete-abandoned", &abandonedFilesDeleteOp{Before: 1767323045000}},
		{"file-delete-unsent", &unsentFileDeleteOp{FileID: 9, UserID: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const at = 1767323045123
			b, err := EncodeOp(tt.op, at, "node-a", "")
			if err != nil {
				t.Fatal(err)
			}
			got, env, err := DecodeOp(b)
			if err != nil {
				t.Fatal(err)
			}
			if env.At != at || env.Node != "node-a" || env.Kind != tt.op.OpKind() {
				t.Errorf("envelope = %+v", env)
			}
			if !reflect.DeepEqual(got, tt.op) {
				t.Errorf("decoded %#v, want %#v", got, tt.op)
			}
			if k := NewOpOfKind(tt.op.OpKind()); reflect.TypeOf(k) != reflect.TypeOf(tt.op) {
				t.Errorf("newOpOfKind(%q) = %T, want %T", tt.op.OpKind(), k, tt.op)
			}
		})
	}

	t.Run("kinds unique", func(t *testing.T) {
		seen := make(map[string]string)
		for _, op := range opKinds() {
			k := op.OpKind()
			if k == "" {
				t.Errorf("%T has an empty kind", op)
			}
			if prev, ok := seen[k]; ok {
				t.Errorf("kind %q used by both %s and %T", k, prev, op)
			}
			seen[k] = fmt.Sprintf("%T", op)
		}
	})
}

// replayOp applies op to s the way a cluster node applies an op from the
// log: through its encoding, at the clock reading at of the node that
// submitted it, never at s's own clock. It returns the decoded op, which
// holds the results.
func replayOp(t testing.TB, s *Store, op Op, at int64) (Op, error) {
	t.Helper()
	b, err := EncodeOp(op, at, "test", "")
	if err != nil {
		t.Fatal(err)
	}
	dop, env, err := DecodeOp(b)
	if err != nil {
		t.Fatal(err)
	}
	return dop, s.ApplyAt(context.Background(), dop, env.At, true)
}

// opsReplayTables are the tables the store_* ops write, with an order
// that makes a dump of each stable.
var opsReplayTables = []struct{ name, order string }{
	{"users", "id"},
	{"login_sessions", "token_hash"},
	{"api_tokens", "id"},
	{"settings", "key"},
	{"invites", "code_hash"},
	{"files", "id"},
	{"notifications", "id"},
	{"messages", "id"},
	{"memberships", "room_id, user_id"},
}

// dumpTable renders every row of table as text, one line a row.
func dumpTable(t testing.TB, s *Store, table, order string) string {
	t.Helper()
	rows, err := s.Rdb.QueryContext(context.Background(), `SELECT * FROM `+table+` ORDER BY `+order)
	if err != nil {
		t.Fatalf("dump %s: %v", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			fmt.Fprintf(&b, "%s=%v ", cols[i], v)
		}
		b.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestOpsReplayDeterministic replays one sequence of ops on two stores
// whose clocks are decades apart, as two cluster nodes would, and checks
// that both end with the same rows and saw the same results. An apply
// that read the local clock (or anything else node-local) makes them
// differ.
func TestOpsReplayDeterministic(t *testing.T) {
	base := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	ms := func(d time.Duration) int64 { return base.Add(d).UnixMilli() }
	hash := func(s string) []byte { return []byte("hash:" + s) }
	day := 24 * time.Hour
	sum := func(c string) string { return strings.Repeat(c, 64) }

	// Steps run in order; step i is submitted at base + i seconds. A step
	// with seed runs that SQL instead (rows the chat ops would make,
	// identical on both stores), wantErr is the error both must report.
	steps := []struct {
		name    string
		op      Op
		seed    string
		wantErr error
	}{
		{name: "first user is admin", op: &UserCreateOp{NewUser: NewUser{Username: "alice", DisplayName: "Alice", PasswordHash: "h1"}}},
		{name: "second user", op: &UserCreateOp{NewUser: NewUser{Username: "bob", DisplayName: "Bob", PasswordHash: "h2"}}},
		{name: "name taken", op: &UserCreateOp{NewUser: NewUser{Username: "ALICE", PasswordHash: "h3"}}, wantErr: apperr.ErrNameTaken},
		{name: "guest", op: &UserCreateOp{NewUser: NewUser{Username: "gus", DisplayName: "gus", Guest: true}}},
		{name: "invite only", op: &settingSetOp{Key: SettingRegistration, Value: RegistrationInvite}},
		{name: "invite", op: &inviteCreateOp{CodeHash: hash("inv1"), CreatedBy: 1, ExpiresAt: ms(time.Hour)}},
		{name: "short invite", op: &inviteCreateOp{CodeHash: hash("inv2"), CreatedBy: 1, ExpiresAt: ms(7 * time.Second)}},
		{name: "register with invite", op: &UserCreateOp{NewUser: NewUser{Username: "carol", PasswordHash: "h4", InviteHash: hash("inv1")}}},
		{name: "invite used", op: &UserCreateOp{NewUser: NewUser{Username: "dave", PasswordHash: "h5", InviteHash: hash("inv1")}}, wantErr: apperr.ErrBadInvite},
		// Expired at the op's clock (step 9 > 7 s), whatever either store's clock says.
		{name: "invite expired", op: &UserCreateOp{NewUser: NewUser{Username: "erin", PasswordHash: "h6", InviteHash: hash("inv2")}}, wantErr: apperr.ErrBadInvite},
		{name: "session that expires", op: &sessionCreateOp{TokenHash: hash("s1"), UserID: 1, ExpiresAt: ms(12 * time.Second)}},
		{name: "bob's session", op: &sessionCreateOp{TokenHash: hash("s2"), UserID: 2, ExpiresAt: ms(day)}},
		// Sweeps s1 (expired at step 13), keeps s2.
		{name: "session sweeps", op: &sessionCreateOp{TokenHash: hash("s3"), UserID: 4, ExpiresAt: ms(day)}},
		{name: "logout", op: &sessionDeleteOp{TokenHash: hash("s3")}},
		{name: "alice's session", op: &sessionCreateOp{TokenHash: hash("s4"), UserID: 1, ExpiresAt: ms(day)}},
		{name: "token", op: &tokenCreateOp{UserID: 1, Name: "bot", TokenHash: hash("t1")}},
		{name: "bob's token", op: &tokenCreateOp{UserID: 2, Name: "bot", TokenHash: hash("t2")}},
		{name: "token name taken", op: &tokenCreateOp{UserID: 1, Name: "bot", TokenHash: hash("t3")}, wantErr: apperr.ErrNameTaken},
		{name: "revoke", op: &tokenDeleteOp{UserID: 2, Name: "bot"}},
		{name: "revoke unknown", op: &tokenDeleteOp{UserID: 2, Name: "nope"}, wantErr: apperr.ErrNotFound},
		{name: "webhook", op: &webhookSetOp{UserID: 1, URL: "https://example.com/hook"}},
		{name: "password ends bob's sessions", op: &passwordSetOp{Username: "Bob", Hash: "h7"}},
		{name: "password of nobody", op: &passwordSetOp{Username: "nobody", Hash: "h8"}, wantErr: apperr.ErrUnknownUser},
		{name: "delete guest", op: &userDeleteOp{Username: "gus"}},
		{name: "delete nobody", op: &userDeleteOp{Username: "nobody"}, wantErr: apperr.ErrUnknownUser},
		{name: "messages", seed: `INSERT INTO messages (room_id, user_id, sender, type, body, created_at) VALUES
			(1, 1, 'alice', 'ENTER', 'in', ` + fmt.Sprint(ms(-30*day)) + `),
			(1, 2, 'bob', 'ENTER', 'in', ` + fmt.Sprint(ms(-20*day)) + `),
			(1, 4, 'carol', 'ENTER', 'in', ` + fmt.Sprint(ms(-10*day)) + `),
			(1, 1, 'alice', 'ENTER', 'in', ` + fmt.Sprint(ms(-1*day)) + `),
			(1, 2, 'bob', 'ENTER', 'in', ` + fmt.Sprint(ms(0)) + `)`},
		{name: "notifications", seed: `INSERT INTO notifications (user_id, message_id, reason, created_at) VALUES
			(1, 4, 'dm', 0), (1, 5, 'mention', 0), (1, 2, 'dm', 0), (2, 4, 'dm', 0)`},
		{name: "delivered", op: &deliveredOp{UserID: 1, UpTo: 1}},
		{name: "purge a chunk", op: &purgeOp{Before: ms(-5 * day), Limit: 2}},
		{name: "purge the rest", op: &purgeOp{Before: ms(-5 * day), Limit: 2}},
		{name: "upload", op: &fileInsertOp{RoomID: 1, UserID: 1, Name: "a.png", Size: 100, Type: "image/png",
			SHA256: sum("a"), Width: 10, Height: 20, ThumbSHA256: sum("b"), ThumbType: "image/jpeg", Quota: 250}},
		{name: "upload 2", op: &fileInsertOp{RoomID: 1, UserID: 1, Name: "b.txt", Size: 100, Type: "text/plain", SHA256: sum("c"), Quota: 250}},
		{name: "over quota", op: &fileInsertOp{RoomID: 1, UserID: 1, Name: "c.txt", Size: 100, Type: "text/plain", SHA256: sum("d"), Quota: 250}},
		{name: "upload 3", op: &fileInsertOp{RoomID: 1, UserID: 4, Name: "d.txt", Size: 5, Type: "text/plain", SHA256: sum("e")}},
		{name: "sent", seed: `UPDATE files SET message_id = 4 WHERE id = 2`},
		{name: "remove unsent", op: &unsentFileDeleteOp{FileID: 1, UserID: 1}},
		{name: "remove sent", op: &unsentFileDeleteOp{FileID: 2, UserID: 1}},
		{name: "remove another's", op: &unsentFileDeleteOp{FileID: 3, UserID: 1}},
		{name: "abandoned", op: &abandonedFilesDeleteOp{Before: ms(time.Hour)}},
	}

	early := testutil.NewClockAt(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))
	late := testutil.NewClockAt(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	a, b := openTestStore(t, early), openTestStore(t, late)
	for i, st := range steps {
		at := ms(time.Duration(i) * time.Second)
		if st.seed != "" {
			for _, s := range []*Store{a, b} {
				err := s.Write(context.Background(), func(tx *sql.Tx) error {
					_, err := tx.ExecContext(context.Background(), st.seed)
					return err
				}, nil)
				if err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
			}
			continue
		}
		ra, errA := replayOp(t, a, st.op, at)
		rb, errB := replayOp(t, b, st.op, at)
		if fmt.Sprint(errA) != fmt.Sprint(errB) {
			t.Errorf("%s: errors differ: %v and %v", st.name, errA, errB)
		}
		if st.wantErr == nil && errA != nil || st.wantErr != nil && !errors.Is(errA, st.wantErr) {
			t.Errorf("%s: error %v, want %v", st.name, errA, st.wantErr)
		}
		// %+v shows the unexported results: ids, counts, blob names.
		if ga, gb := fmt.Sprintf("%+v", ra), fmt.Sprintf("%+v", rb); ga != gb {
			t.Errorf("%s: results differ:\n%s\n%s", st.name, ga, gb)
		}
	}

	for _, tb := range opsReplayTables {
		da, db := dumpTable(t, a, tb.name, tb.order), dumpTable(t, b, tb.name, tb.order)
		if da != db {
			t.Errorf("%s differs:\n%s\nvs\n%s", tb.name, da, db)
		}
	}

	// A few absolute checks, so that two stores equally wrong fail too.
	// Ids: gus took 3 before carol, and ids of deleted rows are reused
	// alike on both (no AUTOINCREMENT on users).
	stepAt := func(name string) int64 {
		for i, st := range steps {
			if st.name == name {
				return ms(time.Duration(i) * time.Second)
			}
		}
		t.Fatalf("no step %q", name)
		return 0
	}
	checks := []struct{ query, want string }{
		{`SELECT group_concat(username || ':' || is_admin, ',') FROM (SELECT * FROM users ORDER BY id)`, "alice:1,bob:0,carol:0"},
		{`SELECT group_concat(created_at, ',') FROM (SELECT * FROM users ORDER BY id)`,
			fmt.Sprintf("%d,%d,%d", stepAt("first user is admin"), stepAt("second user"), stepAt("register with invite"))},
		{`SELECT group_concat(user_id, ',') FROM (SELECT * FROM login_sessions ORDER BY user_id)`, "1"},
		{`SELECT used_at FROM invites WHERE used_by = 4`, fmt.Sprint(stepAt("register with invite"))},
		{`SELECT group_concat(created_at, ',') FROM invites`, fmt.Sprintf("%d,%d", stepAt("invite"), stepAt("short invite"))},
		{`SELECT created_at FROM login_sessions`, fmt.Sprint(stepAt("alice's session"))},
		{`SELECT created_at FROM api_tokens`, fmt.Sprint(stepAt("token"))},
		{`SELECT group_concat(user_id || ':' || name, ',') FROM api_tokens`, "1:bot"},
		{`SELECT webhook_url FROM users WHERE id = 1`, "https://example.com/hook"},
		{`SELECT value FROM settings WHERE key = 'registration'`, RegistrationInvite},
		{`SELECT group_concat(id, ',') FROM (SELECT * FROM messages ORDER BY id)`, "4,5"},
		{`SELECT group_concat(id || ':' || coalesce(delivered_at, '-'), ',') FROM (SELECT * FROM notifications ORDER BY id)`,
			fmt.Sprintf("1:%d,2:-,4:-", stepAt("delivered"))},
		{`SELECT group_concat(id || ':' || created_at, ',') FROM (SELECT * FROM files ORDER BY id)`, fmt.Sprintf("2:%d", stepAt("upload 2"))},
	}
	for _, c := range checks {
		var got sql.NullString
		if err := a.Rdb.QueryRow(c.query).Scan(&got); err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		if got.String != c.want {
			t.Errorf("%s = %q, want %q", c.query, got.String, c.want)
		}
	}
}

// TestDecodeOpFormat checks the log format version an entry carries:
// written with its kind's version, absent meaning 1 (entries of the first
// cluster release), and an entry of a newer version or an unknown kind
// refused as a *FormatError naming what it needs, never decoded.
func TestDecodeOpFormat(t *testing.T) {
	b, err := EncodeOp(&settingSetOp{Key: "k", Value: "v"}, 1, "a", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"v":1,`) {
		t.Errorf("entry %s does not carry its format version", b)
	}
	if LogFormat() != BaseLogFormat {
		t.Fatalf("LogFormat() = %d, want %d", LogFormat(), BaseLogFormat)
	}
	tests := []struct {
		name      string
		entry     string
		wantErr   bool
		needed    int
		unknown   bool
		wantValue string
	}{
		{"no version means 1", `{"k":"setting-set","at":1,"n":"a","o":{"Key":"k","Value":"old"}}`, false, 0, false, "old"},
		{"version 1", `{"v":1,"k":"setting-set","at":1,"n":"a","o":{"Key":"k","Value":"one"}}`, false, 0, false, "one"},
		{"newer version of a known kind", `{"v":2,"k":"setting-set","at":1,"n":"a","o":{"Key":"k","Value":"two"}}`, true, 2, false, ""},
		{"far newer version", `{"v":7,"k":"brand-new","at":1,"n":"a","o":{}}`, true, 7, false, ""},
		{"unknown kind at a known version", `{"v":1,"k":"brand-new","at":1,"n":"a","o":{}}`, true, 2, true, ""},
		{"unknown kind without version", `{"k":"brand-new","at":1,"n":"a","o":{}}`, true, 2, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op, env, err := DecodeOp([]byte(tt.entry))
			var fe *FormatError
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				if s, ok := op.(*settingSetOp); !ok || s.Value != tt.wantValue || env.Version() != 1 {
					t.Fatalf("decoded %#v, envelope %+v", op, env)
				}
				return
			}
			if !errors.As(err, &fe) || op != nil {
				t.Fatalf("DecodeOp = %#v, %v; want a *FormatError", op, err)
			}
			if fe.Needed() != tt.needed || fe.Unknown != tt.unknown || fe.Supported != LogFormat() || env.Kind != fe.Kind {
				t.Errorf("error %+v (needed %d), want needed %d unknown %v", fe, fe.Needed(), tt.needed, tt.unknown)
			}
			if want := fmt.Sprintf("version %d", fe.Version); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
		})
	}
}
