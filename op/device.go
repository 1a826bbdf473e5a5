package op

import (
	"time"

	zop "github.com/zitadel/oidc/v3/pkg/op"
)

// deviceRequest is an approved RFC 8628 device authorization turned into
// a token request. zitadel's state lacks acr and the session, so we carry
// them alongside.
type deviceRequest struct {
	st             *zop.DeviceAuthorizationState
	acr            string
	sessionID      string
	secondFactorAt time.Time
}

func (r *deviceRequest) GetAMR() []string       { return r.st.AMR }
func (r *deviceRequest) GetAudience() []string  { return r.st.GetAudience() }
func (r *deviceRequest) GetAuthTime() time.Time { return r.st.AuthTime }
func (r *deviceRequest) GetClientID() string    { return r.st.ClientID }
func (r *deviceRequest) GetScopes() []string    { return r.st.Scopes }
func (r *deviceRequest) GetSubject() string     { return r.st.Subject }
