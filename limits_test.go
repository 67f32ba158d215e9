package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"stompbox/internal/apperr"
	"stompbox/internal/broker"
	"stompbox/internal/chat"
	"stompbox/internal/chatstomp"
	"stompbox/internal/proto"
	"stompbox/internal/ratelimit"
	"stompbox/internal/stomp"
	"stompbox/internal/store"
	"strings"
	"sync"
	"testing"
	"time"
)

// httpAs sends a JSON request to srv with a bearer token (no cookie, no
// Origin: a script's request) and returns the status, headers and body.
func httpAs(t *testing.T, srv *server, token, method, path, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+srv.HTTPAddr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// newTestToken makes an API token for u.
func newTestToken(t *testing.T, srv *server, u store.User) string {
	t.Helper()
	tok, err := srv.auth.CreateToken(context.Background(), u, "test")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// storedTexts is every TALK text stored in a room, oldest first.
func storedTexts(t *testing.T, srv *server, u store.User, roomID int64) []string {
	t.Helper()
	ms, err := srv.chat.Messages(context.Background(), u, roomID, 0, 0, chat.MaxHistoryLimit)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		if m.Type == proto.MsgTalk {
			out = append(out, m.Message)
		}
	}
	return out
}

// TestParseConfigHardening: the new limits come from flags, then
// STOMPBOX_ variables, then defaults; 0 turns the counts off, but a
// message must be allowed at least one character.
func TestParseConfigHardening(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    [3]int // MaxMessage, MaxRoomsPerUser, MaxUserSubs
		wantErr string
	}{
		{"defaults", nil, nil, [3]int{chat.MaxMessageRunes, chat.DefaultMaxRoomsPerUser, broker.DefaultMaxUserSubscriptions}, ""},
		{"flags", []string{"-max-message", "500", "-max-rooms-per-user", "3", "-max-user-subscriptions", "7"}, nil, [3]int{500, 3, 7}, ""},
		{"env", nil, map[string]string{"STOMPBOX_MAX_MESSAGE": "20000", "STOMPBOX_MAX_ROOMS_PER_USER": "0", "STOMPBOX_MAX_USER_SUBSCRIPTIONS": "0"}, [3]int{20000, 0, 0}, ""},
		{"flag beats env", []string{"-max-message", "10"}, map[string]string{"STOMPBOX_MAX_MESSAGE": "20"}, [3]int{10, chat.DefaultMaxRoomsPerUser, broker.DefaultMaxUserSubscriptions}, ""},
		{"zero message", []string{"-max-message", "0"}, nil, [3]int{}, "-max-message"},
		{"negative rooms", []string{"-max-rooms-per-user", "-1"}, nil, [3]int{}, "-max-rooms-per-user"},
		{"words", nil, map[string]string{"STOMPBOX_MAX_USER_SUBSCRIPTIONS": "lots"}, [3]int{}, "-max-user-subscriptions"},
		{"negative memory limit", []string{"-memory-limit", "-5"}, nil, [3]int{}, "-memory-limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := [3]int{c.MaxMessage, c.MaxRoomsPerUser, c.MaxUserSubs}; got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLimitsMaxMessage: with -max-message 10, ten characters (Korean, so
// runes, not bytes, are counted) pass over STOMP and HTTP; eleven are
// refused on both with the same text naming the limit (STOMP on
// /user/queue/errors, HTTP 413), and never stored.
func TestLimitsMaxMessage(t *testing.T) {
	const limit = 10
	srv := startServer(t, func(c *Config) { c.MaxMessage = limit })
	kim := addUser(t, srv, "kim", testPassword)
	rm, err := srv.chat.CreateRoom(context.Background(), kim, chat.NewRoom{Name: "general"})
	if err != nil {
		t.Fatal(err)
	}
	token := newTestToken(t, srv, kim)
	c := dialTCP(t, srv.TCPAddr())
	c.connect("accept-version:1.2", "login:kim", "passcode:"+testPassword)
	c.roundTrip(stomp.CmdSubscribe, "", "id:e", "destination:"+chatstomp.ErrorsDest)
	const wantText = "message too long: at most 10 characters"

	fits, tooLong := strings.Repeat("말", limit), strings.Repeat("말", limit+1)
	tests := []struct {
		name, via, text string
		ok              bool
	}{
		{"stomp at the limit", "stomp", fits, true},
		{"stomp over the limit", "stomp", tooLong + "stomp", false},
		{"http at the limit", "http", "가나다라마바사아자차", true},
		{"http over the limit", "http", tooLong + "http", false},
		{"http far over the limit", "http", strings.Repeat("😀", 5000), false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			switch tt.via {
			case "stomp":
				receipt := fmt.Sprintf("m%d", i)
				c.send(stomp.CmdSend, chatBody(proto.MsgTalk, rm.ID, tt.text), "destination:/pub/chat/message", "receipt:"+receipt)
				f := c.next()
				if tt.ok {
					if f.Command != stomp.CmdReceipt {
						t.Fatalf("got %s %q, want RECEIPT", f.Command, f.Body)
					}
					return
				}
				var e apperr.RefusedSend
				if f.Command != stomp.CmdMessage || json.Unmarshal(f.Body, &e) != nil {
					t.Fatalf("got %s %q, want a refusal on %s", f.Command, f.Body, chatstomp.ErrorsDest)
				}
				if e.Error != wantText || e.Status != http.StatusRequestEntityTooLarge || e.Receipt != receipt {
					t.Errorf("refusal %+v", e)
				}
			case "http":
				body, _ := json.Marshal(map[string]string{"message": tt.text})
				status, _, resp := httpAs(t, srv, token, "POST", fmt.Sprintf("/api/rooms/%d/messages", rm.ID), string(body))
				if tt.ok {
					if status != http.StatusCreated {
						t.Fatalf("status %d %s", status, resp)
					}
					return
				}
				var e struct{ Error string }
				if status != http.StatusRequestEntityTooLarge || json.Unmarshal([]byte(resp), &e) != nil || e.Error != wantText {
					t.Fatalf("status %d %s, want 413 %q", status, resp, wantText)
				}
			}
		})
	}
	for _, text := range storedTexts(t, srv, kim, rm.ID) {
		if n := len([]rune(text)); n > limit {
			t.Errorf("stored a message of %d characters: %.20q…", n, text)
		}
	}
	if got := len(storedTexts(t, srv, kim, rm.ID)); got != 2 {
		t.Errorf("%d messages stored, want the 2 that fit", got)
	}
}

// TestLimitsRoomsPerUser: past -max-rooms-per-user an account's next room
// is refused with 403 and a JSON reason; DMs do not count, administrators
// are exempt, and other accounts keep their own allowance.
func TestLimitsRoomsPerUser(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.MaxRoomsPerUser = 2 })
	admin := addUser(t, srv, "admin", testPassword) // the first account is the administrator
	bob := addUser(t, srv, "bob", testPassword)
	carol := addUser(t, srv, "carol", testPassword)
	if !admin.IsAdmin || bob.IsAdmin {
		t.Fatalf("admin %v, bob %v", admin.IsAdmin, bob.IsAdmin)
	}
	tokens := map[string]string{"admin": newTestToken(t, srv, admin), "bob": newTestToken(t, srv, bob), "carol": newTestToken(t, srv, carol)}
	tests := []struct {
		name, who, method, path, body string
		status                        int
		want                          string
		save                          string // remember the created room's id under this name, for later paths
	}{
		{"first", "bob", "POST", "/api/rooms", `{"name":"one"}`, 201, `"name":"one"`, "{one}"},
		{"second, private", "bob", "POST", "/api/rooms", `{"name":"two","kind":"private"}`, 201, `"kind":"private"`, ""},
		{"third refused", "bob", "POST", "/api/rooms", `{"name":"three"}`, 403, `"error":"room limit reached: an account may create at most 2 rooms; ask an administrator"`, ""},
		{"a DM still opens", "bob", "POST", "/api/dm/carol", "", 200, `"kind":"dm"`, ""},
		{"still refused after the DM", "bob", "POST", "/api/rooms", `{"name":"three"}`, 403, "room limit reached", ""},
		{"archiving frees nothing", "bob", "PATCH", "/api/rooms/{one}", `{"archived":true}`, 200, `"archived":true`, ""},
		{"still refused after archiving", "bob", "POST", "/api/rooms", `{"name":"three"}`, 403, "room limit reached", ""},
		{"carol has her own", "carol", "POST", "/api/rooms", `{"name":"carol's"}`, 201, "", ""},
		{"admin 1", "admin", "POST", "/api/rooms", `{"name":"a1"}`, 201, "", "{a1}"},
		{"admin 2", "admin", "POST", "/api/rooms", `{"name":"a2"}`, 201, "", ""},
		{"admin exempt", "admin", "POST", "/api/rooms", `{"name":"a3"}`, 201, "", ""},
		{"joining is not limited", "bob", "POST", "/api/rooms/{a1}/join", "", 204, "", ""},
	}
	ids := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			for k, v := range ids {
				path = strings.ReplaceAll(path, k, v)
			}
			status, _, body := httpAs(t, srv, tokens[tt.who], tt.method, path, tt.body)
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Fatalf("%s %s = %d %s; want %d with %s", tt.method, path, status, body, tt.status, tt.want)
			}
			if tt.save != "" {
				var r store.Room
				if err := json.Unmarshal([]byte(body), &r); err != nil {
					t.Fatal(err)
				}
				ids[tt.save] = fmt.Sprint(r.ID)
			}
		})
	}
	rs, err := srv.chat.Rooms(context.Background(), bob)
	if err != nil {
		t.Fatal(err)
	}
	mine := 0
	for _, r := range rs {
		if r.CreatedBy == bob.ID && r.Kind != store.RoomDM {
			mine++
		}
	}
	if mine != 2 {
		t.Errorf("bob created %d rooms, want 2", mine)
	}
}

// TestLimitsRoomsPerUserConcurrent: creates racing from many requests at
// once cannot pass the limit together (the count is taken in the write
// transaction).
func TestLimitsRoomsPerUserConcurrent(t *testing.T) {
	const limit, tries = 3, 12
	srv := startServer(t, func(c *Config) { c.MaxRoomsPerUser = limit })
	addUser(t, srv, "admin", testPassword)
	bob := addUser(t, srv, "bob", testPassword)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
	)
	for i := range tries {
		wg.Go(func() {
			_, err := srv.chat.CreateRoom(context.Background(), bob, chat.NewRoom{Name: fmt.Sprintf("r%d", i)})
			if err != nil && apperr.HTTPStatus(err) != http.StatusForbidden {
				t.Errorf("CreateRoom: %v", err)
			}
			if err == nil {
				mu.Lock()
				created++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if created != limit {
		t.Errorf("%d rooms created, want %d", created, limit)
	}
}

// TestLimitsUserSubscriptions: -max-user-subscriptions counts a user's
// subscriptions over all their connections. Past it SUBSCRIBE gets an
// ERROR; UNSUBSCRIBE, a closed connection and a subscription a hook
// refused all give their slot back; other users are not affected.
func TestLimitsUserSubscriptions(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.MaxUserSubs = 3 })
	kim := addUser(t, srv, "kim", testPassword)
	addUser(t, srv, "lee", testPassword)
	rm, err := srv.chat.CreateRoom(context.Background(), kim, chat.NewRoom{Name: "general"})
	if err != nil {
		t.Fatal(err)
	}
	login := func(name string) *stompClient {
		c := dialTCP(t, srv.TCPAddr())
		c.connect("accept-version:1.2", "login:"+name, "passcode:"+testPassword)
		return c
	}
	count := func() int { return srv.broker.UserSubCount("kim") }

	a, b := login("kim"), login("kim")
	a.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:"+proto.RoomDestination(rm.ID))
	a.roundTrip(stomp.CmdSubscribe, "", "id:2", "destination:/topic/a")
	b.roundTrip(stomp.CmdSubscribe, "", "id:1", "destination:"+chatstomp.ErrorsDest)
	if got := count(); got != 3 {
		t.Fatalf("kim holds %d subscriptions, want 3", got)
	}
	b.send(stomp.CmdSubscribe, "", "id:2", "destination:/topic/b", "receipt:over")
	if e := b.expect(stomp.CmdError); !strings.Contains(e.Value(stomp.HdrMessage), "too many subscriptions for this user") {
		t.Fatalf("ERROR %q", e.Value(stomp.HdrMessage))
	}
	b.expectClosed()
	checkFor(t, "b's subscription given back", func() bool { return count() == 2 })

	lee := login("lee") // another user has an allowance of their own
	for i := range 3 {
		lee.roundTrip(stomp.CmdSubscribe, "", fmt.Sprintf("id:%d", i), fmt.Sprintf("destination:/topic/l%d", i))
	}

	a.roundTrip(stomp.CmdUnsubscribe, "", "id:2")
	if got := count(); got != 1 {
		t.Fatalf("after UNSUBSCRIBE kim holds %d, want 1", got)
	}

	// A subscription the room check refuses gives its slot back, too.
	c := login("kim")
	c.send(stomp.CmdSubscribe, "", "id:x", "destination:"+proto.RoomDestination(rm.ID+1000))
	c.expect(stomp.CmdError)
	c.expectClosed()
	checkFor(t, "the refused subscription's slot given back", func() bool { return count() == 1 })

	a.close()
	checkFor(t, "every slot given back", func() bool { return count() == 0 })
}

// TestRateHTTPPosts: POST /api/rooms/{id}/messages draws from the user's
// STOMP SEND bucket (-user-send-rate). Past it the post gets 429 with
// Retry-After and a JSON reason and is not stored, STOMP SENDs of the same
// user wait for the same bucket, other users do not, and the bucket refills.
func TestRateHTTPPosts(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.RateLimits.UserSendRate = 1 }) // bursts of 2
	var (
		clockMu sync.Mutex
		now     = time.Unix(1_700_000_000, 0)
	)
	srv.limiter.Now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	advance := func(d time.Duration) { clockMu.Lock(); now = now.Add(d); clockMu.Unlock() }
	var slept time.Duration // under clockMu
	srv.limiter.Sleep = func(d time.Duration) { clockMu.Lock(); now = now.Add(d); slept += d; clockMu.Unlock() }

	kim := addUser(t, srv, "kim", testPassword)
	lee := addUser(t, srv, "lee", testPassword)
	rm, err := srv.chat.CreateRoom(context.Background(), kim, chat.NewRoom{Name: "general"})
	if err != nil {
		t.Fatal(err)
	}
	kimTok, leeTok := newTestToken(t, srv, kim), newTestToken(t, srv, lee)
	path := fmt.Sprintf("/api/rooms/%d/messages", rm.ID)

	tests := []struct {
		name, token, text string
		advance           time.Duration
		status            int
	}{
		{"burst 1", kimTok, "one", 0, 201},
		{"burst 2", kimTok, "two", 0, 201},
		{"over the limit", kimTok, "three", 0, 429},
		{"another user", leeTok, "lee", 0, 201},
		{"refilled", kimTok, "four", time.Second, 201},
		{"empty again", kimTok, "five", 0, 429},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			advance(tt.advance)
			status, h, body := httpAs(t, srv, tt.token, "POST", path, `{"message":"`+tt.text+`"}`)
			if status != tt.status {
				t.Fatalf("status %d %s, want %d", status, body, tt.status)
			}
			if status == http.StatusTooManyRequests {
				if h.Get("Retry-After") != "1" || !strings.Contains(body, `"error":"rate limit exceeded: too many messages, slow down"`) {
					t.Errorf("Retry-After %q, body %s", h.Get("Retry-After"), body)
				}
			}
		})
	}
	if got, want := strings.Join(storedTexts(t, srv, kim, rm.ID), ","), "one,two,lee,four"; got != want {
		t.Errorf("stored %s, want %s", got, want)
	}

	// The bucket is the one STOMP SENDs use: switching to STOMP does not
	// add to the allowance. The SEND waits for the next token (1 s at 1/s),
	// then is stored and receipted.
	c := dialTCP(t, srv.TCPAddr())
	c.connect("accept-version:1.2", "login:kim", "passcode:"+testPassword)
	c.roundTrip(stomp.CmdSend, chatBody(proto.MsgTalk, rm.ID, "via stomp"), "destination:/pub/chat/message")
	clockMu.Lock()
	held := slept
	clockMu.Unlock()
	if held != time.Second {
		t.Fatalf("STOMP SEND after the HTTP burst held %v, want 1s", held)
	}
	if got := storedTexts(t, srv, kim, rm.ID); got[len(got)-1] != "via stomp" {
		t.Fatalf("stored %v", got)
	}
}

// TestRateRetryAfter: Retry-After is whole seconds, rounded up, at least 1.
func TestRateRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{0, "1"}, {time.Millisecond, "1"}, {time.Second, "1"}, {1500 * time.Millisecond, "2"}, {10 * time.Second, "10"}} {
		if got := ratelimit.RetryAfterSeconds(tt.d); got != tt.want {
			t.Errorf("retryAfterSeconds(%v) = %s, want %s", tt.d, got, tt.want)
		}
	}
}

// TestMemoryLimit: -memory-limit reaches the runtime as a soft limit in MiB,
// from the flag or STOMPBOX_MEMORY_LIMIT; 0 leaves the runtime's setting.
func TestMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want int64
	}{
		{"default leaves the runtime's", nil, nil, before},
		{"flag", []string{"-memory-limit", "150"}, nil, 150 << 20},
		{"env", nil, map[string]string{"STOMPBOX_MEMORY_LIMIT": "64"}, 64 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetMemoryLimit(before)
			c, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			applyMemoryLimit(c.MemoryLimitMiB, slog.New(slog.DiscardHandler))
			if got := debug.SetMemoryLimit(-1); got != tt.want {
				t.Errorf("runtime memory limit %d, want %d", got, tt.want)
			}
		})
	}
}
