package mfa

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"strings"
	"time"
	"unicode"

	"github.com/boombuler/barcode/qr"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// The TOTP parameters. They are the ones every authenticator app accepts
// (Google Authenticator ignores anything else in the URI), so they are fixed
// rather than configurable.
const (
	totpPeriod     = 30 // seconds per time step
	totpDigits     = 6
	totpSecretSize = 20 // bytes: 160 bits, the HMAC-SHA1 block RFC 4226 recommends
	// totpSkew is how many steps either side of now are accepted: one step
	// covers clocks a little off and a code typed just as it changed.
	totpSkew = 1
	// maxQRSize bounds QRPNG so a caller's mistake cannot allocate a huge
	// image.
	maxQRSize = 2048
)

// TOTPKey is a freshly generated TOTP secret, shown once at enrolment.
type TOTPKey struct {
	// Secret is the shared secret in base32 (RFC 4648, upper case, no
	// padding): what a user types into an app that cannot scan, and what
	// VerifyTOTP takes. Seal it with a SecretBox before storing it.
	Secret string
	// URI is the otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=…
	// key URI (SHA1, 6 digits, 30 s) that the QR code carries.
	URI string

	key *otp.Key
}

// NewTOTPKey generates a 160-bit secret from crypto/rand for accountName
// (the user's email) at issuer (the product name the app lists the entry
// under). Neither may be empty or contain a colon, which separates them in
// the URI's label.
func NewTOTPKey(issuer, accountName string) (*TOTPKey, error) {
	if issuer == "" || accountName == "" {
		return nil, errors.New("totp: issuer and account name are required")
	}
	if strings.Contains(issuer, ":") || strings.Contains(accountName, ":") {
		return nil, errors.New("totp: issuer and account name must not contain a colon")
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: accountName,
		Period:      totpPeriod,
		SecretSize:  totpSecretSize,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
		Rand:        rand.Reader,
	})
	if err != nil {
		return nil, fmt.Errorf("totp: generate key: %w", err)
	}
	return &TOTPKey{Secret: key.Secret(), URI: key.URL(), key: key}, nil
}

// QRPNG renders the key URI as a size×size PNG QR code (error correction
// level M), server-side so the secret never reaches a third party. size must
// be between the code's module count (about 60 pixels for a typical URI)
// and 2048. k may be a key of NewTOTPKey or one rebuilt from its URI (the
// enrolment page keeps the URI between requests, not the parsed key).
func (k *TOTPKey) QRPNG(size int) ([]byte, error) {
	if size <= 0 || size > maxQRSize {
		return nil, fmt.Errorf("totp: QR size %d out of range 1..%d", size, maxQRSize)
	}
	key := k.key
	if key == nil {
		var err error
		if key, err = otp.NewKeyFromURL(k.URI); err != nil || key.Type() != "totp" {
			// Not the URI itself in the error: it holds the secret.
			return nil, fmt.Errorf("totp: the key URI is not an otpauth://totp/ URI (%v)", err)
		}
	}
	img, err := qrImage(key.URL(), size)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("totp: encode QR PNG: %w", err)
	}
	return buf.Bytes(), nil
}

// VerifyTOTP checks code against secret (base32, as in TOTPKey.Secret) at
// now, accepting the step of now and one step either side. code must be
// exactly 6 ASCII digits once white space is removed ("123 456" is fine).
// Every candidate step is computed and compared in constant time, so the
// time taken does not say which step, if any, matched.
//
// step is the matched time step (Unix seconds / 30); when several match (a
// one-in-a-million coincidence) it is the latest. The caller must record it
// with storage.UseTOTPStep, which refuses a step at or before the last one
// accepted: that is what makes each code single use. A malformed secret
// never verifies.
func VerifyTOTP(secret, code string, now time.Time) (step int64, ok bool) {
	code = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, code)
	if len(code) != totpDigits {
		return 0, false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return 0, false
		}
	}
	current := floorDiv(now.Unix(), totpPeriod)
	var matched int64
	found := 0
	for s := current - totpSkew; s <= current+totpSkew; s++ {
		if s < 0 {
			continue
		}
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0), totp.ValidateOpts{
			Period:    totpPeriod,
			Digits:    otp.DigitsSix,
			Algorithm: otp.AlgorithmSHA1,
		})
		if err != nil {
			return 0, false // the secret is not base32: it is the same for every step
		}
		eq := subtle.ConstantTimeCompare([]byte(want), []byte(code))
		// Branch-free select of the latest matching step.
		matched = int64(subtle.ConstantTimeSelect(eq, int(s), int(matched)))
		found |= eq
	}
	if found == 0 {
		return 0, false
	}
	return matched, true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// ErrSealed is returned by SecretBox.Open for a value that does not open:
// tampered with, sealed under another key, or sealed for another user.
var ErrSealed = errors.New("mfa: sealed secret does not open (wrong key, wrong user or tampered)")

// secretBoxVersion leads every sealed value, so a later key or algorithm
// can be told apart from this one.
const secretBoxVersion = 1

// secretBoxLabel is mixed into the additional data so a value sealed by
// this box never opens anywhere else the same key might be used.
const secretBoxLabel = "gatehouse mfa totp secret v1\x00"

// SecretBox encrypts second-factor secrets at rest with AES-256-GCM. The
// user ID is authenticated as additional data: a secret copied into another
// user's row does not open there, so a database writer cannot make one
// user's authenticator app valid for another account.
type SecretBox struct {
	aead cipher.AEAD
}

// NewSecretBox returns a box under key, which the caller derives from
// GATEHOUSE_SECRET (for this purpose only).
func NewSecretBox(key [32]byte) *SecretBox {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("mfa: secret box: " + err.Error()) // only for a key length other than 16, 24 or 32
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("mfa: secret box: " + err.Error()) // only for a nonce or tag size GCM does not support
	}
	return &SecretBox{aead: aead}
}

// Seal encrypts plain for userID. The result is version ‖ random nonce ‖
// ciphertext and tag; sealing the same value twice gives different bytes.
func (b *SecretBox) Seal(plain []byte, userID string) ([]byte, error) {
	if userID == "" {
		return nil, errors.New("mfa: seal: empty user ID")
	}
	out := make([]byte, 1+b.aead.NonceSize(), 1+b.aead.NonceSize()+len(plain)+b.aead.Overhead())
	out[0] = secretBoxVersion
	nonce := out[1:]
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (it aborts the program instead)
	return b.aead.Seal(out, nonce, plain, secretBoxAD(userID)), nil
}

// Open decrypts a value Seal returned for userID; ErrSealed when it does
// not open.
func (b *SecretBox) Open(sealed []byte, userID string) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < 1+n+b.aead.Overhead() || sealed[0] != secretBoxVersion {
		return nil, ErrSealed
	}
	plain, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], secretBoxAD(userID))
	if err != nil {
		return nil, ErrSealed
	}
	return plain, nil
}

func secretBoxAD(userID string) []byte {
	return []byte(secretBoxLabel + userID)
}

// quietZone is the white margin around a QR code, in modules: the QR
// specification asks for 4, and scanners (phones, zxing) fail to find the
// finder patterns without it.
const quietZone = 4

// qrImage draws uri as a size×size QR code with whole-pixel modules and the
// quiet zone, centred on white. (pquerna/otp's Key.Image scales the bare
// code to the size, with fractional modules and no margin, which some
// scanners cannot read.)
func qrImage(uri string, size int) (image.Image, error) {
	code, err := qr.Encode(uri, qr.M, qr.Auto)
	if err != nil {
		return nil, fmt.Errorf("totp: render QR code: %w", err)
	}
	n := code.Bounds().Dx()
	px := size / (n + 2*quietZone)
	if px < 1 {
		return nil, fmt.Errorf("totp: QR size %d too small for a %d-module code", size, n)
	}
	img := image.NewGray(image.Rect(0, 0, size, size))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	off := (size - n*px) / 2
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			if code.At(x, y) == color.Black {
				r := image.Rect(off+x*px, off+y*px, off+(x+1)*px, off+(y+1)*px)
				draw.Draw(img, r, image.Black, image.Point{}, draw.Src)
			}
		}
	}
	return img, nil
}
