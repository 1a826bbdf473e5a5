package factor

import (
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// cheap parameters keep the suite fast; DefaultPasswordParams is exercised
// once for the round trip and by the benchmark.
var cheap = PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashVerifyRoundTripDefault(t *testing.T) {
	phc, err := HashPassword("correct horse battery staple", DefaultPasswordParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("PHC string %q lacks the expected prefix", phc)
	}
	parts := strings.Split(phc, "$")
	if len(parts[4]) != 22 || len(parts[5]) != 43 { // 16 and 32 bytes, unpadded base64
		t.Fatalf("salt/hash lengths %d/%d in %q", len(parts[4]), len(parts[5]), phc)
	}
	ok, rehash, err := VerifyPassword(phc, "correct horse battery staple", DefaultPasswordParams)
	if !ok || rehash || err != nil {
		t.Fatalf("VerifyPassword(right) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	ok, rehash, err = VerifyPassword(phc, "correct horse battery stapler", DefaultPasswordParams)
	if ok || rehash || err != nil {
		t.Fatalf("VerifyPassword(wrong) = %v, %v, %v; want false, false, nil", ok, rehash, err)
	}
}

func TestHashIsSalted(t *testing.T) {
	a, _ := HashPassword("same password", cheap)
	b, _ := HashPassword("same password", cheap)
	if a == b {
		t.Fatal("two hashes of the same password are equal: salt not random")
	}
}

func TestVerifyPassword(t *testing.T) {
	phc, err := HashPassword("hunter2 but longer", cheap)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		password string
		ok       bool
	}{
		{"right", "hunter2 but longer", true},
		{"wrong", "hunter2 but shorter", false},
		{"case", "Hunter2 but longer", false},
		{"empty", "", false},
		{"prefix", "hunter2 but longe", false},
		{"trailing space", "hunter2 but longer ", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := VerifyPassword(phc, tc.password, cheap)
			if ok != tc.ok || rehash || err != nil {
				t.Fatalf("got %v, %v, %v; want %v, false, nil", ok, rehash, err, tc.ok)
			}
		})
	}
}

func TestEmptyPasswordHashes(t *testing.T) {
	phc, err := HashPassword("", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := VerifyPassword(phc, "", cheap); !ok {
		t.Fatal("empty password does not verify against its own hash")
	}
	if ok, _, _ := VerifyPassword(phc, "x", cheap); ok {
		t.Fatal("non-empty password verifies against the hash of the empty one")
	}
}

func TestNeedsRehash(t *testing.T) {
	target := PasswordParams{Memory: 128, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
	for _, tc := range []struct {
		name   string
		stored PasswordParams
		want   bool
	}{
		{"same", target, false},
		{"lower memory", PasswordParams{Memory: 64, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}, true},
		{"lower time", PasswordParams{Memory: 128, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, true},
		{"shorter salt", PasswordParams{Memory: 128, Time: 2, Threads: 1, SaltLen: 8, KeyLen: 32}, true},
		{"shorter key", PasswordParams{Memory: 128, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 16}, true},
		{"stronger memory", PasswordParams{Memory: 256, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}, false},
		{"stronger time", PasswordParams{Memory: 128, Time: 3, Threads: 1, SaltLen: 16, KeyLen: 32}, false},
		{"more threads only", PasswordParams{Memory: 128, Time: 2, Threads: 2, SaltLen: 16, KeyLen: 32}, false},
		{"more memory, less time", PasswordParams{Memory: 256, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			phc, err := HashPassword("pw for rehash", tc.stored)
			if err != nil {
				t.Fatal(err)
			}
			ok, rehash, err := VerifyPassword(phc, "pw for rehash", target)
			if !ok || err != nil || rehash != tc.want {
				t.Fatalf("got ok=%v rehash=%v err=%v; want ok=true rehash=%v", ok, rehash, err, tc.want)
			}
			// A wrong password never asks for a rehash.
			if _, rehash, _ := VerifyPassword(phc, "wrong", target); rehash {
				t.Fatal("needsRehash true for a wrong password")
			}
		})
	}
}

func TestHashPasswordRejectsBadParams(t *testing.T) {
	for _, p := range []PasswordParams{
		{},
		{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 0, SaltLen: 16, KeyLen: 32},
		{Memory: 7, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 9, SaltLen: 16, KeyLen: 32}, // < 8 KiB per lane
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 8},
		{Memory: 1<<20 + 1, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 65, Threads: 1, SaltLen: 16, KeyLen: 32},
	} {
		if _, err := HashPassword("x", p); !errors.Is(err, ErrPasswordParams) {
			t.Errorf("HashPassword with %+v: err = %v, want ErrPasswordParams", p, err)
		}
	}
}

// A valid cheap hash to break field by field: m=64,t=1,p=1, 16-byte salt,
// 32-byte key.
const validSalt = "c29tZXNhbHRzb21lc2FsdA"                     // "somesaltsomesalt"
const validKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // 32 zero bytes

func TestVerifyPasswordMalformed(t *testing.T) {
	ok := "$argon2id$v=19$m=64,t=1,p=1$" + validSalt + "$" + validKey
	if _, _, _, err := parsePHC(ok); err != nil {
		t.Fatalf("control string rejected: %v", err)
	}
	for _, tc := range []struct{ name, phc string }{
		{"empty", ""},
		{"just dollars", "$$$$$"},
		{"no leading dollar", "argon2id$v=19$m=64,t=1,p=1$" + validSalt + "$" + validKey},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + validSalt + "$" + validKey},
		{"argon2d", "$argon2d$v=19$m=64,t=1,p=1$" + validSalt + "$" + validKey},
		{"bcrypt", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"},
		{"upper-case alg", "$ARGON2ID$v=19$m=64,t=1,p=1$" + validSalt + "$" + validKey},
		{"missing version", "$argon2id$m=64,t=1,p=1$" + validSalt + "$" + validKey},
		{"version 16", "$argon2id$v=16$m=64,t=1,p=1$" + validSalt + "$" + validKey},
		{"version text", "$argon2id$v=x$m=64,t=1,p=1$" + validSalt + "$" + validKey},
		{"version empty", "$argon2id$v=$m=64,t=1,p=1$" + validSalt + "$" + validKey},
		{"version key", "$argon2id$ver=19$m=64,t=1,p=1$" + validSalt + "$" + validKey},
		{"params empty", "$argon2id$v=19$$" + validSalt + "$" + validKey},
		{"params missing p", "$argon2id$v=19$m=64,t=1$" + validSalt + "$" + validKey},
		{"params extra", "$argon2id$v=19$m=64,t=1,p=1,k=2$" + validSalt + "$" + validKey},
		{"params order", "$argon2id$v=19$t=1,m=64,p=1$" + validSalt + "$" + validKey},
		{"params spaces", "$argon2id$v=19$m=64, t=1, p=1$" + validSalt + "$" + validKey},
		{"m text", "$argon2id$v=19$m=abc,t=1,p=1$" + validSalt + "$" + validKey},
		{"m negative", "$argon2id$v=19$m=-64,t=1,p=1$" + validSalt + "$" + validKey},
		{"m plus", "$argon2id$v=19$m=+64,t=1,p=1$" + validSalt + "$" + validKey},
		{"m leading zero", "$argon2id$v=19$m=064,t=1,p=1$" + validSalt + "$" + validKey},
		{"m zero", "$argon2id$v=19$m=0,t=1,p=1$" + validSalt + "$" + validKey},
		{"m below 8p", "$argon2id$v=19$m=7,t=1,p=1$" + validSalt + "$" + validKey},
		{"m huge", "$argon2id$v=19$m=4294967295,t=1,p=1$" + validSalt + "$" + validKey},
		{"m overflow", "$argon2id$v=19$m=99999999999,t=1,p=1$" + validSalt + "$" + validKey},
		{"t zero", "$argon2id$v=19$m=64,t=0,p=1$" + validSalt + "$" + validKey},
		{"t huge", "$argon2id$v=19$m=64,t=1000,p=1$" + validSalt + "$" + validKey},
		{"p zero", "$argon2id$v=19$m=64,t=1,p=0$" + validSalt + "$" + validKey},
		{"p 256", "$argon2id$v=19$m=4096,t=1,p=256$" + validSalt + "$" + validKey},
		{"salt empty", "$argon2id$v=19$m=64,t=1,p=1$$" + validKey},
		{"salt bad base64", "$argon2id$v=19$m=64,t=1,p=1$!!!!!!!!!!!$" + validKey},
		{"salt padded", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA==$" + validKey},
		{"salt url alphabet", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRz-21lc2FsdA$" + validKey},
		{"salt too short", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + validKey},
		{"salt stray bits", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdB$" + validKey},
		{"hash empty", "$argon2id$v=19$m=64,t=1,p=1$" + validSalt + "$"},
		{"hash bad base64", "$argon2id$v=19$m=64,t=1,p=1$" + validSalt + "$***"},
		{"hash too short", "$argon2id$v=19$m=64,t=1,p=1$" + validSalt + "$AAAAAAAAAAA"},
		{"hash missing", "$argon2id$v=19$m=64,t=1,p=1$" + validSalt},
		{"extra field", ok + "$AAAA"},
		{"trailing newline", ok + "\n"},
		{"newline in salt", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRz\nb21lc2FsdA$" + validKey},
		{"carriage return in hash", "$argon2id$v=19$m=64,t=1,p=1$" + validSalt + "$AAAAAAAAAAAAAAAAAAAAA\rAAAAAAAAAAAAAAAAAAAAAA"},
		{"leading space", " " + ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := VerifyPassword(tc.phc, "password", cheap)
			if ok || rehash || !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("VerifyPassword(%q) = %v, %v, %v; want false, false, ErrMalformedHash", tc.phc, ok, rehash, err)
			}
		})
	}
}

func TestPHCIsCanonical(t *testing.T) {
	phc, err := HashPassword("x", cheap)
	if err != nil {
		t.Fatal(err)
	}
	p, salt, key, err := parsePHC(phc)
	if err != nil {
		t.Fatal(err)
	}
	if p != cheap {
		t.Fatalf("parsed params %+v, want %+v", p, cheap)
	}
	if got := formatPHC(p, salt, key); got != phc {
		t.Fatalf("format(parse(s)) = %q, want %q", got, phc)
	}
}

func TestPasswordHasher(t *testing.T) {
	h := NewPasswordHasher(cheap)
	phc, err := h.Hash("a fine password")
	if err != nil {
		t.Fatal(err)
	}
	if ok, rehash, err := h.Verify(phc, "a fine password"); !ok || rehash || err != nil {
		t.Fatalf("Verify = %v, %v, %v", ok, rehash, err)
	}
	if ok, _, _ := h.Verify(phc, "another password"); ok {
		t.Fatal("wrong password verified")
	}
	// A stronger target asks for a rehash of the cheap hash.
	stronger := NewPasswordHasher(PasswordParams{Memory: 128, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if ok, rehash, _ := stronger.Verify(phc, "a fine password"); !ok || !rehash {
		t.Fatalf("stronger.Verify = %v, rehash %v; want true, true", ok, rehash)
	}
}

func TestPasswordHasherZeroValueUsesDefaults(t *testing.T) {
	var h PasswordHasher
	if got := h.params(); got != DefaultPasswordParams {
		t.Fatalf("zero hasher params = %+v", got)
	}
	p, _, _, err := parsePHC(h.dummyHash())
	if err != nil || p != DefaultPasswordParams {
		t.Fatalf("zero hasher dummy: %+v, %v", p, err)
	}
}

func TestDummyVerify(t *testing.T) {
	h := &PasswordHasher{Params: cheap}
	for _, pw := range []string{"", "password", "a fine password", strings.Repeat("x", 1024)} {
		if h.DummyVerify(pw) {
			t.Fatalf("DummyVerify(%q) = true", pw)
		}
	}
	// The dummy is built once per parameter set, with those parameters, so
	// it costs what a real verification costs.
	first := h.dummyHash()
	if again := h.dummyHash(); again != first {
		t.Fatal("dummy hash rebuilt for the same parameters")
	}
	if p, _, _, err := parsePHC(first); err != nil || p != cheap {
		t.Fatalf("dummy hash params %+v, %v; want %+v", p, err, cheap)
	}
	h.Params.Time = 2
	second := h.dummyHash()
	if second == first {
		t.Fatal("dummy hash not rebuilt after Params changed")
	}
	if p, _, _, _ := parsePHC(second); p.Time != 2 {
		t.Fatalf("rebuilt dummy has t=%d, want 2", p.Time)
	}
	// Two hashers do not share a dummy.
	other := &PasswordHasher{Params: cheap}
	if other.dummyHash() == first {
		t.Fatal("dummy hash shared between hashers")
	}
}

func TestDummyVerifyInvalidParamsStillWorks(t *testing.T) {
	h := &PasswordHasher{Params: PasswordParams{Memory: 1, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}
	if _, err := h.Hash("x"); err == nil {
		t.Fatal("Hash accepted invalid params")
	}
	if h.DummyVerify("x") {
		t.Fatal("DummyVerify = true")
	}
}

func BenchmarkVerifyPassword(b *testing.B) {
	phc, err := HashPassword("correct horse battery staple", DefaultPasswordParams)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, _ := VerifyPassword(phc, "correct horse battery staple", DefaultPasswordParams); !ok {
			b.Fatal("no match")
		}
	}
}

func BenchmarkDummyVerify(b *testing.B) {
	h := NewPasswordHasher(DefaultPasswordParams)
	for b.Loop() {
		h.DummyVerify("correct horse battery staple")
	}
}

func TestPasswordHasherSlots(t *testing.T) {
	h := &PasswordHasher{Params: PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, Slots: 1}
	phc, err := h.Hash("secret password")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan bool, 8)
	for range 8 {
		go func() {
			ok, _, _ := h.Verify(phc, "secret password")
			done <- ok
		}()
	}
	for range 8 {
		if !<-done {
			t.Fatal("verify under contention failed")
		}
	}
	if len(h.slots) != h.Slots {
		t.Fatalf("%d of %d slots back", len(h.slots), h.Slots)
	}
}

// slotMem takes the memory of the only slot of h, for inspection, and puts
// it back.
func slotMem(t *testing.T, h *PasswordHasher) *argonMem {
	t.Helper()
	if h.Slots != 1 || len(h.slots) != 1 {
		t.Fatalf("want a one-slot hasher with its slot free, have Slots=%d, %d free", h.Slots, len(h.slots))
	}
	a := <-h.slots
	h.slots <- a
	return a
}

// A bounded hasher keeps its slot's block array between runs: after the
// first run, verification allocates nothing at all.
func TestPasswordHasherReusesMemory(t *testing.T) {
	p := PasswordParams{Memory: 256, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	h := &PasswordHasher{Params: p, Slots: 1}
	phc, err := h.Hash("reuse me")
	if err != nil {
		t.Fatal(err)
	}
	a := slotMem(t, h)
	if len(a.blocks) == 0 || cap(a.blocks) != 256 {
		t.Fatalf("slot memory after Hash: cap %d blocks, want 256", cap(a.blocks))
	}
	first := &a.blocks[0]
	allocs := testing.AllocsPerRun(20, func() {
		if ok, _, _ := h.Verify(phc, "reuse me"); !ok {
			t.Fatal("Verify failed")
		}
		if ok, _, _ := h.Verify(phc, "not me"); ok {
			t.Fatal("wrong password verified")
		}
		h.DummyVerify("reuse me")
	})
	if allocs != 0 {
		t.Errorf("Verify + Verify + DummyVerify allocate %v times per run, want 0", allocs)
	}
	if a := slotMem(t, h); len(a.blocks) == 0 || &a.blocks[0] != first {
		t.Error("the slot's block array was replaced")
	}
}

// A stored hash that needs less memory than the hasher's parameters runs in
// the slot's array; one that needs more still verifies, in an array of its
// own that is dropped afterwards, so that such a hash does not pin memory.
func TestPasswordHasherOtherStoredParams(t *testing.T) {
	p := PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	h := &PasswordHasher{Params: p, Slots: 1}
	if _, err := h.Hash("x"); err != nil {
		t.Fatal(err)
	}
	a := slotMem(t, h)
	if len(a.blocks) == 0 {
		t.Fatal("no block array kept after Hash")
	}
	first := &a.blocks[0]
	for _, stored := range []PasswordParams{
		{Memory: 64, Time: 1, Threads: 2, SaltLen: 64, KeyLen: 16},
		{Memory: 33, Time: 3, Threads: 4, SaltLen: 8, KeyLen: 100},
		{Memory: 300, Time: 2, Threads: 3, SaltLen: 16, KeyLen: 32},
	} {
		phc, err := HashPassword("stored elsewhere", stored)
		if err != nil {
			t.Fatal(err)
		}
		if ok, _, err := h.Verify(phc, "stored elsewhere"); !ok || err != nil {
			t.Fatalf("Verify of a %+v hash = %v, %v", stored, ok, err)
		}
		if ok, _, _ := h.Verify(phc, "stored elsewhere!"); ok {
			t.Fatalf("wrong password verified against a %+v hash", stored)
		}
		a := slotMem(t, h)
		if stored.Memory <= p.Memory {
			if len(a.blocks) == 0 || &a.blocks[0] != first {
				t.Fatalf("a %d KiB hash did not run in the slot's array", stored.Memory)
			}
		} else if cap(a.blocks) != 0 {
			t.Fatalf("after a %d KiB hash the slot keeps %d blocks", stored.Memory, cap(a.blocks))
		}
	}
}

// Unbounded hashers and bounded ones with several slots, used from many
// goroutines at once (run with -race): every answer right, every slot back.
func TestPasswordHasherConcurrent(t *testing.T) {
	p := PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	phc, err := HashPassword("many at once", p)
	if err != nil {
		t.Fatal(err)
	}
	for _, slots := range []int{0, 1, 3} {
		h := &PasswordHasher{Params: p, Slots: slots}
		errs := make(chan string, 64)
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				for j := range 8 {
					switch (i + j) % 4 {
					case 0:
						if ok, _, _ := h.Verify(phc, "many at once"); !ok {
							errs <- "right password rejected"
						}
					case 1:
						if ok, _, _ := h.Verify(phc, "many at twice"); ok {
							errs <- "wrong password accepted"
						}
					case 2:
						if h.DummyVerify("many at once") {
							errs <- "DummyVerify true"
						}
					case 3:
						mine, err := h.Hash("mine")
						if err != nil {
							errs <- err.Error()
						} else if ok, _, _ := h.Verify(mine, "mine"); !ok {
							errs <- "own hash rejected"
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Fatalf("Slots=%d: %s", slots, e)
		}
		if slots > 0 && len(h.slots) != slots {
			t.Fatalf("Slots=%d: %d back", slots, len(h.slots))
		}
	}
}

// TestHasherObservesCPU: Observe gets one CPU time per argon2id run —
// Hash, Verify and DummyVerify, concurrently too — on Linux, where it is
// measured on the run's thread; elsewhere it is never called.
func TestHasherObservesCPU(t *testing.T) {
	var mu sync.Mutex
	var seen []time.Duration
	h := &PasswordHasher{Params: DefaultPasswordParams, Slots: 2, Observe: func(d time.Duration) {
		mu.Lock()
		seen = append(seen, d)
		mu.Unlock()
	}}
	phc, err := h.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if ok, _, err := h.Verify(phc, "correct horse battery staple"); !ok || err != nil {
				t.Errorf("Verify = %v, %v", ok, err)
			}
		})
	}
	wg.Go(func() { h.DummyVerify("x") })
	wg.Wait()
	want := 5
	if runtime.GOOS != "linux" {
		want = 0
	}
	if len(seen) != want {
		t.Fatalf("%d observations, want %d", len(seen), want)
	}
	for _, d := range seen {
		// A run of 19 MiB × 2 passes cannot take less than a millisecond
		// of CPU; a clock that measured nothing would say 0.
		if d < time.Millisecond {
			t.Fatalf("observed %v for an argon2id run", d)
		}
	}
}
