package bench

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeLogin imitates Latchkey's browser sign-in closely enough to drive
// the signin scenario: authorize → identify → password (mails a code
// over SMTP) → code → remember → backup-code (first sign-in of a user) →
// redirect to the client with code and state → token (PKCE checked).
type fakeLogin struct {
	t        *testing.T
	srv      *httptest.Server
	issuer   string
	smtpAddr string
	users    map[string]string // email → password
	redirect string

	mu                      sync.Mutex
	n                       int
	flows                   map[string]*loginFlow // id → flow
	codes                   map[string]*loginFlow // authorization code → flow
	seen                    map[string]bool       // users who saved a backup code
	perUser                 map[string]int        // sign-ins per user
	inFlight                map[string]bool       // users being signed in now
	overlap                 int                   // two flows of one user at once
	returning               map[string]int        // sign-ins that came from the browser of the user's previous one
	authorizes, promptLogin int                   // authorize requests, and those with prompt=login

	tokens atomic.Int64
}

type loginFlow struct {
	id, cookie, csrf                     string
	clientID, redirect, state, nonce, ch string
	email, mailed                        string
	step                                 string
}

func newFakeLogin(t *testing.T, smtpAddr string, users map[string]string) *fakeLogin {
	f := &fakeLogin{t: t, smtpAddr: smtpAddr, users: users, redirect: "http://rp.invalid/callback",
		flows: map[string]*loginFlow{}, codes: map[string]*loginFlow{}, seen: map[string]bool{},
		perUser: map[string]int{}, inFlight: map[string]bool{}, returning: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": f.issuer, "authorization_endpoint": f.issuer + "/authorize",
			"token_endpoint": f.issuer + "/token", "jwks_uri": f.issuer + "/jwks"})
	})
	mux.HandleFunc("GET /authorize", f.authorize)
	mux.HandleFunc("GET /login/{step...}", f.page)
	mux.HandleFunc("POST /login/{step...}", f.submit)
	mux.HandleFunc("POST /token", f.token)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.issuer = f.srv.URL
	return f
}

func (f *fakeLogin) next() string {
	f.n++
	return fmt.Sprintf("%06d", 100000+f.n*7919%900000)
}

func (f *fakeLogin) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != "app" || q.Get("redirect_uri") != f.redirect || q.Get("response_type") != "code" ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("scope") != "openid email" {
		http.Error(w, "bad authorize request "+r.URL.RawQuery, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.authorizes++
	if q.Get("prompt") == "login" {
		f.promptLogin++
	}
	fl := &loginFlow{id: "ar" + f.next(), cookie: "b" + f.next(), csrf: "c" + f.next(), clientID: "app",
		redirect: f.redirect, state: q.Get("state"), nonce: q.Get("nonce"), ch: q.Get("code_challenge"), step: "identify"}
	f.flows[fl.id] = fl
	f.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "lk_browser", Value: fl.cookie, Path: "/", HttpOnly: true})
	http.Redirect(w, r, "/login/identify?id="+fl.id, http.StatusSeeOther)
}

// flow finds the flow of a request and checks the browser's cookie.
func (f *fakeLogin) flow(r *http.Request, id string) *loginFlow {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := f.flows[id]
	c, err := r.Cookie("lk_browser")
	if fl == nil || err != nil || c.Value != fl.cookie {
		return nil
	}
	return fl
}

const pageTop = `<!doctype html><html><head><title>Sign in</title></head><body><main class="card"><h1>Sign in</h1>`

func (f *fakeLogin) page(w http.ResponseWriter, r *http.Request) {
	fl := f.flow(r, r.URL.Query().Get("id"))
	step := r.PathValue("step")
	if fl == nil || fl.step != step {
		http.Error(w, "no such sign-in or wrong step", http.StatusBadRequest)
		return
	}
	hidden := fmt.Sprintf(`<input type="hidden" name="csrf" value="%s">`+"\n"+`<input type="hidden" name="id" value="%s">`, html.EscapeString(fl.csrf), fl.id)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, pageTop)
	switch step {
	case "identify":
		// A decoy first: the session-email form (hidden email), as Latchkey shows it.
		fmt.Fprintf(w, `<form method="post" action="/login/identify">%s<input type="hidden" name="email" value="someone@else.test"><button type="submit">Continue as someone</button></form>`, hidden)
		fmt.Fprintf(w, `<form method="post" action="/login/identify">%s<label for="email">Email</label><input id="email" name="email" type="email" required><button type="submit">Continue</button></form>`, hidden)
	case "password":
		fmt.Fprintf(w, `<p class="who">%s</p><FORM METHOD="POST" ACTION="/login/password">%s<input type="email" name="username" value="%s" hidden readonly><input id=password name=password type=password required><button type="submit">Sign in</button></FORM>`, fl.email, hidden, fl.email)
		fmt.Fprintf(w, `<form method="post" action="/login/restart" class="inline">%s<button type="submit" class="link">Use another account</button></form>`, hidden)
	case "code":
		fmt.Fprintf(w, `<form method="post" action="/login/code">%s<input type="hidden" name="method" value="email"><input id="code" name="code" type="text" inputmode="numeric"><button type="submit">Verify</button></form>`, hidden)
		fmt.Fprintf(w, `<div class="alternatives"><form method="post" action="/login/code/send" class="inline">%s<button type="submit" class="link">Get code by email</button></form><a href="/login/code?id=%s&amp;method=backup">Use a backup code</a></div>`, hidden, fl.id)
	case "remember":
		fmt.Fprintf(w, `<form method="post" action="/login/remember">%s<p>Keep this browser signed in?</p><button type="submit" name="choice" value="stay">Stay</button><button type="submit" name="choice" value="no" class="secondary">Not now</button></form>`, hidden)
	case "backup-code":
		fmt.Fprintf(w, `<p class="backup-code"><code>ABCD-EFGH</code></p><form method="post" action="/login/backup-code">%s<label class="check"><input type="checkbox" name="saved" value="yes" required> I saved my backup code</label><button type="submit">Continue</button></form>`, hidden)
	}
	fmt.Fprint(w, `</main></body></html>`)
}

func (f *fakeLogin) submit(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	fl := f.flow(r, r.PostForm.Get("id"))
	step := r.PathValue("step")
	if fl == nil || fl.step != step || r.PostForm.Get("csrf") != fl.csrf {
		http.Error(w, "bad form (csrf, id or step)", http.StatusForbidden)
		return
	}
	go1 := func(next string) {
		f.mu.Lock()
		fl.step = next
		f.mu.Unlock()
		http.Redirect(w, r, "/login/"+next+"?id="+fl.id, http.StatusSeeOther)
	}
	switch step {
	case "identify":
		email := r.PostForm.Get("email")
		if _, ok := f.users[email]; !ok {
			http.Error(w, "unknown user "+email, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		fl.email = email
		if c, err := r.Cookie("lk_known"); err == nil && c.Value == knownValue(email) {
			f.returning[email]++
		}
		if f.inFlight[email] {
			f.overlap++
		}
		f.inFlight[email] = true
		f.mu.Unlock()
		go1("password")
	case "password":
		if r.PostForm.Get("password") != f.users[fl.email] || r.PostForm.Get("username") != fl.email {
			http.Error(w, "wrong password", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		code := f.next()
		fl.mailed = code
		f.mu.Unlock()
		msg := "From: Latchkey <noreply@latchkey.test>\r\nTo: " + fl.email + "\r\nSubject: Your sign-in code\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\n\r\nYour code is " + code + ". It is valid for 10 minutes.\r\n"
		if err := smtp.SendMail(f.smtpAddr, nil, "noreply@latchkey.test", []string{fl.email}, []byte(msg)); err != nil {
			http.Error(w, "mail: "+err.Error(), http.StatusInternalServerError)
			return
		}
		go1("code")
	case "code":
		if r.PostForm.Get("code") != fl.mailed || r.PostForm.Get("method") != "email" {
			http.Error(w, "wrong code", http.StatusBadRequest)
			return
		}
		go1("remember")
	case "remember":
		if r.PostForm.Get("choice") != "no" {
			http.Error(w, "want choice=no, got "+r.PostForm.Get("choice"), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		first := !f.seen[fl.email]
		f.mu.Unlock()
		if first {
			go1("backup-code")
			return
		}
		f.finish(w, r, fl)
	case "backup-code":
		if r.PostForm.Get("saved") != "yes" {
			http.Error(w, "not saved", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.seen[fl.email] = true
		f.mu.Unlock()
		f.finish(w, r, fl)
	default:
		http.Error(w, "no such step", http.StatusNotFound)
	}
}

func (f *fakeLogin) finish(w http.ResponseWriter, r *http.Request, fl *loginFlow) {
	f.mu.Lock()
	code := "code" + f.next()
	f.codes[code] = fl
	fl.step = "done"
	delete(f.inFlight, fl.email)
	f.perUser[fl.email]++
	f.mu.Unlock()
	// A browser that finished a sign-in is known for that user (Latchkey's
	// known-browser record): the next sign-in in it is a returning one.
	http.SetCookie(w, &http.Cookie{Name: "lk_known", Value: knownValue(fl.email), Path: "/", HttpOnly: true})
	http.Redirect(w, r, fl.redirect+"?"+url.Values{"code": {code}, "state": {fl.state}}.Encode(), http.StatusFound)
}

func knownValue(email string) string { return strings.NewReplacer("@", "-", ".", "-").Replace(email) }

func (f *fakeLogin) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	id, secret, ok := r.BasicAuth()
	f.mu.Lock()
	fl := f.codes[r.PostForm.Get("code")]
	delete(f.codes, r.PostForm.Get("code"))
	f.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case !ok || id != "app" || secret != "app-secret":
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
	case fl == nil || r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("redirect_uri") != fl.redirect:
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
	case base64.RawURLEncoding.EncodeToString(sum[:]) != fl.ch:
		http.Error(w, `{"error":"invalid_grant","error_description":"PKCE"}`, http.StatusBadRequest)
	default:
		f.tokens.Add(1)
		payload, _ := json.Marshal(map[string]string{"iss": f.issuer, "sub": fl.email, "aud": "app", "nonce": fl.nonce})
		idt := "eyJhbGciOiJFUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(payload) + ".c2ln"
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"at","token_type":"Bearer","id_token":%q}`, idt)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// signinFixture is a fake provider with users bench0 … bench{n-1} and the
// options of a short signin run against it with the given workers.
func signinFixture(t *testing.T, n, workers int) (*fakeLogin, Options) {
	smtpAddr := freeAddr(t)
	users := map[string]string{}
	for i := range n {
		users[fmt.Sprintf("bench%d@example.com", i)] = "Bench-password-123"
	}
	f := newFakeLogin(t, smtpAddr, users)
	return f, Options{Issuer: f.issuer, ClientID: "app", ClientSecret: "app-secret", Scenario: ScenarioSignin,
		Concurrency: workers, Duration: 400 * 1e6, Warmup: 100 * 1e6, SMTPListen: smtpAddr,
		Users: "bench%d@example.com:Bench-password-123", UsersCount: n, RedirectURI: f.redirect}
}

func TestSignin(t *testing.T) {
	f, o := signinFixture(t, 8, 4)
	r := run(t, o)
	checkShape(t, r)
	if r.Requests == 0 || r.Errors != 0 {
		t.Fatalf("%d sign-ins, errors %v, warnings %v", r.Requests, r.ErrorsByStatus, r.Warnings)
	}
	if got := f.tokens.Load(); got < int64(r.Requests) {
		t.Errorf("server issued %d ID tokens, bench counted %d sign-ins", got, r.Requests)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.overlap != 0 {
		t.Errorf("%d times two workers signed in the same user at once", f.overlap)
	}
	if len(f.perUser) != 8 {
		t.Errorf("signed in %d distinct users, want all 8: %v", len(f.perUser), f.perUser)
	}
}

// TestSigninKeepBrowser: with KeepBrowser every sign-in after a user's
// first comes from the browser of the user's previous one; without it,
// none does.
func TestSigninKeepBrowser(t *testing.T) {
	for _, keep := range []bool{false, true} {
		f, o := signinFixture(t, 4, 2)
		o.KeepBrowser = keep
		r := run(t, o)
		if r.Requests == 0 || r.Errors != 0 {
			t.Fatalf("keep %v: %d sign-ins, errors %v, warnings %v", keep, r.Requests, r.ErrorsByStatus, r.Warnings)
		}
		f.mu.Lock()
		for email, n := range f.perUser {
			got, ok := f.returning[email], f.returning[email] == 0
			if keep { // every sign-in but the first, and one may be cut off after identify
				ok = got == n-1 || got == n
			}
			if !ok {
				t.Errorf("keep %v: %s signed in %d times, %d of them from the previous browser", keep, email, n, got)
			}
		}
		if want := map[bool]int{true: f.authorizes, false: 0}[keep]; f.promptLogin != want {
			t.Errorf("keep %v: %d of %d authorize requests asked prompt=login, want %d", keep, f.promptLogin, f.authorizes, want)
		}
		if keep && len(f.returning) == 0 {
			t.Errorf("keep %v: no sign-in came from a known browser: %v", keep, f.perUser)
		}
		f.mu.Unlock()
	}
}

func TestSigninFailures(t *testing.T) {
	smtpAddr := freeAddr(t)
	f := newFakeLogin(t, smtpAddr, map[string]string{"a@example.com": "right", "b@example.com": "right"})
	dir := t.TempDir()
	usersFile := filepath.Join(dir, "users.txt")
	if err := os.WriteFile(usersFile, []byte("# comment\na@example.com:wrong\nb@example.com:wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := Options{Issuer: f.issuer, ClientID: "app", ClientSecret: "app-secret", Scenario: ScenarioSignin,
		Concurrency: 2, Duration: 200 * 1e6, Warmup: -1, SMTPListen: smtpAddr, Users: usersFile, RedirectURI: f.redirect}
	r := run(t, o)
	if r.Requests != 0 || r.Errors == 0 || r.ErrorsByStatus["status 400 at /login/password"] != r.Errors {
		t.Fatalf("wrong passwords: %d ok, errors %v", r.Requests, r.ErrorsByStatus)
	}
	quoted := 0
	for _, w := range r.Warnings {
		if strings.Contains(w, "wrong password") {
			quoted++
		}
	}
	if quoted != 1 {
		t.Errorf("want one warning quoting the server (once per kind of failure): %v", r.Warnings)
	}
	// Too few users for the workers is a usage error.
	o.Concurrency = 3
	if _, err := Run(t.Context(), o, nil); !IsUsage(err) {
		t.Errorf("3 workers, 2 users: %v", err)
	}
}

func TestParsePage(t *testing.T) {
	body := []byte(`<!doctype html><html><body>
<p class="error" role="alert">Wrong <b>password</b>.</p>
<form method="post" action="/login/identify">
<input type="hidden" name="csrf" value="a&amp;b">
<input type="hidden" name="id" value="ar1">
<input type="hidden" name="email" value="old@example.com">
<button type="submit">Continue as old</button>
</form>
<form method='POST' action='/login/identify'>
<input type=hidden name=csrf value="a&amp;b"><input type="hidden" name="id" value="ar1">
<input id="email" name="email" type="email" value="" autofocus>
<input type="checkbox" name="remember" value="1">
<input type="checkbox" name="terms" value="ok" checked>
<button type="submit" name="choice" value="go">Continue</button>
</form>
<form action="/search"><input name="q"></form>
</body></html>`)
	p := parsePage(body)
	if p.Alert != "Wrong password." {
		t.Errorf("alert = %q", p.Alert)
	}
	if len(p.Forms) != 3 || p.Forms[2].Method != "get" || p.Forms[1].Method != "post" {
		t.Fatalf("forms = %+v", p.Forms)
	}
	pageURL, _ := url.Parse("http://op.test/login/identify?id=ar1")
	form, action, ok := pickForm(p.Forms, pageURL, url.Values{"email": {"new@example.com"}})
	if !ok || action.String() != "http://op.test/login/identify" {
		t.Fatalf("pick: %v %v", ok, action)
	}
	got := form.values(url.Values{"email": {"new@example.com"}})
	want := url.Values{"csrf": {"a&b"}, "id": {"ar1"}, "email": {"new@example.com"}, "terms": {"ok"}}
	if got.Encode() != want.Encode() {
		t.Errorf("values = %v, want %v (the visible form, unchecked boxes and buttons left out)", got, want)
	}
	if _, _, ok := pickForm(p.Forms, pageURL, url.Values{"password": {"x"}}); ok {
		t.Error("picked a form for a field no form has")
	}
	// Unclosed form and garbage still yield what was read.
	p = parsePage([]byte(`<form method=post action=x><input type=hidden name=a value=1><input name=b value=2`))
	if len(p.Forms) != 1 || !slices.ContainsFunc(p.Forms[0].Fields, func(f formField) bool { return f.Name == "a" && f.Value == "1" }) {
		t.Errorf("unclosed form: %+v", p.Forms)
	}
}

func TestParseUsers(t *testing.T) {
	us, err := parseUsers("bench%d@example.com:pw:with:colons-%d", 3)
	if err != nil || len(us) != 3 || us[2] != (user{"bench2@example.com", "pw:with:colons-2"}) {
		t.Fatalf("pattern: %v %v", us, err)
	}
	if _, err := parseUsers("bench%d@example.com:pw", 0); !IsUsage(err) {
		t.Errorf("pattern without count: %v", err)
	}
	p := filepath.Join(t.TempDir(), "u.txt")
	_ = os.WriteFile(p, []byte("a@x.test:one\r\n\n# c\nb@x.test:two:three\n"), 0o600)
	us, err = parseUsers(p, 0)
	if err != nil || len(us) != 2 || us[1] != (user{"b@x.test", "two:three"}) || us[0].Password != "one" {
		t.Fatalf("file: %v %v", us, err)
	}
	_ = os.WriteFile(p, []byte("no-colon\n"), 0o600)
	if _, err := parseUsers(p, 0); err == nil {
		t.Error("a line without a password was accepted")
	}
}

func TestIDTokenNonce(t *testing.T) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"nonce":"n-1","sub":"s"}`))
	if n, err := idTokenNonce("h." + payload + ".s"); err != nil || n != "n-1" {
		t.Errorf("nonce %q %v", n, err)
	}
	if _, err := idTokenNonce("not-a-jws"); err == nil {
		t.Error("accepted a non-JWS")
	}
}
