package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// TestReadmeServiceSnippet runs README's "A service" snippet as written
// (x/oauth2's clientcredentials with the assertion as endpoint
// parameters) against a real Latchkey.
func TestReadmeServiceSnippet(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d storagetest.Dialect) {
		e := newTestEnv(t, d)
		ctx := context.Background()
		randomString := func() string { return keyring.RandomString(12) }

		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pub, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "reports-1", Algorithm: "ES256", Use: "sig"}}})
		e.newRP("reports", func(c *storage.Client) {
			c.SecretHash, c.JWKS, c.Scopes, c.GrantTypes = nil, string(pub), []string{"reports.read", "reports.write"}, []string{"client_credentials"}
		})
		provider, err := oidc.NewProvider(ctx, e.issuer)
		if err != nil {
			t.Fatal(err)
		}
		now := e.clock.Now() // the README says time.Now(): the test server's clock is this one

		// --- README ---
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "reports-1"))
		assertion, _ := jwt.Signed(signer).Claims(jwt.Claims{
			Issuer: "reports", Subject: "reports", Audience: jwt.Audience{provider.Endpoint().TokenURL},
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)),
			ID: randomString(), // a jti is accepted once
		}).Serialize()
		cc := clientcredentials.Config{ClientID: "reports", TokenURL: provider.Endpoint().TokenURL,
			Scopes: []string{"reports.read"}, AuthStyle: oauth2.AuthStyleInParams,
			EndpointParams: url.Values{
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
				"client_assertion":      {assertion},
			}}
		tok, err := cc.Token(ctx) // a new assertion for each token request
		// --- end ---
		if err != nil || tok.AccessToken == "" || tok.Extra("scope") != "reports.read" {
			t.Fatalf("token: %v %+v", err, tok)
		}
		if _, err := cc.Token(ctx); err == nil {
			t.Fatal("the same assertion worked twice")
		}
	})
}
