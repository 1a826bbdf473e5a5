package op

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// Supported signing algorithms (config keys.algorithm).
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
)

// keyStore is what the key manager needs from storage.
type keyStore interface {
	ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error)
	UpdateSigningKeys(ctx context.Context, fn func(current []storage.SigningKey) ([]storage.SigningKey, []string, error)) error
}

// keySet is one immutable snapshot of the keys: the token path reads it
// through an atomic pointer, so signing never touches the database or
// decrypts anything.
type keySet struct {
	signing   *signingKey
	public    []zop.Key
	jwks      *staticDoc // precomputed /keys response
	nextCheck time.Time  // when a rotation may be due
	// signingSince: when the signing key began to sign (its NotBefore).
	signingSince time.Time
}

type signingKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key crypto.Signer
	// header is the base64url JWS header for our own signer (signJWT).
	header []byte
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key any
}

func (k publicKey) ID() string                         { return k.id }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return k.alg }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.key }

// keyManager loads, caches and rotates the signing keys. Several instances
// share the keys through the database; UpdateSigningKeys serialises
// rotation across them.
type keyManager struct {
	store    keyStore
	kr       *keyring.Keyring
	alg      string
	rotation time.Duration // a key signs this long
	// keep: how long a retired key stays in JWKS (longest token lifetime
	// plus margin), so tokens it signed can still be verified.
	keep   time.Duration
	now    func() time.Time
	logger *slog.Logger

	cur     atomic.Pointer[keySet]
	loadMu  sync.Mutex
	private map[string]crypto.Signer // kid → decrypted key, reused across reloads
}

// How a new key reaches every instance and every relying party before it
// signs. Instances hear of a change at once on PostgreSQL (storage.Listen:
// Watch reloads) and within KeyReloadInterval otherwise (the periodic
// reload, cmd's background loop); relying parties may cache JWKS for
// jwksMaxAge. A key is published in JWKS MinPublishLead before it signs:
// longer than the slowest reload plus that cache.
const (
	KeyReloadInterval = time.Minute
	jwksMaxAge        = 5 * time.Minute
	MinPublishLead    = KeyReloadInterval + jwksMaxAge + 4*time.Minute // 10 minutes
)

// publishLead is how long a new key is published in JWKS before it signs:
// a tenth of the rotation period, at least MinPublishLead, at most an hour
// (and never more than half the period).
func (m *keyManager) publishLead() time.Duration {
	lead := min(max(m.rotation/10, MinPublishLead), time.Hour)
	return min(lead, m.rotation/2)
}

// get returns the current snapshot, loading it on first use and reloading
// when a rotation may be due.
func (m *keyManager) get(ctx context.Context) (*keySet, error) {
	ks := m.cur.Load()
	if ks != nil && m.now().Before(ks.nextCheck) {
		return ks, nil
	}
	if err := m.reload(ctx, rotateOnSchedule); err != nil {
		if ks != nil {
			// Keep signing with what we have; the database may be briefly
			// unavailable.
			m.logger.Warn("signing keys: reload failed, keeping cached keys", "err", err)
			return ks, nil
		}
		return nil, err
	}
	return m.cur.Load(), nil
}

// Rotation kinds for reload.
type rotation int

const (
	rotateOnSchedule rotation = iota // only when due
	rotatePlanned                    // a new key now, signing after the publish lead
	rotateNow                        // compromise: a new key signs at once, the old ones are withdrawn
)

// reload reads the keys, rotating first if due (or as asked).
func (m *keyManager) reload(ctx context.Context, kind rotation) error {
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	now := m.now()
	keys, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("op: list signing keys: %w", err)
	}
	if kind != rotateOnSchedule || m.needsRotation(keys, now) || anyExpired(keys, now) {
		if err := m.store.UpdateSigningKeys(ctx, func(cur []storage.SigningKey) ([]storage.SigningKey, []string, error) {
			return m.plan(cur, now, kind)
		}); err != nil {
			return fmt.Errorf("op: rotate signing keys: %w", err)
		}
		if keys, err = m.store.ListSigningKeys(ctx); err != nil {
			return fmt.Errorf("op: list signing keys: %w", err)
		}
	}
	ks, err := m.snapshot(keys, now)
	if err != nil {
		return err
	}
	m.cur.Store(ks)
	return nil
}

// active returns the key that signs at now: the newest key of the
// configured algorithm whose window contains now.
func (m *keyManager) active(keys []storage.SigningKey, now time.Time) (storage.SigningKey, bool) {
	var best storage.SigningKey
	found := false
	for _, k := range keys {
		if k.Algorithm != m.alg || now.Before(k.NotBefore) || !now.Before(k.RetireAt) {
			continue
		}
		if !found || k.NotBefore.After(best.NotBefore) {
			best, found = k, true
		}
	}
	return best, found
}

// needsRotation: no active key, or the active key retires within the
// publish lead and no successor is published yet.
func (m *keyManager) needsRotation(keys []storage.SigningKey, now time.Time) bool {
	act, ok := m.active(keys, now)
	if !ok {
		return true
	}
	if now.Add(m.publishLead()).Before(act.RetireAt) {
		return false
	}
	for _, k := range keys {
		if k.Algorithm == m.alg && k.NotBefore.After(act.NotBefore) {
			return false
		}
	}
	return true
}

// plan decides, under the cross-instance lock, which keys to add and
// which to delete. It re-checks with the locked view, so two instances
// racing here add one key, not two.
//
//   - on schedule: a successor is published a publish lead before the
//     active key retires and signs from then;
//   - planned (latchkey keys rotate): a new key is published now and signs
//     after the publish lead; the active key signs until then;
//   - now (latchkey keys rotate --now, a compromised key): a new key signs
//     at once and every other key is withdrawn from JWKS at once, so
//     tokens the old keys signed stop verifying.
func (m *keyManager) plan(cur []storage.SigningKey, now time.Time, kind rotation) ([]storage.SigningKey, []string, error) {
	var remove []string
	for _, k := range cur {
		if kind == rotateNow || (!k.ExpiresAt.IsZero() && now.After(k.ExpiresAt)) {
			remove = append(remove, k.ID)
		}
	}
	if kind == rotateOnSchedule && !m.needsRotation(cur, now) {
		return nil, remove, nil
	}
	act, hasActive := m.active(cur, now)
	notBefore := now
	switch {
	case kind == rotatePlanned && hasActive:
		notBefore = now.Add(m.publishLead())
	case kind == rotateOnSchedule && hasActive:
		notBefore = act.RetireAt
	}
	nk, err := m.generate(now, notBefore)
	if err != nil {
		return nil, nil, err
	}
	add := []storage.SigningKey{nk}
	if kind == rotatePlanned {
		// The keys that would sign after the new one starts retire when it
		// does (rewritten as remove + add: removals are applied first);
		// they stay published for m.keep so their tokens still verify.
		for _, k := range cur {
			if k.Algorithm == nk.Algorithm && k.RetireAt.After(notBefore) && !slices.Contains(remove, k.ID) {
				remove = append(remove, k.ID)
				k.RetireAt = notBefore
				if k.NotBefore.After(notBefore) {
					k.RetireAt = k.NotBefore // a successor not yet signing never signs
				}
				k.ExpiresAt = k.RetireAt.Add(m.keep)
				add = append(add, k)
			}
		}
	}
	return add, remove, nil
}

func anyExpired(keys []storage.SigningKey, now time.Time) bool {
	for _, k := range keys {
		if !k.ExpiresAt.IsZero() && now.After(k.ExpiresAt) {
			return true
		}
	}
	return false
}

// generate makes a new key pair of the configured algorithm.
func (m *keyManager) generate(now, notBefore time.Time) (storage.SigningKey, error) {
	priv, err := generateKey(m.alg)
	if err != nil {
		return storage.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("op: marshal key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("op: marshal public key: %w", err)
	}
	// The kid is derived from the public key: stable, unique, no ':'.
	sum := sha256.Sum256(pubDER)
	kid := hex.EncodeToString(sum[:12])
	jwk := jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: m.alg, Use: "sig"}
	pubJSON, err := jwk.MarshalJSON()
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("op: marshal jwk: %w", err)
	}
	retire := notBefore.Add(m.rotation)
	return storage.SigningKey{
		ID:            kid,
		Algorithm:     m.alg,
		PrivateSealed: m.kr.Seal(der, []byte("signing-key:"+kid)),
		PublicJWK:     pubJSON,
		CreatedAt:     now,
		NotBefore:     notBefore,
		RetireAt:      retire,
		ExpiresAt:     retire.Add(m.keep),
	}, nil
}

func generateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case AlgRS256:
		return rsa.GenerateKey(rand.Reader, 2048)
	case AlgES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgEdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("op: unsupported signing algorithm %q", alg)
}

// snapshot builds the immutable key set served to the token path.
func (m *keyManager) snapshot(keys []storage.SigningKey, now time.Time) (*keySet, error) {
	act, ok := m.active(keys, now)
	if !ok {
		return nil, errors.New("op: no active signing key")
	}
	if m.private == nil {
		m.private = map[string]crypto.Signer{}
	}
	signer, ok := m.private[act.ID]
	if !ok {
		der, err := m.kr.Open(act.PrivateSealed, []byte("signing-key:"+act.ID))
		if err != nil {
			return nil, fmt.Errorf("op: signing key %s cannot be decrypted (was secret_key changed?): %w", act.ID, err)
		}
		k, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("op: parse signing key %s: %w", act.ID, err)
		}
		if signer, ok = k.(crypto.Signer); !ok {
			return nil, fmt.Errorf("op: signing key %s is not a signer", act.ID)
		}
		m.private = map[string]crypto.Signer{act.ID: signer} // drop retired keys
	}
	hdr, err := jwsHeader(act.Algorithm, act.ID)
	if err != nil {
		return nil, err
	}
	ks := &keySet{signing: &signingKey{id: act.ID, alg: jose.SignatureAlgorithm(act.Algorithm), key: signer, header: hdr},
		signingSince: act.NotBefore}
	jwks := jose.JSONWebKeySet{}
	nextCheck := act.RetireAt.Add(-m.publishLead())
	// Newest first, so clients that take the first key take the right one.
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, func(a, b storage.SigningKey) int { return b.NotBefore.Compare(a.NotBefore) })
	for _, k := range sorted {
		if !k.ExpiresAt.IsZero() && now.After(k.ExpiresAt) {
			continue
		}
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(k.PublicJWK); err != nil {
			return nil, fmt.Errorf("op: public key %s: %w", k.ID, err)
		}
		ks.public = append(ks.public, publicKey{id: k.ID, alg: jose.SignatureAlgorithm(k.Algorithm), key: jwk.Key})
		jwks.Keys = append(jwks.Keys, jwk)
		if k.NotBefore.After(now) && k.NotBefore.Before(nextCheck) {
			nextCheck = k.NotBefore
		}
		if !k.ExpiresAt.IsZero() && k.ExpiresAt.Before(nextCheck) {
			nextCheck = k.ExpiresAt
		}
	}
	// Re-read at least every few minutes: another instance (or the CLI)
	// may have rotated.
	if limit := now.Add(5 * time.Minute); nextCheck.After(limit) {
		nextCheck = limit
	}
	body, err := json.Marshal(jwks)
	if err != nil {
		return nil, err
	}
	ks.jwks = newStaticDoc(body, "public, max-age=300")
	ks.nextCheck = nextCheck
	return ks, nil
}
