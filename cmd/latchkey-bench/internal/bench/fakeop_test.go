package bench

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeOP is a minimal OpenID provider for the tests: discovery, JWKS, a
// token endpoint (client_credentials and refresh_token, rotating or not),
// userinfo and introspection. It counts what it served and checks what
// the bench sends.
type fakeOP struct {
	t      *testing.T
	srv    *httptest.Server
	issuer string

	clientID, secret string
	authMethod       string // how the client must authenticate
	rotate           bool   // refresh tokens rotate (single use)
	noIntrospection  bool
	dropToken        bool // the token endpoint drops the connection

	hits sync.Map // path → *atomic.Int64

	mu        sync.Mutex
	refresh   map[string]refreshState // live refresh tokens
	used      map[string]bool         // rotated away
	access    map[string]bool
	reuse     int            // a used refresh token was presented again
	chainLen  map[int]int    // chain → successful refreshes
	scopes    map[string]int // scope asked for at client_credentials
	badAuth   int
	nextToken int
}

type refreshState struct {
	chain int
}

func newFakeOP(t *testing.T, mut ...func(*fakeOP)) *fakeOP {
	t.Helper()
	f := &fakeOP{t: t, clientID: "bench", secret: "s3cret:with%odd&chars", authMethod: AuthBasic, rotate: true,
		refresh: map[string]refreshState{}, used: map[string]bool{}, access: map[string]bool{}, chainLen: map[int]int{}, scopes: map[string]int{}}
	for _, m := range mut {
		m(f)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", f.discovery)
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		f.hit("jwks")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"keys":[{"kty":"EC","crv":"P-256","x":"x","y":"y","kid":"k1"}]}`)
	})
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("GET /userinfo", f.userinfo)
	mux.HandleFunc("POST /introspect", f.introspect)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.issuer = f.srv.URL
	return f
}

func (f *fakeOP) hit(name string) {
	v, _ := f.hits.LoadOrStore(name, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (f *fakeOP) count(name string) int64 {
	v, ok := f.hits.Load(name)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

func (f *fakeOP) discovery(w http.ResponseWriter, r *http.Request) {
	f.hit("discovery")
	d := map[string]string{
		"issuer":                 f.issuer,
		"authorization_endpoint": f.issuer + "/authorize",
		"token_endpoint":         f.issuer + "/token",
		"jwks_uri":               f.issuer + "/jwks",
		"userinfo_endpoint":      f.issuer + "/userinfo",
	}
	if !f.noIntrospection {
		d["introspection_endpoint"] = f.issuer + "/introspect"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(d)
}

// mintRefresh makes a live refresh token at the head of a new chain.
func (f *fakeOP) mintRefresh(chain int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextToken++
	rt := fmt.Sprintf("rt-%d-%d", chain, f.nextToken)
	f.refresh[rt] = refreshState{chain: chain}
	return rt
}

// clientOK checks the client authentication the bench sent.
func (f *fakeOP) clientOK(r *http.Request) bool {
	switch f.authMethod {
	case AuthBasic:
		h := r.Header.Get("Authorization")
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic "))
		if !strings.HasPrefix(h, "Basic ") || err != nil {
			return false
		}
		// RFC 6749 §2.3.1: both halves are form-encoded.
		id, secret, ok := strings.Cut(string(raw), ":")
		return ok && unescape(id) == f.clientID && unescape(secret) == f.secret && r.PostForm.Get("client_secret") == ""
	case AuthPost:
		return r.Header.Get("Authorization") == "" && r.PostForm.Get("client_id") == f.clientID && r.PostForm.Get("client_secret") == f.secret
	default:
		return r.PostForm.Get("client_id") == f.clientID
	}
}

func (f *fakeOP) token(w http.ResponseWriter, r *http.Request) {
	f.hit("token")
	if f.dropToken {
		hj, _ := w.(http.Hijacker)
		c, _, _ := hj.Hijack()
		c.Close()
		return
	}
	_ = r.ParseForm()
	w.Header().Set("Content-Type", "application/json")
	if !f.clientOK(r) {
		f.mu.Lock()
		f.badAuth++
		f.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client"}`)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextToken++
	at := fmt.Sprintf("at-%d", f.nextToken)
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
		f.hit("cc")
		f.scopes[r.PostForm.Get("scope")]++
		f.access[at] = true
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":300}`, at)
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		st, ok := f.refresh[rt]
		if !ok {
			if f.used[rt] {
				f.reuse++
			}
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant"}`)
			return
		}
		f.hit("refresh")
		f.chainLen[st.chain]++
		f.access[at] = true
		if !f.rotate {
			fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","id_token":"x.y.z"}`, at)
			return
		}
		delete(f.refresh, rt)
		f.used[rt] = true // remembered to detect reuse
		f.nextToken++
		next := fmt.Sprintf("rt-%d-%d", st.chain, f.nextToken)
		f.refresh[next] = st
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","refresh_token":%q}`, at, next)
	default:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"unsupported_grant_type"}`)
	}
}

func (f *fakeOP) userinfo(w http.ResponseWriter, r *http.Request) {
	at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	valid := ok && f.access[at]
	f.mu.Unlock()
	if !valid {
		f.hit("userinfo-denied")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	f.hit("userinfo")
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"sub":"user1"}`)
}

func (f *fakeOP) introspect(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	if !f.clientOK(r) {
		f.hit("introspect-denied")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	f.mu.Lock()
	active := f.access[r.PostForm.Get("token")]
	f.mu.Unlock()
	if active {
		f.hit("introspect-active")
	}
	f.hit("introspect")
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"active":%v}`, active)
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}
