package cluster

// Route security: how the embedded NATS servers of a cluster's nodes
// encrypt and authenticate the routes between them.
//
// What it promises:
//   - Routes are TLS with mutual authentication unless -cluster-insecure
//     says otherwise (and the node then logs a warning at start).
//   - With no certificate options, every node derives the same route CA
//     from the cluster secret (routeCA), and at each start makes its own
//     key and a certificate signed by that CA, in memory only: nothing to
//     set up beyond the secret file, nothing written to disk. A node with
//     another secret derives another CA, and the TLS handshake fails
//     before any route protocol is spoken.
//   - With -cluster-tls-cert/-key/-ca, the given CA verifies peers both
//     when this node accepts a route and when it dials one; a certificate
//     without a CA is refused at start.
//   - The secret itself never crosses the wire: routes authenticate with
//     a password derived from it (routePassword), which travels inside
//     TLS (and in clear only with -cluster-insecure).

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"
)

// Derivation labels: changing one makes nodes of different versions
// refuse each other, so each carries a version.
const (
	routeCALabel       = "stompbox route CA v1"
	routePasswordLabel = "stompbox route password v1"
	// routeServerName is the one DNS name in every derived node
	// certificate, and the name a node asks for when it dials a peer:
	// peers are known by whatever address the peer lists give (names,
	// IPs, addresses learned from other nodes), so the derived
	// certificates are verified by their CA, not by a host name.
	routeServerName = "stompbox-route"
	// routeTLSTimeout bounds a route's TLS handshake (NATS's default is
	// 2 s; a busy Raspberry Pi with an RSA certificate may need more).
	routeTLSTimeout = 5
)

// Route certificates' validity: fixed and wide. Every node must build
// the very same CA certificate, and a Raspberry Pi without a clock
// battery may start with its clock days or years off: a validity tied
// to the present would make such a node refuse its peers. The node keys
// are new at every start and never leave the process.
var (
	routeNotBefore = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	routeNotAfter  = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// routeMode says how a node's routes are protected (logged at start).
type routeMode string

const (
	routeModeSecret   routeMode = "tls (derived from the secret)"
	routeModeCA       routeMode = "tls (-cluster-tls-ca)"
	routeModeInsecure routeMode = "INSECURE plaintext (-cluster-insecure)"
)

// routeSecurity is a node's route TLS configuration (nil with
// -cluster-insecure) and what it is, from the options and the secret.
func routeSecurity(cfg Config, secret, node string) (*tls.Config, routeMode, error) {
	anyFile := cfg.TLSCert != "" || cfg.TLSKey != "" || cfg.TLSCA != ""
	switch {
	case cfg.Insecure && anyFile:
		return nil, "", errors.New("cluster: -cluster-insecure turns route TLS off; it cannot go with -cluster-tls-cert, -cluster-tls-key or -cluster-tls-ca")
	case cfg.Insecure:
		return nil, routeModeInsecure, nil
	case anyFile:
		tc, err := fileRouteTLS(cfg.TLSCert, cfg.TLSKey, cfg.TLSCA)
		if err != nil {
			return nil, "", err
		}
		return tc, routeModeCA, nil
	}
	tc, err := derivedRouteTLS(secret, node)
	if err != nil {
		return nil, "", err
	}
	return tc, routeModeSecret, nil
}

// fileRouteTLS is the route TLS from an administrator's files: this
// node's certificate and key, and the CA that verifies every peer, both
// the ones dialing in and the ones this node dials (whose certificates
// must also name the host or address the peer list gives for them).
func fileRouteTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	switch {
	case certFile == "":
		return nil, errors.New("cluster: -cluster-tls-key and -cluster-tls-ca need -cluster-tls-cert (this node's certificate)")
	case keyFile == "":
		return nil, errors.New("cluster: -cluster-tls-cert needs -cluster-tls-key (its private key)")
	case caFile == "":
		return nil, errors.New("cluster: -cluster-tls-cert needs -cluster-tls-ca: without the CA that signed the nodes' certificates a node cannot verify its peers")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster: route TLS certificate: %w", err)
	}
	pemCA, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("cluster: route TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemCA) {
		return nil, fmt.Errorf("cluster: route TLS CA: no PEM certificate in %s", caFile)
	}
	return mutualTLS(cert, pool, ""), nil
}

// derivedRouteTLS is the route TLS made from the secret: the cluster's
// CA and a new certificate for this node signed by it.
func derivedRouteTLS(secret, node string) (*tls.Config, error) {
	ca, caKey, err := routeCA(secret)
	if err != nil {
		return nil, err
	}
	cert, err := routeNodeCert(ca, caKey, node)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return mutualTLS(cert, pool, routeServerName), nil
}

// mutualTLS is a route TLS configuration: cert on both sides of a route,
// and the peer's certificate verified against pool on both sides.
// serverName, when set, is the name checked in a dialed peer's
// certificate whatever its address; empty, NATS checks the dialed host.
func mutualTLS(cert tls.Certificate, pool *x509.CertPool, serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13, // both ends are stompbox
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool, // peers this node dials
		ClientCAs:    pool, // peers that dial this node
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ServerName:   serverName,
	}
}

// routeCA derives the cluster's route CA from the secret: an Ed25519 key
// from HKDF-SHA256 and a self-signed certificate with fixed fields, so
// every node with the secret builds the same CA, and only they can sign
// for it.
func routeCA(secret string) (*x509.Certificate, ed25519.PrivateKey, error) {
	seed, err := hkdf.Key(sha256.New, []byte(secret), nil, routeCALabel, ed25519.SeedSize)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: route CA: %w", err)
	}
	key := ed25519.NewKeyFromSeed(seed)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "stompbox route CA"},
		NotBefore:             routeNotBefore,
		NotAfter:              routeNotAfter,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key) // Ed25519 signs deterministically
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: route CA: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: route CA: %w", err)
	}
	return ca, key, nil
}

// routeNodeCert makes this node's route certificate: a new key, signed
// by the route CA, good as a TLS server and as a TLS client.
func routeNodeCert(ca *x509.Certificate, caKey ed25519.PrivateKey, node string) (tls.Certificate, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cluster: route certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cluster: route certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: node},
		DNSNames:     []string{routeServerName},
		NotBefore:    routeNotBefore,
		NotAfter:     routeNotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cluster: route certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cluster: route certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// routePassword is the route password every node derives from the
// secret: it is what a route's CONNECT carries, so that the secret
// itself (which also makes the route CA) never leaves the node.
func routePassword(secret string) string {
	pw, err := hkdf.Key(sha256.New, []byte(secret), nil, routePasswordLabel, 32)
	if err != nil { // only for a length HKDF-SHA256 cannot give
		panic(err)
	}
	return hex.EncodeToString(pw)
}
