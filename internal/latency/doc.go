// Package latency owns the latency histogram (Hist): log-linear buckets in
// microseconds, exact below 128 µs and within about 1.6 % above, in fixed
// memory whatever the run length, and its JSON form (Snapshot). The store
// counts its commit times in one and the load tool its end-to-end
// latencies, so that the tool can read the server's figures for its own
// run window (proto.AdminStats carries the snapshot).
//
// What it promises: a Hist never grows. It is not safe for concurrent
// use: callers shard it or hold a lock (HistShards).
//
// It owns no interface. It is a leaf: it imports no package of stompbox
// (layout_test.go).
package latency
