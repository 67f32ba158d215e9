// Command stompbox is a team chat in one binary: browsers speak STOMP over
// WebSocket or SockJS, an in-memory broker routes their frames, and chat
// messages are stored in SQLite before they are delivered. Several nodes
// can make one chat over NATS.
//
// This package holds only the design's faces, each a thin wiring of a part
// that lives in an internal/ package:
//
//	main.go    options, run, the start steps and their unwinding, the shutdown order, the HTTP routes
//	broker.go  the broker (internal/broker), its chat glue (internal/chatstomp) and, on a cluster node, its bus (internal/cluster)
//	stomp.go   where STOMP frames enter: WebSocket at /ws, TCP or TLS at -stomp-addr (internal/transport)
//	sockjs.go  the SockJS endpoints (internal/sockjs) and the SockJS test server
//	store.go   the database (internal/store), the cluster's log (internal/cluster), retention and the file sweep
//
// docs/ARCHITECTURE.md draws the packages and their arrows, and walks one
// chat message through them; layout_test.go holds the allowed imports.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"stompbox/internal/auth"
	"stompbox/internal/bench"
	"stompbox/internal/broker"
	"stompbox/internal/buildinfo"
	"stompbox/internal/certs"
	"stompbox/internal/chat"
	"stompbox/internal/chatstomp"
	"stompbox/internal/cli"
	"stompbox/internal/cluster"
	"stompbox/internal/desktop"
	"stompbox/internal/files"
	"stompbox/internal/metrics"
	"stompbox/internal/proto"
	"stompbox/internal/ratelimit"
	"stompbox/internal/service"
	"stompbox/internal/sockjs"
	"stompbox/internal/stomp"
	"stompbox/internal/store"
	"stompbox/internal/transport"
	"stompbox/internal/web"
	"stompbox/ui"
)

// Defaults of the options that are not broker limits (those are in broker.go).
const (
	defaultAddr            = ":8080"
	defaultDataDir         = "stompbox-data"
	shutdownTimeout        = 10 * time.Second // SIGTERM to exit, worst case
	readHeaderTimeout      = 10 * time.Second // slowloris guard for plain HTTP
	defaultHTTPBodyTimeout = 30 * time.Second // -http-body-timeout: a request body (an upload: plus its size at uploadMinRate)
	defaultHTTPIdleTimeout = 60 * time.Second // -http-idle-timeout: a keep-alive connection between requests
	defaultHTTPConnsPerIP  = 64               // -max-http-conns-per-ip: a few browsers' tabs (six connections and a WebSocket each) behind one address
	uploadMinRate          = 16 << 10         // bytes a second an upload must average past -http-body-timeout
	defaultShutdownMessage = "server shutting down"
	logFormatText          = "text" // slog's key=value lines, for people reading a terminal
	logFormatJSON          = "json" // one JSON object a line, for journald fields or a log collector
)

// buildVersion is this build's version (internal/buildinfo: stamped by
// scripts/release.sh, "dev" otherwise), as the -h header, the start log, the
// STOMP server header and the admin statistics show it.
var buildVersion = buildinfo.Version()

// Config is everything run needs. Tests build one directly.
type Config struct {
	Addr             string
	DataDir          string
	StompAddr        string
	MetricsAddr      string // GET /metrics without a login on its own listener; "": none (the main port serves it to administrators)
	AllowedOrigins   []string
	NoBrowser        bool
	MaxFrame         int
	MaxConnections   int
	MaxSubscriptions int
	MaxUserSubs      int // most subscriptions per user over all connections; 0: no limit
	MaxMessage       int // most characters in one chat message; 0: maxMessageRunes
	MaxRoomsPerUser  int // most rooms one account may create; 0: no limit
	EditMinutes      int // how long authors may edit a message, in minutes; 0: forever
	HeartBeat        time.Duration
	SockJSPaths      []string
	SockJSHeartbeat  time.Duration
	SockJSDelay      time.Duration
	SockJSCookie     bool
	Lang             string
	AllowGuests      bool
	KeepDays         int
	Synchronous      string
	MemoryLimitMiB   int // soft limit for the Go runtime in MiB; 0: the runtime's own (GOMEMLIMIT)
	EmbedOrigins     []string
	LogLevel         slog.Level
	LogFormat        string // logFormatText or logFormatJSON
	TLSCert          string // PEM certificate (chain) file; with TLSKey serves HTTPS
	TLSKey           string
	TLSSelfSigned    bool // make and keep a self-signed certificate in DataDir (internal/certs)
	RateLimits       ratelimit.Limits
	MaxUploadMiB     int            // largest upload in MiB (-max-upload); 0: defaultMaxUploadMiB
	UploadQuotaMiB   int            // most MiB of uploads one account keeps (-upload-quota); 0: no limit
	QueueMiB         int            // -queue-mib: bytes held for unconsumed /queue/ messages, all queues; 0: the broker's default, -1: no limit
	QueueMiBPerQueue int            // -queue-mib-per-queue; 0: the broker's default, -1: no limit
	MaxQueues        int            // -max-queues; 0: the broker's default, -1: no limit
	QueueTTL         time.Duration  // -queue-ttl: longest a held queue message waits; 0: the broker's default
	MemoryMarkMiB    int            // -memory-mark: Go heap above which publishers are held; 0: the broker's default, -1: off
	NoAnonQueues     bool           // set from -anonymous-queues=false (the default); false (tests' zero Config) lets anonymous sessions use /queue/
	FilesMaxTotalMiB int            // most MiB all uploads together take (-files-max-total); 0: no limit (unless FilesMaxTotalPct)
	FilesMaxTotalPct int            // -files-max-total as a percentage of the data folder's disk; 0: FilesMaxTotalMiB
	MinFreeMiB       int            // free MiB below which uploads, and below a quarter of it posts, are refused (-min-free); 0: no floors
	DoubleClicked    bool           // set by parseConfig, not an option
	Cluster          cluster.Config // several nodes, one chat (internal/cluster); zero: a single node
	SnapshotEvery    uint64         // -cluster-snapshot-every: log entries between snapshots (internal/cluster/snapshot_compact.go)
	SnapshotInterval time.Duration  // -cluster-snapshot-interval: longest time between snapshots while anything is written

	// HTTP timeouts and limits (issue 22).
	HTTPBodyTimeout time.Duration      // -http-body-timeout; 0: defaultHTTPBodyTimeout
	HTTPIdleTimeout time.Duration      // -http-idle-timeout; 0: defaultHTTPIdleTimeout
	HTTPConnsPerIP  int                // -max-http-conns-per-ip; 0: no limit
	TrustedProxies  web.TrustedProxies // -trusted-proxies: whose X-Forwarded-For/-Proto count; none by default

	LoginCheck   time.Duration // how often live connections' logins are checked against the database; 0: never (ops still end them)
	WebhookAllow []string      // webhook targets an administrator allows (hosts, *.domains, CIDRs); empty: webhooks off

	// statFS fakes the data folder's disk space; only tests set it (the
	// disk floors). nil: ask the kernel.
	statFS files.StatFS

	// failStartAt names a start step of newServerContext that fails on
	// purpose; only tests set it, to check that a failed start unwinds.
	failStartAt string
}

// option is one row of the option table: a flag, its environment variable
// and its default. -h and the README list the same rows.
type option struct {
	name  string
	def   string
	usage string
	set   func(c *Config, v string) error
}

// options is the option table. The environment variable of each is
// STOMPBOX_ followed by the name in upper case with - as _.
var options = []option{
	{"addr", defaultAddr, "HTTP address for the web UI, /ws and SockJS", func(c *Config, v string) error { c.Addr = v; return nil }},
	{"data", "", "data folder (default: stompbox-data beside the executable when double-clicked, else in the working directory)", func(c *Config, v string) error { c.DataDir = v; return nil }},
	{"stomp-addr", "", "address for STOMP over TCP, e.g. 127.0.0.1:61613 (off when empty; TLS when HTTPS is on)", func(c *Config, v string) error { c.StompAddr = v; return nil }},
	{"metrics-addr", "", "address for GET /metrics (Prometheus text format) without a login, e.g. 127.0.0.1:9090 (off when empty; the main port serves /metrics to administrators only)", func(c *Config, v string) error { c.MetricsAddr = v; return nil }},
	{"allowed-origins", "", "comma-separated origin patterns allowed besides same-origin, e.g. https://*.corp.example", func(c *Config, v string) error { c.AllowedOrigins = splitList(v); return nil }},
	{"no-browser", "false", "do not open a browser when started by a double-click", boolSetter(func(c *Config, b bool) { c.NoBrowser = b })},
	{"max-frame", strconv.Itoa(stomp.DefaultMaxFrame), "largest STOMP frame accepted, in bytes", intSetter(func(c *Config, n int) { c.MaxFrame = n })},
	{"max-connections", strconv.Itoa(broker.DefaultMaxConnections), "most STOMP connections at once", intSetter(func(c *Config, n int) { c.MaxConnections = n })},
	{"max-subscriptions", strconv.Itoa(broker.DefaultMaxSubscriptions), "most subscriptions per connection", intSetter(func(c *Config, n int) { c.MaxSubscriptions = n })},
	{"max-user-subscriptions", strconv.Itoa(broker.DefaultMaxUserSubscriptions), "most subscriptions per user over all their connections (0: no limit)", countSetter(func(c *Config, n int) { c.MaxUserSubs = n })},
	{"max-message", strconv.Itoa(chat.MaxMessageRunes), "most characters in one chat message, over STOMP and HTTP (much longer messages also need a larger -max-frame)", intSetter(func(c *Config, n int) { c.MaxMessage = n })},
	{"max-rooms-per-user", strconv.Itoa(chat.DefaultMaxRoomsPerUser), "most rooms one account may create; administrators are exempt (0: no limit)", countSetter(func(c *Config, n int) { c.MaxRoomsPerUser = n })},
	{"edit-minutes", strconv.Itoa(chat.DefaultEditMinutes), "how many minutes after posting authors may edit a message (0: forever; deleting is always allowed)", countSetter(func(c *Config, n int) { c.EditMinutes = n })},
	{"login-check", chatstomp.DefaultLoginCheck.String(), "how often live connections are checked for a login that ended behind the server's back (stompbox user passwd/del while it runs, an expired session or token); logout, revocation and deletion through the server end them at once (0: never)", durationSetter(func(c *Config, d time.Duration) { c.LoginCheck = d })},
	{"webhook-allow", "", "comma-separated webhook targets users may set: host names, *.domain patterns, IP addresses or CIDR ranges (empty: webhooks off; loopback, link-local and unspecified addresses are refused whatever the list says)", func(c *Config, v string) error { c.WebhookAllow = splitList(v); return nil }},
	{"memory-limit", "0", "soft memory limit in MiB for the Go runtime, like GOMEMLIMIT: garbage is collected earlier instead of growing to twice the live heap (0: no limit)", countSetter(func(c *Config, n int) { c.MemoryLimitMiB = n })},
	{"heartbeat", broker.DefaultHeartBeat.String(), "STOMP heart-beat interval offered and asked for (0 turns heart-beats off)", durationSetter(func(c *Config, d time.Duration) { c.HeartBeat = d })},
	{"sockjs-path", proto.DefaultSockJSPath, "comma-separated paths of SockJS endpoints carrying STOMP", func(c *Config, v string) error { c.SockJSPaths = splitList(v); return nil }},
	{"sockjs-heartbeat", sockjs.DefaultHeartbeat.String(), "SockJS heartbeat frame interval", durationSetter(func(c *Config, d time.Duration) { c.SockJSHeartbeat = d })},
	{"sockjs-disconnect-delay", sockjs.DefaultDisconnectDelay.String(), "how long a SockJS session without a receiving request lives", durationSetter(func(c *Config, d time.Duration) { c.SockJSDelay = d })},
	{"sockjs-cookie", "false", "set the JSESSIONID cookie that sticky load balancers use (SockJS cookie_needed)", boolSetter(func(c *Config, b bool) { c.SockJSCookie = b })},
	{"lang", chat.LangEnglish, "server language for ENTER/LEAVE texts and pages without a choice: en or ko", func(c *Config, v string) error {
		if v != chat.LangEnglish && v != chat.LangKorean {
			return fmt.Errorf("unknown language %q (en or ko)", v)
		}
		c.Lang = v
		return nil
	}},
	{"allow-guests", "false", "let people chat with just a name, no password", boolSetter(func(c *Config, b bool) { c.AllowGuests = b })},
	{"keep-days", "0", "delete chat messages older than this many days (0 keeps everything)", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("invalid number of days %q", v)
		}
		c.KeepDays = n
		return nil
	}},
	{"synchronous", "FULL", "SQLite synchronous mode: FULL (a receipted message survives power loss) or NORMAL (faster; may lose the last commits on power loss)", func(c *Config, v string) error {
		v = strings.ToUpper(v)
		if v != "FULL" && v != "NORMAL" {
			return fmt.Errorf("synchronous must be FULL or NORMAL, not %q", v)
		}
		c.Synchronous = v
		return nil
	}},
	{"embed-origins", "", "comma-separated origins allowed to show a room in an iframe (/embed/room/{id})", func(c *Config, v string) error { c.EmbedOrigins = splitList(v); return nil }},
	{"log-level", "info", "debug, info, warn or error", func(c *Config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
	{"log-format", logFormatText, "log lines as text (key=value) or json (one object a line, for a log collector)", func(c *Config, v string) error {
		if v != logFormatText && v != logFormatJSON {
			return fmt.Errorf("unknown log format %q (text or json)", v)
		}
		c.LogFormat = v
		return nil
	}},
	{"tls-cert", "", "PEM certificate file: serve HTTPS, WSS and STOMP over TLS on -stomp-addr (with -tls-key)", func(c *Config, v string) error { c.TLSCert = v; return nil }},
	{"tls-key", "", "PEM private key file of -tls-cert", func(c *Config, v string) error { c.TLSKey = v; return nil }},
	{"tls-self-signed", "false", "serve HTTPS (and STOMP over TLS on -stomp-addr) with a self-signed certificate kept in the data folder (its SHA-256 fingerprint is logged)", boolSetter(func(c *Config, b bool) { c.TLSSelfSigned = b })},
	{"send-rate", strconv.Itoa(ratelimit.DefaultSendRate), "STOMP SENDs per second per connection, bursts of twice that; a faster connection is slowed to it, not cut off (0: no limit)", countSetter(func(c *Config, n int) { c.RateLimits.SendRate = n })},
	{"user-send-rate", strconv.Itoa(ratelimit.DefaultUserSendRate), "STOMP SENDs and HTTP message posts per second per user over all connections, bursts of twice that; STOMP is slowed to it, HTTP gets 429 (0: no limit)", countSetter(func(c *Config, n int) { c.RateLimits.UserSendRate = n })},
	{"queue-mib", strconv.Itoa(broker.DefaultQueueBytes >> 20), "most MiB held for /queue/ messages nobody consumed yet, all queues together; a SEND past it gets an ERROR (0: no limit)", countSetter(func(c *Config, n int) { c.QueueMiB = offIfZero(n) })},
	{"queue-mib-per-queue", strconv.Itoa(broker.DefaultQueueBytesPerQueue >> 20), "most MiB one /queue/ destination holds while nobody consumes it (0: no limit)", countSetter(func(c *Config, n int) { c.QueueMiBPerQueue = offIfZero(n) })},
	{"max-queues", strconv.Itoa(broker.DefaultMaxQueues), "most /queue/ destinations at once; an empty one nobody consumes is forgotten after a minute (0: no limit)", countSetter(func(c *Config, n int) { c.MaxQueues = offIfZero(n) })},
	{"queue-ttl", broker.DefaultQueueTTL.String(), "longest a /queue/ message waits for a consumer before it is dropped; a SEND's expires header (Unix ms) may shorten it", durationSetter(func(c *Config, d time.Duration) { c.QueueTTL = d })},
	{"memory-mark", strconv.Itoa(broker.DefaultMemoryMark >> 20), "Go heap in MiB above which STOMP publishers are held (their SENDs not read) until it falls, as RabbitMQ's memory alarm (0: off)", countSetter(func(c *Config, n int) { c.MemoryMarkMiB = offIfZero(n) })},
	{"anonymous-queues", "false", "let connections without a login SEND to and SUBSCRIBE to /queue/ destinations (the web UI never needs it)", boolSetter(func(c *Config, b bool) { c.NoAnonQueues = !b })},
	{"max-conns-per-ip", strconv.Itoa(ratelimit.DefaultConnsPerIP), "most STOMP connections from one address (0: no limit; behind a reverse proxy on this machine all share its address)", countSetter(func(c *Config, n int) { c.RateLimits.ConnsPerIP = n })},
	{"max-http-conns-per-ip", strconv.Itoa(defaultHTTPConnsPerIP), "most HTTP connections open at once from one address, WebSockets included; one more is refused (0: no limit; -trusted-proxies are exempt)", countSetter(func(c *Config, n int) { c.HTTPConnsPerIP = n })},
	{"http-body-timeout", defaultHTTPBodyTimeout.String(), "most time a request body may take to arrive; an upload gets longer by its size at 16 KiB/s (WebSockets and SockJS streams have no body and are not cut)", durationSetter(func(c *Config, d time.Duration) { c.HTTPBodyTimeout = d })},
	{"http-idle-timeout", defaultHTTPIdleTimeout.String(), "how long a keep-alive HTTP connection may wait for its next request", durationSetter(func(c *Config, d time.Duration) { c.HTTPIdleTimeout = d })},
	{"trusted-proxies", "", "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For (the client's address, for per-address limits and logs) and X-Forwarded-Proto (https: Secure cookie) are believed; from anyone else they are ignored", func(c *Config, v string) error {
		p, err := web.ParseTrustedProxies(splitList(v))
		c.TrustedProxies = p
		return err
	}},
	{"max-upload", strconv.Itoa(files.DefaultMaxUploadMiB), "largest file one upload may be, in MiB (files are streamed to disk, never held in memory)", intSetter(func(c *Config, n int) { c.MaxUploadMiB = n })},
	{"upload-quota", strconv.Itoa(files.DefaultUploadQuotaMiB), "most MiB of files one account may keep uploaded (0: no limit)", countSetter(func(c *Config, n int) { c.UploadQuotaMiB = n })},
	{"files-max-total", strconv.Itoa(files.DefaultFilesMaxTotalPercent) + "%", "most space all uploads together may take: MiB, or a percentage of the data folder's disk such as 25% (0: no limit); past it uploads get 507", func(c *Config, v string) error {
		pct, isPct := strings.CutSuffix(v, "%")
		n, err := strconv.Atoi(pct)
		if err != nil || n < 0 || (isPct && n > 100) {
			return fmt.Errorf("invalid size %q (MiB, or a percentage such as 25%%)", v)
		}
		c.FilesMaxTotalMiB, c.FilesMaxTotalPct = 0, 0
		if isPct {
			c.FilesMaxTotalPct = n
		} else {
			c.FilesMaxTotalMiB = n
		}
		return nil
	}},
	{"min-free", strconv.Itoa(files.DefaultMinFreeMiB), "MiB of free disk below which uploads are refused, and below a quarter of it posts (HTTP 507, a refused SEND); deleting always works (0: no floors)", countSetter(func(c *Config, n int) { c.MinFreeMiB = n })},
	{"cluster-peers", "", "comma-separated host:port of every node's -cluster-listen (this node's may be listed too): run as a cluster node with an embedded NATS server", func(c *Config, v string) error { c.Cluster.Peers = splitList(v); return nil }},
	{"cluster-listen", cluster.DefaultClusterListen, "address the embedded NATS listens on for the other nodes' routes", func(c *Config, v string) error { c.Cluster.Listen = v; return nil }},
	{"cluster-name", cluster.DefaultClusterName, "cluster name; nodes with another name are refused", func(c *Config, v string) error { c.Cluster.Name = v; return nil }},
	{"cluster-secret-file", "", "file holding the secret shared by every node (at least 16 characters); routes without it are refused", func(c *Config, v string) error { c.Cluster.SecretFile = v; return nil }},
	{"cluster-tls-cert", "", "PEM certificate for TLS between nodes from your own CA, instead of the TLS derived from the secret (with -cluster-tls-key and -cluster-tls-ca)", func(c *Config, v string) error { c.Cluster.TLSCert = v; return nil }},
	{"cluster-tls-key", "", "PEM private key of -cluster-tls-cert", func(c *Config, v string) error { c.Cluster.TLSKey = v; return nil }},
	{"cluster-tls-ca", "", "PEM CA that signed every node's -cluster-tls-cert; nodes verify each other with it, both ways (required with -cluster-tls-cert)", func(c *Config, v string) error { c.Cluster.TLSCA = v; return nil }},
	{"cluster-insecure", "false", "plaintext routes between nodes, readable and forgeable by anyone on the network (a warning at start); by default routes are TLS from the secret", boolSetter(func(c *Config, b bool) { c.Cluster.Insecure = b })},
	{"node-name", "", "this node's name in the cluster (default: host name plus a random suffix, kept in the data folder)", func(c *Config, v string) error { c.Cluster.NodeName = v; return nil }},
	{"cluster-snapshot-every", strconv.Itoa(cluster.DefaultSnapshotEvery), "take a snapshot of the database and compact the log below it after this many log entries", func(c *Config, v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return fmt.Errorf("-cluster-snapshot-every %q: a positive number of log entries", v)
		}
		c.SnapshotEvery = n
		return nil
	}},
	{"cluster-snapshot-interval", "1h", "take a snapshot and compact the log at least this often while anything is written (at most 1h: deleted messages leave the log at the next compaction)", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > time.Hour {
			return fmt.Errorf("-cluster-snapshot-interval %q: a duration from 1s to 1h", v)
		}
		c.SnapshotInterval = d
		return nil
	}},
	{"cluster-urls", "", "comma-separated web addresses of every node, e.g. http://pi1:8080,http://pi2:8080: when this node stops answering, the chat page offers the others", func(c *Config, v string) error {
		urls, err := nodeURLs(v)
		c.Cluster.URLs = urls
		return err
	}},
	{"nats", "", "comma-separated URLs of an existing NATS with JetStream, e.g. nats://nats1:4222: run as a cluster node on it instead of embedding NATS", func(c *Config, v string) error { c.Cluster.NATS = splitList(v); return nil }},
	{"nats-creds", "", "NATS .creds file (JWT and NKey) for -nats", func(c *Config, v string) error { c.Cluster.NATSCreds = v; return nil }},
	{"nats-user", "", "NATS user for -nats (with -nats-password)", func(c *Config, v string) error { c.Cluster.NATSUser = v; return nil }},
	{"nats-password", "", "NATS password for -nats-user", func(c *Config, v string) error { c.Cluster.NATSPass = v; return nil }},
	{"nats-token", "", "NATS token for -nats", func(c *Config, v string) error { c.Cluster.NATSToken = v; return nil }},
	{"nats-tls-ca", "", "PEM CA to verify the -nats servers' certificates", func(c *Config, v string) error { c.Cluster.NATSCA = v; return nil }},
	{"nats-tls-cert", "", "PEM client certificate for -nats (with -nats-tls-key)", func(c *Config, v string) error { c.Cluster.NATSCert = v; return nil }},
	{"nats-tls-key", "", "PEM private key of -nats-tls-cert", func(c *Config, v string) error { c.Cluster.NATSKey = v; return nil }},
	{"login-rate", strconv.Itoa(ratelimit.DefaultLoginsPerIP), "login and registration attempts per minute from one address (0: no limit)", countSetter(func(c *Config, n int) { c.RateLimits.LoginsPerIP = n })},
}

// countSetter parses an option that is a count where 0 turns a limit off.
// offIfZero maps an option's 0 ("no limit") to -1, as the Config's 0
// means the default.
func offIfZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

func countSetter(f func(*Config, int)) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("invalid count %q (0 or more)", v)
		}
		f(c, n)
		return nil
	}
}

func boolSetter(f func(*Config, bool)) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("invalid boolean %q", v)
		}
		f(c, b)
		return nil
	}
}

func durationSetter(f func(*Config, time.Duration)) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("invalid duration %q", v)
		}
		f(c, d)
		return nil
	}
}

func intSetter(f func(*Config, int)) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("invalid positive number %q", v)
		}
		f(c, n)
		return nil
	}
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// nodeURLs parses -cluster-urls: absolute http or https addresses, each
// given back without a trailing slash.
func nodeURLs(v string) ([]string, error) {
	var out []string
	for _, raw := range splitList(v) {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("%q is not a node's web address like http://pi1:8080", raw)
		}
		out = append(out, strings.TrimRight(u.String(), "/"))
	}
	return out, nil
}

func envName(opt string) string {
	return "STOMPBOX_" + strings.ToUpper(strings.ReplaceAll(opt, "-", "_"))
}

// errHelp is returned by parseConfig after printing -h or --version.
var errHelp = errors.New("help printed")

// parseConfig reads flags, then environment variables for the flags not
// given, then defaults. getenv is os.Getenv in production.
func parseConfig(args []string, getenv func(string) string, stdout io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("stompbox", flag.ContinueOnError)
	fs.SetOutput(stdout)
	values := make(map[string]*optionValue, len(options))
	for _, o := range options {
		v := &optionValue{s: o.def, isBool: o.def == "false" || o.def == "true"}
		values[o.name] = v
		fs.Var(v, o.name, fmt.Sprintf("%s (env %s)", o.usage, envName(o.name)))
	}
	showVersion := fs.Bool("version", false, "print the version, commit, build date and Go version, and exit")
	fs.Usage = func() {
		fmt.Fprintf(stdout, "stompbox %s: team chat over STOMP, WebSocket and SockJS in one binary.\n\n", buildVersion)
		fmt.Fprintf(stdout, "Usage:\n  stompbox [options]\n  stompbox user [-data DIR] add|passwd|del|token|list …\n  stompbox backup [-data DIR] FILE\n  stompbox cluster status|remove NODE [-url http://127.0.0.1:8080] [-token TOKEN]\n  stompbox service print (the systemd unit)\n  stompbox bench fanout|rooms|idle|soak|logins -url http://127.0.0.1:8080 … (load tool, loopback only; bench -h)\n  stompbox sockjs-testserver [--addr 127.0.0.1:8081]\n\nOptions:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, errHelp
		}
		return c, err
	}
	if *showVersion {
		fmt.Fprint(stdout, buildinfo.Get())
		return c, errHelp
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (see -h)", fs.Arg(0))
	}
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, o := range options {
		v := values[o.name].s
		if !given[o.name] {
			if e := getenv(envName(o.name)); e != "" {
				v = e
			}
		}
		if v == "" && o.def == "" {
			continue
		}
		if err := o.set(&c, v); err != nil {
			return c, fmt.Errorf("option -%s: %w", o.name, err)
		}
	}
	return c, nil
}

// optionValue holds a flag's text until parseConfig applies it; boolean
// options may be given without a value, as with flag.Bool.
type optionValue struct {
	s      string
	isBool bool
}

func (v *optionValue) String() string {
	if v == nil {
		return ""
	}
	return v.s
}
func (v *optionValue) Set(s string) error { v.s = s; return nil }
func (v *optionValue) IsBoolFlag() bool   { return v.isBool }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, stop, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, errHelp) && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "stompbox:", err)
		os.Exit(1)
	}
}

// run is the whole program. The first signal cancels ctx and starts a
// graceful shutdown; stop restores default signal handling so that a second
// signal kills the process at once.
func run(ctx context.Context, stop func(), args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "sockjs-testserver":
			return runSockJSTestServerCommand(ctx, args[1:], stdout, stderr)
		case "bench":
			bench.TuneGC(getenv)
			return bench.Run(ctx, args[1:], stdout, stderr)
		case "user", "backup":
			return runDataCommand(ctx, args, getenv, os.Stdin, stdout)
		case "cluster":
			return cli.Cluster(ctx, args[1:], "http://127.0.0.1"+defaultAddr, getenv, stdout)
		case "service":
			return service.RunCommand(args[1:], stdout)
		}
	}
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	logOpts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var logHandler slog.Handler = slog.NewTextHandler(stderr, logOpts)
	if cfg.LogFormat == logFormatJSON {
		logHandler = slog.NewJSONHandler(stderr, logOpts)
	}
	log := slog.New(logHandler)
	cfg.DoubleClicked = desktop.StartedByDoubleClick(args)
	applyMemoryLimit(cfg.MemoryLimitMiB, log)
	if cfg.DataDir == "" {
		cfg.DataDir = desktop.DataFolder(cfg.DoubleClicked, defaultDataDir)
	}
	srv, err := newServerContext(ctx, cfg, log)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	url := srv.URL()
	log.Info("stompbox is running", "open", url, "data", cfg.DataDir, "version", buildVersion)
	// Under systemd (Type=notify), ready means served: Start has opened the
	// listeners, after a cluster node caught up with the log in newServer.
	notifier := service.NewNotifier(getenv)
	if err := notifier.Notify(service.Ready + "\nSTATUS=serving " + url); err != nil {
		log.Warn("could not tell systemd that stompbox is ready", "err", err)
	}
	interval, err := service.WatchdogInterval(getenv, os.Getpid())
	if err != nil {
		log.Warn("systemd watchdog off", "err", err)
	}
	stopWatchdog := service.StartWatchdog(ctx, notifier, interval, log)
	for _, u := range desktop.LANURLs(srv.HTTPAddr()) {
		log.Info("reachable on the network", "open", strings.Replace(u, "http:", srv.scheme()+":", 1))
	}
	if cfg.DoubleClicked && !cfg.NoBrowser {
		if err := desktop.OpenBrowser(url); err != nil {
			log.Warn("could not open a browser", "err", err)
		}
	}
	var exitErr error
	select {
	case <-ctx.Done():
	case <-srv.gapped():
		// Restarted (systemd's Restart=on-failure), it restores the newest
		// snapshot: the database is not swapped under a running server.
		exitErr = errors.New("this cluster node missed log entries that were compacted away while it was cut off; it exits so that its restart restores the newest snapshot (README, Snapshots)")
		log.Error("cluster: exiting to restore the newest snapshot at the restart", "err", exitErr)
	}
	stop() // a second signal now exits at once
	stopWatchdog()
	log.Info("shutting down")
	if err := notifier.Notify(service.Stopping); err != nil {
		log.Warn("could not tell systemd that stompbox is stopping", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return errors.Join(exitErr, srv.Shutdown(sctx))
}

// gapped is closed when this cluster node's applier stopped at entries
// compacted away (cluster.Log.Gapped); nil, never closed, otherwise.
func (s *server) gapped() <-chan struct{} {
	if s.clog == nil {
		return nil
	}
	return s.clog.Gapped()
}

// runDataCommand runs the commands that work on the data folder, also
// beside a running server: "user …" (accounts, for a headless Pi) and
// "backup FILE". The folder is --data / STOMPBOX_DATA, else the default.
func runDataCommand(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("stompbox "+args[0], flag.ContinueOnError)
	fs.SetOutput(stdout)
	data := fs.String("data", getenv(envName("data")), "data folder (env STOMPBOX_DATA)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return err
	}
	dir := *data
	if dir == "" {
		dir = desktop.DataFolder(false, defaultDataDir)
	}
	if args[0] == "backup" {
		if fs.NArg() != 1 {
			return errors.New("usage: stompbox backup [-data DIR] FILE")
		}
		if err := cli.Backup(ctx, dir, fs.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "backup written to %s\n", fs.Arg(0))
		if seq, ok, err := store.FileAppliedSeq(ctx, fs.Arg(0)); err == nil && ok { // a cluster node's: README, From one node to a cluster
			fmt.Fprintf(stdout, "it stands at cluster log position %d; it can start a new cluster as its first node's database\n", seq)
		}
		return nil
	}
	if sub := fs.Arg(0); sub != "" && sub != "list" {
		if _, err := os.Stat(filepath.Join(dir, cluster.NodeNameFile)); err == nil {
			// Writing this node's copy directly would leave the other
			// nodes without the change.
			return fmt.Errorf("user %s: %s belongs to a cluster node; change accounts in the web page or the API of any node (POST /api/tokens makes a token), so that every node gets the change", sub, dir)
		}
	}
	return cli.User(ctx, dir, fs.Args(), stdin, stdout)
}

// server is one running stompbox: listeners, broker and HTTP server.
type server struct {
	cfg       Config
	log       *slog.Logger
	broker    *broker.Broker
	limiter   *ratelimit.Limiter                      // the connection, SEND and login rates; shared by the broker and the HTTP layer
	httpLimit atomic.Pointer[transport.LimitListener] // -max-http-conns-per-ip's listener, set by Start; read by the metrics
	origins   *transport.OriginPolicy
	httpSrv   *http.Server
	httpLn    net.Listener
	tcp       *transport.TCPServer
	sockjs    []*sockjs.Server
	static    *ui.Static
	store     *store.Store
	auth      *auth.Service
	chat      *chat.Service
	glue      *chatstomp.Glue
	files     *files.Service
	api       *web.API
	pages     *web.Pages
	tlsConfig *tls.Config     // loaded by Start when TLS is on (internal/certs)
	base      context.Context // parent of every connection's context
	cancel    context.CancelFunc
	cluster   *cluster.Conn     // nil on a single node
	clog      *cluster.Log      // the replicated log; nil on a single node
	bus       *cluster.Bus      // the broker across nodes; nil on a single node
	serveWG   sync.WaitGroup    // the HTTP Serve goroutine
	maintWG   sync.WaitGroup    // the retention and file sweep goroutine
	undo      undoStack         // what a failed start releases (newServerContext)
	metrics   *metrics.Metrics  // GET /metrics
	metricsLn *metrics.Listener // -metrics-addr; nil when off

	snaps     *cluster.Snapshots // the cluster's database snapshots (store.go); nil on a single node
	compactor *cluster.Compactor // takes snapshots and compacts the log; nil on a single node
}

// newServerContext is newServer where ending ctx abandons the start: a
// cluster node may wait long for its peers, and Ctrl-C must still stop it.
//
// The server is built in steps, in the order their parts depend on each
// other. Each step that makes something that must be released registers how
// with s.undo; a step that fails unwinds everything made before it, in
// reverse, so that a failed start leaves no goroutine, port, file or
// cluster connection behind (TestStartFailureLeavesNothing).
func newServerContext(ctx context.Context, cfg Config, log *slog.Logger) (_ *server, err error) {
	base, cancel := context.WithCancel(context.Background())
	stopWatch := context.AfterFunc(ctx, cancel)
	defer stopWatch()
	s := &server{cfg: cfg, log: log, base: base, cancel: cancel}
	s.undo.push(cancel)
	defer func() {
		if err != nil {
			s.undo.run()
		}
	}()
	for _, step := range []struct {
		name string
		run  func() error
	}{
		{"store", s.openStore},              // store.go
		{"cluster", s.joinCluster},          // store.go: the replicated log, on a cluster node
		{"auth", s.newAuth},                 // main.go
		{"broker", s.newBroker},             // broker.go
		{"files", s.newFiles},               // main.go
		{"chat", s.newChat},                 // main.go
		{"cluster bus", s.attachClusterBus}, // broker.go
		{"catch up", s.catchUp},             // store.go: apply the log before any client is served
		{"web", s.newWeb},                   // main.go
		{"sockjs", s.newSockJS},             // sockjs.go
		{"metrics", s.newMetrics},           // main.go: what GET /metrics reads
	} {
		if step.name == cfg.failStartAt {
			return nil, fmt.Errorf("%s: %w", step.name, errStartFault)
		}
		if err := step.run(); err != nil {
			return nil, err
		}
	}
	s.httpSrv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       cmp.Or(cfg.HTTPIdleTimeout, defaultHTTPIdleTimeout),
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// errStartFault is the failure a test plants in a start step
// (Config.failStartAt).
var errStartFault = errors.New("start step failed on purpose")

// undoStack is what a failed start releases: each made part pushes its
// release, and run calls them last first, once.
type undoStack []func()

func (u *undoStack) push(f func()) { *u = append(*u, f) }

func (u *undoStack) run() {
	for i := len(*u) - 1; i >= 0; i-- {
		(*u)[i]()
	}
	*u = nil
}

// newAuth makes the account service.
func (s *server) newAuth() error {
	a, err := auth.New(s.store, auth.Options{AllowGuests: s.cfg.AllowGuests, MaxLoginFailures: max(1, auth.MaxLoginFailures/s.clusterNodes())})
	if err != nil {
		return err
	}
	s.auth = a
	return nil
}

// newFiles makes the file service. It comes before the chat service, which
// is given it (to remove a deleted message's files); it needs only the
// chat's room rules, which come from the store. On a cluster node its bytes
// are replicated through the cluster's object store.
func (s *server) newFiles() error {
	opts := files.Options{
		DataDir:   s.cfg.DataDir,
		MaxUpload: int64(s.cfg.MaxUploadMiB) << 20,
		Quota:     int64(s.cfg.UploadQuotaMiB) << 20,
		Log:       s.log,

		MinFree:         int64(s.cfg.MinFreeMiB) << 20,
		MaxTotal:        int64(s.cfg.FilesMaxTotalMiB) << 20,
		MaxTotalPercent: s.cfg.FilesMaxTotalPct,
		StatFS:          s.cfg.statFS,
	}
	if s.clog != nil {
		blobs, err := cluster.NewObjectBlobs(s.base, s.clog.Js, s.cluster.Replicas)
		if err != nil {
			return fmt.Errorf("cluster files: %w", err)
		}
		opts.Replica = blobs // set only here: a nil *ObjectBlobs in the interface would not be nil
	}
	f, err := files.New(s.store, chat.NewRoomGate(s.store), opts)
	if err != nil {
		return err
	}
	s.files = f
	return nil
}

// newChat makes the chat service, delivering through the STOMP glue, and
// attaches the glue to the broker.
func (s *server) newChat() error {
	c, err := chat.New(s.store, chat.Config{
		Lang:            s.cfg.Lang,
		Deliver:         s.glue.DeliverRoom,
		Notify:          s.glue.NotifyUser,
		Online:          s.broker.IsOnline,
		MaxMessageRunes: s.cfg.MaxMessage,
		MaxRoomsPerUser: s.cfg.MaxRoomsPerUser,
		EditWindow:      chat.EditWindowFromMinutes(s.cfg.EditMinutes),
		Attachments:     s.files,
		Access:          chat.AccessHooks{EndRoom: s.glue.EndRoomAccess, EndLogins: s.glue.EndLogins},
		WebhookAllow:    s.cfg.WebhookAllow,
		Log:             s.log,
	})
	if err != nil {
		return err
	}
	s.chat = c
	s.undo.push(func() { c.Close() })
	s.glue.Attach(s.broker, s.chat)
	return nil
}

// newWeb makes the JSON API, the pages and their static files.
func (s *server) newWeb() error {
	static, err := ui.NewStatic()
	if err != nil {
		return fmt.Errorf("load web files: %w", err)
	}
	s.static = static
	s.origins = transport.NewOriginPolicy(s.cfg.AllowedOrigins)
	s.api = web.NewAPI(s.chat, s.auth, s.files, s.limiter, s.log)
	s.pages = web.NewPages(web.PagesOptions{
		CurrentUser:      s.currentUser,
		HasAnyUser:       s.store.HasAccounts,
		Lang:             s.cfg.Lang,
		SockJSPath:       firstOr(s.cfg.SockJSPaths, proto.DefaultSockJSPath),
		WSPath:           proto.DefaultWSPath,
		MaxMessage:       s.cfg.MaxMessage,
		MaxSubscriptions: s.cfg.MaxSubscriptions,
		EditMinutes:      s.cfg.EditMinutes,
		MaxUpload:        s.files.MaxBytes,
		Registration:     func(ctx context.Context) (string, error) { return s.store.Setting(ctx, store.SettingRegistration) },
		Invitation:       s.auth.Invitation,
		FrameAncestors:   s.cfg.EmbedOrigins,
		NodeURLs:         s.cfg.Cluster.URLs,
		Static:           static,
		Log:              s.log,
	})
	return nil
}

// Start opens the listeners and starts serving. A start that fails
// releases everything newServerContext made, as a failed step does: the
// server is then of no use, and Shutdown must not be called.
func (s *server) Start() (err error) {
	defer func() {
		if err != nil {
			s.undo.run()
		}
	}()
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	ln = s.limitHTTPConns(ln)
	if ln, err = s.listenTLS(ln); err != nil {
		return err
	}
	s.httpLn = ln
	if err := s.listenSTOMP(); err != nil {
		ln.Close()
		return err
	}
	if err := s.startMetrics(); err != nil {
		ln.Close()
		if s.tcp != nil {
			s.tcp.Ln.Close()
			s.tcp.Close()
		}
		return err
	}
	s.maintWG.Add(1)
	go s.retention() // -keep-days and the file sweep
	s.maintWG.Add(1)
	go func() { defer s.maintWG.Done(); s.glue.WatchLogins(s.base, s.cfg.LoginCheck) }() // -login-check
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		err := s.httpSrv.Serve(ln)
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.log.Error("http serve", "err", err)
		}
	}()
	return nil
}

// HTTPAddr is the address the HTTP listener got (useful with port 0).
func (s *server) HTTPAddr() string { return s.httpLn.Addr().String() }

// TCPAddr is the STOMP TCP listener's address, "" when off.
func (s *server) TCPAddr() string {
	if s.tcp == nil {
		return ""
	}
	return s.tcp.Ln.Addr().String()
}

// URL is the address to open in a browser on this machine.
func (s *server) URL() string {
	host, port, _ := net.SplitHostPort(s.HTTPAddr())
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return s.scheme() + "://" + net.JoinHostPort(host, port) + "/"
}

// Shutdown stops the server in order: stop accepting; tell every STOMP client
// the server is going and close them (http.Server.Shutdown does not touch
// hijacked WebSocket connections); finish HTTP requests; release the rest.
func (s *server) Shutdown(ctx context.Context) error {
	var errs []error
	if s.metricsLn != nil {
		if err := s.metricsLn.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.httpLn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, fmt.Errorf("close http listener: %w", err))
	}
	if s.tcp != nil {
		s.tcp.Ln.Close()
	}
	if err := s.broker.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	if s.bus != nil {
		if err := s.bus.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, sj := range s.sockjs {
		if err := sj.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close sockjs: %w", err))
		}
	}
	if s.tcp != nil {
		if err := s.tcp.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	// The listener is already closed, so Shutdown's own close reports net.ErrClosed.
	if err := s.httpSrv.Shutdown(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, fmt.Errorf("shutdown http: %w", err))
	}
	s.cancel()
	s.serveWG.Wait()
	s.maintWG.Wait()
	if s.clog != nil {
		s.clog.Close() // no more log entries reach the store
	}
	if err := s.chat.Close(); err != nil {
		errs = append(errs, err)
	}
	if s.files != nil { // its removals of deleted files' bytes ask the store and the cluster
		s.files.Close(ctx)
	}
	if err := s.store.Close(); err != nil {
		errs = append(errs, err)
	}
	s.leaveCluster()
	return errors.Join(errs...)
}

// requestUser is the account an HTTP request carries (session cookie or
// bearer token), "" if none, and the key of that credential: WebSocket
// and SockJS connections start as it, and end when the credential does.
func (s *server) requestUser(r *http.Request) (user, login string) {
	u, err := s.auth.UserFromRequest(r)
	if err != nil {
		return "", ""
	}
	return u.Username, u.Login
}

// currentUser adapts the signed-in account for the pages.
func (s *server) currentUser(r *http.Request) (web.UIUser, bool) {
	u, err := s.auth.UserFromRequest(r)
	if err != nil {
		return web.UIUser{}, false
	}
	return web.UIUser{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, IsAdmin: u.IsAdmin}, true
}

func firstOr(list []string, def string) string {
	if len(list) > 0 {
		return list[0]
	}
	return def
}

// applyMemoryLimit gives the Go runtime a soft memory limit of mib MiB
// (-memory-limit), the same as GOMEMLIMIT. With the default garbage
// collector setting the heap grows to about twice what is live before a
// collection, so on a Raspberry Pi with many idle browsers half of
// stompbox's resident memory is garbage waiting; under a limit the
// collector runs earlier instead. The runtime caps the collector's CPU at
// about half when the limit is too low for what is live, so a limit set too
// tight costs CPU, never a crash. Zero leaves the runtime's own setting
// (GOMEMLIMIT from the environment, or none). It returns the previous limit.
func applyMemoryLimit(mib int, log *slog.Logger) int64 {
	if mib <= 0 {
		return debug.SetMemoryLimit(-1) // -1 reads without changing
	}
	prev := debug.SetMemoryLimit(int64(mib) << 20)
	log.Info("memory limit set", "mib", mib)
	return prev
}

// routes is the one routing table of the HTTP server (Go 1.22 patterns).
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+proto.DefaultWSPath, s.wsHandler())
	s.mountSockJS(mux)
	s.api.Routes(mux)
	src := web.StatsSources{
		Sessions:       s.broker.SessionCount,
		SockJSSessions: s.sockjsSessions,
		HeldSends:      s.limiter.HeldSends,
		Store:          s.store,
		Gate:           s.auth.Gate,
	}
	if s.clog != nil {
		src.Cluster = s.clog.Status
	}
	stats := web.NewAdminStats(src)
	mux.Handle("GET /api/admin/stats", s.api.Authed(s.api.Admin(stats.Serve)))
	mux.Handle("GET /metrics", s.api.Authed(s.api.Admin(s.serveMetrics)))
	// store.go: a dead node off the log's and object stores' copies
	mux.Handle("POST /api/admin/cluster/remove", s.api.Authed(s.api.Admin(s.removeNode)))
	s.pages.Routes(mux) // also serves ui.StaticPrefix
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		web.WriteJSON(w, http.StatusOK, map[string]any{"status": "ok", "connections": s.broker.SessionCount()})
	})
	return s.secure(mux)
}

// secure wraps the server's routes with the security headers and the
// per-IP login limit. routes calls it last, so every response passes here.
func (s *server) secure(h http.Handler) http.Handler {
	var sockjs []string
	for _, sj := range s.sockjs {
		sockjs = append(sockjs, sj.Opts.Prefix)
	}
	h = web.LimitLogins(s.limiter, h)
	h = web.LimitBodyTime(h, web.BodyTimeouts{
		Body:          cmp.Or(s.cfg.HTTPBodyTimeout, defaultHTTPBodyTimeout),
		UploadMinRate: uploadMinRate,
		IsUpload:      isUpload,
		Write:         2 * cmp.Or(s.cfg.HTTPBodyTimeout, defaultHTTPBodyTimeout),
	})
	h = web.ForwardedHeaders(h, s.cfg.TrustedProxies) // first: everything after sees the client's address
	return web.SecurityHeaders(h, web.SecurityOptions{NoCSP: sockjs, HSTS: s.cfg.TLSCert != ""})
}

// isUpload reports whether r is a file upload, whose body may take longer
// (web.BodyTimeouts.UploadMinRate) and whose response has no write deadline.
func isUpload(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/rooms/") && strings.HasSuffix(r.URL.Path, "/files")
}

// limitHTTPConns wraps the HTTP listener (under TLS, if any) in the
// per-address connection limit, -max-http-conns-per-ip, with a counter of
// its own (the STOMP sessions of WebSockets count in the broker's too).
// Trusted proxies are exempt: their connections carry many clients.
func (s *server) limitHTTPConns(ln net.Listener) net.Listener {
	if s.cfg.HTTPConnsPerIP <= 0 {
		return ln
	}
	l := &transport.LimitListener{
		Listener: ln,
		Counter:  ratelimit.New(ratelimit.Limits{ConnsPerIP: s.cfg.HTTPConnsPerIP}),
		Exempt:   s.cfg.TrustedProxies.Contains,
		Log:      s.log,
	}
	if !s.cfg.tlsEnabled() {
		l.Refusal = transport.HTTPTooManyConnections
	}
	s.httpLimit.Store(l)
	return l
}

// httpConnsRefused counts the connections limitHTTPConns refused, for the
// metrics; 0 before Start and without the limit.
func (s *server) httpConnsRefused() uint64 {
	if l := s.httpLimit.Load(); l != nil {
		return l.Refused()
	}
	return 0
}

// tlsEnabled reports whether the HTTP listener serves HTTPS.
func (c Config) tlsEnabled() bool { return c.TLSCert != "" || c.TLSSelfSigned }

// scheme is "https" when the server serves TLS, else "http".
func (s *server) scheme() string {
	if s.cfg.tlsEnabled() {
		return "https"
	}
	return "http"
}

// listenTLS wraps ln in TLS when --tls-cert/--tls-key or --tls-self-signed
// is given, and returns ln unchanged otherwise. It loads the certificate
// (see serverTLS) the first time; the STOMP TCP listener reuses it. On
// error it closes ln.
func (s *server) listenTLS(ln net.Listener) (net.Listener, error) {
	return s.tlsListener(ln, func(c *tls.Config) {
		c.NextProtos = []string{"http/1.1"} // WebSocket upgrades need HTTP/1.1
	})
}

// tlsListener wraps ln in TLS with the server's certificate, as adjust
// changes a copy of the shared configuration for this listener, when TLS
// is on; otherwise it returns ln. On error it closes ln.
func (s *server) tlsListener(ln net.Listener, adjust func(*tls.Config)) (net.Listener, error) {
	if !s.cfg.tlsEnabled() {
		return ln, nil
	}
	cfg, err := s.serverTLS()
	if err != nil {
		ln.Close()
		return nil, err
	}
	cfg = cfg.Clone()
	adjust(cfg)
	return tls.NewListener(ln, cfg), nil
}

// serverTLS loads the certificate once (making a self-signed one if asked)
// and returns the TLS configuration every listener starts from. It logs
// the certificate's SHA-256 fingerprint so that people can check what
// their browser shows. Called from Start only, before serving, so it
// needs no lock.
func (s *server) serverTLS() (*tls.Config, error) {
	if s.tlsConfig != nil {
		return s.tlsConfig, nil
	}
	cert, err := certs.Load(certs.Options{TLSCert: s.cfg.TLSCert, TLSKey: s.cfg.TLSKey, TLSSelfSigned: s.cfg.TLSSelfSigned, DataDir: s.cfg.DataDir}, s.log)
	if err != nil {
		return nil, err
	}
	s.log.Info("TLS certificate", "sha256", certs.Fingerprint(cert.Leaf), "subject", cert.Leaf.Subject.CommonName,
		"names", strings.Join(certs.Names(cert.Leaf), ","), "valid-until", cert.Leaf.NotAfter.Format(time.DateOnly),
		"self-signed", s.cfg.TLSSelfSigned)
	s.tlsConfig = &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
	return s.tlsConfig, nil
}

// newMetrics gives the metrics the parts they read at each scrape. Called
// once the parts exist, before the routes are built.
func (s *server) newMetrics() error {
	src := metrics.Sources{
		Broker:    s.broker,
		Limiter:   s.limiter,
		Store:     s.store,
		Files:     s.files,
		Passwords: s.auth.Gate,
		Version:   buildVersion,

		HTTPConnsRefused: s.httpConnsRefused,
	}
	for _, sj := range s.sockjs {
		src.SockJS = append(src.SockJS, sj)
	}
	if s.clog != nil { // set only here: a nil *cluster.Log in the interface would not be nil
		src.Cluster = s.clog
	}
	s.metrics = metrics.New(src)
	return nil
}

// startMetrics opens -metrics-addr, if set: GET /metrics there needs no
// login, so it is off by default and meant for a loopback or private
// address. Start calls it; Shutdown closes the listener first.
func (s *server) startMetrics() error {
	if s.cfg.MetricsAddr == "" {
		return nil
	}
	ln, err := metrics.Listen(s.base, s.cfg.MetricsAddr, s.metrics, s.log)
	if err != nil {
		return err
	}
	s.metricsLn = ln
	s.log.Info("metrics", "addr", ln.Addr(), "path", "/metrics")
	return nil
}

// serveMetrics is GET /metrics on the main port; routes wraps it in
// the API's admin check, so it needs an administrator's session or API token (401
// without a login, 403 for others), like GET /api/admin/stats.
func (s *server) serveMetrics(w http.ResponseWriter, r *http.Request, _ store.User) error {
	s.metrics.ServeHTTP(w, r)
	return nil
}
