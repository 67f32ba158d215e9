// Package certs owns the server's TLS certificate: it loads the one given
// by -tls-cert and -tls-key, or makes a self-signed ECDSA P-256
// certificate for this machine's names and addresses and keeps it in the
// data folder (the key readable by the server's user only), making a new
// one when it has expired. Fingerprint and Names describe a certificate
// for the log.
//
// What it promises: Load either returns a usable certificate or says why
// not; it never opens a listener. The TLS listeners are main's wiring.
//
// It owns no interface. It is a leaf: it imports no package of stompbox
// (layout_test.go).
package certs
