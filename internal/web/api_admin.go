package web

import (
	"context"
	"net/http"
	"runtime"
	"runtime/metrics"
	"stompbox/internal/auth"
	"stompbox/internal/buildinfo"
	"stompbox/internal/proto"
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

// StatsSources is where the admin statistics come from. Each part is read
// through a function, so that web knows nothing of the broker, the SockJS
// endpoints or the cluster. A nil function or part is left out of the
// answer (tests build the API without some of them).
type StatsSources struct {
	Sessions       func() int                                         // the broker's STOMP sessions, every transport
	SockJSSessions func() int                                         // SockJS sessions, including HTTP ones awaiting their disconnect delay
	HeldSends      func() (sends uint64, waited time.Duration)        // SENDs held back by their rate (ratelimit.Limiter.HeldSends)
	Store          *store.Store                                       // the database writer's figures
	Gate           *auth.Gate                                         // the password-check queue
	Cluster        func(context.Context) (proto.ClusterStatus, error) // a cluster node's log status; nil on a single node
}

// adminStats serves GET /api/admin/stats from its sources.
type adminStats struct {
	src   StatsSources
	start time.Time
}

// NewAdminStats is called once, when the routes are built.
func NewAdminStats(src StatsSources) *adminStats {
	return &adminStats{src: src, start: time.Now()}
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
	if a.src.Sessions != nil {
		st.STOMPSessions = a.src.Sessions()
	}
	if a.src.HeldSends != nil {
		held, waited := a.src.HeldSends()
		st.Flow = proto.FlowStats{HeldSends: held, HeldSeconds: waited.Seconds()}
	}
	if g := a.src.Gate; g != nil {
		st.Passwords = &proto.GateStats{Slots: cap(g.Slots), Running: len(g.Slots), Waiting: g.Waiting.Load(), PeakWaiting: g.Peak.Load(), Busy: g.Busy.Load()}
	}
	if a.src.SockJSSessions != nil {
		st.SockJSSessions = a.src.SockJSSessions()
	}
	if a.src.Store != nil {
		ss := a.src.Store.Stats()
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
	if a.src.Cluster != nil {
		cs, err := a.src.Cluster(r.Context())
		if err != nil {
			// The stream's leader may be unreachable (no quorum): this
			// node's own position is still worth showing.
			cs.Leader = "unknown: " + err.Error()
		}
		st.Cluster = &cs
	}
	return writeAPIJSON(w, http.StatusOK, st)
}
