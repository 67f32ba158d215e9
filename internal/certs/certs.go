package certs

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
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Options says where the server's certificate comes from: files an
// administrator gave, or a self-signed one kept in the data folder.
type Options struct {
	TLSCert, TLSKey string // PEM files (-tls-cert, -tls-key)
	TLSSelfSigned   bool   // make and keep a self-signed certificate (-tls-self-signed)
	DataDir         string // where the self-signed certificate is kept
}

// Load loads --tls-cert/--tls-key, or the self-signed pair from
// the data folder, making it first if it is missing or expired.
func Load(c Options, log *slog.Logger) (tls.Certificate, error) {
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
	certPath := filepath.Join(c.DataDir, SelfSignedCertFile)
	keyPath := filepath.Join(c.DataDir, SelfSignedKeyFile)
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil && time.Now().Before(cert.Leaf.NotAfter) {
		return cert, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("load self-signed certificate: %w", err)
	}
	hosts, ips := selfSignedNames()
	certPEM, keyPEM, err := SelfSigned(hosts, ips, time.Now())
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("write TLS key: %w", err)
	}
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, fmt.Errorf("write TLS certificate: %w", err)
	}
	log.Info("made a self-signed TLS certificate", "file", certPath)
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load self-signed certificate: %w", err)
	}
	return cert, nil
}

// Self-signed certificate files and lifetime (--tls-self-signed).
const (
	SelfSignedCertFile = "tls-cert.pem" // in the data folder, beside the database
	SelfSignedKeyFile  = "tls-key.pem"  // mode 0600: only the server's user may read it
	// selfSignedValidity is the longest lifetime Apple platforms accept for
	// a TLS server certificate, even a user-trusted one (825 days); a new
	// one is made when it runs out.
	selfSignedValidity = 825 * 24 * time.Hour
	// selfSignedBackdate covers clocks that are a little behind (a Pi
	// without a real-time clock before NTP has run).
	selfSignedBackdate = time.Hour
)

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

// SelfSigned makes an ECDSA P-256 certificate for hosts and ips, valid
// from an hour before now for selfSignedValidity, and returns it and its
// key in PEM.
func SelfSigned(hosts []string, ips []net.IP, now time.Time) (certPEM, keyPEM []byte, err error) {
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

// Fingerprint is the SHA-256 of the certificate, in the colon-separated
// hex that browsers show in their certificate viewers.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// Names lists a certificate's DNS names and IP addresses, for the log.
func Names(c *x509.Certificate) []string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}
