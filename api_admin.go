package main

import (
	"net/http"
	"runtime"
	"runtime/metrics"
	"stompbox/internal/auth"
	"stompbox/internal/broker"
	"stompbox/internal/cluster"
	"stompbox/internal/latency"
	"stompbox/internal/ratelimit"
	"stompbox/internal/sockjs"
	"stompbox/internal/store"
	"time"
)

// Runtime figures GET /api/admin/stats reads, by their runtime/metrics
// names. runtime/metrics rather than runtime.ReadMemStats: Read does not
// stop the world, so polling the endpoint costs the chat nothing.
const (
	metricHeapObjects = "/memory/classes/heap/objects:bytes" // live and not yet swept objects: MemStats.HeapAlloc
	metricHeapUnused  = "/memory/classes/heap/unused:bytes"  // free room inside in-use spans; objects + unused = MemStats.HeapInuse
	metricStacks      = "/memory/classes/heap/stacks:bytes"  // goroutine stacks: grows with leaked goroutines
	metricTotal       = "/memory/classes/total:bytes"        // everything the runtime mapped: MemStats.Sys
	metricGCCycles    = "/gc/cycles/total:gc-cycles"         // MemStats.NumGC
)

// adminStatsJSON is the body of GET /api/admin/stats. The soak scenario of
// the load tool (loadtool_soak.go) polls it to tell a leak from a plateau.
type adminStatsJSON struct {
	Goroutines     int             `json:"goroutines"`       // runtime.NumGoroutine
	HeapAllocBytes uint64          `json:"heap_alloc_bytes"` // bytes of heap objects
	HeapInuseBytes uint64          `json:"heap_inuse_bytes"` // bytes of in-use heap spans
	StackBytes     uint64          `json:"stack_bytes"`      // bytes of goroutine stacks
	SysBytes       uint64          `json:"sys_bytes"`        // bytes mapped by the Go runtime
	NumGC          uint64          `json:"num_gc"`           // completed GC cycles
	STOMPSessions  int             `json:"stomp_sessions"`   // broker sessions, every transport
	SockJSSessions int             `json:"sockjs_sessions"`  // SockJS sessions, including HTTP ones awaiting their disconnect delay
	UptimeS        float64         `json:"uptime_s"`         // seconds since the routes were built (server start)
	Version        string          `json:"version"`
	Store          *storeStatsJSON `json:"store,omitempty"` // the database writer, since start
	Flow           flowStatsJSON   `json:"flow"`            // SENDs held back by their rate, since start
	Passwords      *gateStatsJSON  `json:"passwords,omitempty"`
	Cluster        *cluster.Status `json:"cluster,omitempty"` // cluster nodes only: the log and this node's place in it
}

// flowStatsJSON says how much the SEND rates slowed clients down: many held
// SENDs with little held time are bursts just over the rate; long held times
// are a client (a bot, a script) that sends faster than -send-rate or
// -user-send-rate allow.
type flowStatsJSON struct {
	HeldSends   uint64  `json:"held_sends"`   // SEND frames that waited for their rate
	HeldSeconds float64 `json:"held_seconds"` // their waits added up
}

// gateStatsJSON is the password-check queue (passgate.go), since start.
type gateStatsJSON struct {
	Slots       int    `json:"slots"`        // checks that may run at once (cores)
	Running     int    `json:"running"`      // running now
	Waiting     int64  `json:"waiting"`      // waiting for a slot now
	PeakWaiting int64  `json:"peak_waiting"` // most that waited at once
	Busy        uint64 `json:"busy"`         // refused "server busy, retry"
}

// storeStatsJSON is the writer's part of GET /api/admin/stats. Commits
// long against waits short mean a slow disk; waits long against commits
// short mean a queue: more writes than one writer can take.
type storeStatsJSON struct {
	Transactions int64            `json:"transactions"` // committed write transactions
	Writes       int64            `json:"writes"`       // requests they held: Writes/Transactions is the mean group
	Retried      int64            `json:"retried"`      // groups that failed and were retried one by one
	Commit       latency.Snapshot `json:"commit"`       // each transaction, BEGIN to COMMIT returned, fsync included
	Wait         latency.Snapshot `json:"wait"`         // each request (a chat message is one), from being queued to its commit returning
}

// adminStats serves GET /api/admin/stats: the process's goroutine count,
// Go memory figures and session counts, for administrators only (the api's
// admin wrapper gives 401 without a login, 403 to other users). It is
// safe for concurrent use: it only reads the broker's and the SockJS
// servers' counters under their own locks and allocates its samples per
// request.
type adminStats struct {
	broker  *broker.Broker
	limiter *ratelimit.Limiter // nil in tests that have none
	sockjs  []*sockjs.Server
	store   *store.Store // nil in tests that have none
	gate    *auth.Gate   // nil in tests that have none
	clog    *cluster.Log // nil on a single node
	start   time.Time
}

// newAdminStats is called once, when the routes are built.
func newAdminStats(b *broker.Broker, lim *ratelimit.Limiter, sj []*sockjs.Server, st *store.Store, gate *auth.Gate) *adminStats {
	return &adminStats{broker: b, limiter: lim, sockjs: sj, store: st, gate: gate, start: time.Now()}
}

// read gathers the figures.
func (a *adminStats) read() adminStatsJSON {
	samples := []metrics.Sample{{Name: metricHeapObjects}, {Name: metricHeapUnused}, {Name: metricStacks}, {Name: metricTotal}, {Name: metricGCCycles}}
	metrics.Read(samples)
	val := func(i int) uint64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0 // a name this Go release does not know
		}
		return samples[i].Value.Uint64()
	}
	st := adminStatsJSON{
		Goroutines:     runtime.NumGoroutine(),
		HeapAllocBytes: val(0),
		HeapInuseBytes: val(0) + val(1),
		StackBytes:     val(2),
		SysBytes:       val(3),
		NumGC:          val(4),
		UptimeS:        time.Since(a.start).Seconds(),
		Version:        buildVersion,
	}
	if a.broker != nil {
		st.STOMPSessions = a.broker.SessionCount()
		if l := a.limiter; l != nil {
			held, waited := l.HeldSends()
			st.Flow = flowStatsJSON{HeldSends: held, HeldSeconds: waited.Seconds()}
		}
	}
	if g := a.gate; g != nil {
		st.Passwords = &gateStatsJSON{Slots: cap(g.Slots), Running: len(g.Slots), Waiting: g.Waiting.Load(), PeakWaiting: g.Peak.Load(), Busy: g.Busy.Load()}
	}
	for _, sj := range a.sockjs {
		st.SockJSSessions += sj.Sessions()
	}
	if a.store != nil {
		ss := a.store.Stats()
		st.Store = &storeStatsJSON{
			Transactions: ss.Transactions, Writes: ss.Writes, Retried: ss.Retried,
			Commit: ss.Commit.Snapshot(), Wait: ss.Wait.Snapshot(),
		}
	}
	return st
}

// serve is the authedFunc; wrap it in api.admin.
func (a *adminStats) serve(w http.ResponseWriter, r *http.Request, u store.User) error {
	st := a.read()
	if a.clog != nil {
		cs, err := a.clog.Status(r.Context())
		if err != nil {
			// The stream's leader may be unreachable (no quorum): this
			// node's own position is still worth showing.
			cs.Leader = "unknown: " + err.Error()
		}
		st.Cluster = &cs
	}
	return writeAPIJSON(w, http.StatusOK, st)
}
