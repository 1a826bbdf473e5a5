package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with serial
// into certFile/keyFile and returns it.
func writeCert(t *testing.T, certFile, keyFile string, serial int64) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "latchkey test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// TestTLSWithReload: serve speaks HTTP/2 over TLS from certificate files
// and picks up a renewed certificate without a restart; files that do
// not load keep the previous certificate.
func TestTLSWithReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := writeCert(t, certFile, keyFile, 1)
	e := newTestEnv(t, storagetest.Dialects(t)[0], func(c *config.Config) {
		c.TLS.CertFile, c.TLS.KeyFile = certFile, keyFile
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	url := "https://" + ln.Addr().String() + "/healthz"
	roots := x509.NewCertPool()
	roots.AddCert(first)
	// get fetches on a new connection and returns the protocol and the
	// serial of the certificate the server presented.
	get := func(roots *x509.CertPool) (string, int64, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(url)
		if err != nil {
			return "", 0, err
		}
		defer resp.Body.Close()
		return resp.Proto, resp.TLS.PeerCertificates[0].SerialNumber.Int64(), nil
	}
	// The listener is open: a connection waits in its backlog until serve
	// accepts it.
	proto, serial, err := get(roots)
	if err != nil || proto != "HTTP/2.0" || serial != 1 {
		t.Fatalf("first: %s serial %d, %v", proto, serial, err)
	}
	// Plain http on the TLS port is refused.
	if resp, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil && resp.StatusCode == http.StatusOK {
		t.Fatal("plain http served on the TLS port")
	}

	// Renewal: new files, a later modification time.
	second := writeCert(t, certFile, keyFile, 2)
	later := time.Now().Add(time.Hour)
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	roots.AddCert(second)
	if _, serial, err = get(roots); err != nil || serial != 2 {
		t.Fatalf("after renewal: serial %d, %v", serial, err)
	}
	// A half-written renewal (the key missing) keeps the certificate.
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, serial, err = get(roots); err != nil || serial != 2 {
		t.Fatalf("with a broken key file: serial %d, %v", serial, err)
	}
}

// TestTLSRefusesBadFiles: serve does not start without a certificate.
func TestTLSRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	e := newTestEnv(t, storagetest.Dialects(t)[0], func(c *config.Config) {
		c.TLS.CertFile, c.TLS.KeyFile = filepath.Join(dir, "missing.pem"), filepath.Join(dir, "missing.key")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.serve(context.Background(), ln); err == nil {
		t.Fatal("served without a certificate")
	}
}
