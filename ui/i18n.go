package ui

import (
	"strconv"
	"strings"
)

// Languages the UI speaks. The first is the fallback when nothing else decides.
const (
	LangEnglish = "en"
	LangKorean  = "ko"
)

// LangCookie is the cookie in which the browser's choice of language is kept,
// so server-rendered pages follow what app.js chose (it also stores the choice
// in localStorage under the same name).
const LangCookie = "stompbox_lang"

// Locale is one language's texts for the server-rendered pages. The zero
// value is not usable; get one from NewLocale. Locales are immutable.
type Locale struct {
	Lang string // "en" or "ko", also the <html lang> value
	dict map[string]string
}

// NewLocale returns the Locale of lang, or English for a language the UI does
// not speak.
func NewLocale(lang string) Locale {
	if lang == LangKorean {
		return Locale{Lang: LangKorean, dict: koreanTexts}
	}
	return Locale{Lang: LangEnglish, dict: englishTexts}
}

// T returns the text for key. A missing key shows as the key itself, so a
// gap is visible on the page; TestDictionariesMatch keeps both dictionaries
// complete.
func (l Locale) T(key string) string {
	if s, ok := l.dict[key]; ok {
		return s
	}
	return key
}

// Tv is T with {name}-style placeholders filled from pairs of name and
// value: Tv("register.invitedBy", "inviter", "Kim", "server", "chat.lan").
func (l Locale) Tv(key string, pairs ...string) string {
	s := l.T(key)
	for i := 0; i+1 < len(pairs); i += 2 {
		s = strings.ReplaceAll(s, "{"+pairs[i]+"}", pairs[i+1])
	}
	return s
}

// SupportedLang reports whether the UI speaks lang.
func SupportedLang(lang string) bool { return lang == LangEnglish || lang == LangKorean }

// MatchLang picks the page language: the cookie if it names a supported
// language, else the best supported language of an Accept-Language header
// (RFC 9110 §12.5.4, highest q first), else fallback, else English.
func MatchLang(cookie, acceptLanguage, fallback string) string {
	if SupportedLang(cookie) {
		return cookie
	}
	best, bestQ := "", 0.0
	for part := range strings.SplitSeq(acceptLanguage, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if !SupportedLang(primary) {
			continue
		}
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if q > bestQ {
			best, bestQ = primary, q
		}
	}
	if best != "" {
		return best
	}
	if SupportedLang(fallback) {
		return fallback
	}
	return LangEnglish
}

// englishTexts and koreanTexts are the server-rendered texts; the texts
// app.js shows live in static/i18n.js. Keep the keys of both maps equal.
var englishTexts = map[string]string{
	"app.name":             "stompbox",
	"skip":                 "Skip to the conversation",
	"field.username":       "Username",
	"field.username.hint":  "Letters, digits, dot, dash or underscore; used for @mentions.",
	"field.displayName":    "Display name",
	"field.password":       "Password",
	"field.password.hint":  "At least 8 characters.",
	"setup.title":          "Welcome to stompbox",
	"setup.intro":          "No one has an account here yet. Create the administrator account: it can manage people and rooms and download backups.",
	"setup.submit":         "Create administrator",
	"login.title":          "Sign in",
	"login.submit":         "Sign in",
	"login.noAccount":      "No account yet?",
	"login.register":       "Create an account",
	"register.title":       "Create an account",
	"register.submit":      "Create account",
	"register.haveAccount": "Already have an account?",
	"register.login":       "Sign in",
	"register.invitedBy":   "{inviter} invited you to the team chat at {server}.",
	"register.invitedAnon": "You were invited to the team chat at {server}.",
	"register.inviteBad":   "This invitation link is invalid, expired or already used. Ask for a new one.",
	"admin.copyInvite":     "Copy link",
	"admin.modeGroup":      "Sign-up mode",
	"chat.rooms":           "Rooms",
	"chat.dms":             "Direct messages",
	"chat.otherRooms":      "Other rooms",
	"chat.newRoom":         "New room",
	"chat.newDM":           "New direct message",
	"chat.search":          "Search messages",
	"chat.searchSubmit":    "Search",
	"chat.online":          "Online",
	"chat.settings":        "Settings",
	"chat.admin":           "Administration",
	"chat.logout":          "Sign out",
	"chat.menu":            "Rooms and people",
	"chat.pickRoom":        "Choose a room to start chatting.",
	"chat.composer":        "Message",
	"chat.attach":          "Attach files or pictures",
	"chat.uploads":         "Files to send",
	"chat.send":            "Send",
	"chat.composerHint":    "Enter sends, Shift+Enter starts a new line.",
	"chat.leave":           "Leave room",
	"members.title":        "Members",
	"members.add":          "Add people to this room",
	"members.find":         "Type a name…",
	"dialog.close":         "Close",
	"chat.join":            "Join room",
	"chat.messages":        "Messages",
	"chat.closeSearch":     "Close search",
	"chat.searchResults":   "Search results",
	"chat.jumpLatest":      "Jump to the latest messages",
	"room.dialogTitle":     "New room",
	"room.name":            "Room name",
	"room.topic":           "Topic (optional)",
	"room.private":         "Private: only invited people can see it",
	"room.create":          "Create room",
	"dm.dialogTitle":       "New direct message",
	"dm.person":            "Person",
	"dm.start":             "Start conversation",
	"dialog.cancel":        "Cancel",
	"settings.title":       "Settings",
	"settings.language":    "Language",
	"settings.langHint":    "Applies to this browser.",
	"settings.notify":      "Browser notifications when I am mentioned or sent a direct message while this tab is hidden",
	"settings.webhook":     "Webhook URL for phone notifications (ntfy or Gotify on your network)",
	"settings.webhookHint": "For example http://192.168.1.10/stompbox-alerts. Leave empty to turn it off.",
	"settings.save":        "Save",
	"settings.back":        "Back to the chat",
	"admin.title":          "Administration",
	"admin.people":         "People",
	"admin.rooms":          "Rooms",
	"admin.backup":         "Backup",
	"admin.backupHint":     "Download a consistent copy of the whole database. Keep it somewhere safe: it holds every message.",
	"admin.backupLink":     "Download backup",
	"admin.signup":         "Sign-up",
	"admin.signupHint":     "Open: anyone who can reach this server can create an account. Invitation only: people need a link from an administrator.",
	"admin.signupOpen":     "Open sign-up",
	"admin.signupInvite":   "Invitation only",
	"admin.createInvite":   "Create invitation link",
	"admin.inviteLink":     "Invitation link (one use)",
	"admin.colUser":        "Username",
	"admin.colName":        "Display name",
	"admin.colRole":        "Role",
	"admin.colRoom":        "Room",
	"admin.colKind":        "Kind",
	"admin.colState":       "State",
	"admin.forbidden":      "Only administrators can open this page.",
	"embed.signIn":         "Sign in to stompbox to take part in this room.",
	"embed.signInLink":     "Sign in (opens a new tab)",
	"embed.open":           "Open in stompbox",
	"lang.en":              "English",
	"lang.ko":              "한국어",
}

var koreanTexts = map[string]string{
	"app.name":             "stompbox",
	"skip":                 "대화로 건너뛰기",
	"field.username":       "아이디",
	"field.username.hint":  "영문, 숫자, 점, 대시, 밑줄. @멘션에 쓰입니다.",
	"field.displayName":    "표시 이름",
	"field.password":       "비밀번호",
	"field.password.hint":  "8자 이상.",
	"setup.title":          "stompbox에 오신 것을 환영합니다",
	"setup.intro":          "아직 계정이 없습니다. 관리자 계정을 만드세요. 관리자는 사용자와 대화방을 관리하고 백업을 내려받을 수 있습니다.",
	"setup.submit":         "관리자 만들기",
	"login.title":          "로그인",
	"login.submit":         "로그인",
	"login.noAccount":      "계정이 없으신가요?",
	"login.register":       "계정 만들기",
	"register.title":       "계정 만들기",
	"register.submit":      "계정 만들기",
	"register.haveAccount": "이미 계정이 있으신가요?",
	"register.login":       "로그인",
	"register.invitedBy":   "{inviter} 님이 {server}의 팀 채팅에 초대했습니다.",
	"register.invitedAnon": "{server}의 팀 채팅에 초대되었습니다.",
	"register.inviteBad":   "초대 링크가 잘못되었거나 만료되었거나 이미 사용되었습니다. 새 링크를 요청하세요.",
	"admin.copyInvite":     "링크 복사",
	"admin.modeGroup":      "가입 방식",
	"chat.rooms":           "대화방",
	"chat.dms":             "1:1 대화",
	"chat.otherRooms":      "다른 대화방",
	"chat.newRoom":         "새 대화방",
	"chat.newDM":           "새 1:1 대화",
	"chat.search":          "메시지 검색",
	"chat.searchSubmit":    "검색",
	"chat.online":          "접속 중",
	"chat.settings":        "설정",
	"chat.admin":           "관리",
	"chat.logout":          "로그아웃",
	"chat.menu":            "대화방과 사람",
	"chat.pickRoom":        "대화방을 골라 대화를 시작하세요.",
	"chat.composer":        "메시지",
	"chat.attach":          "파일이나 사진 첨부",
	"chat.uploads":         "보낼 파일",
	"chat.send":            "보내기",
	"chat.composerHint":    "Enter로 보내고 Shift+Enter로 줄을 바꿉니다.",
	"chat.leave":           "대화방 나가기",
	"members.title":        "참여자",
	"members.add":          "이 대화방에 사람 추가",
	"members.find":         "이름을 입력하세요…",
	"dialog.close":         "닫기",
	"chat.join":            "대화방 참여",
	"chat.messages":        "메시지",
	"chat.closeSearch":     "검색 닫기",
	"chat.searchResults":   "검색 결과",
	"chat.jumpLatest":      "최신 메시지로 이동",
	"room.dialogTitle":     "새 대화방",
	"room.name":            "대화방 이름",
	"room.topic":           "주제 (선택)",
	"room.private":         "비공개: 초대받은 사람만 볼 수 있음",
	"room.create":          "대화방 만들기",
	"dm.dialogTitle":       "새 1:1 대화",
	"dm.person":            "상대",
	"dm.start":             "대화 시작",
	"dialog.cancel":        "취소",
	"settings.title":       "설정",
	"settings.language":    "언어",
	"settings.langHint":    "이 브라우저에 적용됩니다.",
	"settings.notify":      "이 탭이 가려져 있을 때 나를 멘션하거나 1:1 메시지가 오면 브라우저 알림 받기",
	"settings.webhook":     "휴대폰 알림용 웹훅 URL (내부망의 ntfy 또는 Gotify)",
	"settings.webhookHint": "예: http://192.168.1.10/stompbox-alerts. 비워 두면 꺼집니다.",
	"settings.save":        "저장",
	"settings.back":        "대화로 돌아가기",
	"admin.title":          "관리",
	"admin.people":         "사용자",
	"admin.rooms":          "대화방",
	"admin.backup":         "백업",
	"admin.backupHint":     "전체 데이터베이스의 일관된 사본을 내려받습니다. 모든 메시지가 들어 있으니 안전한 곳에 보관하세요.",
	"admin.backupLink":     "백업 내려받기",
	"admin.signup":         "가입",
	"admin.signupHint":     "공개: 이 서버에 접속할 수 있는 누구나 계정을 만들 수 있습니다. 초대 전용: 관리자가 준 링크가 있어야 합니다.",
	"admin.signupOpen":     "공개 가입",
	"admin.signupInvite":   "초대 전용",
	"admin.createInvite":   "초대 링크 만들기",
	"admin.inviteLink":     "초대 링크 (한 번 사용)",
	"admin.colUser":        "아이디",
	"admin.colName":        "표시 이름",
	"admin.colRole":        "역할",
	"admin.colRoom":        "대화방",
	"admin.colKind":        "종류",
	"admin.colState":       "상태",
	"admin.forbidden":      "관리자만 이 페이지를 열 수 있습니다.",
	"embed.signIn":         "이 대화방에 참여하려면 stompbox에 로그인하세요.",
	"embed.signInLink":     "로그인 (새 탭에서 열림)",
	"embed.open":           "stompbox에서 열기",
	"lang.en":              "English",
	"lang.ko":              "한국어",
}
