package storage_test

// Conformance of the passkey methods (run by runConformance on every
// dialect).

import (
	"fmt"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
)

func fullPasskey(userID, cred string) storage.Passkey {
	return storage.Passkey{
		UserID: userID, CredentialID: digest(cred), UserHandle: digest("handle-" + userID), PublicKey: []byte("cose-key"),
		AttestationType: "none", AttestationFormat: "none", Transports: []string{"internal", "hybrid"},
		AAGUID: digest("aaguid")[:16], Attachment: "platform", SignCount: 7, UserVerified: true,
		BackupEligible: true, BackupState: false, Name: "Laptop", CreatedAt: at(0), LastUsedAt: at(0),
	}
}

func testPasskeys(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	p := must(s.CreatePasskey(ctx, fullPasskey("u1", "c1")))(t)
	if p.ID == "" {
		t.Fatal("no id generated")
	}
	want := fullPasskey("u1", "c1")
	want.ID = p.ID
	equal(t, p, want)
	equal(t, must(s.GetPasskeyByCredentialID(ctx, digest("c1")))(t), want)
	// A credential id is registered once, whoever tries again.
	_, err := s.CreatePasskey(ctx, fullPasskey("u2", "c1"))
	wantErr(t, err, storage.ErrConflict)
	_, err = s.CreatePasskey(ctx, storage.Passkey{UserID: "u1"})
	wantOther(t, err)
	_, err = s.GetPasskeyByCredentialID(ctx, digest("nope"))
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetPasskeyByCredentialID(ctx, nil)
	wantErr(t, err, storage.ErrNotFound)

	// Several per account, oldest first; empty lists come back nil.
	second := fullPasskey("u1", "c2")
	second.CreatedAt, second.Transports, second.AAGUID = at(time.Hour), nil, nil
	p2 := must(s.CreatePasskey(ctx, second))(t)
	must(s.CreatePasskey(ctx, fullPasskey("u2", "c3")))(t)
	list := must(s.ListPasskeys(ctx, "u1"))(t)
	if len(list) != 2 || list[0].ID != p.ID || list[1].ID != p2.ID || list[1].Transports != nil || list[1].AAGUID != nil {
		t.Fatalf("ListPasskeys = %+v", list)
	}
	equal(t, len(must(s.ListPasskeys(ctx, "nobody"))(t)), 0)

	// The counter only grows.
	ok(t, s.UsePasskey(ctx, p.ID, storage.PasskeyUse{SignCount: 8, BackupState: true, At: at(time.Minute)}))
	got := must(s.GetPasskeyByCredentialID(ctx, digest("c1")))(t)
	if got.SignCount != 8 || !got.BackupState || !got.LastUsedAt.Equal(at(time.Minute)) {
		t.Fatalf("after use: %+v", got)
	}
	wantErr(t, s.UsePasskey(ctx, p.ID, storage.PasskeyUse{SignCount: 8, At: at(2 * time.Minute)}), storage.ErrConflict)
	wantErr(t, s.UsePasskey(ctx, p.ID, storage.PasskeyUse{SignCount: 3, At: at(2 * time.Minute)}), storage.ErrConflict)
	wantErr(t, s.UsePasskey(ctx, p.ID, storage.PasskeyUse{SignCount: 0, At: at(2 * time.Minute)}), storage.ErrConflict)
	equal(t, must(s.GetPasskeyByCredentialID(ctx, digest("c1")))(t).LastUsedAt, at(time.Minute))
	ok(t, s.UsePasskey(ctx, p.ID, storage.PasskeyUse{SignCount: 1 << 31, At: at(3 * time.Minute)}))
	equal(t, must(s.GetPasskeyByCredentialID(ctx, digest("c1")))(t).SignCount, uint32(1<<31))
	wantErr(t, s.UsePasskey(ctx, "nope", storage.PasskeyUse{SignCount: 9}), storage.ErrNotFound)
	// An authenticator without a counter (0 stored, 0 presented) is fine.
	zero := fullPasskey("u3", "c4")
	zero.SignCount = 0
	pz := must(s.CreatePasskey(ctx, zero))(t)
	ok(t, s.UsePasskey(ctx, pz.ID, storage.PasskeyUse{At: at(time.Minute)}))
	ok(t, s.UsePasskey(ctx, pz.ID, storage.PasskeyUse{At: at(2 * time.Minute)}))
	ok(t, s.UsePasskey(ctx, pz.ID, storage.PasskeyUse{SignCount: 1, At: at(3 * time.Minute)}))
	wantErr(t, s.UsePasskey(ctx, pz.ID, storage.PasskeyUse{At: at(4 * time.Minute)}), storage.ErrConflict)

	// Delete: only the owner's.
	wantErr(t, s.DeletePasskey(ctx, "u2", p.ID), storage.ErrNotFound)
	ok(t, s.DeletePasskey(ctx, "u1", p.ID))
	wantErr(t, s.DeletePasskey(ctx, "u1", p.ID), storage.ErrNotFound)
	equal(t, len(must(s.ListPasskeys(ctx, "u1"))(t)), 1)
}

// testPasskeyCounterConcurrent: two assertions presenting the same
// counter at once: the database lets exactly one through.
func testPasskeyCounterConcurrent(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	p := must(s.CreatePasskey(ctx, fullPasskey("u1", "race")))(t)
	race(t, 20, func(i int) func() error {
		n := uint32(100 + i)
		return func() error { return s.UsePasskey(ctx, p.ID, storage.PasskeyUse{SignCount: n, At: at(time.Minute)}) }
	}, is(storage.ErrConflict))
}

func testPasskeyChallenges(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	b1, b2 := digest("browser1"), digest("browser2")
	c := storage.PasskeyChallenge{ChallengeHash: digest("ch1"), Purpose: "signin", ContextID: "ar1", UserID: "u1",
		BrowserHash: b1, Session: []byte(`{"rpId":"example.com"}`), CreatedAt: at(0), ExpiresAt: at(5 * time.Minute)}
	got := must(s.CreatePasskeyChallenge(ctx, c))(t)
	c.ID = got.ID
	equal(t, got, c)
	_, err := s.CreatePasskeyChallenge(ctx, storage.PasskeyChallenge{ChallengeHash: digest("x"), Purpose: "signin"})
	wantOther(t, err) // no browser

	take := func(ch, purpose, ctxID string, b []byte, now time.Time) error {
		_, err := s.TakePasskeyChallenge(ctx, digest(ch), purpose, ctxID, b, now)
		return err
	}
	// Bound to the purpose, the context and the browser: a mismatch does
	// not use it up.
	wantErr(t, take("ch1", "register", "ar1", b1, at(time.Minute)), storage.ErrNotFound)
	wantErr(t, take("ch1", "signin", "ar2", b1, at(time.Minute)), storage.ErrNotFound)
	wantErr(t, take("ch1", "signin", "ar1", b2, at(time.Minute)), storage.ErrNotFound)
	wantErr(t, take("ch1", "signin", "ar1", nil, at(time.Minute)), storage.ErrNotFound)
	wantErr(t, take("other", "signin", "ar1", b1, at(time.Minute)), storage.ErrNotFound)
	// Valid through its expiry instant, then single use.
	taken := must(s.TakePasskeyChallenge(ctx, digest("ch1"), "signin", "ar1", b1, at(5*time.Minute)))(t)
	want := c
	want.UsedAt = at(5 * time.Minute)
	equal(t, taken, want)
	wantErr(t, take("ch1", "signin", "ar1", b1, at(5*time.Minute)), storage.ErrNotFound)

	// Expired one millisecond ago.
	must(s.CreatePasskeyChallenge(ctx, storage.PasskeyChallenge{ChallengeHash: digest("ch2"), Purpose: "signin", ContextID: "ar3",
		BrowserHash: b1, CreatedAt: at(0), ExpiresAt: at(time.Minute)}))(t)
	wantErr(t, take("ch2", "signin", "ar3", b1, at(time.Minute+time.Millisecond)), storage.ErrNotFound)

	// A new challenge of the same scope and browser retires the older
	// one; other browsers' and other scopes' challenges stay.
	for _, x := range []struct {
		ch, ctxID string
		b         []byte
	}{{"old", "ar4", b1}, {"other-browser", "ar4", b2}, {"other-scope", "ar5", b1}} {
		must(s.CreatePasskeyChallenge(ctx, storage.PasskeyChallenge{ChallengeHash: digest(x.ch), Purpose: "signin", ContextID: x.ctxID,
			BrowserHash: x.b, CreatedAt: at(0), ExpiresAt: at(time.Hour)}))(t)
	}
	must(s.CreatePasskeyChallenge(ctx, storage.PasskeyChallenge{ChallengeHash: digest("new"), Purpose: "signin", ContextID: "ar4",
		BrowserHash: b1, CreatedAt: at(time.Minute), ExpiresAt: at(time.Hour)}))(t)
	wantErr(t, take("old", "signin", "ar4", b1, at(2*time.Minute)), storage.ErrNotFound)
	ok(t, take("new", "signin", "ar4", b1, at(2*time.Minute)))
	ok(t, take("other-browser", "signin", "ar4", b2, at(2*time.Minute)))
	ok(t, take("other-scope", "signin", "ar5", b1, at(2*time.Minute)))

	// The same challenge digest twice is a conflict.
	_, err = s.CreatePasskeyChallenge(ctx, storage.PasskeyChallenge{ChallengeHash: digest("new"), Purpose: "signin", BrowserHash: b1})
	wantErr(t, err, storage.ErrConflict)
}

// testPasskeyChallengeConcurrent: a challenge replayed at once by two
// requests is taken by exactly one.
func testPasskeyChallengeConcurrent(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	b := digest("browser")
	race(t, 20, func(i int) func() error {
		ch := digest(fmt.Sprint("race", i))
		must(s.CreatePasskeyChallenge(ctx, storage.PasskeyChallenge{ChallengeHash: ch, Purpose: "signin", ContextID: fmt.Sprint("ar", i),
			BrowserHash: b, CreatedAt: at(0), ExpiresAt: at(time.Hour)}))(t)
		return func() error {
			_, err := s.TakePasskeyChallenge(ctx, ch, "signin", fmt.Sprint("ar", i), b, at(time.Minute))
			return err
		}
	}, is(storage.ErrNotFound))
}

// testAuthRequestPasskeyProgress: what a sign-in learnt from a passkey
// round-trips.
func testAuthRequestPasskeyProgress(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	ar := fullAuthRequest("ar-pk")
	ok(t, s.CreateAuthRequest(ctx, ar))
	got := must(s.UpdateAuthRequest(ctx, "ar-pk", func(v *storage.AuthRequest) error {
		v.PasskeyAt, v.PasskeyUserVerified, v.PasskeyBackupEligible = at(time.Minute), true, true
		v.SecondFactorAt, v.SecondFactorMethod = at(time.Minute), "passkey"
		return nil
	}))(t)
	equal(t, must(s.GetAuthRequest(ctx, "ar-pk"))(t), got)
	if !got.PasskeyAt.Equal(at(time.Minute)) || !got.PasskeyUserVerified || !got.PasskeyBackupEligible {
		t.Fatalf("passkey progress = %+v", got)
	}
}
