package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/cmd/latchkey/internal/webhook"
	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestWebhookSignedDelivery: security events reach the webhook signed
// with HMAC-SHA256 (checked by the receiver), a failed delivery is
// retried after its back-off, routine events are not sent, and the queue
// shows in the metrics.
func TestWebhookSignedDelivery(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		const secret = "webhook-secret-0123456789abcdef-0123"
		var mu sync.Mutex
		var got []webhook.Payload
		fail := 1 // the first delivery meets a receiver that is down
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
				t.Errorf("receiver: %v", err)
				http.Error(w, "bad signature", http.StatusUnauthorized)
				return
			}
			if webhook.Verify("another-secret-0123456789abcdef-0123", r.Header.Get(webhook.SignatureHeader), body, time.Now(), time.Minute) == nil {
				t.Error("a signature verified under another secret")
			}
			mu.Lock()
			defer mu.Unlock()
			if fail > 0 {
				fail--
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			var p webhook.Payload
			if err := json.Unmarshal(body, &p); err != nil {
				t.Errorf("receiver: %v", err)
			}
			got = append(got, p)
		}))
		defer recv.Close()
		e := newTestEnv(t, d, func(c *config.Config) { c.Events.WebhookURL, c.Events.WebhookSecret = recv.URL, secret })
		e.newRP("shop")
		u := e.createUser("ada@example.com")
		b := e.newBrowser()
		p := b.start(e.newRP("app"))
		p = b.submit(p, "/login/identify", url.Values{"email": {u.Email}})
		b.submit(p, "/login/password", url.Values{"password": {"not the password at all"}})

		ctx := context.Background()
		n, err := e.srv.webhook.DeliverDue(ctx)
		if err != nil || n != 0 {
			t.Fatalf("first round: %d delivered, %v (the receiver was down)", n, err)
		}
		text := scrape(t, e.srv.metrics.Handler())
		if metric(text, `latchkey_outbox_pending{queue="events"}`) != "1" || metric(text, `latchkey_webhook_deliveries_total{result="retry"}`) != "1" {
			t.Fatalf("queue metrics:\n%s", text)
		}
		// Not before the back-off…
		if n, _ := e.srv.webhook.DeliverDue(ctx); n != 0 {
			t.Fatal("retried before its back-off")
		}
		e.clock.Advance(webhook.Backoff(1))
		if n, err := e.srv.webhook.DeliverDue(ctx); err != nil || n != 1 {
			t.Fatalf("retry: %d delivered, %v", n, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 1 || got[0].Type != "signin.failure" || got[0].Email != u.Email || got[0].Reason != "wrong password" || got[0].ID == "" {
			t.Fatalf("delivered: %+v", got)
		}
		for _, p := range got {
			if strings.HasPrefix(p.Type, "code.") {
				t.Fatalf("a routine event was sent: %+v", p)
			}
		}
		text = scrape(t, e.srv.metrics.Handler())
		if metric(text, `latchkey_outbox_pending{queue="events"}`) != "0" {
			t.Fatalf("queue not drained:\n%s", text)
		}
	})
}
