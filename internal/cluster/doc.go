// Package cluster makes several nodes one chat. It owns this node's
// connection to NATS (an embedded server routed to the peers, or an
// existing NATS with JetStream), the replicated log of the store's writes
// (Log, a JetStream stream), the bus that carries the broker's traffic
// between nodes (Bus, on core NATS), the object store that keeps uploaded
// files on several nodes (ObjectBlobs), the database snapshots and the
// log's compaction (Snapshots, Compactor), membership changes (RemovePeer)
// and the cluster's status.
//
// What it promises:
//   - The routes between embedded servers are TLS with both ends
//     authenticated by a CA derived from the shared secret, or by the
//     administrator's CA (routetls.go); the secret never crosses the
//     wire. Only -cluster-insecure makes them plaintext, with a warning.
//   - Log.Submit returns only once a quorum stored the op and this node
//     applied it: a RECEIPT after it means the message is on the
//     majority's disks and in this node's database.
//   - Every node applies every op of the log, in log order, to its own
//     store (store.Store.ApplyLogged), recording the applied position in
//     the same transaction; after a commit the op's effects deliver to
//     that node's own clients.
//   - A node reads the log by sequence from any replica (log_reader.go):
//     the loss of another single node does not stop its applier beyond
//     the quorum's own leader election.
//   - An entry this binary cannot apply (a newer log format, an unknown
//     kind) is never skipped: the applier stops before it, writes are
//     refused, reads go on (log_format.go).
//   - Log.Start returns only once the node caught up with the log as it
//     was (or stopped at an entry it cannot apply): a node serves no
//     client before.
//   - An op resent with the same de-duplication key within the window is
//     stored once; the resender gets the original's result.
//   - The log is compacted below a snapshot of a node's database that the
//     object store holds whole (snapshot*.go); a new node, or one that was
//     away through a compaction, restores it and applies the tail. After a
//     compaction every node scrubs its database and raft logs, so deleted
//     text leaves every node's disk.
//   - ObjectBlobs.Put does the same work whether or not the object store
//     holds the blob already (the bytes go to a scratch bucket, stored
//     alike, then purged): an upload's time does not tell whether someone
//     else uploaded the same bytes (blobs.go).
//   - The bus delivers what the broker does not store (topics, queues,
//     user destinations, presence) at most once, as NATS core does; a
//     topic message takes one path, through NATS, on every node, this one
//     included. Stored chat messages never travel on the bus.
//
// Interfaces it implements, owned by lower packages:
//   - broker.Bus: Bus (attached by NewBus);
//   - the store's replicator (Submit, WaitCaughtUp): Log, attached with
//     store.Store.SetReplicator;
//   - files.Replica: ObjectBlobs, by its method set (the cluster does not
//     import files).
//
// It owns no interface. Of stompbox it imports only internal/apperr,
// internal/broker, internal/chat, internal/proto, internal/stomp and
// internal/store. It never imports the files, the glue, the transports or
// the web layer (layout_test.go).
package cluster
