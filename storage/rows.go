package storage

// Row structs are the gorm models: one per table, unexported, with every
// column named explicitly so that renaming a Go field can never rename a
// column. They convert to and from the domain types of types.go, which
// stay free of gorm.
//
// Encodings (identical on both dialects):
//   - instants: int64 Unix milliseconds, 0 for the zero time.Time. Driver
//     datetimes are avoided: SQLite stores them as text that compares
//     wrongly across formats, and time zones leak in. Fields holding
//     milliseconds are named …Ms so gorm never treats them as its own
//     auto-updated CreatedAt/UpdatedAt.
//   - durations: int64 milliseconds.
//   - string lists and maps: JSON text; nil and empty are both stored as
//     "[]" / "{}" and read back as nil.
//   - byte strings: bytea/BLOB through the blob type (empty is NULL and
//     reads back as nil, so nullable unique columns never collide on "").

import (
	"bytes"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// blob stores empty byte strings as NULL.
type blob []byte

// Value implements driver.Valuer.
func (b blob) Value() (driver.Value, error) {
	if len(b) == 0 {
		return nil, nil
	}
	return []byte(b), nil
}

// Scan implements sql.Scanner.
func (b *blob) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*b = nil
	case []byte:
		if len(v) == 0 {
			*b = nil
		} else {
			*b = bytes.Clone(v)
		}
	case string:
		if v == "" {
			*b = nil
		} else {
			*b = []byte(v)
		}
	default:
		return fmt.Errorf("storage: cannot scan %T into bytes", src)
	}
	return nil
}

func bytesOf(b blob) []byte {
	if len(b) == 0 {
		return nil
	}
	return []byte(b)
}

// ms converts an instant to Unix milliseconds (zero → 0). Sub-millisecond
// precision is truncated.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// tm is the inverse of ms; instants come back in UTC.
func tm(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func durMs(d time.Duration) int64 { return d.Milliseconds() }

func msDur(v int64) time.Duration { return time.Duration(v) * time.Millisecond }

func encList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	if s, ok := encPlainList(l); ok {
		return s
	}
	b, err := json.Marshal(l)
	if err != nil { // cannot happen for []string
		panic(err)
	}
	return string(b)
}

func encMap(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, err := json.Marshal(m)
	if err != nil { // cannot happen for map[string]string
		panic(err)
	}
	return string(b)
}

// plainJSON: printable ASCII that json.Marshal writes as it is (it
// escapes '"', '\\' and, for HTML, '<', '>' and '&').
func plainJSON(c byte) bool {
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

// encPlainList is json.Marshal of a list whose strings are all plain
// (scopes, audiences, AMR values: the token path's lists), byte for byte,
// without reflection; ok is false for anything else.
func encPlainList(l []string) (string, bool) {
	n := 1
	for _, v := range l {
		for i := 0; i < len(v); i++ {
			if !plainJSON(v[i]) {
				return "", false
			}
		}
		n += len(v) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, v := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, v...)
		b = append(b, '"')
	}
	return string(append(b, ']')), true
}

// decPlainList decodes what encPlainList writes (["a","b"], no spaces,
// no escapes) without reflection; ok is false for anything else, which
// json.Unmarshal then reads.
func decPlainList(s string) ([]string, bool) {
	if len(s) < 4 || s[0] != '[' || s[len(s)-1] != ']' {
		return nil, false
	}
	l := make([]string, 0, strings.Count(s, ",")+1)
	i := 1
	for {
		if s[i] != '"' {
			return nil, false
		}
		j := i + 1
		for j < len(s) && plainJSON(s[j]) {
			j++
		}
		if j+1 >= len(s) || s[j] != '"' {
			return nil, false
		}
		l = append(l, s[i+1:j])
		switch s[j+1] {
		case ']':
			if j+2 != len(s) {
				return nil, false
			}
			return l, true
		case ',':
			i = j + 2
			if i >= len(s) {
				return nil, false
			}
		default:
			return nil, false
		}
	}
}

// decoder collects the first JSON error while a row is converted, so that
// conversions read as plain assignments.
type decoder struct{ err error }

func (d *decoder) list(s string) []string {
	if s == "" || s == "[]" || s == "null" {
		return nil
	}
	if l, ok := decPlainList(s); ok {
		return l
	}
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil && d.err == nil {
		d.err = fmt.Errorf("storage: corrupt list column: %w", err)
	}
	if len(l) == 0 {
		return nil
	}
	return l
}

func (d *decoder) dict(s string) map[string]string {
	if s == "" || s == "{}" || s == "null" {
		return nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil && d.err == nil {
		d.err = fmt.Errorf("storage: corrupt map column: %w", err)
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// ---------------------------------------------------------------- users

type userRow struct {
	ID                        string `gorm:"column:id;primaryKey"`
	Email                     string `gorm:"column:email"`
	EmailKey                  string `gorm:"column:email_key"`
	EmailVerified             bool   `gorm:"column:email_verified"`
	Name                      string `gorm:"column:name"`
	Region                    string `gorm:"column:region"`
	PasswordHash              string `gorm:"column:password_hash"`
	Disabled                  bool   `gorm:"column:disabled"`
	OrgID                     string `gorm:"column:org_id"`
	NeedsBackupCode           bool   `gorm:"column:needs_backup_code"`
	PrivacyProductImprovement bool   `gorm:"column:privacy_product_improvement"`
	PrivacyPersonalisedOffers bool   `gorm:"column:privacy_personalised_offers"`
	PrivacyUpdatedMs          int64  `gorm:"column:privacy_updated_at"`
	PasswordChangedMs         int64  `gorm:"column:password_changed_at"`
	CreatedMs                 int64  `gorm:"column:created_at"`
	UpdatedMs                 int64  `gorm:"column:updated_at"`
	Language                  string `gorm:"column:language"`
	TimeZone                  string `gorm:"column:time_zone"`
}

func (userRow) TableName() string { return "users" }

func userToRow(u User) userRow {
	return userRow{
		ID: u.ID, Email: u.Email, EmailKey: emailKey(u.Email), EmailVerified: u.EmailVerified,
		Name: u.Name, Region: u.Region, PasswordHash: u.PasswordHash, Disabled: u.Disabled,
		OrgID: u.OrgID, NeedsBackupCode: u.NeedsBackupCode,
		PrivacyProductImprovement: u.PrivacyProductImprovement,
		PrivacyPersonalisedOffers: u.PrivacyPersonalisedOffers,
		PrivacyUpdatedMs:          ms(u.PrivacyUpdatedAt),
		PasswordChangedMs:         ms(u.PasswordChangedAt),
		CreatedMs:                 ms(u.CreatedAt), UpdatedMs: ms(u.UpdatedAt),
		Language: u.Language, TimeZone: u.TimeZone,
	}
}

func (r userRow) domain() User {
	return User{
		ID: r.ID, Email: r.Email, EmailVerified: r.EmailVerified, Name: r.Name,
		Region: r.Region, PasswordHash: r.PasswordHash, Disabled: r.Disabled,
		OrgID: r.OrgID, NeedsBackupCode: r.NeedsBackupCode,
		PrivacyProductImprovement: r.PrivacyProductImprovement,
		PrivacyPersonalisedOffers: r.PrivacyPersonalisedOffers,
		PrivacyUpdatedAt:          tm(r.PrivacyUpdatedMs),
		PasswordChangedAt:         tm(r.PasswordChangedMs),
		CreatedAt:                 tm(r.CreatedMs), UpdatedAt: tm(r.UpdatedMs),
		Language: r.Language, TimeZone: r.TimeZone,
	}
}

// -------------------------------------------------------------- clients

type clientRow struct {
	ID                     string `gorm:"column:id;primaryKey"`
	Name                   string `gorm:"column:name"`
	SecretHash             blob   `gorm:"column:secret_hash"`
	Public                 bool   `gorm:"column:public"`
	RedirectURIs           string `gorm:"column:redirect_uris"`
	PostLogoutRedirectURIs string `gorm:"column:post_logout_redirect_uris"`
	GrantTypes             string `gorm:"column:grant_types"`
	AppType                string `gorm:"column:app_type"`
	AccessTokenFormat      string `gorm:"column:access_token_format"`
	AccessTokenLifetimeMs  int64  `gorm:"column:access_token_lifetime_ms"`
	IDTokenLifetimeMs      int64  `gorm:"column:id_token_lifetime_ms"`
	RefreshTokenLifetimeMs int64  `gorm:"column:refresh_token_lifetime_ms"`
	DefaultACR             string `gorm:"column:default_acr"`
	AdminAccess            string `gorm:"column:admin_access"`
	Source                 string `gorm:"column:source"`
	CreatedMs              int64  `gorm:"column:created_at"`
	UpdatedMs              int64  `gorm:"column:updated_at"`
	JWKS                   string `gorm:"column:jwks"`
	JWKSURI                string `gorm:"column:jwks_uri"`
	Scopes                 string `gorm:"column:scopes"`
	BackchannelLogoutURI   string `gorm:"column:backchannel_logout_uri"`
	BackchannelLogoutSID   bool   `gorm:"column:backchannel_logout_session_required"`
	ThirdParty             bool   `gorm:"column:third_party"`
	RequirePAR             bool   `gorm:"column:require_par"`
	DPoPBound              bool   `gorm:"column:dpop_bound"`
	IDTokenSigningAlg      string `gorm:"column:id_token_signed_response_alg"`
	LogoURI                string `gorm:"column:logo_uri"`
}

func (clientRow) TableName() string { return "clients" }

// clientColumns are clientRow's columns in field order, for GetClient's
// prepared statement (every sign-in and token request reads its client;
// TestHandWrittenInserts checks the list against the gorm schema).
const clientColumns = `id, name, secret_hash, public, redirect_uris, post_logout_redirect_uris, grant_types,
	app_type, access_token_format, access_token_lifetime_ms, id_token_lifetime_ms,
	refresh_token_lifetime_ms, default_acr, admin_access, source, created_at, updated_at,
	jwks, jwks_uri, scopes, backchannel_logout_uri, backchannel_logout_session_required,
	third_party, require_par, dpop_bound, id_token_signed_response_alg, logo_uri`

// ptrs are the scan targets of clientColumns, in order.
func (r *clientRow) ptrs() []any {
	return []any{&r.ID, &r.Name, &r.SecretHash, &r.Public, &r.RedirectURIs, &r.PostLogoutRedirectURIs,
		&r.GrantTypes, &r.AppType, &r.AccessTokenFormat, &r.AccessTokenLifetimeMs,
		&r.IDTokenLifetimeMs, &r.RefreshTokenLifetimeMs, &r.DefaultACR, &r.AdminAccess,
		&r.Source, &r.CreatedMs, &r.UpdatedMs, &r.JWKS, &r.JWKSURI, &r.Scopes,
		&r.BackchannelLogoutURI, &r.BackchannelLogoutSID, &r.ThirdParty, &r.RequirePAR,
		&r.DPoPBound, &r.IDTokenSigningAlg, &r.LogoURI}
}

func clientToRow(c Client) clientRow {
	return clientRow{
		ID: c.ID, Name: c.Name, SecretHash: c.SecretHash, Public: c.Public,
		RedirectURIs:           encList(c.RedirectURIs),
		PostLogoutRedirectURIs: encList(c.PostLogoutRedirectURIs),
		GrantTypes:             encList(c.GrantTypes),
		AppType:                c.AppType, AccessTokenFormat: c.AccessTokenFormat,
		AccessTokenLifetimeMs:  durMs(c.AccessTokenLifetime),
		IDTokenLifetimeMs:      durMs(c.IDTokenLifetime),
		RefreshTokenLifetimeMs: durMs(c.RefreshTokenLifetime),
		DefaultACR:             c.DefaultACR, Source: c.Source, AdminAccess: c.AdminAccess,
		CreatedMs: ms(c.CreatedAt), UpdatedMs: ms(c.UpdatedAt),
		JWKS: c.JWKS, JWKSURI: c.JWKSURI, Scopes: encList(c.Scopes),
		BackchannelLogoutURI: c.BackchannelLogoutURI, BackchannelLogoutSID: c.BackchannelLogoutSessionRequired,
		ThirdParty: c.ThirdParty, RequirePAR: c.RequirePAR, DPoPBound: c.DPoPBound,
		IDTokenSigningAlg: c.IDTokenSigningAlg, LogoURI: c.LogoURI,
	}
}

func (r clientRow) domain() (Client, error) {
	var d decoder
	c := Client{
		ID: r.ID, Name: r.Name, SecretHash: bytesOf(r.SecretHash), Public: r.Public,
		RedirectURIs:           d.list(r.RedirectURIs),
		PostLogoutRedirectURIs: d.list(r.PostLogoutRedirectURIs),
		GrantTypes:             d.list(r.GrantTypes),
		AppType:                r.AppType, AccessTokenFormat: r.AccessTokenFormat,
		AccessTokenLifetime:  msDur(r.AccessTokenLifetimeMs),
		IDTokenLifetime:      msDur(r.IDTokenLifetimeMs),
		RefreshTokenLifetime: msDur(r.RefreshTokenLifetimeMs),
		DefaultACR:           r.DefaultACR, Source: r.Source, AdminAccess: r.AdminAccess,
		CreatedAt: tm(r.CreatedMs), UpdatedAt: tm(r.UpdatedMs),
		JWKS: r.JWKS, JWKSURI: r.JWKSURI, Scopes: d.list(r.Scopes),
		BackchannelLogoutURI: r.BackchannelLogoutURI, BackchannelLogoutSessionRequired: r.BackchannelLogoutSID,
		ThirdParty: r.ThirdParty, RequirePAR: r.RequirePAR, DPoPBound: r.DPoPBound,
		IDTokenSigningAlg: r.IDTokenSigningAlg, LogoURI: r.LogoURI,
	}
	return c, d.err
}

// -------------------------------------------------------- auth requests

type authRequestRow struct {
	ID                  string `gorm:"column:id;primaryKey"`
	ClientID            string `gorm:"column:client_id"`
	RedirectURI         string `gorm:"column:redirect_uri"`
	Scopes              string `gorm:"column:scopes"`
	State               string `gorm:"column:state"`
	Nonce               string `gorm:"column:nonce"`
	ResponseType        string `gorm:"column:response_type"`
	ResponseMode        string `gorm:"column:response_mode"`
	CodeChallenge       string `gorm:"column:code_challenge"`
	CodeChallengeMethod string `gorm:"column:code_challenge_method"`
	Prompt              string `gorm:"column:prompt"`
	MaxAge              *int64 `gorm:"column:max_age"`
	ACRValues           string `gorm:"column:acr_values"`
	LoginHint           string `gorm:"column:login_hint"`
	IDTokenHintSubject  string `gorm:"column:id_token_hint_subject"`
	UILocales           string `gorm:"column:ui_locales"`
	CreatedMs           int64  `gorm:"column:created_at"`
	ExpiresMs           int64  `gorm:"column:expires_at"`
	BrowserHash         blob   `gorm:"column:browser_hash"`
	UserID              string `gorm:"column:user_id"`
	PasswordMs          int64  `gorm:"column:password_at"`
	SecondFactorMs      int64  `gorm:"column:second_factor_at"`
	SecondFactorMethod  string `gorm:"column:second_factor_method"`
	FederatedMs         int64  `gorm:"column:federated_at"`
	UpstreamAMR         string `gorm:"column:upstream_amr"`
	BackupCodeShown     bool   `gorm:"column:backup_code_shown"`
	RememberChosen      bool   `gorm:"column:remember_chosen"`
	StaySignedIn        bool   `gorm:"column:stay_signed_in"`
	BackupCodeSealed    blob   `gorm:"column:backup_code_sealed"`
	UpstreamAuthTimeMs  int64  `gorm:"column:upstream_auth_time"`
	PasskeyMs           int64  `gorm:"column:passkey_at"`
	PasskeyUV           bool   `gorm:"column:passkey_user_verified"`
	PasskeyBE           bool   `gorm:"column:passkey_backup_eligible"`
	Done                bool   `gorm:"column:done"`
	AMR                 string `gorm:"column:amr"`
	ACR                 string `gorm:"column:acr"`
	AuthTimeMs          int64  `gorm:"column:auth_time"`
	SessionID           string `gorm:"column:session_id"`
	CodeHash            blob   `gorm:"column:code_hash"`
	CodeExpiresMs       int64  `gorm:"column:code_expires_at"`
	CodeUsedMs          int64  `gorm:"column:code_used_at"`
	ConsentMs           int64  `gorm:"column:consent_at"`
}

func (authRequestRow) TableName() string { return "auth_requests" }

// authRequestColumns are authRequestRow's columns in field order, for the
// sign-in's hand-written statements (TestHandWrittenInserts checks them
// against the gorm schema).
const authRequestColumns = `id, client_id, redirect_uri, scopes, state, nonce, response_type, response_mode,
	code_challenge, code_challenge_method, prompt, max_age, acr_values, login_hint,
	id_token_hint_subject, ui_locales, created_at, expires_at, browser_hash, user_id,
	password_at, second_factor_at, second_factor_method, federated_at, upstream_amr,
	backup_code_shown, remember_chosen, stay_signed_in, backup_code_sealed,
	upstream_auth_time, passkey_at, passkey_user_verified, passkey_backup_eligible, done,
	amr, acr, auth_time, session_id, code_hash, code_expires_at, code_used_at, consent_at`

// authRequestByID reads one request (GetAuthRequest, and the read of
// UpdateAuthRequest's read-modify-write with " FOR UPDATE" on PostgreSQL).
const authRequestByID = "SELECT " + authRequestColumns + " FROM auth_requests WHERE id = ?"

// authRequestUpdate writes every column of authRequestColumns but id, in
// their order; its arguments are updateValues().
var authRequestUpdate = "UPDATE auth_requests SET " + assignments(authRequestColumns, "id") + " WHERE id = ?"

// assignments is "c = ?, …" for each of columns but skip.
func assignments(columns, skip string) string {
	var sets []string
	for _, c := range splitColumns(columns) {
		if c != skip {
			sets = append(sets, c+" = ?")
		}
	}
	return strings.Join(sets, ", ")
}

// ptrs are the scan targets of authRequestColumns, in order.
func (r *authRequestRow) ptrs() []any {
	return []any{&r.ID, &r.ClientID, &r.RedirectURI, &r.Scopes, &r.State, &r.Nonce, &r.ResponseType,
		&r.ResponseMode, &r.CodeChallenge, &r.CodeChallengeMethod, &r.Prompt, &r.MaxAge,
		&r.ACRValues, &r.LoginHint, &r.IDTokenHintSubject, &r.UILocales, &r.CreatedMs,
		&r.ExpiresMs, &r.BrowserHash, &r.UserID, &r.PasswordMs, &r.SecondFactorMs,
		&r.SecondFactorMethod, &r.FederatedMs, &r.UpstreamAMR, &r.BackupCodeShown,
		&r.RememberChosen, &r.StaySignedIn, &r.BackupCodeSealed, &r.UpstreamAuthTimeMs,
		&r.PasskeyMs, &r.PasskeyUV, &r.PasskeyBE, &r.Done, &r.AMR, &r.ACR, &r.AuthTimeMs,
		&r.SessionID, &r.CodeHash, &r.CodeExpiresMs, &r.CodeUsedMs, &r.ConsentMs}
}

// updateValues are authRequestUpdate's arguments: every column but id,
// in order, then id.
func (r *authRequestRow) updateValues() []any {
	return []any{r.ClientID, r.RedirectURI, r.Scopes, r.State, r.Nonce, r.ResponseType, r.ResponseMode,
		r.CodeChallenge, r.CodeChallengeMethod, r.Prompt, r.MaxAge, r.ACRValues, r.LoginHint,
		r.IDTokenHintSubject, r.UILocales, r.CreatedMs, r.ExpiresMs, r.BrowserHash, r.UserID,
		r.PasswordMs, r.SecondFactorMs, r.SecondFactorMethod, r.FederatedMs, r.UpstreamAMR,
		r.BackupCodeShown, r.RememberChosen, r.StaySignedIn, r.BackupCodeSealed,
		r.UpstreamAuthTimeMs, r.PasskeyMs, r.PasskeyUV, r.PasskeyBE, r.Done, r.AMR, r.ACR,
		r.AuthTimeMs, r.SessionID, r.CodeHash, r.CodeExpiresMs, r.CodeUsedMs, r.ConsentMs,
		r.ID}
}

func authRequestToRow(a AuthRequest) authRequestRow {
	var maxAge *int64
	if a.MaxAge != nil {
		v := *a.MaxAge
		maxAge = &v
	}
	return authRequestRow{
		ID: a.ID, ClientID: a.ClientID, RedirectURI: a.RedirectURI, Scopes: encList(a.Scopes),
		State: a.State, Nonce: a.Nonce, ResponseType: a.ResponseType, ResponseMode: a.ResponseMode,
		CodeChallenge: a.CodeChallenge, CodeChallengeMethod: a.CodeChallengeMethod,
		Prompt: encList(a.Prompt), MaxAge: maxAge, ACRValues: encList(a.ACRValues),
		LoginHint: a.LoginHint, IDTokenHintSubject: a.IDTokenHintSubject,
		UILocales: encList(a.UILocales), CreatedMs: ms(a.CreatedAt), ExpiresMs: ms(a.ExpiresAt),
		BrowserHash: a.BrowserHash, UserID: a.UserID, PasswordMs: ms(a.PasswordAt),
		SecondFactorMs: ms(a.SecondFactorAt), SecondFactorMethod: a.SecondFactorMethod,
		FederatedMs: ms(a.FederatedAt), UpstreamAMR: encList(a.UpstreamAMR),
		BackupCodeShown: a.BackupCodeShown, RememberChosen: a.RememberChosen,
		StaySignedIn: a.StaySignedIn, BackupCodeSealed: a.BackupCodeSealed,
		UpstreamAuthTimeMs: ms(a.UpstreamAuthTime),
		PasskeyMs:          ms(a.PasskeyAt), PasskeyUV: a.PasskeyUserVerified, PasskeyBE: a.PasskeyBackupEligible,
		Done: a.Done, AMR: encList(a.AMR), ACR: a.ACR, AuthTimeMs: ms(a.AuthTime),
		SessionID: a.SessionID, CodeHash: a.CodeHash, CodeExpiresMs: ms(a.CodeExpiresAt),
		CodeUsedMs: ms(a.CodeUsedAt), ConsentMs: ms(a.ConsentAt),
	}
}

func (r authRequestRow) domain() (AuthRequest, error) {
	var d decoder
	var maxAge *int64
	if r.MaxAge != nil {
		v := *r.MaxAge
		maxAge = &v
	}
	a := AuthRequest{
		ID: r.ID, ClientID: r.ClientID, RedirectURI: r.RedirectURI, Scopes: d.list(r.Scopes),
		State: r.State, Nonce: r.Nonce, ResponseType: r.ResponseType, ResponseMode: r.ResponseMode,
		CodeChallenge: r.CodeChallenge, CodeChallengeMethod: r.CodeChallengeMethod,
		Prompt: d.list(r.Prompt), MaxAge: maxAge, ACRValues: d.list(r.ACRValues),
		LoginHint: r.LoginHint, IDTokenHintSubject: r.IDTokenHintSubject,
		UILocales: d.list(r.UILocales), CreatedAt: tm(r.CreatedMs), ExpiresAt: tm(r.ExpiresMs),
		BrowserHash: bytesOf(r.BrowserHash), UserID: r.UserID, PasswordAt: tm(r.PasswordMs),
		SecondFactorAt: tm(r.SecondFactorMs), SecondFactorMethod: r.SecondFactorMethod,
		FederatedAt: tm(r.FederatedMs), UpstreamAMR: d.list(r.UpstreamAMR),
		BackupCodeShown: r.BackupCodeShown, RememberChosen: r.RememberChosen,
		StaySignedIn: r.StaySignedIn, BackupCodeSealed: bytesOf(r.BackupCodeSealed),
		UpstreamAuthTime: tm(r.UpstreamAuthTimeMs),
		PasskeyAt:        tm(r.PasskeyMs), PasskeyUserVerified: r.PasskeyUV, PasskeyBackupEligible: r.PasskeyBE,
		Done: r.Done, AMR: d.list(r.AMR), ACR: r.ACR, AuthTime: tm(r.AuthTimeMs),
		SessionID: r.SessionID, CodeHash: bytesOf(r.CodeHash), CodeExpiresAt: tm(r.CodeExpiresMs),
		CodeUsedAt: tm(r.CodeUsedMs), ConsentAt: tm(r.ConsentMs),
	}
	return a, d.err
}

// ------------------------------------------------------------- sessions

type sessionRow struct {
	ID             string `gorm:"column:id;primaryKey"`
	UserID         string `gorm:"column:user_id"`
	TokenHash      blob   `gorm:"column:token_hash"`
	CreatedMs      int64  `gorm:"column:created_at"`
	LastSeenMs     int64  `gorm:"column:last_seen_at"`
	AuthTimeMs     int64  `gorm:"column:auth_time"`
	SecondFactorMs int64  `gorm:"column:second_factor_at"`
	AMR            string `gorm:"column:amr"`
	Federated      bool   `gorm:"column:federated"`
	StaySignedIn   bool   `gorm:"column:stay_signed_in"`
	UserAgent      string `gorm:"column:user_agent"`
	IP             string `gorm:"column:ip"`
}

func (sessionRow) TableName() string { return "sessions" }

// sessionColumns are sessionRow's columns in field order, for the cookie
// lookup's prepared SELECT (TestHandWrittenInserts checks them).
const sessionColumns = `id, user_id, token_hash, created_at, last_seen_at, auth_time,
	second_factor_at, amr, federated, stay_signed_in, user_agent, ip`

// ptrs are the scan targets of sessionColumns, in order.
func (r *sessionRow) ptrs() []any {
	return []any{&r.ID, &r.UserID, &r.TokenHash, &r.CreatedMs, &r.LastSeenMs, &r.AuthTimeMs,
		&r.SecondFactorMs, &r.AMR, &r.Federated, &r.StaySignedIn, &r.UserAgent, &r.IP}
}

func sessionToRow(s Session) sessionRow {
	return sessionRow{
		ID: s.ID, UserID: s.UserID, TokenHash: s.TokenHash, CreatedMs: ms(s.CreatedAt),
		LastSeenMs: ms(s.LastSeenAt), AuthTimeMs: ms(s.AuthTime), SecondFactorMs: ms(s.SecondFactorAt),
		AMR: encList(s.AMR), Federated: s.Federated, StaySignedIn: s.StaySignedIn,
		UserAgent: s.UserAgent, IP: s.IP,
	}
}

func (r sessionRow) domain() (Session, error) {
	var d decoder
	s := Session{
		ID: r.ID, UserID: r.UserID, TokenHash: bytesOf(r.TokenHash), CreatedAt: tm(r.CreatedMs),
		LastSeenAt: tm(r.LastSeenMs), AuthTime: tm(r.AuthTimeMs), SecondFactorAt: tm(r.SecondFactorMs),
		AMR: d.list(r.AMR), Federated: r.Federated, StaySignedIn: r.StaySignedIn,
		UserAgent: r.UserAgent, IP: r.IP,
	}
	return s, d.err
}

// ------------------------------------------------------ trusted devices

type trustedDeviceRow struct {
	ID                 string `gorm:"column:id;primaryKey"`
	UserID             string `gorm:"column:user_id"`
	TokenHash          blob   `gorm:"column:token_hash"`
	CreatedMs          int64  `gorm:"column:created_at"`
	ExpiresMs          int64  `gorm:"column:expires_at"`
	LastSecondFactorMs int64  `gorm:"column:last_second_factor_at"`
	LastUsedMs         int64  `gorm:"column:last_used_at"`
	UserAgent          string `gorm:"column:user_agent"`
	IP                 string `gorm:"column:ip"`
}

func (trustedDeviceRow) TableName() string { return "trusted_devices" }

func trustedDeviceToRow(t TrustedDevice) trustedDeviceRow {
	return trustedDeviceRow{
		ID: t.ID, UserID: t.UserID, TokenHash: t.TokenHash, CreatedMs: ms(t.CreatedAt),
		ExpiresMs: ms(t.ExpiresAt), LastSecondFactorMs: ms(t.LastSecondFactorAt),
		LastUsedMs: ms(t.LastUsedAt), UserAgent: t.UserAgent, IP: t.IP,
	}
}

func (r trustedDeviceRow) domain() TrustedDevice {
	return TrustedDevice{
		ID: r.ID, UserID: r.UserID, TokenHash: bytesOf(r.TokenHash), CreatedAt: tm(r.CreatedMs),
		ExpiresAt: tm(r.ExpiresMs), LastSecondFactorAt: tm(r.LastSecondFactorMs),
		LastUsedAt: tm(r.LastUsedMs), UserAgent: r.UserAgent, IP: r.IP,
	}
}

// ------------------------------------------------------ known browsers

type knownBrowserRow struct {
	UserID      string `gorm:"column:user_id;primaryKey"`
	TokenHash   blob   `gorm:"column:token_hash;primaryKey"`
	FirstSeenMs int64  `gorm:"column:first_seen_at"`
	LastSeenMs  int64  `gorm:"column:last_seen_at"`
	ExpiresMs   int64  `gorm:"column:expires_at"`
}

func (knownBrowserRow) TableName() string { return "known_browsers" }

func knownBrowserToRow(k KnownBrowser) knownBrowserRow {
	return knownBrowserRow{UserID: k.UserID, TokenHash: k.TokenHash, FirstSeenMs: ms(k.FirstSeen),
		LastSeenMs: ms(k.SeenAt), ExpiresMs: ms(k.ExpiresAt)}
}

func (r knownBrowserRow) domain() KnownBrowser {
	return KnownBrowser{UserID: r.UserID, TokenHash: bytesOf(r.TokenHash), FirstSeen: tm(r.FirstSeenMs),
		SeenAt: tm(r.LastSeenMs), ExpiresAt: tm(r.ExpiresMs)}
}

// ---------------------------------------------------------- email codes

type emailCodeRow struct {
	ID          string `gorm:"column:id;primaryKey"`
	UserID      string `gorm:"column:user_id"`
	Purpose     string `gorm:"column:purpose"`
	ContextID   string `gorm:"column:context_id"`
	BrowserHash blob   `gorm:"column:browser_hash"`
	CodeHash    blob   `gorm:"column:code_hash"`
	CreatedMs   int64  `gorm:"column:created_at"`
	ExpiresMs   int64  `gorm:"column:expires_at"`
	Attempts    int    `gorm:"column:attempts"`
	DeadMs      int64  `gorm:"column:dead_at"`
	Budget      string `gorm:"column:budget"`
	MailState   string `gorm:"column:mail_state"`
}

func (emailCodeRow) TableName() string { return "email_codes" }

// emailCodeColumns are emailCodeRow's columns in field order, for LatestEmailCode's prepared
// statement (TestHandWrittenInserts checks them against the gorm schema).
const emailCodeColumns = `id, user_id, purpose, context_id, browser_hash, code_hash, created_at, expires_at,
	attempts, dead_at, budget, mail_state`

// ptrs are the scan targets of emailCodeColumns, in order.
func (r *emailCodeRow) ptrs() []any {
	return []any{&r.ID, &r.UserID, &r.Purpose, &r.ContextID, &r.BrowserHash, &r.CodeHash, &r.CreatedMs,
		&r.ExpiresMs, &r.Attempts, &r.DeadMs, &r.Budget, &r.MailState}
}

func emailCodeToRow(c EmailCode) emailCodeRow {
	return emailCodeRow{
		ID: c.ID, UserID: c.UserID, Purpose: c.Purpose, ContextID: c.ContextID,
		BrowserHash: c.BrowserHash, CodeHash: c.CodeHash, CreatedMs: ms(c.CreatedAt),
		ExpiresMs: ms(c.ExpiresAt), Attempts: c.Attempts, DeadMs: ms(c.DeadAt),
		Budget: c.Budget, MailState: c.MailState,
	}
}

func (r emailCodeRow) domain() EmailCode {
	return EmailCode{
		ID: r.ID, UserID: r.UserID, Purpose: r.Purpose, ContextID: r.ContextID,
		BrowserHash: bytesOf(r.BrowserHash), CodeHash: bytesOf(r.CodeHash), CreatedAt: tm(r.CreatedMs),
		ExpiresAt: tm(r.ExpiresMs), Attempts: r.Attempts, DeadAt: tm(r.DeadMs),
		Budget: r.Budget, MailState: r.MailState,
	}
}

// ------------------------------------------------------------- outbox

type outboxRow struct {
	ID          string `gorm:"column:id;primaryKey"`
	Kind        string `gorm:"column:kind"`
	Purpose     string `gorm:"column:purpose"`
	Recipient   string `gorm:"column:recipient"`
	UserID      string `gorm:"column:user_id"`
	EmailCodeID string `gorm:"column:email_code_id"`
	Sealed      blob   `gorm:"column:sealed"`
	State       string `gorm:"column:state"`
	Attempts    int    `gorm:"column:attempts"`
	CreatedMs   int64  `gorm:"column:created_at"`
	NextMs      int64  `gorm:"column:next_at"`
	LeaseMs     int64  `gorm:"column:lease_until"`
	GiveUpMs    int64  `gorm:"column:give_up_at"`
	DoneMs      int64  `gorm:"column:done_at"`
	Claim       string `gorm:"column:claim"`
	LastError   string `gorm:"column:last_error"`
}

func (outboxRow) TableName() string { return "mail_outbox" }

const outboxColumns = `id, kind, purpose, recipient, user_id, email_code_id, sealed, state, attempts,
	created_at, next_at, lease_until, give_up_at, done_at, claim, last_error`

func outboxToRow(m OutboxMessage) outboxRow {
	return outboxRow{
		ID: m.ID, Kind: m.Kind, Purpose: m.Purpose, Recipient: m.Recipient, UserID: m.UserID,
		EmailCodeID: m.EmailCodeID, Sealed: m.Sealed, State: m.State, Attempts: m.Attempts,
		CreatedMs: ms(m.CreatedAt), NextMs: ms(m.NextAt), LeaseMs: ms(m.LeaseUntil), GiveUpMs: ms(m.GiveUpAt),
		DoneMs: ms(m.DoneAt), Claim: m.Claim, LastError: m.LastError,
	}
}

func (r outboxRow) values() []any {
	return []any{r.ID, r.Kind, r.Purpose, r.Recipient, r.UserID, r.EmailCodeID, r.Sealed, r.State, r.Attempts,
		r.CreatedMs, r.NextMs, r.LeaseMs, r.GiveUpMs, r.DoneMs, r.Claim, r.LastError}
}

func (r outboxRow) domain() OutboxMessage {
	return OutboxMessage{
		ID: r.ID, Kind: r.Kind, Purpose: r.Purpose, Recipient: r.Recipient, UserID: r.UserID,
		EmailCodeID: r.EmailCodeID, Sealed: bytesOf(r.Sealed), State: r.State, Attempts: r.Attempts,
		CreatedAt: tm(r.CreatedMs), NextAt: tm(r.NextMs), LeaseUntil: tm(r.LeaseMs), GiveUpAt: tm(r.GiveUpMs),
		DoneAt: tm(r.DoneMs), Claim: r.Claim, LastError: r.LastError,
	}
}

// ----------------------------------------------------------------- totp

type totpRow struct {
	ID          string `gorm:"column:id;primaryKey"`
	UserID      string `gorm:"column:user_id"`
	SeedSealed  blob   `gorm:"column:seed_sealed"`
	Status      string `gorm:"column:status"`
	LastStep    int64  `gorm:"column:last_step"`
	CreatedMs   int64  `gorm:"column:created_at"`
	ConfirmedMs int64  `gorm:"column:confirmed_at"`
}

func (totpRow) TableName() string { return "totp_credentials" }

// totpColumns are totpRow's columns in field order, for ListTOTP's prepared
// statement (TestHandWrittenInserts checks them against the gorm schema).
const totpColumns = `id, user_id, seed_sealed, status, last_step, created_at, confirmed_at`

// ptrs are the scan targets of totpColumns, in order.
func (r *totpRow) ptrs() []any {
	return []any{&r.ID, &r.UserID, &r.SeedSealed, &r.Status, &r.LastStep, &r.CreatedMs, &r.ConfirmedMs}
}

func totpToRow(c TOTPCredential) totpRow {
	return totpRow{
		ID: c.ID, UserID: c.UserID, SeedSealed: c.SeedSealed, Status: c.Status,
		LastStep: c.LastStep, CreatedMs: ms(c.CreatedAt), ConfirmedMs: ms(c.ConfirmedAt),
	}
}

func (r totpRow) domain() TOTPCredential {
	return TOTPCredential{
		ID: r.ID, UserID: r.UserID, SeedSealed: bytesOf(r.SeedSealed), Status: r.Status,
		LastStep: r.LastStep, CreatedAt: tm(r.CreatedMs), ConfirmedAt: tm(r.ConfirmedMs),
	}
}

// --------------------------------------------------------- backup codes

type backupCodeRow struct {
	UserID    string `gorm:"column:user_id;primaryKey"`
	CodeHash  blob   `gorm:"column:code_hash"`
	CreatedMs int64  `gorm:"column:created_at"`
}

func (backupCodeRow) TableName() string { return "backup_codes" }

func backupCodeToRow(b BackupCode) backupCodeRow {
	return backupCodeRow{UserID: b.UserID, CodeHash: b.CodeHash, CreatedMs: ms(b.CreatedAt)}
}

func (r backupCodeRow) domain() BackupCode {
	return BackupCode{UserID: r.UserID, CodeHash: bytesOf(r.CodeHash), CreatedAt: tm(r.CreatedMs)}
}

// -------------------------------------------------------------- passkeys

type passkeyRow struct {
	ID                string `gorm:"column:id;primaryKey"`
	UserID            string `gorm:"column:user_id"`
	CredentialID      blob   `gorm:"column:credential_id"`
	UserHandle        blob   `gorm:"column:user_handle"`
	PublicKey         blob   `gorm:"column:public_key"`
	AttestationType   string `gorm:"column:attestation_type"`
	AttestationFormat string `gorm:"column:attestation_format"`
	Transports        string `gorm:"column:transports"`
	AAGUID            blob   `gorm:"column:aaguid"`
	Attachment        string `gorm:"column:attachment"`
	SignCount         int64  `gorm:"column:sign_count"`
	UserVerified      bool   `gorm:"column:user_verified"`
	BackupEligible    bool   `gorm:"column:backup_eligible"`
	BackupState       bool   `gorm:"column:backup_state"`
	Name              string `gorm:"column:name"`
	CreatedMs         int64  `gorm:"column:created_at"`
	LastUsedMs        int64  `gorm:"column:last_used_at"`
}

func (passkeyRow) TableName() string { return "passkeys" }

func passkeyToRow(p Passkey) passkeyRow {
	return passkeyRow{
		ID: p.ID, UserID: p.UserID, CredentialID: p.CredentialID, UserHandle: p.UserHandle, PublicKey: p.PublicKey,
		AttestationType: p.AttestationType, AttestationFormat: p.AttestationFormat, Transports: encList(p.Transports),
		AAGUID: p.AAGUID, Attachment: p.Attachment, SignCount: int64(p.SignCount), UserVerified: p.UserVerified,
		BackupEligible: p.BackupEligible, BackupState: p.BackupState, Name: p.Name,
		CreatedMs: ms(p.CreatedAt), LastUsedMs: ms(p.LastUsedAt),
	}
}

func (r passkeyRow) domain() (Passkey, error) {
	var d decoder
	p := Passkey{
		ID: r.ID, UserID: r.UserID, CredentialID: bytesOf(r.CredentialID), UserHandle: bytesOf(r.UserHandle),
		PublicKey: bytesOf(r.PublicKey), AttestationType: r.AttestationType, AttestationFormat: r.AttestationFormat,
		Transports: d.list(r.Transports), AAGUID: bytesOf(r.AAGUID), Attachment: r.Attachment,
		SignCount: uint32(r.SignCount), UserVerified: r.UserVerified, BackupEligible: r.BackupEligible,
		BackupState: r.BackupState, Name: r.Name, CreatedAt: tm(r.CreatedMs), LastUsedAt: tm(r.LastUsedMs),
	}
	return p, d.err
}

type passkeyChallengeRow struct {
	ID            string `gorm:"column:id;primaryKey"`
	ChallengeHash blob   `gorm:"column:challenge_hash"`
	Purpose       string `gorm:"column:purpose"`
	ContextID     string `gorm:"column:context_id"`
	UserID        string `gorm:"column:user_id"`
	BrowserHash   blob   `gorm:"column:browser_hash"`
	Session       blob   `gorm:"column:session"`
	CreatedMs     int64  `gorm:"column:created_at"`
	ExpiresMs     int64  `gorm:"column:expires_at"`
	UsedMs        int64  `gorm:"column:used_at"`
}

func (passkeyChallengeRow) TableName() string { return "passkey_challenges" }

func passkeyChallengeToRow(c PasskeyChallenge) passkeyChallengeRow {
	return passkeyChallengeRow{
		ID: c.ID, ChallengeHash: c.ChallengeHash, Purpose: c.Purpose, ContextID: c.ContextID, UserID: c.UserID,
		BrowserHash: c.BrowserHash, Session: c.Session, CreatedMs: ms(c.CreatedAt), ExpiresMs: ms(c.ExpiresAt),
		UsedMs: ms(c.UsedAt),
	}
}

func (r passkeyChallengeRow) domain() PasskeyChallenge {
	return PasskeyChallenge{
		ID: r.ID, ChallengeHash: bytesOf(r.ChallengeHash), Purpose: r.Purpose, ContextID: r.ContextID, UserID: r.UserID,
		BrowserHash: bytesOf(r.BrowserHash), Session: bytesOf(r.Session), CreatedAt: tm(r.CreatedMs),
		ExpiresAt: tm(r.ExpiresMs), UsedAt: tm(r.UsedMs),
	}
}

// ------------------------------------------------------- refresh tokens

type refreshTokenRow struct {
	ID              string `gorm:"column:id;primaryKey"`
	TokenHash       blob   `gorm:"column:token_hash"`
	FamilyID        string `gorm:"column:family_id"`
	ClientID        string `gorm:"column:client_id"`
	UserID          string `gorm:"column:user_id"`
	SessionID       string `gorm:"column:session_id"`
	Scopes          string `gorm:"column:scopes"`
	GrantedScopes   string `gorm:"column:granted_scopes"`
	Audience        string `gorm:"column:audience"`
	AMR             string `gorm:"column:amr"`
	ACR             string `gorm:"column:acr"`
	AuthTimeMs      int64  `gorm:"column:auth_time"`
	SecondFactorMs  int64  `gorm:"column:second_factor_at"`
	CreatedMs       int64  `gorm:"column:created_at"`
	FamilyCreatedMs int64  `gorm:"column:family_created_at"`
	LastUsedMs      int64  `gorm:"column:last_used_at"`
	ExpiresMs       int64  `gorm:"column:expires_at"`
	UsedMs          int64  `gorm:"column:used_at"`
	RevokedMs       int64  `gorm:"column:revoked_at"`
	JKT             string `gorm:"column:jkt"`
}

func (refreshTokenRow) TableName() string { return "refresh_tokens" }

// refreshTokenColumns are refreshTokenRow's columns in field order, for the
// hand-written statements of the token path (TestHandWrittenInserts checks
// them against the gorm schema).
const refreshTokenColumns = `id, token_hash, family_id, client_id, user_id,
	session_id, scopes, granted_scopes, audience, amr, acr, auth_time, second_factor_at, created_at,
	family_created_at, last_used_at, expires_at, used_at, revoked_at, jkt`

// refreshTokenInsert inserts a refreshTokenRow without gorm, for the
// rotation's prepared statements.
const refreshTokenInsert = `INSERT INTO refresh_tokens (` + refreshTokenColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT DO NOTHING`

// ptrs are the scan targets of refreshTokenColumns, in order.
func (r *refreshTokenRow) ptrs() []any {
	return []any{&r.ID, &r.TokenHash, &r.FamilyID, &r.ClientID, &r.UserID,
		&r.SessionID, &r.Scopes, &r.GrantedScopes, &r.Audience, &r.AMR, &r.ACR, &r.AuthTimeMs, &r.SecondFactorMs, &r.CreatedMs,
		&r.FamilyCreatedMs, &r.LastUsedMs, &r.ExpiresMs, &r.UsedMs, &r.RevokedMs, &r.JKT}
}

func (r *refreshTokenRow) values() []any {
	return []any{r.ID, r.TokenHash, r.FamilyID, r.ClientID, r.UserID,
		r.SessionID, r.Scopes, r.GrantedScopes, r.Audience, r.AMR, r.ACR, r.AuthTimeMs, r.SecondFactorMs, r.CreatedMs,
		r.FamilyCreatedMs, r.LastUsedMs, r.ExpiresMs, r.UsedMs, r.RevokedMs, r.JKT}
}

func refreshTokenToRow(t RefreshToken) refreshTokenRow {
	return refreshTokenRow{
		ID: t.ID, TokenHash: t.TokenHash, FamilyID: t.FamilyID, ClientID: t.ClientID,
		UserID: t.UserID, SessionID: t.SessionID, Scopes: encList(t.Scopes),
		GrantedScopes: encList(t.GrantedScopes), Audience: encList(t.Audience), AMR: encList(t.AMR),
		ACR: t.ACR, AuthTimeMs: ms(t.AuthTime), SecondFactorMs: ms(t.SecondFactorAt),
		CreatedMs: ms(t.CreatedAt), FamilyCreatedMs: ms(t.FamilyCreatedAt),
		LastUsedMs: ms(t.LastUsedAt), ExpiresMs: ms(t.ExpiresAt), UsedMs: ms(t.UsedAt),
		RevokedMs: ms(t.RevokedAt), JKT: t.JKT,
	}
}

// refreshFamilyRow is a family's row (migration 0013): what its tokens
// share and never change, by which the family is found from its user or
// session.
type refreshFamilyRow struct {
	ID        string `gorm:"column:id;primaryKey"`
	UserID    string `gorm:"column:user_id"`
	SessionID string `gorm:"column:session_id"`
	ClientID  string `gorm:"column:client_id"`
	CreatedMs int64  `gorm:"column:created_at"`
}

func (refreshFamilyRow) TableName() string { return "refresh_families" }

func (r refreshTokenRow) domain() (RefreshToken, error) {
	var d decoder
	t := RefreshToken{
		ID: r.ID, TokenHash: bytesOf(r.TokenHash), FamilyID: r.FamilyID, ClientID: r.ClientID,
		UserID: r.UserID, SessionID: r.SessionID, Scopes: d.list(r.Scopes),
		GrantedScopes: d.list(r.GrantedScopes), Audience: d.list(r.Audience), AMR: d.list(r.AMR),
		ACR: r.ACR, AuthTime: tm(r.AuthTimeMs), SecondFactorAt: tm(r.SecondFactorMs),
		CreatedAt: tm(r.CreatedMs), FamilyCreatedAt: tm(r.FamilyCreatedMs),
		LastUsedAt: tm(r.LastUsedMs), ExpiresAt: tm(r.ExpiresMs), UsedAt: tm(r.UsedMs),
		RevokedAt: tm(r.RevokedMs), JKT: r.JKT,
	}
	return t, d.err
}

// -------------------------------------------------------- access tokens

type accessTokenRow struct {
	ID             string `gorm:"column:id;primaryKey"`
	ClientID       string `gorm:"column:client_id"`
	UserID         string `gorm:"column:user_id"`
	RefreshTokenID string `gorm:"column:refresh_token_id"`
	FamilyID       string `gorm:"column:family_id"`
	SessionID      string `gorm:"column:session_id"`
	Scopes         string `gorm:"column:scopes"`
	Audience       string `gorm:"column:audience"`
	CreatedMs      int64  `gorm:"column:created_at"`
	ExpiresMs      int64  `gorm:"column:expires_at"`
	RevokedMs      int64  `gorm:"column:revoked_at"`
	JKT            string `gorm:"column:jkt"`
}

func (accessTokenRow) TableName() string { return "access_tokens" }

// accessTokenColumns are accessTokenRow's columns in field order
// (TestHandWrittenInserts checks them against the gorm schema).
const accessTokenColumns = `id, client_id, user_id, refresh_token_id, family_id,
	session_id, scopes, audience, created_at, expires_at, revoked_at, jkt`

// accessTokenInsert inserts an accessTokenRow without gorm (the token
// endpoint's hottest write; see CreateAccessToken).
const accessTokenInsert = `INSERT INTO access_tokens (` + accessTokenColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT DO NOTHING`

func (r *accessTokenRow) values() []any {
	return []any{r.ID, r.ClientID, r.UserID, r.RefreshTokenID, r.FamilyID,
		r.SessionID, r.Scopes, r.Audience, r.CreatedMs, r.ExpiresMs, r.RevokedMs, r.JKT}
}

// ptrs are the scan targets of accessTokenColumns, in order.
func (r *accessTokenRow) ptrs() []any {
	return []any{&r.ID, &r.ClientID, &r.UserID, &r.RefreshTokenID, &r.FamilyID,
		&r.SessionID, &r.Scopes, &r.Audience, &r.CreatedMs, &r.ExpiresMs, &r.RevokedMs, &r.JKT}
}

func accessTokenToRow(a AccessToken) accessTokenRow {
	return accessTokenRow{
		ID: a.ID, ClientID: a.ClientID, UserID: a.UserID, RefreshTokenID: a.RefreshTokenID,
		FamilyID: a.FamilyID, SessionID: a.SessionID, Scopes: encList(a.Scopes),
		Audience: encList(a.Audience), CreatedMs: ms(a.CreatedAt), ExpiresMs: ms(a.ExpiresAt),
		RevokedMs: ms(a.RevokedAt), JKT: a.JKT,
	}
}

func (r accessTokenRow) domain() (AccessToken, error) {
	var d decoder
	a := AccessToken{
		ID: r.ID, ClientID: r.ClientID, UserID: r.UserID, RefreshTokenID: r.RefreshTokenID,
		FamilyID: r.FamilyID, SessionID: r.SessionID, Scopes: d.list(r.Scopes),
		Audience: d.list(r.Audience), CreatedAt: tm(r.CreatedMs), ExpiresAt: tm(r.ExpiresMs),
		RevokedAt: tm(r.RevokedMs), JKT: r.JKT,
	}
	return a, d.err
}

// --------------------------------------------------------- signing keys

type signingKeyRow struct {
	ID            string `gorm:"column:id;primaryKey"`
	Algorithm     string `gorm:"column:algorithm"`
	PrivateSealed blob   `gorm:"column:private_sealed"`
	PublicJWK     blob   `gorm:"column:public_jwk"`
	CreatedMs     int64  `gorm:"column:created_at"`
	NotBeforeMs   int64  `gorm:"column:not_before"`
	RetireMs      int64  `gorm:"column:retire_at"`
	ExpiresMs     int64  `gorm:"column:expires_at"`
}

func (signingKeyRow) TableName() string { return "signing_keys" }

func signingKeyToRow(k SigningKey) signingKeyRow {
	return signingKeyRow{
		ID: k.ID, Algorithm: k.Algorithm, PrivateSealed: k.PrivateSealed, PublicJWK: k.PublicJWK,
		CreatedMs: ms(k.CreatedAt), NotBeforeMs: ms(k.NotBefore), RetireMs: ms(k.RetireAt),
		ExpiresMs: ms(k.ExpiresAt),
	}
}

func (r signingKeyRow) domain() SigningKey {
	return SigningKey{
		ID: r.ID, Algorithm: r.Algorithm, PrivateSealed: bytesOf(r.PrivateSealed),
		PublicJWK: bytesOf(r.PublicJWK), CreatedAt: tm(r.CreatedMs), NotBefore: tm(r.NotBeforeMs),
		RetireAt: tm(r.RetireMs), ExpiresAt: tm(r.ExpiresMs),
	}
}

// ----------------------------------------------- device authorizations

type deviceAuthorizationRow struct {
	ID             string `gorm:"column:id;primaryKey"`
	DeviceCodeHash blob   `gorm:"column:device_code_hash"`
	UserCodeHash   blob   `gorm:"column:user_code_hash"`
	UserCodeHalf   blob   `gorm:"column:user_code_half"`
	WrongGuesses   int    `gorm:"column:wrong_guesses"`
	ClientID       string `gorm:"column:client_id"`
	Scopes         string `gorm:"column:scopes"`
	CreatedMs      int64  `gorm:"column:created_at"`
	ExpiresMs      int64  `gorm:"column:expires_at"`
	State          string `gorm:"column:state"`
	UserID         string `gorm:"column:user_id"`
	AMR            string `gorm:"column:amr"`
	ACR            string `gorm:"column:acr"`
	AuthTimeMs     int64  `gorm:"column:auth_time"`
	SessionID      string `gorm:"column:session_id"`
	LastPollMs     int64  `gorm:"column:last_poll_at"`
}

func (deviceAuthorizationRow) TableName() string { return "device_authorizations" }

func deviceAuthorizationToRow(d DeviceAuthorization) deviceAuthorizationRow {
	return deviceAuthorizationRow{
		ID: d.ID, DeviceCodeHash: d.DeviceCodeHash, UserCodeHash: d.UserCodeHash, UserCodeHalf: d.UserCodeHalf,
		WrongGuesses: d.WrongGuesses, ClientID: d.ClientID,
		Scopes: encList(d.Scopes), CreatedMs: ms(d.CreatedAt), ExpiresMs: ms(d.ExpiresAt),
		State: d.State, UserID: d.UserID, AMR: encList(d.AMR), ACR: d.ACR,
		AuthTimeMs: ms(d.AuthTime), SessionID: d.SessionID, LastPollMs: ms(d.LastPollAt),
	}
}

func (r deviceAuthorizationRow) domain() (DeviceAuthorization, error) {
	var dec decoder
	d := DeviceAuthorization{
		ID: r.ID, DeviceCodeHash: bytesOf(r.DeviceCodeHash), UserCodeHash: bytesOf(r.UserCodeHash),
		UserCodeHalf: bytesOf(r.UserCodeHalf), WrongGuesses: r.WrongGuesses, ClientID: r.ClientID,
		Scopes: dec.list(r.Scopes), CreatedAt: tm(r.CreatedMs), ExpiresAt: tm(r.ExpiresMs),
		State: r.State, UserID: r.UserID, AMR: dec.list(r.AMR), ACR: r.ACR,
		AuthTime: tm(r.AuthTimeMs), SessionID: r.SessionID, LastPollAt: tm(r.LastPollMs),
	}
	return d, dec.err
}

// ---------------------------------------------------------------- audit

type auditEventRow struct {
	ID        int64  `gorm:"column:id;primaryKey;autoIncrement"`
	AtMs      int64  `gorm:"column:at"`
	UserID    string `gorm:"column:user_id"`
	Email     string `gorm:"column:email"`
	Event     string `gorm:"column:event"`
	ClientID  string `gorm:"column:client_id"`
	IP        string `gorm:"column:ip"`
	UserAgent string `gorm:"column:user_agent"`
	Reason    string `gorm:"column:reason"`
	Details   string `gorm:"column:details"`
}

func (auditEventRow) TableName() string { return "audit_events" }

func auditEventToRow(e AuditEvent) auditEventRow {
	return auditEventRow{
		ID: e.ID, AtMs: ms(e.At), UserID: e.UserID, Email: e.Email, Event: e.Event,
		ClientID: e.ClientID, IP: e.IP, UserAgent: e.UserAgent, Reason: e.Reason,
		Details: encMap(e.Details),
	}
}

func (r auditEventRow) domain() (AuditEvent, error) {
	var d decoder
	e := AuditEvent{
		ID: r.ID, At: tm(r.AtMs), UserID: r.UserID, Email: r.Email, Event: r.Event,
		ClientID: r.ClientID, IP: r.IP, UserAgent: r.UserAgent, Reason: r.Reason,
		Details: d.dict(r.Details),
	}
	return e, d.err
}

// ------------------------------------------------------------ throttles

type throttleRow struct {
	Key           string `gorm:"column:throttle_key;primaryKey"`
	Failures      int    `gorm:"column:failures"`
	LastFailureMs int64  `gorm:"column:last_failure_at"`
	BlockedMs     int64  `gorm:"column:blocked_until"`
}

func (throttleRow) TableName() string { return "throttles" }

func throttleToRow(t Throttle) throttleRow {
	return throttleRow{Key: t.Key, Failures: t.Failures, LastFailureMs: ms(t.LastFailureAt), BlockedMs: ms(t.BlockedUntil)}
}

func (r throttleRow) domain() Throttle {
	return Throttle{Key: r.Key, Failures: r.Failures, LastFailureAt: tm(r.LastFailureMs), BlockedUntil: tm(r.BlockedMs)}
}

// -------------------------------------------------------- action tokens

type actionTokenRow struct {
	ID        string `gorm:"column:id;primaryKey"`
	TokenHash blob   `gorm:"column:token_hash"`
	UserID    string `gorm:"column:user_id"`
	Purpose   string `gorm:"column:purpose"`
	CreatedMs int64  `gorm:"column:created_at"`
	ExpiresMs int64  `gorm:"column:expires_at"`
	UsedMs    int64  `gorm:"column:used_at"`
}

func (actionTokenRow) TableName() string { return "action_tokens" }

func actionTokenToRow(t ActionToken) actionTokenRow {
	return actionTokenRow{
		ID: t.ID, TokenHash: t.TokenHash, UserID: t.UserID, Purpose: t.Purpose,
		CreatedMs: ms(t.CreatedAt), ExpiresMs: ms(t.ExpiresAt), UsedMs: ms(t.UsedAt),
	}
}

func (r actionTokenRow) domain() ActionToken {
	return ActionToken{
		ID: r.ID, TokenHash: bytesOf(r.TokenHash), UserID: r.UserID, Purpose: r.Purpose,
		CreatedAt: tm(r.CreatedMs), ExpiresAt: tm(r.ExpiresMs), UsedAt: tm(r.UsedMs),
	}
}

// ------------------------------------------------------ logout requests

type logoutRequestRow struct {
	ID          string `gorm:"column:id;primaryKey"`
	UserID      string `gorm:"column:user_id"`
	ClientID    string `gorm:"column:client_id"`
	RedirectURI string `gorm:"column:redirect_uri"`
	CreatedMs   int64  `gorm:"column:created_at"`
	ExpiresMs   int64  `gorm:"column:expires_at"`
}

func (logoutRequestRow) TableName() string { return "logout_requests" }

func logoutRequestToRow(l LogoutRequest) logoutRequestRow {
	return logoutRequestRow{
		ID: l.ID, UserID: l.UserID, ClientID: l.ClientID, RedirectURI: l.RedirectURI,
		CreatedMs: ms(l.CreatedAt), ExpiresMs: ms(l.ExpiresAt),
	}
}

func (r logoutRequestRow) domain() LogoutRequest {
	return LogoutRequest{
		ID: r.ID, UserID: r.UserID, ClientID: r.ClientID, RedirectURI: r.RedirectURI,
		CreatedAt: tm(r.CreatedMs), ExpiresAt: tm(r.ExpiresMs),
	}
}

// -------------------------------------------------------- organizations

type organizationRow struct {
	ID                 string `gorm:"column:id;primaryKey"`
	Name               string `gorm:"column:name"`
	Issuer             string `gorm:"column:issuer"`
	ClientID           string `gorm:"column:client_id"`
	ClientSecretSealed blob   `gorm:"column:client_secret_sealed"`
	Scopes             string `gorm:"column:scopes"`
	ClaimEmail         string `gorm:"column:claim_email"`
	ClaimName          string `gorm:"column:claim_name"`
	ClaimGroups        string `gorm:"column:claim_groups"`
	TrustUpstreamMFA   bool   `gorm:"column:trust_upstream_mfa"`
	JITProvisioning    bool   `gorm:"column:jit_provisioning"`
	Source             string `gorm:"column:source"`
	CreatedMs          int64  `gorm:"column:created_at"`
	UpdatedMs          int64  `gorm:"column:updated_at"`
}

func (organizationRow) TableName() string { return "organizations" }

// organizationColumns are organizationRow's columns in field order, for GetOrganizationByDomain's prepared
// statement (TestHandWrittenInserts checks them against the gorm schema).
const organizationColumns = `id, name, issuer, client_id, client_secret_sealed, scopes, claim_email, claim_name,
	claim_groups, trust_upstream_mfa, jit_provisioning, source, created_at, updated_at`

// ptrs are the scan targets of organizationColumns, in order.
func (r *organizationRow) ptrs() []any {
	return []any{&r.ID, &r.Name, &r.Issuer, &r.ClientID, &r.ClientSecretSealed, &r.Scopes, &r.ClaimEmail,
		&r.ClaimName, &r.ClaimGroups, &r.TrustUpstreamMFA, &r.JITProvisioning, &r.Source,
		&r.CreatedMs, &r.UpdatedMs}
}

func organizationToRow(o Organization) organizationRow {
	return organizationRow{
		ID: o.ID, Name: o.Name, Issuer: o.Issuer, ClientID: o.ClientID,
		ClientSecretSealed: o.ClientSecretSealed, Scopes: encList(o.Scopes),
		ClaimEmail: o.ClaimEmail, ClaimName: o.ClaimName, ClaimGroups: o.ClaimGroups,
		TrustUpstreamMFA: o.TrustUpstreamMFA, JITProvisioning: o.JITProvisioning,
		Source: o.Source, CreatedMs: ms(o.CreatedAt), UpdatedMs: ms(o.UpdatedAt),
	}
}

// domain converts without the domains (they live in their own table).
func (r organizationRow) domain() (Organization, error) {
	var d decoder
	o := Organization{
		ID: r.ID, Name: r.Name, Issuer: r.Issuer, ClientID: r.ClientID,
		ClientSecretSealed: bytesOf(r.ClientSecretSealed), Scopes: d.list(r.Scopes),
		ClaimEmail: r.ClaimEmail, ClaimName: r.ClaimName, ClaimGroups: r.ClaimGroups,
		TrustUpstreamMFA: r.TrustUpstreamMFA, JITProvisioning: r.JITProvisioning,
		Source: r.Source, CreatedAt: tm(r.CreatedMs), UpdatedAt: tm(r.UpdatedMs),
	}
	return o, d.err
}

type organizationDomainRow struct {
	Domain string `gorm:"column:domain;primaryKey"`
	OrgID  string `gorm:"column:org_id"`
}

func (organizationDomainRow) TableName() string { return "organization_domains" }

type federatedIdentityRow struct {
	OrgID       string `gorm:"column:org_id;primaryKey"`
	Subject     string `gorm:"column:subject;primaryKey"`
	UserID      string `gorm:"column:user_id"`
	CreatedMs   int64  `gorm:"column:created_at"`
	LastLoginMs int64  `gorm:"column:last_login_at"`
}

func (federatedIdentityRow) TableName() string { return "federated_identities" }

func federatedIdentityToRow(f FederatedIdentity) federatedIdentityRow {
	return federatedIdentityRow{
		OrgID: f.OrgID, Subject: f.Subject, UserID: f.UserID,
		CreatedMs: ms(f.CreatedAt), LastLoginMs: ms(f.LastLoginAt),
	}
}

func (r federatedIdentityRow) domain() FederatedIdentity {
	return FederatedIdentity{
		OrgID: r.OrgID, Subject: r.Subject, UserID: r.UserID,
		CreatedAt: tm(r.CreatedMs), LastLoginAt: tm(r.LastLoginMs),
	}
}

type upstreamStateRow struct {
	ID             string `gorm:"column:id;primaryKey"`
	StateHash      blob   `gorm:"column:state_hash"`
	AuthRequestID  string `gorm:"column:auth_request_id"`
	BrowserHash    blob   `gorm:"column:browser_hash"`
	OrgID          string `gorm:"column:org_id"`
	Nonce          string `gorm:"column:nonce"`
	VerifierSealed blob   `gorm:"column:verifier_sealed"`
	CreatedMs      int64  `gorm:"column:created_at"`
	ExpiresMs      int64  `gorm:"column:expires_at"`
	UsedMs         int64  `gorm:"column:used_at"`
}

func (upstreamStateRow) TableName() string { return "upstream_states" }

func upstreamStateToRow(s UpstreamState) upstreamStateRow {
	return upstreamStateRow{
		ID: s.ID, StateHash: s.StateHash, AuthRequestID: s.AuthRequestID,
		BrowserHash: s.BrowserHash, OrgID: s.OrgID, Nonce: s.Nonce,
		VerifierSealed: s.VerifierSealed, CreatedMs: ms(s.CreatedAt),
		ExpiresMs: ms(s.ExpiresAt), UsedMs: ms(s.UsedAt),
	}
}

func (r upstreamStateRow) domain() UpstreamState {
	return UpstreamState{
		ID: r.ID, StateHash: bytesOf(r.StateHash), AuthRequestID: r.AuthRequestID,
		BrowserHash: bytesOf(r.BrowserHash), OrgID: r.OrgID, Nonce: r.Nonce,
		VerifierSealed: bytesOf(r.VerifierSealed), CreatedAt: tm(r.CreatedMs),
		ExpiresAt: tm(r.ExpiresMs), UsedAt: tm(r.UsedMs),
	}
}
