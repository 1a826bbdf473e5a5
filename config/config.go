package config

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/latchkey/latchkey/clientip"
)

// Config is the whole configuration of one Latchkey issuer. The yaml names
// are a contract with operators (files, LATCHKEY_* variables, scripts):
// never rename one without a migration note.
type Config struct {
	// Issuer is the public base URL; it is the "iss" of every token.
	Issuer string `yaml:"issuer"`
	// Addr is the listen address.
	Addr string `yaml:"addr"`
	// TrustedProxies are the reverse proxies (CIDRs or addresses) whose
	// X-Forwarded-For / Forwarded headers name the client (rightmost
	// untrusted hop; package clientip). Empty: the headers are ignored.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// DatabaseURL is "sqlite:PATH" or "postgres://…"; default
	// "sqlite:<data_dir>/latchkey.db".
	DatabaseURL string `yaml:"database_url"`
	// DataDir holds the SQLite database and the development secret key.
	// Default: $XDG_DATA_HOME/latchkey, else ~/.local/share/latchkey, else
	// /var/lib/latchkey (see Load); a relative path in the file is relative
	// to the file's directory. Always absolute after Load.
	DataDir string `yaml:"data_dir"`
	// SecretKey is the server secret (≥32 bytes, hex or base64). Required
	// unless the issuer is on localhost (see EnsureSecretKey).
	SecretKey Secret `yaml:"secret_key"`
	// SMTPURL is "smtp://user:pass@host:587", "smtps://…" or "log:"; empty
	// writes mail to the log, which an https issuer refuses: there it
	// must be set, to log: explicitly if that is what the operator wants.
	SMTPURL string `yaml:"smtp_url"`
	// MailFrom is the sender: an address with an optional display name
	// ("Acme Sign-in <noreply@acme.com>", RFC 5322); default
	// "<site_name> <noreply@<issuer host>>".
	MailFrom string `yaml:"mail_from"`
	// SiteName is the product's name, shown on pages and in mails.
	SiteName string `yaml:"site_name"`
	// Theme brands the pages and mails (logo, accent colour, extra CSS,
	// template overrides).
	Theme Theme `yaml:"theme"`
	// DefaultLanguage is the language of pages and mails when neither
	// the product (ui_locales), the account nor the browser names a
	// supported one: one of KnownLanguages ("en", "de", …).
	DefaultLanguage string `yaml:"default_language"`
	// PseudoLocale offers the pseudo-locale en-XA (every message accented
	// and marked) to tests and translators. Not a configuration key.
	PseudoLocale bool `yaml:"-"`

	Log    Log    `yaml:"log"`
	Audit  Audit  `yaml:"audit"`
	Keys   Keys   `yaml:"keys"`
	Tokens Tokens `yaml:"tokens"`
	Policy Policy `yaml:"policy"`
	TOTP   TOTP   `yaml:"totp"`
	Signup Signup `yaml:"signup"`
	// Notifications are the mails sent about sign-ins (the notices of
	// security changes are always sent).
	Notifications Notifications `yaml:"notifications"`
	// Protocol holds provider-wide OAuth requirements.
	Protocol Protocol `yaml:"protocol"`

	// Metrics serves Prometheus metrics on a listener of their own.
	Metrics Metrics `yaml:"metrics"`
	// TLS serves https from certificate files, reloaded when they change.
	TLS TLS `yaml:"tls"`
	// Events sends security events to a webhook.
	Events Events `yaml:"events"`

	Clients       []Client       `yaml:"clients"`
	Organizations []Organization `yaml:"organizations"`

	// origin maps a key path to where its value came from ("line 12" or
	// "LATCHKEY_ISSUER"), so problems can point at it. Filled by Load.
	origin map[string]string
}

// Theme brands the pages and mails. File paths in the file are relative
// to the file's directory (absolute after Load).
type Theme struct {
	// Logo is shown before site_name on every page and in mails: an image
	// file served from our origin (.png, .svg, .jpg, .jpeg, .gif, .webp)
	// or an http(s) URL on the issuer's origin. Empty: none.
	Logo string `yaml:"logo"`
	// AccentColor is the pages' accent (buttons, links, the name): a CSS
	// colour, #rgb, #rrggbb (#rgba, #rrggbbaa), rgb(…) or hsl(…). Empty:
	// the built-in blue.
	AccentColor string `yaml:"accent_color"`
	// CSS is an extra stylesheet file, served from our origin after the
	// built-in one (the pages' CSP allows no inline style). Empty: none.
	CSS string `yaml:"css"`
	// Dir holds templates that replace the built-in pages and mails of
	// the same file names; the built-in ones serve the rest. Each is
	// parsed at start-up. Empty: none.
	Dir string `yaml:"dir"`
}

// LogoIsURL reports whether theme.logo is a URL (else a file).
func (t Theme) LogoIsURL() bool {
	return strings.HasPrefix(t.Logo, "https://") || strings.HasPrefix(t.Logo, "http://")
}

// Audit configures the audit trail.
type Audit struct {
	// Retention: audit events older than this are deleted (0 keeps them
	// forever).
	Retention Duration `yaml:"retention"`
}

// Log configures the process logger.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
}

// Keys configures the token signing keys. RS256 and ES256 keys are always
// published (and rotated together), so each client can have its ID tokens
// signed with the algorithm it registered.
type Keys struct {
	// Algorithm signs the ID tokens of clients that registered no
	// id_token_signed_response_alg (and their logout tokens): RS256 |
	// ES256 | EdDSA. Until issue 16 it signed every token.
	Algorithm string `yaml:"algorithm"`
	// AccessTokenAlgorithm signs JWT access tokens: RS256 | ES256 | EdDSA.
	AccessTokenAlgorithm string   `yaml:"access_token_algorithm"`
	RotationPeriod       Duration `yaml:"rotation_period"` // a new key signs after this
}

// Tokens configures token lifetimes and formats.
type Tokens struct {
	AccessTokenLifetime Duration `yaml:"access_token_lifetime"`
	IDTokenLifetime     Duration `yaml:"id_token_lifetime"`
	// RefreshTokenLifetime caps a refresh-token family from its first
	// issue; 0 means no cap (policy.refresh_idle still applies).
	RefreshTokenLifetime Duration `yaml:"refresh_token_lifetime"`
	AuthCodeLifetime     Duration `yaml:"auth_code_lifetime"` // at most 10m (RFC 6749 §4.1.2)
	AuthRequestLifetime  Duration `yaml:"auth_request_lifetime"`
	// RefreshReuseGrace: a refresh token presented again this soon after
	// its rotation (a lost answer retried, two refreshes at once) gets a
	// sibling successor instead of revoking the grant (RFC 9700 §4.14.2),
	// while it is its family's latest rotation.
	RefreshReuseGrace Duration `yaml:"refresh_reuse_grace"`
	// AccessTokenFormat is the default for clients that set none.
	AccessTokenFormat string `yaml:"access_token_format"` // opaque | jwt
}

// Policy holds the sign-in rules' numbers (SPEC §2, §3, §5).
type Policy struct {
	EmailCodeTTL  Duration `yaml:"email_code_ttl"`
	SessionIdle   Duration `yaml:"session_idle"`
	TrustedDevice Duration `yaml:"trusted_device"`
	StaySignedIn  Duration `yaml:"stay_signed_in"`
	Reverify      Duration `yaml:"reverify"`
	RefreshIdle   Duration `yaml:"refresh_idle"`
	// Reconfirm is how long one identity reconfirmation on the account
	// page covers further changes.
	Reconfirm Duration `yaml:"reconfirm"`
	Rollout   Rollout  `yaml:"rollout"`
}

// Rollout sets when the email code becomes mandatory, per region (SPEC §5).
type Rollout struct {
	Default Date            `yaml:"default"`
	Regions map[string]Date `yaml:"regions"`
}

// TOTP configures authenticator apps.
type TOTP struct {
	// Issuer is the label shown in authenticator apps; default site_name.
	Issuer string `yaml:"issuer"`
}

// Metrics configures the Prometheus listener.
type Metrics struct {
	// Addr is where /metrics is served, never on the public port; empty
	// (the default) serves no metrics.
	Addr string `yaml:"addr"`
}

// TLS configures https without a proxy. Both files or neither.
type TLS struct {
	CertFile string `yaml:"cert_file"` // PEM certificate chain
	KeyFile  string `yaml:"key_file"`  // PEM private key
}

// Enabled reports whether the server serves https itself.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// Events configures the security-event webhook.
type Events struct {
	// WebhookURL receives each security event as a signed JSON POST;
	// empty sends none.
	WebhookURL string `yaml:"webhook_url"`
	// WebhookSecret keys the HMAC-SHA256 signature (≥32 characters).
	WebhookSecret string `yaml:"webhook_secret"`
}

// Signup configures self-service account creation.
type Signup struct {
	Enabled bool `yaml:"enabled"`
}

// Notifications configures the mails about sign-ins.
type Notifications struct {
	// NewSignIn mails the account when it signs in from a browser it has
	// not used before (not on the first sign-in after sign-up); default
	// true.
	NewSignIn bool `yaml:"new_sign_in"`
}

// Protocol holds provider-wide OAuth requirements.
type Protocol struct {
	// RequirePushedAuthorizationRequests: every client must send its
	// authorization requests through /par first (RFC 9126 §5).
	RequirePushedAuthorizationRequests bool `yaml:"require_pushed_authorization_requests"`
}

// Client is a relying party declared in the configuration.
type Client struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"` // default: the id; shown on the sign-in pages
	// LogoURI is the client's logo, shown with its name on the sign-in
	// pages: an https URL (http on localhost). Empty: none.
	LogoURI string `yaml:"logo_uri"`
	// Secret is the plain client secret (≥32 characters); required unless
	// the client is public.
	Secret                 string   `yaml:"secret"`
	Public                 bool     `yaml:"public"`
	Type                   string   `yaml:"type"` // web | native | user-agent
	RedirectURIs           []string `yaml:"redirect_uris"`
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	// GrantTypes, normalised: "device_code" becomes GrantDeviceCode.
	GrantTypes []string `yaml:"grant_types"`
	// AccessTokenFormat, AccessTokenLifetime and IDTokenLifetime default to
	// the tokens.* values (filled in by Validate).
	AccessTokenFormat   string   `yaml:"access_token_format"`
	AccessTokenLifetime Duration `yaml:"access_token_lifetime"`
	IDTokenLifetime     Duration `yaml:"id_token_lifetime"`
	// DefaultACR is requested when the client sends no acr_values.
	DefaultACR string `yaml:"default_acr"`
	// Admin grants the admin API to the client's client_credentials
	// tokens: "read" (scope latchkey:admin:read) or "full" (latchkey:admin
	// too); empty grants nothing.
	Admin string `yaml:"admin"`
	// JWKS (inline) or JWKSURI (fetched) hold the client's public keys
	// for private_key_jwt (RFC 7523 §2.2); with one of them a
	// confidential client needs no secret.
	JWKS    JWKS   `yaml:"jwks"`
	JWKSURI string `yaml:"jwks_uri"`
	// Scopes are what the client_credentials grant may give (anything
	// else is invalid_scope).
	Scopes []string `yaml:"scopes"`
	// BackchannelLogoutURI receives logout tokens (OIDC Back-Channel
	// Logout 1.0); BackchannelLogoutSessionRequired asks for sid in them.
	BackchannelLogoutURI             string `yaml:"backchannel_logout_uri"`
	BackchannelLogoutSessionRequired bool   `yaml:"backchannel_logout_session_required"`
	// ThirdParty clients show a consent page; first-party ones never do.
	ThirdParty bool `yaml:"third_party"`
	// RequirePushedAuthorizationRequests: this client's authorization
	// requests must come through /par (RFC 9126 §6).
	RequirePushedAuthorizationRequests bool `yaml:"require_pushed_authorization_requests"`
	// DPoPBoundAccessTokens: every token request must carry a DPoP proof
	// (RFC 9449 §5.2).
	DPoPBoundAccessTokens bool `yaml:"dpop_bound_access_tokens"`
	// IDTokenSignedResponseAlg: the JWS algorithm of the client's ID
	// tokens and logout tokens (OIDC Dynamic Client Registration §2),
	// one of ClientIDTokenAlgorithms; empty: keys.algorithm.
	IDTokenSignedResponseAlg string `yaml:"id_token_signed_response_alg"`
}

// Admin API access levels (clients[].admin).
const (
	AdminRead = "read"
	AdminFull = "full"
)

// Organization is an organisation whose email domains sign in through its
// own upstream OpenID provider (SPEC §4).
type Organization struct {
	Name             string   `yaml:"name"`
	Domains          []string `yaml:"domains"` // lower-cased by Validate
	Issuer           string   `yaml:"issuer"`
	ClientID         string   `yaml:"client_id"`
	ClientSecret     string   `yaml:"client_secret"`
	Scopes           []string `yaml:"scopes"`
	Claims           Claims   `yaml:"claims"`
	TrustUpstreamMFA bool     `yaml:"trust_upstream_mfa"`
	// JIT creates users on first sign-in; nil means true. Use JITEnabled.
	JIT *bool `yaml:"jit"`
}

// JITEnabled reports whether users are created just in time (default true).
func (o Organization) JITEnabled() bool { return o.JIT == nil || *o.JIT }

// Claims names the upstream ID token claims we read.
type Claims struct {
	Email  string `yaml:"email"`
	Name   string `yaml:"name"`
	Groups string `yaml:"groups"` // optional
}

// Grant types accepted in clients[].grant_types.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code" // RFC 8628 §3.4
	grantDeviceCodeShort   = "device_code"
)

// Client types.
const (
	ClientWeb       = "web"
	ClientNative    = "native"
	ClientUserAgent = "user-agent"
)

// Access token formats.
const (
	AccessTokenOpaque = "opaque"
	AccessTokenJWT    = "jwt"
)

// KnownACRs lists the acr values a client may use as default_acr. The
// canonical constants live with the code that derives them.
var KnownACRs = []string{
	"urn:latchkey:acr:pwd",
	"urn:latchkey:acr:mfa",
	"urn:latchkey:acr:mfa:fresh",
	"urn:latchkey:acr:phr",
	"urn:latchkey:acr:sso",
}

// ReservedClientIDs are the built-in clients (the demo relying party and
// the account pages); no configured or CLI client may take their ids.
var ReservedClientIDs = []string{"demo", "account"}

// KnownGrantTypes lists the grant types a client may use (long forms).
var KnownGrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantDeviceCode}

// KnownLanguages are the languages of the pages and mails (BCP 47 tags):
// the catalogue files of login/i18n, whose test holds the two lists equal
// (config imports nothing of login/).
var KnownLanguages = []string{"en", "de", "es", "fr", "ja"}

// LogoExtensions are the image files theme.logo may name (login/theme
// serves them, and its test holds its types to this list).
var LogoExtensions = []string{".png", ".svg", ".jpg", ".jpeg", ".gif", ".webp"}

// KnownAlgorithms lists the accepted keys.algorithm and
// keys.access_token_algorithm values.
var KnownAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// ClientIDTokenAlgorithms lists what a client may register as its
// id_token_signed_response_alg: the algorithms whose keys are always
// published. RS256 is what a relying party expects unless it registered
// another (OIDC Core §3.1.3.7, Dynamic Client Registration §2); ES256
// signs about 20× faster.
var ClientIDTokenAlgorithms = []string{"RS256", "ES256"}

// Default returns the configuration used when nothing is set. Values derived
// from other keys (database_url, mail_from, totp.issuer, per-client
// defaults) are left empty here and filled in by Validate.
func Default() *Config {
	date := func(s string) Date { d, _ := ParseDate(s); return d }
	return &Config{
		Issuer:   "http://localhost:8080",
		Addr:     ":8080",
		SiteName: "Latchkey",
		// The default language.
		DefaultLanguage: "en",
		Log:             Log{Level: "info", Format: "text"},
		Audit:           Audit{Retention: Duration(365 * day)},
		Keys:            Keys{Algorithm: "RS256", AccessTokenAlgorithm: "ES256", RotationPeriod: Duration(30 * day)},
		Tokens: Tokens{
			AccessTokenLifetime: Duration(15 * time.Minute),
			IDTokenLifetime:     Duration(time.Hour),
			AuthCodeLifetime:    Duration(60 * time.Second),
			AuthRequestLifetime: Duration(30 * time.Minute),
			RefreshReuseGrace:   Duration(10 * time.Second),
			AccessTokenFormat:   AccessTokenOpaque,
		},
		Policy: Policy{
			EmailCodeTTL:  Duration(10 * time.Minute),
			SessionIdle:   Duration(24 * time.Hour),
			TrustedDevice: Duration(30 * day),
			StaySignedIn:  Duration(30 * day),
			Reverify:      Duration(30 * day),
			RefreshIdle:   Duration(30 * day),
			Reconfirm:     Duration(5 * time.Minute),
			Rollout: Rollout{
				Default: date("2025-04-02"),
				Regions: map[string]Date{"EU": date("2025-04-09"), "APAC": date("2025-04-16")},
			},
		},
		Signup:        Signup{Enabled: true},
		Notifications: Notifications{NewSignIn: true},
	}
}

// TrustedProxyPrefixes is trusted_proxies parsed (Validate has checked
// every entry; one that does not parse is left out).
func (c *Config) TrustedProxyPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, e := range c.TrustedProxies {
		if p, err := clientip.ParseEntry(e); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// IsLocalIssuer reports whether the issuer's host is localhost, 127.0.0.1
// or [::1]: a developer machine, where plain http and a generated secret key
// are allowed.
func (c *Config) IsLocalIssuer() bool {
	u, err := url.Parse(c.Issuer)
	return err == nil && isLoopbackHost(u.Hostname())
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback))
}
