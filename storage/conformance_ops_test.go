package storage_test

// Conformance of the methods the operator's tools use: user search, audit
// search with a cursor, client updates, the administrator's revocation
// causes, the security-event delivery queue, the schema version, pool
// statistics and backups.

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
)

func testSearchUsers(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	for _, e := range []string{"bob@example.com", "Ada@Example.com", "adam@example.com", "ad@other.org", "zed@example.com"} {
		newUser(t, s, e)
	}
	emails := func(us []storage.User) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.Email)
		}
		return out
	}
	equal(t, emails(must(s.SearchUsers(ctx, storage.UserQuery{EmailPrefix: "AD"}))(t)),
		[]string{"ad@other.org", "Ada@Example.com", "adam@example.com"})
	equal(t, emails(must(s.SearchUsers(ctx, storage.UserQuery{EmailPrefix: "ada"}))(t)), []string{"Ada@Example.com", "adam@example.com"})
	equal(t, len(must(s.SearchUsers(ctx, storage.UserQuery{EmailPrefix: "nobody"}))(t)), 0)
	// Pages by email.
	p1 := must(s.SearchUsers(ctx, storage.UserQuery{Limit: 2}))(t)
	equal(t, emails(p1), []string{"ad@other.org", "Ada@Example.com"})
	p2 := must(s.SearchUsers(ctx, storage.UserQuery{Limit: 2, After: p1[1].Email}))(t)
	equal(t, emails(p2), []string{"adam@example.com", "bob@example.com"})
	p3 := must(s.SearchUsers(ctx, storage.UserQuery{Limit: 2, After: p2[1].Email}))(t)
	equal(t, emails(p3), []string{"zed@example.com"})
	// Wildcards are not wildcards.
	equal(t, len(must(s.SearchUsers(ctx, storage.UserQuery{EmailPrefix: "%"}))(t)), 0)
	equal(t, len(must(s.SearchUsers(ctx, storage.UserQuery{EmailPrefix: "_d"}))(t)), 0)
}

func testAuditSearch(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	for i := range 6 {
		ev := "signin.success"
		if i%3 == 0 {
			ev = "signin.failure"
		}
		ok(t, s.CreateAuditEvent(ctx, storage.AuditEvent{At: at(time.Duration(i/2) * time.Minute), UserID: "u", Event: ev, Reason: fmt.Sprint(i)}))
	}
	reasons := func(es []storage.AuditEvent) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Reason)
		}
		return out
	}
	equal(t, reasons(must(s.ListAuditEvents(ctx, storage.AuditFilter{Events: []string{"signin.failure"}}))(t)), []string{"3", "0"})
	equal(t, reasons(must(s.ListAuditEvents(ctx, storage.AuditFilter{Since: at(time.Minute), Until: at(time.Minute)}))(t)), []string{"3", "2"})
	// A cursor walks every event once, through equal instants too.
	var walked []string
	f := storage.AuditFilter{Limit: 4}
	for {
		page := must(s.ListAuditEvents(ctx, f))(t)
		walked = append(walked, reasons(page)...)
		if len(page) < f.Limit {
			break
		}
		last := page[len(page)-1]
		f.Before = &storage.AuditCursor{At: last.At, ID: last.ID}
	}
	equal(t, walked, []string{"5", "4", "3", "2", "1", "0"})
}

func testUpdateClient(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	ok(t, s.CreateClient(ctx, storage.Client{ID: "ops", Name: "Ops", GrantTypes: []string{"client_credentials"}, CreatedAt: at(0)}))
	c := must(s.UpdateClient(ctx, "ops", func(c *storage.Client) error {
		c.ID, c.Name, c.AdminAccess, c.SecretHash = "other", "Ops team", storage.AdminRead, digest("s")
		return nil
	}))(t)
	equal(t, c.ID, "ops")
	got := must(s.GetClient(ctx, "ops"))(t)
	equal(t, []any{got.Name, got.AdminAccess, got.SecretHash}, []any{"Ops team", storage.AdminRead, digest("s")})
	_, err := s.UpdateClient(ctx, "missing", func(*storage.Client) error { return nil })
	wantErr(t, err, storage.ErrNotFound)
	// A re-sync carries the access level.
	ok(t, s.SyncClients(ctx, "config", []storage.Client{{ID: "cfg", AdminAccess: storage.AdminFull}}))
	equal(t, must(s.GetClient(ctx, "cfg"))(t).AdminAccess, storage.AdminFull)
	ok(t, s.SyncClients(ctx, "config", []storage.Client{{ID: "cfg"}}))
	equal(t, must(s.GetClient(ctx, "cfg"))(t).AdminAccess, "")
}

// testRevokeOperatorCauses: the administrator's rows of the RevokeCause
// table (reset 2-step, sign out everywhere, delete).
func testRevokeOperatorCauses(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	for i, tc := range []struct {
		cause          storage.RevokeCause
		factorsRemoved bool
		userDeleted    bool
	}{
		{storage.RevokeSecondStepReset, true, false},
		{storage.RevokeAdminSignOut, false, false},
		{storage.RevokeUserDeleted, true, true},
	} {
		t.Run(string(tc.cause), func(t *testing.T) {
			email := fmt.Sprintf("op%d@example.com", i)
			u := newUser(t, s, email)
			other := newUser(t, s, "other-"+email)
			sess := must(s.CreateSession(ctx, storage.Session{UserID: u.ID, TokenHash: digest(email), CreatedAt: at(0)}))(t)
			must(s.CreateSession(ctx, storage.Session{UserID: other.ID, TokenHash: digest("o" + email), CreatedAt: at(0)}))(t)
			fam := newFamily(t, s, email+"f", u.ID, sess.ID, "app")
			accessToken(t, s, email+"-at", fam)
			ok(t, s.CreateAccessToken(ctx, storage.AccessToken{ID: email + "-code-at", ClientID: "app", UserID: u.ID, CreatedAt: at(0), ExpiresAt: at(time.Hour)}))
			must(s.CreateTrustedDevice(ctx, storage.TrustedDevice{UserID: u.ID, TokenHash: digest(email + "d"), CreatedAt: at(0), ExpiresAt: at(time.Hour)}))(t)
			ok(t, s.SetBackupCode(ctx, storage.BackupCode{UserID: u.ID, CodeHash: digest(email + "b"), CreatedAt: at(0)}, storage.BackupCodeShow{}))
			must(s.CreateTOTP(ctx, storage.TOTPCredential{UserID: u.ID, SeedSealed: []byte("s"), Status: storage.TOTPActive, CreatedAt: at(0)}))(t)
			must(s.CreateEmailCode(ctx, storage.EmailCode{UserID: u.ID, Purpose: "signin", CodeHash: digest(email + "c"), CreatedAt: at(0), ExpiresAt: at(time.Hour)}))(t)
			ok(t, s.CreateFederatedIdentity(ctx, storage.FederatedIdentity{OrgID: "org", Subject: email, UserID: u.ID, CreatedAt: at(0)}))

			got := must(s.RevokeUserGrants(ctx, u.ID, storage.Revocation{Cause: tc.cause}, at(time.Hour)))(t)
			equal(t, got.SessionIDs, []string{sess.ID})
			equal(t, len(must(s.ListSessions(ctx, u.ID))(t)), 0)
			equal(t, len(must(s.ListRefreshFamilies(ctx, u.ID))(t)), 0)
			equal(t, len(must(s.ListTrustedDevices(ctx, u.ID))(t)), 0)
			_, berr := s.GetBackupCode(ctx, u.ID)
			if removed := errors.Is(berr, storage.ErrNotFound) && len(must(s.ListTOTP(ctx, u.ID))(t)) == 0; removed != tc.factorsRemoved {
				t.Fatalf("2-step methods removed = %v, want %v", removed, tc.factorsRemoved)
			}
			_, uerr := s.GetUser(ctx, u.ID)
			if deleted := errors.Is(uerr, storage.ErrNotFound); deleted != tc.userDeleted {
				t.Fatalf("user deleted = %v (%v), want %v", deleted, uerr, tc.userDeleted)
			}
			if tc.userDeleted {
				for _, table := range []string{"access_tokens", "refresh_tokens", "refresh_families", "email_codes", "federated_identities"} {
					if slices.Contains(keys(t, s, table, "user_id"), u.ID) {
						t.Fatalf("%s: rows of the deleted user left", table)
					}
				}
				// The email is free again.
				newUser(t, s, email)
			}
			equal(t, len(must(s.ListSessions(ctx, other.ID))(t)), 1)
		})
	}
	_, err := s.RevokeUserGrants(ctx, "missing", storage.Revocation{Cause: storage.RevokeUserDeleted}, at(0))
	wantErr(t, err, storage.ErrNotFound)
}

func testEventDeliveries(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	// Without a queue, nothing is queued.
	ok(t, s.CreateAuditEvent(ctx, storage.AuditEvent{At: at(0), Event: "signin.failure"}))
	equal(t, len(must(s.ClaimEventDeliveries(ctx, at(time.Hour), time.Minute, 10))(t)), 0)

	storage.SetQueueEvent(s, func(e string) bool { return e != "code.sent" })
	ok(t, s.CreateAuditEvent(ctx, storage.AuditEvent{At: at(time.Second), UserID: "u1", Event: "signin.failure", Reason: "wrong password"}))
	ok(t, s.CreateAuditEvent(ctx, storage.AuditEvent{At: at(2 * time.Second), Event: "code.sent"}))
	ok(t, s.CreateAuditEvent(ctx, storage.AuditEvent{At: at(3 * time.Second), UserID: "u2", Event: "refresh.reused"}))
	n, oldest := must2(s.EventQueueStats(ctx))(t)
	equal(t, n, 2)
	equal(t, oldest, at(time.Second))

	// Not due before its time.
	equal(t, len(must(s.ClaimEventDeliveries(ctx, at(0), time.Minute, 10))(t)), 0)
	ds := must(s.ClaimEventDeliveries(ctx, at(time.Minute), time.Minute, 10))(t)
	equal(t, len(ds), 2)
	equal(t, []string{ds[0].Event.Event, ds[0].Event.Reason, ds[1].Event.Event}, []string{"signin.failure", "wrong password", "refresh.reused"})
	equal(t, ds[0].Attempts, 1)
	equal(t, ds[0].CreatedAt, at(time.Second))
	// Claimed: nobody else gets them during the lease…
	equal(t, len(must(s.ClaimEventDeliveries(ctx, at(time.Minute+30*time.Second), time.Minute, 10))(t)), 0)
	// …and after it, a dead worker's claim is taken over.
	again := must(s.ClaimEventDeliveries(ctx, at(2*time.Minute+time.Millisecond), time.Minute, 1))(t)
	equal(t, len(again), 1)
	equal(t, again[0].Attempts, 2)

	ok(t, s.FinishEventDelivery(ctx, ds[0].ID, at(3*time.Minute), false, ""))
	ok(t, s.RetryEventDelivery(ctx, ds[1].ID, at(10*time.Minute), "503 Service Unavailable"))
	equal(t, len(must(s.ClaimEventDeliveries(ctx, at(9*time.Minute), time.Minute, 10))(t)), 0)
	retry := must(s.ClaimEventDeliveries(ctx, at(10*time.Minute), time.Minute, 10))(t)
	equal(t, len(retry), 1)
	equal(t, retry[0].ID, ds[1].ID)
	ok(t, s.FinishEventDelivery(ctx, retry[0].ID, at(11*time.Minute), true, "gave up"))
	n, oldest = must2(s.EventQueueStats(ctx))(t)
	equal(t, n, 0)
	equal(t, oldest, time.Time{})
	wantErr(t, s.FinishEventDelivery(ctx, 987654, at(0), false, ""), storage.ErrNotFound)
	wantErr(t, s.RetryEventDelivery(ctx, 987654, at(0), ""), storage.ErrNotFound)

	// Done deliveries are swept after EventDeliveryKeep.
	equal(t, len(keys(t, s, "event_deliveries", "id")), 2)
	ok(t, s.Sweep(ctx, at(11*time.Minute+time.Hour), storage.SweepPolicy{EventDeliveryKeep: time.Hour}))
	equal(t, len(keys(t, s, "event_deliveries", "id")), 1)
	ok(t, s.Sweep(ctx, at(11*time.Minute+time.Hour+time.Millisecond), storage.SweepPolicy{EventDeliveryKeep: time.Hour}))
	equal(t, len(keys(t, s, "event_deliveries", "id")), 0)
}

// testEventDeliveriesClaimedOnce: workers of several instances claiming
// at once never deliver one event twice.
func testEventDeliveriesClaimedOnce(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	storage.SetQueueEvent(s, func(string) bool { return true })
	const events = 60
	for i := range events {
		ok(t, s.CreateAuditEvent(ctx, storage.AuditEvent{At: at(time.Duration(i) * time.Millisecond), Event: fmt.Sprint("e", i)}))
	}
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for {
				ds, err := s.ClaimEventDeliveries(ctx, at(time.Minute), time.Hour, 4)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					seen[d.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	equal(t, len(seen), events)
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("delivery %d claimed %d times", id, n)
		}
	}
}

func testSchemaAndStats(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	equal(t, must(s.SchemaVersion(ctx))(t), storage.LatestMigration())
	stats := s.PoolStats()
	names := make([]string, 0, len(stats))
	for n, st := range stats {
		names = append(names, n)
		if st.MaxOpenConnections <= 0 {
			t.Fatalf("pool %s: %+v", n, st)
		}
	}
	slices.Sort(names)
	if s.Dialect() == storage.DialectPostgres {
		equal(t, names, []string{"primary"})
		if err := s.Backup(ctx, filepath.Join(t.TempDir(), "b.db")); err == nil {
			t.Fatal("backup of PostgreSQL accepted")
		}
		return
	}
	equal(t, names, []string{"reader", "writer"})
	newUser(t, s, "kept@example.com")
	path := filepath.Join(t.TempDir(), "backup.db")
	ok(t, s.Backup(ctx, path))
	if err := s.Backup(ctx, path); err == nil {
		t.Fatal("backup over an existing file accepted")
	}
	b, err := storage.Open(ctx, "sqlite:"+path, storage.Options{})
	ok(t, err)
	defer b.Close()
	equal(t, must(b.SchemaVersion(ctx))(t), storage.LatestMigration())
	equal(t, must(b.GetUserByEmail(ctx, "kept@example.com"))(t).Email, "kept@example.com")
}

// testSweepCountsAbandoned: the sweep reports expired sign-ins that got
// as far as an email and never finished.
func testSweepCountsAbandoned(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	for i, ar := range []storage.AuthRequest{
		{UserID: "u1", ExpiresAt: at(0)},             // abandoned
		{UserID: "~standin", ExpiresAt: at(0)},       // abandoned (unknown email)
		{ExpiresAt: at(0)},                           // never identified: not counted
		{UserID: "u2", Done: true, ExpiresAt: at(0)}, // finished
		{UserID: "u3", ExpiresAt: at(2 * time.Hour)}, // still running
	} {
		ar.ID = fmt.Sprint("ar", i)
		ok(t, s.CreateAuthRequest(ctx, ar))
	}
	got := 0
	ok(t, s.Sweep(ctx, at(time.Hour), storage.SweepPolicy{OnAbandoned: func(n int) { got += n }}))
	equal(t, got, 2)
	got = 0
	ok(t, s.Sweep(ctx, at(time.Hour), storage.SweepPolicy{OnAbandoned: func(n int) { got += n }}))
	equal(t, got, 0) // swept: counted once
}

func must2[A, B any](a A, b B, err error) func(testing.TB) (A, B) {
	return func(t testing.TB) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return a, b
	}
}
