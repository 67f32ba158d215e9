package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"stompbox/internal/apperr"
	"stompbox/internal/auth/authtest"
	"stompbox/internal/cli"
	"stompbox/internal/store"
	"stompbox/internal/store/storetest"
	"strings"
	"testing"
)

// runUser runs `stompbox user args…` and returns its output.
func runUser(t *testing.T, dir, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := cli.User(context.Background(), dir, args, strings.NewReader(stdin), &out)
	return out.String(), err
}

func TestUserCommand(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()

	// A server holds the same database open throughout: the CLI must work
	// beside it.
	server, err := store.OpenDir(ctx, dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	serverAuth := authtest.New(t, server, false)

	tests := []struct {
		name    string
		stdin   string
		args    []string
		wantOut string
		wantErr string
	}{
		{"no command", "", nil, "", "missing command"},
		{"unknown", "", []string{"frobnicate"}, "", "unknown command"},
		{"help", "", []string{"help"}, "usage: stompbox user", ""},
		{"add first is admin", "secret-pass\n", []string{"add", "root", "--password-stdin"}, "created root (admin)\n", ""},
		{"add generated", "", []string{"add", "bob", "--display", "Bob B"}, "password: ", ""},
		{"add flag before name", "another-pass\n", []string{"add", "--admin", "--password-stdin", "carol"}, "created carol (admin)", ""},
		{"add duplicate", "x-long-enough\n", []string{"add", "BOB", "--password-stdin"}, "", "name already taken"},
		{"add short password", "short\n", []string{"add", "dave", "--password-stdin"}, "", "at least 8"},
		{"add bad name", "", []string{"add", "a b"}, "", "username"},
		{"add no name", "", []string{"add"}, "", "wrong number"},
		{"add bad flag", "", []string{"add", "x", "--nope"}, "", "not defined"},
		{"passwd", "new-password\n", []string{"passwd", "root", "--password-stdin"}, "password changed for root", ""},
		{"passwd unknown", "new-password\n", []string{"passwd", "ghost", "--password-stdin"}, "", "unknown user"},
		{"token", "", []string{"token", "bob", "ci"}, "sbx_", ""},
		{"token default name", "", []string{"token", "bob"}, "sbx_", ""},
		{"token duplicate", "", []string{"token", "bob", "ci"}, "", "name already taken"},
		{"token unknown", "", []string{"token", "ghost"}, "", "unknown user"},
		{"list", "", []string{"list"}, "Bob B", ""},
		{"del", "", []string{"del", "carol"}, "deleted carol", ""},
		{"del again", "", []string{"del", "carol"}, "", "unknown user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runUser(t, dir, tt.stdin, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Fatalf("output %q lacks %q", out, tt.wantOut)
			}
		})
	}

	// The server sees what the CLI did.
	if _, err := serverAuth.CheckLogin(ctx, "root", "new-password"); err != nil {
		t.Fatalf("server login with the CLI's password: %v", err)
	}
	if _, err := server.UserByName(ctx, "carol"); !errors.Is(err, apperr.ErrUnknownUser) {
		t.Fatalf("deleted user still there: %v", err)
	}
	out, err := runUser(t, dir, "", "token", "bob", "bot2")
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(out)
	if u, err := serverAuth.UserByToken(ctx, tok); err != nil || u.Username != "bob" {
		t.Fatalf("server rejects the CLI's token: %+v, %v", u, err)
	}
	out, _ = runUser(t, dir, "", "list")
	if strings.Contains(out, "carol") || !strings.Contains(out, "root") || !strings.Contains(out, "admin") {
		t.Fatalf("list:\n%s", out)
	}
}

func TestBackupCommand(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	server, err := store.OpenDir(ctx, dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	for i := range 20 {
		if _, err := storetest.InsertMessage(ctx, server, 1, fmt.Sprint("m", i)); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "copy.db")
	if err := cli.Backup(ctx, dir, file); err != nil {
		t.Fatal(err)
	}
	if err := cli.Backup(ctx, dir, file); err == nil {
		t.Fatal("backup overwrote its target")
	}
	b, err := store.Open(ctx, file, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ms, err := b.MessagesPage(ctx, 1, 0, 0, 50)
	if err != nil || len(ms) != 20 {
		t.Fatalf("backup has %d messages, %v", len(ms), err)
	}
}

func TestCLIPasswordAlphabet(t *testing.T) {
	pw, generated, err := cli.CliPassword(false, nil)
	if err != nil || !generated || len(pw) != cli.CliPasswordLen || strings.Trim(pw, cli.CliPasswordAlphabet) != "" {
		t.Fatalf("generated %q, %v, %v", pw, generated, err)
	}
	pw, generated, _ = cli.CliPassword(true, strings.NewReader("typed pass\r\nrest"))
	if pw != "typed pass" || generated {
		t.Fatalf("stdin password %q", pw)
	}
}
