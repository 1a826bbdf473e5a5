package factor

import (
	"bytes"
	"encoding/base32"
	"image"
	"image/color"
	"image/png"
	mrand "math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/boombuler/barcode/qr"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// rfcSeed is the SHA-1 seed of RFC 6238 Appendix B and RFC 4226 Appendix D.
var rfcSeed = []byte("12345678901234567890")

func TestHOTPRFC4226Vectors(t *testing.T) {
	// RFC 4226 Appendix D, counters 0–9.
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for c, w := range want {
		if got := TOTPCode(rfcSeed, int64(c)); got != w {
			t.Errorf("HOTP(counter %d) = %s, want %s", c, got, w)
		}
	}
}

func TestTOTPRFC6238Vectors(t *testing.T) {
	// RFC 6238 Appendix B, SHA-1 column, 8 digits truncated to the last 6
	// (the same value mod 10^6).
	for _, tc := range []struct {
		unix  int64
		step  int64
		code8 string
	}{
		{59, 0x1, "94287082"},
		{1111111109, 0x23523EC, "07081804"},
		{1111111111, 0x23523ED, "14050471"},
		{1234567890, 0x273EF07, "89005924"},
		{2000000000, 0x3F940AA, "69279037"},
		{20000000000, 0x27BC86AA, "65353130"},
	} {
		now := time.Unix(tc.unix, 0).UTC()
		if got := TOTPStep(now); got != tc.step {
			t.Errorf("TOTPStep(%d) = %#x, want %#x", tc.unix, got, tc.step)
		}
		want := tc.code8[2:]
		if got := TOTPCode(rfcSeed, tc.step); got != want {
			t.Errorf("TOTPCode(step %#x) = %s, want %s", tc.step, got, want)
		}
		step, ok := VerifyTOTP(rfcSeed, want, now, 0)
		if !ok || step != tc.step {
			t.Errorf("VerifyTOTP(%s at %d) = %d, %v; want %d, true", want, tc.unix, step, ok, tc.step)
		}
	}
}

// TestTOTPMatchesPquerna holds our RFC 4226 arithmetic to pquerna/otp's.
func TestTOTPMatchesPquerna(t *testing.T) {
	seed := []byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13")
	secret := base32.StdEncoding.EncodeToString(seed)
	for _, unix := range []int64{0, 29, 30, 59, 1_700_000_000, 1_700_000_015, 1_999_999_999, 4_102_444_800} {
		now := time.Unix(unix, 0)
		want, err := totp.GenerateCodeCustom(secret, now, totp.ValidateOpts{
			Period: TOTPPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := TOTPCode(seed, TOTPStep(now)); got != want {
			t.Errorf("at %d: TOTPCode = %s, pquerna/otp = %s", unix, got, want)
		}
	}
}

// TestVerifyTOTPAgreesWithPquerna: at many random instants, for codes
// pquerna/otp generates from two steps before to two steps after, VerifyTOTP
// accepts exactly what pquerna's own ±1-step validation accepts, returns the
// latest matching step, and refuses the same code once that step is spent.
func TestVerifyTOTPAgreesWithPquerna(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(6238, 4226)) // fixed: a failure reproduces
	pq := totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	for i := 0; i < 500; i++ {
		seed := make([]byte, TOTPSeedBytes)
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(seed)
		now := time.Unix(60+rng.Int64N(1<<33), rng.Int64N(1e9)) // 1970 … 2242
		cur := TOTPStep(now)
		if got, want := TOTPCode(seed, cur), must(totp.GenerateCode(secret, now)); got != want {
			t.Fatalf("at %v: TOTPCode %s, pquerna %s", now, got, want)
		}
		for offset := int64(-2); offset <= 2; offset++ {
			at := now.Add(time.Duration(offset) * TOTPPeriod * time.Second)
			code := must(totp.GenerateCode(secret, at))
			pqOK := must(totp.ValidateCustom(code, secret, now, pq))
			step, ok := VerifyTOTP(seed, code, now, 0)
			if ok != pqOK {
				t.Fatalf("at %v, code of step %+d: VerifyTOTP %v, pquerna %v", now, offset, ok, pqOK)
			}
			if !ok {
				continue
			}
			// The latest step in the window whose code this is.
			want := int64(-1)
			for s := cur + TOTPSkew; s >= cur-TOTPSkew && want < 0; s-- {
				if must(totp.GenerateCode(secret, time.Unix(s*TOTPPeriod, 0))) == code {
					want = s
				}
			}
			if step != want {
				t.Fatalf("at %v, code of step %+d: step %d, want %d", now, offset, step, want)
			}
			if _, again := VerifyTOTP(seed, code, now, step); again {
				t.Fatalf("at %v, code of step %+d: accepted again with lastStep %d", now, offset, step)
			}
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestTOTPStepBoundaries(t *testing.T) {
	for _, tc := range []struct {
		unix int64
		want int64
	}{
		{0, 0}, {29, 0}, {30, 1}, {59, 1}, {60, 2},
		{-1, -1}, {-30, -1}, {-31, -2},
	} {
		if got := TOTPStep(time.Unix(tc.unix, 0)); got != tc.want {
			t.Errorf("TOTPStep(%d) = %d, want %d", tc.unix, got, tc.want)
		}
	}
	// Sub-second precision and time zones do not matter.
	at := time.Date(2024, 3, 1, 12, 0, 29, 999_999_999, time.FixedZone("X", 5*3600))
	if TOTPStep(at) != TOTPStep(at.Add(-29*time.Second).UTC()) {
		t.Error("step changed inside one 30-second window")
	}
}

func TestVerifyTOTPWindow(t *testing.T) {
	seed := []byte("an-arbitrary-20-byte")
	now := time.Date(2025, 6, 1, 10, 0, 12, 0, time.UTC)
	cur := TOTPStep(now)
	for _, tc := range []struct {
		name   string
		offset int64
		ok     bool
	}{
		{"current", 0, true},
		{"previous", -1, true},
		{"next", +1, true},
		{"two behind", -2, false},
		{"two ahead", +2, false},
		{"ten behind", -10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := TOTPCode(seed, cur+tc.offset)
			// Make sure the code is not also valid for a neighbouring step by
			// chance, which would make the case meaningless.
			for d := int64(-1); d <= 1; d++ {
				if d != tc.offset && TOTPCode(seed, cur+d) == code {
					t.Skip("code collides with a step in the window")
				}
			}
			step, ok := VerifyTOTP(seed, code, now, 0)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && step != cur+tc.offset {
				t.Fatalf("step = %d, want %d", step, cur+tc.offset)
			}
			if !ok && step != 0 {
				t.Fatalf("step = %d on failure, want 0", step)
			}
		})
	}
}

func TestVerifyTOTPReplay(t *testing.T) {
	seed := rfcSeed
	now := time.Unix(1_750_000_000, 0)
	cur := TOTPStep(now)
	code := TOTPCode(seed, cur)

	step, ok := VerifyTOTP(seed, code, now, 0)
	if !ok || step != cur {
		t.Fatalf("first use: %d, %v", step, ok)
	}
	// Same code again, same instant and 20 s later: refused.
	if _, ok := VerifyTOTP(seed, code, now, step); ok {
		t.Fatal("replay at the same instant accepted")
	}
	if _, ok := VerifyTOTP(seed, code, now.Add(20*time.Second), step); ok {
		t.Fatal("replay within the window accepted")
	}
	// An older step's code after a newer one was accepted: refused.
	if _, ok := VerifyTOTP(seed, TOTPCode(seed, cur-1), now, step); ok {
		t.Fatal("code of an earlier step accepted after a later one")
	}
	// lastStep ahead of the whole window (a code from step+1 was used): all
	// refused, including the current one.
	if _, ok := VerifyTOTP(seed, code, now, cur+1); ok {
		t.Fatal("current step accepted with lastStep = cur+1")
	}
	// The next step's code is still good.
	next := TOTPCode(seed, cur+1)
	if step, ok := VerifyTOTP(seed, next, now.Add(TOTPPeriod*time.Second), cur); !ok || step != cur+1 {
		t.Fatalf("next step: %d, %v", step, ok)
	}
	// lastStep = cur-1 leaves cur and cur+1 open.
	if step, ok := VerifyTOTP(seed, code, now, cur-1); !ok || step != cur {
		t.Fatalf("lastStep = cur-1: %d, %v", step, ok)
	}
}

func TestVerifyTOTPMalformed(t *testing.T) {
	now := time.Unix(1_750_000_000, 0)
	code := TOTPCode(rfcSeed, TOTPStep(now))
	for _, tc := range []struct {
		name string
		code string
		ok   bool
	}{
		{"plain", code, true},
		{"spaced", code[:3] + " " + code[3:], true},
		{"padded", "  " + code + "\t", true},
		{"nbsp", code[:3] + "\u00a0" + code[3:], true},
		{"empty", "", false},
		{"five digits", code[:5], false},
		{"seven digits", code + "0", false},
		{"letters", "12a456", false},
		{"dash", code[:3] + "-" + code[3:], false},
		{"full-width digits", "１２３４５６", false},
		{"arabic-indic digits", "١٢٣٤٥٦", false},
		{"sign", "+" + code[1:], false},
		{"invalid utf-8", "\xff" + code, false},
		{"long", strings.Repeat(" ", 200) + code, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := VerifyTOTP(rfcSeed, tc.code, now, 0); ok != tc.ok {
				t.Fatalf("VerifyTOTP(%q) ok = %v, want %v", tc.code, ok, tc.ok)
			}
		})
	}
}

func TestVerifyTOTPShortSeed(t *testing.T) {
	now := time.Unix(1_750_000_000, 0)
	for _, seed := range [][]byte{nil, {}, []byte("short seed 15 b")} {
		code := TOTPCode(seed, TOTPStep(now))
		if _, ok := VerifyTOTP(seed, code, now, 0); ok {
			t.Fatalf("seed of %d bytes accepted", len(seed))
		}
	}
}

func TestNormalizeTOTPCode(t *testing.T) {
	for in, want := range map[string]string{
		"123456":      "123456",
		"123 456":     "123456",
		" 000000 ":    "000000",
		"1 2 3 4 5 6": "123456",
	} {
		if got, ok := NormalizeTOTPCode(in); !ok || got != want {
			t.Errorf("NormalizeTOTPCode(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "12345", "1234567", "abcdef", "123-456", "12345x"} {
		if _, ok := NormalizeTOTPCode(in); ok {
			t.Errorf("NormalizeTOTPCode(%q) accepted", in)
		}
	}
}

func TestNewTOTPSeed(t *testing.T) {
	a, b := NewTOTPSeed(), NewTOTPSeed()
	if len(a) != 20 || len(b) != 20 {
		t.Fatalf("seed lengths %d, %d", len(a), len(b))
	}
	if bytes.Equal(a, b) {
		t.Fatal("two seeds are equal")
	}
}

func TestTOTPKeyURI(t *testing.T) {
	seed := []byte("12345678901234567890")
	const secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	for _, tc := range []struct {
		name, issuer, account string
		want                  string
	}{
		{
			"plain", "Latchkey", "alice@example.com",
			"otpauth://totp/Latchkey:alice@example.com?secret=" + secret + "&issuer=Latchkey&algorithm=SHA1&digits=6&period=30",
		},
		{
			"spaces", "Acme Corp", "bob smith@example.com",
			"otpauth://totp/Acme%20Corp:bob%20smith@example.com?secret=" + secret + "&issuer=Acme%20Corp&algorithm=SHA1&digits=6&period=30",
		},
		{
			"at and reserved characters", "Acme@HQ & Co+", "c:d/e?f#g@x.org",
			"otpauth://totp/Acme@HQ%20%26%20Co%2B:c%3Ad%2Fe%3Ff%23g@x.org?secret=" + secret + "&issuer=Acme@HQ%20%26%20Co%2B&algorithm=SHA1&digits=6&period=30",
		},
		{
			"unicode", "Zürich Büro", "élodie@exemple.fr",
			"otpauth://totp/Z%C3%BCrich%20B%C3%BCro:%C3%A9lodie@exemple.fr?secret=" + secret + "&issuer=Z%C3%BCrich%20B%C3%BCro&algorithm=SHA1&digits=6&period=30",
		},
		{
			"no issuer", "", "alice@example.com",
			"otpauth://totp/alice@example.com?secret=" + secret + "&algorithm=SHA1&digits=6&period=30",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := TOTPKeyURI(tc.issuer, tc.account, seed)
			if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			// What a URI parser, and pquerna/otp as an app would, reads back.
			u, err := url.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			if u.Scheme != "otpauth" || u.Host != "totp" {
				t.Fatalf("scheme/host %q/%q", u.Scheme, u.Host)
			}
			q := u.Query()
			if q.Get("issuer") != tc.issuer || q.Get("secret") != secret || q.Get("algorithm") != "SHA1" ||
				q.Get("digits") != "6" || q.Get("period") != "30" {
				t.Fatalf("query %v", q)
			}
			wantPath := "/" + tc.account
			if tc.issuer != "" {
				wantPath = "/" + tc.issuer + ":" + tc.account
			}
			if u.Path != wantPath {
				t.Fatalf("path %q, want %q", u.Path, wantPath)
			}
			key, err := otp.NewKeyFromURL(got)
			if err != nil {
				t.Fatal(err)
			}
			if key.Issuer() != tc.issuer || key.Secret() != secret || key.Period() != 30 ||
				key.Digits() != otp.DigitsSix || key.Algorithm() != otp.AlgorithmSHA1 {
				t.Fatalf("pquerna/otp reads issuer %q secret %q period %d digits %v alg %v",
					key.Issuer(), key.Secret(), key.Period(), key.Digits(), key.Algorithm())
			}
			if !strings.Contains(tc.account, ":") && key.AccountName() != tc.account {
				t.Fatalf("pquerna/otp reads account %q", key.AccountName())
			}
		})
	}
}

func TestTOTPSecretText(t *testing.T) {
	for _, tc := range []struct {
		seed []byte
		want string
	}{
		{[]byte("12345678901234567890"), "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ"},
		{[]byte("Hello!\xde\xad\xbe\xef"), "JBSW Y3DP EHPK 3PXP"},
		{[]byte{0xff}, "74"},
		{nil, ""},
	} {
		if got := TOTPSecretText(tc.seed); got != tc.want {
			t.Errorf("TOTPSecretText(%x) = %q, want %q", tc.seed, got, tc.want)
		}
	}
	// Apps accept it once the spaces are gone: it decodes to the seed.
	seed := NewTOTPSeed()
	dec, err := b32NoPad.DecodeString(strings.ReplaceAll(TOTPSecretText(seed), " ", ""))
	if err != nil || !bytes.Equal(dec, seed) {
		t.Fatalf("round trip: %x, %v", dec, err)
	}
}

func TestTOTPQRCodePNG(t *testing.T) {
	uri := TOTPKeyURI("Latchkey Test", "alice@example.com", rfcSeed)
	for _, size := range []int{200, 256, 333} {
		b, err := TOTPQRCodePNG(uri, size)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("size %d: not a PNG signature", size)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("size %d: png.Decode: %v", size, err)
		}
		if r := img.Bounds(); r.Dx() != size || r.Dy() != size {
			t.Fatalf("size %d: image is %v", size, r)
		}
		// Quiet zone: the corners are white.
		white := func(x, y int) bool { r, _, _, _ := img.At(x, y).RGBA(); return r > 0x8000 }
		if !white(0, 0) || !white(size-1, size-1) || !white(size-1, 0) || !white(0, size-1) {
			t.Fatalf("size %d: corners not white", size)
		}
		checkQRRaster(t, img, uri, size)
	}
}

// checkQRRaster verifies the drawing pixel by pixel against the encoder's
// module matrix: whole pixels per module, centred, at least four white
// modules around, nothing else drawn.
func checkQRRaster(t *testing.T, img image.Image, uri string, size int) {
	t.Helper()
	code, err := qr.Encode(uri, qr.M, qr.Auto)
	if err != nil {
		t.Fatal(err)
	}
	n := code.Bounds().Dx()
	scale := size / (n + 8)
	off := (size - n*scale) / 2
	if scale < 1 || off < 4*scale {
		t.Fatalf("size %d: scale %d offset %d for %d modules", size, scale, off, n)
	}
	dark := func(c color.Color) bool { return color.GrayModel.Convert(c).(color.Gray).Y < 128 }
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			want := false
			if mx, my := (x-off)/scale, (y-off)/scale; x >= off && y >= off && mx < n && my < n {
				want = dark(code.At(mx, my))
			}
			if got := dark(img.At(x, y)); got != want {
				t.Fatalf("size %d: pixel (%d,%d) dark=%v, want %v", size, x, y, got, want)
			}
		}
	}
}

func TestTOTPQRCodePNGSize(t *testing.T) {
	uri := TOTPKeyURI("Latchkey", "alice@example.com", rfcSeed)
	for _, size := range []int{-1, 0, 10, 20, 5000} {
		if _, err := TOTPQRCodePNG(uri, size); err == nil {
			t.Errorf("size %d accepted", size)
		}
	}
	if _, err := TOTPQRCodePNG(strings.Repeat("x", 5000), 1000); err == nil {
		t.Error("URI too long for a QR code accepted")
	}
}

func BenchmarkVerifyTOTP(b *testing.B) {
	seed := NewTOTPSeed()
	now := time.Unix(1_750_000_000, 0)
	code := TOTPCode(seed, TOTPStep(now))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := VerifyTOTP(seed, code, now, 0); !ok {
			b.Fatal("no match")
		}
	}
}

func BenchmarkTOTPQRCodePNG(b *testing.B) {
	uri := TOTPKeyURI("Latchkey", "alice@example.com", NewTOTPSeed())
	for b.Loop() {
		if _, err := TOTPQRCodePNG(uri, 256); err != nil {
			b.Fatal(err)
		}
	}
}
