package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// devicePoll posts one device-code poll and returns the OAuth error ("" on
// success) and the body.
func devicePoll(t *testing.T, r *rp, deviceCode string) (string, map[string]any) {
	t.Helper()
	body, _ := r.tokenPost(t, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {deviceCode}})
	var out map[string]any
	_ = json.Unmarshal(body, &out)
	e, _ := out["error"].(string)
	return e, out
}

// TestDeviceGrant: a program without a browser (a CLI, a TV) signs in with
// RFC 8628 — the user types the code on /device, signs in with the usual
// policy (second step included), sees the product and its scopes, and
// approves; the program gets tokens carrying acr and sid. Also: pending,
// slow_down, single use, denial, throttled guessing.
func TestDeviceGrant(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		u := e.createUser("cli@example.com")
		cli := e.newRP("cli", func(c *storage.Client) {
			c.Public, c.AppType = true, storage.AppTypeNative
			c.RedirectURIs = []string{"http://127.0.0.1/callback"}
			c.GrantTypes = []string{op.GrantDeviceCode, op.GrantRefreshToken}
		})
		ctx := context.Background()
		da, err := cli.oauth.DeviceAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if da.VerificationURI != e.issuer+"/device" || !strings.Contains(da.VerificationURIComplete, da.UserCode) {
			t.Fatalf("verification uri %q / %q", da.VerificationURI, da.VerificationURIComplete)
		}
		// Polling before the user acts: pending, then too fast.
		if got, _ := devicePoll(t, cli, da.DeviceCode); got != "authorization_pending" {
			t.Fatalf("first poll: %q", got)
		}
		if got, _ := devicePoll(t, cli, da.DeviceCode); got != "slow_down" {
			t.Fatalf("immediate second poll: %q", got)
		}
		e.clock.Advance(5 * time.Second)
		if got, _ := devicePoll(t, cli, da.DeviceCode); got != "authorization_pending" {
			t.Fatalf("paced poll: %q", got)
		}

		// The user enters the code in lower case without the dash.
		b := e.newBrowser()
		p := b.get(e.issuer + "/device")
		typed := strings.ToLower(strings.ReplaceAll(da.UserCode, "-", ""))
		p = b.drive(b.submit(p, "/device", url.Values{"user_code": {typed}}), u.Email, signInOpts{})
		if !p.at("/device/confirm") {
			t.Fatalf("unexpected page %s (%d)\n%s", p.url, p.status, p.body)
		}
		if !strings.Contains(p.body, "App cli") || !strings.Contains(p.body, "stay signed in on the device") {
			t.Fatalf("confirm page lacks the product or scopes:\n%s", p.body)
		}
		p = b.submit(p, "/device/confirm", url.Values{"choice": {"approve"}})
		if !strings.Contains(p.body, "Your device is connected") {
			t.Fatalf("after approve: %s", p.body)
		}

		// The program's next poll gets the tokens (x/oauth2's device client).
		da.Interval = 1
		e.clock.Advance(5 * time.Second)
		tok, err := cli.oauth.DeviceAccessToken(ctx, da)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, claims := cli.idClaims(raw)
		if idt.Subject != u.ID || claims["acr"] != flow.ACRMFAFresh || claims["sid"] == nil ||
			!slices.Equal(toStrings(claims["amr"]), []string{"pwd", "otp", "mfa"}) {
			t.Fatalf("device id token: sub %s claims %v", idt.Subject, claims)
		}
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token with offline_access")
		}
		tok2 := refresh(t, cli, tok.RefreshToken)
		if tok2.AccessToken == "" {
			t.Fatal("device refresh failed")
		}
		// The device code is single use: a second redemption is
		// invalid_grant (issue 12 item 6; RFC 8628 §3.5 keeps
		// access_denied for a user's refusal).
		e.clock.Advance(5 * time.Second)
		if got, _ := devicePoll(t, cli, da.DeviceCode); got != "invalid_grant" {
			t.Fatalf("a used device code: %q, want invalid_grant", got)
		}

		// Denial.
		da2, err := cli.oauth.DeviceAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p = b.submit(b.get(e.issuer+"/device?user_code="+url.QueryEscape(da2.UserCode)), "/device", url.Values{"user_code": {da2.UserCode}})
		if !p.at("/device/confirm") {
			t.Fatalf("second device: the browser session should stand; got %s", p.url)
		}
		b.submit(p, "/device/confirm", url.Values{"choice": {"deny"}})
		if got, _ := devicePoll(t, cli, da2.DeviceCode); got != "access_denied" {
			t.Fatalf("denied: %q", got)
		}

		// Guessing codes is throttled per address.
		p = b.get(e.issuer + "/device")
		for i := 0; i < 6; i++ {
			p = b.submit(p, "/device", url.Values{"user_code": {"BCDF-GHJK"}})
		}
		if p.status != http.StatusTooManyRequests {
			t.Fatalf("guessing not throttled: %d", p.status)
		}
	})
}

// TestDeviceGrantScopesFiltered: a device asking for unknown scopes gets
// only ours.
func TestDeviceGrantScopesFiltered(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	cli := e.newRP("cli", func(c *storage.Client) {
		c.Public, c.AppType = true, storage.AppTypeNative
		c.GrantTypes = []string{op.GrantDeviceCode}
	})
	cli.oauth.Scopes = []string{"openid", "admin:everything"}
	da, err := cli.oauth.DeviceAuth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.store.GetDeviceAuthorizationByUserCodeHash(context.Background(), first(e.kr.UserCodeDigests(da.UserCode)))
	if err != nil || !slices.Equal(d.Scopes, []string{"openid"}) {
		t.Fatalf("stored scopes %v (%v)", d.Scopes, err)
	}
}

// TestDeviceUserCodeSingleUseAndExpiry: once answered, neither the user
// code nor the confirmation form works again; past its 10 minutes the user
// code is refused and a confirmation left open connects nothing.
func TestDeviceUserCodeSingleUseAndExpiry(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, storagetest.Dialects(t)[0])
	u := e.createUser("tv@example.com")
	cli := e.newRP("cli", func(c *storage.Client) {
		c.Public, c.AppType, c.GrantTypes = true, storage.AppTypeNative, []string{op.GrantDeviceCode}
	})
	b := e.newBrowser()
	deviceAuth := func() *oauth2.DeviceAuthResponse {
		t.Helper()
		da, err := cli.oauth.DeviceAuth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return da
	}
	enter := func(userCode string) response {
		t.Helper()
		return b.submit(b.get(e.issuer+"/device"), "/device", url.Values{"user_code": {userCode}})
	}
	notRight := func(what string, p response) {
		t.Helper()
		if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "not right, or it has expired") {
			t.Errorf("%s: status %d on %s", what, p.status, p.url)
		}
	}

	// Approved: a second answer on the same form and the same user code
	// are refused, and the device still gets its tokens.
	da := deviceAuth()
	confirm := b.drive(enter(da.UserCode), u.Email, signInOpts{})
	if !confirm.at("/device/confirm") {
		t.Fatalf("confirm page: %s (%d)", confirm.url, confirm.status)
	}
	if p := b.submit(confirm, "/device/confirm", url.Values{"choice": {"approve"}}); !strings.Contains(p.body, "Your device is connected") {
		t.Fatalf("approve: %d\n%s", p.status, p.body)
	}
	if p := b.submit(confirm, "/device/confirm", url.Values{"choice": {"deny"}}); p.status != http.StatusBadRequest || !strings.Contains(p.body, "already answered") {
		t.Errorf("a second answer: %d\n%s", p.status, p.body)
	}
	notRight("an answered user code", enter(da.UserCode))
	if got, out := devicePoll(t, cli, da.DeviceCode); got != "" || out["access_token"] == nil {
		t.Fatalf("the approved device after the replays: %q", got)
	}

	// A user code lives 10 minutes by the injected clock: usable at
	// 10 min − 1 s, refused at 10 min + 1 s.
	late := deviceAuth()
	open := enter(late.UserCode) // signed in: straight to the confirmation
	if !open.at("/device/confirm") {
		t.Fatalf("confirm page: %s (%d)", open.url, open.status)
	}
	expired := deviceAuth()
	e.clock.Advance(10*time.Minute - time.Second)
	if p := enter(expired.UserCode); !p.at("/device/confirm") {
		t.Fatalf("a user code at 10 min - 1 s: %s (%d)", p.url, p.status)
	}
	e.clock.Advance(2 * time.Second)
	notRight("an expired user code", enter(expired.UserCode))
	if p := b.submit(open, "/device/confirm", url.Values{"choice": {"approve"}}); p.status != http.StatusBadRequest || strings.Contains(p.body, "Your device is connected") {
		t.Errorf("a confirmation after 10 minutes: %d\n%s", p.status, p.body)
	}
	d, err := e.store.GetDeviceAuthorizationByUserCodeHash(context.Background(), first(e.kr.UserCodeDigests(late.UserCode)))
	if err != nil || d.State != storage.DevicePending {
		t.Fatalf("the late confirmation changed the request: %s %v", d.State, err)
	}
}

func first[A, B any](a A, _ B) A { return a }

// TestDeviceUserCodeStoredAsHMAC: after a device authorization, no column
// of the database holds the user code in the clear (in any spelling), on
// either database: a read of the database does not hand out codes that
// approve devices.
func TestDeviceUserCodeStoredAsHMAC(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		dbURL := d.URL(t)
		e := newTestEnv(t, storagetest.Dialect{Name: d.Name, Open: func(tb testing.TB) *storage.Store { return storagetest.OpenURL(tb, dbURL) }})
		cli := e.newRP("cli", func(c *storage.Client) {
			c.Public, c.AppType = true, storage.AppTypeNative
			c.RedirectURIs = []string{"http://127.0.0.1/callback"}
			c.GrantTypes = []string{op.GrantDeviceCode}
		})
		da, err := cli.oauth.DeviceAuth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range storagetest.Dump(t, dbURL, "device_authorizations") {
			for col, v := range row {
				for _, spelling := range []string{da.UserCode, strings.ReplaceAll(da.UserCode, "-", ""), strings.ToLower(da.UserCode)} {
					if strings.Contains(v, spelling) {
						t.Fatalf("device_authorizations.%s holds the user code %q", col, da.UserCode)
					}
				}
			}
		}
		// And the code still works.
		b := e.newBrowser()
		if p := b.submit(b.get(e.issuer+"/device"), "/device", url.Values{"user_code": {da.UserCode}}); !p.at("/login/identify") {
			t.Fatalf("entering the code: %s (%d)", p.url, p.status)
		}
	})
}
