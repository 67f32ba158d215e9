package main

// This file is the harness for tests that drive the real JavaScript clients
// (@stomp/stompjs over ws or sockjs-client) in Node, from scripts kept in
// testdata/stompjs. The packages come from package-lock.json via `npm ci`.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nodeScriptDir holds the scripts runNode runs. Node resolves their imports by
// walking up to the repository's node_modules.
const nodeScriptDir = "testdata/stompjs"

// nodeScriptTimeout bounds one script. A client run against a -race server on
// a busy 2-core CI machine takes seconds; a script that hangs (a missing
// RECEIPT, a socket never closed) must fail with its output, not stall the
// suite until go test's own timeout.
const nodeScriptTimeout = 2 * time.Minute

// nodeKillGrace is how long runNode waits for the output pipes after killing a
// timed-out node, in case a grandchild still holds them.
const nodeKillGrace = 5 * time.Second

// nodeRequirements returns the node executable, or calls skipOrFail when node
// or the installed client packages are missing.
func nodeRequirements(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "node not found: %v", err)
	}
	if _, err := os.Stat(filepath.Join("node_modules", "@stomp", "stompjs", "package.json")); err != nil {
		skipOrFail(t, "node_modules/@stomp/stompjs missing (run npm ci): %v", err)
	}
	return node
}

// runNode runs `node testdata/stompjs/<script>` from the repository root with
// the test's environment plus env ("KEY=value" entries, which win over
// inherited ones), and returns its stdout. Stderr is logged; a non-zero exit
// or running past nodeScriptTimeout fails the test with stderr and stdout.
// Without node or npm-installed packages the test is skipped, or fails when
// CI=true.
//
// runNode blocks until the script exits; the script owns its connections and
// must close them so that node exits. Safe to call from parallel tests.
func runNode(t *testing.T, script string, env ...string) string {
	t.Helper()
	node := nodeRequirements(t)
	path := filepath.Join(nodeScriptDir, script)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("node script: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), nodeScriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, path)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = nodeKillGrace
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr

	start := time.Now()
	err := cmd.Run()
	if s := strings.TrimSpace(stderr.String()); s != "" && err == nil {
		t.Logf("node %s stderr:\n%s", script, s)
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = errors.Join(err, ctx.Err())
		}
		t.Fatalf("node %s: %v after %v\nstderr:\n%s\nstdout:\n%s",
			script, err, time.Since(start).Round(time.Millisecond), stderr.String(), stdout.String())
	}
	return stdout.String()
}

// TestNodeHarness proves runNode and the locked packages: selftest.mjs imports
// @stomp/stompjs, ws and sockjs-client, connects a stompjs Client over ws to a
// fake server in the script, and prints the installed versions, which must be
// the exact ones package.json pins.
func TestNodeHarness(t *testing.T) {
	t.Parallel()
	out := runNode(t, "selftest.mjs", "STOMPBOX_SELFTEST=passed-through")

	var got struct {
		Versions         map[string]string `json:"versions"`
		Types            map[string]string `json:"types"`
		ConnectedVersion string            `json:"connectedVersion"`
		Env              string            `json:"env"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("decode selftest output %q: %v", out, err)
	}

	raw, err := os.ReadFile("package.json")
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		t.Fatalf("decode package.json: %v", err)
	}
	for _, name := range []string{"@stomp/stompjs", "sockjs-client", "ws"} {
		if want := pkg.DevDependencies[name]; got.Versions[name] != want || want == "" {
			t.Errorf("%s version = %q, package.json pins %q", name, got.Versions[name], want)
		}
	}
	for name, typ := range got.Types {
		if typ != "function" {
			t.Errorf("typeof %s = %q, want function", name, typ)
		}
	}
	if len(got.Types) != 3 {
		t.Errorf("types = %v, want Client, WebSocket and SockJS", got.Types)
	}
	if got.ConnectedVersion != "1.2" {
		t.Errorf("CONNECTED version = %q, want 1.2", got.ConnectedVersion)
	}
	if got.Env != "passed-through" {
		t.Errorf("env STOMPBOX_SELFTEST = %q, want passed-through", got.Env)
	}
}
