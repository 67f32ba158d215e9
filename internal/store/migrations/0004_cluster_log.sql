-- A cluster node's position in the replicated log (cluster_log.go): the
-- last log entry applied to this database, written in the same
-- transaction as the entry's changes, so a crash never applies one twice
-- or skips one. A single node never writes it.
CREATE TABLE cluster_log (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    applied_seq INTEGER NOT NULL
);
