package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// prepare builds one iteration per worker for the scenario, doing the
// unmeasured setup (tokens, users, the SMTP sink). cleanup, when not nil,
// runs after the measurement.
func (e *env) prepare(ctx context.Context) (iters []iteration, cleanup func(), err error) {
	switch e.o.Scenario {
	case ScenarioDiscovery:
		return e.getEach(e.o.Issuer+"/.well-known/openid-configuration", ""), nil, nil
	case ScenarioJWKS:
		u, err := e.endpoint("jwks_uri", e.disc.JWKSURI)
		if err != nil {
			return nil, nil, err
		}
		return e.getEach(u, ""), nil, nil
	case ScenarioClientCredentials:
		return e.prepareClientCredentials()
	case ScenarioRefresh:
		return e.prepareRefresh()
	case ScenarioUserinfo:
		return e.prepareUserinfo(ctx)
	case ScenarioIntrospect:
		return e.prepareIntrospect(ctx)
	case ScenarioSignin:
		return e.prepareSignin(ctx)
	}
	return nil, nil, usagef("unknown scenario %q", e.o.Scenario)
}

// getEach: every worker GETs u (with the Authorization header auth, if any).
func (e *env) getEach(u, auth string) []iteration {
	iters := make([]iteration, e.o.Concurrency)
	for i := range iters {
		iters[i] = func(ctx context.Context) outcome {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return outcome{errKey: "request error"}
			}
			if auth != "" {
				req.Header["Authorization"] = []string{auth}
			}
			status, _, err := e.do(req, false)
			return classify(status, err)
		}
	}
	return iters
}

// ccBody is the client_credentials request body.
func (e *env) ccBody() string {
	_, form := e.clientAuth()
	form.Set("grant_type", "client_credentials")
	if e.o.Scope != "" {
		form.Set("scope", e.o.Scope)
	}
	return form.Encode()
}

func (e *env) prepareClientCredentials() ([]iteration, func(), error) {
	tokenURL, err := e.endpoint("token_endpoint", e.disc.TokenEndpoint)
	if err != nil {
		return nil, nil, err
	}
	auth, _ := e.clientAuth()
	body := e.ccBody()
	iters := make([]iteration, e.o.Concurrency)
	for i := range iters {
		iters[i] = func(ctx context.Context) outcome {
			req, err := e.postForm(ctx, tokenURL, auth, body)
			if err != nil {
				return outcome{errKey: "request error"}
			}
			status, _, err := e.do(req, false)
			return classify(status, err)
		}
	}
	return iters, nil, nil
}

// tokenResponse is the part of a token response the bench reads.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// readTokens reads a file of refresh tokens, one a line (blank lines and
// lines starting with # are skipped).
func readTokens(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no tokens", path)
	}
	return out, nil
}

// refreshTokens reads --refresh-token-file and warns when the workers
// must share tokens.
func (e *env) refreshTokens() ([]string, error) {
	toks, err := readTokens(e.o.RefreshTokenFile)
	if err != nil {
		return nil, fmt.Errorf("--refresh-token-file: %w", err)
	}
	if len(toks) < e.o.Concurrency {
		e.warn("%d refresh token(s) for %d workers: workers share tokens, which works only for a provider that does not rotate refresh tokens; give one token per worker to follow rotating chains",
			len(toks), e.o.Concurrency)
	}
	return toks, nil
}

// postJSON POSTs the form body to endpoint and decodes a 200 response
// into v. A body that does not decode is an error with status 200.
func (e *env) postJSON(ctx context.Context, endpoint, auth, body string, v any) (int, error) {
	req, err := e.postForm(ctx, endpoint, auth, body)
	if err != nil {
		return 0, err
	}
	status, b, err := e.do(req, true)
	if err == nil && status == http.StatusOK {
		if jerr := json.Unmarshal(b, v); jerr != nil {
			return status, fmt.Errorf("response body: %w", jerr)
		}
	}
	return status, err
}

// refreshOnce redeems rt once at the token endpoint.
// prefix is the rest of the form, encoded.
func (e *env) refreshOnce(ctx context.Context, tokenURL, auth, prefix, rt string) (int, tokenResponse, error) {
	var tr tokenResponse
	status, err := e.postJSON(ctx, tokenURL, auth, prefix+"&refresh_token="+url.QueryEscape(rt), &tr)
	return status, tr, err
}

// prepareRefresh: each worker follows its own chain. It replaces its
// token with the one each response carries (a provider that does not
// rotate returns none, and the worker keeps the old one). A 4xx breaks
// the chain: the worker records the error and stops.
func (e *env) prepareRefresh() ([]iteration, func(), error) {
	tokenURL, err := e.endpoint("token_endpoint", e.disc.TokenEndpoint)
	if err != nil {
		return nil, nil, err
	}
	toks, err := e.refreshTokens()
	if err != nil {
		return nil, nil, err
	}
	auth, form := e.clientAuth()
	form.Set("grant_type", "refresh_token")
	prefix := form.Encode()
	iters := make([]iteration, e.o.Concurrency)
	for i := range iters {
		rt := toks[i%len(toks)]
		iters[i] = func(ctx context.Context) outcome {
			status, tr, err := e.refreshOnce(ctx, tokenURL, auth, prefix, rt)
			if err != nil {
				if status == http.StatusOK {
					return outcome{errKey: "bad token response"}
				}
				return outcome{errKey: "transport error"}
			}
			out := classify(status, nil)
			if out.ok && tr.RefreshToken != "" {
				rt = tr.RefreshToken
			}
			if status >= 400 && status < 500 {
				out.stop = true
			}
			return out
		}
	}
	return iters, nil, nil
}

// prepareUserinfo: one access token per distinct refresh token (redeemed
// once, before the run), then every worker GETs userinfo with it.
func (e *env) prepareUserinfo(ctx context.Context) ([]iteration, func(), error) {
	tokenURL, err := e.endpoint("token_endpoint", e.disc.TokenEndpoint)
	if err != nil {
		return nil, nil, err
	}
	userinfo, err := e.endpoint("userinfo_endpoint", e.disc.UserinfoEndpoint)
	if err != nil {
		return nil, nil, err
	}
	toks, err := e.refreshTokens()
	if err != nil {
		return nil, nil, err
	}
	n := min(len(toks), e.o.Concurrency)
	auth, form := e.clientAuth()
	form.Set("grant_type", "refresh_token")
	ats := make([]string, n)
	for i := range ats {
		status, tr, err := e.refreshOnce(ctx, tokenURL, auth, form.Encode(), toks[i])
		if err != nil || status != http.StatusOK || tr.AccessToken == "" {
			return nil, nil, fmt.Errorf("userinfo setup: refresh token %d of %s: status %d, %v", i+1, e.o.RefreshTokenFile, status, err)
		}
		ats[i] = tr.AccessToken
	}
	iters := make([]iteration, e.o.Concurrency)
	for i := range iters {
		iters[i] = e.getEach(userinfo, "Bearer "+ats[i%n])[0]
	}
	return iters, nil, nil
}

// prepareIntrospect: the client obtains one access token per worker with
// client_credentials, then introspects its own token.
func (e *env) prepareIntrospect(ctx context.Context) ([]iteration, func(), error) {
	tokenURL, err := e.endpoint("token_endpoint", e.disc.TokenEndpoint)
	if err != nil {
		return nil, nil, err
	}
	introspect, err := e.endpoint("introspection_endpoint", e.disc.IntrospectionEndpoint)
	if err != nil {
		return nil, nil, err
	}
	auth, form := e.clientAuth()
	ccBody := e.ccBody()
	iters := make([]iteration, e.o.Concurrency)
	for i := range iters {
		var tr tokenResponse
		status, err := e.postJSON(ctx, tokenURL, auth, ccBody, &tr)
		if err != nil || status != http.StatusOK || tr.AccessToken == "" {
			return nil, nil, fmt.Errorf("introspect setup: client_credentials: status %d, %v", status, err)
		}
		f := maps.Clone(form)
		f.Set("token", tr.AccessToken)
		f.Set("token_type_hint", "access_token")
		body := f.Encode()
		if i == 0 {
			var ir struct {
				Active bool `json:"active"`
			}
			status, err := e.postJSON(ctx, introspect, auth, body, &ir)
			if err != nil || status != http.StatusOK {
				return nil, nil, fmt.Errorf("introspect setup: status %d, %v", status, err)
			}
			if !ir.Active {
				e.warn("the provider says the client's own token is not active: the run measures the inactive path")
			}
		}
		iters[i] = func(ctx context.Context) outcome {
			req, err := e.postForm(ctx, introspect, auth, body)
			if err != nil {
				return outcome{errKey: "request error"}
			}
			status, _, err := e.do(req, false)
			return classify(status, err)
		}
	}
	return iters, nil, nil
}
