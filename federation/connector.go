package federation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"
)

// AuthOptions carry what our product asked for on to the upstream.
type AuthOptions struct {
	// Prompt is "login" when our request had prompt=login (the upstream
	// must authenticate again), else "".
	Prompt string
	// MaxAge is our request's max_age in seconds, nil when absent.
	MaxAge *int
	// LoginHint is the email the user typed (or the product's login_hint).
	LoginHint string
}

// Identity is a verified upstream sign-in.
type Identity struct {
	Issuer  string
	Subject string
	// Email is the mapped email claim (trimmed; "" when absent).
	Email string
	// EmailVerified is false only when the upstream said
	// email_verified=false. An organisation's IdP is authoritative for its
	// own domains, and many corporate IdPs do not send the claim at all.
	EmailVerified bool
	Name          string
	Groups        []string
	// AMR is the upstream's amr (RFC 8176), string or array upstream.
	AMR []string
	// AuthTime is the upstream auth_time; the time of the exchange when
	// absent (then AuthTimeAbsent is set).
	AuthTime       time.Time
	AuthTimeAbsent bool
	// RawIDToken is the upstream ID token (for id_token_hint at sign-out).
	RawIDToken string
}

// Connector is one organisation's upstream OpenID provider.
type Connector interface {
	// AuthURL is the upstream authorize URL for one round trip, with state,
	// nonce and the S256 challenge of verifier.
	AuthURL(state, nonce, verifier string, opts AuthOptions) string
	// Exchange redeems code (with the PKCE verifier) at the token endpoint
	// and verifies the ID token, its nonce, azp and at_hash.
	Exchange(ctx context.Context, code, verifier, nonce string) (Identity, error)
	// EndSessionURL is the upstream's end_session_endpoint, "" if none.
	EndSessionURL() string
}

// NewVerifier returns a fresh PKCE code verifier (RFC 7636 §4.1).
func NewVerifier() string { return oauth2.GenerateVerifier() }

// Kind classifies a failure, so that the user gets the right page.
type Kind int

// Kinds of failure.
const (
	// KindUnreachable: the upstream did not answer in time, refused the
	// connection, or answered with a server error.
	KindUnreachable Kind = iota + 1
	// KindConfig: our side of the connection is wrong (issuer mismatch,
	// unreadable client secret, bad endpoint URLs).
	KindConfig
	// KindRejected: the upstream's token endpoint refused the code or our
	// client (invalid_grant, invalid_client, …).
	KindRejected
	// KindInvalidToken: the ID token failed verification (signature, iss,
	// aud, exp, nonce, azp, at_hash, userinfo subject).
	KindInvalidToken
)

func (k Kind) String() string {
	switch k {
	case KindUnreachable:
		return "upstream unreachable"
	case KindConfig:
		return "connection misconfigured"
	case KindRejected:
		return "upstream refused"
	case KindInvalidToken:
		return "invalid id token"
	}
	return "federation error"
}

// Error is a classified upstream failure. Err is the real cause (for the
// log; never shown to the user).
type Error struct {
	Kind Kind
	Op   string
	Err  error
}

func (e *Error) Error() string {
	return fmt.Sprintf("federation: %s: %s: %v", e.Op, e.Kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of a federation error (0 if err is not one).
func KindOf(err error) Kind {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Kind
	}
	return 0
}

func fail(kind Kind, op string, err error) error {
	return &Error{Kind: kind, Op: op, Err: err}
}
