package storage_test

// The conformance suite: every method of the storage contract (api.go),
// run against every dialect storagetest offers (SQLite always, PostgreSQL
// when LATCHKEY_TEST_DATABASE_URL is set). Each subtest gets its own fresh
// database, so subtests run in parallel.
//
// Normalisations the suite pins down: instants come back in UTC truncated
// to the millisecond (the zero time stays zero); nil and empty lists, maps
// and byte strings all come back as nil.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

func TestConformance(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			runConformance(t, d.Open)
		})
	}
}

type subtest struct {
	name string
	run  func(t *testing.T, s *storage.Store)
}

func runConformance(t *testing.T, open func(testing.TB) *storage.Store) {
	tests := []subtest{
		{"Health", testHealth},
		{"UserCRUD", testUserCRUD},
		{"UserEmailCaseInsensitive", testUserEmailCaseInsensitive},
		{"UpdaterRollback", testUpdaterRollback},
		{"UpdaterMayReadStore", testUpdaterMayReadStore},
		{"TimeRoundTrip", testTimeRoundTrip},
		{"ListRoundTrip", testListRoundTrip},
		{"ClientCRUD", testClientCRUD},
		{"SyncClients", testSyncClients},
		{"AuthRequestCRUD", testAuthRequestCRUD},
		{"AuthCode", testAuthCode},
		{"AuthCodeConcurrent", testAuthCodeConcurrent},
		{"Sessions", testSessions},
		{"TrustedDevices", testTrustedDevices},
		{"KnownBrowsers", testKnownBrowsers},
		{"EmailCodes", testEmailCodes},
		{"EmailCodeUpdatesSerialised", testEmailCodeUpdatesSerialised},
		{"EmailCodeCreateConcurrent", testEmailCodeCreateConcurrent},
		{"EmailCodeAttempts", testEmailCodeAttempts},
		{"EmailCodeAttemptsConcurrent", testEmailCodeAttemptsConcurrent},
		{"IssueEmailCode", testIssueEmailCode},
		{"IssueEmailCodeConcurrent", testIssueEmailCodeConcurrent},
		{"Outbox", testOutbox},
		{"OutboxClaimConcurrent", testOutboxClaimConcurrent},
		{"TOTP", testTOTP},
		{"TOTPConcurrent", testTOTPConcurrent},
		{"BackupCode", testBackupCode},
		{"BackupCodeConcurrent", testBackupCodeConcurrent},
		{"BackupCodeShow", testBackupCodeShow},
		{"Passkeys", testPasskeys},
		{"PasskeyCounterConcurrent", testPasskeyCounterConcurrent},
		{"PasskeyChallenges", testPasskeyChallenges},
		{"PasskeyChallengeConcurrent", testPasskeyChallengeConcurrent},
		{"AuthRequestPasskeyProgress", testAuthRequestPasskeyProgress},
		{"RevokeUserGrants", testRevokeUserGrants},
		{"RefreshRotation", testRefreshRotation},
		{"RefreshRotationConcurrent", testRefreshRotationConcurrent},
		{"RefreshGrantRead", testRefreshGrantRead},
		{"RefreshReuseGrace", testRefreshReuseGrace},
		{"RefreshRevocation", testRefreshRevocation},
		{"ListRefreshFamilies", testListRefreshFamilies},
		{"AccessTokens", testAccessTokens},
		{"SigningKeys", testSigningKeys},
		{"SigningKeysSerialised", testSigningKeysSerialised},
		{"DeviceAuthorizations", testDeviceAuthorizations},
		{"Audit", testAudit},
		{"AuditSearch", testAuditSearch},
		{"SearchUsers", testSearchUsers},
		{"UpdateClient", testUpdateClient},
		{"RevokeOperatorCauses", testRevokeOperatorCauses},
		{"EventDeliveries", testEventDeliveries},
		{"EventDeliveriesClaimedOnce", testEventDeliveriesClaimedOnce},
		{"SchemaAndStats", testSchemaAndStats},
		{"SweepCountsAbandoned", testSweepCountsAbandoned},
		{"Throttles", testThrottles},
		{"ThrottleTake", testThrottleTake},
		{"ThrottleTakeConcurrent", testThrottleTakeConcurrent},
		{"ActionTokens", testActionTokens},
		{"ActionTokenConcurrent", testActionTokenConcurrent},
		{"LogoutRequests", testLogoutRequests},
		{"Organizations", testOrganizations},
		{"SyncOrganizations", testSyncOrganizations},
		{"FederatedIdentities", testFederatedIdentities},
		{"UpstreamStates", testUpstreamStates},
		{"UpstreamStateConcurrent", testUpstreamStateConcurrent},
		{"UseOnce", testUseOnce},
		{"UseOnceConcurrent", testUseOnceConcurrent},
		{"PushedRequests", testPushedRequests},
		{"PushedRequestConcurrent", testPushedRequestConcurrent},
		{"TokenBindings", testTokenBindings},
		{"BackchannelQueue", testBackchannelQueue},
		{"BackchannelClaimsDisjoint", testBackchannelClaimsDisjoint},
		{"BackchannelEnqueueOnce", testBackchannelEnqueueOnce},
		{"Consents", testConsents},
		{"SweepProtocol", testSweepProtocol},
		{"Sweep", testSweep},
		{"FamilyRowWritten", testFamilyRowWritten},
		{"MaintenanceWarnings", testMaintenanceWarnings},
		{"ConcurrentWrites", testConcurrentWrites},
		{"OpaqueErrors", testOpaqueErrors},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, open(t))
		})
	}
}

// ------------------------------------------------------------- helpers

// at is a fixed instant plus d: tests never read the wall clock.
func at(d time.Duration) time.Time {
	return time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).Add(d)
}

func digest(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// must(f())(t) fails t if f failed and returns f's value (Go does not let
// a multi-value call share an argument list with t).
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return v
	}
}

func ok(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

// wantOther wants an error that is neither nil nor one of the sentinels.
func wantOther(t testing.TB, err error) {
	t.Helper()
	if err == nil || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrConflict) {
		t.Fatalf("error = %v, want a plain error", err)
	}
}

func equal[T any](t testing.TB, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("mismatch\n got: %+v\nwant: %+v", got, want)
	}
}

func keys(t testing.TB, s *storage.Store, table, pk string) []string {
	t.Helper()
	return must(storage.RowKeys(context.Background(), s, table, pk))(t)
}

// race runs op twice at once, rounds times, and wants exactly one success
// per round; the loser's error must satisfy lost.
func race(t *testing.T, rounds int, setup func(round int) func() error, lost func(error) bool) {
	t.Helper()
	for i := range rounds {
		op := setup(i)
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, 2)
		for g := range 2 {
			wg.Go(func() {
				<-start
				errs[g] = op()
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !lost(err):
				t.Fatalf("round %d: loser error = %v", i, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d winners (errors %v), want exactly 1", i, wins, errs)
		}
	}
}

func is(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

func newUser(t testing.TB, s *storage.Store, email string) storage.User {
	t.Helper()
	return must(s.CreateUser(t.Context(), storage.User{Email: email, CreatedAt: at(0), UpdatedAt: at(0)}))(t)
}

// -------------------------------------------------------------- basics

func testHealth(t *testing.T, s *storage.Store) {
	ok(t, s.Health(t.Context()))
	if d := s.Dialect(); d != storage.DialectSQLite && d != storage.DialectPostgres {
		t.Fatalf("Dialect() = %q", d)
	}
	// Migrate is idempotent.
	ok(t, s.Migrate(t.Context()))
}

// ---------------------------------------------------------------- users

func testUserCRUD(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	u := storage.User{
		Email: "Alice@Example.com", EmailVerified: true, Name: "Alice", Region: "EU",
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", OrgID: "org1",
		NeedsBackupCode: true, PrivacyProductImprovement: true, PrivacyPersonalisedOffers: true,
		PrivacyUpdatedAt: at(time.Minute), PasswordChangedAt: at(2 * time.Minute),
		CreatedAt: at(0), UpdatedAt: at(time.Second),
		Language: "de", TimeZone: "Europe/Berlin",
	}
	got := must(s.CreateUser(ctx, u))(t)
	if got.ID == "" || strings.Contains(got.ID, ":") {
		t.Fatalf("generated ID %q", got.ID)
	}
	u.ID = got.ID
	equal(t, got, u)
	equal(t, must(s.GetUser(ctx, u.ID))(t), u)
	equal(t, must(s.GetUserByEmail(ctx, "alice@example.COM"))(t), u)

	// Caller-chosen id; duplicate id.
	bob := must(s.CreateUser(ctx, storage.User{ID: "bob", Email: "bob@example.com", CreatedAt: at(time.Hour)}))(t)
	equal(t, bob.ID, "bob")
	_, err := s.CreateUser(ctx, storage.User{ID: "bob", Email: "bob2@example.com"})
	wantErr(t, err, storage.ErrConflict)

	_, err = s.GetUser(ctx, "nobody")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetUserByEmail(ctx, "nobody@example.com")
	wantErr(t, err, storage.ErrNotFound)

	// Update: fields change, ID does not.
	upd := must(s.UpdateUser(ctx, u.ID, func(v *storage.User) error {
		v.ID = "hijack"
		v.Email = "alice@new.example"
		v.Name = "Alice B"
		v.Disabled = true
		v.PasswordHash = ""
		v.UpdatedAt = at(time.Hour)
		v.Language, v.TimeZone = "ja", "Asia/Tokyo"
		return nil
	}))(t)
	equal(t, upd.ID, u.ID)
	equal(t, []string{upd.Language, upd.TimeZone}, []string{"ja", "Asia/Tokyo"})
	equal(t, must(s.GetUser(ctx, u.ID))(t), upd)
	equal(t, must(s.GetUserByEmail(ctx, "ALICE@new.example"))(t).Name, "Alice B")
	_, err = s.GetUserByEmail(ctx, "alice@example.com")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetUser(ctx, "hijack")
	wantErr(t, err, storage.ErrNotFound)

	// Update to a taken email (other case) is a conflict and changes nothing.
	_, err = s.UpdateUser(ctx, u.ID, func(v *storage.User) error { v.Email = "BOB@example.com"; return nil })
	wantErr(t, err, storage.ErrConflict)
	equal(t, must(s.GetUser(ctx, u.ID))(t), upd)

	_, err = s.UpdateUser(ctx, "nobody", func(*storage.User) error { return nil })
	wantErr(t, err, storage.ErrNotFound)

	// Listing pages in creation order.
	for i := range 4 {
		must(s.CreateUser(ctx, storage.User{
			ID: fmt.Sprintf("u%d", i), Email: fmt.Sprintf("u%d@example.com", i), CreatedAt: at(time.Duration(i+2) * time.Hour),
		}))(t)
	}
	all := must(s.ListUsers(ctx, storage.ListOptions{}))(t)
	ids := make([]string, len(all))
	for i, v := range all {
		ids[i] = v.ID
	}
	equal(t, ids, []string{u.ID, "bob", "u0", "u1", "u2", "u3"})
	page := must(s.ListUsers(ctx, storage.ListOptions{Limit: 2, Offset: 2}))(t)
	equal(t, []string{page[0].ID, page[1].ID}, []string{"u0", "u1"})
	equal(t, len(must(s.ListUsers(ctx, storage.ListOptions{Offset: 10}))(t)), 0)
}

func testUserEmailCaseInsensitive(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	newUser(t, s, "Carol@Example.com")
	for _, e := range []string{"carol@example.com", "CAROL@EXAMPLE.COM", "Carol@Example.com"} {
		_, err := s.CreateUser(ctx, storage.User{Email: e})
		wantErr(t, err, storage.ErrConflict)
	}
	// The email is kept as typed.
	equal(t, must(s.GetUserByEmail(ctx, "cAROL@example.com"))(t).Email, "Carol@Example.com")
}

// errSentinel is a caller's own error: updaters must return it unchanged.
var errSentinel = errors.New("caller says no")

type wrapped struct{ error }

func testUpdaterRollback(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	u := newUser(t, s, "dave@example.com")
	_, err := s.UpdateUser(ctx, u.ID, func(v *storage.User) error {
		v.Name = "changed"
		return errSentinel
	})
	if err != errSentinel { //nolint:errorlint // unchanged means identical
		t.Fatalf("error = %v, want the caller's error itself", err)
	}
	equal(t, must(s.GetUser(ctx, u.ID))(t), u)

	// A caller error wrapping a sentinel stays the caller's (errors.As works).
	_, err = s.UpdateUser(ctx, u.ID, func(*storage.User) error { return wrapped{storage.ErrNotFound} })
	var w wrapped
	if !errors.As(err, &w) {
		t.Fatalf("error = %#v, want the caller's wrapped error", err)
	}

	// Every updater rolls back on a caller error.
	sess := must(s.CreateSession(ctx, storage.Session{UserID: u.ID, TokenHash: digest("s"), CreatedAt: at(0)}))(t)
	_, err = s.UpdateSession(ctx, sess.ID, func(v *storage.Session) error { v.IP = "x"; return errSentinel })
	wantErr(t, err, errSentinel)
	equal(t, must(s.GetSession(ctx, sess.ID))(t), sess)

	ar := storage.AuthRequest{ID: "ar", ClientID: "c", CreatedAt: at(0), ExpiresAt: at(time.Hour)}
	ok(t, s.CreateAuthRequest(ctx, ar))
	_, err = s.UpdateAuthRequest(ctx, "ar", func(v *storage.AuthRequest) error { v.Done = true; return errSentinel })
	wantErr(t, err, errSentinel)
	equal(t, must(s.GetAuthRequest(ctx, "ar"))(t).Done, false)

	_, err = s.UpdateThrottle(ctx, "k", func(v *storage.Throttle) error { v.Failures = 9; return errSentinel })
	wantErr(t, err, errSentinel)
	_, err = s.GetThrottle(ctx, "k")
	wantErr(t, err, storage.ErrNotFound)
}

// testUpdaterMayReadStore: an updater fn may read through the Store (the
// read does not wait for the transaction's own connection).
func testUpdaterMayReadStore(t *testing.T, s *storage.Store) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	u := newUser(t, s, "erin@example.com")
	other := newUser(t, s, "frank@example.com")
	_, err := s.UpdateUser(ctx, u.ID, func(v *storage.User) error {
		o, err := s.GetUser(ctx, other.ID)
		v.Name = o.Email
		return err
	})
	ok(t, err)
	equal(t, must(s.GetUser(ctx, u.ID))(t).Name, "frank@example.com")
}

func testTimeRoundTrip(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	zone := time.FixedZone("UTC+2", 2*3600)
	local := time.Date(2026, 7, 4, 12, 30, 15, 123456789, zone)
	u := must(s.CreateUser(ctx, storage.User{
		Email:             "time@example.com",
		PasswordChangedAt: local, // zone and sub-ms precision dropped
		CreatedAt:         time.Date(1999, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
		UpdatedAt:         time.Date(2200, 1, 1, 0, 0, 0, 1_000_000, time.UTC),
		// PrivacyUpdatedAt left zero: must come back zero.
	}))(t)
	got := must(s.GetUser(ctx, u.ID))(t)
	want := local.UTC().Truncate(time.Millisecond)
	if !got.PasswordChangedAt.Equal(want) || got.PasswordChangedAt != want {
		t.Fatalf("PasswordChangedAt = %v, want %v (UTC, ms)", got.PasswordChangedAt, want)
	}
	if got.PasswordChangedAt.Location() != time.UTC {
		t.Fatalf("location %v, want UTC", got.PasswordChangedAt.Location())
	}
	if !got.PrivacyUpdatedAt.IsZero() {
		t.Fatalf("zero time came back as %v", got.PrivacyUpdatedAt)
	}
	equal(t, got.CreatedAt, time.Date(1999, 12, 31, 23, 59, 59, 999_000_000, time.UTC))
	equal(t, got.UpdatedAt, time.Date(2200, 1, 1, 0, 0, 0, 1_000_000, time.UTC))
	equal(t, got, u) // the returned value is what was stored

	// Durations round-trip to the millisecond.
	c := storage.Client{ID: "dur", AccessTokenLifetime: 90*time.Second + 500*time.Millisecond, RefreshTokenLifetime: 30 * 24 * time.Hour}
	ok(t, s.CreateClient(ctx, c))
	gc := must(s.GetClient(ctx, "dur"))(t)
	equal(t, gc.AccessTokenLifetime, c.AccessTokenLifetime)
	equal(t, gc.RefreshTokenLifetime, c.RefreshTokenLifetime)
	equal(t, gc.IDTokenLifetime, time.Duration(0))

	// Optional integers: nil, zero and a value stay distinct.
	zero, hour := int64(0), int64(3600)
	for i, ma := range []*int64{nil, &zero, &hour} {
		id := fmt.Sprintf("ma%d", i)
		ok(t, s.CreateAuthRequest(ctx, storage.AuthRequest{ID: id, MaxAge: ma}))
		equal(t, must(s.GetAuthRequest(ctx, id))(t).MaxAge, ma)
	}
}

func testListRoundTrip(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	// nil and empty lists both come back nil; content and order are kept,
	// including characters JSON must escape.
	c := storage.Client{
		ID:                     "lists",
		RedirectURIs:           []string{"https://b.example/cb", "https://a.example/cb?x=\"1\"&y=<2>", "ünï"},
		PostLogoutRedirectURIs: []string{},
		GrantTypes:             nil,
		SecretHash:             []byte{},
	}
	ok(t, s.CreateClient(ctx, c))
	got := must(s.GetClient(ctx, "lists"))(t)
	equal(t, got.RedirectURIs, c.RedirectURIs)
	equal(t, got.PostLogoutRedirectURIs, nil)
	equal(t, got.GrantTypes, nil)
	equal(t, got.SecretHash, nil)

	ok(t, s.CreateAuditEvent(ctx, storage.AuditEvent{At: at(0), Event: "e", Details: map[string]string{}}))
	ok(t, s.CreateAuditEvent(ctx, storage.AuditEvent{At: at(1), Event: "f", Details: map[string]string{"k": "v", "ä": "\x00"}}))
	evs := must(s.ListAuditEvents(ctx, storage.AuditFilter{}))(t)
	equal(t, evs[0].Details, map[string]string{"k": "v", "ä": "\x00"})
	equal(t, evs[1].Details, nil)
}

// -------------------------------------------------------------- clients

func testClientCRUD(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := storage.Client{
		ID: "app", Name: "App", SecretHash: digest("secret"), Public: false,
		RedirectURIs: []string{"https://app.example/cb"}, PostLogoutRedirectURIs: []string{"https://app.example/"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, AppType: storage.AppTypeWeb,
		AccessTokenFormat: storage.TokenFormatOpaque, AccessTokenLifetime: 5 * time.Minute,
		IDTokenLifetime: time.Hour, RefreshTokenLifetime: 24 * time.Hour, DefaultACR: "urn:x:2fa",
		Source: "config", CreatedAt: at(0), UpdatedAt: at(time.Second),
		JWKS: `{"keys":[]}`, JWKSURI: "https://app.example/jwks", Scopes: []string{"api.read", "api.write"},
		BackchannelLogoutURI: "https://app.example/bcl", BackchannelLogoutSessionRequired: true,
		ThirdParty: true, RequirePAR: true, DPoPBound: true, IDTokenSigningAlg: "ES256",
		LogoURI: "https://app.example/logo.png",
	}
	ok(t, s.CreateClient(ctx, c))
	equal(t, must(s.GetClient(ctx, "app"))(t), c)
	wantErr(t, s.CreateClient(ctx, c), storage.ErrConflict)
	wantOther(t, s.CreateClient(ctx, storage.Client{}))
	pub := storage.Client{ID: "cli", Public: true, Source: "cli"}
	ok(t, s.CreateClient(ctx, pub))

	list := must(s.ListClients(ctx))(t)
	equal(t, len(list), 2)
	equal(t, list[0], c)
	equal(t, list[1].ID, "cli")

	_, err := s.GetClient(ctx, "nope")
	wantErr(t, err, storage.ErrNotFound)
	ok(t, s.DeleteClient(ctx, "app"))
	_, err = s.GetClient(ctx, "app")
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, s.DeleteClient(ctx, "app"), storage.ErrNotFound)
}

func testSyncClients(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	mk := func(id, name, src string, created time.Time) storage.Client {
		return storage.Client{ID: id, Name: name, Source: src, CreatedAt: created, UpdatedAt: created}
	}
	ok(t, s.SyncClients(ctx, "config", []storage.Client{mk("a", "A", "", at(0)), mk("b", "B", "whatever", at(0))}))
	ok(t, s.CreateClient(ctx, mk("c", "C", "cli", at(0))))
	ok(t, s.CreateClient(ctx, mk("builtin", "Demo", "builtin", at(0))))

	// Upsert a (keeping its CreatedAt), create d, delete b; c untouched.
	ok(t, s.SyncClients(ctx, "config", []storage.Client{mk("a", "A2", "", at(time.Hour)), mk("d", "D", "", at(time.Hour))}))
	a := must(s.GetClient(ctx, "a"))(t)
	equal(t, a.Name, "A2")
	equal(t, a.Source, "config")
	equal(t, a.CreatedAt, at(0))
	equal(t, a.UpdatedAt, at(time.Hour))
	_, err := s.GetClient(ctx, "b")
	wantErr(t, err, storage.ErrNotFound)
	equal(t, must(s.GetClient(ctx, "c"))(t).Source, "cli")
	equal(t, must(s.GetClient(ctx, "d"))(t).Name, "D")

	// A re-sync updates every column, the registered ID-token algorithm too.
	withAlg := mk("a", "A2", "", at(time.Hour))
	withAlg.IDTokenSigningAlg = "ES256"
	ok(t, s.SyncClients(ctx, "config", []storage.Client{withAlg, mk("d", "D", "", at(time.Hour))}))
	equal(t, must(s.GetClient(ctx, "a"))(t).IDTokenSigningAlg, "ES256")
	withAlg.IDTokenSigningAlg = ""
	ok(t, s.SyncClients(ctx, "config", []storage.Client{withAlg, mk("d", "D", "", at(time.Hour))}))
	equal(t, must(s.GetClient(ctx, "a"))(t).IDTokenSigningAlg, "")
	// … and the logo.
	withAlg.LogoURI = "https://a.example/logo.svg"
	ok(t, s.SyncClients(ctx, "config", []storage.Client{withAlg, mk("d", "D", "", at(time.Hour))}))
	equal(t, must(s.GetClient(ctx, "a"))(t).LogoURI, "https://a.example/logo.svg")

	// A client of another source with the same id is taken over.
	ok(t, s.SyncClients(ctx, "config", []storage.Client{mk("c", "C from config", "", at(2*time.Hour))}))
	c := must(s.GetClient(ctx, "c"))(t)
	equal(t, c.Source, "config")
	equal(t, c.Name, "C from config")
	for _, id := range []string{"a", "d"} {
		_, err := s.GetClient(ctx, id)
		wantErr(t, err, storage.ErrNotFound)
	}

	// An empty sync deletes the whole source and nothing else.
	ok(t, s.SyncClients(ctx, "config", nil))
	list := must(s.ListClients(ctx))(t)
	equal(t, len(list), 1)
	equal(t, list[0].ID, "builtin")

	// A failing sync changes nothing.
	wantOther(t, s.SyncClients(ctx, "builtin", []storage.Client{mk("x", "X", "", at(0)), {}}))
	_, err = s.GetClient(ctx, "x")
	wantErr(t, err, storage.ErrNotFound)
	equal(t, len(must(s.ListClients(ctx))(t)), 1)
}

// -------------------------------------------------------- auth requests

func fullAuthRequest(id string) storage.AuthRequest {
	maxAge := int64(600)
	return storage.AuthRequest{
		ID: id, ClientID: "app", RedirectURI: "https://app.example/cb",
		Scopes: []string{"openid", "email", "offline_access"}, State: "st", Nonce: "n",
		ResponseType: "code", ResponseMode: "query", CodeChallenge: "abc", CodeChallengeMethod: "S256",
		Prompt: []string{"login", "consent"}, MaxAge: &maxAge, ACRValues: []string{"urn:x:2fa"},
		LoginHint: "a@example.com", IDTokenHintSubject: "sub", UILocales: []string{"de", "en"},
		CreatedAt: at(0), ExpiresAt: at(30 * time.Minute), BrowserHash: digest("browser"),
	}
}

func testAuthRequestCRUD(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	ar := fullAuthRequest("ar1")
	ok(t, s.CreateAuthRequest(ctx, ar))
	equal(t, must(s.GetAuthRequest(ctx, "ar1"))(t), ar)
	wantErr(t, s.CreateAuthRequest(ctx, ar), storage.ErrConflict)
	wantOther(t, s.CreateAuthRequest(ctx, storage.AuthRequest{}))

	got := must(s.UpdateAuthRequest(ctx, "ar1", func(v *storage.AuthRequest) error {
		v.ID = "other"
		v.UserID = "u1"
		v.PasswordAt = at(time.Minute)
		v.SecondFactorAt = at(2 * time.Minute)
		v.SecondFactorMethod = "totp"
		v.FederatedAt = at(3 * time.Minute)
		v.UpstreamAMR = []string{"pwd", "mfa"}
		v.BackupCodeShown = true
		v.RememberChosen = true
		v.StaySignedIn = true
		v.BackupCodeSealed = []byte("sealed")
		v.UpstreamAuthTime = at(4 * time.Minute)
		v.Done = true
		v.AMR = []string{"pwd", "otp"}
		v.ACR = "urn:x:2fa"
		v.AuthTime = at(time.Minute)
		v.SessionID = "sess"
		v.BrowserHash = nil
		// Every column a distinct value: a hand-written statement that
		// mixes two up fails here.
		v.PasskeyAt = at(5 * time.Minute)
		v.PasskeyUserVerified = true
		v.CodeHash = digest("code")
		v.CodeExpiresAt = at(6 * time.Minute)
		v.CodeUsedAt = at(7 * time.Minute)
		v.ConsentAt = at(8 * time.Minute)
		return nil
	}))(t)
	want := ar
	want.UserID, want.PasswordAt, want.SecondFactorAt, want.SecondFactorMethod = "u1", at(time.Minute), at(2*time.Minute), "totp"
	want.FederatedAt, want.UpstreamAMR, want.BackupCodeShown, want.RememberChosen = at(3*time.Minute), []string{"pwd", "mfa"}, true, true
	want.StaySignedIn, want.BackupCodeSealed, want.UpstreamAuthTime = true, []byte("sealed"), at(4*time.Minute)
	want.Done, want.AMR, want.ACR, want.AuthTime, want.SessionID = true, []string{"pwd", "otp"}, "urn:x:2fa", at(time.Minute), "sess"
	want.BrowserHash = nil
	want.PasskeyAt, want.PasskeyUserVerified, want.CodeHash = at(5*time.Minute), true, digest("code")
	want.CodeExpiresAt, want.CodeUsedAt, want.ConsentAt = at(6*time.Minute), at(7*time.Minute), at(8*time.Minute)
	equal(t, got, want)
	equal(t, must(s.GetAuthRequest(ctx, "ar1"))(t), want)

	_, err := s.UpdateAuthRequest(ctx, "nope", func(*storage.AuthRequest) error { return nil })
	wantErr(t, err, storage.ErrNotFound)
	ok(t, s.DeleteAuthRequest(ctx, "ar1"))
	_, err = s.GetAuthRequest(ctx, "ar1")
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, s.DeleteAuthRequest(ctx, "ar1"), storage.ErrNotFound)
}

func doneRequest(t testing.TB, s *storage.Store, id string) {
	t.Helper()
	ok(t, s.CreateAuthRequest(t.Context(), fullAuthRequest(id)))
	must(s.UpdateAuthRequest(t.Context(), id, func(v *storage.AuthRequest) error {
		v.Done, v.UserID = true, "u1"
		return nil
	}))(t)
}

func testAuthCode(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	exp := at(time.Minute)

	// Only a done request gets a code, and only once.
	ok(t, s.CreateAuthRequest(ctx, fullAuthRequest("pending")))
	wantErr(t, s.SaveAuthCode(ctx, "pending", digest("c0"), exp), storage.ErrConflict)
	wantErr(t, s.SaveAuthCode(ctx, "nope", digest("c0"), exp), storage.ErrNotFound)
	doneRequest(t, s, "r1")
	ok(t, s.SaveAuthCode(ctx, "r1", digest("c1"), exp))
	wantErr(t, s.SaveAuthCode(ctx, "r1", digest("c1b"), exp), storage.ErrConflict)

	byCode := must(s.GetAuthRequestByCode(ctx, digest("c1")))(t)
	equal(t, byCode.ID, "r1")
	equal(t, byCode.CodeHash, digest("c1"))
	equal(t, byCode.CodeExpiresAt, exp)
	_, err := s.GetAuthRequestByCode(ctx, digest("unknown"))
	wantErr(t, err, storage.ErrNotFound)

	// Expired one millisecond after CodeExpiresAt…
	_, err = s.RedeemAuthCode(ctx, digest("c1"), exp.Add(time.Millisecond))
	wantErr(t, err, storage.ErrNotFound)
	// …valid at exactly CodeExpiresAt.
	got := must(s.RedeemAuthCode(ctx, digest("c1"), exp))(t)
	equal(t, got.ID, "r1")
	equal(t, got.CodeUsedAt, exp)
	equal(t, got.UserID, "u1")

	// Reuse: ErrConflict with the request filled in, also after expiry.
	for _, now := range []time.Time{exp, exp.Add(time.Hour)} {
		again, err := s.RedeemAuthCode(ctx, digest("c1"), now)
		wantErr(t, err, storage.ErrConflict)
		equal(t, again.ID, "r1")
		equal(t, again.CodeUsedAt, exp)
	}
	// GetAuthRequestByCode still finds a used code.
	equal(t, must(s.GetAuthRequestByCode(ctx, digest("c1")))(t).CodeUsedAt, exp)

	_, err = s.RedeemAuthCode(ctx, digest("unknown"), exp)
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.RedeemAuthCode(ctx, nil, exp)
	wantErr(t, err, storage.ErrNotFound)

	// Many requests without a code coexist (NULL code hashes never collide).
	doneRequest(t, s, "r2")
	doneRequest(t, s, "r3")
	wantErr(t, s.SaveAuthCode(ctx, "r2", digest("c1"), exp), storage.ErrConflict) // code digests are unique
}

func testAuthCodeConcurrent(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	race(t, 20, func(i int) func() error {
		id := fmt.Sprintf("r%d", i)
		doneRequest(t, s, id)
		ok(t, s.SaveAuthCode(ctx, id, digest(id), at(time.Minute)))
		return func() error {
			ar, err := s.RedeemAuthCode(ctx, digest(id), at(0))
			if errors.Is(err, storage.ErrConflict) && ar.ID != id {
				return fmt.Errorf("loser got request %q", ar.ID)
			}
			return err
		}
	}, is(storage.ErrConflict))
}

// ------------------------------------------------------------- sessions

func testSessions(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	sess := storage.Session{
		UserID: "u1", TokenHash: digest("cookie1"), CreatedAt: at(0),
		AuthTime: at(0), SecondFactorAt: at(time.Second), AMR: []string{"pwd", "otp"},
		Federated: true, StaySignedIn: true, UserAgent: "Firefox", IP: "192.0.2.1",
	}
	got := must(s.CreateSession(ctx, sess))(t)
	sess.ID = got.ID
	sess.LastSeenAt = at(0) // defaults to CreatedAt
	equal(t, got, sess)
	equal(t, must(s.GetSession(ctx, sess.ID))(t), sess)
	equal(t, must(s.GetSessionByTokenHash(ctx, digest("cookie1")))(t), sess)
	_, err := s.GetSessionByTokenHash(ctx, digest("nope"))
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetSessionByTokenHash(ctx, nil)
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.CreateSession(ctx, storage.Session{UserID: "u2", TokenHash: digest("cookie1")})
	wantErr(t, err, storage.ErrConflict)

	// Touch only moves forward.
	ok(t, s.TouchSession(ctx, sess.ID, at(time.Hour)))
	ok(t, s.TouchSession(ctx, sess.ID, at(time.Minute)))
	equal(t, must(s.GetSession(ctx, sess.ID))(t).LastSeenAt, at(time.Hour))
	wantErr(t, s.TouchSession(ctx, "nope", at(time.Hour)), storage.ErrNotFound)

	upd := must(s.UpdateSession(ctx, sess.ID, func(v *storage.Session) error {
		v.ID = "x"
		v.AuthTime = at(2 * time.Hour)
		v.AMR = nil
		return nil
	}))(t)
	equal(t, upd.ID, sess.ID)
	equal(t, upd.AuthTime, at(2*time.Hour))
	equal(t, upd.AMR, nil)
	_, err = s.UpdateSession(ctx, "nope", func(*storage.Session) error { return nil })
	wantErr(t, err, storage.ErrNotFound)

	// Listing: the user's sessions, most recently seen first.
	must(s.CreateSession(ctx, storage.Session{ID: "s2", UserID: "u1", TokenHash: digest("cookie2"), CreatedAt: at(0), LastSeenAt: at(3 * time.Hour)}))(t)
	s3 := must(s.CreateSession(ctx, storage.Session{ID: "s3", UserID: "u1", TokenHash: digest("cookie3"), CreatedAt: at(0)}))(t)
	must(s.CreateSession(ctx, storage.Session{ID: "other", UserID: "u2", TokenHash: digest("cookie4"), CreatedAt: at(0)}))(t)
	list := must(s.ListSessions(ctx, "u1"))(t)
	var ids []string
	for _, v := range list {
		ids = append(ids, v.ID)
	}
	equal(t, ids, []string{"s2", sess.ID, "s3"})
	equal(t, len(must(s.ListSessions(ctx, "nobody"))(t)), 0)

	// Deleting all of a user's sessions is RevokeUserGrants' (see
	// testRevokeUserGrants).
	ok(t, s.DeleteSession(ctx, s3.ID))
	equal(t, len(must(s.ListSessions(ctx, "u1"))(t)), 2)
	must(s.GetSession(ctx, "other"))(t)

	ok(t, s.DeleteSession(ctx, "other"))
	wantErr(t, s.DeleteSession(ctx, "other"), storage.ErrNotFound)
}

// ------------------------------------------------------ trusted devices

func testTrustedDevices(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	d := storage.TrustedDevice{
		UserID: "u1", TokenHash: digest("dev"), CreatedAt: at(0), ExpiresAt: at(30 * 24 * time.Hour),
		LastSecondFactorAt: at(0), LastUsedAt: at(0), UserAgent: "Safari", IP: "2001:db8::1",
	}
	got := must(s.CreateTrustedDevice(ctx, d))(t)
	d.ID = got.ID
	equal(t, got, d)
	equal(t, must(s.GetTrustedDevice(ctx, "u1", digest("dev")))(t), d)
	// The same browser cookie can carry a record for another user.
	d2 := must(s.CreateTrustedDevice(ctx, storage.TrustedDevice{UserID: "u2", TokenHash: digest("dev"), CreatedAt: at(0)}))(t)
	equal(t, must(s.GetTrustedDevice(ctx, "u2", digest("dev")))(t).ID, d2.ID)
	_, err := s.GetTrustedDevice(ctx, "u3", digest("dev"))
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetTrustedDevice(ctx, "u1", digest("other"))
	wantErr(t, err, storage.ErrNotFound)

	// Expired records are still returned (the caller's policy decides).
	upd := must(s.UpdateTrustedDevice(ctx, d.ID, func(v *storage.TrustedDevice) error {
		v.UserID = "thief"
		v.ExpiresAt = at(-time.Hour)
		v.LastUsedAt = at(time.Hour)
		return nil
	}))(t)
	equal(t, upd.UserID, "u1")
	equal(t, must(s.GetTrustedDevice(ctx, "u1", digest("dev")))(t).ExpiresAt, at(-time.Hour))
	_, err = s.UpdateTrustedDevice(ctx, "nope", func(*storage.TrustedDevice) error { return nil })
	wantErr(t, err, storage.ErrNotFound)

	must(s.CreateTrustedDevice(ctx, storage.TrustedDevice{ID: "newer", UserID: "u1", TokenHash: digest("dev2"), CreatedAt: at(time.Hour)}))(t)
	list := must(s.ListTrustedDevices(ctx, "u1"))(t)
	equal(t, len(list), 2)
	equal(t, list[0].ID, "newer")

	wantErr(t, s.DeleteTrustedDevice(ctx, "u2", "newer"), storage.ErrNotFound) // not theirs
	ok(t, s.DeleteTrustedDevice(ctx, "u1", "newer"))
	wantErr(t, s.DeleteTrustedDevice(ctx, "u1", "newer"), storage.ErrNotFound)
	equal(t, len(must(s.ListTrustedDevices(ctx, "u1"))(t)), 1)
	equal(t, len(must(s.ListTrustedDevices(ctx, "u2"))(t)), 1)
}

// testKnownBrowsers: the first sign-in inserts, later ones only move the
// times forward; the record is per (user, browser); Sweep drops expired
// ones.
func testKnownBrowsers(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	_, err := s.GetKnownBrowser(ctx, "u1", digest("b1"))
	wantErr(t, err, storage.ErrNotFound)
	touch := func(k storage.KnownBrowser, wantNew bool) {
		t.Helper()
		if got := must(s.TouchKnownBrowser(ctx, k))(t); got != wantNew {
			t.Errorf("TouchKnownBrowser(%s at %v) new = %v, want %v", k.UserID, k.SeenAt, got, wantNew)
		}
	}
	touch(storage.KnownBrowser{UserID: "u1", TokenHash: digest("b1"), SeenAt: at(0), ExpiresAt: at(time.Hour)}, true)
	touch(storage.KnownBrowser{UserID: "u1", TokenHash: digest("b1"), SeenAt: at(time.Minute), ExpiresAt: at(2 * time.Hour)}, false)
	touch(storage.KnownBrowser{UserID: "u1", TokenHash: digest("b1"), SeenAt: at(-time.Minute), ExpiresAt: at(time.Minute)}, false)
	equal(t, must(s.GetKnownBrowser(ctx, "u1", digest("b1")))(t),
		storage.KnownBrowser{UserID: "u1", TokenHash: digest("b1"), FirstSeen: at(0), SeenAt: at(time.Minute), ExpiresAt: at(2 * time.Hour)})
	_, err = s.GetKnownBrowser(ctx, "u2", digest("b1"))
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetKnownBrowser(ctx, "u1", nil)
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.TouchKnownBrowser(ctx, storage.KnownBrowser{UserID: "u1"})
	wantOther(t, err)
	touch(storage.KnownBrowser{UserID: "u2", TokenHash: digest("b1"), SeenAt: at(0), ExpiresAt: at(3 * time.Hour)}, true)
	// Expired but not yet swept: new again, starting over.
	touch(storage.KnownBrowser{UserID: "u1", TokenHash: digest("b2"), SeenAt: at(0), ExpiresAt: at(time.Hour)}, true)
	touch(storage.KnownBrowser{UserID: "u1", TokenHash: digest("b2"), SeenAt: at(time.Hour + time.Millisecond), ExpiresAt: at(5 * time.Hour)}, true)
	equal(t, must(s.GetKnownBrowser(ctx, "u1", digest("b2")))(t), storage.KnownBrowser{UserID: "u1", TokenHash: digest("b2"),
		FirstSeen: at(time.Hour + time.Millisecond), SeenAt: at(time.Hour + time.Millisecond), ExpiresAt: at(5 * time.Hour)})
	// Many first sign-ins of one browser at once: one is new.
	var news atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first, err := s.TouchKnownBrowser(ctx, storage.KnownBrowser{UserID: "u3", TokenHash: digest("b1"), SeenAt: at(0), ExpiresAt: at(time.Hour)})
			if err != nil {
				t.Error(err)
			}
			if first {
				news.Add(1)
			}
		}()
	}
	wg.Wait()
	if news.Load() != 1 {
		t.Errorf("concurrent first sign-ins: %d new, want 1", news.Load())
	}
	ok(t, s.Sweep(ctx, at(2*time.Hour+time.Millisecond), storage.SweepPolicy{}))
	_, err = s.GetKnownBrowser(ctx, "u1", digest("b1"))
	wantErr(t, err, storage.ErrNotFound)
	must(s.GetKnownBrowser(ctx, "u2", digest("b1")))(t)
}

// ---------------------------------------------------------- email codes

func testEmailCodes(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	code := func(id, purpose, ctxID string, created time.Time) storage.EmailCode {
		return storage.EmailCode{
			ID: id, UserID: "u1", Purpose: purpose, ContextID: ctxID, BrowserHash: digest("b"),
			CodeHash: digest(id), CreatedAt: created, ExpiresAt: created.Add(10 * time.Minute),
		}
	}
	c1 := must(s.CreateEmailCode(ctx, code("c1", "signin", "ar1", at(0))))(t)
	equal(t, c1, code("c1", "signin", "ar1", at(0)))
	must(s.CreateEmailCode(ctx, code("other", "signin", "ar2", at(time.Second))))(t)
	must(s.CreateEmailCode(ctx, code("reset", "reset", "ar1", at(time.Second))))(t)
	c3 := must(s.CreateEmailCode(ctx, code("c3", "signin", "ar1", at(time.Minute))))(t)

	// c3 killed c1 (same scope) and nothing else.
	latest := must(s.LatestEmailCode(ctx, "u1", "signin", "ar1"))(t)
	equal(t, latest, c3)
	killed := must(s.UpdateEmailCode(ctx, "c1", func(*storage.EmailCode) error { return nil }))(t)
	equal(t, killed.DeadAt, at(time.Minute))
	equal(t, must(s.LatestEmailCode(ctx, "u1", "signin", "ar2"))(t).DeadAt, time.Time{})
	equal(t, must(s.LatestEmailCode(ctx, "u1", "reset", "ar1"))(t).DeadAt, time.Time{})
	_, err := s.LatestEmailCode(ctx, "u1", "signup", "ar1")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.LatestEmailCode(ctx, "u2", "signin", "ar1")
	wantErr(t, err, storage.ErrNotFound)

	// A code created in the same millisecond as the one it kills is the
	// latest (the live one wins the tie).
	c4 := must(s.CreateEmailCode(ctx, code("c4", "signin", "ar1", at(time.Minute))))(t)
	equal(t, must(s.LatestEmailCode(ctx, "u1", "signin", "ar1"))(t).ID, c4.ID)

	// Counting: codes created at or after since, any purpose.
	equal(t, must(s.CountEmailCodesSince(ctx, "u1", at(0)))(t), 5)
	equal(t, must(s.CountEmailCodesSince(ctx, "u1", at(time.Second)))(t), 4)
	equal(t, must(s.CountEmailCodesSince(ctx, "u1", at(time.Second+time.Millisecond)))(t), 2)
	equal(t, must(s.CountEmailCodesSince(ctx, "u2", at(0)))(t), 0)

	// Updates; a dead code stays dead unless the caller says otherwise.
	upd := must(s.UpdateEmailCode(ctx, "c4", func(v *storage.EmailCode) error {
		v.ID = "z"
		v.Attempts++
		v.DeadAt = at(2 * time.Minute)
		return nil
	}))(t)
	equal(t, upd.ID, "c4")
	equal(t, upd.Attempts, 1)
	equal(t, must(s.UpdateEmailCode(ctx, "c4", func(*storage.EmailCode) error { return nil }))(t), upd)
	_, err = s.UpdateEmailCode(ctx, "nope", func(*storage.EmailCode) error { return nil })
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.UpdateEmailCode(ctx, "c4", func(v *storage.EmailCode) error { v.Attempts = 99; return errSentinel })
	wantErr(t, err, errSentinel)
	equal(t, must(s.UpdateEmailCode(ctx, "c4", func(*storage.EmailCode) error { return nil }))(t), upd)
}

// testEmailCodeUpdatesSerialised: concurrent attempt counters never lose
// an increment (the updater serialises on the row).
func testEmailCodeUpdatesSerialised(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := must(s.CreateEmailCode(ctx, storage.EmailCode{UserID: "u1", Purpose: "signin", CodeHash: digest("x"), CreatedAt: at(0)}))(t)
	const n = 16
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := s.UpdateEmailCode(ctx, c.ID, func(v *storage.EmailCode) error { v.Attempts++; return nil })
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	equal(t, must(s.LatestEmailCode(ctx, "u1", "signin", ""))(t).Attempts, n)
}

// testEmailCodeAttempts: an attempt is counted before the caller sees the
// code; a dead, expired or exhausted code is not handed out; using it
// kills it once.
func testEmailCodeAttempts(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := must(s.CreateEmailCode(ctx, storage.EmailCode{UserID: "u1", Purpose: "signin", CodeHash: digest("x"),
		CreatedAt: at(0), ExpiresAt: at(10 * time.Minute)}))(t)
	for i := 1; i <= 3; i++ {
		got := must(s.TakeEmailCodeAttempt(ctx, c.ID, at(time.Minute), 3))(t)
		equal(t, got.Attempts, i)
		equal(t, got.CodeHash, digest("x"))
	}
	_, err := s.TakeEmailCodeAttempt(ctx, c.ID, at(time.Minute), 3)
	wantErr(t, err, storage.ErrNotFound) // exhausted
	_, err = s.TakeEmailCodeAttempt(ctx, c.ID, at(time.Minute), 4)
	ok(t, err)
	_, err = s.TakeEmailCodeAttempt(ctx, c.ID, at(10*time.Minute+time.Millisecond), 9)
	wantErr(t, err, storage.ErrNotFound)                              // expired
	must(s.TakeEmailCodeAttempt(ctx, c.ID, at(10*time.Minute), 9))(t) // inclusive
	ok(t, s.UseEmailCode(ctx, c.ID, at(2*time.Minute)))
	wantErr(t, s.UseEmailCode(ctx, c.ID, at(2*time.Minute)), storage.ErrConflict)
	_, err = s.TakeEmailCodeAttempt(ctx, c.ID, at(time.Minute), 9)
	wantErr(t, err, storage.ErrNotFound) // dead
	_, err = s.TakeEmailCodeAttempt(ctx, "nope", at(time.Minute), 9)
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, s.UseEmailCode(ctx, "nope", at(0)), storage.ErrConflict)
}

// testEmailCodeAttemptsConcurrent: of many concurrent attempts on one code
// exactly max get it.
func testEmailCodeAttemptsConcurrent(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := must(s.CreateEmailCode(ctx, storage.EmailCode{UserID: "u1", Purpose: "signin", CodeHash: digest("x"),
		CreatedAt: at(0), ExpiresAt: at(10 * time.Minute)}))(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for range 50 {
		wg.Go(func() {
			_, err := s.TakeEmailCodeAttempt(ctx, c.ID, at(time.Minute), 5)
			if err == nil {
				mu.Lock()
				got++
				mu.Unlock()
			} else if !errors.Is(err, storage.ErrNotFound) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	equal(t, got, 5)
}

func mailFor(to string, at time.Time) storage.OutboxMessage {
	return storage.OutboxMessage{Kind: "code", Purpose: "signin", Recipient: to, Sealed: []byte("sealed:" + to),
		CreatedAt: at, GiveUpAt: at.Add(10 * time.Minute)}
}

func codeFor(user, purpose, ctxID string, created time.Time) storage.EmailCode {
	return storage.EmailCode{UserID: user, Purpose: purpose, ContextID: ctxID, CodeHash: digest(created.String()),
		CreatedAt: created, ExpiresAt: created.Add(10 * time.Minute)}
}

// testIssueEmailCode: a code and its mail are written together; the gap
// and the budget refuse with the instant they allow again; a code whose
// mail failed or was superseded does not count; a newer code supersedes
// the scope's unsent mail.
func testIssueEmailCode(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	rule := storage.CodeRule{Budget: "signin", Max: 3, Window: 15 * time.Minute, Gap: 30 * time.Second}
	issue := func(ctxID string, at time.Time, r storage.CodeRule) storage.CodeIssue {
		t.Helper()
		return must(s.IssueEmailCode(ctx, codeFor("u1", "signin", ctxID, at), mailFor("u1@example.com", at), r))(t)
	}
	first := issue("ar1", at(0), rule)
	if first.Refused != "" || first.Code.ID == "" || first.Code.Budget != "signin" || first.Code.MailState != storage.MailQueued {
		t.Fatalf("first issue: %+v", first)
	}
	pending := must(s.ListOutbox(ctx, storage.OutboxFilter{}))(t)
	if len(pending) != 1 || pending[0].EmailCodeID != first.Code.ID || pending[0].State != storage.OutboxPending || pending[0].Sealed != nil {
		t.Fatalf("outbox after one code: %+v", pending)
	}
	equal(t, must(s.GetOutboxMessage(ctx, pending[0].ID))(t).Sealed, []byte("sealed:u1@example.com"))

	// The gap: 30 s per scope.
	gap := issue("ar1", at(29*time.Second), rule)
	equal(t, gap.Refused, storage.RefusedGap)
	equal(t, gap.RetryAt, at(30*time.Second))
	second := issue("ar1", at(30*time.Second), rule)
	equal(t, second.Refused, "")
	// The first code died, its mail was superseded and dropped.
	old := must(s.UpdateEmailCode(ctx, first.Code.ID, func(*storage.EmailCode) error { return nil }))(t)
	equal(t, old.DeadAt, at(30*time.Second))
	equal(t, old.MailState, storage.MailSuperseded)
	m := must(s.GetOutboxMessage(ctx, pending[0].ID))(t)
	equal(t, m.State, storage.OutboxSuperseded)
	equal(t, m.Sealed, []byte(nil))

	// Another scope, same budget: a superseded code gave its place back.
	issue("ar2", at(time.Minute), rule)
	third := issue("ar3", at(2*time.Minute), rule)
	equal(t, third.Refused, "")
	over := issue("ar4", at(3*time.Minute), rule)
	equal(t, over.Refused, storage.RefusedBudget)
	equal(t, over.RetryAt, at(30*time.Second+15*time.Minute)) // when the oldest counted code leaves the window
	// Another budget is not affected.
	other := rule
	other.Budget = "reset"
	equal(t, must(s.IssueEmailCode(ctx, codeFor("u1", "reset", "f1", at(3*time.Minute)), mailFor("u1@example.com", at(3*time.Minute)), other))(t).Refused, "")

	// A code whose mail failed is given back, and does not hold the gap.
	claimed := must(s.ClaimOutbox(ctx, at(4*time.Minute), time.Minute, 10))(t)
	for _, c := range claimed {
		if c.EmailCodeID == third.Code.ID {
			ok(t, s.FinishOutbox(ctx, c.ID, c.Claim, storage.OutboxResult{Error: "550 no such user", At: at(4 * time.Minute)}))
		}
	}
	dead := must(s.UpdateEmailCode(ctx, third.Code.ID, func(*storage.EmailCode) error { return nil }))(t)
	equal(t, dead.MailState, storage.MailFailed)
	equal(t, dead.DeadAt, at(4*time.Minute))
	equal(t, issue("ar3", at(4*time.Minute), rule).Refused, "")

	// A void mail (a stand-in's code): counted, never delivered.
	void := mailFor("", at(5*time.Minute))
	void.State = storage.OutboxVoid
	vi := must(s.IssueEmailCode(ctx, codeFor("~rs1", "reset", "f2", at(5*time.Minute)), void, other))(t)
	equal(t, vi.Code.MailState, storage.MailVoid)
	for _, c := range must(s.ClaimOutbox(ctx, at(time.Hour), time.Minute, 100))(t) {
		if c.EmailCodeID == vi.Code.ID {
			t.Fatal("a void mail was claimed")
		}
	}
}

// testIssueEmailCodeConcurrent: many concurrent requests for codes of one
// user, in different scopes, never issue more than the budget.
func testIssueEmailCodeConcurrent(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	rule := storage.CodeRule{Budget: "signin", Max: 5, Window: 15 * time.Minute, Gap: 30 * time.Second}
	var wg sync.WaitGroup
	var mu sync.Mutex
	issued := 0
	for i := range 40 {
		wg.Go(func() {
			r, err := s.IssueEmailCode(ctx, codeFor("u1", "signin", fmt.Sprint("ar", i), at(0)), mailFor("u1@example.com", at(0)), rule)
			if err != nil {
				t.Error(err)
				return
			}
			if r.Refused == "" {
				mu.Lock()
				issued++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	equal(t, issued, 5)
	equal(t, len(must(s.ListOutbox(ctx, storage.OutboxFilter{States: []string{storage.OutboxPending}}))(t)), 5)
}

// testOutbox: claims, leases, retries, giving up, listing without the
// content, the mail of a revocation, sweeping.
func testOutbox(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	a := must(s.EnqueueMail(ctx, mailFor("a@example.com", at(0))))(t)
	b := must(s.EnqueueMail(ctx, mailFor("b@example.com", at(time.Second))))(t)
	equal(t, a.State, storage.OutboxPending)
	equal(t, a.NextAt, at(0))
	wantOther(t, func() error { _, err := s.EnqueueMail(ctx, storage.OutboxMessage{CreatedAt: at(0)}); return err }())

	// Oldest first, up to the limit; a claimed message is not claimed again
	// while its lease holds.
	c1 := must(s.ClaimOutbox(ctx, at(2*time.Second), time.Minute, 1))(t)
	if len(c1) != 1 || c1[0].ID != a.ID || c1[0].State != storage.OutboxSending || c1[0].Attempts != 1 ||
		c1[0].LeaseUntil != at(time.Minute+2*time.Second) || c1[0].Claim == "" || string(c1[0].Sealed) != "sealed:a@example.com" {
		t.Fatalf("claim: %+v", c1)
	}
	c2 := must(s.ClaimOutbox(ctx, at(2*time.Second), time.Minute, 10))(t)
	if len(c2) != 1 || c2[0].ID != b.ID {
		t.Fatalf("second claim: %+v", c2)
	}
	equal(t, len(must(s.ClaimOutbox(ctx, at(3*time.Second), time.Minute, 10))(t)), 0)

	// A retry: pending again, due at Retry, content kept.
	ok(t, s.FinishOutbox(ctx, a.ID, c1[0].Claim, storage.OutboxResult{Retry: at(time.Minute), Error: "421 busy", At: at(3 * time.Second)}))
	wantErr(t, s.FinishOutbox(ctx, a.ID, c1[0].Claim, storage.OutboxResult{Sent: true, At: at(3 * time.Second)}), storage.ErrConflict)
	got := must(s.GetOutboxMessage(ctx, a.ID))(t)
	if got.State != storage.OutboxPending || got.NextAt != at(time.Minute) || got.LastError != "421 busy" || got.Sealed == nil {
		t.Fatalf("after a retry: %+v", got)
	}
	equal(t, len(must(s.ClaimOutbox(ctx, at(time.Minute-time.Millisecond), time.Minute, 10))(t)), 0)
	c3 := must(s.ClaimOutbox(ctx, at(time.Minute), time.Minute, 10))(t)
	if len(c3) != 1 || c3[0].Attempts != 2 {
		t.Fatalf("claim after the retry time: %+v", c3)
	}
	// Sent: the content is dropped.
	ok(t, s.FinishOutbox(ctx, a.ID, c3[0].Claim, storage.OutboxResult{Sent: true, At: at(time.Minute)}))
	got = must(s.GetOutboxMessage(ctx, a.ID))(t)
	if got.State != storage.OutboxSent || got.Sealed != nil || got.DoneAt != at(time.Minute) {
		t.Fatalf("after sending: %+v", got)
	}

	// A worker that died: its lease runs out and another claims the
	// message; the dead worker's claim no longer finishes it.
	c4 := must(s.ClaimOutbox(ctx, at(2*time.Minute+2*time.Second+time.Millisecond), time.Minute, 10))(t)
	if len(c4) != 1 || c4[0].ID != b.ID || c4[0].Claim == c2[0].Claim || c4[0].Attempts != 2 {
		t.Fatalf("reclaim after the lease: %+v", c4)
	}
	wantErr(t, s.FinishOutbox(ctx, b.ID, c2[0].Claim, storage.OutboxResult{Sent: true, At: at(3 * time.Minute)}), storage.ErrConflict)

	// Giving up: past GiveUpAt a message fails and loses its content.
	late := must(s.ExpireOutbox(ctx, at(10*time.Minute+time.Second)))(t)
	equal(t, len(late), 0) // b's lease (until 3m2s) ran out, but b gives up only at 10m1s
	late = must(s.ExpireOutbox(ctx, at(10*time.Minute+time.Second+time.Millisecond)))(t)
	if len(late) != 1 || late[0].ID != b.ID || late[0].State != storage.OutboxFailed || late[0].Sealed != nil {
		t.Fatalf("expired: %+v", late)
	}
	equal(t, must(s.GetOutboxMessage(ctx, b.ID))(t).Sealed, []byte(nil))
	equal(t, len(must(s.ClaimOutbox(ctx, at(time.Hour), time.Minute, 10))(t)), 0)

	// Listing: by state, newest first, never the content.
	pend := must(s.EnqueueMail(ctx, mailFor("c@example.com", at(time.Hour))))(t)
	all := must(s.ListOutbox(ctx, storage.OutboxFilter{}))(t)
	if len(all) != 3 || all[0].ID != pend.ID || all[0].Sealed != nil {
		t.Fatalf("list: %+v", all)
	}
	failed := must(s.ListOutbox(ctx, storage.OutboxFilter{States: []string{storage.OutboxFailed, storage.OutboxPending}}))(t)
	equal(t, len(failed), 2)

	// A revocation's notice commits with it.
	u := newUser(t, s, "rev@example.com")
	must(s.RevokeUserGrants(ctx, u.ID, storage.Revocation{Cause: storage.RevokePasswordChanged,
		Mail: []storage.OutboxMessage{{Kind: "notice", Recipient: u.Email, Sealed: []byte("n"), CreatedAt: at(time.Hour), GiveUpAt: at(2 * time.Hour)}}}, at(time.Hour)))(t)
	equal(t, len(must(s.ListOutbox(ctx, storage.OutboxFilter{States: []string{storage.OutboxPending}}))(t)), 2)
	_, err := s.RevokeUserGrants(ctx, u.ID, storage.Revocation{Cause: storage.RevokePasswordChanged,
		User: func(*storage.User) error { return errSentinel },
		Mail: []storage.OutboxMessage{{Kind: "notice", Recipient: u.Email, CreatedAt: at(time.Hour)}}}, at(time.Hour))
	wantErr(t, err, errSentinel)
	equal(t, len(must(s.ListOutbox(ctx, storage.OutboxFilter{States: []string{storage.OutboxPending}}))(t)), 2)

	// Sweep: done messages go after OutboxKeep.
	ok(t, s.Sweep(ctx, at(time.Minute+7*24*time.Hour+time.Millisecond), storage.SweepPolicy{}))
	_, err = s.GetOutboxMessage(ctx, a.ID)
	wantErr(t, err, storage.ErrNotFound)
	must(s.GetOutboxMessage(ctx, b.ID))(t) // done at 10m1s: kept a little longer
	must(s.GetOutboxMessage(ctx, pend.ID))(t)
}

// testOutboxClaimConcurrent: concurrent claims never hand one message to
// two callers.
func testOutboxClaimConcurrent(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	const n = 60
	for i := range n {
		must(s.EnqueueMail(ctx, mailFor(fmt.Sprintf("m%d@example.com", i), at(time.Duration(i)*time.Millisecond))))(t)
	}
	seen := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				got, err := s.ClaimOutbox(ctx, at(time.Second), time.Minute, 3)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, m := range got {
					seen[m.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	equal(t, len(seen), n)
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s claimed %d times", id, k)
		}
	}
}

// testEmailCodeCreateConcurrent: however many codes of one scope are
// created at once, exactly one is left live.
func testEmailCodeCreateConcurrent(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	const n = 12
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := s.CreateEmailCode(ctx, storage.EmailCode{
				UserID: "u1", Purpose: "signin", ContextID: "ar1", CodeHash: digest(fmt.Sprint(i)),
				CreatedAt: at(time.Duration(i) * time.Millisecond), ExpiresAt: at(time.Hour),
			})
			if err != nil {
				t.Error(err)
			}
			ids[i] = c.ID
		})
	}
	wg.Wait()
	live := 0
	for _, id := range ids {
		c := must(s.UpdateEmailCode(ctx, id, func(*storage.EmailCode) error { return nil }))(t)
		if c.DeadAt.IsZero() {
			live++
		}
	}
	equal(t, live, 1)
}

// ----------------------------------------------------------------- TOTP

func testTOTP(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	p1 := must(s.CreateTOTP(ctx, storage.TOTPCredential{UserID: "u1", SeedSealed: []byte("seed1"), CreatedAt: at(0)}))(t)
	equal(t, p1.Status, storage.TOTPPending)
	equal(t, must(s.ListTOTP(ctx, "u1"))(t), []storage.TOTPCredential{p1})

	wantErr(t, s.ActivateTOTP(ctx, "u2", p1.ID, 100, at(time.Minute)), storage.ErrNotFound) // not theirs
	wantErr(t, s.ActivateTOTP(ctx, "u1", "nope", 100, at(time.Minute)), storage.ErrNotFound)
	ok(t, s.ActivateTOTP(ctx, "u1", p1.ID, 100, at(time.Minute)))
	wantErr(t, s.ActivateTOTP(ctx, "u1", p1.ID, 100, at(time.Minute)), storage.ErrNotFound) // not pending any more

	p2 := must(s.CreateTOTP(ctx, storage.TOTPCredential{UserID: "u1", SeedSealed: []byte("seed2"), CreatedAt: at(-time.Hour)}))(t)
	list := must(s.ListTOTP(ctx, "u1"))(t)
	equal(t, len(list), 2)
	active := p1
	active.Status, active.LastStep, active.ConfirmedAt = storage.TOTPActive, 100, at(time.Minute)
	equal(t, list[0], active) // active first, although p2 is older
	equal(t, list[1], p2)

	// Replay guard: only strictly newer steps.
	wantErr(t, s.AcceptTOTPStep(ctx, p1.ID, 100), storage.ErrConflict)
	wantErr(t, s.AcceptTOTPStep(ctx, p1.ID, 99), storage.ErrConflict)
	ok(t, s.AcceptTOTPStep(ctx, p1.ID, 101))
	wantErr(t, s.AcceptTOTPStep(ctx, p1.ID, 101), storage.ErrConflict)
	ok(t, s.AcceptTOTPStep(ctx, p1.ID, 105))
	wantErr(t, s.AcceptTOTPStep(ctx, "nope", 1), storage.ErrNotFound)
	equal(t, must(s.ListTOTP(ctx, "u1"))(t)[0].LastStep, int64(105))

	// Activating p2 replaces p1.
	ok(t, s.ActivateTOTP(ctx, "u1", p2.ID, 7, at(time.Hour)))
	list = must(s.ListTOTP(ctx, "u1"))(t)
	equal(t, len(list), 1)
	equal(t, list[0].ID, p2.ID)
	equal(t, list[0].LastStep, int64(7))

	// Deleting by status.
	must(s.CreateTOTP(ctx, storage.TOTPCredential{UserID: "u1", CreatedAt: at(0)}))(t)
	must(s.CreateTOTP(ctx, storage.TOTPCredential{UserID: "u2", CreatedAt: at(0)}))(t)
	ok(t, s.DeleteTOTP(ctx, "u1", storage.TOTPPending))
	equal(t, len(must(s.ListTOTP(ctx, "u1"))(t)), 1)
	ok(t, s.DeleteTOTP(ctx, "u1", ""))
	ok(t, s.DeleteTOTP(ctx, "u1", ""))
	equal(t, len(must(s.ListTOTP(ctx, "u1"))(t)), 0)
	equal(t, len(must(s.ListTOTP(ctx, "u2"))(t)), 1)
}

func testTOTPConcurrent(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := must(s.CreateTOTP(ctx, storage.TOTPCredential{UserID: "u1", Status: storage.TOTPActive, LastStep: 1000, CreatedAt: at(0)}))(t)
	race(t, 20, func(i int) func() error {
		step := int64(1001 + i)
		return func() error { return s.AcceptTOTPStep(ctx, c.ID, step) }
	}, is(storage.ErrConflict))
}

// --------------------------------------------------------- backup codes

func testBackupCode(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	_, err := s.GetBackupCode(ctx, "u1")
	wantErr(t, err, storage.ErrNotFound)
	none := storage.BackupCodeShow{}
	ok(t, s.SetBackupCode(ctx, storage.BackupCode{UserID: "u1", CodeHash: digest("b1"), CreatedAt: at(0)}, none))
	equal(t, must(s.GetBackupCode(ctx, "u1"))(t), storage.BackupCode{UserID: "u1", CodeHash: digest("b1"), CreatedAt: at(0)})
	ok(t, s.SetBackupCode(ctx, storage.BackupCode{UserID: "u1", CodeHash: digest("b2"), CreatedAt: at(time.Hour)}, none))
	equal(t, must(s.GetBackupCode(ctx, "u1"))(t).CodeHash, digest("b2"))

	next := storage.BackupCode{UserID: "ignored", CodeHash: digest("b3"), CreatedAt: at(2 * time.Hour)}
	wantErr(t, s.ReplaceBackupCode(ctx, "u1", digest("b1"), next, none), storage.ErrConflict)
	ok(t, s.ReplaceBackupCode(ctx, "u1", digest("b2"), next, none))
	equal(t, must(s.GetBackupCode(ctx, "u1"))(t), storage.BackupCode{UserID: "u1", CodeHash: digest("b3"), CreatedAt: at(2 * time.Hour)})
	wantErr(t, s.ReplaceBackupCode(ctx, "u1", digest("b2"), next, none), storage.ErrConflict)
	wantErr(t, s.ReplaceBackupCode(ctx, "u2", digest("b2"), next, none), storage.ErrNotFound)

	ok(t, s.DeleteBackupCode(ctx, "u1"))
	ok(t, s.DeleteBackupCode(ctx, "u1"))
	_, err = s.GetBackupCode(ctx, "u1")
	wantErr(t, err, storage.ErrNotFound)
}

func testBackupCodeConcurrent(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	race(t, 20, func(i int) func() error {
		old := digest(fmt.Sprint("old", i))
		ok(t, s.SetBackupCode(ctx, storage.BackupCode{UserID: "u1", CodeHash: old, CreatedAt: at(0)}, storage.BackupCodeShow{}))
		var n sync.Mutex
		k := 0
		return func() error {
			n.Lock()
			k++
			next := digest(fmt.Sprint("new", i, k))
			n.Unlock()
			return s.ReplaceBackupCode(ctx, "u1", old, storage.BackupCode{CodeHash: next, CreatedAt: at(time.Minute)}, storage.BackupCodeShow{})
		}
	}, is(storage.ErrConflict))
}

// testBackupCodeShow: the display copy of a new code is written with the
// code, in one transaction; a sign-in that is gone leaves the old code.
func testBackupCodeShow(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	u := must(s.CreateUser(ctx, storage.User{Email: "show@example.com", CreatedAt: at(0), UpdatedAt: at(0)}))(t)
	ar := storage.AuthRequest{ID: "ar1", ClientID: "c", CreatedAt: at(0), ExpiresAt: at(time.Hour), UserID: u.ID}
	ok(t, s.CreateAuthRequest(ctx, ar))
	ok(t, s.SetBackupCode(ctx, storage.BackupCode{UserID: u.ID, CodeHash: digest("first"), CreatedAt: at(0)},
		storage.BackupCodeShow{AuthRequestID: "ar1", Sealed: []byte("sealed-first")}))
	equal(t, must(s.GetAuthRequest(ctx, "ar1"))(t).BackupCodeSealed, []byte("sealed-first"))

	// Used in a sign-in: the replacement reaches that sign-in with it.
	ok(t, s.ReplaceBackupCode(ctx, u.ID, digest("first"), storage.BackupCode{CodeHash: digest("second"), CreatedAt: at(time.Minute)},
		storage.BackupCodeShow{AuthRequestID: "ar1", Sealed: []byte("sealed-second")}))
	equal(t, must(s.GetAuthRequest(ctx, "ar1"))(t).BackupCodeSealed, []byte("sealed-second"))

	// A sign-in that is gone: nothing changes, the old code still works.
	wantErr(t, s.ReplaceBackupCode(ctx, u.ID, digest("second"), storage.BackupCode{CodeHash: digest("third"), CreatedAt: at(2 * time.Minute)},
		storage.BackupCodeShow{AuthRequestID: "gone", Sealed: []byte("x")}), storage.ErrNotFound)
	equal(t, must(s.GetBackupCode(ctx, u.ID))(t).CodeHash, digest("second"))

	// Used where nobody sees the new code: the next sign-in makes one.
	ok(t, s.ReplaceBackupCode(ctx, u.ID, digest("second"), storage.BackupCode{CodeHash: digest("third"), CreatedAt: at(3 * time.Minute)},
		storage.BackupCodeShow{NextSignin: true}))
	if !must(s.GetUser(ctx, u.ID))(t).NeedsBackupCode {
		t.Fatal("NeedsBackupCode not set")
	}
}

// testRevokeUserGrants checks every row of the table on RevokeCause.
func testRevokeUserGrants(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	type want struct {
		sessions, families, devices []string // what survives
	}
	cases := []struct {
		cause storage.RevokeCause
		want  want
	}{
		{storage.RevokePasswordChanged, want{sessions: []string{"cur"}, families: []string{"cur", "prev"}}},
		{storage.RevokeSecondStepChanged, want{sessions: []string{"cur"}, families: []string{"cur", "prev"}}},
		{storage.RevokeSignOutOthers, want{sessions: []string{"cur"}, families: []string{"cur", "prev"}, devices: []string{"mine"}}},
		{storage.RevokePasswordReset, want{}},
		{storage.RevokeUserDisabled, want{}},
		{storage.RevokeSSOConversion, want{}},
		{storage.RevokeAccountReplaced, want{}},
	}
	for i, tc := range cases {
		t.Run(string(tc.cause), func(t *testing.T) {
			email := fmt.Sprintf("revoke%d@example.com", i)
			u := must(s.CreateUser(ctx, storage.User{Email: email, CreatedAt: at(0), UpdatedAt: at(0)}))(t)
			other := must(s.CreateUser(ctx, storage.User{Email: "other-" + email, CreatedAt: at(0), UpdatedAt: at(0)}))(t)
			sess := map[string]string{}
			for _, name := range []string{"cur", "elsewhere"} {
				sess[name] = must(s.CreateSession(ctx, storage.Session{UserID: u.ID, TokenHash: digest(email + name), CreatedAt: at(0)}))(t).ID
			}
			otherSess := must(s.CreateSession(ctx, storage.Session{UserID: other.ID, TokenHash: digest(email + "other"), CreatedAt: at(0)}))(t)
			fams := map[string]storage.RefreshToken{
				"cur":       newFamily(t, s, email+"f-cur", u.ID, sess["cur"], "app"),
				"prev":      newFamily(t, s, email+"f-prev", u.ID, "prev-"+email, "app"),
				"elsewhere": newFamily(t, s, email+"f-else", u.ID, sess["elsewhere"], "app"),
				"none":      newFamily(t, s, email+"f-none", u.ID, "", "app"),
			}
			otherFam := newFamily(t, s, email+"f-other", other.ID, otherSess.ID, "app")
			devs := map[string]string{}
			for _, name := range []string{"mine", "theirs"} {
				devs[name] = must(s.CreateTrustedDevice(ctx, storage.TrustedDevice{UserID: u.ID, TokenHash: digest(email + "dev" + name),
					CreatedAt: at(0), ExpiresAt: at(time.Hour)}))(t).ID
			}
			must(s.CreateTrustedDevice(ctx, storage.TrustedDevice{UserID: other.ID, TokenHash: digest(email + "dev-other"), CreatedAt: at(0), ExpiresAt: at(time.Hour)}))(t)
			ok(t, s.SetBackupCode(ctx, storage.BackupCode{UserID: u.ID, CodeHash: digest(email), CreatedAt: at(0)}, storage.BackupCodeShow{}))
			must(s.CreateTOTP(ctx, storage.TOTPCredential{UserID: u.ID, SeedSealed: []byte("s"), Status: storage.TOTPActive, CreatedAt: at(0)}))(t)
			must(s.CreatePasskey(ctx, storage.Passkey{UserID: u.ID, CredentialID: digest(email + "pk"), UserHandle: []byte("h"), PublicKey: []byte("k"), CreatedAt: at(0)}))(t)
			must(s.CreatePasskey(ctx, storage.Passkey{UserID: other.ID, CredentialID: digest(email + "pk-other"), UserHandle: []byte("h"), PublicKey: []byte("k"), CreatedAt: at(0)}))(t)

			keep := storage.Keep{SessionIDs: []string{sess["cur"], "prev-" + email}, DeviceID: devs["mine"]}
			got := must(s.RevokeUserGrants(ctx, u.ID, storage.Revocation{Cause: tc.cause, Keep: keep,
				User: func(x *storage.User) error { x.Name = "changed"; return nil }}, at(time.Hour)))(t)
			equal(t, must(s.GetUser(ctx, u.ID))(t).Name, "changed")

			var wantSess, gotSess []string
			for _, n := range tc.want.sessions {
				wantSess = append(wantSess, sess[n])
			}
			for _, x := range must(s.ListSessions(ctx, u.ID))(t) {
				gotSess = append(gotSess, x.ID)
			}
			equal(t, sorted(gotSess), sorted(wantSess))
			var ended []string
			for n, id := range sess {
				if !slices.Contains(tc.want.sessions, n) {
					ended = append(ended, id)
				}
			}
			equal(t, sorted(got.SessionIDs), sorted(ended))

			var wantFam, gotFam []string
			for _, n := range tc.want.families {
				wantFam = append(wantFam, fams[n].FamilyID)
			}
			for _, f := range must(s.ListRefreshFamilies(ctx, u.ID))(t) {
				gotFam = append(gotFam, f.FamilyID)
			}
			equal(t, sorted(gotFam), sorted(wantFam))

			var wantDev, gotDev []string
			for _, n := range tc.want.devices {
				wantDev = append(wantDev, devs[n])
			}
			for _, d := range must(s.ListTrustedDevices(ctx, u.ID))(t) {
				gotDev = append(gotDev, d.ID)
			}
			equal(t, sorted(gotDev), sorted(wantDev))

			_, berr := s.GetBackupCode(ctx, u.ID)
			totps := must(s.ListTOTP(ctx, u.ID))(t)
			removed := tc.cause == storage.RevokeSSOConversion || tc.cause == storage.RevokeAccountReplaced
			if removed != (errors.Is(berr, storage.ErrNotFound) && len(totps) == 0) {
				t.Fatalf("2-step methods removed: want %v (backup code err %v, %d authenticators left)", removed, berr, len(totps))
			}
			if pks := must(s.ListPasskeys(ctx, u.ID))(t); removed != (len(pks) == 0) {
				t.Fatalf("passkeys removed: want %v, %d left", removed, len(pks))
			}
			equal(t, len(must(s.ListPasskeys(ctx, other.ID))(t)), 1)

			// Nobody else is touched.
			equal(t, len(must(s.ListSessions(ctx, other.ID))(t)), 1)
			equal(t, len(must(s.ListTrustedDevices(ctx, other.ID))(t)), 1)
			fs := must(s.ListRefreshFamilies(ctx, other.ID))(t)
			if len(fs) != 1 || fs[0].FamilyID != otherFam.FamilyID {
				t.Fatalf("other user's families = %v", fs)
			}
		})
	}
	_, err := s.RevokeUserGrants(ctx, "", storage.Revocation{Cause: storage.RevokePasswordReset}, at(0))
	if err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("empty user id: err = %v", err)
	}
	_, err = s.RevokeUserGrants(ctx, "u", storage.Revocation{Cause: "nope"}, at(0))
	if err == nil {
		t.Fatal("unknown cause accepted")
	}
	_, err = s.RevokeUserGrants(ctx, "missing", storage.Revocation{Cause: storage.RevokeUserDisabled,
		User: func(*storage.User) error { return nil }}, at(0))
	wantErr(t, err, storage.ErrNotFound)

	// All or nothing: a change that fails revokes nothing.
	u := must(s.CreateUser(ctx, storage.User{Email: "atomic@example.com", CreatedAt: at(0), UpdatedAt: at(0)}))(t)
	must(s.CreateSession(ctx, storage.Session{UserID: u.ID, TokenHash: digest("atomic"), CreatedAt: at(0)}))(t)
	boom := errors.New("boom")
	_, err = s.RevokeUserGrants(ctx, u.ID, storage.Revocation{Cause: storage.RevokePasswordReset,
		User: func(*storage.User) error { return boom }}, at(0))
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the updater's", err)
	}
	equal(t, len(must(s.ListSessions(ctx, u.ID))(t)), 1)
}

func sorted(xs []string) []string {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs
}

// ------------------------------------------------------- refresh tokens

func newFamily(t testing.TB, s *storage.Store, name, user, session, client string) storage.RefreshToken {
	t.Helper()
	return must(s.CreateRefreshToken(t.Context(), storage.RefreshToken{
		ID: name + "-0", TokenHash: digest(name + "-0"), ClientID: client, UserID: user, SessionID: session,
		Scopes: []string{"openid", "offline_access"}, GrantedScopes: []string{"openid", "email", "offline_access"},
		Audience: []string{client}, AMR: []string{"pwd"}, ACR: "urn:x:1fa",
		AuthTime: at(0), SecondFactorAt: at(time.Second), CreatedAt: at(0), ExpiresAt: at(90 * 24 * time.Hour),
	}))(t)
}

func rotate(t testing.TB, s *storage.Store, old storage.RefreshToken, name string, now time.Time) storage.RefreshToken {
	t.Helper()
	next := old
	next.ID, next.TokenHash, next.FamilyID, next.FamilyCreatedAt = name, digest(name), "", time.Time{}
	next.CreatedAt, next.LastUsedAt, next.UsedAt = now, now, time.Time{}
	return must(s.RotateRefreshToken(t.Context(), old.ID, now, next))(t)
}

func accessToken(t testing.TB, s *storage.Store, id string, rt storage.RefreshToken) {
	t.Helper()
	ok(t, s.CreateAccessToken(t.Context(), storage.AccessToken{
		ID: id, ClientID: rt.ClientID, UserID: rt.UserID, RefreshTokenID: rt.ID, FamilyID: rt.FamilyID,
		SessionID: rt.SessionID, Scopes: rt.Scopes, CreatedAt: rt.CreatedAt, ExpiresAt: rt.CreatedAt.Add(time.Hour),
	}))
}

func testRefreshRotation(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	t0 := newFamily(t, s, "f1", "u1", "s1", "app")
	if t0.FamilyID == "" {
		t.Fatal("family id not generated")
	}
	equal(t, t0.FamilyCreatedAt, at(0))
	equal(t, t0.LastUsedAt, at(0)) // defaults to CreatedAt
	equal(t, must(s.GetRefreshTokenByHash(ctx, t0.FamilyID, digest("f1-0")))(t), t0)
	_, err := s.GetRefreshTokenByHash(ctx, t0.FamilyID, digest("nope"))
	wantErr(t, err, storage.ErrNotFound)
	// Found by its family and digest: not by the digest under another
	// family, none (only tokens from before migration 0012 are), or a
	// family that is not text.
	for _, fam := range []string{"other", "", "f\x00", "\xff"} {
		_, err = s.GetRefreshTokenByHash(ctx, fam, digest("f1-0"))
		wantErr(t, err, storage.ErrNotFound)
	}
	_, err = s.CreateRefreshToken(ctx, storage.RefreshToken{ID: "f1-0", TokenHash: digest("f1-z")})
	wantErr(t, err, storage.ErrConflict)

	other := newFamily(t, s, "f2", "u1", "s1", "app")
	accessToken(t, s, "at-f1-0", t0)
	accessToken(t, s, "at-f2-0", other)

	t1 := rotate(t, s, t0, "f1-1", at(time.Hour))
	equal(t, t1.FamilyID, t0.FamilyID)
	equal(t, t1.FamilyCreatedAt, at(0))
	equal(t, t1.Scopes, t0.Scopes)
	equal(t, must(s.GetRefreshTokenByHash(ctx, t0.FamilyID, digest("f1-1")))(t), t1)
	equal(t, must(s.GetRefreshTokenByHash(ctx, t0.FamilyID, digest("f1-0")))(t).UsedAt, at(time.Hour))
	// The old token's access tokens are gone; other families' are not.
	_, err = s.GetAccessToken(ctx, "at-f1-0")
	wantErr(t, err, storage.ErrNotFound)
	must(s.GetAccessToken(ctx, "at-f2-0"))(t)

	// Reuse of a rotated token: ErrConflict, nothing inserted.
	next := t1
	next.ID, next.TokenHash = "f1-x", digest("f1-x")
	_, err = s.RotateRefreshToken(ctx, t0.ID, at(2*time.Hour), next)
	wantErr(t, err, storage.ErrConflict)
	_, err = s.GetRefreshTokenByHash(ctx, t0.FamilyID, digest("f1-x"))
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.RotateRefreshToken(ctx, "nope", at(2*time.Hour), next)
	wantErr(t, err, storage.ErrNotFound)

	// next must not claim another family; the failed rotation rolls back.
	next.FamilyID = other.FamilyID
	_, err = s.RotateRefreshToken(ctx, t1.ID, at(2*time.Hour), next)
	wantOther(t, err)
	equal(t, must(s.GetRefreshTokenByHash(ctx, t0.FamilyID, digest("f1-1")))(t).UsedAt, time.Time{})

	// ID generated and CreatedAt/LastUsedAt defaulted when empty.
	t2 := must(s.RotateRefreshToken(ctx, t1.ID, at(3*time.Hour), storage.RefreshToken{TokenHash: digest("f1-2"), UserID: "u1"}))(t)
	if t2.ID == "" {
		t.Fatal("id not generated")
	}
	equal(t, t2.CreatedAt, at(3*time.Hour))
	equal(t, t2.LastUsedAt, at(3*time.Hour))
	equal(t, t2.FamilyID, t0.FamilyID)

	// A revoked token cannot rotate.
	ok(t, s.RevokeRefreshFamily(ctx, t0.FamilyID, at(4*time.Hour)))
	next.FamilyID = ""
	_, err = s.RotateRefreshToken(ctx, t2.ID, at(5*time.Hour), next)
	wantErr(t, err, storage.ErrConflict)
}

// testRefreshGrantRead: the refresh grant's one read returns the token and
// its user as the two separate reads do, and ErrNotFound for an unknown
// token or a token whose user is gone.
func testRefreshGrantRead(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	u := newUser(t, s, "grant@example.com")
	t0 := newFamily(t, s, "g1", u.ID, "s1", "app")
	rt, gu, err := s.GetRefreshGrant(ctx, t0.FamilyID, digest("g1-0"))
	ok(t, err)
	equal(t, rt, t0)
	equal(t, gu, must(s.GetUser(ctx, u.ID))(t))
	t1 := rotate(t, s, t0, "g1-1", at(time.Hour))
	rt, _, err = s.GetRefreshGrant(ctx, t0.FamilyID, digest("g1-0")) // used: still found
	ok(t, err)
	equal(t, rt.UsedAt, at(time.Hour))
	rt, _, err = s.GetRefreshGrant(ctx, t0.FamilyID, digest("g1-1"))
	ok(t, err)
	equal(t, rt, t1)
	_, _, err = s.GetRefreshGrant(ctx, t0.FamilyID, digest("nope"))
	wantErr(t, err, storage.ErrNotFound)
	for _, fam := range []string{"other", "", "f\x00", "\xff"} {
		_, _, err = s.GetRefreshGrant(ctx, fam, digest("g1-1"))
		wantErr(t, err, storage.ErrNotFound)
	}
	_, _, err = s.GetRefreshGrant(ctx, t0.FamilyID, nil)
	wantErr(t, err, storage.ErrNotFound)
	g2 := newFamily(t, s, "g2", "no-such-user", "s1", "app")
	_, _, err = s.GetRefreshGrant(ctx, g2.FamilyID, digest("g2-0"))
	wantErr(t, err, storage.ErrNotFound)
	must(s.GetRefreshTokenByHash(ctx, g2.FamilyID, digest("g2-0")))(t)
}

func testRefreshRotationConcurrent(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	race(t, 20, func(i int) func() error {
		head := newFamily(t, s, fmt.Sprint("f", i), "u1", "s1", "app")
		var mu sync.Mutex
		k := 0
		return func() error {
			mu.Lock()
			k++
			name := fmt.Sprint("f", i, "-next", k)
			mu.Unlock()
			_, err := s.RotateRefreshToken(ctx, head.ID, at(time.Hour), storage.RefreshToken{TokenHash: digest(name), UserID: "u1"})
			return err
		}
	}, is(storage.ErrConflict))
	// Every family has exactly one head.
	fams := must(s.ListRefreshFamilies(ctx, "u1"))(t)
	equal(t, len(fams), 20)
}

// testRefreshReuseGrace: within the grace a used token rotates again into
// a sibling (a lost answer retried, two refreshes at once: both succeed);
// after it, a second use is reuse; a revoked token never rotates.
func testRefreshReuseGrace(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	grace := 10 * time.Second
	head := newFamily(t, s, "g", "u1", "s1", "app")
	access := func(id string) storage.AccessToken {
		return storage.AccessToken{ID: id, ClientID: "app", UserID: "u1", CreatedAt: at(0), ExpiresAt: at(time.Hour)}
	}
	next := func(name string) storage.RefreshToken {
		return storage.RefreshToken{TokenHash: digest(name), UserID: "u1"}
	}
	first := must(s.RotateRefreshTokenWithAccess(ctx, head.ID, at(time.Minute), grace, next("g-1"), access("at1")))(t)
	// The retry 10 s later (the client never got the answer): a sibling.
	sib := must(s.RotateRefreshTokenWithAccess(ctx, head.ID, at(time.Minute+grace), grace, next("g-1b"), access("at2")))(t)
	equal(t, sib.FamilyID, first.FamilyID)
	// Its used_at stays the first use: 10 s + 1 ms after it, reuse.
	_, err := s.RotateRefreshTokenWithAccess(ctx, head.ID, at(time.Minute+grace+time.Millisecond), grace, next("g-1c"), access("at3"))
	wantErr(t, err, storage.ErrConflict)
	// Both successors work.
	must(s.RotateRefreshTokenWithAccess(ctx, first.ID, at(2*time.Minute), grace, next("g-2"), access("at4")))(t)
	// Without grace a second use is reuse at once.
	_, err = s.RotateRefreshTokenWithAccess(ctx, first.ID, at(2*time.Minute), 0, next("g-3"), access("at6"))
	wantErr(t, err, storage.ErrConflict)
	must(s.RotateRefreshTokenWithAccess(ctx, sib.ID, at(2*time.Minute), grace, next("g-2b"), access("at5")))(t)
	// The grace is the family's latest rotation's: rotating sib compacted
	// first away, within its grace (a client that presented first's
	// successor had the answer). A use of it is not found — reuse, which
	// op recognises by the family — and so is the head's.
	for _, rt := range []storage.RefreshToken{first, head} {
		_, err = s.RotateRefreshTokenWithAccess(ctx, rt.ID, at(2*time.Minute+time.Second), grace, next("g-3b"), access("at6b"))
		wantErr(t, err, storage.ErrNotFound)
		_, err = s.GetRefreshTokenByHash(ctx, rt.FamilyID, rt.TokenHash)
		wantErr(t, err, storage.ErrNotFound)
	}
	// The family holds its two heads and the token just rotated.
	for _, name := range []string{"g-2", "g-2b", "g-1b"} {
		must(s.GetRefreshTokenByHash(ctx, first.FamilyID, digest(name)))(t)
	}
	// A revoked family rotates nothing, grace or not.
	ok(t, s.RevokeRefreshFamily(ctx, first.FamilyID, at(3*time.Minute)))
	_, err = s.RotateRefreshTokenWithAccess(ctx, sib.ID, at(2*time.Minute+time.Second), grace, next("g-4"), access("at7"))
	wantErr(t, err, storage.ErrConflict)

	// Many refreshes of one token at once within the grace: all succeed,
	// all in its family.
	h2 := newFamily(t, s, "g2", "u1", "s1", "app")
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = s.RotateRefreshTokenWithAccess(ctx, h2.ID, at(time.Minute), grace, next(fmt.Sprint("g2-next-", i)), access(fmt.Sprint("g2at", i)))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent refresh %d within the grace: %v", i, err)
		}
	}

	// A sibling nobody used goes idle on its own; the lineage in use stays.
	h3 := newFamily(t, s, "g3", "u3", "s3", "app")
	a := must(s.RotateRefreshTokenWithAccess(ctx, h3.ID, at(time.Minute), grace, next("g3-a"), access("g3at1")))(t)
	must(s.RotateRefreshTokenWithAccess(ctx, h3.ID, at(time.Minute+time.Second), grace, next("g3-b"), access("g3at2")))(t)
	must(s.RotateRefreshTokenWithAccess(ctx, a.ID, at(40*time.Hour), grace, next("g3-a2"), access("g3at3")))(t)
	ok(t, s.Sweep(ctx, at(48*time.Hour), storage.SweepPolicy{RefreshIdle: 24 * time.Hour}))
	if a2, err := s.GetRefreshTokenByHash(ctx, h3.FamilyID, digest("g3-a2")); err != nil || !a2.UsedAt.IsZero() {
		t.Fatalf("the head in use after the sweep: %+v %v", a2, err)
	}
	_, err = s.GetRefreshTokenByHash(ctx, h3.FamilyID, digest("g3-b"))
	wantErr(t, err, storage.ErrNotFound) // the idle sibling
	_, err = s.GetRefreshTokenByHash(ctx, h3.FamilyID, digest("g3-a"))
	wantErr(t, err, storage.ErrNotFound) // used long ago: compacted
	must(s.LiveRefreshFamily(ctx, a.FamilyID))(t)
}

func testRefreshRevocation(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	f1 := newFamily(t, s, "f1", "u1", "s1", "app")
	f1b := rotate(t, s, f1, "f1-1", at(time.Minute))
	f2 := newFamily(t, s, "f2", "u1", "s2", "app")
	f3 := newFamily(t, s, "f3", "u1", "s2", "other")
	f4 := newFamily(t, s, "f4", "u2", "s3", "app")
	for _, rt := range []storage.RefreshToken{f1b, f2, f3, f4} {
		accessToken(t, s, "at-"+rt.ID, rt)
	}
	revoked := func(rt storage.RefreshToken) bool {
		return !must(s.GetRefreshTokenByHash(ctx, rt.FamilyID, rt.TokenHash))(t).RevokedAt.IsZero()
	}
	atGone := func(rt storage.RefreshToken) bool {
		_, err := s.GetAccessToken(ctx, "at-"+rt.ID)
		return errors.Is(err, storage.ErrNotFound)
	}

	// By family: every token of it, and its access tokens.
	ok(t, s.RevokeRefreshFamily(ctx, f1.FamilyID, at(time.Hour)))
	equal(t, []bool{revoked(f1), revoked(f1b), atGone(f1b)}, []bool{true, true, true})
	equal(t, must(s.GetRefreshTokenByHash(ctx, f1.FamilyID, f1.TokenHash))(t).RevokedAt, at(time.Hour))
	equal(t, []bool{revoked(f2), revoked(f3), revoked(f4)}, []bool{false, false, false})
	ok(t, s.RevokeRefreshFamily(ctx, f1.FamilyID, at(2*time.Hour))) // idempotent, keeps the first time
	equal(t, must(s.GetRefreshTokenByHash(ctx, f1.FamilyID, f1.TokenHash))(t).RevokedAt, at(time.Hour))
	ok(t, s.RevokeRefreshFamily(ctx, "unknown", at(time.Hour)))

	// By session and client.
	ok(t, s.RevokeRefreshTokens(ctx, storage.TokenFilter{SessionID: "s2", ClientID: "other"}, at(time.Hour)))
	equal(t, []bool{revoked(f2), revoked(f3), atGone(f2), atGone(f3)}, []bool{false, true, false, true})
	// By session.
	ok(t, s.RevokeRefreshTokens(ctx, storage.TokenFilter{SessionID: "s2"}, at(time.Hour)))
	equal(t, []bool{revoked(f2), atGone(f2), revoked(f4)}, []bool{true, true, false})
	// By user (another user's client filter matches nothing first).
	ok(t, s.RevokeRefreshTokens(ctx, storage.TokenFilter{UserID: "u2", ClientID: "other"}, at(time.Hour)))
	equal(t, revoked(f4), false)
	ok(t, s.RevokeRefreshTokens(ctx, storage.TokenFilter{UserID: "u2"}, at(time.Hour)))
	equal(t, []bool{revoked(f4), atGone(f4)}, []bool{true, true})
	// By family through the filter.
	f5 := newFamily(t, s, "f5", "u3", "s5", "app")
	ok(t, s.RevokeRefreshTokens(ctx, storage.TokenFilter{FamilyID: f5.FamilyID}, at(time.Hour)))
	equal(t, revoked(f5), true)

	// An empty filter would revoke everything: refused.
	wantOther(t, s.RevokeRefreshTokens(ctx, storage.TokenFilter{}, at(time.Hour)))
	wantOther(t, s.RevokeRefreshTokens(ctx, storage.TokenFilter{ClientID: "app"}, at(time.Hour)))
}

func testListRefreshFamilies(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	a := newFamily(t, s, "a", "u1", "s1", "app")
	a1 := rotate(t, s, a, "a-1", at(time.Hour))
	a2 := rotate(t, s, a1, "a-2", at(3*time.Hour))
	b := newFamily(t, s, "b", "u1", "s1", "other")
	b1 := rotate(t, s, b, "b-1", at(2*time.Hour))
	c := newFamily(t, s, "c", "u1", "s2", "app")
	ok(t, s.RevokeRefreshFamily(ctx, c.FamilyID, at(time.Hour)))
	newFamily(t, s, "d", "u2", "s3", "app")

	fams := must(s.ListRefreshFamilies(ctx, "u1"))(t)
	equal(t, fams, []storage.RefreshToken{a2, b1}) // one head per live family, most recently used first
	equal(t, len(must(s.ListRefreshFamilies(ctx, "nobody"))(t)), 0)
}

// -------------------------------------------------------- access tokens

func testAccessTokens(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	a := storage.AccessToken{
		ID: "at1", ClientID: "app", UserID: "u1", RefreshTokenID: "rt", FamilyID: "fam", SessionID: "s1",
		Scopes: []string{"openid"}, Audience: []string{"app", "api"}, CreatedAt: at(0), ExpiresAt: at(time.Hour),
	}
	ok(t, s.CreateAccessToken(ctx, a))
	equal(t, must(s.GetAccessToken(ctx, "at1"))(t), a)
	wantErr(t, s.CreateAccessToken(ctx, a), storage.ErrConflict)
	wantOther(t, s.CreateAccessToken(ctx, storage.AccessToken{}))
	_, err := s.GetAccessToken(ctx, "nope")
	wantErr(t, err, storage.ErrNotFound)

	ok(t, s.RevokeAccessToken(ctx, "at1", at(time.Minute)))
	ok(t, s.RevokeAccessToken(ctx, "at1", at(2*time.Minute)))
	equal(t, must(s.GetAccessToken(ctx, "at1"))(t).RevokedAt, at(time.Minute))
	wantErr(t, s.RevokeAccessToken(ctx, "nope", at(time.Minute)), storage.ErrNotFound)

	// Client-credentials tokens have no refresh token or session.
	cc := storage.AccessToken{ID: "cc", ClientID: "svc", UserID: "svc", CreatedAt: at(0), ExpiresAt: at(time.Hour)}
	ok(t, s.CreateAccessToken(ctx, cc))
	equal(t, must(s.GetAccessToken(ctx, "cc"))(t), cc)
}

// --------------------------------------------------------- signing keys

func key(id string, created time.Time) storage.SigningKey {
	return storage.SigningKey{
		ID: id, Algorithm: "ES256", PrivateSealed: []byte("sealed-" + id), PublicJWK: []byte(`{"kid":"` + id + `"}`),
		CreatedAt: created, NotBefore: created.Add(time.Hour), RetireAt: created.Add(24 * time.Hour), ExpiresAt: created.Add(48 * time.Hour),
	}
}

func testSigningKeys(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	equal(t, len(must(s.ListSigningKeys(ctx))(t)), 0)
	ok(t, s.UpdateSigningKeys(ctx, func(cur []storage.SigningKey) ([]storage.SigningKey, []string, error) {
		equal(t, len(cur), 0)
		return []storage.SigningKey{key("k2", at(time.Hour)), key("k1", at(0))}, nil, nil
	}))
	equal(t, must(s.ListSigningKeys(ctx))(t), []storage.SigningKey{key("k1", at(0)), key("k2", at(time.Hour))})

	// Removals apply before insertions: "remove k2, add k2" rewrites it.
	k2b := key("k2", at(time.Hour))
	k2b.RetireAt = at(2 * time.Hour)
	ok(t, s.UpdateSigningKeys(ctx, func(cur []storage.SigningKey) ([]storage.SigningKey, []string, error) {
		equal(t, cur, []storage.SigningKey{key("k1", at(0)), key("k2", at(time.Hour))})
		return []storage.SigningKey{key("k3", at(2*time.Hour)), k2b}, []string{"k1", "k2", "unknown"}, nil
	}))
	equal(t, must(s.ListSigningKeys(ctx))(t), []storage.SigningKey{k2b, key("k3", at(2*time.Hour))})

	// A caller error or a duplicate kid changes nothing.
	err := s.UpdateSigningKeys(ctx, func([]storage.SigningKey) ([]storage.SigningKey, []string, error) {
		return []storage.SigningKey{key("k9", at(0))}, []string{"k3"}, errSentinel
	})
	wantErr(t, err, errSentinel)
	err = s.UpdateSigningKeys(ctx, func([]storage.SigningKey) ([]storage.SigningKey, []string, error) {
		return []storage.SigningKey{key("k9", at(0)), key("k3", at(0))}, nil, nil
	})
	wantErr(t, err, storage.ErrConflict)
	equal(t, must(s.ListSigningKeys(ctx))(t), []storage.SigningKey{k2b, key("k3", at(2*time.Hour))})
}

// testSigningKeysSerialised: each updater adds "k<len(current)>"; if two
// ever saw the same set, they would collide on the kid.
func testSigningKeysSerialised(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	const n = 12
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			err := s.UpdateSigningKeys(ctx, func(cur []storage.SigningKey) ([]storage.SigningKey, []string, error) {
				return []storage.SigningKey{key(fmt.Sprintf("k%02d", len(cur)), at(time.Duration(len(cur))*time.Minute))}, nil, nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	equal(t, len(must(s.ListSigningKeys(ctx))(t)), n)
}

// ----------------------------------------------- device authorizations

func testDeviceAuthorizations(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	code := func(c string) ([]byte, []byte) { return digest("full:" + c), digest("half:" + c[:4]) }
	full, half := code("BCDF-GHJK")
	d := storage.DeviceAuthorization{
		DeviceCodeHash: digest("dc1"), UserCodeHash: full, UserCodeHalf: half, ClientID: "tv", Scopes: []string{"openid"},
		CreatedAt: at(0), ExpiresAt: at(10 * time.Minute),
	}
	got := must(s.CreateDeviceAuthorization(ctx, d))(t)
	d.ID, d.State = got.ID, storage.DevicePending
	equal(t, got, d)
	equal(t, must(s.GetDeviceAuthorizationByUserCodeHash(ctx, full))(t), d)
	equal(t, must(s.GetDeviceAuthorizationByDeviceCode(ctx, digest("dc1")))(t), d)
	_, err := s.GetDeviceAuthorizationByUserCodeHash(ctx, digest("nope"))
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetDeviceAuthorizationByDeviceCode(ctx, digest("nope"))
	wantErr(t, err, storage.ErrNotFound)
	wantOther(t, func() error {
		_, err := s.CreateDeviceAuthorization(ctx, storage.DeviceAuthorization{DeviceCodeHash: digest("x"), CreatedAt: at(0)})
		return err
	}())

	// The user code is unique among rows live at the new row's CreatedAt.
	_, err = s.CreateDeviceAuthorization(ctx, storage.DeviceAuthorization{
		DeviceCodeHash: digest("dc2"), UserCodeHash: full, UserCodeHalf: half, CreatedAt: at(10*time.Minute - time.Millisecond), ExpiresAt: at(time.Hour),
	})
	wantErr(t, err, storage.ErrConflict)
	// Expired at exactly ExpiresAt: the code may be reused.
	d3 := must(s.CreateDeviceAuthorization(ctx, storage.DeviceAuthorization{
		DeviceCodeHash: digest("dc3"), UserCodeHash: full, UserCodeHalf: half, CreatedAt: at(10 * time.Minute), ExpiresAt: at(20 * time.Minute),
	}))(t)
	equal(t, must(s.GetDeviceAuthorizationByUserCodeHash(ctx, full))(t).ID, d3.ID) // the newest
	// Device code digests are unique.
	zf, zh := code("ZZZZ-ZZZZ")
	_, err = s.CreateDeviceAuthorization(ctx, storage.DeviceAuthorization{
		DeviceCodeHash: digest("dc3"), UserCodeHash: zf, UserCodeHalf: zh, CreatedAt: at(0), ExpiresAt: at(time.Hour),
	})
	wantErr(t, err, storage.ErrConflict)

	// Guesses: each one counts against the live pending rows sharing the
	// half, which come back; at max guesses a row is out of reach.
	for i := 1; i <= 3; i++ {
		cands := must(s.GuessDeviceUserCode(ctx, half, at(15*time.Minute), 3))(t)
		if len(cands) != 1 || cands[0].ID != d3.ID || cands[0].WrongGuesses != i {
			t.Fatalf("guess %d: %+v", i, cands)
		}
	}
	equal(t, len(must(s.GuessDeviceUserCode(ctx, half, at(15*time.Minute), 3))(t)), 0)
	equal(t, len(must(s.GuessDeviceUserCode(ctx, half, at(15*time.Minute), 4))(t)), 1)
	equal(t, len(must(s.GuessDeviceUserCode(ctx, half, at(20*time.Minute+time.Millisecond), 9))(t)), 0) // expired
	equal(t, len(must(s.GuessDeviceUserCode(ctx, digest("other"), at(15*time.Minute), 9))(t)), 0)
	equal(t, len(must(s.GuessDeviceUserCode(ctx, nil, at(15*time.Minute), 9))(t)), 0)

	upd := must(s.UpdateDeviceAuthorization(ctx, d3.ID, func(v *storage.DeviceAuthorization) error {
		v.ID, v.UserCodeHash, v.DeviceCodeHash = "x", digest("y"), digest("y")
		v.State, v.UserID, v.AMR, v.ACR = storage.DeviceApproved, "u1", []string{"pwd"}, "urn:x:1fa"
		v.AuthTime, v.SessionID, v.LastPollAt = at(11*time.Minute), "s1", at(12*time.Minute)
		return nil
	}))(t)
	equal(t, upd.ID, d3.ID)
	equal(t, upd.UserCodeHash, full)
	equal(t, must(s.GetDeviceAuthorizationByDeviceCode(ctx, digest("dc3")))(t), upd)
	equal(t, upd.State, storage.DeviceApproved)
	// Answered: guesses no longer reach it.
	equal(t, len(must(s.GuessDeviceUserCode(ctx, half, at(15*time.Minute), 9))(t)), 0)
	_, err = s.UpdateDeviceAuthorization(ctx, "nope", func(*storage.DeviceAuthorization) error { return nil })
	wantErr(t, err, storage.ErrNotFound)

	// Concurrent creations with the same user code: one winner.
	race(t, 10, func(i int) func() error {
		f, h := code(fmt.Sprintf("RACE%04d", i))
		var mu sync.Mutex
		k := 0
		return func() error {
			mu.Lock()
			k++
			dc := digest(fmt.Sprint(i, "/", k))
			mu.Unlock()
			_, err := s.CreateDeviceAuthorization(ctx, storage.DeviceAuthorization{
				DeviceCodeHash: dc, UserCodeHash: f, UserCodeHalf: h, CreatedAt: at(0), ExpiresAt: at(time.Hour),
			})
			return err
		}
	}, is(storage.ErrConflict))

	// Concurrent guesses on one row: exactly max get it.
	gf, gh := code("GUES-SING")
	must(s.CreateDeviceAuthorization(ctx, storage.DeviceAuthorization{
		DeviceCodeHash: digest("dcg"), UserCodeHash: gf, UserCodeHalf: gh, CreatedAt: at(0), ExpiresAt: at(time.Hour),
	}))(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	hits := 0
	for range 40 {
		wg.Go(func() {
			c, err := s.GuessDeviceUserCode(ctx, gh, at(time.Minute), 5)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			hits += len(c)
			mu.Unlock()
		})
	}
	wg.Wait()
	equal(t, hits, 5)
}

// ---------------------------------------------------------------- audit

func testAudit(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	for i := range 5 {
		user := "u1"
		if i%2 == 1 {
			user = "u2"
		}
		ok(t, s.CreateAuditEvent(ctx, storage.AuditEvent{
			ID: 999, At: at(time.Duration(i) * time.Minute), UserID: user, Email: user + "@example.com",
			Event: fmt.Sprint("e", i), ClientID: "app", IP: "192.0.2.1", UserAgent: "UA", Reason: "r",
			Details: map[string]string{"i": fmt.Sprint(i)},
		}))
	}
	// Same instant: the later insert is listed first.
	ok(t, s.CreateAuditEvent(ctx, storage.AuditEvent{At: at(4 * time.Minute), UserID: "u1", Event: "e5"}))

	all := must(s.ListAuditEvents(ctx, storage.AuditFilter{}))(t)
	var evs []string
	for _, e := range all {
		evs = append(evs, e.Event)
	}
	equal(t, evs, []string{"e5", "e4", "e3", "e2", "e1", "e0"})
	first := all[1]
	equal(t, first.At, at(4*time.Minute))
	equal(t, first.Details, map[string]string{"i": "4"})
	equal(t, []string{first.UserID, first.Email, first.ClientID, first.IP, first.UserAgent, first.Reason},
		[]string{"u1", "u1@example.com", "app", "192.0.2.1", "UA", "r"})
	if first.ID == 0 || first.ID == 999 || all[0].ID <= first.ID {
		t.Fatalf("ids not assigned by the database: %d, %d", all[0].ID, first.ID)
	}

	u2 := must(s.ListAuditEvents(ctx, storage.AuditFilter{UserID: "u2"}))(t)
	equal(t, len(u2), 2)
	equal(t, u2[0].Event, "e3")
	equal(t, len(must(s.ListAuditEvents(ctx, storage.AuditFilter{Limit: 2}))(t)), 2)
	equal(t, len(must(s.ListAuditEvents(ctx, storage.AuditFilter{UserID: "nobody"}))(t)), 0)
}

// ------------------------------------------------------------ throttles

func testThrottles(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	_, err := s.GetThrottle(ctx, "pwd:ip:192.0.2.1")
	wantErr(t, err, storage.ErrNotFound)

	got := must(s.UpdateThrottle(ctx, "pwd:ip:192.0.2.1", func(v *storage.Throttle) error {
		equal(t, *v, storage.Throttle{Key: "pwd:ip:192.0.2.1"})
		v.Key = "other"
		v.Failures++
		v.LastFailureAt = at(0)
		return nil
	}))(t)
	want := storage.Throttle{Key: "pwd:ip:192.0.2.1", Failures: 1, LastFailureAt: at(0)}
	equal(t, got, want)
	equal(t, must(s.GetThrottle(ctx, "pwd:ip:192.0.2.1"))(t), want)

	got = must(s.UpdateThrottle(ctx, "pwd:ip:192.0.2.1", func(v *storage.Throttle) error {
		v.Failures++
		v.BlockedUntil = at(time.Minute)
		return nil
	}))(t)
	equal(t, got.Failures, 2)
	equal(t, got.BlockedUntil, at(time.Minute))

	// Concurrent failures are all counted, including the first ones.
	const n = 16
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for _, k := range []string{"pwd:acct:u1", "pwd:ip:192.0.2.1"} {
				if _, err := s.UpdateThrottle(ctx, k, func(v *storage.Throttle) error { v.Failures++; return nil }); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	equal(t, must(s.GetThrottle(ctx, "pwd:acct:u1"))(t).Failures, n)
	equal(t, must(s.GetThrottle(ctx, "pwd:ip:192.0.2.1"))(t).Failures, n+2)

	ok(t, s.DeleteThrottle(ctx, "pwd:acct:u1"))
	ok(t, s.DeleteThrottle(ctx, "pwd:acct:u1"))
	_, err = s.GetThrottle(ctx, "pwd:acct:u1")
	wantErr(t, err, storage.ErrNotFound)
}

// ThrottleTake: the rule's arithmetic in SQL matches ThrottleRule.Delay;
// a blocked key counts nothing and says until when; several keys are
// taken all or none; ReturnThrottle gives one back.
func testThrottleTake(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	rule := storage.ThrottleRule{Free: 3, Base: time.Second, Max: 10 * time.Second, Forget: time.Hour}
	now := at(0)
	take := func(keys ...string) time.Time {
		t.Helper()
		var tk []storage.ThrottleTake
		for _, k := range keys {
			tk = append(tk, storage.ThrottleTake{Key: k, Rule: rule})
		}
		return must(s.TakeThrottles(ctx, now, tk...))(t)
	}
	// Three free attempts, the third already sets the first wait.
	for i := 1; i <= 3; i++ {
		if b := take("k"); !b.IsZero() {
			t.Fatalf("attempt %d blocked until %v", i, b)
		}
		th := must(s.GetThrottle(ctx, "k"))(t)
		equal(t, th.Failures, i)
		if d := rule.Delay(i); d > 0 {
			equal(t, th.BlockedUntil, now.Add(d))
		} else {
			equal(t, th.BlockedUntil, time.Time{}) // no wait set
		}
	}
	equal(t, rule.Delay(3), time.Second)
	if b := take("k"); !b.Equal(now.Add(time.Second)) {
		t.Fatalf("4th attempt: blocked until %v, want now+1s", b)
	}
	equal(t, must(s.GetThrottle(ctx, "k"))(t).Failures, 3) // not counted
	// At the instant the wait ends the next attempt is taken; the waits
	// double up to the cap, computed by the database.
	for n := 4; n <= 9; n++ {
		now = must(s.GetThrottle(ctx, "k"))(t).BlockedUntil
		if b := take("k"); !b.IsZero() {
			t.Fatalf("attempt %d at its retry time blocked until %v", n, b)
		}
		th := must(s.GetThrottle(ctx, "k"))(t)
		equal(t, th.Failures, n)
		equal(t, th.BlockedUntil.Sub(now), rule.Delay(n))
	}
	equal(t, rule.Delay(9), 10*time.Second) // capped
	// A key with a block refuses the others too, and they keep their count.
	if b := take("fresh", "k"); b.IsZero() {
		t.Fatal("a blocked key let the attempt through")
	}
	_, err := s.GetThrottle(ctx, "fresh")
	wantErr(t, err, storage.ErrNotFound)
	// Giving back: the count drops; under Free the wait goes too.
	ok(t, s.ReturnThrottle(ctx, "k", rule))
	equal(t, must(s.GetThrottle(ctx, "k"))(t).Failures, 8)
	ok(t, s.ReturnThrottle(ctx, "absent", rule))
	take("r")
	take("r")
	take("r") // 3: blocked for 1s
	ok(t, s.ReturnThrottle(ctx, "r", rule))
	th := must(s.GetThrottle(ctx, "r"))(t)
	equal(t, th.Failures, 2)
	equal(t, th.BlockedUntil, time.Time{})
	// After Forget without an attempt the count starts again.
	now = now.Add(2 * time.Hour)
	if b := take("k"); !b.IsZero() {
		t.Fatalf("after forget: blocked until %v", b)
	}
	equal(t, must(s.GetThrottle(ctx, "k"))(t).Failures, 1)
	// A rule without a cap never waits past Free... and without a base
	// never waits at all.
	free := storage.ThrottleRule{Free: 1}
	for range 5 {
		if b := must(s.TakeThrottles(ctx, now, storage.ThrottleTake{Key: "nobase", Rule: free}))(t); !b.IsZero() {
			t.Fatal("a rule without a base blocked")
		}
	}
}

// ThrottleTakeConcurrent: many concurrent attempts on one key get exactly
// as many through as the rule allows in a row; a second key taken with it
// is counted for exactly those.
func testThrottleTakeConcurrent(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	rule := storage.ThrottleRule{Free: 5, Base: time.Second, Max: time.Minute, Forget: time.Hour}
	other := storage.ThrottleRule{Free: 1000, Base: time.Second, Max: time.Minute, Forget: time.Hour}
	var wg sync.WaitGroup
	var mu sync.Mutex
	taken := 0
	for range 60 {
		wg.Go(func() {
			b, err := s.TakeThrottles(ctx, at(0), storage.ThrottleTake{Key: "acct", Rule: rule}, storage.ThrottleTake{Key: "ip", Rule: other})
			if err != nil {
				t.Error(err)
				return
			}
			if b.IsZero() {
				mu.Lock()
				taken++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	equal(t, taken, 5)
	equal(t, must(s.GetThrottle(ctx, "acct"))(t).Failures, 5)
	equal(t, must(s.GetThrottle(ctx, "ip"))(t).Failures, 5)
}

// -------------------------------------------------------- action tokens

func testActionTokens(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	a := must(s.CreateActionToken(ctx, storage.ActionToken{
		TokenHash: digest("link"), UserID: "u1", Purpose: "set-password", CreatedAt: at(0), ExpiresAt: at(time.Hour),
	}))(t)
	if a.ID == "" {
		t.Fatal("id not generated")
	}
	_, err := s.CreateActionToken(ctx, storage.ActionToken{TokenHash: digest("link")})
	wantErr(t, err, storage.ErrConflict)

	equal(t, must(s.GetActionToken(ctx, digest("link"), "set-password", at(time.Hour)))(t), a)
	for _, c := range []struct {
		hash    []byte
		purpose string
		now     time.Time
	}{
		{digest("link"), "other", at(0)},
		{digest("link"), "set-password", at(time.Hour + time.Millisecond)},
		{digest("nope"), "set-password", at(0)},
		{nil, "set-password", at(0)},
	} {
		_, err := s.GetActionToken(ctx, c.hash, c.purpose, c.now)
		wantErr(t, err, storage.ErrNotFound)
		_, err = s.RedeemActionToken(ctx, c.hash, c.purpose, c.now)
		wantErr(t, err, storage.ErrNotFound)
	}
	got := must(s.RedeemActionToken(ctx, digest("link"), "set-password", at(time.Hour)))(t)
	equal(t, got.UsedAt, at(time.Hour))
	equal(t, got.ID, a.ID)
	_, err = s.RedeemActionToken(ctx, digest("link"), "set-password", at(time.Hour))
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetActionToken(ctx, digest("link"), "set-password", at(0))
	wantErr(t, err, storage.ErrNotFound)
}

func testActionTokenConcurrent(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	race(t, 20, func(i int) func() error {
		h := digest(fmt.Sprint("link", i))
		must(s.CreateActionToken(ctx, storage.ActionToken{TokenHash: h, Purpose: "p", CreatedAt: at(0), ExpiresAt: at(time.Hour)}))(t)
		return func() error {
			_, err := s.RedeemActionToken(ctx, h, "p", at(0))
			return err
		}
	}, is(storage.ErrNotFound))
}

// ------------------------------------------------------ logout requests

func testLogoutRequests(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	l := must(s.CreateLogoutRequest(ctx, storage.LogoutRequest{
		UserID: "u1", ClientID: "app", RedirectURI: "https://app.example/bye", CreatedAt: at(0), ExpiresAt: at(time.Minute),
	}))(t)
	if l.ID == "" {
		t.Fatal("id not generated")
	}
	equal(t, must(s.TakeLogoutRequest(ctx, l.ID, at(time.Minute)))(t), l)
	_, err := s.TakeLogoutRequest(ctx, l.ID, at(0))
	wantErr(t, err, storage.ErrNotFound)

	// Get does not consume; it honours the expiry; Delete removes.
	g := must(s.CreateLogoutRequest(ctx, storage.LogoutRequest{ID: "g", UserID: "u1", CreatedAt: at(0), ExpiresAt: at(time.Minute)}))(t)
	equal(t, must(s.GetLogoutRequest(ctx, "g", at(time.Minute)))(t), g)
	equal(t, must(s.GetLogoutRequest(ctx, "g", at(0)))(t), g)
	_, err = s.GetLogoutRequest(ctx, "g", at(time.Minute+time.Millisecond))
	wantErr(t, err, storage.ErrNotFound)
	ok(t, s.DeleteLogoutRequest(ctx, "g"))
	wantErr(t, s.DeleteLogoutRequest(ctx, "g"), storage.ErrNotFound)
	_, err = s.GetLogoutRequest(ctx, "g", at(0))
	wantErr(t, err, storage.ErrNotFound)

	old := must(s.CreateLogoutRequest(ctx, storage.LogoutRequest{ID: "old", CreatedAt: at(0), ExpiresAt: at(time.Minute)}))(t)
	_, err = s.TakeLogoutRequest(ctx, old.ID, at(time.Minute+time.Millisecond))
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.TakeLogoutRequest(ctx, old.ID, at(0)) // gone, even though it expired
	wantErr(t, err, storage.ErrNotFound)
}

// -------------------------------------------------------- organisations

func testOrganizations(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	o := storage.Organization{
		Name: "Acme", Domains: []string{"Acme.example", "acme.test", "ACME.example"},
		Issuer: "https://idp.acme.example", ClientID: "latchkey", ClientSecretSealed: []byte("sealed"),
		Scopes: []string{"openid", "email"}, ClaimEmail: "email", ClaimName: "name", ClaimGroups: "groups",
		TrustUpstreamMFA: true, JITProvisioning: true, Source: "cli", CreatedAt: at(0), UpdatedAt: at(0),
	}
	got := must(s.CreateOrganization(ctx, o))(t)
	o.ID = got.ID
	o.Domains = []string{"acme.example", "acme.test"} // lower-cased, deduplicated, sorted
	equal(t, got, o)
	equal(t, must(s.GetOrganization(ctx, o.ID))(t), o)
	equal(t, must(s.GetOrganizationByName(ctx, "Acme"))(t), o)
	equal(t, must(s.GetOrganizationByDomain(ctx, "ACME.Test"))(t), o)
	for _, f := range []func() error{
		func() error { _, err := s.GetOrganization(ctx, "nope"); return err },
		func() error { _, err := s.GetOrganizationByName(ctx, "acme"); return err }, // names are exact
		func() error { _, err := s.GetOrganizationByDomain(ctx, "example"); return err },
	} {
		wantErr(t, f(), storage.ErrNotFound)
	}

	// Duplicate name; a domain owned by another organisation (and the
	// failed creation leaves nothing behind).
	_, err := s.CreateOrganization(ctx, storage.Organization{Name: "Acme"})
	wantErr(t, err, storage.ErrConflict)
	_, err = s.CreateOrganization(ctx, storage.Organization{Name: "Beta", Domains: []string{"beta.example", "Acme.Example"}})
	wantErr(t, err, storage.ErrConflict)
	_, err = s.GetOrganizationByName(ctx, "Beta")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetOrganizationByDomain(ctx, "beta.example")
	wantErr(t, err, storage.ErrNotFound)

	beta := must(s.CreateOrganization(ctx, storage.Organization{ID: "beta", Name: "Beta", Domains: []string{"beta.example"}}))(t)
	equal(t, beta.Scopes, nil)
	list := must(s.ListOrganizations(ctx))(t)
	equal(t, list, []storage.Organization{o, beta})

	// Update: fields and domains; ID immutable.
	upd := must(s.UpdateOrganization(ctx, o.ID, func(v *storage.Organization) error {
		equal(t, v.Domains, []string{"acme.example", "acme.test"})
		v.ID = "x"
		v.Domains = []string{"acme.test", "acme.NEW"}
		v.TrustUpstreamMFA = false
		v.UpdatedAt = at(time.Hour)
		return nil
	}))(t)
	equal(t, upd.ID, o.ID)
	equal(t, upd.Domains, []string{"acme.new", "acme.test"})
	equal(t, must(s.GetOrganization(ctx, o.ID))(t), upd)
	_, err = s.GetOrganizationByDomain(ctx, "acme.example")
	wantErr(t, err, storage.ErrNotFound)
	// Taking another organisation's domain: conflict, nothing changes.
	_, err = s.UpdateOrganization(ctx, o.ID, func(v *storage.Organization) error {
		v.Domains = append(v.Domains, "beta.example")
		v.Name = "Renamed"
		return nil
	})
	wantErr(t, err, storage.ErrConflict)
	equal(t, must(s.GetOrganization(ctx, o.ID))(t), upd)
	_, err = s.UpdateOrganization(ctx, o.ID, func(v *storage.Organization) error { v.Domains = nil; return errSentinel })
	wantErr(t, err, errSentinel)
	equal(t, must(s.GetOrganization(ctx, o.ID))(t), upd)
	_, err = s.UpdateOrganization(ctx, "nope", func(*storage.Organization) error { return nil })
	wantErr(t, err, storage.ErrNotFound)

	// Delete frees the domains.
	ok(t, s.DeleteOrganization(ctx, o.ID))
	wantErr(t, s.DeleteOrganization(ctx, o.ID), storage.ErrNotFound)
	_, err = s.GetOrganizationByDomain(ctx, "acme.test")
	wantErr(t, err, storage.ErrNotFound)
	must(s.CreateOrganization(ctx, storage.Organization{Name: "Acme 2", Domains: []string{"acme.test"}}))(t)
}

func testSyncOrganizations(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	org := func(name string, domains ...string) storage.Organization {
		return storage.Organization{Name: name, Domains: domains, Issuer: "https://" + name, CreatedAt: at(time.Hour), UpdatedAt: at(time.Hour)}
	}
	cli := must(s.CreateOrganization(ctx, storage.Organization{Name: "CLI", Domains: []string{"cli.example"}, Source: "cli", CreatedAt: at(0)}))(t)
	ok(t, s.SyncOrganizations(ctx, "config", []storage.Organization{org("A", "a.example", "shared.example"), org("B", "b.example")}))
	a := must(s.GetOrganizationByName(ctx, "A"))(t)
	equal(t, a.Source, "config")
	equal(t, a.Domains, []string{"a.example", "shared.example"})

	// Keyed by name: A keeps its id and CreatedAt; a domain moves from A to
	// C within one sync; B goes; the CLI organisation is taken over by name.
	a2 := org("A", "a.example")
	a2.CreatedAt, a2.ID = at(5*time.Hour), "ignored-new-id"
	ok(t, s.SyncOrganizations(ctx, "config", []storage.Organization{org("C", "shared.example", "c.example"), a2, org("CLI", "cli.example")}))
	a2got := must(s.GetOrganizationByName(ctx, "A"))(t)
	equal(t, a2got.ID, a.ID)
	equal(t, a2got.CreatedAt, at(time.Hour))
	equal(t, a2got.Domains, []string{"a.example"})
	equal(t, must(s.GetOrganizationByDomain(ctx, "shared.example"))(t).Name, "C")
	_, err := s.GetOrganizationByName(ctx, "B")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetOrganizationByDomain(ctx, "b.example")
	wantErr(t, err, storage.ErrNotFound)
	cliGot := must(s.GetOrganizationByName(ctx, "CLI"))(t)
	equal(t, cliGot.ID, cli.ID)
	equal(t, cliGot.Source, "config")

	// A conflicting sync (two organisations claim one domain) changes nothing.
	before := must(s.ListOrganizations(ctx))(t)
	err = s.SyncOrganizations(ctx, "config", []storage.Organization{org("A", "x.example"), org("D", "x.example")})
	wantErr(t, err, storage.ErrConflict)
	equal(t, must(s.ListOrganizations(ctx))(t), before)

	ok(t, s.SyncOrganizations(ctx, "config", nil))
	equal(t, len(must(s.ListOrganizations(ctx))(t)), 0)
}

func testFederatedIdentities(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	f := storage.FederatedIdentity{OrgID: "acme", Subject: "sub-1", UserID: "u1", CreatedAt: at(0), LastLoginAt: at(0)}
	ok(t, s.CreateFederatedIdentity(ctx, f))
	equal(t, must(s.GetFederatedIdentity(ctx, "acme", "sub-1"))(t), f)
	wantErr(t, s.CreateFederatedIdentity(ctx, storage.FederatedIdentity{OrgID: "acme", Subject: "sub-1", UserID: "u2"}), storage.ErrConflict)
	ok(t, s.CreateFederatedIdentity(ctx, storage.FederatedIdentity{OrgID: "beta", Subject: "sub-1", UserID: "u2"}))
	_, err := s.GetFederatedIdentity(ctx, "acme", "sub-2")
	wantErr(t, err, storage.ErrNotFound)

	ok(t, s.TouchFederatedIdentity(ctx, "acme", "sub-1", at(time.Hour)))
	equal(t, must(s.GetFederatedIdentity(ctx, "acme", "sub-1"))(t).LastLoginAt, at(time.Hour))
	wantErr(t, s.TouchFederatedIdentity(ctx, "acme", "sub-2", at(time.Hour)), storage.ErrNotFound)
}

func testUpstreamStates(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	st := storage.UpstreamState{
		StateHash: digest("state"), AuthRequestID: "ar1", BrowserHash: digest("b"), OrgID: "acme",
		Nonce: "n", VerifierSealed: []byte("v"), CreatedAt: at(0), ExpiresAt: at(10 * time.Minute),
	}
	got := must(s.CreateUpstreamState(ctx, st))(t)
	st.ID = got.ID
	equal(t, got, st)
	_, err := s.CreateUpstreamState(ctx, storage.UpstreamState{StateHash: digest("state")})
	wantErr(t, err, storage.ErrConflict)

	_, err = s.RedeemUpstreamState(ctx, digest("state"), at(10*time.Minute+time.Millisecond))
	wantErr(t, err, storage.ErrNotFound) // expired
	red := must(s.RedeemUpstreamState(ctx, digest("state"), at(10*time.Minute)))(t)
	st.UsedAt = at(10 * time.Minute)
	equal(t, red, st)
	_, err = s.RedeemUpstreamState(ctx, digest("state"), at(time.Minute))
	wantErr(t, err, storage.ErrConflict)
	_, err = s.RedeemUpstreamState(ctx, digest("nope"), at(0))
	wantErr(t, err, storage.ErrNotFound)
}

func testUpstreamStateConcurrent(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	race(t, 20, func(i int) func() error {
		h := digest(fmt.Sprint("state", i))
		must(s.CreateUpstreamState(ctx, storage.UpstreamState{StateHash: h, CreatedAt: at(0), ExpiresAt: at(time.Hour)}))(t)
		return func() error {
			_, err := s.RedeemUpstreamState(ctx, h, at(0))
			return err
		}
	}, is(storage.ErrConflict))
}

// -------------------------------------------------------------- sweep

func testSweep(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	now := at(100 * 24 * time.Hour)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	ms := time.Millisecond

	// Auth requests.
	for id, v := range map[string][2]time.Time{ // {ExpiresAt, CodeExpiresAt}
		"ar-expired":       {ago(ms), {}},
		"ar-boundary":      {now, {}},
		"ar-live":          {now.Add(time.Hour), {}},
		"ar-code-live":     {ago(time.Hour), now.Add(time.Minute)},
		"ar-code-expired":  {ago(time.Hour), ago(ms)},
		"ar-code-boundary": {ago(time.Hour), now},
	} {
		ok(t, s.CreateAuthRequest(ctx, storage.AuthRequest{ID: id, ExpiresAt: v[0], CodeExpiresAt: v[1]}))
	}
	// Rows with a plain expiry: expired one millisecond ago (swept), at now
	// and later (kept).
	for _, v := range []struct {
		suffix string
		exp    time.Time
	}{{"expired", ago(ms)}, {"boundary", now}, {"live", now.Add(time.Hour)}} {
		must(s.CreateEmailCode(ctx, storage.EmailCode{ID: "ec-" + v.suffix, UserID: "u1", Purpose: "p", ContextID: v.suffix, ExpiresAt: v.exp}))(t)
		must(s.CreateDeviceAuthorization(ctx, storage.DeviceAuthorization{ID: "da-" + v.suffix, DeviceCodeHash: digest("da" + v.suffix), UserCodeHash: digest("uc" + v.suffix), UserCodeHalf: digest("uh" + v.suffix), CreatedAt: ago(24 * time.Hour), ExpiresAt: v.exp}))(t)
		must(s.CreateUpstreamState(ctx, storage.UpstreamState{ID: "us-" + v.suffix, StateHash: digest("us" + v.suffix), ExpiresAt: v.exp}))(t)
		must(s.CreateLogoutRequest(ctx, storage.LogoutRequest{ID: "lr-" + v.suffix, ExpiresAt: v.exp}))(t)
		must(s.CreateActionToken(ctx, storage.ActionToken{ID: "act-" + v.suffix, TokenHash: digest("act" + v.suffix), ExpiresAt: v.exp}))(t)
		ok(t, s.CreateAccessToken(ctx, storage.AccessToken{ID: "at-" + v.suffix, ExpiresAt: v.exp}))
		must(s.CreatePasskeyChallenge(ctx, storage.PasskeyChallenge{ID: "pc-" + v.suffix, ChallengeHash: digest("pc" + v.suffix),
			Purpose: "p", ContextID: v.suffix, BrowserHash: digest("b"), ExpiresAt: v.exp}))(t)
	}
	// Sessions: idle limit 1h.
	must(s.CreateSession(ctx, storage.Session{ID: "s-idle", UserID: "u1", TokenHash: digest("s1"), CreatedAt: ago(48 * time.Hour), LastSeenAt: ago(time.Hour + ms)}))(t)
	must(s.CreateSession(ctx, storage.Session{ID: "s-boundary", UserID: "u1", TokenHash: digest("s2"), CreatedAt: ago(48 * time.Hour), LastSeenAt: ago(time.Hour)}))(t)
	must(s.CreateSession(ctx, storage.Session{ID: "s-active", UserID: "u1", TokenHash: digest("s3"), CreatedAt: ago(48 * time.Hour), LastSeenAt: ago(time.Minute)}))(t)
	// Trusted devices: grace 24h.
	must(s.CreateTrustedDevice(ctx, storage.TrustedDevice{ID: "td-old", UserID: "u1", TokenHash: digest("t1"), ExpiresAt: ago(24*time.Hour + ms)}))(t)
	must(s.CreateTrustedDevice(ctx, storage.TrustedDevice{ID: "td-recent", UserID: "u1", TokenHash: digest("t2"), ExpiresAt: ago(time.Hour)}))(t)
	must(s.CreateTrustedDevice(ctx, storage.TrustedDevice{ID: "td-live", UserID: "u1", TokenHash: digest("t3"), ExpiresAt: now.Add(time.Hour)}))(t)
	// Throttles: default idle 24h.
	throttle := func(key string, last, blocked time.Time) {
		must(s.UpdateThrottle(ctx, key, func(v *storage.Throttle) error {
			v.Failures, v.LastFailureAt, v.BlockedUntil = 3, last, blocked
			return nil
		}))(t)
	}
	throttle("th-old", ago(24*time.Hour+ms), time.Time{})
	throttle("th-recent", ago(time.Hour), time.Time{})
	throttle("th-blocked", ago(48*time.Hour), now.Add(time.Hour))
	// Refresh families: idle limit 24h.
	fam := func(name string, created, lastUsed, expires time.Time) storage.RefreshToken {
		return must(s.CreateRefreshToken(ctx, storage.RefreshToken{
			ID: name, TokenHash: digest(name), FamilyID: name, UserID: "u1", CreatedAt: created, LastUsedAt: lastUsed, ExpiresAt: expires,
		}))(t)
	}
	fam("rt-capped", ago(50*time.Hour), ago(time.Minute), ago(ms))
	fam("rt-cap-boundary", ago(50*time.Hour), ago(time.Minute), now)
	fam("rt-idle", ago(50*time.Hour), ago(24*time.Hour+ms), time.Time{})
	fam("rt-idle-boundary", ago(50*time.Hour), ago(24*time.Hour), time.Time{})
	live := fam("rt-live", ago(50*time.Hour), ago(50*time.Hour), time.Time{})
	rotate(t, s, live, "rt-live-1", ago(time.Hour)) // rotated an hour ago: the used token is compacted, the head kept
	fam("rt-revoked-old", ago(50*time.Hour), ago(49*time.Hour), time.Time{})
	ok(t, s.RevokeRefreshFamily(ctx, "rt-revoked-old", ago(48*time.Hour)))
	fam("rt-revoked-new", ago(50*time.Hour), ago(2*time.Hour), time.Time{})
	ok(t, s.RevokeRefreshFamily(ctx, "rt-revoked-new", ago(time.Hour)))
	// Audit: retention 30 days.
	ok(t, s.CreateAuditEvent(ctx, storage.AuditEvent{At: ago(30*24*time.Hour + ms), Event: "old"}))
	ok(t, s.CreateAuditEvent(ctx, storage.AuditEvent{At: ago(30 * 24 * time.Hour), Event: "boundary"}))
	// Users, clients, keys… have no expiry: never swept.
	newUser(t, s, "keep@example.com")

	policy := storage.SweepPolicy{
		SessionMaxIdle: time.Hour, RefreshIdle: 24 * time.Hour, AuditRetention: 30 * 24 * time.Hour,
		TrustedDeviceGrace: 24 * time.Hour,
	}
	check := func() {
		t.Helper()
		kept := func(prefix string) []string {
			return []string{prefix + "-boundary", prefix + "-live"}
		}
		equal(t, keys(t, s, "auth_requests", "id"), []string{"ar-boundary", "ar-code-boundary", "ar-code-live", "ar-live"})
		equal(t, keys(t, s, "email_codes", "id"), kept("ec"))
		equal(t, keys(t, s, "passkey_challenges", "id"), kept("pc"))
		equal(t, keys(t, s, "device_authorizations", "id"), kept("da"))
		equal(t, keys(t, s, "upstream_states", "id"), kept("us"))
		equal(t, keys(t, s, "logout_requests", "id"), kept("lr"))
		equal(t, keys(t, s, "action_tokens", "id"), kept("act"))
		equal(t, keys(t, s, "access_tokens", "id"), kept("at"))
		equal(t, keys(t, s, "sessions", "id"), []string{"s-active", "s-boundary"})
		equal(t, keys(t, s, "trusted_devices", "id"), []string{"td-live", "td-recent"})
		equal(t, keys(t, s, "throttles", "throttle_key"), []string{"th-blocked", "th-recent"})
		equal(t, keys(t, s, "refresh_tokens", "id"), []string{"rt-cap-boundary", "rt-idle-boundary", "rt-live-1", "rt-revoked-new"})
		// A family's row goes with its last token.
		equal(t, keys(t, s, "refresh_families", "id"), []string{"rt-cap-boundary", "rt-idle-boundary", "rt-live", "rt-revoked-new"})
		evs := must(s.ListAuditEvents(ctx, storage.AuditFilter{}))(t)
		equal(t, len(evs), 1)
		equal(t, evs[0].Event, "boundary")
		equal(t, len(keys(t, s, "users", "id")), 1)
	}
	ok(t, s.Sweep(ctx, now, policy))
	check()
	ok(t, s.Sweep(ctx, now, policy)) // idempotent
	check()
	// Concurrent sweeps (several instances) are harmless.
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := s.Sweep(ctx, now, policy); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	check()

	// Zero policy durations disable their rules; revoked families then go
	// at once.
	ok(t, s.Sweep(ctx, now.Add(time.Hour), storage.SweepPolicy{}))
	equal(t, keys(t, s, "sessions", "id"), []string{"s-active", "s-boundary"})
	equal(t, keys(t, s, "trusted_devices", "id"), []string{"td-live", "td-recent"})
	equal(t, keys(t, s, "refresh_tokens", "id"), []string{"rt-idle-boundary", "rt-live-1"})
	equal(t, keys(t, s, "refresh_families", "id"), []string{"rt-idle-boundary", "rt-live"})
	equal(t, len(must(s.ListAuditEvents(ctx, storage.AuditFilter{}))(t)), 1)
}

// testFamilyRowWritten: a token inserted without its family's row — as a
// build before migration 0013, or a tool, writes one — gets the row from
// the database (migration 0014), with the token's user, session, client
// and family start, so it is listed and revoked by session and by user at
// once. A later token of the family leaves the row as it is, and
// CreateRefreshToken refuses a token whose family has another user,
// session or client, writing nothing.
func testFamilyRowWritten(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	t0 := at(100 * 24 * time.Hour)
	u := newUser(t, s, "family-row@example.com")
	oldBuild := func(id, family, session string, made time.Time) storage.RefreshToken {
		return must(storage.InsertOldRefreshToken(ctx, s, storage.RefreshToken{
			ID: id, TokenHash: digest(id), FamilyID: family, ClientID: "app",
			UserID: u.ID, SessionID: session, CreatedAt: made,
		}))(t)
	}
	a := oldBuild("a-0", "fam-a", "s1", t0)
	oldBuild("b-0", "fam-b", "s2", t0.Add(time.Minute))
	oldBuild("a-1", "fam-a", "s9", t0.Add(time.Hour)) // a later token: the row stays
	rowOf := "id || '|' || user_id || '|' || session_id || '|' || client_id || '|' || created_at"
	equal(t, keys(t, s, "refresh_families", rowOf), []string{
		fmt.Sprintf("fam-a|%s|s1|app|%d", u.ID, t0.UnixMilli()),
		fmt.Sprintf("fam-b|%s|s2|app|%d", u.ID, t0.Add(time.Minute).UnixMilli()),
	})
	equal(t, len(must(s.ListRefreshFamilies(ctx, u.ID))(t)), 2)

	_, err := s.CreateRefreshToken(ctx, storage.RefreshToken{TokenHash: digest("clash"), FamilyID: "fam-a",
		ClientID: "app", UserID: u.ID, SessionID: "s2", CreatedAt: t0})
	if err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a token of another session joined fam-a: %v", err)
	}
	_, err = s.GetRefreshTokenByHash(ctx, "fam-a", digest("clash"))
	wantErr(t, err, storage.ErrNotFound)

	ok(t, s.RevokeRefreshTokens(ctx, storage.TokenFilter{SessionID: "s1"}, t0.Add(2*time.Hour)))
	if got := must(s.GetRefreshTokenByHash(ctx, "fam-a", a.TokenHash))(t); got.RevokedAt.IsZero() {
		t.Fatal("the family an old build started was not revoked with its session")
	}
	equal(t, len(must(s.ListRefreshFamilies(ctx, u.ID))(t)), 1)
	ok(t, s.RevokeRefreshTokens(ctx, storage.TokenFilter{UserID: u.ID}, t0.Add(2*time.Hour)))
	equal(t, len(must(s.ListRefreshFamilies(ctx, u.ID))(t)), 0)
}

// testMaintenanceWarnings: on PostgreSQL, autovacuum off for the server
// is reported as the server is configured, and off for one of the
// schema's tables (in any spelling of false) by the table's name; back on,
// the table is no longer named. SQLite has nothing to report.
func testMaintenanceWarnings(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	ws := must(s.MaintenanceWarnings(ctx))(t)
	if s.Dialect() == storage.DialectSQLite {
		equal(t, len(ws), 0)
		return
	}
	serverOff := keys(t, s, "pg_settings WHERE name = 'autovacuum'", "setting")[0] == "off"
	if got := slices.ContainsFunc(ws, func(w string) bool { return strings.Contains(w, "(autovacuum = off)") }); got != serverOff {
		t.Fatalf("server-wide autovacuum off=%v, warnings %q", serverOff, ws)
	}
	names := func() string {
		for _, w := range must(s.MaintenanceWarnings(ctx))(t) {
			if strings.Contains(w, "autovacuum_enabled") {
				return w
			}
		}
		return ""
	}
	equal(t, names(), "")
	ok(t, storage.ExecSQL(ctx, s, "ALTER TABLE access_tokens SET (autovacuum_enabled = false)"))
	ok(t, storage.ExecSQL(ctx, s, "ALTER TABLE refresh_tokens SET (autovacuum_enabled = Off, fillfactor = 90)"))
	ok(t, storage.ExecSQL(ctx, s, "ALTER TABLE sessions SET (autovacuum_enabled = true)"))
	if w := names(); !strings.Contains(w, "for access_tokens, refresh_tokens (") {
		t.Fatalf("tables with autovacuum off: %q", w)
	}
	ok(t, storage.ExecSQL(ctx, s, "ALTER TABLE access_tokens RESET (autovacuum_enabled)"))
	ok(t, storage.ExecSQL(ctx, s, "ALTER TABLE refresh_tokens RESET (autovacuum_enabled, fillfactor)"))
	equal(t, names(), "")
}

// ------------------------------------------------------ robustness

// testConcurrentWrites: many writers at once never fail with "database is
// locked" (SQLite) or deadlock.
func testConcurrentWrites(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				u, err := s.CreateUser(ctx, storage.User{Email: fmt.Sprintf("w%d-%d@example.com", g, i)})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := s.UpdateUser(ctx, u.ID, func(v *storage.User) error { v.Name = "n"; return nil }); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.UpdateThrottle(ctx, "shared", func(v *storage.Throttle) error { v.Failures++; return nil }); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	equal(t, must(s.GetThrottle(ctx, "shared"))(t).Failures, 200)
	equal(t, len(must(s.ListUsers(ctx, storage.ListOptions{Limit: 1000}))(t)), 200)
}

// testOpaqueErrors: database failures come back as plain errors whose chain
// holds no driver or gorm types.
func testOpaqueErrors(t *testing.T, s *storage.Store) {
	ok(t, s.Close())
	_, err := s.GetUser(t.Context(), "x")
	wantOther(t, err)
	if !strings.HasPrefix(err.Error(), "storage: ") {
		t.Fatalf("error %q does not name the package", err)
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		typ := reflect.TypeOf(e)
		if typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if p := typ.PkgPath(); p != "github.com/latchkey/latchkey/storage" && p != "errors" && p != "fmt" {
			t.Fatalf("error chain exposes %T", e)
		}
	}
}

// ------------------------------------------------------------- protocol

func testUseOnce(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	ok(t, s.UseOnce(ctx, "jti:a", at(0), at(time.Minute)))
	wantErr(t, s.UseOnce(ctx, "jti:a", at(time.Second), at(2*time.Minute)), storage.ErrConflict)
	// Still recorded at its expiry (inclusive), reusable after it.
	wantErr(t, s.UseOnce(ctx, "jti:a", at(time.Minute), at(2*time.Minute)), storage.ErrConflict)
	ok(t, s.UseOnce(ctx, "jti:a", at(time.Minute+time.Millisecond), at(3*time.Minute)))
	wantErr(t, s.UseOnce(ctx, "jti:a", at(2*time.Minute), at(4*time.Minute)), storage.ErrConflict)
	ok(t, s.UseOnce(ctx, "jti:b", at(0), at(time.Minute)))
	wantOther(t, s.UseOnce(ctx, "", at(0), at(time.Minute)))
}

// testUseOnceConcurrent: many callers at once, one key: one winner.
func testUseOnceConcurrent(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	for round := range 5 {
		key := fmt.Sprint("dpop:", round)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, lost := 0, 0
		start := make(chan struct{})
		for range 24 {
			wg.Go(func() {
				<-start
				err := s.UseOnce(ctx, key, at(0), at(time.Minute))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, storage.ErrConflict):
					lost++
				default:
					t.Errorf("round %d: %v", round, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if wins != 1 || lost != 23 {
			t.Fatalf("round %d: %d winners, %d losers", round, wins, lost)
		}
	}
}

func testPushedRequests(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	p := storage.PushedRequest{RequestURIHash: digest("uri1"), ClientID: "app",
		Params: map[string]string{"scope": "openid", "state": "s1"}, CreatedAt: at(0), ExpiresAt: at(time.Minute)}
	got := must(s.CreatePushedRequest(ctx, p))(t)
	if got.ID == "" {
		t.Fatal("id not generated")
	}
	p.ID = got.ID
	equal(t, got, p)
	_, err := s.CreatePushedRequest(ctx, storage.PushedRequest{RequestURIHash: digest("uri1"), ExpiresAt: at(time.Minute)})
	wantErr(t, err, storage.ErrConflict)
	_, err = s.CreatePushedRequest(ctx, storage.PushedRequest{})
	wantOther(t, err)

	r := must(s.RedeemPushedRequest(ctx, digest("uri1"), at(time.Minute)))(t)
	p.UsedAt = at(time.Minute)
	equal(t, r, p)
	_, err = s.RedeemPushedRequest(ctx, digest("uri1"), at(time.Second))
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.RedeemPushedRequest(ctx, digest("nope"), at(0))
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.RedeemPushedRequest(ctx, nil, at(0))
	wantErr(t, err, storage.ErrNotFound)

	must(s.CreatePushedRequest(ctx, storage.PushedRequest{RequestURIHash: digest("uri2"), CreatedAt: at(0), ExpiresAt: at(time.Minute)}))(t)
	_, err = s.RedeemPushedRequest(ctx, digest("uri2"), at(time.Minute+time.Millisecond))
	wantErr(t, err, storage.ErrNotFound)
}

func testPushedRequestConcurrent(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	race(t, 20, func(i int) func() error {
		h := digest(fmt.Sprint("par", i))
		must(s.CreatePushedRequest(ctx, storage.PushedRequest{RequestURIHash: h, CreatedAt: at(0), ExpiresAt: at(time.Minute)}))(t)
		return func() error {
			_, err := s.RedeemPushedRequest(ctx, h, at(0))
			return err
		}
	}, is(storage.ErrNotFound))
}

// testTokenBindings: a DPoP key thumbprint stays with access tokens and
// with a refresh family through its rotations.
func testTokenBindings(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	a := storage.AccessToken{ID: "at-bound", ClientID: "app", UserID: "u1", CreatedAt: at(0), ExpiresAt: at(time.Hour), JKT: "thumb"}
	ok(t, s.CreateAccessToken(ctx, a))
	equal(t, must(s.GetAccessToken(ctx, "at-bound"))(t), a)

	rt := must(s.CreateRefreshToken(ctx, storage.RefreshToken{TokenHash: digest("rt-bound"), ClientID: "app", UserID: "u1",
		CreatedAt: at(0), JKT: "thumb"}))(t)
	equal(t, must(s.GetRefreshTokenByHash(ctx, rt.FamilyID, digest("rt-bound")))(t).JKT, "thumb")
	next := rt
	next.ID, next.TokenHash, next.UsedAt = "", digest("rt-bound-2"), time.Time{}
	must(s.RotateRefreshTokenWithAccess(ctx, rt.ID, at(time.Minute), 0, next,
		storage.AccessToken{ID: "at-bound-2", ClientID: "app", UserID: "u1", CreatedAt: at(time.Minute), ExpiresAt: at(time.Hour), JKT: "thumb"}))(t)
	equal(t, must(s.GetRefreshTokenByHash(ctx, rt.FamilyID, digest("rt-bound-2")))(t).JKT, "thumb")
	equal(t, must(s.GetAccessToken(ctx, "at-bound-2"))(t).JKT, "thumb")
}

func bclClient(t *testing.T, s *storage.Store, id, uri string) {
	t.Helper()
	ok(t, s.CreateClient(t.Context(), storage.Client{ID: id, BackchannelLogoutURI: uri, CreatedAt: at(0), UpdatedAt: at(0)}))
}

func testBackchannelQueue(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	bclClient(t, s, "web", "https://web.example/bcl")
	bclClient(t, s, "quiet", "") // no back-channel logout URI
	ok(t, s.RecordSessionClient(ctx, "s1", "web", "u1", at(0)))
	ok(t, s.RecordSessionClient(ctx, "s1", "web", "u1", at(time.Second))) // idempotent
	ok(t, s.RecordSessionClient(ctx, "s1", "quiet", "u1", at(0)))
	ok(t, s.RecordSessionClient(ctx, "s2", "web", "u1", at(0)))
	ok(t, s.RecordSessionClient(ctx, "s3", "web", "u2", at(0)))
	wantOther(t, s.RecordSessionClient(ctx, "", "web", "u1", at(0)))

	// A session continued by another (a new sign-in in the browser):
	// its clients are told, with the sid they know, when the new one ends.
	ok(t, s.RecordSessionClient(ctx, "old", "web", "u1", at(0)))
	ok(t, s.ContinueSession(ctx, "old", "new"))
	equal(t, len(must(s.EnqueueBackchannelLogouts(ctx, "u1", []string{"old"}, "signout", at(time.Minute)))(t)), 0)
	cont := must(s.EnqueueBackchannelLogouts(ctx, "u1", []string{"new"}, "signout", at(time.Minute)))(t)
	if len(cont) != 1 || cont[0].SessionID != "old" {
		t.Fatalf("continued session: %+v", cont)
	}
	ok(t, s.ContinueSession(ctx, "", "x"))
	c0 := must(s.ClaimBackchannelLogouts(ctx, at(time.Minute), time.Minute, 10))(t)
	ok(t, s.FinishBackchannelLogout(ctx, c0[0].ID, c0[0].ClaimToken, storage.BackchannelOutcome{Delivered: true}, at(time.Minute)))

	// Another user's session is not theirs to end; unknown sessions
	// queue nothing.
	equal(t, len(must(s.EnqueueBackchannelLogouts(ctx, "u1", []string{"s3", "nope"}, "signout", at(time.Minute)))(t)), 0)
	q := must(s.EnqueueBackchannelLogouts(ctx, "u1", []string{"s1"}, "signout", at(time.Minute)))(t)
	if len(q) != 1 || q[0].ClientID != "web" || q[0].SessionID != "s1" || q[0].UserID != "u1" || q[0].Cause != "signout" ||
		!q[0].NextAttemptAt.Equal(at(time.Minute)) || q[0].ID == "" {
		t.Fatalf("queued %+v", q)
	}
	// Claimed once for the lease; due again when it runs out.
	c := must(s.ClaimBackchannelLogouts(ctx, at(time.Minute), time.Minute, 10))(t)
	if len(c) != 1 || c[0].ID != q[0].ID || c[0].ClaimToken == "" || !c[0].ClaimedUntil.Equal(at(2*time.Minute)) {
		t.Fatalf("claimed %+v", c)
	}
	equal(t, len(must(s.ClaimBackchannelLogouts(ctx, at(time.Minute+time.Second), time.Minute, 10))(t)), 0)
	c2 := must(s.ClaimBackchannelLogouts(ctx, at(2*time.Minute+time.Millisecond), time.Minute, 10))(t)
	if len(c2) != 1 || c2[0].ClaimToken == c[0].ClaimToken {
		t.Fatalf("reclaim after the lease: %+v", c2)
	}
	// The first claim's outcome no longer counts.
	wantErr(t, s.FinishBackchannelLogout(ctx, c[0].ID, c[0].ClaimToken, storage.BackchannelOutcome{Delivered: true}, at(3*time.Minute)), storage.ErrConflict)
	// A failure: retried at NextAttemptAt.
	ok(t, s.FinishBackchannelLogout(ctx, c2[0].ID, c2[0].ClaimToken,
		storage.BackchannelOutcome{Error: "status 503", NextAttemptAt: at(10 * time.Minute)}, at(3*time.Minute)))
	equal(t, len(must(s.ClaimBackchannelLogouts(ctx, at(10*time.Minute-time.Millisecond), time.Minute, 10))(t)), 0)
	c3 := must(s.ClaimBackchannelLogouts(ctx, at(10*time.Minute), time.Minute, 10))(t)
	if len(c3) != 1 || c3[0].Attempts != 1 || c3[0].LastError != "status 503" {
		t.Fatalf("retry: %+v", c3)
	}
	ok(t, s.FinishBackchannelLogout(ctx, c3[0].ID, c3[0].ClaimToken, storage.BackchannelOutcome{Delivered: true}, at(11*time.Minute)))
	equal(t, len(must(s.ClaimBackchannelLogouts(ctx, at(time.Hour), time.Minute, 10))(t)), 0)
	l := must(s.ListBackchannelLogouts(ctx, "u1"))(t)
	i := slices.IndexFunc(l, func(b storage.BackchannelLogout) bool { return b.SessionID == "s1" })
	if len(l) != 2 || i < 0 || !l[i].DeliveredAt.Equal(at(11*time.Minute)) || l[i].Attempts != 2 || l[i].LastError != "" || l[i].ClaimToken != "" {
		t.Fatalf("delivered: %+v", l)
	}

	// Giving up.
	q = must(s.EnqueueBackchannelLogouts(ctx, "u1", []string{"s2"}, "password_changed", at(time.Hour)))(t)
	c = must(s.ClaimBackchannelLogouts(ctx, at(time.Hour), time.Minute, 10))(t)
	equal(t, len(c), 1)
	ok(t, s.FinishBackchannelLogout(ctx, c[0].ID, c[0].ClaimToken, storage.BackchannelOutcome{Error: "gone", GiveUp: true}, at(time.Hour)))
	equal(t, len(must(s.ClaimBackchannelLogouts(ctx, at(100*time.Hour), time.Minute, 10))(t)), 0)
	l = must(s.ListBackchannelLogouts(ctx, "u1"))(t)
	if len(l) != 3 || l[2].ID != q[0].ID || !l[2].FailedAt.Equal(at(time.Hour)) || l[2].LastError != "gone" {
		t.Fatalf("given up: %+v", l)
	}
	equal(t, len(must(s.ListBackchannelLogouts(ctx, ""))(t)), 3)
	wantOther(t, s.FinishBackchannelLogout(ctx, "", "x", storage.BackchannelOutcome{}, at(0)))
}

// testBackchannelClaimsDisjoint: workers claiming at once (several
// instances) never get the same delivery.
func testBackchannelClaimsDisjoint(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	bclClient(t, s, "web", "https://web.example/bcl")
	var sessions []string
	for i := range 40 {
		id := fmt.Sprint("s", i)
		sessions = append(sessions, id)
		ok(t, s.RecordSessionClient(ctx, id, "web", "u1", at(0)))
	}
	equal(t, len(must(s.EnqueueBackchannelLogouts(ctx, "u1", sessions, "user_disabled", at(0)))(t)), 40)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	start := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			<-start
			for {
				c, err := s.ClaimBackchannelLogouts(ctx, at(time.Second), time.Minute, 3)
				if err != nil {
					t.Error(err)
					return
				}
				if len(c) == 0 {
					return
				}
				mu.Lock()
				for _, b := range c {
					seen[b.ID]++
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if len(seen) != 40 {
		t.Fatalf("%d deliveries claimed, want 40", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s claimed %d times", id, n)
		}
	}
}

// testBackchannelEnqueueOnce: two places ending the same session at once
// queue its logout once.
func testBackchannelEnqueueOnce(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	bclClient(t, s, "web", "https://web.example/bcl")
	race(t, 10, func(i int) func() error {
		id := fmt.Sprint("s", i)
		ok(t, s.RecordSessionClient(ctx, id, "web", "u1", at(0)))
		return func() error {
			q, err := s.EnqueueBackchannelLogouts(ctx, "u1", []string{id}, "signout", at(0))
			if err == nil && len(q) == 0 {
				return storage.ErrNotFound
			}
			return err
		}
	}, is(storage.ErrNotFound))
	equal(t, len(must(s.ListBackchannelLogouts(ctx, "u1"))(t)), 10)
}

func testConsents(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	_, err := s.GetConsent(ctx, "u1", "app")
	wantErr(t, err, storage.ErrNotFound)
	c := must(s.GrantConsent(ctx, "u1", "app", []string{"openid", "email"}, at(0)))(t)
	equal(t, c, storage.Consent{UserID: "u1", ClientID: "app", Scopes: []string{"email", "openid"}, CreatedAt: at(0), UpdatedAt: at(0)})
	c = must(s.GrantConsent(ctx, "u1", "app", []string{"openid", "offline_access"}, at(time.Hour)))(t)
	equal(t, c.Scopes, []string{"email", "offline_access", "openid"})
	equal(t, c.CreatedAt, at(0))
	equal(t, must(s.GetConsent(ctx, "u1", "app"))(t), c)
	must(s.GrantConsent(ctx, "u1", "other", []string{"openid"}, at(0)))(t)
	must(s.GrantConsent(ctx, "u2", "app", []string{"openid"}, at(0)))(t)
	l := must(s.ListConsents(ctx, "u1"))(t)
	if len(l) != 2 || l[0].ClientID != "app" || l[1].ClientID != "other" {
		t.Fatalf("list: %+v", l)
	}
	ok(t, s.DeleteConsent(ctx, "u1", "app"))
	wantErr(t, s.DeleteConsent(ctx, "u1", "app"), storage.ErrNotFound)
	_, err = s.GetConsent(ctx, "u1", "app")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GrantConsent(ctx, "", "app", nil, at(0))
	wantOther(t, err)

	// Concurrent first grants both land.
	var wg sync.WaitGroup
	for _, sc := range []string{"a", "b", "c", "d"} {
		wg.Go(func() {
			if _, err := s.GrantConsent(ctx, "u3", "app", []string{sc}, at(0)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	equal(t, must(s.GetConsent(ctx, "u3", "app"))(t).Scopes, []string{"a", "b", "c", "d"})
}

func testSweepProtocol(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	now := at(100 * 24 * time.Hour)
	ok(t, s.UseOnce(ctx, "old", now.Add(-time.Hour), now.Add(-time.Millisecond)))
	ok(t, s.UseOnce(ctx, "live", now.Add(-time.Hour), now))
	must(s.CreatePushedRequest(ctx, storage.PushedRequest{ID: "p-old", RequestURIHash: digest("p-old"), ExpiresAt: now.Add(-time.Millisecond)}))(t)
	must(s.CreatePushedRequest(ctx, storage.PushedRequest{ID: "p-live", RequestURIHash: digest("p-live"), ExpiresAt: now}))(t)

	bclClient(t, s, "web", "https://web.example/bcl")
	live := must(s.CreateSession(ctx, storage.Session{UserID: "u1", TokenHash: digest("c1"), CreatedAt: now, LastSeenAt: now}))(t)
	ok(t, s.RecordSessionClient(ctx, live.ID, "web", "u1", now.Add(-48*time.Hour)))
	ok(t, s.RecordSessionClient(ctx, "gone-old", "web", "u1", now.Add(-2*time.Hour)))
	ok(t, s.RecordSessionClient(ctx, "gone-new", "web", "u1", now.Add(-time.Minute)))
	ok(t, s.RecordSessionClient(ctx, "done", "web", "u1", now.Add(-8*24*time.Hour)))
	ok(t, s.RecordSessionClient(ctx, "pending", "web", "u1", now.Add(-8*24*time.Hour)))
	must(s.EnqueueBackchannelLogouts(ctx, "u1", []string{"done"}, "signout", now.Add(-8*24*time.Hour)))(t)
	must(s.EnqueueBackchannelLogouts(ctx, "u1", []string{"pending"}, "signout", now.Add(-8*24*time.Hour)))(t)
	c := must(s.ClaimBackchannelLogouts(ctx, now.Add(-8*24*time.Hour), time.Minute, 1))(t)
	ok(t, s.FinishBackchannelLogout(ctx, c[0].ID, c[0].ClaimToken, storage.BackchannelOutcome{Delivered: true}, now.Add(-8*24*time.Hour)))

	ok(t, s.Sweep(ctx, now, storage.SweepPolicy{}))
	equal(t, keys(t, s, "used_jtis", "jti_key"), []string{"live"})
	equal(t, keys(t, s, "pushed_requests", "id"), []string{"p-live"})
	wantLinks := []string{"gone-new", live.ID}
	slices.Sort(wantLinks)
	equal(t, keys(t, s, "session_clients", "live_session_id"), wantLinks)
	l := must(s.ListBackchannelLogouts(ctx, "u1"))(t)
	if len(l) != 1 || l[0].SessionID == c[0].SessionID {
		t.Fatalf("after the sweep: %+v (delivered was %s)", l, c[0].SessionID)
	}
}
