package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"stompbox/internal/testutil"
	"testing"
	"time"
)

// TestLoginsEnded: each op that ends a credential names the login keys it
// ended, and EndedLogins finds the same keys from the database alone (the
// check a server runs for changes made behind its back), expiry included.
func TestLoginsEnded(t *testing.T) {
	clock := testutil.NewClock()
	s := openTestStore(t, clock)
	ctx := context.Background()
	kim, err := s.CreateUser(ctx, NewUser{Username: "kim", DisplayName: "kim", PasswordHash: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	lee, err := s.CreateUser(ctx, NewUser{Username: "lee", DisplayName: "lee", PasswordHash: "h2"})
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	for i, h := range [][]byte{[]byte("s1"), []byte("s2"), []byte("s3")} {
		uid := kim.ID
		if i == 2 {
			uid = lee.ID
		}
		if err := s.CreateSession(ctx, h, uid, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateToken(ctx, NewToken{UserID: kim.ID, Name: "bot", TokenHash: []byte("t1")}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(ctx, NewToken{UserID: kim.ID, Name: "short", TokenHash: []byte("t2"), Scopes: "post", Expires: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	live := []string{
		UserLogin(kim.ID), UserLogin(lee.ID), SessionLogin([]byte("s1")), SessionLogin([]byte("s2")), SessionLogin([]byte("s3")),
		TokenLogin([]byte("t1")), TokenLogin([]byte("t2")), PasswordLogin(kim.ID, "h1"), PasswordLogin(lee.ID, "h2"),
	}
	check := func(want ...string) {
		t.Helper()
		got, err := s.EndedLogins(ctx, live)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("ended %v, want %v", got, want)
		}
	}
	check()

	// Each op, run as the server (or a cluster node applying the log) runs
	// it, and what it says it ended.
	ops := []struct {
		name string
		op   Op
		want []string
	}{
		{"logout", &sessionDeleteOp{TokenHash: []byte("s1")}, []string{SessionLogin([]byte("s1"))}},
		{"revoke", &tokenDeleteOp{UserID: kim.ID, Name: "bot"}, []string{TokenLogin([]byte("t1"))}},
		{"password", &passwordSetOp{Username: "kim", Hash: "h1b"}, []string{PasswordLogin(kim.ID, "h1"), SessionLogin([]byte("s2"))}},
		{"delete", &userDeleteOp{Username: "lee"}, []string{UserLogin(lee.ID)}},
	}
	var ended []string
	for _, tt := range ops {
		if err := s.Run(ctx, tt.op); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got := tt.op.(LoginEnder).LoginsEnded()
		if !slices.Equal(got, tt.want) {
			t.Fatalf("%s ended %v, want %v", tt.name, got, tt.want)
		}
		ended = append(ended, tt.want...)
	}
	// Deleting lee took his session and password with him.
	ended = append(ended, SessionLogin([]byte("s3")), PasswordLogin(lee.ID, "h2"))
	check(slices.Clone(ended)...)

	// The short token expires.
	clock.Advance(2 * time.Minute)
	check(append(slices.Clone(ended), TokenLogin([]byte("t2")))...)
	if _, err := s.UserByToken(ctx, []byte("t2")); err == nil {
		t.Fatal("an expired token still signs in")
	}
}

// BenchmarkEndedLogins is the server's periodic login check
// (-login-check) for 10,000 connections of 10,000 accounts: an account
// key and a session key each, all still live.
func BenchmarkEndedLogins(b *testing.B) {
	s := openTestStore(b, nil)
	ctx := context.Background()
	const n = 10000
	keys := make([]string, 0, 2*n)
	err := s.Write(ctx, func(tx *sql.Tx) error {
		for i := range n {
			var id int64
			name := fmt.Sprintf("u%d", i)
			if err := tx.QueryRowContext(ctx, `INSERT INTO users (username, username_key, display_name, password_hash, is_admin, is_guest, created_at) VALUES (?, ?, ?, 'h', 0, 0, 0) RETURNING id`, name, name, name).Scan(&id); err != nil {
				return err
			}
			h := []byte(fmt.Sprintf("session-%d", i))
			if _, err := tx.ExecContext(ctx, `INSERT INTO login_sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, 0, ?)`, h, id, int64(1)<<60); err != nil {
				return err
			}
			keys = append(keys, UserLogin(id), SessionLogin(h))
		}
		return nil
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		ended, err := s.EndedLogins(ctx, keys)
		if err != nil || len(ended) != 0 {
			b.Fatalf("%v %v", len(ended), err)
		}
	}
}
