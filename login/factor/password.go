package factor

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
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
//
// It allocates the argon2id memory (Memory KiB) for this one call; a
// PasswordHasher reuses it.
func HashPassword(password string, p PasswordParams) (string, error) {
	a := new(argonMem)
	defer a.drop()
	return hashPassword(a, password, p)
}

func hashPassword(a *argonMem, password string, p PasswordParams) (string, error) {
	if err := p.validate(); err != nil {
		return "", err
	}
	var saltBuf [maxSaltLen]byte
	var keyBuf [maxKeyLen]byte
	salt, key := saltBuf[:p.SaltLen], keyBuf[:p.KeyLen]
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (Go ≥ 1.24)
	a.idKey(key, password, salt, nil, nil, p.Time, p.Memory, p.Threads)
	return formatPHC(p, salt, key), nil
}

// VerifyPassword checks password against a PHC string made by HashPassword,
// comparing the derived key in constant time. needsRehash is true only when
// ok is true and the stored parameters are weaker than p (lower memory,
// time, salt or key length), so that the caller can store a new hash while
// it has the plaintext. err is non-nil only for a malformed or out-of-bounds
// stored string.
//
// It allocates the argon2id memory for this one call; a PasswordHasher
// reuses it.
func VerifyPassword(phc, password string, p PasswordParams) (ok, needsRehash bool, err error) {
	a := new(argonMem)
	defer a.drop()
	return verifyPassword(a, phc, password, p)
}

// verifyPassword is VerifyPassword on a's memory. Nothing in it allocates
// unless the stored parameters need more memory than a holds.
func verifyPassword(a *argonMem, phc, password string, p PasswordParams) (ok, needsRehash bool, err error) {
	var saltBuf [maxSaltLen]byte
	var keyBuf, gotBuf [maxKeyLen]byte
	stored, salt, key, err := parsePHCInto(phc, &saltBuf, &keyBuf)
	if err != nil {
		return false, false, err
	}
	got := gotBuf[:stored.KeyLen]
	a.idKey(got, password, salt, nil, nil, stored.Time, stored.Memory, stored.Threads)
	ok = subtle.ConstantTimeCompare(got, key) == 1
	return ok, ok && stored.weakerThan(p), nil
}

// PasswordHasher hashes and verifies passwords with one set of parameters and
// keeps the dummy hash that DummyVerify checks against. The zero value uses
// DefaultPasswordParams. Use it through a pointer; it is safe for concurrent
// use as long as Params is not changed while it is in use.
//
// The hasher keeps the argon2id memory between runs instead of allocating it
// for each: one block array per slot, grown to what a run needs and kept as
// long as it is no larger than Params needs (a stored hash with a larger
// memory cost, at most maxMemoryKiB, gets an array of its own for that run).
// Bounded (Slots > 0), the hasher holds at most Slots × Params.Memory KiB
// for good; unbounded, the arrays sit in a sync.Pool, which the garbage
// collector may empty.
type PasswordHasher struct {
	Params PasswordParams
	// Slots bounds how many hashes run at once (0: unbounded). Each argon2id
	// run holds Params.Memory (19 MiB by default) until it ends; more runs
	// than CPUs add memory, not throughput.
	Slots int
	// Observe, when set, is called after each argon2id run (Hash, Verify,
	// DummyVerify) with the CPU time the run took, measured on the thread
	// it ran on (Linux; elsewhere it is not called). The operator sees the
	// hasher's cost, and the sign-in benchmark tells the hash from the
	// rest of a sign-in with it.
	Observe func(cpu time.Duration)

	mu       sync.Mutex
	dummyFor PasswordParams
	dummy    string
	once     sync.Once
	slots    chan *argonMem // Slots > 0: one token per slot, with its memory
	pool     sync.Pool      // Slots <= 0: *argonMem
}

// NewPasswordHasher returns a hasher for p, unbounded.
func NewPasswordHasher(p PasswordParams) *PasswordHasher {
	return &PasswordHasher{Params: p}
}

// acquire takes a slot (waiting for one when bounded) and its memory. Hand
// the memory back with release.
func (h *PasswordHasher) acquire() *argonMem {
	if h.Slots <= 0 {
		if a, ok := h.pool.Get().(*argonMem); ok {
			return a
		}
		return new(argonMem)
	}
	h.once.Do(func() {
		h.slots = make(chan *argonMem, h.Slots)
		for range h.Slots {
			h.slots <- new(argonMem) // the block arrays come with the first runs
		}
	})
	return <-h.slots
}

// release returns a slot, keeping its block array unless it grew beyond
// what the hasher's own parameters need.
func (h *PasswordHasher) release(a *argonMem) {
	p := h.costParams()
	if cap(a.blocks) > int(argonBlocks(p.Memory, p.Threads)) {
		a.drop()
	}
	if h.Slots <= 0 {
		h.pool.Put(a)
		return
	}
	h.slots <- a
}

func (h *PasswordHasher) params() PasswordParams {
	if h.Params == (PasswordParams{}) {
		return DefaultPasswordParams
	}
	return h.Params
}

// costParams are the parameters whose cost the hasher pays: its own, or the
// defaults when those are invalid (which is what DummyVerify spends then).
func (h *PasswordHasher) costParams() PasswordParams {
	p := h.params()
	if p.validate() != nil {
		return DefaultPasswordParams
	}
	return p
}

// Hash is HashPassword with the hasher's parameters.
func (h *PasswordHasher) Hash(password string) (phc string, err error) {
	a := h.acquire()
	defer h.release(a)
	h.observed(func() { phc, err = hashPassword(a, password, h.params()) })
	return phc, err
}

// Verify is VerifyPassword with the hasher's parameters as the target for
// needsRehash.
func (h *PasswordHasher) Verify(phc, password string) (ok, needsRehash bool, err error) {
	a := h.acquire()
	defer h.release(a)
	h.observed(func() { ok, needsRehash, err = verifyPassword(a, phc, password, h.params()) })
	return ok, needsRehash, err
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
	a := h.acquire()
	defer h.release(a)
	h.observed(func() { _, _, _ = verifyPassword(a, dummy, password, h.params()) })
	return false
}

// observed runs one argon2id run, reporting its CPU time to Observe. The
// goroutine keeps its thread for the run, so that the thread's CPU time is
// the run's.
func (h *PasswordHasher) observed(run func()) {
	if h.Observe == nil {
		run()
		return
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start, ok := threadCPU()
	run()
	if end, ok2 := threadCPU(); ok && ok2 {
		h.Observe(end - start)
	}
}

func (h *PasswordHasher) dummyHash() string {
	// With invalid parameters Hash fails too; costParams spends the default
	// cost so that the two paths stay alike.
	p := h.costParams()
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
	b.WriteString(strconv.Itoa(argonVersion))
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
	return parsePHCInto(s, new([maxSaltLen]byte), new([maxKeyLen]byte))
}

// parsePHCInto is parsePHC decoding the salt and key into saltBuf and keyBuf,
// so that verification allocates nothing. On error salt and key are nil.
func parsePHCInto(s string, saltBuf *[maxSaltLen]byte, keyBuf *[maxKeyLen]byte) (p PasswordParams, salt, key []byte, err error) {
	// Six '$'-separated fields, the first empty: "", "argon2id", v, params,
	// salt, hash.
	rest, ok := strings.CutPrefix(s, "$argon2id$")
	if !ok {
		return p, nil, nil, ErrMalformedHash
	}
	var fields [4]string // v, params, salt, hash
	for i := range 3 {
		if fields[i], rest, ok = strings.Cut(rest, "$"); !ok {
			return p, nil, nil, ErrMalformedHash
		}
	}
	if fields[3] = rest; strings.Contains(rest, "$") {
		return p, nil, nil, ErrMalformedHash
	}
	v, ok := phcParam(fields[0], "v")
	if !ok || v != argonVersion {
		return p, nil, nil, ErrMalformedHash
	}
	// Three ','-separated parameters; phcParam rejects a ',' left in the
	// last one.
	ms, rest, okM := strings.Cut(fields[1], ",")
	ts, ps, okT := strings.Cut(rest, ",")
	if !okM || !okT {
		return p, nil, nil, ErrMalformedHash
	}
	m, okM := phcParam(ms, "m")
	t, okT := phcParam(ts, "t")
	l, okP := phcParam(ps, "p")
	if !okM || !okT || !okP || l > 255 {
		return p, nil, nil, ErrMalformedHash
	}
	if salt, ok = decodeB64(saltBuf[:], fields[2]); !ok {
		return p, nil, nil, ErrMalformedHash
	}
	if key, ok = decodeB64(keyBuf[:], fields[3]); !ok {
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

// decodeB64 decodes s (PHC "B64") into buf, failing when it does not fit.
func decodeB64(buf []byte, s string) ([]byte, bool) {
	// encoding/base64 skips '\r' and '\n'; a PHC string holds neither.
	var src [(maxKeyLen*8 + 5) / 6]byte // the longest encoding that fits
	if len(s) > len(src) || b64.DecodedLen(len(s)) > len(buf) || strings.ContainsAny(s, "\r\n") {
		return nil, false
	}
	n, err := b64.Decode(buf, src[:copy(src[:], s)])
	if err != nil {
		return nil, false
	}
	return buf[:n], true
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
