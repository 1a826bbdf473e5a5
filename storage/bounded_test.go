package storage_test

// Tables that only grow (issue 11, item 4): a steady load of sign-ins and
// refresh rotations, run through the store on a controlled clock and swept
// as serve sweeps, leaves every table at the same size hours later.

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// boundedPolicy is serve's sweep with its long durations shortened so a
// few simulated hours pass every one of them (the rules are the same).
var boundedPolicy = storage.SweepPolicy{
	SessionMaxIdle:     30 * time.Minute,
	RefreshIdle:        time.Hour,
	RefreshUsedKeep:    time.Minute,
	AuditRetention:     2 * time.Hour,
	ThrottleIdle:       time.Hour,
	OutboxKeep:         time.Hour,
	EventDeliveryKeep:  time.Hour,
	BackchannelKeep:    time.Hour,
	TrustedDeviceGrace: 30 * time.Minute,
}

// Tables of reference data: they grow with users, clients, keys and
// organisations, not with traffic, and no sweep touches them.
var referenceTables = []string{
	"schema_migrations", "users", "clients", "signing_keys", "organizations", "organization_domains",
	"federated_identities", "totp_credentials", "backup_codes", "passkeys", "consents",
}

// TestTablesStayBounded drives one simulated sign-in and one rotation of
// every live refresh family per minute for four hours through two
// instances (stores on one database), sweeping every ten minutes on both
// at once as serve does. It checks that
//
//   - a family never holds more than its head(s) and the token just rotated
//     (the rotation compacts; a retry within the reuse grace adds a
//     sibling), whenever the sweep last ran;
//   - after the longest keep has passed, every table written to has the same
//     number of rows an hour and a half later (a removed sweep rule makes
//     its table grow and fails here);
//   - every table of the schema is either one this load writes or reference
//     data (a new table must say which).
func TestTablesStayBounded(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			ss := instances(t, d, 2)
			ctx := t.Context()
			storage.SetQueueEvent(ss[0], func(string) bool { return true })
			storage.SetQueueEvent(ss[1], func(string) bool { return true })
			t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			const grace = 10 * time.Second
			ok(t, ss[0].CreateClient(ctx, storage.Client{ID: "bc", BackchannelLogoutURI: "https://rp.example/bc", CreatedAt: t0, UpdatedAt: t0}))
			var users []storage.User
			for i := range 10 {
				users = append(users, must(ss[0].CreateUser(ctx, storage.User{Email: fmt.Sprintf("b%d@example.com", i), CreatedAt: t0, UpdatedAt: t0}))(t))
			}
			type family struct {
				id   string
				head storage.RefreshToken
			}
			var live []*family // the families a client keeps refreshing
			var prevSession, prevUser string
			rotate := func(s *storage.Store, f *family, from storage.RefreshToken, now time.Time, n int) storage.RefreshToken {
				t.Helper()
				name := fmt.Sprintf("%s-r%d", f.id, n)
				next := from
				next.ID, next.TokenHash, next.FamilyID, next.FamilyCreatedAt = "", digest(name), "", time.Time{}
				next.CreatedAt, next.LastUsedAt, next.UsedAt = now, now, time.Time{}
				return must(s.RotateRefreshTokenWithAccess(ctx, from.ID, now, grace, next,
					storage.AccessToken{ID: name, ClientID: "c1", UserID: from.UserID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))(t)
			}
			familyRows := func(id string) int { // ids are ours: no quoting needed
				t.Helper()
				return len(must(storage.RowKeys(ctx, ss[0], "refresh_tokens WHERE family_id = '"+id+"'", "id"))(t))
			}
			sweep := func(now time.Time) {
				t.Helper()
				var wg sync.WaitGroup
				for _, s := range ss {
					wg.Go(func() {
						if err := s.Sweep(ctx, now, boundedPolicy); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
			}
			counts := map[int]map[string]int64{}
			const ticks = 240 // minutes
			for tick := 1; tick <= ticks; tick++ {
				now := t0.Add(time.Duration(tick) * time.Minute)
				s := ss[tick%2]
				u := users[tick%len(users)]
				id := fmt.Sprintf("t%03d", tick)

				// A sign-in: its request and code, an email code and its
				// mail, the password throttles (a new address each time),
				// a session the product is recorded in, the browser
				// remembered and trusted, a new refresh family, and what
				// else a sign-in may leave behind.
				ok(t, s.CreateAuthRequest(ctx, storage.AuthRequest{ID: "ar-" + id, ClientID: "c1", UserID: u.ID, Done: true, CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}))
				ok(t, s.SaveAuthCode(ctx, "ar-"+id, digest("code-"+id), now.Add(time.Minute)))
				must(s.RedeemAuthCode(ctx, digest("code-"+id), now))(t)
				issue := must(s.IssueEmailCode(ctx,
					storage.EmailCode{UserID: u.ID, Purpose: "signin", ContextID: "ar-" + id, CodeHash: digest("ec-" + id), CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)},
					storage.OutboxMessage{Kind: "code", Purpose: "signin", Recipient: u.Email, UserID: u.ID, Sealed: []byte("sealed"), CreatedAt: now, NextAt: now, GiveUpAt: now.Add(time.Hour)},
					storage.CodeRule{Budget: "signin", Max: 1000, Window: time.Hour}))(t)
				equal(t, issue.Refused, "")
				for _, m := range must(s.ClaimOutbox(ctx, now, time.Minute, 10))(t) {
					ok(t, s.FinishOutbox(ctx, m.ID, m.Claim, storage.OutboxResult{Sent: true, At: now}))
				}
				rule := storage.ThrottleRule{Free: 10, Base: time.Second, Max: time.Minute, Forget: time.Hour}
				until := must(s.TakeThrottles(ctx, now, storage.ThrottleTake{Key: "pwd:acct:" + u.ID, Rule: rule}, storage.ThrottleTake{Key: "pwd:ip:" + id, Rule: rule}))(t)
				equal(t, until.IsZero(), true)
				sess := must(s.CreateSession(ctx, storage.Session{UserID: u.ID, TokenHash: digest("s-" + id), CreatedAt: now, LastSeenAt: now}))(t)
				ok(t, s.RecordSessionClient(ctx, sess.ID, "c1", u.ID, now))
				ok(t, s.RecordSessionClient(ctx, sess.ID, "bc", u.ID, now))
				switch {
				case prevSession == "":
				case tick%4 == 0: // signed out: the back-channel logout is delivered
					must(s.EnqueueBackchannelLogouts(ctx, prevUser, []string{prevSession}, "logout", now))(t)
					ok(t, s.DeleteSession(ctx, prevSession))
					for _, b := range must(s.ClaimBackchannelLogouts(ctx, now, time.Minute, 10))(t) {
						ok(t, s.FinishBackchannelLogout(ctx, b.ID, b.ClaimToken, storage.BackchannelOutcome{Delivered: true}, now))
					}
				case tick%4 == 2: // ended without a logout queued: its links stay until swept
					ok(t, s.DeleteSession(ctx, prevSession))
				}
				prevSession, prevUser = sess.ID, u.ID
				must(s.TouchKnownBrowser(ctx, storage.KnownBrowser{UserID: u.ID, TokenHash: digest("kb-" + id), SeenAt: now, ExpiresAt: now.Add(time.Hour)}))(t)
				must(s.CreateTrustedDevice(ctx, storage.TrustedDevice{UserID: u.ID, TokenHash: digest("td-" + id), CreatedAt: now, ExpiresAt: now.Add(30 * time.Minute), LastUsedAt: now}))(t)
				f := &family{id: "f-" + id}
				f.head = must(s.CreateRefreshToken(ctx, storage.RefreshToken{ID: f.id, TokenHash: digest(f.id), FamilyID: f.id, ClientID: "c1", UserID: u.ID, CreatedAt: now}))(t)
				live = append(live, f)
				ok(t, s.UseOnce(ctx, "jti:"+id, now, now.Add(5*time.Minute)))
				must(s.CreatePushedRequest(ctx, storage.PushedRequest{RequestURIHash: digest("par-" + id), ClientID: "c1", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}))(t)
				must(s.CreateDeviceAuthorization(ctx, storage.DeviceAuthorization{DeviceCodeHash: digest("dc-" + id), UserCodeHash: digest("uc-" + id), UserCodeHalf: digest("uh-" + id)[:8],
					ClientID: "c1", CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}))(t)
				ok(t, s.CreateAuditEvent(ctx, storage.AuditEvent{At: now, UserID: u.ID, Event: "signin.succeeded"}))
				for _, ev := range must(s.ClaimEventDeliveries(ctx, now, time.Minute, 10))(t) {
					ok(t, s.FinishEventDelivery(ctx, ev.ID, now, false, ""))
				}
				must(s.CreateActionToken(ctx, storage.ActionToken{TokenHash: digest("act-" + id), UserID: u.ID, Purpose: "reset", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))(t)
				must(s.CreateLogoutRequest(ctx, storage.LogoutRequest{UserID: u.ID, ClientID: "c1", CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}))(t)
				must(s.CreatePasskeyChallenge(ctx, storage.PasskeyChallenge{ChallengeHash: digest("pc-" + id), Purpose: "signin", BrowserHash: digest("b-" + id), ContextID: "ar-" + id, CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)}))(t)
				must(s.CreateUpstreamState(ctx, storage.UpstreamState{StateHash: digest("us-" + id), AuthRequestID: "ar-" + id, CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}))(t)
				ok(t, s.CreateAccessToken(ctx, storage.AccessToken{ID: "cc-" + id, ClientID: "c1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))

				// Every live family rotates (on the other instance); every
				// fifth minute one retries within the grace (a sibling), and
				// one family is signed out of. The oldest family is left to
				// go idle, so families come and go.
				for i, f := range live {
					other := ss[(tick+1)%2]
					old := f.head
					f.head = rotate(other, f, old, now.Add(time.Second), tick*10)
					if tick%5 == 0 && i == 0 {
						rotate(s, f, old, now.Add(3*time.Second), tick*10+1) // lost answer, retried
					}
					if n := familyRows(f.id); n > 3 {
						t.Fatalf("tick %d: family %s holds %d rows; want at most the heads and the token just rotated", tick, f.id, n)
					}
				}
				if tick%7 == 0 {
					ok(t, s.RevokeRefreshFamily(ctx, live[len(live)-1].id, now))
					live = live[:len(live)-1]
				}
				if len(live) > 5 {
					live = live[1:]
				}

				if tick%10 == 0 {
					sweep(now)
					counts[tick] = must(ss[0].TableRows(ctx))(t)
				}
			}

			mid, end := counts[150], counts[ticks]
			for _, table := range slices.Sorted(maps.Keys(end)) {
				if slices.Contains(referenceTables, table) {
					continue
				}
				if mid[table] == 0 {
					t.Errorf("%s: no rows at %d min: the load does not write it (or nothing stays): add it to the load or to referenceTables", table, 150)
					continue
				}
				if end[table] > mid[table]+mid[table]/5+2 {
					t.Errorf("%s grows: %d rows at %d min, %d at %d min", table, mid[table], 150, end[table], ticks)
				}
			}
			if t.Failed() || testing.Verbose() {
				for _, table := range slices.Sorted(maps.Keys(end)) {
					t.Logf("%-24s %6d %6d", table, mid[table], end[table])
				}
			}
		})
	}
}
