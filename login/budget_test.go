package login

// Email-code budgets per purpose and the durable outbox, as a user and an
// attacker see them (issue #10 §3, §5).

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/login/mail/mailsink"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// forgot posts /forgot for email from a new browser at ip and returns
// the page it lands on.
func (e *testEnv) forgot(app *rp, ip, email string) response {
	e.t.Helper()
	b := e.newBrowser()
	b.ip = ip
	p := b.get(first(app.authorizeURL()))
	p = b.get(e.issuer + "/forgot?id=" + url.QueryEscape(p.url.Query().Get("id")))
	return b.submit(p, "/forgot", url.Values{"email": {email}})
}

// TestResetCannotStarveSignin: anonymous password-reset requests for an
// address — as many as an attacker likes, from many addresses — send at
// most three reset mails an hour (their own budget, no mailbox flooding)
// and leave the owner's sign-in codes alone.
func TestResetCannotStarveSignin(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("victim@example.com")
		app := e.newRP("app")
		for i := range 10 {
			e.clock.Advance(31 * time.Second) // past the resend gap
			if p := e.forgot(app, fmt.Sprintf("203.0.113.%d", i+1), u.Email); !p.at("/forgot") {
				t.Fatalf("reset request %d: %s (%d)", i, p.url, p.status)
			}
		}
		if n := e.sent().Count(u.Email); n != 3 {
			t.Errorf("%d reset mails for 10 requests, want 3 (their own budget)", n)
		}
		b := e.newBrowser()
		p := b.toCodePage(first(app.authorizeURL()), u.Email)
		if strings.Contains(p.body, "Too many codes") {
			t.Fatalf("the reset requests used up the sign-in's codes:\n%s", p.body)
		}
		if s := e.lastSubject(u.Email); !strings.Contains(s, "sign-in confirmation code") {
			t.Fatalf("the sign-in code did not go out: last mail %q", s)
		}
		accepted(t, "sign-in code", b.submit(p, "/login/code", url.Values{"code": {e.mailCode(u.Email)}}))
	})
}

// TestCodePageNeverClaimsUnsent: when no code went out (the budget is
// spent by other sign-ins), the page says so and nothing else: no "we
// sent a code".
func TestCodePageNeverClaimsUnsent(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	u := e.createUser("busy@example.com")
	app := e.newRP("app")
	for range 5 {
		e.newBrowser().toCodePage(first(app.authorizeURL()), u.Email)
	}
	p := e.newBrowser().toCodePage(first(app.authorizeURL()), u.Email)
	if !strings.Contains(p.body, "Too many codes") {
		t.Fatalf("the sixth sign-in in 15 minutes got a code:\n%s", p.body)
	}
	for _, claim := range []string{"We sent a code", "We are sending a code"} {
		if strings.Contains(p.body, claim) {
			t.Errorf("the page claims %q though no code was sent:\n%s", claim, p.body)
		}
	}
}

// TestFailedMailGivesBudgetBack: codes whose mail the server refuses do
// not use up the budget or hold the resend gap, and the page says the
// mail did not go out.
func TestFailedMailGivesBudgetBack(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("bounce@example.com")
		app := e.newRP("app")
		e.sink.Refuse(func(string) bool { return true })
		b := e.newBrowser()
		authURL, state := app.authorizeURL()
		p := b.toCodePage(authURL, u.Email)
		codeURL := p.url.String()
		for i := range 7 {
			p = b.get(codeURL) // the next view
			if !strings.Contains(p.body, "We could not send the code") || strings.Contains(p.body, "We sent a code") {
				t.Fatalf("round %d: the page does not say the mail failed: %s", i, mainText(p.body))
			}
			p = b.submit(p, "/login/code/send", nil) // at once: nothing was sent, nothing to wait for
			if p.status != http.StatusOK {
				t.Fatalf("round %d: asking again after a failed mail: %d\n%s", i, p.status, p.body)
			}
		}
		e.sink.Refuse(nil)
		p = b.submit(p, "/login/code/send", nil)
		if p.status != http.StatusOK {
			t.Fatalf("with the server accepting again: %d\n%s", p.status, p.body)
		}
		b.drive(b.submit(p, "/login/code", url.Values{"code": {e.mailCode(u.Email)}}), u.Email, signInOpts{}).code(t, state)
	})
}

// TestCodeWaitsForMailServer: with the mail server down the code page
// answers at once and, on the next view, says the mail is delayed; when
// the server is back the code goes out and works.
func TestCodeWaitsForMailServer(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("patient@example.com")
		app := e.newRP("app")
		addr := e.sink.Addr()
		e.sink.Close()
		b := e.newBrowser()
		authURL, state := app.authorizeURL()
		p := b.toCodePage(authURL, u.Email)
		if !strings.Contains(p.body, "We are sending a code") {
			t.Fatalf("first view:\n%s", p.body)
		}
		p = b.get(p.url.String())
		if !strings.Contains(p.body, "We are having trouble sending the code") {
			t.Fatalf("next view with the server down:\n%s", p.body)
		}
		back, err := mailsink.Start(addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { back.Close() })
		e.sink = back
		e.clock.Advance(time.Minute) // the retry is due
		e.deliver()
		p = b.get(p.url.String())
		if !strings.Contains(p.body, "We sent a code") {
			t.Fatalf("after the server came back:\n%s", p.body)
		}
		b.drive(b.submit(p, "/login/code", url.Values{"code": {e.mailCode(u.Email)}}), u.Email, signInOpts{}).code(t, state)
		if n := back.Count(u.Email); n != 1 {
			t.Errorf("%d code mails, want 1", n)
		}
	})
}

// rowCounts counts the rows of tables.
func rowCounts(t *testing.T, dbURL string, tables ...string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, tb := range tables {
		out[tb] = len(storagetest.Dump(t, dbURL, tb))
	}
	return out
}

// sameRows asserts two requests wrote the same number of rows in every
// table (the same statements: the same time, whatever the mail server
// does, since none waits for it).
func sameRows(t *testing.T, what string, before, afterA, afterB map[string]int) {
	t.Helper()
	for tb := range before {
		da, db := afterA[tb]-before[tb], afterB[tb]-afterA[tb]
		if da != db {
			t.Errorf("%s: %s got %d rows for one address, %d for the other", what, tb, da, db)
		}
	}
}

var writtenTables = []string{"email_codes", "mail_outbox", "action_tokens", "audit_events", "throttles", "users"}

// TestForgotSamePathForEveryAddress: /forgot for an address with an
// account and for one without writes the same rows — a code and a mail in
// the outbox each (the second one never leaves) — and answers the same.
func TestForgotSamePathForEveryAddress(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		dbURL := d.URL(t)
		e := newTestEnvWith(t, d, envSetup{dbStore: storagetest.OpenURL(t, dbURL), holdMail: true})
		u := e.createUser("known@example.com")
		app := e.newRP("app")
		before := rowCounts(t, dbURL, writtenTables...)
		pk := e.forgot(app, "192.0.2.1", u.Email)
		afterKnown := rowCounts(t, dbURL, writtenTables...)
		pu := e.forgot(app, "192.0.2.2", "unknown@example.com")
		afterUnknown := rowCounts(t, dbURL, writtenTables...)
		sameRows(t, "/forgot", before, afterKnown, afterUnknown)
		if pk.status != pu.status || pk.url.Path != pu.url.Path ||
			sameText(pk.body, u.Email) != sameText(pu.body, "unknown@example.com") {
			t.Errorf("the answers differ: %d %s / %d %s", pk.status, pk.url, pu.status, pu.url)
		}
		e.deliver()
		queued, err := e.store.ListOutbox(context.Background(), storage.OutboxFilter{})
		if err != nil || len(queued) != 2 {
			t.Fatalf("outbox: %+v %v", queued, err)
		}
		states := map[string]string{}
		for _, m := range queued {
			states[m.Recipient] = m.State
		}
		if states[u.Email] != storage.OutboxSent || states[""] != storage.OutboxVoid {
			t.Errorf("outbox states %v: want the known address's mail sent, the other one void", states)
		}
		if e.sent().Count("unknown@example.com") != 0 {
			t.Error("an address without an account got mail")
		}
	})
}

// TestSignupSamePathForEveryAddress: /signup for an address with an
// account and for a new one writes the same rows; the new address gets a
// code, the owner of the other a warning without a code.
func TestSignupSamePathForEveryAddress(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		dbURL := d.URL(t)
		e := newTestEnvWith(t, d, envSetup{dbStore: storagetest.OpenURL(t, dbURL), holdMail: true})
		owner := e.createUser("taken@example.com")
		app := e.newRP("app")
		signup := func(ip, email string) response {
			b := e.newBrowser()
			b.ip = ip
			p := b.get(first(app.authorizeURL()))
			p = b.get(e.issuer + "/signup?id=" + url.QueryEscape(p.url.Query().Get("id")))
			return b.submit(p, "/signup", url.Values{"email": {email}, "name": {"Someone"}, "password": {"a fine long passphrase"}})
		}
		before := rowCounts(t, dbURL, writtenTables...)
		pt := signup("192.0.2.1", owner.Email)
		afterTaken := rowCounts(t, dbURL, writtenTables...)
		pn := signup("192.0.2.2", "fresh@example.com")
		afterNew := rowCounts(t, dbURL, writtenTables...)
		sameRows(t, "/signup", before, afterTaken, afterNew)
		if pt.status != pn.status || pt.url.Path != pn.url.Path ||
			sameText(pt.body, owner.Email) != sameText(pn.body, "fresh@example.com") {
			t.Errorf("the answers differ: %d %s / %d %s", pt.status, pt.url, pn.status, pn.url)
		}
		if _, _, ok := e.sent().LastCode(owner.Email); ok {
			t.Error("the owner of a taken address got a code")
		}
		if m, ok := e.sent().Last(owner.Email); !ok || !strings.Contains(m.Subject, "Someone tried to create") {
			t.Errorf("the owner was not warned: %+v", m)
		}
		e.mailCode("fresh@example.com")
	})
}

// mainText is a page's main content without markup, for messages.
func mainText(body string) string {
	if i := strings.Index(body, "<main"); i >= 0 {
		body = body[i:]
	}
	return tagRe.ReplaceAllString(body, " ")
}

var tagRe = regexp.MustCompile(`<[^>]*>|\s+`)

// sameText is a page with the typed address, request ids and tokens
// blanked, to compare two answers.
func sameText(body, email string) string {
	body = strings.ReplaceAll(body, email, "EMAIL")
	return idRe.ReplaceAllString(body, "ID")
}

var idRe = regexp.MustCompile(`value="[^"]*"|id=[a-z0-9]{26}`)

// TestSignupCodesLimitedPerAddress: sign-ups for one address get three
// codes an hour, however many browsers ask; the fourth page says so and
// does not claim a code went out — the same for an address that has an
// account (its owner gets at most one warning an hour).
func TestSignupCodesLimitedPerAddress(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	owner := e.createUser("owned@example.com")
	app := e.newRP("app")
	for _, email := range []string{"flood@example.com", owner.Email} {
		var p response
		for i := range 4 {
			b := e.newBrowser()
			b.ip = fmt.Sprintf("198.51.100.%d", i+1)
			p = b.get(first(app.authorizeURL()))
			p = b.get(e.issuer + "/signup?id=" + url.QueryEscape(p.url.Query().Get("id")))
			p = b.submit(p, "/signup", url.Values{"email": {email}, "name": {"Someone"}, "password": {"a fine long passphrase"}})
		}
		if p.status != http.StatusTooManyRequests || !strings.Contains(p.body, "Too many codes") || strings.Contains(p.body, "We sent a code") {
			t.Errorf("%s: the fourth sign-up in an hour: %d\n%s", email, p.status, mainText(p.body))
		}
	}
	if n := e.sent().Count("flood@example.com"); n != 3 {
		t.Errorf("%d sign-up codes to one address, want 3", n)
	}
	if n := e.sent().Count(owner.Email); n != 1 {
		t.Errorf("%d warnings to the owner, want 1", n)
	}
}

// TestRetryingMailDoesNotHoldTheGap: while the mail server is down, the
// page says the code is delayed, and "Get code by email" does not answer
// "we just sent a code, wait": it replaces the stuck code at once.
func TestRetryingMailDoesNotHoldTheGap(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqlite(t))
	u := e.createUser("stuck@example.com")
	app := e.newRP("app")
	e.sink.Close()
	b := e.newBrowser()
	p := b.toCodePage(first(app.authorizeURL()), u.Email)
	p = b.get(p.url.String())
	if !strings.Contains(p.body, "We are having trouble sending the code") {
		t.Fatalf("with the server down:\n%s", mainText(p.body))
	}
	if q := b.submit(p, "/login/code/send", nil); q.status != http.StatusOK || strings.Contains(q.body, "We just sent a code") {
		t.Fatalf("asking again while the first mail is stuck: %d %s", q.status, mainText(q.body))
	}
}
