package factor

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	gotime "time"

	"golang.org/x/crypto/argon2"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestArgon2idRFC9106 runs the argon2id test vector of RFC 9106 §5.3
// (version 0x13, with secret and associated data) and checks the pre-hashing
// digest, the words the RFC prints after each pass, and the tag.
func TestArgon2idRFC9106(t *testing.T) {
	password := bytes.Repeat([]byte{0x01}, 32)
	salt := bytes.Repeat([]byte{0x02}, 16)
	secret := bytes.Repeat([]byte{0x03}, 8)
	data := bytes.Repeat([]byte{0x04}, 12)
	const memory, time, lanes, tagLen = 32, 3, 4, 32
	wantH0 := unhex(t, `28 89 de 48 7e b4 2a e5 00 c0 00 7e d9 25 2f
		10 69 ea de c4 0d 57 65 b4 85 de 6d c2 43 7a 67 b8 54 6a 2f 0a
		cc 1a 08 82 db 8f cf 74 71 4b 47 2e 94 df 42 1a 5d a1 11 2f fa
		11 43 43 70 a1 e9 97`)
	// Block 0000 words 0–3 and block 0031 words 124–127 after each pass.
	wantPass := [time][8]uint64{
		{0x6b2e09f10671bd43, 0xf69f5c27918a21be, 0xdea7810ea41290e1, 0x6787f7171870f893,
			0x377fa81666dc7f2b, 0x50e586398a9c39c8, 0x6f732732a550924a, 0x81f88b28683ea8e5},
		{0x3653ec9d01583df9, 0x69ef53a72d1e1fd3, 0x35635631744ab54f, 0x599512e96a37ab6e,
			0x4d4b435cea35caa6, 0xc582210d99ad1359, 0xd087971b36fd6d77, 0xa55222a93754c692},
		{0x942363968ce597a4, 0xa22448c0bdad5760, 0xa5f80662b6fa8748, 0xa0f9b9ce392f719f,
			0xd723359b485f509b, 0xcb78824f42375111, 0x35bc8cc6e83b1875, 0x0b012846a40f346a},
	}
	wantTag := unhex(t, `0d 64 0d f5 8d 78 76 6c 08 c0 37 a3 4a 8b 53 c9 d0
		1e f0 45 2d 75 b6 5e b5 25 20 e9 6b 01 e6 59`)

	// Step by step, as idKey does it, on memory full of garbage.
	a := dirtyMem(t, 64)
	h0 := a.h0(string(password), salt, secret, data, time, memory, lanes, tagLen)
	if !bytes.Equal(h0[:], wantH0) {
		t.Fatalf("H0 = %x\nwant %x", h0, wantH0)
	}
	B := a.blocks[:argonBlocks(memory, lanes)]
	if len(B) != 32 {
		t.Fatalf("m' = %d blocks, want 32", len(B))
	}
	argonFirstBlocks(B, &h0, lanes)
	for n := range uint32(time) {
		argonPass(B, n, time, lanes)
		got := [8]uint64{B[0][0], B[0][1], B[0][2], B[0][3], B[31][124], B[31][125], B[31][126], B[31][127]}
		if got != wantPass[n] {
			t.Fatalf("after pass %d: %x\nwant %x", n, got, wantPass[n])
		}
	}
	tag := make([]byte, tagLen)
	argonTag(tag, B, lanes)
	if !bytes.Equal(tag, wantTag) {
		t.Fatalf("tag = %x\nwant %x", tag, wantTag)
	}

	// And in one call, on memory left dirty by the run above.
	clear(tag)
	a.idKey(tag, string(password), salt, secret, data, time, memory, lanes)
	if !bytes.Equal(tag, wantTag) {
		t.Fatalf("idKey tag = %x\nwant %x", tag, wantTag)
	}
}

// dirtyMem returns an argonMem whose block array (blocks long) holds
// pseudo-random garbage, standing in for the leftovers of an earlier run.
func dirtyMem(t testing.TB, blocks int) *argonMem {
	t.Helper()
	a := &argonMem{blocks: make([]argonBlock, blocks)}
	fillGarbage(a.blocks, uint64(blocks))
	return a
}

func fillGarbage(B []argonBlock, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x9106))
	for i := range B {
		for k := range B[i] {
			B[i][k] = r.Uint64()
		}
	}
}

// argonCase is one set of inputs for the cross-check with x/crypto.
type argonCase struct {
	password, salt []byte
	time, memory   uint32
	lanes          uint8
	keyLen         uint32
}

func (c argonCase) String() string {
	return fmt.Sprintf("t=%d m=%d p=%d T=%d |P|=%d |S|=%d", c.time, c.memory, c.lanes, c.keyLen, len(c.password), len(c.salt))
}

// check compares idKey on a (whatever it holds) with x/crypto/argon2.IDKey.
func (c argonCase) check(t *testing.T, a *argonMem) {
	t.Helper()
	want := argon2.IDKey(c.password, c.salt, c.time, c.memory, c.lanes, c.keyLen)
	got := make([]byte, c.keyLen)
	a.idKey(got, string(c.password), c.salt, nil, nil, c.time, c.memory, c.lanes)
	if !bytes.Equal(got, want) {
		t.Fatalf("%v: idKey = %x\nx/crypto IDKey = %x", c, got, want)
	}
}

// TestArgon2idMatchesXCrypto cross-checks idKey against x/crypto/argon2.IDKey
// over random passwords, salts and tag lengths and every combination of
// t = 1…3 and p = 1…4 with small, odd and unaligned memory sizes (including
// sizes below 8p, which both round up). One argonMem serves all the cases:
// each run starts on the leftovers of the previous one, first with garbage.
func TestArgon2idMatchesXCrypto(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 3))
	a := dirtyMem(t, 700)
	bytesOf := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	tagLens := []uint32{4, 16, 31, 32, 33, 63, 64, 65, 96, 100, 128}
	for lanes := uint8(1); lanes <= 4; lanes++ {
		for time := uint32(1); time <= 3; time++ {
			mems := []uint32{1, 8 * uint32(lanes), 8*uint32(lanes) + 1, 37, 64, 127, 256 + 3, 512, 513 + uint32(r.IntN(200))}
			for _, memory := range mems {
				c := argonCase{
					password: bytesOf(r.IntN(80)),
					salt:     bytesOf(8 + r.IntN(57)),
					time:     time,
					memory:   memory,
					lanes:    lanes,
					keyLen:   tagLens[r.IntN(len(tagLens))],
				}
				c.check(t, a)
				if r.IntN(4) == 0 { // now and then, back to garbage
					fillGarbage(a.blocks[:cap(a.blocks)], r.Uint64())
				}
			}
		}
	}
	// The default parameters once, on memory dirtied by a smaller run.
	argonCase{password: []byte("correct horse battery staple"), salt: bytesOf(16),
		time: DefaultPasswordParams.Time, memory: DefaultPasswordParams.Memory,
		lanes: DefaultPasswordParams.Threads, keyLen: DefaultPasswordParams.KeyLen}.check(t, a)
}

// TestArgon2idReusesMemory: a run that fits in the array uses it in place; a
// larger one grows it.
func TestArgon2idReusesMemory(t *testing.T) {
	a := &argonMem{}
	out := make([]byte, 32)
	a.idKey(out, "pw", []byte("saltsalt"), nil, nil, 1, 64, 1)
	first := &a.blocks[:1][0]
	if cap(a.blocks) != 64 {
		t.Fatalf("cap = %d blocks, want 64", cap(a.blocks))
	}
	a.idKey(out, "pw", []byte("saltsalt"), nil, nil, 2, 48, 2)
	if &a.blocks[:1][0] != first {
		t.Fatal("a smaller run took a new array")
	}
	a.idKey(out, "pw", []byte("saltsalt"), nil, nil, 1, 128, 1)
	if cap(a.blocks) != 128 {
		t.Fatalf("after a larger run cap = %d blocks, want 128", cap(a.blocks))
	}
}

// FuzzArgon2id: idKey agrees with x/crypto/argon2.IDKey for any password,
// salt and (small) parameters, on memory left over from the previous input.
func FuzzArgon2id(f *testing.F) {
	f.Add([]byte("password"), []byte("somesalt"), uint8(2), uint16(64), uint8(1), uint8(32))
	f.Add([]byte(""), []byte("saltsalt"), uint8(1), uint16(8), uint8(1), uint8(16))
	f.Add([]byte("\x00\xff"), []byte("12345678"), uint8(3), uint16(33), uint8(4), uint8(65))
	f.Add([]byte("a longer password than most"), bytes.Repeat([]byte{0x02}, 16), uint8(1), uint16(255), uint8(3), uint8(128))
	f.Add(bytes.Repeat([]byte{0x01}, 32), []byte("s"), uint8(2), uint16(1), uint8(2), uint8(1))
	var a argonMem
	f.Fuzz(func(t *testing.T, password, salt []byte, time uint8, memory uint16, lanes uint8, keyLen uint8) {
		c := argonCase{
			password: password,
			salt:     salt,
			time:     1 + uint32(time)%3,
			memory:   uint32(memory) % 512,
			lanes:    1 + lanes%4,
			keyLen:   1 + uint32(keyLen)%128,
		}
		c.check(t, &a)
	})
}

// TestArgon2idBlocks: m' as x/crypto computes it.
func TestArgon2idBlocks(t *testing.T) {
	for _, c := range []struct {
		memory uint32
		lanes  uint8
		want   uint32
	}{
		{19456, 1, 19456}, {19457, 1, 19456}, {1, 1, 8}, {8, 1, 8}, {11, 1, 8}, {12, 1, 12},
		{32, 4, 32}, {33, 4, 32}, {47, 4, 32}, {48, 4, 48}, {1, 4, 32}, {1 << 20, 255, 1<<20 - 1<<20%1020},
	} {
		if got := argonBlocks(c.memory, c.lanes); got != c.want {
			t.Errorf("argonBlocks(%d, %d) = %d, want %d", c.memory, c.lanes, got, c.want)
		}
	}
}

// The input of H0 holds the password: it is cleared after use, and sized
// up front (no half-filled copy left behind by append). A longer input takes
// a new array; a shorter one reuses it.
func TestArgon2idClearsPassword(t *testing.T) {
	var a argonMem
	out := make([]byte, 32)
	for i, pw := range []string{"hunter2 hunter2", strings.Repeat("long password ", 20), "short"} {
		a.idKey(out, pw, []byte("saltsalt"), nil, nil, 1, 8, 1)
		want := 6*4 + 4 + len(pw) + 4 + 8 + 4 + 4
		if i == 2 {
			want = 6*4 + 4 + 14*20 + 4 + 8 + 4 + 4
		}
		if len(a.h0in) == 0 || cap(a.h0in) != want {
			t.Fatalf("H0 input for %q: len %d cap %d, want cap %d", pw, len(a.h0in), cap(a.h0in), want)
		}
		if !bytes.Equal(a.h0in[:cap(a.h0in)], make([]byte, cap(a.h0in))) {
			t.Fatalf("H0 input not cleared: %q", a.h0in[:cap(a.h0in)])
		}
	}
}

// BenchmarkArgon2id: one argon2id run at DefaultPasswordParams with
// x/crypto/argon2.IDKey (a fresh block array each time, SSE4.1 assembly on
// amd64) and with idKey (pure Go, the array reused). Compare the two within
// one run: the machine is shared.
func BenchmarkArgon2id(b *testing.B) {
	p := DefaultPasswordParams
	password, salt := []byte("correct horse battery staple"), []byte("0123456789abcdef")
	b.Run("xcrypto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, p.KeyLen)
		}
	})
	b.Run("own", func(b *testing.B) {
		b.ReportAllocs()
		var a argonMem
		out := make([]byte, p.KeyLen)
		for b.Loop() {
			a.idKey(out, string(password), salt, nil, nil, p.Time, p.Memory, p.Threads)
		}
	})
}

// BenchmarkArgon2idInCache: 256 KiB, 32 passes, so that the blocks stay in
// the core's cache and allocation is a small part: this compares the two
// compression functions (pure Go against x/crypto's SSE4.1 assembly) rather
// than memory. Each iteration runs both, in turns; the CPU time of each and
// the ratio are reported.
func BenchmarkArgon2idInCache(b *testing.B) {
	const time, memory, lanes, keyLen = 32, 256, 1, 32
	password, salt := []byte("correct horse battery staple"), []byte("0123456789abcdef")
	var a argonMem
	out := make([]byte, keyLen)
	pairedCPU(b, []namedFunc{
		{"xcrypto", func() { argon2.IDKey(password, salt, time, memory, lanes, keyLen) }},
		{"own", func() { a.idKey(out, string(password), salt, nil, nil, time, memory, lanes) }},
	})
}

type namedFunc struct {
	name string
	f    func()
}

// pairedCPU runs every function once per iteration, rotating their order,
// and reports each one's mean process CPU time ("<name>-cpu-ns/op") and its
// ratio to the first one's.
func pairedCPU(b *testing.B, fs []namedFunc) {
	spent := make([]gotime.Duration, len(fs))
	i := 0
	for b.Loop() {
		for k := range fs {
			c := (i + k) % len(fs)
			start := processCPU()
			fs[c].f()
			spent[c] += processCPU() - start
		}
		i++
	}
	for c, f := range fs {
		b.ReportMetric(float64(spent[c].Nanoseconds())/float64(i), f.name+"-cpu-ns/op")
		if c > 0 && spent[0] > 0 {
			b.ReportMetric(float64(spent[c])/float64(spent[0]), f.name+"/"+fs[0].name)
		}
	}
}

// BenchmarkArgon2idCompress: the compression function G alone.
func BenchmarkArgon2idCompress(b *testing.B) {
	B := make([]argonBlock, 3)
	fillGarbage(B, 1)
	b.SetBytes(1024)
	for b.Loop() {
		compress(&B[2], &B[0], &B[1], true)
	}
}
