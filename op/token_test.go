package op

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// tokenEnv is an OP on a real store, driven through its handler: enough
// to exercise the token endpoint's refusals without the login UI.
type tokenEnv struct {
	t     *testing.T
	o     *OP
	store *storage.Store
	kr    *keyring.Keyring
	now   time.Time
	user  storage.User
}

const (
	confSecret  = "conf-secret-0123456789abcdefghijklmnop"
	otherSecret = "other-secret-0123456789abcdefghijklmnop"
	confRedir   = "https://rp.example/cb"
)

// testReverify is the re-verification period of the test OP.
const testReverify = 30 * 24 * time.Hour

func newTokenEnv(t *testing.T, store *storage.Store) *tokenEnv {
	return newTokenEnvWith(t, store, nil)
}

// newTokenEnvWith is newTokenEnv with options changed by edit (nil: none).
// The decision clock stands at the real time, truncated, unless edit
// moves it.
func newTokenEnvWith(t *testing.T, store *storage.Store, edit func(*Options)) *tokenEnv {
	t.Helper()
	ctx := context.Background()
	kr := testKeyring(t)
	now := time.Now().Truncate(time.Second)
	opts := Options{
		Issuer: "https://id.example", Algorithm: AlgES256, KeyRotation: 30 * 24 * time.Hour,
		AccessTokenLifetime: time.Hour, IDTokenLifetime: time.Hour, AuthCodeLifetime: time.Minute,
		AuthRequestLifetime: 30 * time.Minute, AccessTokenFormat: storage.TokenFormatOpaque,
		RefreshIdle: 30 * 24 * time.Hour,
		// The sign-in policy's own rule, as cmd/latchkey wires it: these
		// tests hold the token endpoint to it, not to a stand-in.
		ReverifyDue: func(sf, authTime time.Time, amr []string, now time.Time) bool {
			return flow.ReverifyDue(testReverify, sf, authTime, amr, now)
		},
		LoginPath: "/login", LogoutPath: "/logout", DevicePath: "/device",
		Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if edit != nil {
		edit(&opts)
		now = opts.Now()
	}
	o, err := New(ctx, opts, store, kr)
	if err != nil {
		t.Fatal(err)
	}
	all := []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials}
	for _, c := range []storage.Client{
		{ID: "conf", SecretHash: HashClientSecret(kr, confSecret), GrantTypes: all, RedirectURIs: []string{confRedir}, AppType: storage.AppTypeWeb},
		{ID: "other", SecretHash: HashClientSecret(kr, otherSecret), GrantTypes: all, RedirectURIs: []string{confRedir}, AppType: storage.AppTypeWeb},
		{ID: "pub", Public: true, GrantTypes: all, RedirectURIs: []string{"http://127.0.0.1/cb"}, AppType: storage.AppTypeNative},
	} {
		c.CreatedAt, c.UpdatedAt = now, now
		if err := store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	u, err := store.CreateUser(ctx, storage.User{Email: "tok@example.com", EmailVerified: true, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	return &tokenEnv{t: t, o: o, store: store, kr: kr, now: now, user: u}
}

// refreshToken stores a fresh refresh token of client and returns it.
func (e *tokenEnv) refreshToken(clientID string) string {
	return e.refreshTokenWith(clientID, nil)
}

// refreshTokenWith is refreshToken with the row changed by edit first.
func (e *tokenEnv) refreshTokenWith(clientID string, edit func(*storage.RefreshToken)) string {
	e.t.Helper()
	rt := storage.RefreshToken{
		ID: storage.NewSortableID(e.now), FamilyID: storage.NewID(), ClientID: clientID, UserID: e.user.ID,
		Scopes: []string{"openid", "offline_access"}, GrantedScopes: []string{"openid", "offline_access"},
		Audience: []string{clientID}, AMR: []string{"pwd", "otp"}, AuthTime: e.now, SecondFactorAt: e.now,
		CreatedAt: e.now, FamilyCreatedAt: e.now, LastUsedAt: e.now,
	}
	if edit != nil {
		edit(&rt)
	}
	raw := NewRefreshToken(e.kr, rt.FamilyID) // the family as edited
	rt.TokenHash = e.kr.MACString(keyring.PurposeRefresh, raw)
	if _, err := e.store.CreateRefreshToken(context.Background(), rt); err != nil {
		e.t.Fatal(err)
	}
	return raw
}

// code stores a finished sign-in of client with a code and returns the
// code and its PKCE verifier.
func (e *tokenEnv) code(clientID string) (code, verifier string) {
	e.t.Helper()
	ctx := context.Background()
	verifier = keyring.NewToken() + keyring.NewToken()
	sum := sha256.Sum256([]byte(verifier))
	ar := storage.AuthRequest{
		ID: storage.NewID(), ClientID: clientID, RedirectURI: confRedir, Scopes: []string{"openid", "offline_access"},
		ResponseType: "code", CodeChallenge: base64.RawURLEncoding.EncodeToString(sum[:]), CodeChallengeMethod: "S256",
		CreatedAt: e.now, ExpiresAt: e.now.Add(30 * time.Minute),
		UserID: e.user.ID, Done: true, AMR: []string{"pwd", "otp"}, AuthTime: e.now, SecondFactorAt: e.now, SessionID: storage.NewID(),
	}
	if err := e.store.CreateAuthRequest(ctx, ar); err != nil {
		e.t.Fatal(err)
	}
	code = keyring.NewToken()
	if err := e.o.storage.SaveAuthCode(ctx, ar.ID, code); err != nil {
		e.t.Fatal(err)
	}
	return code, verifier
}

type tokenAnswer struct {
	status int
	header http.Header
	body   map[string]any
}

func (a tokenAnswer) err() string { s, _ := a.body["error"].(string); return s }

// post sends a token request; basic is "id:secret" for client_secret_basic.
func (e *tokenEnv) post(form url.Values, basic string) tokenAnswer {
	e.t.Helper()
	r := httptest.NewRequest(http.MethodPost, "https://id.example/oauth/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id, secret, ok := strings.Cut(basic, ":"); ok {
		r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	w := httptest.NewRecorder()
	e.o.Handler().ServeHTTP(w, r)
	a := tokenAnswer{status: w.Code, header: w.Header()}
	if err := json.Unmarshal(w.Body.Bytes(), &a.body); err != nil {
		e.t.Fatalf("token endpoint answered %d with non-JSON %q", w.Code, w.Body.String())
	}
	return a
}

// checkError: an RFC 6749 §5.2 error, uncacheable, with WWW-Authenticate
// exactly when a Basic authentication failed.
func checkError(t *testing.T, what string, a tokenAnswer, status int, code string, wwwAuth bool) {
	t.Helper()
	if a.status != status || a.err() != code {
		t.Errorf("%s: %d %v, want %d %s", what, a.status, a.body, status, code)
	}
	if a.header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Errorf("%s: headers %v", what, a.header)
	}
	if (a.header.Get("WWW-Authenticate") != "") != wwwAuth {
		t.Errorf("%s: WWW-Authenticate %q", what, a.header.Get("WWW-Authenticate"))
	}
}

// refusal is a token request that must fail: basic is "id:secret" for
// client_secret_basic, wwwAuth whether the answer carries a challenge.
type refusal struct {
	name    string
	form    url.Values
	basic   string
	status  int
	code    string
	wwwAuth bool
}

func (e *tokenEnv) checkRefusals(rs []refusal) {
	e.t.Helper()
	for _, r := range rs {
		checkError(e.t, r.name, e.post(r.form, r.basic), r.status, r.code, r.wwwAuth)
	}
}

// formWith is base with the key/value pairs kv set.
func formWith(base url.Values, kv ...string) url.Values {
	for i := 0; i+1 < len(kv); i += 2 {
		base.Set(kv[i], kv[i+1])
	}
	return base
}

// TestRefreshRefusals: wrong or missing client credentials, another
// client's token, an unknown token and a replayed one, each answered as
// RFC 6749 §5.2 says; failed attempts do not burn the owner's token, and
// a replay revokes the whole family.
func TestRefreshRefusals(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			e := newTokenEnv(t, d.Open(t))
			rt := e.refreshToken("conf")
			fam, other := RefreshFamilyOf(rt), e.refreshToken("conf")
			grant := func(kv ...string) url.Values {
				return formWith(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, kv...)
			}
			e.checkRefusals([]refusal{
				{"wrong secret, basic", grant(), "conf:" + otherSecret, 401, "invalid_client", true},
				{"wrong secret, post", grant("client_id", "conf", "client_secret", otherSecret), "", 401, "invalid_client", false},
				{"empty secret", grant("client_id", "conf"), "", 401, "invalid_client", false},
				{"unknown client", grant(), "nobody:" + confSecret, 401, "invalid_client", true},
				{"no client", grant(), "", 401, "invalid_client", false},
				{"public client with a secret", grant("client_id", "pub", "client_secret", "x"), "", 401, "invalid_client", false},
				{"two methods", grant("client_secret", confSecret), "conf:" + confSecret, 400, "invalid_request", false},
				{"another client's token", grant(), "other:" + otherSecret, 400, "invalid_grant", false},
				{"a public client with another's token", grant("client_id", "pub"), "", 400, "invalid_grant", false},
				{"unknown token", grant("refresh_token", keyring.NewToken()), "conf:" + confSecret, 400, "invalid_grant", false},
				// The family part of the value is what the store searches
				// by: another family's name on this token's secret finds
				// nothing; a name that is not text is refused before.
				{"another family's name", grant("refresh_token", storage.NewID()+rt[strings.Index(rt, "."):]), "conf:" + confSecret, 400, "invalid_grant", false},
				{"a family name with NUL", grant("refresh_token", "f\x00"+rt[strings.Index(rt, "."):]), "conf:" + confSecret, 400, "invalid_request", false},
				{"a family name not UTF-8", grant("refresh_token", "\xff"+rt[strings.Index(rt, "."):]), "conf:" + confSecret, 400, "invalid_request", false},
				// Values of this live family the OP never issued are
				// unknown, not reuse of a compacted token: they end nothing,
				// whoever sends them (the owner's refresh below still works).
				{"this family, a made-up secret", grant("refresh_token", fam+".x"), "conf:" + confSecret, 400, "invalid_grant", false},
				{"this family, an untagged secret", grant("refresh_token", fam+"."+keyring.NewToken()), "conf:" + confSecret, 400, "invalid_grant", false},
				{"this family, another family's tagged secret", grant("refresh_token", fam+other[strings.Index(other, "."):]), "conf:" + confSecret, 400, "invalid_grant", false},
				{"this family from a public client", grant("client_id", "pub", "refresh_token", fam+".x"), "", 400, "invalid_grant", false},
				{"missing token", grant("refresh_token", ""), "conf:" + confSecret, 400, "invalid_request", false},
				{"scope beyond the grant", grant("scope", "openid email"), "conf:" + confSecret, 400, "invalid_scope", false},
			})

			// None of that cost the owner its token.
			ok := e.post(grant(), "conf:"+confSecret)
			next, _ := ok.body["refresh_token"].(string)
			if ok.status != 200 || next == "" || ok.body["id_token"] == nil || ok.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("owner's refresh: %d %v", ok.status, ok.body)
			}
			// Replayed: refused, and the token it was rotated into dies too.
			checkError(t, "replay", e.post(grant(), "conf:"+confSecret), 400, "invalid_grant", false)
			checkError(t, "successor after a replay", e.post(grant("refresh_token", next), "conf:"+confSecret), 400, "invalid_grant", false)
		})
	}
}

// TestCodeRefusals: a code is bound to its client, redirect URI and PKCE
// verifier; none of the refusals burns it, and a replay is invalid_grant.
func TestCodeRefusals(t *testing.T) {
	for _, d := range storagetest.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			e := newTokenEnv(t, d.Open(t))
			code, verifier := e.code("conf")
			exchange := func(kv ...string) url.Values {
				return formWith(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confRedir}, "code_verifier": {verifier}}, kv...)
			}
			e.checkRefusals([]refusal{
				{"another client", exchange(), "other:" + otherSecret, 400, "invalid_grant", false},
				{"wrong secret, basic", exchange(), "conf:" + otherSecret, 401, "invalid_client", true},
				{"wrong secret, post", exchange("client_id", "conf", "client_secret", otherSecret), "", 401, "invalid_client", false},
				{"other redirect_uri", exchange("redirect_uri", "https://rp.example/other"), "conf:" + confSecret, 400, "invalid_grant", false},
				{"wrong verifier", exchange("code_verifier", keyring.NewToken()+keyring.NewToken()), "conf:" + confSecret, 400, "invalid_grant", false},
				{"no verifier", exchange("code_verifier", ""), "conf:" + confSecret, 400, "invalid_request", false},
				{"unknown code", exchange("code", keyring.NewToken()), "conf:" + confSecret, 400, "invalid_grant", false},
				{"no code", exchange("code", ""), "conf:" + confSecret, 400, "invalid_request", false},
			})
			ok := e.post(exchange(), "conf:"+confSecret)
			if ok.status != 200 || ok.body["access_token"] == nil || ok.body["refresh_token"] == nil {
				t.Fatalf("the real client after the refusals: %d %v", ok.status, ok.body)
			}
			checkError(t, "replayed code", e.post(exchange(), "conf:"+confSecret), 400, "invalid_grant", false)
			// What the first exchange issued is revoked with the replay.
			rt, _ := ok.body["refresh_token"].(string)
			checkError(t, "refresh token of a replayed code",
				e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "conf:"+confSecret), 400, "invalid_grant", false)
		})
	}
}

// TestMalformedTokenRequests: requests that are not a token request at
// all answer invalid_request or unsupported_grant_type, never a 5xx.
func TestMalformedTokenRequests(t *testing.T) {
	e := newTokenEnv(t, storagetest.OpenSQLite(t))
	for _, tc := range []struct {
		name string
		form url.Values
		code string
	}{
		{"no grant_type", url.Values{"client_id": {"conf"}}, "invalid_request"},
		{"unknown grant_type", url.Values{"grant_type": {"password"}, "username": {"u"}, "password": {"p"}}, "unsupported_grant_type"},
		{"client_assertion on refresh", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_assertion": {"a.b.c"}}, "invalid_request"},
	} {
		if a := e.post(tc.form, "conf:"+confSecret); a.status != 400 || a.err() != tc.code {
			t.Errorf("%s: %d %v", tc.name, a.status, a.body)
		}
	}
	for name, body := range map[string]string{
		"bad escape":  "grant_type=refresh_token&refresh_token=%zz",
		"bad escape2": "grant_type=client_credentials&scope=%",
	} {
		r := httptest.NewRequest(http.MethodPost, "https://id.example/oauth/token", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth("conf", confSecret)
		w := httptest.NewRecorder()
		e.o.Handler().ServeHTTP(w, r)
		var out map[string]string
		_ = json.Unmarshal(w.Body.Bytes(), &out)
		if w.Code != 400 || out["error"] != "invalid_request" || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d %s", name, w.Code, w.Body)
		}
	}
}

// TestTokenEndpointTakesPOST: a token request in a URL (RFC 6749 §3.2:
// POST only) is refused before anything is looked up, so the grant it
// carries survives; CORS preflights still pass.
func TestTokenEndpointTakesPOST(t *testing.T) {
	e := newTokenEnv(t, storagetest.OpenSQLite(t))
	rt := e.refreshToken("conf")
	q := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"conf"}, "client_secret": {confSecret}}
	for _, m := range []string{http.MethodGet, http.MethodPut} {
		w := httptest.NewRecorder()
		e.o.Handler().ServeHTTP(w, httptest.NewRequest(m, "https://id.example/oauth/token?"+q.Encode(), nil))
		var out map[string]string
		_ = json.Unmarshal(w.Body.Bytes(), &out)
		if w.Code != http.StatusMethodNotAllowed || out["error"] != "invalid_request" || w.Header().Get("Allow") != "POST" {
			t.Errorf("%s: %d %s", m, w.Code, w.Body)
		}
	}
	r := httptest.NewRequest(http.MethodOptions, "https://id.example/oauth/token", nil)
	r.Header.Set("Origin", "https://spa.example")
	r.Header.Set("Access-Control-Request-Method", "POST")
	w := httptest.NewRecorder()
	e.o.Handler().ServeHTTP(w, r)
	if w.Code >= 300 || w.Header().Get("Access-Control-Allow-Origin") == "" {
		t.Errorf("preflight: %d %v", w.Code, w.Header())
	}
	if a := e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "conf:"+confSecret); a.status != 200 {
		t.Fatalf("the token after the refused GET: %d %v", a.status, a.body)
	}
}

// TestBasicChallenge: every endpoint that authenticates clients answers a
// failed HTTP Basic attempt with 401 and a challenge (RFC 6749 §5.2), on
// zitadel's paths as on ours.
func TestBasicChallenge(t *testing.T) {
	e := newTokenEnv(t, storagetest.OpenSQLite(t))
	code, verifier := e.code("conf") // zitadel checks the code before the client
	for path, form := range map[string]url.Values{
		"/oauth/token":      {"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {confRedir}},
		"/oauth/introspect": {"token": {"x"}},
		"/revoke":           {"token": {"x"}},
	} {
		r := httptest.NewRequest(http.MethodPost, "https://id.example"+path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth("conf", otherSecret)
		w := httptest.NewRecorder()
		e.o.Handler().ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic") {
			t.Errorf("%s: %d %v", path, w.Code, w.Header())
		}
	}
}

// TestTokenHash: at_hash as zitadel (and relying parties) compute it.
func TestTokenHash(t *testing.T) {
	for _, alg := range []string{AlgRS256, AlgES256, AlgEdDSA, "PS256"} {
		want, err := oidc.ClaimHash("some.access.token", jose.SignatureAlgorithm(alg))
		if err != nil {
			t.Fatal(err)
		}
		if got := tokenHash(alg, "some.access.token"); got != want {
			t.Errorf("%s: %q, want %q", alg, got, want)
		}
	}
	if tokenHash("HS256", "x") != "" {
		t.Error("an unknown algorithm has no at_hash")
	}
}
