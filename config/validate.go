package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/clientip"
)

// Problem is one thing wrong with the configuration.
type Problem struct {
	Path  string // key path: "issuer", "clients[0].secret"
	Msg   string // what is wrong; never contains a secret
	Where string // "line 12", "from LATCHKEY_ISSUER", or "" when unknown
}

func (p *Problem) Error() string {
	if p.Where == "" {
		return p.Path + ": " + p.Msg
	}
	return p.Path + ": " + p.Msg + " (" + p.Where + ")"
}

// ValidationError lists every problem found; Error has one line per problem.
type ValidationError struct {
	Problems []*Problem
}

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.As.
func (e *ValidationError) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}

// problems collects problems, locating each through the origin map.
type problems struct {
	list   []*Problem
	origin map[string]string
	// undecodable holds the paths whose value could not be decoded, so
	// validation does not report them a second time ("required").
	undecodable map[string]bool
}

func (p *problems) addAt(path, where, format string, args ...any) {
	p.list = append(p.list, &Problem{Path: path, Msg: fmt.Sprintf(format, args...), Where: where})
}

// add locates path by its nearest ancestor that came from the file or the
// environment ("clients[0].secret" missing → the line of "clients[0]").
func (p *problems) add(path, format string, args ...any) {
	where := ""
	for q := path; q != ""; {
		if p.undecodable[q] {
			return
		}
		if w, ok := p.origin[q]; ok && where == "" {
			where = w
		}
		i := strings.LastIndexAny(q, ".[")
		if i < 0 {
			break
		}
		q = q[:i]
	}
	p.addAt(path, where, format, args...)
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &ValidationError{Problems: p.list}
}

// Validate fills the derived defaults (database_url from data_dir, mail_from
// from the issuer, totp.issuer from site_name, per-client and
// per-organisation defaults) where they are empty, normalises (grant type
// short forms, domain case), then checks everything. It returns nil or a
// *ValidationError listing every problem. Load does the same; call it
// yourself on a Config built in code.
//
// Its problems carry no location (Where is ""): on a copy of a loaded
// Config whose lists were replaced in code (the CLI's client and org
// commands), the file's lines would point at the entries that stood
// there before.
func (c *Config) Validate() error {
	p := &problems{}
	c.fillDerived()
	c.check(p)
	return p.err()
}

func (c *Config) fillDerived() {
	if c.DatabaseURL == "" && c.DataDir != "" {
		c.DatabaseURL = "sqlite:" + strings.TrimRight(c.DataDir, "/") + "/latchkey.db"
	}
	if c.MailFrom == "" {
		if u, err := url.Parse(c.Issuer); err == nil && u.Hostname() != "" {
			host := u.Hostname()
			if ip := net.ParseIP(host); ip != nil {
				host = "localhost"
				if ip.To4() != nil && !ip.IsLoopback() {
					host = "[" + ip.String() + "]"
				}
			}
			c.MailFrom = DisplayAddress(c.SiteName, "noreply@"+host)
		}
	}
	if c.TOTP.Issuer == "" {
		c.TOTP.Issuer = c.SiteName
	}
	for i := range c.Clients {
		cl := &c.Clients[i]
		if cl.Name == "" {
			cl.Name = cl.ID
		}
		if cl.Type == "" {
			cl.Type = ClientWeb
		}
		if len(cl.GrantTypes) == 0 {
			cl.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
		}
		for j, g := range cl.GrantTypes {
			if g == grantDeviceCodeShort {
				cl.GrantTypes[j] = GrantDeviceCode
			}
		}
		if cl.AccessTokenFormat == "" {
			cl.AccessTokenFormat = c.Tokens.AccessTokenFormat
		}
		if cl.AccessTokenLifetime == 0 {
			cl.AccessTokenLifetime = c.Tokens.AccessTokenLifetime
		}
		if cl.IDTokenLifetime == 0 {
			cl.IDTokenLifetime = c.Tokens.IDTokenLifetime
		}
	}
	for i := range c.Organizations {
		o := &c.Organizations[i]
		for j, d := range o.Domains {
			o.Domains[j] = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
		}
		if len(o.Scopes) == 0 {
			o.Scopes = []string{"openid", "email", "profile"}
		}
		if o.Claims.Email == "" {
			o.Claims.Email = "email"
		}
		if o.Claims.Name == "" {
			o.Claims.Name = "name"
		}
	}
}

func (c *Config) check(p *problems) {
	c.checkIssuer(p)
	if _, port, err := net.SplitHostPort(c.Addr); err != nil {
		p.add("addr", "%q is not a listen address such as :8080 or 127.0.0.1:8080", c.Addr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add("addr", "port %q is not a number from 0 to 65535", port)
	}
	for i, e := range c.TrustedProxies {
		if _, err := clientip.ParseEntry(e); err != nil {
			p.add(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not an IP address or a CIDR such as 10.0.0.0/8", e)
		}
	}
	if c.DataDir == "" {
		p.add("data_dir", "required")
	}
	c.checkDatabaseURL(p)
	switch {
	case len(c.SecretKey) == 0 && !c.IsLocalIssuer():
		p.add("secret_key", "required when the issuer is not localhost; generate one with: openssl rand -hex 32")
	case len(c.SecretKey) > 0 && len(c.SecretKey) < MinSecretKeyLen:
		p.add("secret_key", "is %d bytes, need at least %d; generate one with: openssl rand -hex 32", len(c.SecretKey), MinSecretKeyLen)
	}
	c.checkSMTPURL(p)
	if _, err := mail.ParseAddress(c.MailFrom); err != nil || strings.ContainsAny(c.MailFrom, "\r\n") {
		p.add("mail_from", "%q is not one email address, with or without a display name (Acme Sign-in <noreply@acme.com>)", c.MailFrom)
	}
	if strings.TrimSpace(c.SiteName) == "" {
		p.add("site_name", "required")
	}
	if !slices.Contains(KnownLanguages, c.DefaultLanguage) {
		// Not listed: the list grows with each catalogue file (the
		// README's Languages section and discovery's ui_locales_supported
		// have it).
		p.add("default_language", "%q is not a language of the pages (a BCP 47 tag such as en or de; see Languages in the README)", c.DefaultLanguage)
	}
	oneOf(p, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf(p, "log.format", c.Log.Format, "text", "json")
	oneOf(p, "keys.algorithm", c.Keys.Algorithm, KnownAlgorithms...)
	oneOf(p, "keys.access_token_algorithm", c.Keys.AccessTokenAlgorithm, KnownAlgorithms...)
	between(p, "keys.rotation_period", c.Keys.RotationPeriod, time.Hour, 0)

	// An audit trail shorter than a day would be no trail.
	if c.Audit.Retention != 0 {
		between(p, "audit.retention", c.Audit.Retention, 24*time.Hour, 0)
	}

	t := c.Tokens
	between(p, "tokens.access_token_lifetime", t.AccessTokenLifetime, time.Second, 0)
	between(p, "tokens.id_token_lifetime", t.IDTokenLifetime, time.Second, 0)
	between(p, "tokens.refresh_token_lifetime", t.RefreshTokenLifetime, 0, 0)
	// RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10
	// minutes is RECOMMENDED."
	between(p, "tokens.auth_code_lifetime", t.AuthCodeLifetime, time.Second, 10*time.Minute)
	between(p, "tokens.auth_request_lifetime", t.AuthRequestLifetime, time.Minute, 0)
	// Longer than a retry needs would let a stolen token's replay pass as
	// a retry for longer.
	between(p, "tokens.refresh_reuse_grace", t.RefreshReuseGrace, 0, 2*time.Minute)
	oneOf(p, "tokens.access_token_format", t.AccessTokenFormat, AccessTokenOpaque, AccessTokenJWT)

	pol := c.Policy
	// A code must live long enough to reach an inbox, and not so long that
	// a mailbox read later still opens the account.
	between(p, "policy.email_code_ttl", pol.EmailCodeTTL, time.Minute, time.Hour)
	between(p, "policy.session_idle", pol.SessionIdle, time.Minute, 0)
	between(p, "policy.trusted_device", pol.TrustedDevice, time.Minute, 0)
	between(p, "policy.stay_signed_in", pol.StaySignedIn, time.Minute, 0)
	between(p, "policy.reverify", pol.Reverify, time.Minute, 0)
	between(p, "policy.refresh_idle", pol.RefreshIdle, time.Minute, 0)
	// A reconfirmation is for "several changes in a row" (SPEC §3), not a
	// second session.
	between(p, "policy.reconfirm", pol.Reconfirm, time.Minute, time.Hour)
	if pol.Rollout.Default.IsZero() {
		p.add("policy.rollout.default", "required")
	}
	for _, region := range sortedKeys(pol.Rollout.Regions) {
		path := "policy.rollout.regions." + region
		if region == "" || strings.ContainsAny(region, " \t") {
			p.add("policy.rollout.regions", "region name %q must be non-empty without spaces", region)
		}
		if pol.Rollout.Regions[region].IsZero() {
			p.add(path, "date required")
		}
	}
	// Key URI Format: neither the issuer nor the account may contain ':'.
	if c.TOTP.Issuer == "" || strings.Contains(c.TOTP.Issuer, ":") {
		p.add("totp.issuer", "%q must be non-empty and must not contain ':'", c.TOTP.Issuer)
	}
	c.checkTheme(p)
	c.checkOperations(p)
	c.checkClients(p)
	c.checkOrganizations(p)
}

// DisplayAddress is the mailbox addr with the display name name, as
// net/mail parses it back: a quoted string unless name is plain words.
func DisplayAddress(name, addr string) string {
	name = strings.TrimSpace(name)
	if name == "" {
		return addr
	}
	if !plainPhrase.MatchString(name) {
		name = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
	}
	return name + " <" + addr + ">"
}

var plainPhrase = regexp.MustCompile(`^[A-Za-z0-9]+( [A-Za-z0-9]+)*$`)

// cssColour is what theme.accent_color accepts: hex colours and the
// rgb()/hsl() functions, made of characters that cannot end a CSS
// declaration (the value is written into a stylesheet).
var cssColour = regexp.MustCompile(`^(#([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})|(rgb|rgba|hsl|hsla)\((\s|[0-9.,/%+-]|deg|turn|rad)+\))$`)

// checkTheme checks the theme's values (its files are read at start-up).
func (c *Config) checkTheme(p *problems) {
	t := c.Theme
	if t.AccentColor != "" && !cssColour.MatchString(t.AccentColor) {
		p.add("theme.accent_color", "%q is not a CSS colour such as #1f5fd1, rgb(31 95 209) or hsl(218 74%% 47%%)", t.AccentColor)
	}
	switch {
	case t.Logo == "":
	case t.LogoIsURL():
		u, err := url.Parse(t.Logo)
		iss, _ := url.Parse(c.Issuer)
		if err != nil || iss == nil || u.Scheme != iss.Scheme || u.Host != iss.Host || u.User != nil {
			p.add("theme.logo", "%q is not on the issuer's origin (%s); give a file to serve it from there", t.Logo, c.Issuer)
		}
	default:
		if !slices.Contains(LogoExtensions, strings.ToLower(filepath.Ext(t.Logo))) {
			p.add("theme.logo", "%q is not an image file (.png, .svg, .jpg, .jpeg, .gif, .webp) or a URL", t.Logo)
		}
	}
}

// checkOperations checks metrics, tls and events.
func (c *Config) checkOperations(p *problems) {
	if a := c.Metrics.Addr; a != "" {
		if _, port, err := net.SplitHostPort(a); err != nil {
			p.add("metrics.addr", "%q is not a listen address such as 127.0.0.1:9090", a)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			p.add("metrics.addr", "port %q is not a number from 0 to 65535", port)
		} else if a == c.Addr {
			p.add("metrics.addr", "must differ from addr: metrics never share the public port")
		}
	}
	if t := c.TLS; t.Enabled() {
		if t.CertFile == "" {
			p.add("tls.cert_file", "required with tls.key_file")
		}
		if t.KeyFile == "" {
			p.add("tls.key_file", "required with tls.cert_file")
		}
	}
	e := c.Events
	if e.WebhookURL == "" {
		if e.WebhookSecret != "" {
			p.add("events.webhook_url", "required with events.webhook_secret")
		}
		return
	}
	u, err := url.Parse(e.WebhookURL)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		p.add("events.webhook_url", "%q is not an absolute URL", redactURL(e.WebhookURL))
	case u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname())):
		p.add("events.webhook_url", "%q must use https unless the host is localhost, 127.0.0.1 or [::1]", redactURL(e.WebhookURL))
	}
	switch {
	case e.WebhookSecret == "":
		p.add("events.webhook_secret", "required with events.webhook_url (the receiver checks the signature with it); generate one with: openssl rand -hex 32")
	case len(e.WebhookSecret) < 32:
		p.add("events.webhook_secret", "must be at least 32 characters, got %d", len(e.WebhookSecret))
	}
}

func (c *Config) checkIssuer(p *problems) {
	u, err := url.Parse(c.Issuer)
	switch {
	case c.Issuer == "":
		p.add("issuer", "required")
		return
	case err != nil || !u.IsAbs() || u.Host == "":
		p.add("issuer", "%q is not an absolute URL", c.Issuer)
		return
	case u.User != nil:
		p.add("issuer", "must not contain a user name or password")
		return
	case u.Scheme != "http" && u.Scheme != "https":
		p.add("issuer", "%q must be an http or https URL", c.Issuer)
		return
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		// OpenID Connect Core §2: "no query or fragment components".
		p.add("issuer", "%q must not have a query or fragment", c.Issuer)
	}
	if strings.HasSuffix(u.Path, "/") {
		// Discovery appends "/.well-known/openid-configuration" and
		// relying parties compare "iss" byte for byte.
		p.add("issuer", "%q must not end with '/'", c.Issuer)
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		p.add("issuer", "%q must use https unless the host is localhost, 127.0.0.1 or [::1]", c.Issuer)
	}
}

func (c *Config) checkDatabaseURL(p *problems) {
	db := c.DatabaseURL
	switch {
	case strings.HasPrefix(db, "sqlite:"):
		if strings.TrimPrefix(db, "sqlite:") == "" {
			p.add("database_url", "sqlite: needs a file path, e.g. sqlite:./latchkey-data/latchkey.db")
		}
	case strings.HasPrefix(db, "postgres:"), strings.HasPrefix(db, "postgresql:"):
		if _, err := url.Parse(db); err != nil {
			p.add("database_url", "%q is not a valid URL", redactURL(db))
		}
	default:
		p.add("database_url", "%q must start with sqlite:, postgres: or postgresql:", redactURL(db))
	}
}

func (c *Config) checkSMTPURL(p *problems) {
	if c.SMTPURL == "" {
		// Without smtp_url the codes go to the log: fine on a developer's
		// machine, an outage (or worse) in production, so a public
		// issuer must say so (log:) or name a server.
		if u, err := url.Parse(c.Issuer); err == nil && u.Scheme == "https" {
			p.add("smtp_url", "required when the issuer is https: set smtp://… or smtps://…, or \"log:\" to write every mail, codes included, to the log")
		}
		return
	}
	u, err := url.Parse(c.SMTPURL)
	if err != nil {
		p.add("smtp_url", "not a valid URL") // the text may hold a password
		return
	}
	switch u.Scheme {
	case "log":
	case "smtp", "smtps":
		if u.Hostname() == "" {
			p.add("smtp_url", "%q needs a host, e.g. smtp://user:pass@mail.example.com:587", redactURL(c.SMTPURL))
		} else if port := u.Port(); port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				p.add("smtp_url", "port %q is not a number from 1 to 65535", port)
			}
		}
	default:
		p.add("smtp_url", "%q must use smtp://, smtps:// or log:", redactURL(c.SMTPURL))
	}
}

func (c *Config) checkClients(p *problems) {
	ids := make(map[string]int)
	for i, cl := range c.Clients {
		at := fmt.Sprintf("clients[%d]", i)
		switch {
		case cl.ID == "":
			p.add(at+".id", "required")
		case strings.ContainsAny(cl.ID, ": \t\r\n"):
			// ':' splits client_id from secret in HTTP Basic auth.
			p.add(at+".id", "%q must not contain ':' or spaces", cl.ID)
		case slices.Contains(ReservedClientIDs, cl.ID):
			p.add(at+".id", "%q is reserved for a built-in client", cl.ID)
		}
		if j, dup := ids[cl.ID]; dup && cl.ID != "" {
			p.add(at+".id", "duplicate id %q (also clients[%d])", cl.ID, j)
		} else {
			ids[cl.ID] = i
		}
		oneOf(p, at+".type", cl.Type, ClientWeb, ClientNative, ClientUserAgent)
		switch {
		case cl.Public && cl.Secret != "":
			p.add(at+".secret", "must be empty for a public client")
		case !cl.Public && cl.Secret == "" && cl.JWKS == "" && cl.JWKSURI == "":
			p.add(at+".secret", "required for a confidential client (or set public: true, or give jwks or jwks_uri for private_key_jwt)")
		case !cl.Public && cl.Secret != "" && len(cl.Secret) < 32:
			p.add(at+".secret", "must be at least 32 characters, got %d", len(cl.Secret))
		}
		if cl.Public && cl.Type == ClientWeb {
			// A web client runs on a server and can keep a secret.
			p.add(at+".type", "a public client must be native or user-agent, got web")
		}
		grants := make(map[string]bool)
		for j, g := range cl.GrantTypes {
			switch {
			case !slices.Contains(KnownGrantTypes, g):
				p.add(fmt.Sprintf("%s.grant_types[%d]", at, j), "unknown grant type %q (want authorization_code, refresh_token, client_credentials or device_code)", g)
			case grants[g]:
				p.add(fmt.Sprintf("%s.grant_types[%d]", at, j), "%q listed twice", g)
			}
			grants[g] = true
		}
		if cl.Public && grants[GrantClientCredentials] {
			p.add(at+".grant_types", "client_credentials needs a confidential client")
		}
		if grants[GrantRefreshToken] && !grants[GrantAuthorizationCode] && !grants[GrantDeviceCode] {
			p.add(at+".grant_types", "refresh_token needs authorization_code or device_code (nothing else issues refresh tokens)")
		}
		if grants[GrantAuthorizationCode] && len(cl.RedirectURIs) == 0 {
			p.add(at+".redirect_uris", "at least one is required for the authorization_code grant")
		}
		for j, r := range cl.RedirectURIs {
			if msg := checkRedirectURI(r, cl.Type); msg != "" {
				p.add(fmt.Sprintf("%s.redirect_uris[%d]", at, j), "%q %s", r, msg)
			}
		}
		for j, r := range cl.PostLogoutRedirectURIs {
			if msg := checkRedirectURI(r, cl.Type); msg != "" {
				p.add(fmt.Sprintf("%s.post_logout_redirect_uris[%d]", at, j), "%q %s", r, msg)
			}
		}
		if cl.AccessTokenFormat != c.Tokens.AccessTokenFormat { // else reported there
			oneOf(p, at+".access_token_format", cl.AccessTokenFormat, AccessTokenOpaque, AccessTokenJWT)
		}
		between(p, at+".access_token_lifetime", cl.AccessTokenLifetime, time.Second, 0)
		between(p, at+".id_token_lifetime", cl.IDTokenLifetime, time.Second, 0)
		if cl.DefaultACR != "" {
			oneOf(p, at+".default_acr", cl.DefaultACR, KnownACRs...)
		}
		if cl.LogoURI != "" {
			if msg := checkHTTPSURL(cl.LogoURI); msg != "" {
				p.add(at+".logo_uri", "%q %s", cl.LogoURI, msg)
			}
		}
		if cl.IDTokenSignedResponseAlg != "" {
			oneOf(p, at+".id_token_signed_response_alg", cl.IDTokenSignedResponseAlg, ClientIDTokenAlgorithms...)
		}
		if cl.Admin != "" {
			oneOf(p, at+".admin", cl.Admin, AdminRead, AdminFull)
			if !grants[GrantClientCredentials] || cl.Public {
				// The admin API takes client_credentials tokens only.
				p.add(at+".admin", "needs a confidential client with the client_credentials grant")
			}
		}
		c.checkClientProtocol(p, at, cl)
	}
}

// checkClientProtocol checks a client's keys, scopes and back-channel
// logout URI (issue 12).
func (c *Config) checkClientProtocol(p *problems, at string, cl Client) {
	switch {
	case cl.JWKS != "" && cl.JWKSURI != "":
		p.add(at+".jwks_uri", "give jwks or jwks_uri, not both")
	case (cl.JWKS != "" || cl.JWKSURI != "") && cl.Public:
		p.add(at+".jwks", "a public client has no keys (it authenticates with PKCE alone)")
	case cl.JWKS != "":
		if msg := CheckJWKS([]byte(cl.JWKS)); msg != "" {
			p.add(at+".jwks", "%s", msg)
		}
	case cl.JWKSURI != "":
		if msg := checkHTTPSURL(cl.JWKSURI); msg != "" {
			p.add(at+".jwks_uri", "%q %s", cl.JWKSURI, msg)
		}
	}
	for j, sc := range cl.Scopes {
		if !validScopeToken(sc) {
			p.add(fmt.Sprintf("%s.scopes[%d]", at, j), "%q is not a scope (RFC 6749 §3.3: printable ASCII, no spaces, quotes or backslashes)", sc)
		}
	}
	if cl.BackchannelLogoutURI != "" {
		if msg := checkHTTPSURL(cl.BackchannelLogoutURI); msg != "" {
			p.add(at+".backchannel_logout_uri", "%q %s", cl.BackchannelLogoutURI, msg)
		}
	} else if cl.BackchannelLogoutSessionRequired {
		p.add(at+".backchannel_logout_session_required", "needs backchannel_logout_uri")
	}
}

// checkHTTPSURL returns what is wrong with a URL the provider calls (a
// client's JWKS or back-channel logout endpoint), or "".
func checkHTTPSURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return "is not an absolute URL"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "must not have a fragment"
	case u.User != nil:
		return "must not carry credentials"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return ""
	}
	return "must use https unless the host is localhost, 127.0.0.1 or [::1]"
}

// validScopeToken: RFC 6749 §3.3 scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

// checkRedirectURI returns what is wrong with a redirect URI, or "".
func checkRedirectURI(raw, clientType string) string {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return "is not an absolute URI"
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "must not have a fragment (RFC 6749 §3.1.2)"
	}
	if strings.Contains(raw, "*") {
		return "must not contain wildcards"
	}
	switch u.Scheme {
	case "javascript", "data", "vbscript", "file", "blob":
		return "uses a forbidden scheme"
	case "https":
		if u.Host == "" {
			return "has no host"
		}
	case "http":
		// Plain http only to this machine: the loopback redirect of
		// native apps (RFC 8252 §7.3), or development.
		if !isLoopbackHost(u.Hostname()) {
			return "must use https unless the host is localhost, 127.0.0.1 or [::1]"
		}
	default:
		if clientType != ClientNative {
			return "uses a custom scheme, allowed only for native clients (RFC 8252 §7.1)"
		}
	}
	return ""
}

func (c *Config) checkOrganizations(p *problems) {
	names := make(map[string]int)
	owner := make(map[string]int) // domain → organisation index
	for i, o := range c.Organizations {
		at := fmt.Sprintf("organizations[%d]", i)
		if o.Name == "" {
			p.add(at+".name", "required")
		} else if j, dup := names[o.Name]; dup {
			p.add(at+".name", "duplicate name %q (also organizations[%d])", o.Name, j)
		} else {
			names[o.Name] = i
		}
		if len(o.Domains) == 0 {
			p.add(at+".domains", "at least one domain is required")
		}
		for j, d := range o.Domains {
			path := fmt.Sprintf("%s.domains[%d]", at, j)
			if !validDomain(d) {
				p.add(path, "%q is not a valid domain name", d)
				continue
			}
			// One domain, one upstream: otherwise which IdP a user is
			// sent to would depend on list order.
			if k, dup := owner[d]; dup {
				if k == i {
					p.add(path, "%q listed twice", d)
				} else {
					p.add(path, "%q is already owned by organizations[%d] (%s)", d, k, c.Organizations[k].Name)
				}
				continue
			}
			owner[d] = i
		}
		u, err := url.Parse(o.Issuer)
		switch {
		case o.Issuer == "":
			p.add(at+".issuer", "required")
		case err != nil || !u.IsAbs() || u.Host == "" || u.User != nil:
			p.add(at+".issuer", "%q is not an absolute URL", o.Issuer)
		case u.RawQuery != "" || u.Fragment != "":
			p.add(at+".issuer", "%q must not have a query or fragment", o.Issuer)
		case u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname())):
			p.add(at+".issuer", "%q must use https unless the host is localhost, 127.0.0.1 or [::1]", o.Issuer)
		}
		if o.ClientID == "" {
			p.add(at+".client_id", "required")
		}
		if o.ClientSecret == "" {
			p.add(at+".client_secret", "required")
		}
		if !slices.Contains(o.Scopes, "openid") {
			p.add(at+".scopes", "must include openid")
		}
	}
}

// validDomain checks a lower-case DNS name with at least two labels.
func validDomain(d string) bool {
	labels := strings.Split(d, ".")
	if len(d) > 253 || len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func oneOf(p *problems, path, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		p.add(path, "%q is not one of %s", v, strings.Join(allowed, ", "))
	}
}

// between checks min ≤ d ≤ max; max 0 means no upper bound.
func between(p *problems, path string, d Duration, minimum, maximum time.Duration) {
	switch {
	case d < 0:
		p.add(path, "must not be negative")
	case d.Std() < minimum:
		p.add(path, "must be at least %s, got %s", Duration(minimum), d)
	case maximum > 0 && d.Std() > maximum:
		p.add(path, "must be at most %s, got %s", Duration(maximum), d)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// suggest returns "; did you mean X?" for the option closest to name (at
// most two edits away), or "".
func suggest(name string, options []string) string {
	best, bestDist := "", 3
	for _, o := range options {
		if d := editDistance(strings.ToLower(name), strings.ToLower(o)); d < bestDist {
			best, bestDist = o, d
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean " + best + "?"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
