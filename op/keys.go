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
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// Supported signing algorithms (config keys.algorithm,
// keys.access_token_algorithm, a client's id_token_signed_response_alg).
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
	// signers: the key that signs now, one per published algorithm
	// (keyManager.algs, in that order).
	signers []*signingKey
	// idDefault signs the ID tokens of clients that registered no
	// algorithm (keys.algorithm); access signs JWT access tokens
	// (keys.access_token_algorithm).
	idDefault *signingKey
	access    *signingKey
	public    []zop.Key
	jwks      *staticDoc // precomputed /keys response
	nextCheck time.Time  // when a rotation may be due
	// signingSince: when idDefault began to sign (its NotBefore).
	signingSince time.Time
}

// forAlg is the signing key of alg, nil when alg is not published.
func (ks *keySet) forAlg(alg string) *signingKey {
	for _, k := range ks.signers {
		if string(k.alg) == alg {
			return k
		}
	}
	return nil
}

// idToken is the key of a client's ID tokens (and logout tokens, OIDC
// Back-Channel Logout §2.4): its registered id_token_signed_response_alg,
// else the default.
func (ks *keySet) idToken(registered string) *signingKey {
	if registered != "" {
		if k := ks.forAlg(registered); k != nil {
			return k
		}
	}
	return ks.idDefault
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
//
// Every algorithm in algs has a key that signs at all times, and they
// rotate together: each rotation makes one key per algorithm with the
// same window (a generation), so JWKS changes once per rotation and the
// keys of every algorithm are published, start signing and retire at the
// same instants on every instance.
type keyManager struct {
	store keyStore
	kr    *keyring.Keyring
	// idAlg signs the ID tokens of clients that registered no algorithm
	// (keys.algorithm); atAlg signs JWT access tokens.
	idAlg string
	atAlg string
	// algs are the published algorithms: RS256 and ES256 always (what a
	// client may register: config.ClientIDTokenAlgorithms), and idAlg and
	// atAlg.
	algs     []string
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

// newKeyManager: the key manager of a provider whose ID tokens default to
// idAlg and whose JWT access tokens are signed with atAlg.
func newKeyManager(store keyStore, kr *keyring.Keyring, idAlg, atAlg string, rotation, keep time.Duration,
	now func() time.Time, logger *slog.Logger) *keyManager {
	algs := slices.Clone(config.ClientIDTokenAlgorithms)
	for _, a := range []string{idAlg, atAlg} {
		if !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	return &keyManager{store: store, kr: kr, idAlg: idAlg, atAlg: atAlg, algs: algs,
		rotation: rotation, keep: keep, now: now, logger: logger}
}

// idTokenAlgs are the algorithms ID tokens may be signed with
// (id_token_signing_alg_values_supported), the default first.
func (m *keyManager) idTokenAlgs() []string {
	out := []string{m.idAlg}
	for _, a := range config.ClientIDTokenAlgorithms {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
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
	rotatePlanned                    // a new generation now, signing after the publish lead
	rotateNow                        // compromise: a new generation signs at once, the old keys are withdrawn
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

// active returns the key of alg that signs at now: the newest whose
// window contains now.
func active(keys []storage.SigningKey, alg string, now time.Time) (storage.SigningKey, bool) {
	var best storage.SigningKey
	found := false
	for _, k := range keys {
		if k.Algorithm != alg || now.Before(k.NotBefore) || !now.Before(k.RetireAt) {
			continue
		}
		if !found || k.NotBefore.After(best.NotBefore) {
			best, found = k, true
		}
	}
	return best, found
}

// needsKey: alg has no active key, or its active key retires within the
// publish lead and no successor is published yet.
func (m *keyManager) needsKey(keys []storage.SigningKey, alg string, now time.Time) bool {
	act, ok := active(keys, alg, now)
	if !ok {
		return true
	}
	if now.Add(m.publishLead()).Before(act.RetireAt) {
		return false
	}
	for _, k := range keys {
		if k.Algorithm == alg && k.NotBefore.After(act.NotBefore) {
			return false
		}
	}
	return true
}

// needsRotation: some published algorithm needs a key.
func (m *keyManager) needsRotation(keys []storage.SigningKey, now time.Time) bool {
	for _, alg := range m.algs {
		if m.needsKey(keys, alg, now) {
			return true
		}
	}
	return false
}

// plan decides, under the cross-instance lock, which keys to add and
// which to delete. It re-checks with the locked view, so two instances
// racing here add one generation, not two.
//
//   - on schedule: each key's successor is published a publish lead
//     before the key retires and signs from then; keys of one generation
//     retire together, so their successors form the next generation. An
//     algorithm without a key (a new deployment; an upgrade that
//     publishes a new algorithm) gets one that signs at once and retires
//     with the keys that sign now, joining their generation;
//   - planned (latchkey keys rotate): a new generation is published now
//     and signs after the publish lead; the current keys sign until then;
//   - now (latchkey keys rotate --now, a compromised key): a new
//     generation signs at once and every other key is withdrawn from
//     JWKS at once, so tokens the old keys signed stop verifying.
func (m *keyManager) plan(cur []storage.SigningKey, now time.Time, kind rotation) ([]storage.SigningKey, []string, error) {
	var remove []string
	var live []storage.SigningKey
	for _, k := range cur {
		if kind == rotateNow || (!k.ExpiresAt.IsZero() && now.After(k.ExpiresAt)) {
			remove = append(remove, k.ID)
		} else {
			live = append(live, k)
		}
	}
	hadActive := m.anyActive(live, now)
	var add []storage.SigningKey
	if kind == rotateOnSchedule || (kind == rotatePlanned && hadActive) {
		// Two passes: a key added to join a generation that retires
		// within the publish lead needs that generation's successor too.
		for range 2 {
			for _, alg := range m.algs {
				if !m.needsKey(live, alg, now) {
					continue
				}
				notBefore, retire := now, time.Time{}
				if act, ok := active(live, alg, now); ok {
					notBefore = act.RetireAt
				} else if gen, ok := m.generationRetire(live, now); ok {
					retire = gen
				}
				nk, err := m.generate(alg, now, notBefore, retire)
				if err != nil {
					return nil, nil, err
				}
				add, live = append(add, nk), append(live, nk)
			}
		}
	}
	if kind == rotateOnSchedule {
		return add, remove, nil
	}
	notBefore := now
	if kind == rotatePlanned && hadActive {
		notBefore = now.Add(m.publishLead())
	}
	// The keys that would sign after the new generation starts retire
	// when it does (rewritten as remove + add: removals are applied
	// first); they stay published for m.keep so their tokens still
	// verify. A key not yet signing then never signs.
	for i, k := range live {
		if !slices.Contains(m.algs, k.Algorithm) || !k.RetireAt.After(notBefore) {
			continue
		}
		k.RetireAt = notBefore
		if k.NotBefore.After(notBefore) {
			k.RetireAt = k.NotBefore
		}
		k.ExpiresAt = k.RetireAt.Add(m.keep)
		if j := slices.IndexFunc(add, func(a storage.SigningKey) bool { return a.ID == k.ID }); j >= 0 {
			add[j] = k // added above, not stored yet
		} else {
			remove = append(remove, k.ID)
			add = append(add, k)
		}
		live[i] = k
	}
	for _, alg := range m.algs {
		nk, err := m.generate(alg, now, notBefore, time.Time{})
		if err != nil {
			return nil, nil, err
		}
		add = append(add, nk)
	}
	return add, remove, nil
}

// anyActive: some published algorithm has a key that signs at now.
func (m *keyManager) anyActive(keys []storage.SigningKey, now time.Time) bool {
	for _, alg := range m.algs {
		if _, ok := active(keys, alg, now); ok {
			return true
		}
	}
	return false
}

// generationRetire is when the keys signing now retire (the earliest, if
// they ever disagree), for a new algorithm's key to join them.
func (m *keyManager) generationRetire(keys []storage.SigningKey, now time.Time) (time.Time, bool) {
	var at time.Time
	for _, alg := range m.algs {
		if act, ok := active(keys, alg, now); ok && (at.IsZero() || act.RetireAt.Before(at)) {
			at = act.RetireAt
		}
	}
	return at, !at.IsZero()
}

func anyExpired(keys []storage.SigningKey, now time.Time) bool {
	for _, k := range keys {
		if !k.ExpiresAt.IsZero() && now.After(k.ExpiresAt) {
			return true
		}
	}
	return false
}

// generate makes a new key pair of alg that signs from notBefore until
// retire (zero: a rotation period later).
func (m *keyManager) generate(alg string, now, notBefore, retire time.Time) (storage.SigningKey, error) {
	priv, err := generateKey(alg)
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
	jwk := jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: alg, Use: "sig"}
	pubJSON, err := jwk.MarshalJSON()
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("op: marshal jwk: %w", err)
	}
	if retire.IsZero() {
		retire = notBefore.Add(m.rotation)
	}
	return storage.SigningKey{
		ID:            kid,
		Algorithm:     alg,
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
	ks := &keySet{}
	private := make(map[string]crypto.Signer, len(m.algs))
	lead := m.publishLead()
	var nextCheck time.Time
	for _, alg := range m.algs {
		act, ok := active(keys, alg, now)
		if !ok {
			return nil, fmt.Errorf("op: no active %s signing key", alg)
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
		}
		private[act.ID] = signer
		hdr, err := jwsHeader(act.Algorithm, act.ID)
		if err != nil {
			return nil, err
		}
		sk := &signingKey{id: act.ID, alg: jose.SignatureAlgorithm(act.Algorithm), key: signer, header: hdr}
		ks.signers = append(ks.signers, sk)
		if alg == m.idAlg {
			ks.idDefault, ks.signingSince = sk, act.NotBefore
		}
		if alg == m.atAlg {
			ks.access = sk
		}
		// Look again when a successor is due to be published, or — once
		// it is (plan ran before this snapshot) — when it starts to sign;
		// never a time already past, which would read the database on
		// every token request of the last publish lead.
		check := act.RetireAt.Add(-lead)
		if !check.After(now) {
			check = act.RetireAt
		}
		if nextCheck.IsZero() || check.Before(nextCheck) {
			nextCheck = check
		}
	}
	m.private = private // retired keys dropped
	jwks := jose.JSONWebKeySet{}
	// Newest first, so clients that take the first key take the right one.
	sorted := slices.Clone(keys)
	slices.SortStableFunc(sorted, func(a, b storage.SigningKey) int { return b.NotBefore.Compare(a.NotBefore) })
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
