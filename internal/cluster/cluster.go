package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Cluster defaults.
const (
	DefaultClusterListen = ":6222"    // NATS's own route port, so firewall rules written for NATS fit
	DefaultClusterName   = "stompbox" // nodes with another -cluster-name refuse each other's routes
	clusterRouteUser     = "stompbox" // route user; its password is derived from the shared secret (routePassword)
	// systemUser is the embedded server's system-account user, which
	// only this process knows (a random password, an in-process
	// connection): JetStream's meta group changes (members.go) need it.
	systemUser       = "system"
	NodeNameFile     = "node-name"
	JetStreamDir     = "jetstream"
	natsReadyTimeout = 10 * time.Second
	// maxReplicas is how many nodes keep each log entry: a quorum of 2
	// out of 3 survives one node's loss, and more copies would make every
	// message cost another round trip to a Raspberry Pi.
	maxReplicas = 3
)

// Config is the cluster part of Config. Zero value: a single node,
// no NATS code runs.
type Config struct {
	Peers      []string // -cluster-peers: host:port of every node's route listener (this node's may be included)
	Listen     string   // -cluster-listen
	Name       string   // -cluster-name
	SecretFile string   // -cluster-secret-file: the shared secret, from which the route TLS and password derive
	NodeName   string   // -node-name; "" means the one kept in the data folder
	TLSCert    string   // -cluster-tls-cert: route TLS from a private CA (with -cluster-tls-key and -cluster-tls-ca)
	TLSKey     string
	TLSCA      string
	Insecure   bool // -cluster-insecure: plaintext routes (a warning at start)

	URLs []string // -cluster-urls: every node's web address, offered by the chat page when its node is down

	NATS      []string // -nats: an existing NATS with JetStream instead of the embedded one
	NATSCreds string   // -nats-creds: a .creds file (JWT and NKey)
	NATSUser  string   // -nats-user / -nats-password
	NATSPass  string
	NATSToken string // -nats-token
	NATSCA    string // -nats-tls-ca: trust this CA for the NATS servers' certificates
	NATSCert  string // -nats-tls-cert/-key: client certificate
	NATSKey   string

	// Test hooks; zero values mean the defaults.
	Replicas    int           // the log's replica count; 0 means from the peer list
	PublishWait time.Duration // publishTimeout
	KeepRecent  uint64        // recentOps
	// Clock is the store's clock (nil: time.Now): a test gives a node a
	// clock that disagrees with the others'.
	Clock func() time.Time
}

// Enabled reports whether this node is part of a cluster.
func (c Config) Enabled() bool { return len(c.Peers) > 0 || len(c.NATS) > 0 }

// Conn is this node's connection to the cluster's NATS: the
// embedded server (nil with -nats) and a client connection to it.
type Conn struct {
	Ns       *natsserver.Server // embedded server, nil when using an external NATS
	Nc       *nats.Conn
	Node     string // this node's name, unique in the cluster and kept across restarts
	Replicas int    // the log's replica count

	// systemPassword is the system user's password (systemUser), "" with
	// an external NATS.
	systemPassword string

	publishWait time.Duration // test hooks (clusterConfig), 0 for the defaults
	keepRecent  uint64
}

// Connect starts the embedded NATS server (routes to the peers,
// JetStream under dataDir) or connects to an external NATS, and returns
// the connection. The caller owns it and calls close.
func Connect(ctx context.Context, cfg Config, dataDir string, log *slog.Logger) (*Conn, error) {
	node, err := nodeName(cfg.NodeName, dataDir)
	if err != nil {
		return nil, err
	}
	cc := &Conn{Node: node, publishWait: cfg.PublishWait, keepRecent: cfg.KeepRecent}
	if len(cfg.NATS) > 0 {
		cc.Nc, err = connectExternalNATS(cfg, node, log)
		if err != nil {
			return nil, err
		}
		cc.Replicas = cfg.Replicas
		if cc.Replicas == 0 {
			cc.Replicas = externalReplicas(cc.Nc)
		}
		return cc, nil
	}
	ns, size, password, sysPassword, err := startEmbeddedNATS(cfg, node, dataDir, log)
	if err != nil {
		return nil, err
	}
	cc.Ns = ns
	cc.systemPassword = sysPassword
	cc.Replicas = min(size, maxReplicas)
	if cfg.Replicas > 0 {
		cc.Replicas = cfg.Replicas
	}
	// In-process, reconnects included (nats.go never dials a URL with
	// InProcessServer); the servers' client addresses are not even
	// gossiped (NoAdvertise), and ignored if they were.
	cc.Nc, err = nats.Connect("", nats.InProcessServer(ns), nats.Name("stompbox "+node), nats.UserInfo("node", password),
		nats.MaxReconnects(-1), nats.FlusherTimeout(2*time.Second), nats.IgnoreDiscoveredServers())
	if err != nil {
		ns.Shutdown()
		return nil, fmt.Errorf("cluster: connect to the embedded NATS: %w", err)
	}
	return cc, nil
}

// Close drains the client connection and stops the embedded server.
func (cc *Conn) Close() {
	cc.Nc.Close()
	if cc.Ns != nil {
		cc.Ns.Shutdown()
		cc.Ns.WaitForShutdown()
	}
}

// nodeName returns the configured name, else the one kept in the data
// folder, else a new one (host name and a random suffix) which it keeps:
// JetStream knows its peers by name, so a node must keep it across restarts.
func nodeName(configured, dataDir string) (string, error) {
	path := filepath.Join(dataDir, NodeNameFile)
	if configured != "" {
		// Kept too: the file marks the folder as a cluster node's (the
		// user CLI then refuses to write to it).
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return "", fmt.Errorf("cluster: node name: %w", err)
		}
		if err := os.WriteFile(path, []byte(configured+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("cluster: node name: %w", err)
		}
		return configured, nil
	}
	if b, err := os.ReadFile(path); err == nil {
		if n := strings.TrimSpace(string(b)); n != "" {
			return n, nil
		}
	}
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r == '.' || r == ' ' || r == '*' || r == '>' {
			return '-'
		}
		return r
	}, host)
	var rnd [3]byte
	rand.Read(rnd[:])
	n := strings.Trim(host+"-"+hex.EncodeToString(rnd[:]), "-")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("cluster: node name: %w", err)
	}
	if err := os.WriteFile(path, []byte(n+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("cluster: node name: %w", err)
	}
	return n, nil
}

// startEmbeddedNATS runs nats-server in this process: a client port on
// loopback only (the node talks to it in-process), a route listener on
// -cluster-listen with TLS and a password both derived from the shared
// secret (routeSecurity), routes to every peer, JetStream in the data
// folder.
// It returns the server, the cluster's size as the peer list says and
// the in-process client's password.
func startEmbeddedNATS(cfg Config, node, dataDir string, log *slog.Logger) (ns *natsserver.Server, size int, localPassword, systemPassword string, err error) {
	var pw [16]byte
	rand.Read(pw[:])
	localPassword = hex.EncodeToString(pw[:])
	rand.Read(pw[:])
	systemPassword = hex.EncodeToString(pw[:])
	if cfg.SecretFile == "" {
		return nil, 0, "", "", errors.New("cluster: -cluster-secret-file is required with -cluster-peers (the same secret on every node)")
	}
	b, err := os.ReadFile(cfg.SecretFile)
	if err != nil {
		return nil, 0, "", "", fmt.Errorf("cluster: read secret: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	if len(secret) < 16 {
		return nil, 0, "", "", fmt.Errorf("cluster: the secret in %s is shorter than 16 characters", cfg.SecretFile)
	}
	listen := cfg.Listen
	if listen == "" {
		listen = DefaultClusterListen
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, 0, "", "", fmt.Errorf("cluster: -cluster-listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, 0, "", "", fmt.Errorf("cluster: -cluster-listen %q: bad port", listen)
	}
	routePort := port
	if routePort == 0 {
		routePort = -1 // any free port: to NATS, 0 means no routes at all
	}
	if host == "" {
		host = "0.0.0.0"
	}
	name := cfg.Name
	if name == "" {
		name = DefaultClusterName
	}
	routeTLS, mode, err := routeSecurity(cfg, secret, node)
	if err != nil {
		return nil, 0, "", "", err
	}
	routePass := routePassword(secret)
	sysAccount := natsserver.NewAccount(natsserver.DEFAULT_SYSTEM_ACCOUNT)
	opts := &natsserver.Options{
		ServerName: node,
		// A client port is needed (nats-server starts routing only once
		// its client listener runs), but only on loopback, on a random
		// port, with a password that exists only in this process: the
		// node itself connects in-process.
		// The node's user is in the global account, where the streams
		// are; the system user in the system account, under its default
		// name (every node's must match).
		Host: "127.0.0.1",
		Port: -1,
		Users: []*natsserver.User{
			{Username: "node", Password: localPassword},
			{Username: systemUser, Password: systemPassword, Account: sysAccount},
		},
		Accounts:      []*natsserver.Account{sysAccount},
		SystemAccount: natsserver.DEFAULT_SYSTEM_ACCOUNT,
		JetStream:     true,
		StoreDir:      filepath.Join(dataDir, JetStreamDir),
		NoSigs:        true,
		Cluster: natsserver.ClusterOpts{
			Name:        name,
			NoAdvertise: true, // the client port is this node's own, on loopback
			Host:        host,
			Port:        routePort,
			Username:    clusterRouteUser,
			Password:    routePass,
		},
	}
	if routeTLS != nil {
		opts.Cluster.TLSConfig = routeTLS
		opts.Cluster.TLSTimeout = routeTLSTimeout
	}
	size = 1
	for _, p := range cfg.Peers {
		if isSelf(p, port) {
			continue
		}
		size++
		opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats-route", User: url.UserPassword(clusterRouteUser, routePass), Host: p})
	}
	ns, err = natsserver.NewServer(opts)
	if err != nil {
		return nil, 0, "", "", fmt.Errorf("cluster: start NATS: %w", err)
	}
	ns.SetLoggerV2(natsLogger{log.With("part", "nats")}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(natsReadyTimeout) {
		ns.Shutdown()
		return nil, 0, "", "", fmt.Errorf("cluster: NATS not ready after %s (is %s free?)", natsReadyTimeout, listen)
	}
	if mode == routeModeInsecure {
		log.Warn("cluster: ROUTES ARE NOT ENCRYPTED (-cluster-insecure): anyone on the network between the nodes can read every message, " +
			"password hash and session in the log, and forge entries with the route password; use it only on a trusted, isolated link")
	}
	log.Info("cluster: NATS started", "node", node, "cluster", name, "routes", listenAddr(ns, listen), "peers", len(opts.Routes), "route-security", string(mode))
	return ns, size, localPassword, systemPassword, nil
}

// listenAddr is the route listener's real address (useful with port 0).
func listenAddr(ns *natsserver.Server, configured string) string {
	if a := ns.ClusterAddr(); a != nil {
		return a.String()
	}
	return configured
}

// isSelf reports whether peer names this node's route listener: same port
// and a host that is one of this machine's addresses. Every node can then
// be given the same peer list.
func isSelf(peer string, port int) bool {
	h, p, err := net.SplitHostPort(peer)
	if err != nil || p != strconv.Itoa(port) {
		return false
	}
	ips, err := net.LookupIP(h)
	if err != nil {
		return false
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ip := range ips {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
				return true
			}
		}
	}
	return false
}

// connectExternalNATS connects to an existing NATS with the given
// credentials; reconnects go on forever (the node keeps serving reads).
func connectExternalNATS(cfg Config, node string, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("stompbox " + node), nats.MaxReconnects(-1), nats.FlusherTimeout(2 * time.Second)}
	switch {
	case cfg.NATSCreds != "":
		opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
	case cfg.NATSToken != "":
		opts = append(opts, nats.Token(cfg.NATSToken))
	case cfg.NATSUser != "":
		opts = append(opts, nats.UserInfo(cfg.NATSUser, cfg.NATSPass))
	}
	if cfg.NATSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.NATSCA))
	}
	if cfg.NATSCert != "" {
		opts = append(opts, nats.ClientCert(cfg.NATSCert, cfg.NATSKey))
	}
	opts = append(opts,
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("cluster: NATS disconnected", "err", err) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("cluster: NATS reconnected", "url", nc.ConnectedUrlRedacted()) }))
	nc, err := nats.Connect(strings.Join(cfg.NATS, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to NATS %s: %w", strings.Join(cfg.NATS, ","), err)
	}
	log.Info("cluster: connected to NATS", "url", nc.ConnectedUrlRedacted(), "node", node)
	return nc, nil
}

// externalReplicas is the log's replica count on an existing NATS: 1 on
// a server that is not clustered (JetStream could not place more), else
// as many servers as the connection knows of, at most maxReplicas.
func externalReplicas(nc *nats.Conn) int {
	if nc.ConnectedClusterName() == "" {
		return 1
	}
	return max(1, min(maxReplicas, len(nc.Servers())))
}

// natsLogger passes the embedded server's log to slog. A refused route
// (wrong secret, wrong CA, wrong cluster name) shows up here as an error.
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Errorf(format string, v ...any) {
	l.log.Error(routeHint(fmt.Sprintf(format, v...)))
}
func (l natsLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Tracef(format string, v ...any) {}

// routeHint adds the likely cause to NATS's message for a failed route
// handshake: with route TLS derived from the secret, a node with another
// secret fails there, before any password is checked.
func routeHint(msg string) string {
	if strings.Contains(msg, "TLS route handshake error") {
		return msg + " (does the other node have another -cluster-secret-file, or a certificate from another -cluster-tls-ca?)"
	}
	return msg
}
