package factor

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"
	"time"

	"github.com/boombuler/barcode/qr"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// TOTP as every authenticator app does it (RFC 6238 §4 with the defaults of
// the Key URI Format): HMAC-SHA-1, 6 digits, 30-second steps from the Unix
// epoch, and one step of clock skew either way (RFC 6238 §5.2). The codes
// are github.com/pquerna/otp's; the replay guard around them is ours.
const (
	TOTPPeriod    = 30
	TOTPDigits    = 6
	TOTPSkew      = 1
	TOTPSeedBytes = 20 // 160 bits, RFC 4226 §4 R6 recommends
)

// minTOTPSeedBytes is RFC 4226 §4 R6's floor of 128 bits; VerifyTOTP refuses
// anything shorter (an empty seed from a storage bug must not verify).
const minTOTPSeedBytes = 16

// totpOpts are the parameters above for pquerna/otp. Skew is 0: VerifyTOTP
// walks the ±TOTPSkew window itself, one step at a time, because it must
// know which step matched (see VerifyTOTP).
func totpOpts() totp.ValidateOpts {
	return totp.ValidateOpts{Period: TOTPPeriod, Skew: 0, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
}

// totpSecret is the seed as pquerna/otp takes it: base32 without padding,
// as in the key URI.
func totpSecret(seed []byte) string { return b32NoPad.EncodeToString(seed) }

// NewTOTPSeed returns TOTPSeedBytes random bytes from crypto/rand.
func NewTOTPSeed() []byte {
	seed := make([]byte, TOTPSeedBytes)
	_, _ = rand.Read(seed) // crypto/rand.Read never fails (Go ≥ 1.24)
	return seed
}

// TOTPStep is the RFC 6238 time step T = floor(unix(t) / 30), in integer
// arithmetic (pquerna/otp divides in float64 and converts to uint64, which
// Go leaves implementation-defined for instants before the epoch).
func TOTPStep(t time.Time) int64 {
	u := t.Unix()
	s := u / TOTPPeriod
	if u%TOTPPeriod != 0 && u < 0 {
		s--
	}
	return s
}

// TOTPCode is the 6-digit code for a time step: TOTP is HOTP with the step
// as its counter (RFC 6238 §4.2), and pquerna/otp's HOTP does the RFC 4226
// §5.3 dynamic truncation. Steps are counters, so a negative step is taken
// as its two's-complement uint64.
func TOTPCode(seed []byte, step int64) string {
	o := totpOpts()
	code, err := hotp.GenerateCodeCustom(totpSecret(seed), uint64(step), hotp.ValidateOpts{Digits: o.Digits, Algorithm: o.Algorithm})
	if err != nil {
		// Only a secret that is not base32 fails, and ours always is.
		return ""
	}
	return code
}

// NormalizeTOTPCode strips white space (apps and people write "123 456") and
// requires exactly TOTPDigits ASCII digits.
func NormalizeTOTPCode(s string) (string, bool) {
	c, ok := compact(s, false)
	if !ok || !allDigits(c, TOTPDigits) {
		return "", false
	}
	return c, true
}

// VerifyTOTP checks code against the steps step(now)-1, step(now) and
// step(now)+1, skipping every step <= lastStep: a step once accepted is never
// accepted again (RFC 6238 §5.2, "MUST NOT accept the second attempt of the
// same OTP"). It returns the step that matched, which the caller stores as
// the new lastStep in the same UPDATE that compares it with the stored one
// (so of two concurrent uses of one code, one wins). For a new seed, pass
// lastStep 0 (or any step in the past).
//
// pquerna/otp's totp.ValidateCustom with Skew 1 would say whether the code
// matches somewhere in the window, but not where, and the replay guard
// needs the step (Authelia forked the library to add ValidateCustomStep
// for this). So each step is asked on its own: ValidateCustom with Skew 0
// at the step's first instant. All three are asked whatever the answers
// (pquerna compares in constant time). If the code matches more than one
// step (a one-in-a-million collision), the latest is returned, so the same
// digits cannot be replayed against the later step.
func VerifyTOTP(seed []byte, code string, now time.Time, lastStep int64) (step int64, ok bool) {
	if len(seed) < minTOTPSeedBytes {
		return 0, false
	}
	c, valid := NormalizeTOTPCode(code)
	if !valid {
		return 0, false
	}
	secret, opts := totpSecret(seed), totpOpts()
	cur := TOTPStep(now)
	for s := cur + TOTPSkew; s >= cur-TOTPSkew; s-- {
		if s < 0 {
			continue // no authenticator has a code before the epoch
		}
		match, err := totp.ValidateCustom(c, secret, time.Unix(s*TOTPPeriod, 0).UTC(), opts)
		if err == nil && match && !ok && s > lastStep {
			step, ok = s, true
		}
	}
	return step, ok
}

var b32NoPad = base32.StdEncoding.WithPadding(base32.NoPadding)

// TOTPKeyURI is the otpauth:// URI that authenticator apps read from the QR
// code (Google Authenticator Key URI Format):
//
//	otpauth://totp/Issuer:account?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30
//
// The app shows it as "Issuer (account)". Issuer and account are
// percent-encoded with every byte outside RFC 3986's unreserved set and '@'
// escaped — spaces as %20, never '+', which some apps show literally; a ':'
// inside either becomes %3A so that it cannot be taken for the separator.
// With an empty issuer the label is the account alone and there is no
// issuer parameter.
//
// It is built here rather than by pquerna/otp's totp.Generate, whose URI
// escapes with url.PathEscape: an issuer "Acme & Co+" splits the query at
// '&' and reads back as "Acme " (its own NewKeyFromURL agrees), a ':' in
// the account is left as the separator, and an empty issuer is refused.
// The tests read our URI back with pquerna/otp's otp.NewKeyFromURL.
func TOTPKeyURI(issuer, account string, seed []byte) string {
	var b strings.Builder
	b.WriteString("otpauth://totp/")
	if issuer != "" {
		b.WriteString(uriEscape(issuer))
		b.WriteByte(':')
	}
	b.WriteString(uriEscape(account))
	b.WriteString("?secret=")
	b.WriteString(b32NoPad.EncodeToString(seed))
	if issuer != "" {
		b.WriteString("&issuer=")
		b.WriteString(uriEscape(issuer))
	}
	fmt.Fprintf(&b, "&algorithm=SHA1&digits=%d&period=%d", TOTPDigits, TOTPPeriod)
	return b.String()
}

func uriEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '@':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// TOTPSecretText is the seed for manual entry: base32 (RFC 4648) without
// padding, in groups of four separated by spaces ("JBSW Y3DP EHPK 3PXP").
// Authenticator apps ignore the spaces.
func TOTPSecretText(seed []byte) string {
	s := b32NoPad.EncodeToString(seed)
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}

// QR code image bounds, in pixels.
const (
	qrQuietModules = 4 // ISO/IEC 18004 quiet zone
	maxQRSize      = 4096
)

// ErrQRSize is returned when the requested image cannot hold the code with
// at least one pixel per module and its quiet zone, or is absurdly large.
var ErrQRSize = errors.New("factor: QR code image size out of range")

// TOTPQRCodePNG draws uri as a QR code (error correction level M) in a
// size×size PNG: whole pixels per module, black on white, centred, with the
// four-module quiet zone that scanners need. Nothing is blurred, so phones
// read it at any size the page scales it to.
func TOTPQRCodePNG(uri string, size int) ([]byte, error) {
	code, err := qr.Encode(uri, qr.M, qr.Auto)
	if err != nil {
		return nil, fmt.Errorf("factor: QR code: %w", err)
	}
	r := code.Bounds()
	n := r.Dx()
	if size > maxQRSize || n <= 0 || size < n+2*qrQuietModules {
		return nil, ErrQRSize
	}
	scale := size / (n + 2*qrQuietModules)
	off := (size - n*scale) / 2
	img := image.NewPaletted(image.Rect(0, 0, size, size), color.Palette{color.White, color.Black})
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			if color.GrayModel.Convert(code.At(r.Min.X+x, r.Min.Y+y)).(color.Gray).Y >= 128 {
				continue
			}
			for dy := 0; dy < scale; dy++ {
				row := img.Pix[img.PixOffset(off+x*scale, off+y*scale+dy):]
				for dx := 0; dx < scale; dx++ {
					row[dx] = 1
				}
			}
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("factor: QR code: %w", err)
	}
	return buf.Bytes(), nil
}
