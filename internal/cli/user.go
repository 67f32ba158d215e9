package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"stompbox/internal/apperr"
	"stompbox/internal/auth"
	"stompbox/internal/files"
	"stompbox/internal/store"
	"strings"
	"text/tabwriter"
	"time"
)

// CliPasswordLen is the length of generated passwords: 16 characters of a
// 57-letter alphabet is about 93 bits, and still types in by hand.
const CliPasswordLen = 16

// CliPasswordAlphabet leaves out look-alikes (0/O, 1/l/I) since generated
// passwords are read off a terminal.
const CliPasswordAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

const userUsage = `usage: stompbox user <command>
  add NAME [--admin] [--display NAME] [--password-stdin]
                            create an account (the first one is admin);
                            without --password-stdin a password is generated and printed
  passwd NAME [--password-stdin]
                            set a new password (generated unless read from stdin);
                            ends the user's login sessions
  del NAME                  delete an account (its messages stay)
  token NAME [TOKEN-NAME] [--scopes post,read] [--expires DAYS|TIME]
                            create an API token for bots and TCP clients and print it;
                            scopes: post, read, admin (admin accounts only; default post,read),
                            expires: days from now or an RFC 3339 time (default never)
  list                      list accounts`

// User runs `stompbox user …` on the database in dataDir. args
// are the words after "user". It is safe while a server runs on the same
// folder: SQLite's WAL and busy timeout serialise the writes, and the
// command holds the write lock only for its own short transaction.
func User(ctx context.Context, dataDir string, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("user: missing command\n%s", userUsage)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "add", "passwd", "del", "token", "list":
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, userUsage)
		return nil
	default:
		return fmt.Errorf("user: unknown command %q\n%s", cmd, userUsage)
	}

	fs := flag.NewFlagSet("user "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	admin := fs.Bool("admin", false, "make the account an administrator")
	display := fs.String("display", "", "display name")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	scopes := fs.String("scopes", "", "token scopes: post, read, admin (comma-separated)")
	expires := fs.String("expires", "", "token expiry: days from now, or an RFC 3339 time")
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		return fmt.Errorf("user %s: %w\n%s", cmd, err, userUsage)
	}
	want := map[string][2]int{"add": {1, 1}, "passwd": {1, 1}, "del": {1, 1}, "token": {1, 2}, "list": {0, 0}}[cmd]
	if len(pos) < want[0] || len(pos) > want[1] {
		return fmt.Errorf("user %s: wrong number of arguments\n%s", cmd, userUsage)
	}

	st, err := store.OpenDir(ctx, dataDir, store.Options{CloseCheckpoint: store.CheckpointPassive})
	if err != nil {
		return err
	}
	defer st.Close()
	accounts, err := auth.New(st, auth.Options{})
	if err != nil {
		return err
	}

	switch cmd {
	case "add":
		pw, generated, err := CliPassword(*fromStdin, stdin)
		if err != nil {
			return err
		}
		u, err := accounts.CreateAccount(ctx, auth.Registration{Username: pos[0], DisplayName: *display, Password: pw}, *admin, false)
		if err != nil {
			return fmt.Errorf("user add: %s", cliError(err))
		}
		fmt.Fprintf(stdout, "created %s%s\n", u.Username, map[bool]string{true: " (admin)", false: ""}[u.IsAdmin])
		if generated {
			fmt.Fprintf(stdout, "password: %s\n", pw)
		}
	case "passwd":
		pw, generated, err := CliPassword(*fromStdin, stdin)
		if err != nil {
			return err
		}
		if err := auth.ValidPassword(pw); err != nil {
			return fmt.Errorf("user passwd: %s", cliError(err))
		}
		hash, err := accounts.Hash(ctx, pw)
		if err != nil {
			return err
		}
		if err := st.SetPassword(ctx, pos[0], hash); err != nil {
			return fmt.Errorf("user passwd: %s", cliError(err))
		}
		fmt.Fprintf(stdout, "password changed for %s\n", pos[0])
		if generated {
			fmt.Fprintf(stdout, "password: %s\n", pw)
		}
	case "del":
		if err := st.DeleteUser(ctx, pos[0]); err != nil {
			return fmt.Errorf("user del: %s", cliError(err))
		}
		fmt.Fprintf(stdout, "deleted %s\n", pos[0])
	case "token":
		u, err := st.UserByName(ctx, pos[0])
		if err != nil {
			return fmt.Errorf("user token: %s", cliError(err))
		}
		name := "cli-" + st.Now().UTC().Format("20060102-150405")
		if len(pos) == 2 {
			name = pos[1]
		}
		exp, err := auth.ParseExpiry(*expires, st.Now())
		if err != nil {
			return fmt.Errorf("user token: %s", cliError(err))
		}
		tok, err := accounts.CreateTokenWith(ctx, u, auth.TokenSpec{Name: name, Scopes: *scopes, Expires: exp})
		if err != nil {
			return fmt.Errorf("user token: %s", cliError(err))
		}
		fmt.Fprintln(stdout, tok) // alone on its line, for scripts
	case "list":
		us, err := st.ListUsers(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tDISPLAY NAME\tROLE\tCREATED")
		for _, u := range us {
			role := "user"
			if u.IsAdmin {
				role = "admin"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Username, u.DisplayName, role, u.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	}
	return st.Close()
}

// Backup writes a consistent copy of the database in dataDir to
// file (which must not exist), and the uploaded files it names to
// file.files/, also while a server is running.
func Backup(ctx context.Context, dataDir, file string) error {
	st, err := store.OpenDir(ctx, dataDir, store.Options{CloseCheckpoint: store.CheckpointPassive})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Backup(ctx, file); err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	// The files after the database: blobs never change, so those the
	// snapshot names are copied as they were (files.go).
	_, missing, err := files.Backup(ctx, dataDir, file)
	if err == nil && missing > 0 {
		err = fmt.Errorf("backup: %d files named in the database were removed while copying (retention); the database copy is complete", missing)
	}
	return err
}

// parseInterspersed parses flags that may come before, between or after
// positional arguments (`user add NAME --admin`), which flag.Parse alone
// does not allow.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// CliPassword reads the password from the first line of stdin, or
// generates one.
func CliPassword(fromStdin bool, stdin io.Reader) (pw string, generated bool, err error) {
	if fromStdin {
		line, err := bufio.NewReader(io.LimitReader(stdin, auth.MaxPasswordLen+2)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", false, fmt.Errorf("read password: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), false, nil
	}
	b := make([]byte, CliPasswordLen)
	for i := range b {
		b[i] = CliPasswordAlphabet[randIndex(len(CliPasswordAlphabet))]
	}
	return string(b), true, nil
}

// randIndex returns a uniform random index below n (n ≤ 256) by
// rejection sampling, so no letter is likelier than another.
func randIndex(n int) int {
	limit := 256 - 256%n
	var b [1]byte
	for {
		rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		if int(b[0]) < limit {
			return int(b[0]) % n
		}
	}
}

// cliError is the message a CLI user should see: the public text of a
// chat/auth error, or the full error for anything else (the operator is
// on the machine; there is nothing to hide).
func cliError(err error) string {
	if msg := apperr.Message(err); msg != "internal error" {
		return msg
	}
	return err.Error()
}
