package federation

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// OIDCConfig is everything one OIDC connector needs.
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	RedirectURL  string
	Scopes       []string
	Claims       ClaimMapping
	// HTTPClient makes every upstream call; it must carry a timeout.
	HTTPClient *http.Client
	// Timeout bounds each call (context deadline) in addition to the
	// client's own timeout; default 10 s.
	Timeout time.Duration
	// Now stands in for a missing auth_time; default time.Now.
	Now func() time.Time
}

// oidcConnector is a Connector on coreos/go-oidc and x/oauth2.
type oidcConnector struct {
	cfg        OIDCConfig
	provider   *oidc.Provider
	verifier   *oidc.IDTokenVerifier
	oauth      *oauth2.Config
	endSession string
	// onUnreachable is called when a call could not reach the upstream
	// (the registry drops its cached discovery).
	onUnreachable func()
}

var _ Connector = (*oidcConnector)(nil)

// discover fetches the upstream's discovery document (the issuer in it
// must equal cfg.Issuer) and returns its connector.
func discover(ctx context.Context, cfg OIDCConfig) (*oidcConnector, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = NewHTTPClient(cfg.Timeout)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, cfg.HTTPClient), cfg.Timeout)
	defer cancel()
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, fail(KindConfig, "discovery", err)
		}
		return nil, fail(KindUnreachable, "discovery", err)
	}
	ep := p.Endpoint()
	for _, u := range []string{ep.AuthURL, ep.TokenURL} {
		if !validEndpoint(u) {
			return nil, fail(KindConfig, "discovery", fmt.Errorf("endpoint %q is not an http(s) URL", u))
		}
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = p.Claims(&meta)
	if !validEndpoint(meta.EndSession) {
		meta.EndSession = ""
	}
	c := &oidcConnector{
		cfg:        cfg,
		provider:   p,
		verifier:   p.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		endSession: meta.EndSession,
		oauth: &oauth2.Config{
			ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: ep,
			RedirectURL: cfg.RedirectURL, Scopes: cfg.Scopes,
		},
	}
	return c, nil
}

func validEndpoint(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// AuthURL implements Connector.
func (c *oidcConnector) AuthURL(state, nonce, verifier string, o AuthOptions) string {
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if o.Prompt != "" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", o.Prompt))
	}
	if o.MaxAge != nil && *o.MaxAge >= 0 {
		opts = append(opts, oauth2.SetAuthURLParam("max_age", strconv.Itoa(*o.MaxAge)))
	}
	if o.LoginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", o.LoginHint))
	}
	return c.oauth.AuthCodeURL(state, opts...)
}

// EndSessionURL implements Connector.
func (c *oidcConnector) EndSessionURL() string { return c.endSession }

// Exchange implements Connector.
func (c *oidcConnector) Exchange(ctx context.Context, code, verifier, nonce string) (Identity, error) {
	id, err := c.exchange(ctx, code, verifier, nonce)
	if err != nil && KindOf(err) == KindUnreachable && c.onUnreachable != nil {
		c.onUnreachable()
	}
	return id, err
}

func (c *oidcConnector) exchange(ctx context.Context, code, verifier, nonce string) (Identity, error) {
	if code == "" || len(code) > 4096 {
		return Identity{}, fail(KindRejected, "token", errors.New("missing or oversized code"))
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, c.cfg.HTTPClient), c.cfg.Timeout)
	defer cancel()
	tok, err := c.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return Identity{}, fail(KindRejected, "token", err)
		}
		return Identity{}, fail(classifyTransport(err), "token", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, fail(KindInvalidToken, "token", errors.New("no id_token in the token response"))
	}
	idt, err := c.verifier.Verify(ctx, raw)
	if err != nil {
		if isNetErr(err) {
			return Identity{}, fail(KindUnreachable, "verify", err)
		}
		return Identity{}, fail(KindInvalidToken, "verify", err)
	}
	// go-oidc checks signature, iss, aud and exp; the rest is ours.
	if nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return Identity{}, fail(KindInvalidToken, "verify", errors.New("nonce mismatch"))
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, fail(KindInvalidToken, "verify", err)
	}
	azp, _ := claims["azp"].(string)
	if len(idt.Audience) > 1 && azp == "" {
		return Identity{}, fail(KindInvalidToken, "verify", errors.New("several audiences and no azp"))
	}
	if azp != "" && azp != c.cfg.ClientID {
		return Identity{}, fail(KindInvalidToken, "verify", fmt.Errorf("azp %q is not our client id", azp))
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return Identity{}, fail(KindInvalidToken, "verify", err)
		}
	}
	if idt.Subject == "" || len(idt.Subject) > 255 {
		return Identity{}, fail(KindInvalidToken, "verify", errors.New("missing or oversized sub"))
	}
	m := c.cfg.Claims.withDefaults()
	if _, ok := claims[m.Email]; !ok && c.provider.UserInfoEndpoint() != "" && tok.AccessToken != "" {
		// The ID token may carry only the protocol claims; userinfo has
		// the rest (OIDC Core 5.4). Its sub must be the ID token's (5.3.2).
		ui, err := c.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return Identity{}, fail(classifyTransport(err), "userinfo", err)
		}
		if ui.Subject != idt.Subject {
			return Identity{}, fail(KindInvalidToken, "userinfo", errors.New("userinfo sub differs from the id token's"))
		}
		var extra map[string]any
		if err := ui.Claims(&extra); err == nil {
			for k, v := range extra {
				if _, ok := claims[k]; !ok {
					claims[k] = v
				}
			}
		}
	}
	id := mapClaims(claims, m, c.cfg.Now())
	id.Issuer, id.Subject, id.RawIDToken = idt.Issuer, idt.Subject, raw
	return id, nil
}

// classifyTransport tells an unreachable upstream from one that answered.
func classifyTransport(err error) Kind {
	if isNetErr(err) {
		return KindUnreachable
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
		return KindRejected
	}
	// Anything else (5xx, garbage instead of JSON) is the upstream's
	// trouble: the user can only try again later.
	return KindUnreachable
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrDeadlineExceeded)
}
