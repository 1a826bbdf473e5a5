package op

import (
	"log/slog"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey/latchkey/storage"
)

// authRequest adapts a stored auth request to zitadel's op.AuthRequest.
type authRequest struct {
	ar storage.AuthRequest
	// accessJKT and refreshJKT bind the tokens of the code exchange to a
	// DPoP key (RFC 9449); set by the token endpoint.
	accessJKT, refreshJKT string
}

var (
	_ zop.AuthRequest    = (*authRequest)(nil)
	_ zop.LogAuthRequest = (*authRequest)(nil)
)

func (a *authRequest) GetID() string             { return a.ar.ID }
func (a *authRequest) GetACR() string            { return a.ar.ACR }
func (a *authRequest) GetAMR() []string          { return a.ar.AMR }
func (a *authRequest) GetAudience() []string     { return []string{a.ar.ClientID} }
func (a *authRequest) GetAuthTime() time.Time    { return a.ar.AuthTime }
func (a *authRequest) GetClientID() string       { return a.ar.ClientID }
func (a *authRequest) GetNonce() string          { return a.ar.Nonce }
func (a *authRequest) GetRedirectURI() string    { return a.ar.RedirectURI }
func (a *authRequest) GetScopes() []string       { return a.ar.Scopes }
func (a *authRequest) GetState() string          { return a.ar.State }
func (a *authRequest) GetSubject() string        { return a.ar.UserID }
func (a *authRequest) Done() bool                { return a.ar.Done }
func (a *authRequest) GetSessionID() string      { return a.ar.SessionID }
func (a *authRequest) SetCurrentScopes([]string) {}

func (a *authRequest) GetResponseType() oidc.ResponseType {
	return oidc.ResponseType(a.ar.ResponseType)
}

func (a *authRequest) GetResponseMode() oidc.ResponseMode {
	return oidc.ResponseMode(a.ar.ResponseMode)
}

func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.ar.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{
		Challenge: a.ar.CodeChallenge,
		Method:    oidc.CodeChallengeMethod(a.ar.CodeChallengeMethod),
	}
}

// LogValue keeps secrets (state, nonce, challenge) out of the logs.
func (a *authRequest) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", a.ar.ID),
		slog.String("client_id", a.ar.ClientID),
		slog.Bool("done", a.ar.Done),
	)
}
