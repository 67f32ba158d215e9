// Package store owns the SQLite database in the data folder: its schema
// and migrations, the one writer and the read pool, every query, and the
// ops, the replayable form of every write (Op, RegisterOp, EncodeOp,
// DecodeOp). Accounts, sessions, tokens, rooms, messages, notifications
// and files are rows here; the rules about them live in the packages
// above.
//
// What it promises:
//   - A write returns nil only after its transaction committed (with
//     synchronous FULL, the default, on disk). If the caller's context
//     ends first, the outcome is unknown.
//   - One writer goroutine owns the only write connection. It commits
//     queued writes in groups, one transaction and one fsync per group;
//     a group that fails is retried write by write, so an error reaches
//     only the write that caused it.
//   - After each commit the writer runs the op's effects, on its own
//     goroutine, in commit order, before the writer answers the caller.
//   - Ops are deterministic (no clock, randomness or node-local state in
//     Apply), so replayed ops give the same database on every node. An op
//     kind is part of the log's format and is only ever added.
//   - Reads use a separate pool whose connections cannot write (query_only);
//     long reads go page by page, so no Rows stays open while a client is
//     written to.
//   - Close drains the writer, then checkpoints the WAL.
//   - Deletion deletes (scrub.go): every connection runs with
//     secure_delete, the full-text index with FTS5 secure-delete, and a
//     transaction that deleted or replaced text is followed by a TRUNCATE
//     checkpoint before its callers are answered (retried within 10 s if
//     readers block it), so the text is in no file of the data folder.
//     The blobs whose file rows it deleted go to OnBlobsReleased, on
//     every node that applies it. The database, -wal, -shm and the data
//     folder are made owner-only at open.
//   - Ops that grow the database (GrowsDisk) are put to the SpaceCheck
//     before they are submitted (space.go), never where they are applied.
//
// Interfaces it owns, which a higher package implements:
//   - Op (OpKind, Apply on a Tx): the store's own ops, and the chat's;
//   - the effects hook (Effects: Committed), attached with
//     SetEffects: implemented by chat.Service;
//   - the replicator (Replicator: Submit, WaitCaughtUp), attached with
//     SetReplicator: implemented by cluster.Log, which applies the log's
//     entries back through ApplyLogged;
//   - ResultLookup: a resent op that finds its original's result
//     (chat.PostOp);
//   - the disk hooks: SpaceCheck (SetSpaceCheck) and the released-blobs
//     hook (OnBlobsReleased), both attached by files.New.
//
// Login keys (logins.go) name the credentials a connection rests on; an
// op that ends one says so (LoginEnder), and EndedLogins checks live keys
// against the database.
//
// Of stompbox it imports only internal/apperr, internal/latency and
// internal/proto. It never imports the auth, chat, files, broker or
// cluster packages: they reach it through the interfaces above
// (layout_test.go).
package store
