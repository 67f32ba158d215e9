package testutil

// ca.go: a private CA and node certificates, as an administrator would
// make them with openssl, for the cluster's -cluster-tls-* tests.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PrivateCA is the files WritePrivateCA wrote: the CA's certificate, and
// each node's certificate and key, by node name.
type PrivateCA struct {
	CA        string
	Cert, Key map[string]string
}

// WritePrivateCA writes dir/ca.pem and, for each node, dir/NODE.pem and
// dir/NODE-key.pem: a certificate for NODE, localhost and 127.0.0.1,
// signed by the CA, for TLS servers and clients alike.
func WritePrivateCA(t testing.TB, dir string, nodes ...string) PrivateCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "office CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	out := PrivateCA{CA: filepath.Join(dir, "ca.pem"), Cert: map[string]string{}, Key: map[string]string{}}
	writePEM(t, out.CA, "CERTIFICATE", caDER)
	for i, node := range nodes {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: node},
			DNSNames: []string{node, "localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		out.Cert[node] = filepath.Join(dir, node+".pem")
		out.Key[node] = filepath.Join(dir, node+"-key.pem")
		writePEM(t, out.Cert[node], "CERTIFICATE", der)
		writePEM(t, out.Key[node], "PRIVATE KEY", keyDER)
	}
	return out
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
