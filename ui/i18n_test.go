package ui

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDictionariesMatch keeps the Go dictionaries complete in both languages.
func TestDictionariesMatch(t *testing.T) {
	en, ko := slices.Sorted(maps.Keys(englishTexts)), slices.Sorted(maps.Keys(koreanTexts))
	if !slices.Equal(en, ko) {
		t.Errorf("keys differ:\nen %v\nko %v", en, ko)
	}
	for k, v := range koreanTexts {
		if strings.TrimSpace(v) == "" {
			t.Errorf("ko %q is empty", k)
		}
	}
}

// TestJSDictionariesMatch reads static/i18n.js and checks that both language
// blocks have the same keys and the same {placeholders} per key.
func TestJSDictionariesMatch(t *testing.T) {
	src, err := os.ReadFile("static/i18n.js")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(src), "en: Object.freeze({")
	enBlock, koBlock, ok2 := strings.Cut(rest, "ko: Object.freeze({")
	if !ok || !ok2 {
		t.Fatal("i18n.js: en and ko blocks not found")
	}
	entry := regexp.MustCompile(`"([a-zA-Z.]+)":\s*"((?:[^"\\]|\\.)*)"`)
	placeholders := regexp.MustCompile(`\{\w+\}`)
	parse := func(block string) map[string]string {
		m := map[string]string{}
		for _, e := range entry.FindAllStringSubmatch(block, -1) {
			ph := placeholders.FindAllString(e[2], -1)
			slices.Sort(ph)
			m[e[1]] = strings.Join(ph, ",")
		}
		return m
	}
	en, ko := parse(enBlock), parse(koBlock)
	if len(en) < 10 {
		t.Fatalf("only %d English entries parsed", len(en))
	}
	if !maps.Equal(en, ko) {
		for k := range en {
			if _, ok := ko[k]; !ok {
				t.Errorf("ko lacks %q", k)
			} else if en[k] != ko[k] {
				t.Errorf("%q placeholders: en %q, ko %q", k, en[k], ko[k])
			}
		}
		for k := range ko {
			if _, ok := en[k]; !ok {
				t.Errorf("en lacks %q", k)
			}
		}
	}
}

func TestMatchLang(t *testing.T) {
	tests := []struct{ cookie, accept, fallback, want string }{
		{"", "", "", "en"},
		{"", "", "ko", "ko"},
		{"", "", "de", "en"},
		{"ko", "en", "en", "ko"},
		{"", "ko-KR,ko;q=0.9", "en", "ko"},
		{"", "fr, en;q=0.5, ko;q=0.7", "en", "ko"},
		{"", "fr", "ko", "ko"},
		{"", "EN-gb", "ko", "en"},
		{"zz", "ko", "en", "ko"},
	}
	for _, tt := range tests {
		if got := MatchLang(tt.cookie, tt.accept, tt.fallback); got != tt.want {
			t.Errorf("MatchLang(%q, %q, %q) = %q, want %q", tt.cookie, tt.accept, tt.fallback, got, tt.want)
		}
	}
}

// TestServerTextsTranslated checks app.js's SERVER_TEXTS: every server error
// text it knows maps to a key that i18n.js has, so a Korean page never falls
// back to the English text or the generic error for a known message.
func TestServerTextsTranslated(t *testing.T) {
	app, err := os.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	dict, err := os.ReadFile("static/i18n.js")
	if err != nil {
		t.Fatal(err)
	}
	_, list, ok := strings.Cut(string(app), "const SERVER_TEXTS = [")
	list, _, ok2 := strings.Cut(list, "];")
	if !ok || !ok2 {
		t.Fatal("app.js: SERVER_TEXTS not found")
	}
	pairs := regexp.MustCompile(`\["((?:[^"\\]|\\.)*)", "([a-zA-Z.]+)"\]`).FindAllStringSubmatch(list, -1)
	if len(pairs) < 10 {
		t.Fatalf("only %d server texts parsed", len(pairs))
	}
	for _, p := range pairs {
		if !strings.Contains(string(dict), `"`+p[2]+`":`) {
			t.Errorf("server text %q maps to %q, which i18n.js lacks", p[1], p[2])
		}
	}
}
