package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"runtime/debug"
	"stompbox/internal/latency"
	"stompbox/internal/proto"
	"stompbox/internal/stomp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The load tool: "stompbox bench SCENARIO [options]" drives a STOMP server
// (stompbox, or any STOMP-over-WebSocket broker such as RabbitMQ web-stomp)
// over loopback and prints one line of results. See docs/benchmarks.md.
//
// Scenarios, each bounded by -duration and by a count:
//
//	fanout  1 publisher → -subs subscribers of -dest, -count messages of -size bytes
//	rooms   -conns people in -rooms chat rooms, each sending TALK every -interval
//	idle    -conns connections that CONNECT and SUBSCRIBE, then sit still
//	soak    chat rooms, a fan-out trickle and connection churn together for
//	        -duration, with the server's memory and goroutines sampled every
//	        -sample (soak.go)

// Defaults of the load tool, sized for a 2-core development machine.
const (
	benchDefaultURL      = "http://127.0.0.1:8080"
	DefaultDest          = "/topic/bench"
	benchDefaultSubs     = 100
	benchDefaultCount    = 10000 // fanout messages: enough for a stable p99 (100 samples above it per subscriber)
	DefaultSize          = 256   // bytes per fanout body, the figure; a chat line is smaller
	DefaultWindow        = 100   // a RECEIPT every 100 SENDs bounds what the publisher has in flight
	DefaultMaxLag        = 500   // the publisher waits when a subscriber is this far behind: under stompbox's 1,024-frame outbox, so a fast publisher measures throughput, not slow-consumer kicks
	benchDefaultDuration = 60 * time.Second
	benchDefaultConns    = 1000
	benchDefaultRooms    = 100
	benchDefaultInterval = 5 * time.Second // a fast human typist
	benchDefaultHold     = 5 * time.Second // idle: how long the connections are held before the check
	benchDialParallel    = 64              // connections opened at once; more only queues in the accept backlog
	benchDrainIdle       = 3 * time.Second // after the last send, stop waiting once nothing arrived this long
	benchPassword        = "bench-password-1"
)

// Config is everything a scenario needs; runBenchCommand fills it
// from flags and tests build it directly.
type Config struct {
	Scenario     string
	URL          string // http://127.0.0.1:PORT of the server, loopback only
	WSPath       string
	SockJSPath   string
	Transport    string
	PubTransport string   // fanout publisher's transport, "" = Transport
	PubURL       string   // fanout: the publisher's server, "" = URL (another node of a cluster)
	SubURLs      []string // fanout: subscribers spread evenly over these servers; rooms: people, in turn; nil = URL (a cluster's nodes)
	Dest         string
	Subs         int
	Count        int
	Size         int
	Window       int
	MaxLag       int
	Rate         float64 // fanout messages per second, 0 = as fast as the server takes them
	Duration     time.Duration
	Conns        int
	Rooms        int
	Users        int // rooms: accounts (0 = one per connection)
	Interval     time.Duration
	Hold         time.Duration
	Login        string
	Passcode     string
	VHost        string
	PID          int           // server process for CPU and RSS, 0 = none
	Label        string        // printed as server=…, to tell runs apart
	Sample       time.Duration // soak: time between samples
	Warmup       time.Duration // soak: samples before this are not the baseline (0 = a tenth of -duration, at most 2 minutes)
	ChurnRate    float64       // soak: churn cycles started per second
	SlowEvery    int           // soak: every this many churn cycles one is a slow consumer (0 = none)
	Out          io.Writer     // soak: where the sample lines go (runBenchCommand: stdout); nil = the progress writer
}

// benchReport is one scenario's result: printed as one line of key=value
// pairs in a fixed order, which scripts and the test parse.
type benchReport struct {
	kv []string
}

func (r *benchReport) add(key string, value any) {
	var s string
	switch v := value.(type) {
	case float64:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	case time.Duration:
		s = strconv.FormatFloat(float64(v)/float64(time.Millisecond), 'f', 3, 64)
	default:
		s = fmt.Sprint(v)
	}
	r.kv = append(r.kv, key+"="+s)
}

func (r *benchReport) String() string { return "bench " + strings.Join(r.kv, " ") }

// addLatency adds the latency fields in milliseconds.
func (r *benchReport) addLatency(h *latency.Hist) {
	r.add("samples", h.N)
	r.add("p50_ms", h.Quantile(0.50))
	r.add("p99_ms", h.Quantile(0.99))
	r.add("max_ms", h.Max)
}

// benchGCPercent is the load tool's GOGC unless the environment sets one.
// The tool shares the cores of the server it measures, and its own garbage
// collector disturbed what it measured: in a rooms run of 10,000
// connections (150 MB live), turning the tool's collector off took the
// reported p99 from 74 to 29 ms. Collecting four times less often costs
// the load machine memory, which it has, and leaves the server alone.
const benchGCPercent = 400

// TuneGC sets benchGCPercent for a "stompbox bench" process. Only run
// calls it: tests that run a scenario in-process keep their own setting.
func TuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(benchGCPercent)
	}
}

// Run is "stompbox bench": it parses args, runs the scenario
// and prints its report line to stdout; progress goes to stderr.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := ParseArgs(args, stderr)
	if err != nil {
		return err
	}
	cfg.Out = stdout
	limit := raiseFileLimit()
	fmt.Fprintf(stderr, "bench: %s over %s against %s (file limit %d)\n", cfg.Scenario, cfg.Transport, cfg.URL, limit)
	r, err := RunScenario(ctx, cfg, stderr)
	if r != nil {
		fmt.Fprintln(stdout, r)
	}
	return err
}

func ParseArgs(args []string, out io.Writer) (Config, error) {
	cfg := Config{}
	fs := flag.NewFlagSet("stompbox bench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.URL, "url", benchDefaultURL, "server base URL (loopback only)")
	fs.StringVar(&cfg.WSPath, "ws-path", "/ws", "raw STOMP WebSocket path")
	fs.StringVar(&cfg.SockJSPath, "sockjs-path", proto.DefaultSockJSPath, "SockJS endpoint path")
	fs.StringVar(&cfg.Transport, "transport", WS, "ws, sockjs-ws or sockjs-xhr")
	fs.StringVar(&cfg.PubTransport, "pub-transport", "", "fanout: the publisher's transport (default: -transport)")
	fs.StringVar(&cfg.PubURL, "pub-url", "", "fanout: the publisher's server, e.g. another node of a cluster (default: -url)")
	fs.Func("sub-urls", "fanout: comma-separated servers the subscribers are spread over; rooms: the servers the people are spread over, in turn (e.g. a cluster's nodes; default: -url)", func(v string) error {
		cfg.SubURLs = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
		return nil
	})
	fs.StringVar(&cfg.Dest, "dest", DefaultDest, "fanout and idle destination")
	fs.IntVar(&cfg.Subs, "subs", benchDefaultSubs, "fanout subscribers")
	fs.IntVar(&cfg.Count, "count", benchDefaultCount, "fanout: messages to publish; rooms: most TALK messages in all (0 = until -duration)")
	fs.IntVar(&cfg.Size, "size", DefaultSize, "fanout message body bytes")
	fs.IntVar(&cfg.Window, "window", DefaultWindow, "fanout: a RECEIPT is awaited every this many messages")
	fs.IntVar(&cfg.MaxLag, "max-lag", DefaultMaxLag, "fanout: most messages the slowest subscriber may be behind (0 = no bound)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "fanout messages per second (0 = as fast as the server takes them)")
	fs.DurationVar(&cfg.Duration, "duration", benchDefaultDuration, "upper bound on the run, setup excluded")
	fs.IntVar(&cfg.Conns, "conns", benchDefaultConns, "rooms, idle and logins: connections")
	fs.IntVar(&cfg.Rooms, "rooms", benchDefaultRooms, "rooms: chat rooms")
	fs.IntVar(&cfg.Users, "users", 0, "rooms: accounts shared by the connections (0 = one per connection)")
	fs.DurationVar(&cfg.Interval, "interval", benchDefaultInterval, "rooms: time between one person's messages")
	fs.DurationVar(&cfg.Hold, "hold", benchDefaultHold, "idle: how long to hold the connections")
	fs.StringVar(&cfg.Login, "login", "", "STOMP login (fanout, idle, logins), e.g. guest for RabbitMQ")
	fs.StringVar(&cfg.Passcode, "passcode", "", "STOMP passcode (fanout, idle, logins)")
	fs.StringVar(&cfg.VHost, "vhost", "/", "STOMP host header")
	fs.IntVar(&cfg.PID, "pid", 0, "server process ID, for its CPU time and memory from /proc")
	fs.StringVar(&cfg.Label, "label", "", "name printed as server=… in the report")
	fs.DurationVar(&cfg.Sample, "sample", benchSoakSample, "soak: time between sample lines")
	fs.DurationVar(&cfg.Warmup, "warmup", 0, "soak: warm-up before the first baseline sample (0 = a tenth of -duration, at most 2m)")
	fs.Float64Var(&cfg.ChurnRate, "churn-rate", benchSoakChurnRate, "soak: churn cycles (connect, subscribe, send, leave) started per second")
	fs.IntVar(&cfg.SlowEvery, "slow-every", benchSoakSlowEvery, "soak: every this many churn cycles one is a slow consumer that reads nothing (0 = none)")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: stompbox bench fanout|rooms|idle|soak|logins [options]\n\n"+
			"soak: without the flag, -duration is 30m, -conns 300, -rooms 30, -users 50,\n"+
			"-interval 3.5s, -subs 200 and -rate 5; it needs -pid. See docs/benchmarks.md.\n\nOptions:\n")
		fs.PrintDefaults()
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs.Usage()
		return cfg, errors.New("bench: name a scenario: fanout, rooms, idle, soak or logins")
	}
	cfg.Scenario = args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return cfg, err // flag.ErrHelp after -h: main exits 0 for it
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if cfg.Scenario == "rooms" && !given["count"] {
		cfg.Count = 0 // people talk until -duration; -count is the fanout default
	}
	if cfg.Scenario == "soak" {
		cfg.soakDefaults(given)
	}
	return cfg, cfg.validate()
}

// validate checks the bounds: positive sizes and a loopback server only.
func (c *Config) validate() error {
	switch c.Scenario {
	case "fanout", "rooms", "idle", "soak", "logins":
	default:
		return fmt.Errorf("bench: unknown scenario %q (fanout, rooms, idle, soak or logins)", c.Scenario)
	}
	if c.Duration <= 0 || c.Subs <= 0 || c.Conns <= 0 || c.Rooms <= 0 || c.Size < 0 || c.Window <= 0 || c.Interval <= 0 {
		return errors.New("bench: -duration, -subs, -conns, -rooms, -window and -interval must be positive")
	}
	if c.Scenario == "fanout" && c.Count <= 0 {
		return errors.New("bench: fanout needs a positive -count")
	}
	if c.Scenario == "soak" {
		if err := c.validateSoak(); err != nil {
			return err
		}
	}
	for _, raw := range append([]string{c.URL, c.PubURL}, c.SubURLs...) {
		if raw == "" {
			continue
		}
		if err := checkLoopbackURL(raw); err != nil {
			return err
		}
	}
	return nil
}

// checkLoopbackURL accepts http(s)://host:port URLs of this machine only.
func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("bench: -url must be http://host:port, not %q", raw)
	}
	ips, err := net.LookupIP(u.Hostname())
	if err != nil || len(ips) == 0 {
		return fmt.Errorf("bench: resolve %s: %v", u.Hostname(), err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("bench: %s is not a loopback address; the load tool only runs on this machine", u.Hostname())
		}
	}
	return nil
}

// RunScenario runs cfg's scenario and returns its report, which holds what
// was measured even when err is not nil.
func RunScenario(ctx context.Context, cfg Config, progress io.Writer) (*benchReport, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &benchReport{}
	r.add("scenario", cfg.Scenario)
	if cfg.Label != "" {
		r.add("server", cfg.Label)
	}
	r.add("transport", cfg.Transport)
	d := NewDialer(cfg.URL, cfg.WSPath, cfg.SockJSPath, cfg.Transport)
	defer d.closeIdle()
	var err error
	switch cfg.Scenario {
	case "fanout":
		err = runFanout(ctx, cfg, d, r, progress)
	case "rooms":
		err = runRooms(ctx, cfg, d, r, progress)
	case "idle":
		err = runIdle(ctx, cfg, d, r, progress)
	case "soak":
		err = runSoak(ctx, cfg, r, progress)
	case "logins":
		err = runLogins(ctx, cfg, d, r, progress)
	}
	return r, err
}

// ConnectFrame is the CONNECT every scenario sends: STOMP 1.2, no
// heart-beats (an idle connection must cost only its resting state).
func (c *Config) ConnectFrame() *stomp.Frame {
	f := &stomp.Frame{Command: stomp.CmdConnect}
	f.Add(stomp.HdrAcceptVersion, "1.2")
	f.Add(stomp.HdrHost, c.VHost)
	f.Add(stomp.HdrHeartBeat, "0,0")
	if c.Login != "" {
		f.Add(stomp.HdrLogin, c.Login)
		f.Add(stomp.HdrPasscode, c.Passcode)
	}
	return f
}

// serverMeter samples the server's /proc figures around a scenario.
type serverMeter struct {
	pid      int
	start    procStats
	resetHWM bool
}

func startServerMeter(pid int) *serverMeter {
	m := &serverMeter{pid: pid}
	if pid > 0 {
		m.resetHWM = resetPeakRSS(pid)
		m.start, _ = readProcStats(pid)
	}
	return m
}

// report adds the server's CPU seconds used since start, its peak RSS and
// its RSS now.
func (m *serverMeter) report(r *benchReport) procStats {
	if m.pid <= 0 {
		return procStats{}
	}
	ps, err := readProcStats(m.pid)
	if err != nil {
		r.add("server_error", strconv.Quote(err.Error()))
		return ps
	}
	r.add("server_cpu_s", (ps.CPU - m.start.CPU).Seconds())
	r.add("server_rss_peak_mib", float64(ps.HWM)/(1<<20))
	if !m.resetHWM {
		r.add("server_peak_is_lifetime", true)
	}
	r.add("server_rss_mib", float64(ps.RSS)/(1<<20))
	return ps
}

// DialMany opens n connections with at most benchDialParallel at once and
// calls setup on each (subscribe, say). It returns the connections that
// succeeded, indexed by number (nil where one failed), and the first error.
func DialMany(ctx context.Context, d *dialer, n int, cookie func(i int) string, connect *stomp.Frame, setup func(i int, c *Conn) error) ([]*Conn, int, error) {
	conns := make([]*Conn, n)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failed   int
		firstErr error
	)
	sem := make(chan struct{}, benchDialParallel)
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ck := ""
			if cookie != nil {
				ck = cookie(i)
			}
			c, err := d.dial(ctx, i, ck, connect)
			if err == nil && setup != nil {
				if err = setup(i, c); err != nil {
					c.close()
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = fmt.Errorf("connection %d: %w", i, err)
				}
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	return conns, failed, firstErr
}

// Subscribe sends SUBSCRIBE with a receipt and waits for the RECEIPT, on
// a connection whose reader has not started yet.
func Subscribe(ctx context.Context, c *Conn, id, dest string, extra ...stomp.Header) error {
	f := &stomp.Frame{Command: stomp.CmdSubscribe, Headers: append([]stomp.Header{{Key: stomp.HdrID, Value: id}, {Key: stomp.HdrDestination, Value: dest}, {Key: stomp.HdrAck, Value: "auto"}, {Key: stomp.HdrReceipt, Value: "sub-" + id}}, extra...)}
	if err := c.write(ctx, f); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	for {
		f, err := c.read(ctx)
		if err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
		switch f.Command {
		case stomp.CmdReceipt:
			return nil
		case stomp.CmdError:
			return fmt.Errorf("subscribe refused: %s", f.Value(stomp.HdrMessage))
		}
	}
}

// CloseAll closes every non-nil connection, benchDialParallel at a time.
func CloseAll(conns []*Conn) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, benchDialParallel)
	for _, c := range conns {
		if c == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.close()
		}()
	}
	wg.Wait()
}
