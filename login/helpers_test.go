package login

import (
	"context"
	"crypto/sha256"
	"html"
	"net/url"
	"regexp"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

var (
	csrfRe       = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	backupCodeRe = regexp.MustCompile(`<code id="backup-code">([0-9A-Z-]+)</code>`)
)

// csrf is the CSRF token on a page.
func (p response) csrf(t *testing.T) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no csrf token on %s:\n%s", p.url, p.body)
	}
	return html.UnescapeString(m[1])
}

func backupCodeOn(t *testing.T, p response) string {
	t.Helper()
	m := backupCodeRe.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no backup code on %s:\n%s", p.url, p.body)
	}
	return m[1]
}

// totpAt is the code of seed k steps from the test clock's now.
func (e *testEnv) totpAt(seed []byte, k int64) string {
	return factor.TOTPCode(seed, factor.TOTPStep(e.clock.Now())+k)
}

// auditEvents lists the user's audit event names, oldest first.
func (e *testEnv) auditEvents(userID string) []string {
	e.t.Helper()
	evs, err := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{UserID: userID, Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]string, 0, len(evs))
	for i := len(evs) - 1; i >= 0; i-- {
		out = append(out, evs[i].Event)
	}
	return out
}

func (e *testEnv) user(id string) storage.User {
	e.t.Helper()
	u, err := e.store.GetUser(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *testEnv) activeTOTP(userID string) (storage.TOTPCredential, bool) {
	e.t.Helper()
	creds, err := e.store.ListTOTP(context.Background(), userID)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, c := range creds {
		if c.Status == storage.TOTPActive {
			return c, true
		}
	}
	return storage.TOTPCredential{}, false
}

func sessionsOf(t *testing.T, e *testEnv, userID string) []storage.Session {
	t.Helper()
	ss, err := e.store.ListSessions(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// signInRP signs a browser in to a product and returns, with the claims,
// the refresh token the OP would have issued for that session (a family
// stored as the code exchange stores it).
func (b *browser) signInRP(app *rp, email string, o signInOpts) (string, map[string]any) {
	b.e.t.Helper()
	authURL, state := app.authorizeURL()
	p := b.drive(b.get(authURL), email, o)
	claims := app.claims(p.code(b.e.t, state))
	family := storage.NewID()
	rt := op.NewRefreshToken(b.e.kr, family)
	now := b.e.clock.Now()
	if _, err := b.e.store.CreateRefreshToken(context.Background(), storage.RefreshToken{
		FamilyID: family, TokenHash: rtHash(rt), ClientID: app.id, UserID: claims["sub"].(string), SessionID: claims["sid"].(string),
		Scopes: []string{"openid", "offline_access"}, CreatedAt: now, AuthTime: now, SecondFactorAt: now,
	}); err != nil {
		b.e.t.Fatal(err)
	}
	return rt, claims
}

func rtHash(rt string) []byte { h := sha256.Sum256([]byte(rt)); return h[:] }

// refreshErr is what the token endpoint would answer for rt: "" while its
// family is live, invalid_grant once revoked.
func refreshErr(t *testing.T, app *rp, rt string) string {
	t.Helper()
	tok, err := app.e.store.GetRefreshTokenByHash(context.Background(), op.RefreshFamilyOf(rt), rtHash(rt))
	if err != nil || !tok.RevokedAt.IsZero() || !tok.UsedAt.IsZero() {
		return "invalid_grant"
	}
	return ""
}

// promptNone reports the product's answer to a silent sign-in in this
// browser ("" when it succeeded).
func (b *browser) promptNone(app *rp) string {
	authURL, _ := app.authorizeURL(oauth2.SetAuthURLParam("prompt", "none"))
	p := b.get(authURL)
	if p.location == "" {
		b.e.t.Fatalf("prompt=none showed a page: %s", p.url)
	}
	return p.rpError()
}

// setPasswordLink makes the one-time link the command line prints for a
// user created without a password (purpose set-password, 7 days).
func (e *testEnv) setPasswordLink(u storage.User) string {
	e.t.Helper()
	tok := keyring.NewToken()
	now := e.clock.Now()
	if _, err := e.store.CreateActionToken(context.Background(), storage.ActionToken{
		TokenHash: e.kr.MACString(keyring.PurposeAction, tok), UserID: u.ID, Purpose: purposeSetPassword,
		CreatedAt: now, ExpiresAt: now.Add(7 * 24 * time.Hour),
	}); err != nil {
		e.t.Fatal(err)
	}
	return e.issuer + "/account/set-password?token=" + url.QueryEscape(tok)
}
