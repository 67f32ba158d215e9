package main

import (
	"context"
	"errors"
	"stompbox/internal/auth"
	"stompbox/internal/chat"
	"stompbox/internal/chat/chattest"
	"stompbox/internal/store"
	"stompbox/internal/web"
	"strings"
	"testing"
)

// TestPagesInvitationNote: the register page says who invited and to which
// server, or that the link no longer works (issue 17, item 10).
func TestPagesInvitationNote(t *testing.T) {
	mux, _ := newTestPages(t, func(o *web.PagesOptions) {
		o.Invitation = func(_ context.Context, code string) (string, bool, error) {
			switch code {
			case "good":
				return "Kim Minji", true, nil
			case "orphan":
				return "", true, nil
			case "broken":
				return "", false, errors.New("disk on fire")
			}
			return "", false, nil
		}
	})
	tests := []struct {
		name, target, lang, want string
	}{
		{"valid", "/register?invite=good", "en", "Kim Minji invited you to the team chat at example.com."},
		{"valid in Korean", "/register?invite=good", "ko", "Kim Minji 님이 example.com의 팀 채팅에 초대했습니다."},
		{"inviter gone", "/register?invite=orphan", "en", "You were invited to the team chat at example.com."},
		{"used or unknown", "/register?invite=nope", "en", "This invitation link is invalid"},
		{"lookup failed", "/register?invite=broken", "en", ""},
		{"no invitation", "/register", "en", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := parseHTML(t, pageGet(t, mux, tt.target, "", "Cookie: stompbox_lang="+tt.lang))
			n := htmlByTestID(doc, "invite-note")
			switch {
			case tt.want == "" && n != nil:
				t.Errorf("note %q, want none", htmlText(n))
			case tt.want != "" && (n == nil || !strings.Contains(htmlText(n), tt.want)):
				t.Errorf("note %v, want %q", n, tt.want)
			}
		})
	}
}

// TestPagesAdminSignupMode: the sign-up button of the mode in force is
// pressed, and the invitation link has a copy button.
func TestPagesAdminSignupMode(t *testing.T) {
	for _, mode := range []string{store.RegistrationOpen, store.RegistrationInvite} {
		t.Run(mode, func(t *testing.T) {
			mux, _ := newTestPages(t, func(o *web.PagesOptions) {
				o.Registration = func(context.Context) (string, error) { return mode, nil }
			})
			doc := parseHTML(t, pageGet(t, mux, "/admin", "kim-session"))
			htmlMustTestID(t, doc, "copy-invite")
			for id, want := range map[string]string{"registration-open": "false", "registration-invite": "false"} {
				if id == "registration-"+mode {
					want = "true"
				}
				if got, _ := htmlAttr(htmlByTestID(doc, id), "aria-pressed"); got != want {
					t.Errorf("%s aria-pressed %q, want %q", id, got, want)
				}
			}
		})
	}
}

func TestInvitationLookup(t *testing.T) {
	ctx := context.Background()
	f := chattest.NewFixture(t, chat.LangEnglish)
	code, err := f.Auth.CreateInvite(ctx, f.Alice)
	if err != nil {
		t.Fatal(err)
	}
	if name, ok, err := f.Auth.Invitation(ctx, code); err != nil || !ok || name != "alice" {
		t.Errorf("fresh invite: %q %v %v", name, ok, err)
	}
	if _, ok, err := f.Auth.Invitation(ctx, "no-such-code"); err != nil || ok {
		t.Errorf("unknown code: %v %v", ok, err)
	}
	if err := f.Auth.SetRegistration(ctx, f.Alice, store.RegistrationInvite); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Auth.Register(ctx, auth.Registration{Username: "dana", Password: "password-dana", Invite: code}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := f.Auth.Invitation(ctx, code); err != nil || ok {
		t.Errorf("used invite still valid: %v %v", ok, err)
	}
}
