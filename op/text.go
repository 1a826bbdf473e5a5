package op

import (
	"net/http"
	"net/url"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/latchkey/latchkey/storage"
)

// Text no client should send. A parameter that is not valid UTF-8 or holds
// a NUL byte can name no client, code, token or device and cannot be
// stored (PostgreSQL refuses it; storage answers ErrNotFound for lookups
// and ErrInvalidText for writes). textFilter, in front of every endpoint,
// answers such a request with invalid_request (RFC 6749 §5.2) before
// zitadel or our grant handlers see it; validText does the same for the
// values of an authorization request, which zitadel parses first and
// which must be reported to the client when its redirect URI is trusted.

// msgInvalidText is the error_description of a refused parameter.
const msgInvalidText = "a parameter is not valid UTF-8 text"

// textFilter wraps next. /authorize is left to zitadel (a bad client_id or
// redirect_uri is an unknown client or an unregistered URI, shown on the
// error page; any other bad value is refused in CreateAuthRequest and
// redirected to the client as invalid_request).
func (o *OP) textFilter(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/authorize", "/authorize/callback", "/keys", "/healthz", "/ready", oidc.DiscoveryEndpoint:
			next.ServeHTTP(w, r)
			return
		}
		ok := valuesValid(r.URL.Query())
		if ok && r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, o.opts.MaxBodyBytes)
			if err := parseForm(r); err != nil {
				o.badForm(w, r, err)
				return
			}
			ok = valuesValid(r.PostForm)
		}
		if id, secret, basic := r.BasicAuth(); ok && basic {
			ok = storage.ValidText(id) && storage.ValidText(secret)
		}
		if ok {
			next.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == "/end_session" {
			o.page(w, r, http.StatusBadRequest, pageMsg("error.end_session.unreadable"))
			return
		}
		tokenError(w, http.StatusBadRequest, "invalid_request", msgInvalidText, false)
	})
}

func valuesValid(vs url.Values) bool {
	for k, v := range vs {
		if !storage.ValidText(k) {
			return false
		}
		for _, x := range v {
			if !storage.ValidText(x) {
				return false
			}
		}
	}
	return true
}

// validAuthRequestText reports whether every text value of an
// authorization request that we store or compare is valid text.
func validAuthRequestText(req *oidc.AuthRequest) bool {
	for _, s := range []string{req.ClientID, req.RedirectURI, req.State, req.Nonce, req.LoginHint, req.CodeChallenge,
		string(req.ResponseType), string(req.ResponseMode), string(req.CodeChallengeMethod)} {
		if !storage.ValidText(s) {
			return false
		}
	}
	for _, l := range [][]string{req.Scopes, req.Prompt, req.ACRValues} {
		for _, s := range l {
			if !storage.ValidText(s) {
				return false
			}
		}
	}
	return true
}
