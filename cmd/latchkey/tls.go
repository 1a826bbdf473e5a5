package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certReloader serves the certificate of tls.cert_file/key_file and
// loads it again when either file changes (a renewal by certbot, an
// ACME client or a secret mount), without a restart. It looks at the
// files' size and modification time at each TLS handshake — two stat
// calls, nothing on requests of a kept-alive connection — and keeps the
// certificate it has if the new files do not load (a renewal caught
// between writing the certificate and the key), logging why.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp
	lastErr string
}

type fileStamp struct {
	size int64
	mod  time.Time
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{size: fi.Size(), mod: fi.ModTime()}, nil
}

// newCertReloader loads the pair once: a server must not start without a
// certificate.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.load(); err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return r, nil
}

func (r *certReloader) stamps() ([2]fileStamp, error) {
	c, err1 := stampOf(r.certFile)
	k, err2 := stampOf(r.keyFile)
	return [2]fileStamp{c, k}, errors.Join(err1, err2)
}

// load reads the pair; r.mu is held or r is not shared yet.
func (r *certReloader) load() error {
	st, err := r.stamps()
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	r.cert, r.stamp = &cert, st
	return nil
}

// getCertificate is tls.Config.GetCertificate.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, err := r.stamps(); err == nil && st != r.stamp {
		if err := r.load(); err != nil {
			if msg := err.Error(); msg != r.lastErr {
				r.lastErr = msg
				r.log.Error("tls: the changed certificate files do not load; serving the previous certificate", "err", err)
			}
		} else {
			r.lastErr = ""
			r.log.Info("tls: certificate reloaded", "cert_file", r.certFile)
		}
	}
	return r.cert, nil
}

// tlsConfig is the server's TLS: 1.2 at least, HTTP/2 offered first.
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.getCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}
