// Package passkeytest is a software WebAuthn authenticator for tests: it
// answers the options a page hands to navigator.credentials.create and
// .get the way a browser and a platform authenticator would, with P-256
// (ES256) keys from crypto/ecdsa, attestation "none", authenticator data
// with the right RP ID hash, flags and counter, client data JSON with the
// challenge and origin, and DER signatures. Tests use it to drive the real
// ceremonies over HTTP, and bend it (another origin, a counter moved
// back, another user's credential) to see each check refuse.
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

// Authenticator holds credentials and answers ceremonies.
type Authenticator struct {
	// Origin is what the browser puts in the client data: the page's
	// origin (scheme://host[:port]).
	Origin string
	// UserVerified: the authenticator verifies its user (UV flag).
	UserVerified bool
	// BackupEligible: its credentials may be synced (BE and BS flags).
	BackupEligible bool
	// Creds are the credentials made so far, oldest first.
	Creds []*Credential
}

// Credential is one key pair the authenticator made.
type Credential struct {
	ID         []byte
	Key        *ecdsa.PrivateKey
	RPID       string
	UserHandle []byte
	// Counter is the signature counter; each assertion adds one first.
	Counter uint32
}

// New is an authenticator for pages of origin that verifies its user.
func New(origin string) *Authenticator { return &Authenticator{Origin: origin, UserVerified: true} }

var b64 = base64.RawURLEncoding

// Create answers creation options (the JSON of protocol.CredentialCreation,
// as the page embeds it) and returns the PublicKeyCredential as JSON.
func (a *Authenticator) Create(options string) (string, error) {
	var o struct {
		PublicKey struct {
			RP struct {
				ID string `json:"id"`
			} `json:"rp"`
			User struct {
				ID string `json:"id"`
			} `json:"user"`
			Challenge string `json:"challenge"`
			Exclude   []struct {
				ID string `json:"id"`
			} `json:"excludeCredentials"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal([]byte(options), &o); err != nil {
		return "", fmt.Errorf("passkeytest: creation options: %w", err)
	}
	rpID := o.PublicKey.RP.ID
	if rpID == "" {
		rpID = a.host()
	}
	for _, ex := range o.PublicKey.Exclude {
		for _, c := range a.Creds {
			if ex.ID == b64.EncodeToString(c.ID) {
				return "", errors.New("passkeytest: InvalidStateError: this authenticator holds an excluded credential")
			}
		}
	}
	handle, err := b64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		return "", fmt.Errorf("passkeytest: user id: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	c := &Credential{ID: id, Key: key, RPID: rpID, UserHandle: handle}

	cose, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         int64(webauthncose.P256), XCoord: pad32(key.X.Bytes()), YCoord: pad32(key.Y.Bytes()),
	})
	if err != nil {
		return "", err
	}
	attested := make([]byte, 0, 16+2+len(id)+len(cose))
	attested = append(attested, make([]byte, 16)...) // AAGUID: zero, as with attestation "none"
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(id)))
	attested = append(attested, id...)
	attested = append(attested, cose...)
	authData := a.authData(rpID, 0, true, attested)
	attObj, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		return "", err
	}
	clientData, err := a.clientData("webauthn.create", o.PublicKey.Challenge)
	if err != nil {
		return "", err
	}
	a.Creds = append(a.Creds, c)
	return marshal(map[string]any{
		"id": b64.EncodeToString(id), "rawId": b64.EncodeToString(id), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON": b64.EncodeToString(clientData), "attestationObject": b64.EncodeToString(attObj),
			"transports": []string{"internal"},
		},
	})
}

// Get answers request options (the JSON of protocol.CredentialAssertion)
// with the newest credential they allow (any of this RP's when they name
// none: a discoverable sign-in) and returns the PublicKeyCredential as
// JSON.
func (a *Authenticator) Get(options string) (string, error) {
	rpID, challenge, allowed, err := parseRequest(options)
	if err != nil {
		return "", err
	}
	if rpID == "" {
		rpID = a.host()
	}
	for i := len(a.Creds) - 1; i >= 0; i-- {
		c := a.Creds[i]
		if c.RPID != rpID {
			continue
		}
		if len(allowed) == 0 || allowed[b64.EncodeToString(c.ID)] {
			return a.Sign(c, rpID, challenge)
		}
	}
	return "", errors.New("passkeytest: NotAllowedError: no credential for these options")
}

// GetWith answers request options with credential c, allowed or not (a
// browser would not; a forged answer might).
func (a *Authenticator) GetWith(options string, c *Credential) (string, error) {
	rpID, challenge, _, err := parseRequest(options)
	if err != nil {
		return "", err
	}
	if rpID == "" {
		rpID = a.host()
	}
	return a.Sign(c, rpID, challenge)
}

// Sign makes an assertion of c for rpID over challenge (base64url, as in
// the options), adding one to c's counter first.
func (a *Authenticator) Sign(c *Credential, rpID, challenge string) (string, error) {
	c.Counter++
	authData := a.authData(rpID, c.Counter, false, nil)
	clientData, err := a.clientData("webauthn.get", challenge)
	if err != nil {
		return "", err
	}
	cdHash := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(append([]byte{}, authData...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, c.Key, digest[:])
	if err != nil {
		return "", err
	}
	return marshal(map[string]any{
		"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON": b64.EncodeToString(clientData), "authenticatorData": b64.EncodeToString(authData),
			"signature": b64.EncodeToString(sig), "userHandle": b64.EncodeToString(c.UserHandle),
		},
	})
}

func parseRequest(options string) (rpID, challenge string, allowed map[string]bool, err error) {
	var o struct {
		PublicKey struct {
			RPID      string `json:"rpId"`
			Challenge string `json:"challenge"`
			Allow     []struct {
				ID string `json:"id"`
			} `json:"allowCredentials"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal([]byte(options), &o); err != nil {
		return "", "", nil, fmt.Errorf("passkeytest: request options: %w", err)
	}
	allowed = map[string]bool{}
	for _, c := range o.PublicKey.Allow {
		allowed[c.ID] = true
	}
	return o.PublicKey.RPID, o.PublicKey.Challenge, allowed, nil
}

// authData is WebAuthn §6.1: rpIdHash, flags, signCount, then the attested
// credential data when there is one.
func (a *Authenticator) authData(rpID string, counter uint32, attested bool, cred []byte) []byte {
	h := sha256.Sum256([]byte(rpID))
	flags := byte(0x01) // UP
	if a.UserVerified {
		flags |= 0x04 // UV
	}
	if a.BackupEligible {
		flags |= 0x08 | 0x10 // BE, BS
	}
	if attested {
		flags |= 0x40 // AT
	}
	out := append(h[:], flags)
	out = binary.BigEndian.AppendUint32(out, counter)
	return append(out, cred...)
}

func (a *Authenticator) clientData(typ, challenge string) ([]byte, error) {
	return json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
}

func (a *Authenticator) host() string {
	u, err := url.Parse(a.Origin)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

func pad32(b []byte) []byte {
	if len(b) >= 32 {
		return b
	}
	return append(make([]byte, 32-len(b)), b...)
}

func marshal(v any) (string, error) {
	raw, err := json.Marshal(v)
	return string(raw), err
}
