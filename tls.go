package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Self-signed certificate files and lifetime (--tls-self-signed).
const (
	selfSignedCertFile = "tls-cert.pem" // in the data folder, beside the database
	selfSignedKeyFile  = "tls-key.pem"  // mode 0600: only the server's user may read it
	// selfSignedValidity is the longest lifetime Apple platforms accept for
	// a TLS server certificate, even a user-trusted one (825 days); a new
	// one is made when it runs out.
	selfSignedValidity = 825 * 24 * time.Hour
	// selfSignedBackdate covers clocks that are a little behind (a Pi
	// without a real-time clock before NTP has run).
	selfSignedBackdate = time.Hour
)

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
	if !s.cfg.tlsEnabled() {
		return ln, nil
	}
	cfg, err := s.serverTLS()
	if err != nil {
		ln.Close()
		return nil, err
	}
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"http/1.1"} // WebSocket upgrades need HTTP/1.1
	return tls.NewListener(ln, cfg), nil
}

// listenStompTLS wraps the STOMP TCP listener in TLS with the HTTPS
// certificate when TLS is on, as ActiveMQ and RabbitMQ serve stomp+ssl: a
// certificate pinned or trusted for the web UI then works for scripts
// too, and passcodes never cross the network in the clear. There is no
// ALPN name for STOMP, so none is offered. On error it closes ln.
//
// The STOMP listener sends no session tickets (issue 26). In TLS 1.3 the
// server sends its tickets after the handshake, just as the client starts
// writing; stomp.py (Python's ssl module) reads and writes one TLS socket
// from two threads at once, which OpenSSL does not support, and about one
// connect in seven lost its CONNECT while the reader thread took in the
// ticket: the server then closed it with "no CONNECT frame in time". With
// no tickets the server sends nothing until CONNECTED, and resumption buys
// nothing here: a STOMP connection lives for hours and reconnects are
// rare, unlike a browser's many short HTTPS connections, which keep them.
func (s *server) listenStompTLS(ln net.Listener) (net.Listener, error) {
	if !s.cfg.tlsEnabled() {
		return ln, nil
	}
	cfg, err := s.serverTLS()
	if err != nil {
		ln.Close()
		return nil, err
	}
	cfg = cfg.Clone()
	cfg.SessionTicketsDisabled = true
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
	cert, err := s.loadCertificate()
	if err != nil {
		return nil, err
	}
	s.log.Info("TLS certificate", "sha256", certFingerprint(cert.Leaf), "subject", cert.Leaf.Subject.CommonName,
		"names", strings.Join(certNames(cert.Leaf), ","), "valid-until", cert.Leaf.NotAfter.Format(time.DateOnly),
		"self-signed", s.cfg.TLSSelfSigned)
	s.tlsConfig = &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
	return s.tlsConfig, nil
}

// loadCertificate loads --tls-cert/--tls-key, or the self-signed pair from
// the data folder, making it first if it is missing or expired.
func (s *server) loadCertificate() (tls.Certificate, error) {
	c := s.cfg
	switch {
	case c.TLSCert != "" && c.TLSSelfSigned:
		return tls.Certificate{}, errors.New("give either -tls-cert and -tls-key or -tls-self-signed, not both")
	case c.TLSCert != "" && c.TLSKey == "":
		return tls.Certificate{}, errors.New("-tls-cert needs -tls-key")
	case c.TLSCert != "":
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("load TLS certificate: %w", err)
		}
		return cert, nil
	}
	certPath := filepath.Join(c.DataDir, selfSignedCertFile)
	keyPath := filepath.Join(c.DataDir, selfSignedKeyFile)
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil && time.Now().Before(cert.Leaf.NotAfter) {
		return cert, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("load self-signed certificate: %w", err)
	}
	hosts, ips := selfSignedNames()
	certPEM, keyPEM, err := selfSignedCert(hosts, ips, time.Now())
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("write TLS key: %w", err)
	}
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, fmt.Errorf("write TLS certificate: %w", err)
	}
	s.log.Info("made a self-signed TLS certificate", "file", certPath)
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load self-signed certificate: %w", err)
	}
	return cert, nil
}

// selfSignedNames are the names a self-signed certificate covers: localhost,
// the machine's host name (and its mDNS .local name, as a Pi is usually
// reached), loopback, and every non-loopback interface address, since an
// intranet without DNS reaches the box by IP.
func selfSignedNames() (hosts []string, ips []net.IP) {
	hosts = []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		hosts = append(hosts, h)
		if !strings.Contains(h, ".") {
			hosts = append(hosts, h+".local")
		}
	}
	ips = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	addrs, _ := net.InterfaceAddrs() // no interfaces listed: loopback still works
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			ips = append(ips, ipn.IP)
		}
	}
	return hosts, ips
}

// selfSignedCert makes an ECDSA P-256 certificate for hosts and ips, valid
// from an hour before now for selfSignedValidity, and returns it and its
// key in PEM.
func selfSignedCert(hosts []string, ips []net.IP, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("generate TLS serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[len(hosts)-1], Organization: []string{"stompbox self-signed"}},
		NotBefore:             now.Add(-selfSignedBackdate),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, // CA:FALSE: Firefox refuses a CA certificate as a server's
		DNSNames:              hosts,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create TLS certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode TLS key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// certFingerprint is the SHA-256 of the certificate, in the colon-separated
// hex that browsers show in their certificate viewers.
func certFingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// certNames lists a certificate's DNS names and IP addresses, for the log.
func certNames(c *x509.Certificate) []string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}
