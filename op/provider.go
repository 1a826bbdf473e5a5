package op

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// Options configure the provider. Every duration must be set (config fills
// the defaults).
type Options struct {
	Issuer string
	// Algorithm signs the ID tokens (and logout tokens) of clients that
	// registered no id_token_signed_response_alg: RS256, ES256, EdDSA.
	Algorithm string
	// AccessTokenAlgorithm signs JWT access tokens; "": ES256. RS256 and
	// ES256 keys are always published (what a client may register), and
	// these two algorithms' keys too.
	AccessTokenAlgorithm string
	KeyRotation          time.Duration // a signing key signs this long
	AccessTokenLifetime  time.Duration
	IDTokenLifetime      time.Duration
	RefreshTokenLifetime time.Duration // absolute cap; 0 = none
	// RefreshReuseGrace: a refresh token presented again within this time
	// of its first use gets a sibling successor (RFC 9700 §4.14.2); 0: none.
	RefreshReuseGrace   time.Duration
	AuthCodeLifetime    time.Duration
	AuthRequestLifetime time.Duration
	AccessTokenFormat   string // default for clients: opaque or jwt
	RefreshIdle         time.Duration

	// ReverifyDue is the re-verification rule (SPEC 6): whether a refresh
	// grant, signed in with these times and methods, must go back to the
	// sign-in for a second factor before now. It is the sign-in policy's
	// rule (flow.ReverifyDue with the configured period, wired in by
	// cmd/latchkey), injected so that the rule lives in one place and op
	// never imports the login packages. Required.
	ReverifyDue func(secondFactorAt, authTime time.Time, amr []string, now time.Time) bool
	// ACRValues are the acr values the sign-in can achieve, advertised in
	// discovery as acr_values_supported (OIDC Discovery 1.0 §3).
	ACRValues []string

	LoginPath  string // where zitadel sends the browser: "/login"
	LogoutPath string // our end-session page: "/logout"
	DevicePath string // RFC 8628 verification page: "/device"

	// RequirePAR: every client must push its authorization requests to
	// /par first (RFC 9126 §5; clients can also require it one by one).
	RequirePAR bool
	// HTTPClient fetches clients' jwks_uri and delivers back-channel
	// logout tokens; nil: a client with a 10 s timeout.
	HTTPClient *http.Client

	// MaxBodyBytes bounds every request body (forms, tokens); default 64 KiB.
	MaxBodyBytes int64
	// ErrorPage renders a browser-facing error (bad /authorize requests)
	// in the user's language: msgID names a message of the pages'
	// catalogue (login/i18n, wired by cmd; op never imports it), args are
	// its name/value pairs. Nil: the message id as plain text.
	ErrorPage func(w http.ResponseWriter, r *http.Request, status int, msgID string, args ...string)
	// PageWords are the words of op's own two pages (the form_post
	// response, RedirectAway's) in the language of a request; nil: English.
	PageWords func(r *http.Request) PageWords
	// UILocales are the languages of the pages and mails (BCP 47 tags),
	// advertised in discovery as ui_locales_supported and
	// claims_locales_supported (OIDC Discovery 1.0 §3). Nil: English.
	UILocales []string

	// Now is the clock of every decision: expiry, lifetimes, idle and
	// re-verification windows, key rotation. Required.
	Now func() time.Time
	// TokenNow stamps iat, nbf and exp in the JWTs our own grant handlers
	// sign (refresh.go, clientcredentials.go). It must be the clock
	// zitadel/oidc reads, time.Now, which the library cannot be given:
	// zitadel stamps the tokens of the code and device grants with it, and
	// checks iat and exp against it when our JWTs come back (JWT access
	// tokens at /userinfo, /oauth/introspect and VerifyAccessToken, ID
	// tokens as end_session's id_token_hint), as relying parties check
	// them against their own wall clocks. Nil: Now, which is the same
	// clock whenever Now is the wall clock.
	TokenNow func() time.Time
	Logger   *slog.Logger
	// Metrics counts token grants and refresh-token reuse for the
	// operator (cmd wires Prometheus; op never imports it). Nil: none.
	Metrics Metrics
}

// Metrics is what the provider counts.
type Metrics interface {
	// TokenGrant counts one token request: grant is the grant_type
	// (one we serve, else "other"), result "ok", "invalid_client"
	// (authentication failed), "refused" (another client error) or
	// "error" (ours).
	TokenGrant(grant, result string)
	// RefreshReuse counts a rotated refresh token presented again (the
	// whole grant is revoked).
	RefreshReuse()
}

type noMetrics struct{}

func (noMetrics) TokenGrant(string, string) {}
func (noMetrics) RefreshReuse()             {}

// OP is the OpenID provider: zitadel's op.Provider on our storage, behind
// our own discovery, JWKS and request hygiene.
type OP struct {
	opts       Options
	provider   *zop.Provider
	storage    *opStorage
	handler    http.Handler
	discovery  *staticDoc
	clientKeys *clientKeyring
	cors       *cors.Cors
}

// New builds the provider. It loads (or creates) the signing keys, so a
// misconfigured secret key fails here, at start-up.
func New(ctx context.Context, opts Options, store *storage.Store, kr *keyring.Keyring) (*OP, error) {
	if opts.Now == nil {
		return nil, errors.New("op: Options.Now is required")
	}
	if opts.TokenNow == nil {
		opts.TokenNow = opts.Now
	}
	if opts.ReverifyDue == nil {
		// A provider without the rule would keep refresh grants alive
		// forever: refuse to start rather than fail open.
		return nil, errors.New("op: Options.ReverifyDue is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = 64 << 10
	}
	if opts.Metrics == nil {
		opts.Metrics = noMetrics{}
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	for _, p := range []*string{&opts.LoginPath, &opts.LogoutPath, &opts.DevicePath} {
		if *p == "" {
			return nil, errors.New("op: login, logout and device paths are required")
		}
	}
	keep := opts.IDTokenLifetime
	if opts.AccessTokenLifetime > keep {
		keep = opts.AccessTokenLifetime
	}
	keep += 24 * time.Hour // expired id_token_hints still verify at logout for a day
	if opts.AccessTokenAlgorithm == "" {
		opts.AccessTokenAlgorithm = AlgES256
	}
	for _, alg := range []string{opts.Algorithm, opts.AccessTokenAlgorithm} {
		switch alg {
		case AlgRS256, AlgES256, AlgEdDSA:
		default:
			return nil, fmt.Errorf("op: unsupported signing algorithm %q", alg)
		}
	}
	km := newKeyManager(store, kr, opts.Algorithm, opts.AccessTokenAlgorithm, opts.KeyRotation, keep, opts.Now, opts.Logger)
	s := &opStorage{
		store: store, kr: kr, keys: km, opts: opts, now: opts.Now, logger: opts.Logger,
		clients:  &clientCache{store: store, ttl: 2 * time.Second, now: opts.Now},
		life:     lifetimes{accessToken: opts.AccessTokenLifetime, idToken: opts.IDTokenLifetime, format: opts.AccessTokenFormat},
		loginURL: opts.LoginPath,
	}
	if err := km.reload(ctx, rotateOnSchedule); err != nil {
		return nil, err
	}

	cfg := &zop.Config{
		CryptoKey:                kr.Key("op-token-crypto"),
		CryptoKeyId:              "lk1",
		DefaultLogoutRedirectURI: opts.LogoutPath + "/done",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedScopes:          []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess, ScopePrivacy},
		SupportedClaims: []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "acr", "amr", "at_hash", "c_hash",
			"azp", "sid", "name", "preferred_username", "email", "email_verified", "updated_at", "privacy"},
		DeviceAuthorization: zop.DeviceAuthorizationConfig{
			Lifetime: deviceLifetime, PollInterval: devicePollInterval, UserFormPath: opts.DevicePath,
			UserCode: zop.UserCodeBase20,
		},
	}
	algs := []string{AlgRS256, AlgES256, AlgEdDSA, "PS256"}
	tc, err := newTokenCrypto(cfg.CryptoKey)
	if err != nil {
		return nil, err
	}
	// Token endpoints take no cookies, so any origin may call them
	// (SPAs), but never with credentials.
	corsOpts := cors.Options{
		AllowedOrigins:   []string{"*"},
		AllowedMethods:   []string{http.MethodGet, http.MethodPost},
		AllowedHeaders:   []string{"Authorization", "Content-Type", "Accept", dpopHeader},
		ExposedHeaders:   []string{dpopNonceHeader, "WWW-Authenticate"},
		AllowCredentials: false,
	}
	zopts := []zop.Option{
		zop.WithCrypto(tc),
		zop.WithCORSOptions(&corsOpts),
		zop.WithIDTokenHintVerifierOpts(zop.WithSupportedIDTokenHintSigningAlgorithms(algs...)),
		zop.WithAccessTokenVerifierOpts(zop.WithSupportedAccessTokenSigningAlgorithms(algs...)),
	}
	if strings.HasPrefix(opts.Issuer, "http://") {
		zopts = append(zopts, zop.WithAllowInsecure())
	}
	provider, err := zop.NewProvider(cfg, s, zop.StaticIssuer(opts.Issuer), zopts...)
	if err != nil {
		return nil, fmt.Errorf("op: %w", err)
	}
	o := &OP{opts: opts, provider: provider, storage: s, cors: cors.New(corsOpts),
		clientKeys: &clientKeyring{http: opts.HTTPClient, now: opts.Now, logger: opts.Logger}}
	if err := o.buildDiscovery(ctx); err != nil {
		return nil, err
	}
	o.handler = o.textFilter(o.wrap(provider))
	return o, nil
}

// Handler serves every OP endpoint (discovery, keys, authorize, token, …).
func (o *OP) Handler() http.Handler { return o.handler }

// Provider is zitadel's provider, for the login UI's issuer interceptor.
func (o *OP) Provider() *zop.Provider { return o.provider }

// SigningKey names the key that signs ID tokens by default
// (Options.Algorithm) now, and since when it signs (every algorithm's key
// of a generation signs from the same instant); ok is false before the
// keys are loaded. It reads the cached snapshot: no I/O.
func (o *OP) SigningKey() (kid string, since time.Time, ok bool) {
	ks := o.storage.keys.cur.Load()
	if ks == nil || ks.idDefault == nil {
		return "", time.Time{}, false
	}
	return ks.idDefault.id, ks.signingSince, true
}

// RotateKeys is a planned rotation: a new key is published now on every
// instance and signs after the publish lead; the current key signs until
// then and stays published until its tokens expire.
func (o *OP) RotateKeys(ctx context.Context) error { return o.storage.keys.reload(ctx, rotatePlanned) }

// RotateKeysNow is the emergency rotation for a compromised key: a new key
// signs at once and every other key leaves JWKS at once (tokens they
// signed stop verifying).
func (o *OP) RotateKeysNow(ctx context.Context) error { return o.storage.keys.reload(ctx, rotateNow) }

// PublishLead is how long a planned rotation's new key is published
// before it signs.
func (o *OP) PublishLead() time.Duration { return o.storage.keys.publishLead() }

// ForgetClients drops the cached clients: another instance (or the
// command line) changed one (storage.TopicClients).
func (o *OP) ForgetClients() { o.storage.clients.clear() }

// RefreshKeys re-reads the keys (rotating on schedule). Run it every
// KeyReloadInterval on every instance (Watch makes it immediate on
// PostgreSQL).
func (o *OP) RefreshKeys(ctx context.Context) error {
	return o.storage.keys.reload(ctx, rotateOnSchedule)
}

// Respond finishes a sign-in: the request must be Done. It issues the
// authorization code and sends it to the client (query, fragment or
// form_post, with iss: RFC 9207). The login UI calls this directly, so
// there is no public callback URL that could mint a code for whoever
// knows a request id.
func (o *OP) Respond(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest) {
	if !ar.Done {
		o.RespondError(w, r, ar, "interaction_required", "the sign-in is not finished")
		return
	}
	code := keyring.NewToken()
	if err := o.storage.SaveAuthCode(r.Context(), ar.ID, code); err != nil {
		o.opts.Logger.Error("respond: save code", "err", err, "auth_request", ar.ID)
		e, desc := string(oidc.ServerError), "the sign-in could not be completed"
		if unavailable(err) {
			e, desc = codeUnavailable, descUnavailable
		}
		o.sendAuthResponse(w, r, ar.RedirectURI, ar.ResponseMode, url.Values{
			"error": {e}, "error_description": {desc}, "state": {ar.State}})
		return
	}
	o.sendAuthResponse(w, r, ar.RedirectURI, ar.ResponseMode, url.Values{"code": {code}, "state": {ar.State}})
}

// RespondError sends an OAuth error for an auth request to its client
// (OIDC Core 3.1.2.6), e.g. login_required for prompt=none, the way the
// request asked for its response (form_post included) and with iss.
// code is one of the standard names login_required,
// interaction_required, consent_required or access_denied; anything else
// is sent as access_denied.
func (o *OP) RespondError(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, code, description string) {
	switch code {
	case "login_required", "interaction_required", "consent_required", "access_denied":
	default:
		// access_denied (RFC 6749 §4.1.2.1), and whatever else: an unknown
		// code must not reach the client as something weaker.
		code = "access_denied"
	}
	o.sendAuthResponse(w, r, ar.RedirectURI, ar.ResponseMode, url.Values{
		"error": {code}, "error_description": {description}, "state": {ar.State}})
}

// buildDiscovery precomputes the discovery document: it changes only with
// the configuration, so it is served as fixed bytes with an ETag.
func (o *OP) buildDiscovery(ctx context.Context) error {
	ctx = zop.ContextWithIssuer(ctx, o.opts.Issuer)
	d := zop.CreateDiscoveryConfig(ctx, o.provider, o.storage)
	// Only what we really serve (zitadel advertises implicit flows and the
	// JWT-bearer grant unconditionally).
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.ResponseModesSupported = []string{string(oidc.ResponseModeQuery), string(oidc.ResponseModeFragment), string(oidc.ResponseModeFormPost)}
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials}
	if o.provider.GrantTypeDeviceCodeSupported() {
		d.GrantTypesSupported = append(d.GrantTypesSupported, oidc.GrantTypeDeviceCode)
	} else {
		d.DeviceAuthorizationEndpoint = ""
	}
	d.ACRValuesSupported = slices.Clone(o.opts.ACRValues)
	// The languages of the sign-in pages and mails (ui_locales), and of
	// the claims we word ourselves.
	locales := o.opts.UILocales
	if len(locales) == 0 {
		locales = []string{"en"}
	}
	d.UILocalesSupported = oidc.ParseLocales(locales)
	d.ClaimsLocalesSupported = oidc.ParseLocales(locales)
	d.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
	clientAlgs := make([]string, len(assertionAlgs))
	for i, a := range assertionAlgs {
		clientAlgs[i] = string(a)
	}
	d.TokenEndpointAuthMethodsSupported = []oidc.AuthMethod{authSecretBasic, authSecretPost, authPrivateKeyJWT, authNone}
	d.TokenEndpointAuthSigningAlgValuesSupported = clientAlgs
	d.IntrospectionEndpointAuthMethodsSupported = []oidc.AuthMethod{authSecretBasic, authSecretPost, authPrivateKeyJWT}
	d.IntrospectionEndpointAuthSigningAlgValuesSupported = clientAlgs
	d.RevocationEndpointAuthMethodsSupported = []oidc.AuthMethod{authSecretBasic, authSecretPost, authPrivateKeyJWT, authNone}
	d.RevocationEndpointAuthSigningAlgValuesSupported = clientAlgs
	d.RequestObjectSigningAlgValuesSupported = nil
	d.CheckSessionIframe = ""
	d.RequestParameterSupported = false
	d.BackChannelLogoutSupported = true
	d.BackChannelLogoutSessionSupported = true
	dpopAlgNames := make([]string, len(dpopAlgs))
	for i, a := range dpopAlgs {
		dpopAlgNames[i] = string(a)
	}
	body, err := json.Marshal(struct {
		*oidc.DiscoveryConfiguration
		// Not in zitadel's struct (or, for request_uri, overriding it:
		// only our own PAR request_uris are accepted, none fetched).
		AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
		ClaimsParameterSupported                   bool     `json:"claims_parameter_supported"`
		RequestURIParameterSupported               bool     `json:"request_uri_parameter_supported"`
		PushedAuthorizationRequestEndpoint         string   `json:"pushed_authorization_request_endpoint"`
		RequirePushedAuthorizationRequests         bool     `json:"require_pushed_authorization_requests"`
		DPoPSigningAlgValuesSupported              []string `json:"dpop_signing_alg_values_supported"`
	}{
		DiscoveryConfiguration:                     d,
		AuthorizationResponseIssParameterSupported: true,
		PushedAuthorizationRequestEndpoint:         o.endpointURL(parPath),
		RequirePushedAuthorizationRequests:         o.opts.RequirePAR,
		DPoPSigningAlgValuesSupported:              dpopAlgNames,
	})
	if err != nil {
		return err
	}
	o.discovery = newStaticDoc(body, "public, max-age=300")
	return nil
}

// wrap puts our endpoints and request hygiene in front of zitadel's
// router, which keeps end_session, device_authorization and the probes.
func (o *OP) wrap(next http.Handler) http.Handler {
	ours := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case oidc.DiscoveryEndpoint, oauthMetadataPath:
			// RFC 8414 metadata is the same document.
			o.discovery.serve(w, r)
			return
		case "/keys":
			ks, err := o.storage.keys.get(r.Context())
			if err != nil {
				o.opts.Logger.Error("serve jwks", "err", err)
				http.Error(w, "keys unavailable", http.StatusServiceUnavailable)
				return
			}
			ks.jwks.serve(w, r)
			return
		case "/authorize/callback":
			// Sign-ins finish through the login UI (OP.Respond), never here.
			http.NotFound(w, r)
			return
		case authorizePath:
			o.authorize(w, r)
			return
		}
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, o.opts.MaxBodyBytes)
			if err := parseForm(r); err != nil {
				o.badForm(w, r, err)
				return
			}
		}
		// RFC 6749 §5.1: token responses must not be cached; the same holds
		// for userinfo and introspection answers.
		h.Set("Cache-Control", "no-store")
		h.Set("Pragma", "no-cache")
		switch r.URL.Path {
		case tokenPath:
			if r.Method != http.MethodPost {
				// RFC 6749 §3.2: POST only. A GET would carry the client's
				// secret and the grant in the URL.
				h.Set("Allow", "POST")
				tokenError(w, http.StatusMethodNotAllowed, "invalid_request", "the token endpoint takes POST", false)
				return
			}
			sw := &statusWriter{ResponseWriter: w}
			o.token(sw, r)
			o.opts.Metrics.TokenGrant(grantLabel(r.PostForm.Get("grant_type")), grantResult(sw.status))
			return
		case parPath:
			o.par(w, r)
			return
		case userinfoPath:
			o.userinfo(w, r)
			return
		case introspectPath:
			o.introspect(w, r)
			return
		case revokePath:
			o.revoke(w, r)
			return
		case endSessionPath:
			o.endSession(w, r, next)
			return
		}
		o.zitadel(w, r, next)
	})
	withCORS := o.cors.Handler(ours)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case tokenPath, parPath, userinfoPath, introspectPath, revokePath:
			// Browser apps call these (CORS, preflights included).
			withCORS.ServeHTTP(w, r)
		default:
			ours.ServeHTTP(w, r)
		}
	})
}

// statusWriter remembers the status of a response (token-grant metrics).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
	s.ResponseWriter.WriteHeader(status)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// grantLabel bounds the grant_type label to the grants we serve.
func grantLabel(g string) string {
	switch g {
	case GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials:
		return g
	case GrantDeviceCode:
		return "device_code"
	}
	return "other"
}

// grantResult maps a token response's status onto the grant metric's
// result.
func grantResult(status int) string {
	switch {
	case status == 0 || status == http.StatusOK:
		return "ok"
	case status == http.StatusUnauthorized:
		return "invalid_client"
	case status < 500:
		return "refused"
	}
	return "error"
}

// endSessionPath is RP-initiated logout (zitadel's handler, our pages).
const endSessionPath = "/end_session"

// endSession runs zitadel's end_session, turning its JSON error answers
// (a person's browser is on the other end) into our error page, with the
// OAuth error in words.
func (o *OP) endSession(w http.ResponseWriter, r *http.Request, next http.Handler) {
	r, probe := withOutageProbe(r)
	rec := &jsonErrorCatcher{ResponseWriter: w}
	next.ServeHTTP(rec, r)
	if !rec.caught {
		return
	}
	for k := range w.Header() {
		if k != "Cache-Control" && k != "Pragma" && k != "X-Content-Type-Options" && !strings.HasPrefix(k, "Access-Control-") {
			w.Header().Del(k)
		}
	}
	if probe.hit.Load() {
		o.unavailablePage(w, r)
		return
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal([]byte(rec.body.String()), &e)
	status := rec.status
	if status >= 500 {
		status = http.StatusBadRequest // zitadel's answer to what it could not parse
	}
	switch {
	case e.Description != "" && e.Error != "":
		o.page(w, r, status, pageMsg("error.end_session.invalid_detail", "Detail", e.Description, "Error", e.Error))
	case e.Error != "":
		o.page(w, r, status, pageMsg("error.end_session.invalid_code", "Error", e.Error))
	default:
		o.page(w, r, status, pageMsg("error.end_session.invalid"))
	}
}

// zitadel serves what is still zitadel's (the device authorization
// endpoint, its probes): an error of ours it answered is corrected — 503
// temporarily_unavailable when the database was out of reach, and a bare
// server_error otherwise (zitadel would tell the client our error's text).
func (o *OP) zitadel(w http.ResponseWriter, r *http.Request, next http.Handler) {
	r, probe := withOutageProbe(r)
	rec := &jsonErrorCatcher{ResponseWriter: w}
	next.ServeHTTP(rec, r)
	switch {
	case !rec.caught:
	case probe.hit.Load():
		setRetryAfter(w.Header())
		tokenError(w, http.StatusServiceUnavailable, codeUnavailable, descUnavailable, false)
	case rec.status >= 500:
		tokenError(w, http.StatusInternalServerError, "server_error", "", false)
	default:
		w.WriteHeader(rec.status)
		_, _ = w.Write([]byte(rec.body.String()))
	}
}

// jsonErrorCatcher passes responses through, except a 4xx/5xx JSON body,
// which it keeps to re-render.
type jsonErrorCatcher struct {
	http.ResponseWriter
	caught bool
	status int
	body   strings.Builder
}

func (e *jsonErrorCatcher) WriteHeader(status int) {
	if status >= 400 && strings.HasPrefix(e.Header().Get("Content-Type"), "application/json") {
		e.caught, e.status = true, status
		return
	}
	e.ResponseWriter.WriteHeader(status)
}

func (e *jsonErrorCatcher) Write(b []byte) (int, error) {
	if e.caught {
		if e.body.Len() < 4096 {
			e.body.Write(b)
		}
		return len(b), nil
	}
	return e.ResponseWriter.Write(b)
}

// oauthMetadataPath is RFC 8414's well-known URI.
const oauthMetadataPath = "/.well-known/oauth-authorization-server"

// parseForm parses urlencoded bodies before zitadel does: its end_session
// answers a parse error with a 500.
func parseForm(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return r.ParseForm()
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return err
	}
	if mt != "application/x-www-form-urlencoded" {
		return nil // zitadel rejects other bodies itself
	}
	return r.ParseForm()
}

func (o *OP) badForm(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusBadRequest
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		status = http.StatusRequestEntityTooLarge
	}
	if r.URL.Path == "/end_session" && o.opts.ErrorPage != nil {
		o.page(w, r, status, pageMsg("error.end_session.unreadable"))
		return
	}
	tokenError(w, status, "invalid_request", "malformed request body", false)
}

// message is an error page's message: an id of the pages' catalogue
// (login/i18n) and its name/value arguments.
type message struct {
	id   string
	args []string
}

// pageMsg names a message of the pages' catalogue: its id (a literal, so
// that login/i18n's tests find it) and name/value arguments.
func pageMsg(id string, args ...string) message { return message{id: id, args: args} }

func (o *OP) page(w http.ResponseWriter, r *http.Request, status int, m message) {
	if o.opts.ErrorPage != nil {
		o.opts.ErrorPage(w, r, status, m.id, m.args...)
		return
	}
	http.Error(w, m.id, status)
}

// staticDoc is a JSON document served as fixed bytes (discovery, JWKS),
// with its response headers built once: the two most requested documents
// of an OP cost little more than net/http itself.
type staticDoc struct {
	body   []byte
	etag   string
	header map[string][]string
}

func newStaticDoc(body []byte, cacheControl string) *staticDoc {
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	return &staticDoc{body: body, etag: etag, header: map[string][]string{
		"Content-Type":                {"application/json"},
		"Content-Length":              {strconv.Itoa(len(body))},
		"Cache-Control":               {cacheControl},
		"Etag":                        {etag},
		"Access-Control-Allow-Origin": {"*"},
		"X-Content-Type-Options":      {"nosniff"},
	}}
}

// serve answers GET/HEAD with the document, honouring If-None-Match.
func (d *staticDoc) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	for k, v := range d.header {
		h[k] = v // shared, read-only slices: no allocation per request
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, d.etag) {
		delete(h, "Content-Length")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(d.body)
}
