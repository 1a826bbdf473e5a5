package op

// Sending the authorization response (success or error) to the client:
// every response carries iss (RFC 9207, the mix-up defence), goes the way
// the request asked (query, fragment, form_post), and form_post responses
// are a page with their own Content-Security-Policy, the only page that
// may post to another origin, and only to that client's redirect origin.

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// sendAuthResponse sends params (code or error, and state) to the client's
// redirectURI in mode; iss is added, an empty state left out.
func (o *OP) sendAuthResponse(w http.ResponseWriter, r *http.Request, redirectURI, mode string, params url.Values) {
	params.Set("iss", o.opts.Issuer)
	if params.Get("state") == "" {
		params.Del("state")
	}
	if params.Get("error_description") == "" {
		params.Del("error_description")
	}
	u, err := url.Parse(redirectURI)
	if err != nil {
		// Registered and checked before; a stored value that no longer
		// parses is our fault, not the user's.
		o.opts.Logger.Error("auth response: redirect_uri unparsable", "err", err)
		o.page(w, r, http.StatusInternalServerError, pageMsg("error.authorize.respond_failed"))
		return
	}
	switch oidc.ResponseMode(mode) {
	case oidc.ResponseModeFormPost:
		o.formPost(w, r, u, params)
		return
	case oidc.ResponseModeFragment:
		u.RawFragment = params.Encode()
		u.Fragment, _ = url.PathUnescape(u.RawFragment)
	default:
		q := u.Query()
		for k, v := range params {
			q[k] = v
		}
		u.RawQuery = q.Encode()
	}
	RedirectAwayWords(w, r, u.String(), http.StatusFound, o.words(r))
}

// PageWords are the words of op's own two pages, in the language of the
// request they answer: the form_post response as a browser without
// scripts shows it, and RedirectAway's page. cmd wires Options.PageWords
// from login/i18n's catalogue (op never imports it); an empty field says
// the English.
type PageWords struct {
	FormPostTitle, FormPostText, FormPostButton string
	AwayTitle, AwayLink                         string
	// Lang is their language (<html lang>).
	Lang string
}

// withDefaults fills what w leaves empty with the English.
func (w PageWords) withDefaults() PageWords {
	def := PageWords{FormPostTitle: "Signing you in", FormPostText: "Press Continue to go back to the application.",
		FormPostButton: "Continue", AwayTitle: "Returning to the application", AwayLink: "Continue to the application", Lang: "en"}
	for _, f := range []struct{ v, d *string }{{&w.FormPostTitle, &def.FormPostTitle}, {&w.FormPostText, &def.FormPostText},
		{&w.FormPostButton, &def.FormPostButton}, {&w.AwayTitle, &def.AwayTitle}, {&w.AwayLink, &def.AwayLink}, {&w.Lang, &def.Lang}} {
		if *f.v == "" {
			*f.v = *f.d
		}
	}
	return w
}

func (o *OP) words(r *http.Request) PageWords {
	if o.opts.PageWords == nil {
		return PageWords{}.withDefaults()
	}
	return o.opts.PageWords(r).withDefaults()
}

// formPostScript submits the form; its hash is the only script the
// page's CSP allows.
const formPostScript = `document.forms[0].submit()`

var (
	formPostScriptHash = func() string {
		sum := sha256.Sum256([]byte(formPostScript))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}()
	formPostPage = template.Must(template.New("form_post").Parse(`<!doctype html>
<html lang="{{.Words.Lang}}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{{.Words.FormPostTitle}}</title></head>
<body>
<form method="post" action="{{.Action}}">
{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<noscript><p>{{.Words.FormPostText}}</p><button type="submit">{{.Words.FormPostButton}}</button></noscript>
</form>
<script>` + formPostScript + `</script>
</body>
</html>
`))
)

type formField struct{ Name, Value string }

// formPost answers with the OAuth 2.0 Form Post Response Mode page: a
// form to the redirect URI that submits itself (or, without scripts, on
// a button). Its CSP lets it post to the redirect URI's origin and run
// nothing but its one script.
func (o *OP) formPost(w http.ResponseWriter, r *http.Request, u *url.URL, params url.Values) {
	var fields []formField
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range params[k] {
			fields = append(fields, formField{k, v})
		}
	}
	var b strings.Builder
	// template.URL: a registered redirect URI, possibly a private-use
	// scheme that html/template would otherwise blank out.
	if err := formPostPage.Execute(&b, struct {
		Action template.URL
		Fields []formField
		Words  PageWords
	}{template.URL(u.String()), fields, o.words(r)}); err != nil {
		o.opts.Logger.Error("form_post page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", FormPostCSP(u))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(b.String()))
}

// FormPostCSP is the Content-Security-Policy of a form_post response to
// redirect: nothing but its own script, and a form to the redirect's
// origin only (a private-use scheme is named by its scheme).
func FormPostCSP(redirect *url.URL) string {
	target := redirect.Scheme + ":"
	if redirect.Host != "" {
		target = redirect.Scheme + "://" + redirect.Host
	}
	return "default-src 'none'; script-src " + formPostScriptHash + "; form-action " + target +
		"; frame-ancestors 'none'; base-uri 'none'"
}

var awayPage = template.Must(template.New("away").Parse(`<!doctype html>
<html lang="{{.Words.Lang}}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="0;url={{.Target}}"><title>{{.Words.AwayTitle}}</title></head>
<body><p><a href="{{.Target}}">{{.Words.AwayLink}}</a></p></body>
</html>
`))

// RedirectAway sends the browser to target, on another origin. A plain
// redirect, except when the navigation started on one of our own pages
// (Sec-Fetch-Site: same-origin), which can be the submission of one of
// our forms: Chrome and Safari apply the submitting page's CSP
// form-action to every redirect that follows a submission, and our pages
// allow only 'self' (login/internal/web). Then the browser gets a page
// that moves on by itself (a meta refresh is a navigation, not a form
// submission), with a link for browsers that do not follow it.
func RedirectAway(w http.ResponseWriter, r *http.Request, target string, status int) {
	RedirectAwayWords(w, r, target, status, PageWords{})
}

// RedirectAwayWords is RedirectAway with the page's words in the user's
// language (PageWords; empty fields say the English).
func RedirectAwayWords(w http.ResponseWriter, r *http.Request, target string, status int, words PageWords) {
	if r.Header.Get("Sec-Fetch-Site") != "same-origin" {
		http.Redirect(w, r, target, status)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(http.StatusOK)
	// target is a validated redirect (a registered URI, or an upstream
	// provider's authorization URL): template.URL keeps a private-use
	// scheme from being blanked out.
	_ = awayPage.Execute(w, struct {
		Target template.URL
		Words  PageWords
	}{template.URL(target), words.withDefaults()})
}
