package factor

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// PasswordParams are the argon2id cost parameters (RFC 9106 §3.1).
type PasswordParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over memory
	Threads uint8  // degree of parallelism
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes of derived key (tag)
}

// DefaultPasswordParams is the OWASP Password Storage Cheat Sheet minimum for
// argon2id: 19 MiB, 2 passes, 1 lane.
var DefaultPasswordParams = PasswordParams{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds on parameters, for hashing and for stored strings alike. The upper
// bounds keep a corrupt or hostile stored hash from costing unbounded memory
// or time on every sign-in.
const (
	minSaltLen   = 8       // RFC 9106 §3.1: at least 8 bytes (16 recommended)
	maxSaltLen   = 64      //
	minKeyLen    = 16      // 128 bits
	maxKeyLen    = 128     //
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxTime      = 64      //
)

// Errors from hashing and verification. A malformed stored string is an
// error, never a panic and never a silent "wrong password".
var (
	ErrPasswordParams = errors.New("factor: invalid argon2id parameters")
	ErrMalformedHash  = errors.New("factor: malformed argon2id PHC string")
)

func (p PasswordParams) validate() error {
	switch {
	case p.Threads < 1,
		p.Time < 1 || p.Time > maxTime,
		p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemoryKiB, // argon2 needs 8 blocks per lane
		p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen,
		p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return ErrPasswordParams
	}
	return nil
}

// weakerThan reports whether hashes made with p should be redone with q:
// any cost or length below q's. More threads is not stronger, so a change of
// Threads alone does not ask for a rehash.
func (p PasswordParams) weakerThan(q PasswordParams) bool {
	return p.Memory < q.Memory || p.Time < q.Time || p.SaltLen < q.SaltLen || p.KeyLen < q.KeyLen
}

// HashPassword derives an argon2id hash of password with a fresh random salt
// and returns it in the PHC string format:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt, unpadded base64>$<hash, unpadded base64>
func HashPassword(password string, p PasswordParams) (string, error) {
	if err := p.validate(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (Go ≥ 1.24)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return formatPHC(p, salt, key), nil
}

// VerifyPassword checks password against a PHC string made by HashPassword,
// comparing the derived key in constant time. needsRehash is true only when
// ok is true and the stored parameters are weaker than p (lower memory,
// time, salt or key length), so that the caller can store a new hash while
// it has the plaintext. err is non-nil only for a malformed or out-of-bounds
// stored string.
func VerifyPassword(phc, password string, p PasswordParams) (ok, needsRehash bool, err error) {
	stored, salt, key, err := parsePHC(phc)
	if err != nil {
		return false, false, err
	}
	got := argon2.IDKey([]byte(password), salt, stored.Time, stored.Memory, stored.Threads, stored.KeyLen)
	ok = subtle.ConstantTimeCompare(got, key) == 1
	return ok, ok && stored.weakerThan(p), nil
}

// PasswordHasher hashes and verifies passwords with one set of parameters and
// keeps the dummy hash that DummyVerify checks against. The zero value uses
// DefaultPasswordParams. Use it through a pointer; it is safe for concurrent
// use as long as Params is not changed while it is in use.
type PasswordHasher struct {
	Params PasswordParams
	// Slots bounds how many hashes run at once (0: unbounded). Each argon2id
	// run holds Params.Memory (19 MiB by default) until it ends; more runs
	// than CPUs add memory, not throughput.
	Slots int

	mu       sync.Mutex
	dummyFor PasswordParams
	dummy    string
	once     sync.Once
	slots    chan struct{}
}

// NewPasswordHasher returns a hasher for p, unbounded.
func NewPasswordHasher(p PasswordParams) *PasswordHasher {
	return &PasswordHasher{Params: p}
}

// acquire takes a slot (when bounded) and returns its release.
func (h *PasswordHasher) acquire() func() {
	if h.Slots <= 0 {
		return func() {}
	}
	h.once.Do(func() { h.slots = make(chan struct{}, h.Slots) })
	h.slots <- struct{}{}
	return func() { <-h.slots }
}

func (h *PasswordHasher) params() PasswordParams {
	if h.Params == (PasswordParams{}) {
		return DefaultPasswordParams
	}
	return h.Params
}

// Hash is HashPassword with the hasher's parameters.
func (h *PasswordHasher) Hash(password string) (string, error) {
	defer h.acquire()()
	return HashPassword(password, h.params())
}

// Verify is VerifyPassword with the hasher's parameters as the target for
// needsRehash.
func (h *PasswordHasher) Verify(phc, password string) (ok, needsRehash bool, err error) {
	defer h.acquire()()
	return VerifyPassword(phc, password, h.params())
}

// DummyVerify does the work of one Verify — parse, argon2id with the
// hasher's parameters, constant-time compare — against a hash that no
// password matches, and returns false. Call it when the account does not
// exist (or has no password), so that the response takes as long as for a
// real account and timing does not reveal which accounts exist.
//
// The dummy hash is built once per parameter set, lazily, and kept in the
// hasher. Building it costs no argon2 run: a random salt and a random key of
// the right lengths make a string that verification treats exactly like a
// real one.
func (h *PasswordHasher) DummyVerify(password string) bool {
	dummy := h.dummyHash()
	defer h.acquire()()
	_, _, _ = VerifyPassword(dummy, password, h.params())
	return false
}

func (h *PasswordHasher) dummyHash() string {
	p := h.params()
	if p.validate() != nil {
		// Hash fails for these parameters too; spend the default cost so the
		// two paths stay alike.
		p = DefaultPasswordParams
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dummy == "" || h.dummyFor != p {
		salt := make([]byte, p.SaltLen)
		key := make([]byte, p.KeyLen)
		_, _ = rand.Read(salt)
		_, _ = rand.Read(key)
		h.dummy, h.dummyFor = formatPHC(p, salt, key), p
	}
	return h.dummy
}

// b64 is the PHC string format's "B64": standard alphabet, no padding, and
// (Strict) no stray bits, so that every hash has exactly one spelling.
var b64 = base64.RawStdEncoding.Strict()

func formatPHC(p PasswordParams, salt, key []byte) string {
	var b strings.Builder
	b.Grow(64 + b64.EncodedLen(len(salt)) + b64.EncodedLen(len(key)))
	b.WriteString("$argon2id$v=")
	b.WriteString(strconv.Itoa(argon2.Version))
	b.WriteString("$m=")
	b.WriteString(strconv.FormatUint(uint64(p.Memory), 10))
	b.WriteString(",t=")
	b.WriteString(strconv.FormatUint(uint64(p.Time), 10))
	b.WriteString(",p=")
	b.WriteString(strconv.FormatUint(uint64(p.Threads), 10))
	b.WriteByte('$')
	b.WriteString(b64.EncodeToString(salt))
	b.WriteByte('$')
	b.WriteString(b64.EncodeToString(key))
	return b.String()
}

// parsePHC reads "$argon2id$v=19$m=…,t=…,p=…$salt$hash", strictly: fixed
// field and parameter order, decimal numbers without sign or leading zeros,
// unpadded canonical base64, parameters within the package bounds. The
// returned params carry the salt and key lengths that were found.
func parsePHC(s string) (p PasswordParams, salt, key []byte, err error) {
	fields := strings.Split(s, "$")
	if len(fields) != 6 || fields[0] != "" || fields[1] != "argon2id" {
		return p, nil, nil, ErrMalformedHash
	}
	v, ok := phcParam(fields[2], "v")
	if !ok || v != argon2.Version {
		return p, nil, nil, ErrMalformedHash
	}
	ps := strings.Split(fields[3], ",")
	if len(ps) != 3 {
		return p, nil, nil, ErrMalformedHash
	}
	m, okM := phcParam(ps[0], "m")
	t, okT := phcParam(ps[1], "t")
	l, okP := phcParam(ps[2], "p")
	if !okM || !okT || !okP || l > 255 {
		return p, nil, nil, ErrMalformedHash
	}
	// encoding/base64 skips '\r' and '\n'; a PHC string holds neither.
	if strings.ContainsAny(fields[4], "\r\n") || strings.ContainsAny(fields[5], "\r\n") {
		return p, nil, nil, ErrMalformedHash
	}
	if salt, err = b64.DecodeString(fields[4]); err != nil {
		return p, nil, nil, ErrMalformedHash
	}
	if key, err = b64.DecodeString(fields[5]); err != nil {
		return p, nil, nil, ErrMalformedHash
	}
	p = PasswordParams{
		Memory:  uint32(m),
		Time:    uint32(t),
		Threads: uint8(l),
		SaltLen: uint32(len(salt)),
		KeyLen:  uint32(len(key)),
	}
	if p.validate() != nil {
		return PasswordParams{}, nil, nil, ErrMalformedHash
	}
	return p, salt, key, nil
}

// phcParam parses "name=decimal" into a uint32-sized value.
func phcParam(s, name string) (uint64, bool) {
	val, found := strings.CutPrefix(s, name+"=")
	if !found || val == "" || len(val) > 10 || (len(val) > 1 && val[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(val); i++ {
		if val[i] < '0' || val[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(val, 10, 32)
	return n, err == nil
}
