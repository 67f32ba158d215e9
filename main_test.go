package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"slices"
	"stompbox/internal/broker"
	"stompbox/internal/stomp"
	"strings"
	"testing"
	"time"
)

// updateGolden rewrites the golden files under testdata/ instead of comparing
// with them. Other golden tests in the package should share this flag: a
// second flag named "update" would panic at start-up.
var updateGolden = flag.Bool("update", false, "rewrite golden files under testdata/")

func TestParseConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(Config) bool
		wantErr string
	}{
		{"defaults", nil, nil, func(c Config) bool {
			return c.Addr == ":8080" && c.MaxFrame == stomp.DefaultMaxFrame && c.HeartBeat == broker.DefaultHeartBeat && c.StompAddr == "" && !c.NoBrowser
		}, ""},
		{"flags", []string{"-addr", "127.0.0.1:9", "--stomp-addr=127.0.0.1:61613", "-no-browser", "-allowed-origins", "https://a.example, https://*.b.example"}, nil, func(c Config) bool {
			return c.Addr == "127.0.0.1:9" && c.StompAddr == "127.0.0.1:61613" && c.NoBrowser && len(c.AllowedOrigins) == 2
		}, ""},
		{"environment", nil, map[string]string{"STOMPBOX_ADDR": ":9999", "STOMPBOX_HEARTBEAT": "0", "STOMPBOX_MAX_FRAME": "1024"}, func(c Config) bool {
			return c.Addr == ":9999" && c.HeartBeat == 0 && c.MaxFrame == 1024
		}, ""},
		{"flag beats environment", []string{"-addr", ":1"}, map[string]string{"STOMPBOX_ADDR": ":2"}, func(c Config) bool { return c.Addr == ":1" }, ""},
		{"bad number", []string{"-max-frame", "lots"}, nil, nil, "max-frame"},
		{"bad environment", nil, map[string]string{"STOMPBOX_HEARTBEAT": "soon"}, nil, "heartbeat"},
		{"stray argument", []string{"serve"}, nil, nil, "unexpected argument"},
		{"cluster urls", []string{"-cluster-urls", "http://pi1:8080/, https://pi2.example"}, nil, func(c Config) bool {
			return slices.Equal(c.Cluster.URLs, []string{"http://pi1:8080", "https://pi2.example"})
		}, ""},
		{"cluster url without scheme", []string{"-cluster-urls", "pi1:8080"}, nil, nil, "not a node's web address"},
		{"cluster url with a path query", nil, map[string]string{"STOMPBOX_CLUSTER_URLS": "http://pi1:8080/?x=1"}, nil, "not a node's web address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			c, err := parseConfig(tt.args, env(tt.env), &out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(c) {
				t.Fatalf("config %+v, err %v", c, err)
			}
		})
	}
}

// TestHelpMatchesReadme keeps the README's option table and -h in step:
// both come from the options table.
func TestHelpMatchesReadme(t *testing.T) {
	var out bytes.Buffer
	if _, err := parseConfig([]string{"-h"}, func(string) string { return "" }, &out); err != errHelp {
		t.Fatalf("err %v", err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	want.WriteString("<!-- options:start -->\n| flag | environment | default | meaning |\n|---|---|---|---|\n")
	for _, o := range options {
		def := ""
		if o.def != "" {
			def = "`" + o.def + "`"
		}
		fmt.Fprintf(&want, "| `-%s` | `%s` | %s | %s |\n", o.name, envName(o.name), def, o.usage)
		if !strings.Contains(out.String(), "-"+o.name) || !strings.Contains(out.String(), envName(o.name)) {
			t.Errorf("-h does not list -%s and %s", o.name, envName(o.name))
		}
	}
	want.WriteString("<!-- options:end -->")
	if *updateGolden {
		start := strings.Index(string(readme), "<!-- options:start -->")
		end := strings.Index(string(readme), "<!-- options:end -->") + len("<!-- options:end -->")
		readme = []byte(string(readme[:start]) + want.String() + string(readme[end:]))
		if err := os.WriteFile("README.md", readme, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(string(readme), want.String()) {
		t.Errorf("README option table is out of date (go test -run TestHelpMatchesReadme -update); it should read:\n%s", want.String())
	}
	if !strings.HasPrefix(string(readme), "# stompbox\n\n```sh\ngo run .") {
		t.Error("README must open with the run command")
	}
}

func TestVersionFlag(t *testing.T) {
	var out bytes.Buffer
	if _, err := parseConfig([]string{"--version"}, func(string) string { return "" }, &out); err != errHelp || !strings.Contains(out.String(), "stompbox ") {
		t.Fatalf("err %v out %q", err, out.String())
	}
}

func TestServerURL(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.StompAddr = "" })
	if u := srv.URL(); !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Fatalf("URL %q", u)
	}
	if srv.TCPAddr() != "" {
		t.Fatal("TCP listener started without --stomp-addr")
	}
	_ = time.Second
}
