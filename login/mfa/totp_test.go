package mfa

import (
	"bytes"
	"encoding/base32"
	"errors"
	"image"
	"image/png"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// rfcSecret is the SHA1 seed of RFC 6238 appendix B, "12345678901234567890",
// in base32.
var rfcSecret = base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))

// RFC 6238 appendix B, SHA1 rows; the 6-digit code is the last six digits
// of the 8-digit one (both are the same truncated value mod 10^n).
var rfcVectors = []struct {
	unix int64
	code string
	step int64
}{
	{59, "287082", 1},
	{1111111109, "081804", 37037036},
	{1111111111, "050471", 37037037},
	{1234567890, "005924", 41152263},
	{2000000000, "279037", 66666666},
	{20000000000, "353130", 666666666},
}

func TestVerifyTOTPRFC6238Vectors(t *testing.T) {
	for _, v := range rfcVectors {
		step, ok := VerifyTOTP(rfcSecret, v.code, time.Unix(v.unix, 0))
		if !ok || step != v.step {
			t.Errorf("VerifyTOTP(%s at %d) = %d, %v; want %d, true", v.code, v.unix, step, ok, v.step)
		}
	}
}

func TestVerifyTOTPWindow(t *testing.T) {
	// The code of step 37037037 (t = 1111111111 → 1111111110..1111111139).
	const code = "050471"
	const step = 37037037
	stepStart := time.Unix(step*30, 0)
	for _, tc := range []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"first second of its step", stepStart, true},
		{"last second of its step", stepStart.Add(29 * time.Second), true},
		{"one step later", stepStart.Add(30 * time.Second), true},
		{"end of one step later", stepStart.Add(59 * time.Second), true},
		{"one step earlier", stepStart.Add(-30 * time.Second), true},
		{"start of one step earlier", stepStart.Add(-1 * time.Second), true},
		{"two steps later", stepStart.Add(60 * time.Second), false},
		{"two steps earlier", stepStart.Add(-31 * time.Second), false},
		{"an hour later", stepStart.Add(time.Hour), false},
	} {
		got, ok := VerifyTOTP(rfcSecret, code, tc.at)
		if ok != tc.ok {
			t.Errorf("%s: ok = %v, want %v", tc.name, ok, tc.ok)
		}
		if ok && got != step {
			t.Errorf("%s: step = %d, want %d (the code's step, not now's)", tc.name, got, step)
		}
		if !ok && got != 0 {
			t.Errorf("%s: refused code returned step %d", tc.name, got)
		}
	}
}

func TestVerifyTOTPReturnsMatchedStep(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	current := now.Unix() / 30
	for _, delta := range []int64{-1, 0, 1} {
		code, err := totp.GenerateCodeCustom(rfcSecret, time.Unix((current+delta)*30, 0), totp.ValidateOpts{Digits: otp.DigitsSix})
		if err != nil {
			t.Fatal(err)
		}
		step, ok := VerifyTOTP(rfcSecret, code, now)
		if !ok || step != current+delta {
			t.Errorf("code of step now%+d: got %d, %v; want %d", delta, step, ok, current+delta)
		}
	}
}

func TestVerifyTOTPRefusesMalformed(t *testing.T) {
	at := time.Unix(59, 0) // the code is 287082 (8 digits: 94287082)
	for _, code := range []string{
		"", "28708", "2870822", "94287082", "28708a", "-87082", "+87082",
		"２８７０８２", // full-width digits
		"287-082", "0x1234",
	} {
		if step, ok := VerifyTOTP(rfcSecret, code, at); ok || step != 0 {
			t.Errorf("VerifyTOTP(%q) = %d, %v; want refused", code, step, ok)
		}
	}
	for _, code := range []string{"287082", " 287 082 ", "287\t082", "287\u00a0082"} {
		if _, ok := VerifyTOTP(rfcSecret, code, at); !ok {
			t.Errorf("VerifyTOTP(%q) refused; spaces should be ignored", code)
		}
	}
	if _, ok := VerifyTOTP("not base32!", "287082", at); ok {
		t.Error("a malformed secret verified")
	}
	if _, ok := VerifyTOTP(rfcSecret, "287083", at); ok {
		t.Error("a wrong code verified")
	}
}

func TestNewTOTPKey(t *testing.T) {
	k, err := NewTOTPKey("Gatehouse", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Secret) != 32 || strings.Contains(k.Secret, "=") {
		t.Errorf("secret %q: want 32 base32 characters (160 bits), no padding", k.Secret)
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(k.Secret)
	if err != nil || len(raw) != 20 {
		t.Errorf("secret decodes to %d bytes (%v), want 20", len(raw), err)
	}
	u, err := url.Parse(k.URI)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Gatehouse:alice@example.com" {
		t.Errorf("URI %q: want otpauth://totp/Gatehouse:alice@example.com", k.URI)
	}
	for param, want := range map[string]string{
		"secret": k.Secret, "issuer": "Gatehouse", "algorithm": "SHA1", "digits": "6", "period": "30",
	} {
		if got := q.Get(param); got != want {
			t.Errorf("URI %s = %q, want %q", param, got, want)
		}
	}
	// The key works: a code the app would show now verifies.
	now := time.Now()
	code, err := totp.GenerateCode(k.Secret, now)
	if err != nil {
		t.Fatal(err)
	}
	if step, ok := VerifyTOTP(k.Secret, code, now); !ok || step != now.Unix()/30 {
		t.Errorf("own code: %d, %v", step, ok)
	}

	k2, err := NewTOTPKey("Gatehouse", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if k2.Secret == k.Secret {
		t.Error("two keys share a secret")
	}

	for _, bad := range [][2]string{{"", "a@b"}, {"G", ""}, {"Gate:house", "a@b"}, {"G", "a:b"}} {
		if _, err := NewTOTPKey(bad[0], bad[1]); err == nil {
			t.Errorf("NewTOTPKey(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func TestTOTPQRPNG(t *testing.T) {
	k, err := NewTOTPKey("Gatehouse", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	const size = 240
	b, err := k.QRPNG(size)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatal("not a PNG signature")
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds(); got != image.Rect(0, 0, size, size) {
		t.Fatalf("bounds %v, want %dx%d", got, size, size)
	}
	// Scan it back, as a phone would.
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	// PURE_BARCODE: the image is a rendered code, not a photo, so the
	// reader need not hunt for it (its detector misjudges the module count
	// of a few generated codes, a known weakness on perfect images).
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		t.Fatalf("QR code does not scan: %v", err)
	}
	if res.GetText() != k.URI {
		t.Errorf("QR code says %q, want %q", res.GetText(), k.URI)
	}
	// The enrolment page rebuilds the key from its secret and URI (kept
	// in a sealed cookie) to draw the code: the same picture.
	again, err := (&TOTPKey{Secret: k.Secret, URI: k.URI}).QRPNG(size)
	if err != nil || !bytes.Equal(again, b) {
		t.Errorf("QRPNG of a key rebuilt from its URI = %d bytes, %v; want the same PNG", len(again), err)
	}
	if _, err := (&TOTPKey{URI: "https://example.com/"}).QRPNG(size); err == nil {
		t.Error("QRPNG of a key with a URI that is not otpauth:// succeeded")
	}

	for _, bad := range []int{0, -1, 10, 4096} {
		if _, err := k.QRPNG(bad); err == nil {
			t.Errorf("QRPNG(%d) accepted", bad)
		}
	}

	// A key rebuilt from its fields (what the enrolment page keeps between
	// requests) renders the same image.
	rebuilt, err := (&TOTPKey{Secret: k.Secret, URI: k.URI}).QRPNG(size)
	if err != nil {
		t.Fatalf("QRPNG of a key rebuilt from Secret and URI: %v", err)
	}
	if !bytes.Equal(rebuilt, b) {
		t.Error("a key rebuilt from Secret and URI renders another QR code")
	}
}

func TestSecretBox(t *testing.T) {
	var key, other [32]byte
	key[0], other[0] = 1, 2
	box := NewSecretBox(key)
	secret := []byte("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")

	sealed, err := box.Seal(secret, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("sealed value contains the secret")
	}
	got, err := box.Open(sealed, "alice")
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	again, err := box.Seal(secret, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again, sealed) {
		t.Error("sealing twice gave the same bytes (nonce reused)")
	}

	// Copied to another user's row, it does not open.
	if _, err := box.Open(sealed, "bob"); !errors.Is(err, ErrSealed) {
		t.Errorf("Open as bob: %v, want ErrSealed", err)
	}
	if _, err := box.Open(sealed, "alic"); !errors.Is(err, ErrSealed) {
		t.Errorf("Open as a prefix of the user ID: %v, want ErrSealed", err)
	}
	if _, err := NewSecretBox(other).Open(sealed, "alice"); !errors.Is(err, ErrSealed) {
		t.Errorf("Open under another key: %v, want ErrSealed", err)
	}
	for i := range sealed {
		tampered := bytes.Clone(sealed)
		tampered[i] ^= 0x01
		if _, err := box.Open(tampered, "alice"); !errors.Is(err, ErrSealed) {
			t.Fatalf("byte %d flipped: %v, want ErrSealed", i, err)
		}
	}
	for _, short := range [][]byte{nil, sealed[:1], sealed[:len(sealed)-1]} {
		if _, err := box.Open(short, "alice"); !errors.Is(err, ErrSealed) {
			t.Errorf("truncated to %d bytes: %v, want ErrSealed", len(short), err)
		}
	}
	if _, err := box.Seal(secret, ""); err == nil {
		t.Error("Seal with an empty user ID accepted")
	}
}
