package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestListen: a change to signing keys, clients or organisations made
// through one store (another instance, the command line) is announced to
// a listener on another store of the same database at commit; a change in
// another schema of the same database is not. SQLite has no
// announcements.
func TestListen(t *testing.T) {
	t.Parallel()
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			if d.Name == storage.DialectSQLite {
				s := d.Open(t)
				if err := s.Listen(t.Context(), func(string) {}, nil); !errors.Is(err, storage.ErrNoNotifications) {
					t.Fatalf("sqlite: %v", err)
				}
				return
			}
			url := d.URL(t)
			open := func() *storage.Store {
				s, err := storage.Open(t.Context(), url, storage.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				if err := s.Migrate(t.Context()); err != nil {
					t.Fatal(err)
				}
				return s
			}
			a, b := open(), open()
			other := d.Open(t) // another schema of the same database

			topics := make(chan string, 16)
			ready := make(chan struct{}, 1)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				done <- a.Listen(ctx, func(topic string) { topics <- topic }, func() { ready <- struct{}{} })
			}()
			t.Cleanup(func() {
				cancel()
				<-done
			})
			waitFor := func(what string, ch <-chan string, want string) {
				t.Helper()
				select {
				case got := <-ch:
					if got != want {
						t.Fatalf("%s: topic %q, want %q", what, got, want)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("%s: no announcement of %q", what, want)
				}
			}
			<-ready
			// The listener first hears every topic (it may have missed some).
			for _, want := range []string{storage.TopicKeys, storage.TopicClients, storage.TopicOrganizations} {
				waitFor("on attach", topics, want)
			}

			now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
			// Another schema's change first: if it were heard, the next
			// topic would be "clients", not "keys".
			if err := other.CreateClient(ctx, storage.Client{ID: "elsewhere", CreatedAt: now, UpdatedAt: now}); err != nil {
				t.Fatal(err)
			}
			if err := b.UpdateSigningKeys(ctx, func([]storage.SigningKey) ([]storage.SigningKey, []string, error) {
				return []storage.SigningKey{{ID: "k1", Algorithm: "ES256", CreatedAt: now, NotBefore: now, RetireAt: now.Add(time.Hour)}}, nil, nil
			}); err != nil {
				t.Fatal(err)
			}
			waitFor("signing key added", topics, storage.TopicKeys)
			if err := b.CreateClient(ctx, storage.Client{ID: "app", CreatedAt: now, UpdatedAt: now}); err != nil {
				t.Fatal(err)
			}
			waitFor("client created", topics, storage.TopicClients)
			if err := b.DeleteClient(ctx, "app"); err != nil {
				t.Fatal(err)
			}
			waitFor("client deleted", topics, storage.TopicClients)
			if _, err := b.CreateOrganization(ctx, storage.Organization{Name: "Acme", Domains: []string{"acme.test"}, CreatedAt: now, UpdatedAt: now}); err != nil {
				t.Fatal(err)
			}
			waitFor("organisation created", topics, storage.TopicOrganizations)
		})
	}
}
