package web

import (
	"net/http"
	"runtime"
	"runtime/metrics"
	"stompbox/internal/auth"
	"stompbox/internal/broker"
	"stompbox/internal/buildinfo"
	"stompbox/internal/cluster"
	"stompbox/internal/proto"
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
	Clog    *cluster.Log // nil on a single node
	start   time.Time
}

// NewAdminStats is called once, when the routes are built.
func NewAdminStats(b *broker.Broker, lim *ratelimit.Limiter, sj []*sockjs.Server, st *store.Store, gate *auth.Gate) *adminStats {
	return &adminStats{broker: b, limiter: lim, sockjs: sj, store: st, gate: gate, start: time.Now()}
}

// read gathers the figures.
func (a *adminStats) read() proto.AdminStats {
	samples := []metrics.Sample{{Name: metricHeapObjects}, {Name: metricHeapUnused}, {Name: metricStacks}, {Name: metricTotal}, {Name: metricGCCycles}}
	metrics.Read(samples)
	val := func(i int) uint64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0 // a name this Go release does not know
		}
		return samples[i].Value.Uint64()
	}
	st := proto.AdminStats{
		Goroutines:     runtime.NumGoroutine(),
		HeapAllocBytes: val(0),
		HeapInuseBytes: val(0) + val(1),
		StackBytes:     val(2),
		SysBytes:       val(3),
		NumGC:          val(4),
		UptimeS:        time.Since(a.start).Seconds(),
		Version:        buildinfo.Version(),
	}
	if a.broker != nil {
		st.STOMPSessions = a.broker.SessionCount()
		if l := a.limiter; l != nil {
			held, waited := l.HeldSends()
			st.Flow = proto.FlowStats{HeldSends: held, HeldSeconds: waited.Seconds()}
		}
	}
	if g := a.gate; g != nil {
		st.Passwords = &proto.GateStats{Slots: cap(g.Slots), Running: len(g.Slots), Waiting: g.Waiting.Load(), PeakWaiting: g.Peak.Load(), Busy: g.Busy.Load()}
	}
	for _, sj := range a.sockjs {
		st.SockJSSessions += sj.Sessions()
	}
	if a.store != nil {
		ss := a.store.Stats()
		st.Store = &proto.StoreStats{
			Transactions: ss.Transactions, Writes: ss.Writes, Retried: ss.Retried,
			Commit: ss.Commit.Snapshot(), Wait: ss.Wait.Snapshot(),
		}
	}
	return st
}

// Serve is the authedFunc; wrap it in api.admin.
func (a *adminStats) Serve(w http.ResponseWriter, r *http.Request, u store.User) error {
	st := a.read()
	if a.Clog != nil {
		cs, err := a.Clog.Status(r.Context())
		if err != nil {
			// The stream's leader may be unreachable (no quorum): this
			// node's own position is still worth showing.
			cs.Leader = "unknown: " + err.Error()
		}
		st.Cluster = &cs
	}
	return writeAPIJSON(w, http.StatusOK, st)
}
