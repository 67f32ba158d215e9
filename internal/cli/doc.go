// Package cli owns the subcommands that work without a running server, or
// beside one: "stompbox user add|passwd|del|token|list" (accounts, for a
// headless machine), "stompbox backup FILE" (a consistent copy of the
// database and the uploaded files it names), and "stompbox cluster
// status" (which asks a running node over HTTP, with an administrator's
// API token).
//
// What it promises: user and backup are safe while a server runs on the
// same data folder. SQLite's WAL and busy timeout serialise the writes,
// each command holds the write lock only for its own short transaction,
// and it closes the database with a passive checkpoint, which never waits
// for the server's readers.
//
// It owns no interface. Of stompbox it imports only internal/apperr,
// internal/auth, internal/files, internal/proto and internal/store. It
// never imports the cluster, the broker or the web layer: cluster status
// reads the admin statistics as JSON (proto), and main refuses "user" on
// a cluster node's data folder (layout_test.go).
package cli
