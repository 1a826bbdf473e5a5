package main

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestDiscoveryAndKeys: discovery advertises what is really served (no
// implicit flow, no JWT-bearer grant, S256 only, our acr values), and both
// documents are cacheable fixed bytes with an ETag.
func TestDiscoveryAndKeys(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	get := func(method, path string, hdr map[string]string) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, e.issuer+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, body := get(http.MethodGet, "/.well-known/openid-configuration", nil)
	var d struct {
		Issuer        string   `json:"issuer"`
		ResponseTypes []string `json:"response_types_supported"`
		GrantTypes    []string `json:"grant_types_supported"`
		ACRValues     []string `json:"acr_values_supported"`
		PKCE          []string `json:"code_challenge_methods_supported"`
		DeviceAuthz   string   `json:"device_authorization_endpoint"`
		Scopes        []string `json:"scopes_supported"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != e.issuer || !slices.Equal(d.ResponseTypes, []string{"code"}) || !slices.Equal(d.PKCE, []string{"S256"}) ||
		!slices.Equal(d.ACRValues, flow.SupportedACRs) || d.DeviceAuthz != e.issuer+"/device_authorization" ||
		!slices.Contains(d.Scopes, "privacy") {
		t.Fatalf("discovery %s", body)
	}
	for _, g := range d.GrantTypes {
		if g == "implicit" || g == "urn:ietf:params:oauth:grant-type:jwt-bearer" || g == "urn:ietf:params:oauth:grant-type:token-exchange" {
			t.Fatalf("advertises %s", g)
		}
	}
	for _, path := range []string{"/.well-known/openid-configuration", "/keys"} {
		resp, body = get(http.MethodGet, path, nil)
		etag := resp.Header.Get("ETag")
		if resp.StatusCode != 200 || etag == "" || resp.Header.Get("Cache-Control") != "public, max-age=300" || len(body) == 0 {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, resp.Header)
		}
		if r2, b2 := get(http.MethodGet, path, map[string]string{"If-None-Match": etag}); r2.StatusCode != http.StatusNotModified || len(b2) != 0 {
			t.Fatalf("%s conditional: %d", path, r2.StatusCode)
		}
		if r3, b3 := get(http.MethodHead, path, nil); r3.StatusCode != 200 || len(b3) != 0 {
			t.Fatalf("%s HEAD: %d", path, r3.StatusCode)
		}
		if r4, _ := get(http.MethodPost, path, nil); r4.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("%s POST: %d", path, r4.StatusCode)
		}
	}
	_ = resp
}
