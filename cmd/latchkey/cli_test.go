package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey/latchkey/login/mail"
	"github.com/latchkey/latchkey/login/mail/outbox"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// cli runs one command line against environ and returns the exit code,
// stdout and stderr.
func cli(t *testing.T, environ []string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, environ)
	return code, out.String(), errb.String()
}

func cliEnviron(t *testing.T) []string {
	dir := t.TempDir()
	return []string{
		"LATCHKEY_DATABASE_URL=sqlite:" + filepath.Join(dir, "lk.db"),
		"LATCHKEY_DATA_DIR=" + dir,
		"LATCHKEY_SECRET_KEY=" + strings.Repeat("ab", 32),
		"LATCHKEY_SMTP_URL=log:",
		"LATCHKEY_KEYS_ALGORITHM=ES256",
		"LATCHKEY_LOG_LEVEL=error",
	}
}

func TestCLIUsersAndExitCodes(t *testing.T) {
	t.Parallel()
	env := cliEnviron(t)
	for _, tc := range []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stdout string // substring
	}{
		{"no command", "", nil, exitUsage, ""},
		// No database yet: a command fails instead of making an empty one.
		{"no database yet", "", []string{"user", "list"}, exitFailure, ""},
		{"migrate makes it", "", []string{"migrate"}, exitOK, "up to date"},
		{"unknown command", "", []string{"frobnicate"}, exitUsage, ""},
		{"version", "", []string{"version"}, exitOK, "latchkey"},
		{"create with password", "a long enough password\n", []string{"user", "create", "--email", "ada@example.com", "--name", "Ada", "--region", "EU", "--password-stdin"}, exitOK, "created user ada@example.com"},
		{"duplicate, other case", "a long enough password\n", []string{"user", "create", "--email", "ADA@example.com", "--password-stdin"}, exitConflict, ""},
		{"common password refused", "password123\n", []string{"user", "create", "--email", "bob@example.com", "--password-stdin"}, exitUsage, ""},
		{"missing email", "", []string{"user", "create"}, exitUsage, ""},
		{"header injection in the email", "", []string{"user", "create", "--email", "evil@example.com\r\nBcc: x@example.com"}, exitUsage, ""},
		{"markup in the email", "", []string{"user", "create", "--email", "<script>@example.com"}, exitUsage, ""},
		{"bad flag", "", []string{"user", "create", "--nope"}, exitUsage, ""},
		{"without password: a link", "", []string{"user", "create", "--email", "carol@example.com"}, exitOK, "/account/set-password?token="},
		{"list", "", []string{"user", "list"}, exitOK, "ada@example.com"},
		{"disable", "", []string{"user", "disable", "--email", "carol@example.com"}, exitOK, "disabled"},
		{"disable unknown", "", []string{"user", "disable", "--email", "nobody@example.com"}, exitNotFound, ""},
		{"audit", "", []string{"audit", "list", "--user", "carol@example.com"}, exitOK, "user.disabled"},
		{"keys rotate", "", []string{"keys", "rotate"}, exitOK, "rotated"},
		{"migrate", "", []string{"migrate"}, exitOK, "up to date"},
		{"config print hides the secret", "", []string{"config", "print"}, exitOK, "<redacted>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := cli(t, env, tc.stdin, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			if strings.Contains(out+errOut, strings.Repeat("ab", 32)) {
				t.Fatal("the secret key was printed")
			}
		})
	}
}

// TestCLIClientWhileServing: a client created with the CLI while the server
// runs (same database) is usable at once.
func TestCLIClientWhileServing(t *testing.T) {
	t.Parallel()
	env := cliEnviron(t)
	a, err := openApp(&cmdEnv{ctx: context.Background(), stderr: &bytes.Buffer{}, environ: env, createDB: true}, "", false)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	hs := httptest.NewUnstartedServer(nil)
	a.cfg.Issuer = "http://" + hs.Listener.Addr().String()
	srv, err := newServer(context.Background(), a, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = srv.handler
	hs.Start()
	defer hs.Close()

	code, out, errOut := cli(t, env, "", "client", "create", "--id", "reports", "--grant", "client_credentials")
	if code != exitOK {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	secret := regexp.MustCompile(`client secret \(shown once, store it now\): (\S+)`).FindStringSubmatch(out)
	if secret == nil {
		t.Fatalf("no secret printed: %s", out)
	}
	cc := clientcredentials.Config{ClientID: "reports", ClientSecret: secret[1], TokenURL: a.cfg.Issuer + "/oauth/token"}
	if _, err := cc.Token(context.Background()); err != nil {
		t.Fatalf("new client not usable at once: %v", err)
	}

	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
	}{
		{"duplicate", "", []string{"client", "create", "--id", "reports", "--grant", "client_credentials"}, exitConflict},
		{"secret from stdin", strings.Repeat("s", 40) + "\n", []string{"client", "create", "--id", "web", "--secret-stdin", "--redirect-uri", "https://app.example/cb", "--grant", "authorization_code,refresh_token"}, exitOK},
		{"short secret", "short\n", []string{"client", "create", "--id", "web2", "--secret-stdin", "--redirect-uri", "https://app.example/cb"}, exitUsage},
		{"public with secret", "x\n", []string{"client", "create", "--id", "pub", "--public", "--secret-stdin", "--redirect-uri", "http://127.0.0.1/cb"}, exitUsage},
		{"javascript redirect", "", []string{"client", "create", "--id", "bad", "--redirect-uri", "javascript:alert(1)"}, exitUsage},
		{"device short form", "", []string{"client", "create", "--id", "tv", "--public", "--type", "native", "--redirect-uri", "http://127.0.0.1/cb", "--grant", "device_code"}, exitOK},
		{"unknown grant", "", []string{"client", "create", "--id", "g", "--grant", "password", "--redirect-uri", "https://a.example/cb"}, exitUsage},
		{"default acr", "", []string{"client", "create", "--id", "admin", "--redirect-uri", "https://a.example/cb", "--default-acr", "urn:latchkey:acr:mfa:fresh"}, exitOK},
		{"unknown default acr", "", []string{"client", "create", "--id", "admin2", "--redirect-uri", "https://a.example/cb", "--default-acr", "gold"}, exitUsage},
		{"ES256 id tokens", "", []string{"client", "create", "--id", "es", "--redirect-uri", "https://a.example/cb", "--id-token-alg", "ES256"}, exitOK},
		{"HS256 id tokens", "", []string{"client", "create", "--id", "hs", "--redirect-uri", "https://a.example/cb", "--id-token-alg", "HS256"}, exitUsage},
		{"name and logo", "", []string{"client", "create", "--id", "shop", "--name", "Acme Shop", "--logo-uri", "https://shop.example/logo.png", "--redirect-uri", "https://shop.example/cb"}, exitOK},
		{"logo not https", "", []string{"client", "create", "--id", "shop2", "--logo-uri", "http://shop.example/logo.png", "--redirect-uri", "https://shop.example/cb"}, exitUsage},
		{"delete", "", []string{"client", "delete", "--id", "web"}, exitOK},
		{"delete unknown", "", []string{"client", "delete", "--id", "web"}, exitNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, out, errOut := cli(t, env, tc.stdin, tc.args...); code != tc.code {
				t.Fatalf("exit %d (want %d)\n%s%s", code, tc.code, out, errOut)
			}
		})
	}
	_, out, _ = cli(t, env, "", "client", "list")
	if !strings.Contains(out, "urn:ietf:params:oauth:grant-type:device_code") || strings.Contains(out, "\nweb ") {
		t.Fatalf("client list:\n%s", out)
	}
	if c, err := a.store.GetClient(context.Background(), "es"); err != nil || c.IDTokenSigningAlg != "ES256" {
		t.Fatalf("client created with --id-token-alg ES256: %+v %v", c, err)
	}
	if c, err := a.store.GetClient(context.Background(), "shop"); err != nil || c.Name != "Acme Shop" || c.LogoURI != "https://shop.example/logo.png" {
		t.Fatalf("client created with --name and --logo-uri: %+v %v", c, err)
	}
}

// TestServeRefusesHTTPSWithoutSMTP: an https issuer without smtp_url would
// write sign-in codes to the log; serve refuses to start unless smtp_url
// says "log:" on purpose.
func TestServeRefusesHTTPSWithoutSMTP(t *testing.T) {
	t.Parallel()
	env := slices.DeleteFunc(cliEnviron(t), func(kv string) bool { return strings.HasPrefix(kv, "LATCHKEY_SMTP_URL=") })
	env = append(env, "LATCHKEY_ISSUER=https://id.example.com", "LATCHKEY_ADDR=127.0.0.1:0")
	// A cancelled context: were the configuration accepted, serve would
	// stop at once instead of serving forever.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var outb, errb bytes.Buffer
	code := run(ctx, []string{"serve"}, strings.NewReader(""), &outb, &errb, env)
	out, errOut := outb.String(), errb.String()
	if code == exitOK || !strings.Contains(errOut, "smtp_url: required when the issuer is https") {
		t.Fatalf("serve with an https issuer and no smtp_url: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	// Chosen on purpose, the log is accepted (the same validation as serve's).
	if code, _, errOut := cli(t, append(env, "LATCHKEY_SMTP_URL=log:"), "", "config", "print"); code != exitOK {
		t.Fatalf("smtp_url log: with an https issuer: exit %d: %s", code, errOut)
	}
}

// TestCLIMailList: `latchkey mail list` shows what waits and what failed
// (and why), never a message's content.
func TestCLIMailList(t *testing.T) {
	t.Parallel()
	env := cliEnviron(t)
	if code, _, errOut := cli(t, env, "", "migrate"); code != exitOK {
		t.Fatal(errOut)
	}
	var dbURL string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "LATCHKEY_DATABASE_URL="); ok {
			dbURL = v
		}
	}
	st := storagetest.OpenURL(t, dbURL)
	kr, err := keyring.New(bytes.Repeat([]byte{0xab}, 32))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i, to := range []string{"waiting@example.com", "bounced@example.com"} {
		id := storage.NewSortableID(now.Add(time.Duration(i) * time.Millisecond))
		sealed, err := outbox.Seal(kr, id, mail.Message{To: to, Subject: "Your code", Text: "Your code is 918273.\n"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.EnqueueMail(context.Background(), storage.OutboxMessage{ID: id, Kind: "code", Purpose: "signin",
			Recipient: to, Sealed: sealed, CreatedAt: now, GiveUpAt: now.Add(10 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	claimed, err := st.ClaimOutbox(context.Background(), now, time.Minute, 10)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	for _, m := range claimed {
		r := storage.OutboxResult{Retry: now.Add(time.Minute), Error: "dial tcp: connection refused", At: now}
		if m.Recipient == "bounced@example.com" {
			r = storage.OutboxResult{Error: "550 5.1.1 no such user", At: now}
		}
		if err := st.FinishOutbox(context.Background(), m.ID, m.Claim, r); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := cli(t, env, "", "mail", "list")
	if code != exitOK {
		t.Fatalf("mail list: %d %s", code, errOut)
	}
	for _, want := range []string{"waiting@example.com", "pending", "connection refused", "bounced@example.com", "failed", "550 5.1.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("mail list lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "918273") || strings.Contains(out, "Your code") {
		t.Errorf("mail list shows a message's content:\n%s", out)
	}
	if _, out, _ := cli(t, env, "", "mail", "list", "--state", "failed"); strings.Contains(out, "waiting@example.com") {
		t.Errorf("--state failed shows a pending message:\n%s", out)
	}
	if code, _, _ := cli(t, env, "", "mail", "list", "--state", "lost"); code != exitUsage {
		t.Errorf("--state lost: exit %d, want usage", code)
	}
}

// TestCLIClientProtocolFlags (issue 12): what `latchkey client create`
// registers with --jwks-file, --jwks-uri, --scope, --third-party,
// --require-par, --dpop and --backchannel-logout-uri takes effect at the
// server sharing its database (a client created without them is the
// control), on SQLite and PostgreSQL.
func TestCLIClientProtocolFlags(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		dbURL := d.URL(t)
		e := newTestEnvStore(t, d, nil, storagetest.OpenURL(t, dbURL))
		dir := t.TempDir()
		env := []string{"LATCHKEY_DATABASE_URL=" + dbURL, "LATCHKEY_DATA_DIR=" + dir, "LATCHKEY_ISSUER=" + e.issuer,
			"LATCHKEY_SECRET_KEY=" + hex.EncodeToString(e.app.cfg.SecretKey.Bytes()), "LATCHKEY_SMTP_URL=log:",
			"LATCHKEY_KEYS_ALGORITHM=ES256", "LATCHKEY_LOG_LEVEL=error"}
		const secret = "a-client-secret-long-enough-0123456789"
		create := func(stdin string, args ...string) string {
			t.Helper()
			code, out, errOut := cli(t, env, stdin, append([]string{"client", "create"}, args...)...)
			if code != exitOK {
				t.Fatalf("client create %v: exit %d\n%s%s", args, code, out, errOut)
			}
			return out
		}
		const cb = "https://rp.test/callback"
		redirect := []string{"--redirect-uri", cb}

		// private_key_jwt: an inline JWK set from a file, and a jwks_uri;
		// no secret is made; the tokens carry the --scope.
		es := newClientKey(t, jose.ES256, "es-1")
		rs := newClientKey(t, jose.RS256, "rs-1")
		jwksFile := filepath.Join(dir, "svc.jwks")
		if err := os.WriteFile(jwksFile, []byte(jwksOf(t, es)), 0o600); err != nil {
			t.Fatal(err)
		}
		keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(jwksOf(t, rs)))
		}))
		t.Cleanup(keys.Close)
		for id, args := range map[string][]string{
			"svc":   {"--jwks-file", jwksFile},
			"batch": {"--jwks-uri", keys.URL + "/jwks"},
		} {
			out := create("", append([]string{"--id", id, "--grant", "client_credentials", "--scope", "reports,stats"}, args...)...)
			if strings.Contains(out, "client secret") {
				t.Errorf("%s: a secret was made for a client with keys:\n%s", id, out)
			}
		}
		tokenURL := e.issuer + "/oauth/token"
		for id, key := range map[string]clientKey{"svc": es, "batch": rs} {
			form := url.Values{"grant_type": {"client_credentials"}, "scope": {"reports"}}
			if a := call(t, "POST", tokenURL, assertionForm(form, key.assertion(t, e, id, e.issuer)), nil); a.status != 200 || a.str("scope") != "reports" {
				t.Errorf("%s: private_key_jwt: %d %s", id, a.status, a.body)
			}
			form.Set("scope", "billing")
			if a := call(t, "POST", tokenURL, assertionForm(form, key.assertion(t, e, id, e.issuer)), nil); a.status != 400 || a.str("error") != "invalid_scope" {
				t.Errorf("%s: a scope not given with --scope: %d %s", id, a.status, a.body)
			}
			// The other client's key does not sign for it.
			other := map[string]clientKey{"svc": rs, "batch": es}[id]
			if a := call(t, "POST", tokenURL, assertionForm(url.Values{"grant_type": {"client_credentials"}}, other.assertion(t, e, id, e.issuer)), nil); a.status != 401 {
				t.Errorf("%s: an unregistered key: %d %s", id, a.status, a.body)
			}
		}

		// --dpop: a token request without a proof is refused; the control
		// needs none.
		create(secret+"\n", "--id", "dpop", "--secret-stdin", "--grant", "client_credentials", "--dpop")
		create(secret+"\n", "--id", "plain", "--secret-stdin", "--grant", "client_credentials,authorization_code", "--redirect-uri", cb)
		cc := url.Values{"grant_type": {"client_credentials"}}
		if a := call(t, "POST", tokenURL, cc, basic("dpop", secret)); a.status != 400 || a.str("error") != "invalid_dpop_proof" {
			t.Errorf("--dpop without a proof: %d %s", a.status, a.body)
		}
		if a := call(t, "POST", tokenURL, cc, basic("plain", secret)); a.status != 200 || a.str("token_type") != "Bearer" {
			t.Errorf("control without a proof: %d %s", a.status, a.body)
		}

		// --require-par: a direct authorization request goes back with
		// invalid_request; the control's goes to the sign-in.
		create(secret+"\n", append([]string{"--id", "par", "--secret-stdin", "--require-par"}, redirect...)...)
		create(secret+"\n", append([]string{"--id", "third", "--secret-stdin", "--third-party"}, redirect...)...)
		authorize := func(id string) string {
			verifier := oauth2.GenerateVerifier()
			return e.issuer + "/authorize?" + url.Values{"client_id": {id}, "redirect_uri": {cb}, "response_type": {"code"},
				"scope": {"openid email"}, "state": {"st"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)},
				"code_challenge_method": {"S256"}}.Encode()
		}
		if a := call(t, "GET", authorize("par"), nil, nil); a.status != http.StatusFound ||
			redirectParams(t, a.header.Get("Location")).Get("error") != "invalid_request" {
			t.Errorf("--require-par, direct request: %d %s", a.status, a.header.Get("Location"))
		}
		if a := call(t, "GET", authorize("plain"), nil, nil); a.status != http.StatusFound || strings.Contains(a.header.Get("Location"), "error=") {
			t.Errorf("control, direct request: %d %s", a.status, a.header.Get("Location"))
		}

		// --third-party: the sign-in asks for consent; the control's does
		// not.
		u := e.createUser("cli-consent@example.com")
		b := e.newBrowser()
		if p := b.drive(b.get(authorize("third")), u.Email, signInOpts{}); !p.at("/login/consent") {
			t.Errorf("--third-party: no consent page: %s %q", p.url, p.location)
		}
		b2 := e.newBrowser()
		if p := b2.drive(b2.get(authorize("plain")), u.Email, signInOpts{}); p.location == "" || strings.Contains(p.location, "error=") {
			t.Errorf("control: %s %q", p.url, p.location)
		}

		// --backchannel-logout-uri: registered with the client.
		create(secret+"\n", append([]string{"--id", "bcl", "--secret-stdin", "--backchannel-logout-uri", "https://rp.example/bcl",
			"--backchannel-logout-session-required"}, redirect...)...)
		ctx := context.Background()
		if c, err := e.store.GetClient(ctx, "bcl"); err != nil || c.BackchannelLogoutURI != "https://rp.example/bcl" || !c.BackchannelLogoutSessionRequired {
			t.Errorf("--backchannel-logout-uri: %+v %v", c, err)
		}
		if c, err := e.store.GetClient(ctx, "plain"); err != nil || c.BackchannelLogoutURI != "" || c.ThirdParty || c.RequirePAR || c.DPoPBound {
			t.Errorf("control: %+v %v", c, err)
		}
		// A bad URI is a usage error, and nothing is made.
		if code, out, errOut := cli(t, env, "", "client", "create", "--id", "bcl2", "--backchannel-logout-uri", "javascript:x", "--redirect-uri", cb); code != exitUsage {
			t.Errorf("bad back-channel URI: exit %d\n%s%s", code, out, errOut)
		}
		if _, err := e.store.GetClient(ctx, "bcl2"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("a refused client was stored: %v", err)
		}
	})
}
