package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/latchkey/latchkey/cmd/latchkey/internal/webhook"
	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/storage"
)

// healthHandler serves /healthz (the process answers) and /ready (it can
// serve: the database answers, the signing keys are loaded, the schema
// is this build's). Each check says what failed, in JSON; nothing secret.
func (s *server) healthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Path == "/healthz" {
			_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
			return
		}
		checks := s.ready(r.Context())
		status, code := "ok", http.StatusOK
		for _, v := range checks {
			if v != "ok" {
				status, code = "unavailable", http.StatusServiceUnavailable
			}
		}
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "checks": checks})
	})
}

// ready runs the readiness checks: "ok" or what is wrong, by name.
func (s *server) ready(ctx context.Context) map[string]string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	out := map[string]string{"database": "ok", "keys": "ok", "migrations": "ok"}
	if err := s.app.store.Health(ctx); err != nil {
		out["database"] = "unreachable"
		s.app.log.WarnContext(ctx, "ready: database unreachable", "err", err)
	}
	if _, _, ok := s.op.SigningKey(); !ok {
		out["keys"] = "not loaded"
	}
	v, err := s.app.store.SchemaVersion(ctx)
	switch {
	case err != nil:
		out["migrations"] = "unknown"
	case v != storage.LatestMigration():
		out["migrations"] = fmt.Sprintf("database at %q, this build needs %q", v, storage.LatestMigration())
	}
	return out
}

// healthURL is where "latchkey health" asks by default: /ready on this
// machine's listen port.
func healthURL(addr string, tlsOn bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/ready", nil
}

// checkHealth GETs url: nil for a 200. On loopback https the certificate
// is not verified: it is issued for the public name, and the check asks
// whether this process serves, not who it is (nothing secret is sent).
func checkHealth(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	tr := &http.Transport{}
	if ip := net.ParseIP(req.URL.Hostname()); req.URL.Scheme == "https" && (req.URL.Hostname() == "localhost" || ip != nil && ip.IsLoopback()) {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // loopback liveness check, see above
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}

// webhookEvents is storage's queue filter: the security events, when a
// webhook is configured (nil otherwise: nothing is queued).
func webhookEvents(cfg *config.Config) func(string) bool {
	if cfg.Events.WebhookURL == "" {
		return nil
	}
	return webhook.IsSecurityEvent
}
