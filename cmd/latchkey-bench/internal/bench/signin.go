package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/latchkey/latchkey/login/mail/mailsink"
)

// user is one account the signin scenario signs in.
type user struct{ Email, Password string }

// parseUsers reads --users: a pattern holding %d (expanded for 0 …
// count-1, e.g. "bench%d@example.com:Bench-password-123"), or a file of
// "email:password" lines. The password is everything after the first ':'.
func parseUsers(spec string, count int) ([]user, error) {
	split := func(line string) (user, error) {
		email, pw, ok := strings.Cut(line, ":")
		email = strings.TrimSpace(email)
		if !ok || email == "" || pw == "" {
			return user{}, fmt.Errorf("%q: want email:password", line)
		}
		return user{Email: email, Password: pw}, nil
	}
	if strings.Contains(spec, "%d") {
		if count <= 0 {
			return nil, usagef("--users %q is a pattern: give --users-count", spec)
		}
		out := make([]user, count)
		for i := range out {
			u, err := split(strings.ReplaceAll(spec, "%d", strconv.Itoa(i)))
			if err != nil {
				return nil, usagef("--users: %v", err)
			}
			out[i] = u
		}
		return out, nil
	}
	f, err := os.Open(spec)
	if err != nil {
		return nil, fmt.Errorf("--users: %w", err)
	}
	defer f.Close()
	var out []user
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		u, err := split(l)
		if err != nil {
			return nil, fmt.Errorf("--users %s:%d: %v", spec, n, err)
		}
		out = append(out, u)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if count > 0 && count < len(out) {
		out = out[:count]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--users %s: no users", spec)
	}
	return out, nil
}

// mailWait bounds the wait for a code mail. The mail is sent before the
// code page is served, so it is normally there already; a provider that
// throttles codes sends none, and the iteration fails after this long.
const mailWait = 5 * time.Second

// Latchkey's throttle on mailed codes: at most codesPerWindow per account
// in any codeWindow.
const (
	codesPerWindow = 5
	codeWindow     = 15 * time.Minute
)

// signer drives browserless sign-ins through Latchkey's pages.
type signer struct {
	e          *env
	sink       *mailsink.Sink
	authURL    string
	tokenURL   string
	authHeader string
	authForm   url.Values
	warned     sync.Map // error key → struct{}: explain each kind of failure once
}

func (e *env) prepareSignin(ctx context.Context) ([]iteration, func(), error) {
	authURL, err := e.endpoint("authorization_endpoint", e.disc.AuthorizationEndpoint)
	if err != nil {
		return nil, nil, err
	}
	tokenURL, err := e.endpoint("token_endpoint", e.disc.TokenEndpoint)
	if err != nil {
		return nil, nil, err
	}
	users, err := parseUsers(e.o.Users, e.o.UsersCount)
	if err != nil {
		return nil, nil, err
	}
	c := e.o.Concurrency
	if len(users) < c {
		return nil, nil, usagef("signin: %d users for %d workers: every worker needs its own users (codes are mailed per account)", len(users), c)
	}
	// Latchkey mails at most codesPerWindow codes per account per 15
	// minutes: beyond that the iterations fail with "mail timeout".
	run := e.o.Warmup + e.o.Duration
	windows := int((run + codeWindow - 1) / codeWindow)
	if capacity := codesPerWindow * len(users) * windows; float64(capacity)/run.Seconds() < 200 {
		e.warn("signin: %d users allow at most %d sign-ins in this %v run (%.0f/s) before the provider throttles codes (%d per account per %v); seed more users if the server is faster",
			len(users), capacity, run, float64(capacity)/run.Seconds(), codesPerWindow, codeWindow)
	}
	sink, err := mailsink.Start(e.o.SMTPListen)
	if err != nil {
		return nil, nil, fmt.Errorf("signin: SMTP sink on %s: %w", e.o.SMTPListen, err)
	}
	cleanup := func() { sink.Close() }
	s := &signer{e: e, sink: sink, authURL: authURL, tokenURL: tokenURL}
	s.authHeader, s.authForm = e.clientAuth()

	// With KeepBrowser each user has one cookie jar for the run, used only
	// by the worker that owns the user.
	var jars []http.CookieJar
	if e.o.KeepBrowser {
		jars = make([]http.CookieJar, len(users))
		for i := range jars {
			jars[i], _ = cookiejar.New(nil)
		}
	}
	iters := make([]iteration, c)
	for w := range iters {
		next := w // worker w signs in users w, w+c, w+2c, …: no two workers share a user
		iters[w] = func(ctx context.Context) outcome {
			i := next
			next += c
			if next >= len(users) {
				next = w
			}
			var jar http.CookieJar
			if jars != nil {
				jar = jars[i]
			}
			return s.signIn(ctx, users[i], jar)
		}
	}
	return iters, cleanup, nil
}

// fail is a failed sign-in; detail is printed once per key as a warning.
func (s *signer) fail(key, detail string) outcome {
	if detail != "" {
		if _, dup := s.warned.LoadOrStore(key, struct{}{}); !dup {
			s.e.warn("signin: %s: %s", key, detail)
		}
	}
	return outcome{errKey: key}
}

// fetched is one response of the browser.
type fetched struct {
	status   int
	url      *url.URL // where the redirects ended
	body     []byte
	location string // a redirect out of the issuer (not followed)
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// signIn is one iteration: a browser (jar: the user's own cookie jar
// with KeepBrowser; nil: a new one) goes from the authorize endpoint through the identifier, password, email-code,
// remember and backup-code pages back to the redirect URI, and the code
// is exchanged (with its PKCE verifier) for an ID token.
func (s *signer) signIn(ctx context.Context, u user, jar http.CookieJar) outcome {
	e := s.e
	start := time.Now()
	if jar == nil { // a new browser
		jar, _ = cookiejar.New(nil)
	}
	issuerHost := e.issuerURL.Host
	client := &http.Client{Transport: e.transport, Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host != issuerHost {
				return http.ErrUseLastResponse // the relying party: stop here
			}
			if len(via) >= 20 {
				return errors.New("too many redirects")
			}
			return nil
		}}
	do := func(req *http.Request) (fetched, error) {
		resp, err := client.Do(req)
		if err != nil {
			return fetched{}, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if err != nil {
			return fetched{}, err
		}
		f := fetched{status: resp.StatusCode, url: resp.Request.URL, body: b}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			if loc, err := resp.Location(); err == nil && loc.Host != issuerHost {
				f.location = loc.String()
			}
		}
		return f, nil
	}

	verifier := randomString(32)
	sum := sha256.Sum256([]byte(verifier))
	state, nonce := randomString(12), randomString(12)
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {e.o.ClientID},
		"redirect_uri":          {e.o.RedirectURI},
		"scope":                 {"openid email"},
		"state":                 {state},
		"nonce":                 {nonce},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	if e.o.KeepBrowser {
		// The kept browser still has the user's session: prompt=login asks
		// the provider to authenticate the user again, in that browser,
		// instead of answering from the session.
		q.Set("prompt", "login")
	}
	sep := "?"
	if strings.Contains(s.authURL, "?") {
		sep = "&"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.authURL+sep+q.Encode(), nil)
	if err != nil {
		return s.fail("request error", err.Error())
	}
	p, err := do(req)
	if err != nil {
		return outcome{errKey: "transport error"}
	}

	visits := map[string]int{}
	for step := 0; p.location == ""; step++ {
		if p.status != http.StatusOK {
			return s.fail(fmt.Sprintf("status %d at %s", p.status, p.url.Path), strings.TrimSpace(string(p.body[:min(len(p.body), 200)])))
		}
		path := p.url.Path
		visits[path]++
		if step > 12 || visits[path] > 2 {
			return s.fail("stuck at "+path, parsePage(p.body).Alert)
		}
		var fill url.Values
		switch {
		case strings.HasSuffix(path, "/login/identify"):
			fill = url.Values{"email": {u.Email}}
		case strings.HasSuffix(path, "/login/password"):
			fill = url.Values{"password": {u.Password}}
		case strings.HasSuffix(path, "/login/code"):
			code, key, detail := s.mailedCode(ctx, u.Email, start)
			if key != "" {
				return s.fail(key, detail)
			}
			fill = url.Values{"code": {code}}
		case strings.HasSuffix(path, "/login/remember"):
			fill = url.Values{"choice": {"no"}}
		case strings.HasSuffix(path, "/login/backup-code"):
			fill = url.Values{"saved": {"yes"}}
		default:
			return s.fail("unexpected page "+path, parsePage(p.body).Alert)
		}
		pg := parsePage(p.body)
		form, action, ok := pickForm(pg.Forms, p.url, fill)
		if !ok {
			return s.fail("no form at "+path, "the page has no POST form with the fields "+strings.Join(slices.Sorted(maps.Keys(fill)), ", "))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(form.values(fill).Encode()))
		if err != nil {
			return s.fail("request error", err.Error())
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if p, err = do(req); err != nil {
			return outcome{errKey: "transport error"}
		}
	}

	// Back at the relying party with a code.
	loc, err := url.Parse(p.location)
	if err != nil {
		return s.fail("bad redirect", err.Error())
	}
	cb := loc.Query()
	if ec := cb.Get("error"); ec != "" {
		return s.fail("authorize error "+ec, cb.Get("error_description"))
	}
	if cb.Get("state") != state {
		return s.fail("state mismatch", "the redirect carried state "+strconv.Quote(cb.Get("state")))
	}
	code := cb.Get("code")
	if code == "" {
		return s.fail("no code", "the redirect to "+loc.Redacted()+" has no code")
	}
	form := maps.Clone(s.authForm)
	form.Set("grant_type", "authorization_code")
	form.Set("code", code)
	form.Set("redirect_uri", e.o.RedirectURI)
	form.Set("code_verifier", verifier)
	treq, err := e.postForm(ctx, s.tokenURL, s.authHeader, form.Encode())
	if err != nil {
		return s.fail("request error", err.Error())
	}
	status, body, err := e.do(treq, true)
	if err != nil {
		return outcome{errKey: "transport error"}
	}
	if status != http.StatusOK {
		return s.fail(fmt.Sprintf("token status %d", status), strings.TrimSpace(string(body[:min(len(body), 200)])))
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.IDToken == "" {
		return s.fail("no id_token", "the token response has no ID token")
	}
	if n, err := idTokenNonce(tr.IDToken); err != nil || n != nonce {
		return s.fail("nonce mismatch", fmt.Sprintf("ID token nonce %q, %v", n, err))
	}
	return outcome{ok: true}
}

// mailedCode waits for the code mailed to email since the sign-in began.
// It returns an error key and detail instead when there is none.
func (s *signer) mailedCode(ctx context.Context, email string, since time.Time) (code, key, detail string) {
	wctx, cancel := context.WithTimeout(ctx, mailWait)
	defer cancel()
	for {
		m, err := s.sink.Wait(wctx, email)
		if err != nil {
			if ctx.Err() != nil {
				return "", "cancelled", "" // the run ended
			}
			return "", "mail timeout", fmt.Sprintf("no code mailed to %s within %v (codes are throttled per account: use more users, see --users-count)", email, mailWait)
		}
		if m.At.Before(since) {
			continue // left over from an earlier, failed sign-in
		}
		c, ok := mailsink.Code(m)
		if !ok {
			return "", "no code in mail", fmt.Sprintf("mail to %s: %q", email, m.Subject)
		}
		return c, "", ""
	}
}

// idTokenNonce reads the nonce claim of a JWS without verifying it (the
// bench measures the provider; relying parties verify).
func idTokenNonce(jws string) (string, error) {
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		return "", errors.New("not a compact JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", err
	}
	var c struct {
		Nonce string `json:"nonce"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return "", err
	}
	return c.Nonce, nil
}
