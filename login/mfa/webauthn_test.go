package mfa

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/storage"
)

var b64 = base64.RawURLEncoding

func TestNewWebAuthnConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     WebAuthnConfig
		rpID    string
		origins []string
		errHas  []string // empty: must succeed
	}{
		{name: "defaults from the issuer", cfg: WebAuthnConfig{Issuer: "https://login.example.com/"},
			rpID: "login.example.com", origins: []string{"https://login.example.com"}},
		{name: "issuer with port and path", cfg: WebAuthnConfig{Issuer: "http://LocalHost:8080/auth"},
			rpID: "localhost", origins: []string{"http://localhost:8080"}},
		{name: "parent domain", cfg: WebAuthnConfig{Issuer: "https://login.example.com", RPID: "Example.com"},
			rpID: "example.com", origins: []string{"https://login.example.com"}},
		{name: "parent domain with extra origins", cfg: WebAuthnConfig{Issuer: "https://login.example.com", RPID: "example.com",
			RPOrigins: []string{"https://login.example.com", "https://app.example.com:8443/"}},
			rpID: "example.com", origins: []string{"https://login.example.com", "https://app.example.com:8443"}},
		{name: "IPv4 issuer", cfg: WebAuthnConfig{Issuer: "http://127.0.0.1:8080"},
			errHas: []string{"IP address", "GATEHOUSE_WEBAUTHN_RP_ID", "localhost"}},
		{name: "IPv6 issuer", cfg: WebAuthnConfig{Issuer: "https://[::1]:8443"},
			errHas: []string{"IP address", "GATEHOUSE_WEBAUTHN_RP_ID"}},
		{name: "IP RP ID", cfg: WebAuthnConfig{Issuer: "http://localhost:8080", RPID: "127.0.0.1"},
			errHas: []string{"IP address", "GATEHOUSE_WEBAUTHN_RP_ID"}},
		{name: "unrelated domain", cfg: WebAuthnConfig{Issuer: "https://login.example.com", RPID: "other.com"},
			errHas: []string{"GATEHOUSE_WEBAUTHN_RP_ID", "other.com", "parent"}},
		{name: "suffix that is not a parent label", cfg: WebAuthnConfig{Issuer: "https://login.example.com", RPID: "ample.com"},
			errHas: []string{"GATEHOUSE_WEBAUTHN_RP_ID"}},
		{name: "subdomain of the issuer", cfg: WebAuthnConfig{Issuer: "https://example.com", RPID: "login.example.com"},
			errHas: []string{"GATEHOUSE_WEBAUTHN_RP_ID"}},
		{name: "public suffix", cfg: WebAuthnConfig{Issuer: "https://login.example.co.uk", RPID: "co.uk"},
			errHas: []string{"GATEHOUSE_WEBAUTHN_RP_ID", "public suffix"}},
		{name: "top-level domain", cfg: WebAuthnConfig{Issuer: "https://example.com", RPID: "com"},
			errHas: []string{"GATEHOUSE_WEBAUTHN_RP_ID", `"com"`}},
		{name: "single-label host other than localhost", cfg: WebAuthnConfig{Issuer: "http://gatehouse:8080"},
			errHas: []string{"GATEHOUSE_WEBAUTHN_RP_ID", `"gatehouse"`}},
		{name: "RP ID with a port", cfg: WebAuthnConfig{Issuer: "https://example.com", RPID: "example.com:443"},
			errHas: []string{"GATEHOUSE_WEBAUTHN_RP_ID"}},
		{name: "origin off the RP ID", cfg: WebAuthnConfig{Issuer: "https://login.example.com", RPOrigins: []string{"https://evil.com"}},
			errHas: []string{"https://evil.com"}},
		{name: "origin on a sibling", cfg: WebAuthnConfig{Issuer: "https://login.example.com", RPOrigins: []string{"https://app.example.com"}},
			errHas: []string{"app.example.com"}},
		{name: "origin with a path", cfg: WebAuthnConfig{Issuer: "https://login.example.com", RPOrigins: []string{"https://login.example.com/x"}},
			errHas: []string{"scheme://host"}},
		{name: "origin not http", cfg: WebAuthnConfig{Issuer: "https://login.example.com", RPOrigins: []string{"ftp://login.example.com"}},
			errHas: []string{"scheme://host"}},
		{name: "no issuer", cfg: WebAuthnConfig{}, errHas: []string{"issuer"}},
		{name: "issuer not a URL", cfg: WebAuthnConfig{Issuer: "login.example.com"}, errHas: []string{"issuer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWebAuthn(tc.cfg)
			if len(tc.errHas) > 0 {
				if err == nil {
					t.Fatalf("accepted (RP ID %s, origins %v)", w.RPID(), w.Origins())
				}
				for _, s := range tc.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if w.RPID() != tc.rpID || !slices.Equal(w.Origins(), tc.origins) {
				t.Errorf("RP ID %q, origins %v; want %q, %v", w.RPID(), w.Origins(), tc.rpID, tc.origins)
			}
		})
	}
}

// softKey is a software authenticator: one ES256 credential, created and
// used the way a browser and authenticator would, with knobs to misbehave.
type softKey struct {
	key     *ecdsa.PrivateKey
	id      []byte
	handle  []byte // the user handle stored at creation
	counter uint32
	be, bs  bool
}

// how a ceremony deviates from an honest one.
type tweak struct {
	origin     string // clientDataJSON origin; default the test origin
	rpID       string // hashed into authenticator data; default the options'
	typ        string // clientDataJSON type; default webauthn.create/get
	challenge  []byte // default the options'
	userHandle []byte // assertion userHandle; default the stored handle
	noUV       bool
	noUP       bool
	counter    *uint32 // force the reported counter
	corruptSig bool
}

const testOrigin = "https://login.example.com"

func newSoftKey(t *testing.T) *softKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return &softKey{key: k, id: id}
}

func (k *softKey) coseKey(t *testing.T) []byte {
	t.Helper()
	pub, err := k.key.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	raw := pub.Bytes() // 0x04 ‖ X ‖ Y
	b, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: raw[1:33], -3: raw[33:65]})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (k *softKey) flags(tw tweak, attested bool) byte {
	var f byte
	if !tw.noUP {
		f |= 0x01
	}
	if !tw.noUV {
		f |= 0x04
	}
	if k.be {
		f |= 0x08
	}
	if k.bs {
		f |= 0x10
	}
	if attested {
		f |= 0x40
	}
	return f
}

func clientData(t *testing.T, typ string, challenge []byte, origin string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"type": typ, "challenge": b64.EncodeToString(challenge), "origin": origin, "crossOrigin": false})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// create answers navigator.credentials.create(options).
func (k *softKey) create(t *testing.T, options []byte, tw tweak) []byte {
	t.Helper()
	var opts struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			RP        struct {
				ID string `json:"id"`
			} `json:"rp"`
			User struct {
				ID string `json:"id"`
			} `json:"user"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &opts); err != nil {
		t.Fatal(err)
	}
	challenge := mustB64(t, opts.PublicKey.Challenge)
	if tw.challenge != nil {
		challenge = tw.challenge
	}
	k.handle = mustB64(t, opts.PublicKey.User.ID)
	cdj := clientData(t, orDefault(tw.typ, "webauthn.create"), challenge, orDefault(tw.origin, testOrigin))

	rpHash := sha256.Sum256([]byte(orDefault(tw.rpID, opts.PublicKey.RP.ID)))
	ad := append([]byte{}, rpHash[:]...)
	ad = append(ad, k.flags(tw, true))
	ad = binary.BigEndian.AppendUint32(ad, k.counter)
	ad = append(ad, make([]byte, 16)...) // AAGUID: zero, as with attestation "none"
	ad = binary.BigEndian.AppendUint16(ad, uint16(len(k.id)))
	ad = append(ad, k.id...)
	ad = append(ad, k.coseKey(t)...)

	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": ad})
	if err != nil {
		t.Fatal(err)
	}
	return mustJSON(t, map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cdj),
			"attestationObject": b64.EncodeToString(att),
			"transports":        []string{"internal", "hybrid"},
		},
		"clientExtensionResults": map[string]any{},
	})
}

// get answers navigator.credentials.get(options), signing with the key.
func (k *softKey) get(t *testing.T, options []byte, tw tweak) []byte {
	t.Helper()
	var opts struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			RPID      string `json:"rpId"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &opts); err != nil {
		t.Fatal(err)
	}
	challenge := mustB64(t, opts.PublicKey.Challenge)
	if tw.challenge != nil {
		challenge = tw.challenge
	}
	cdj := clientData(t, orDefault(tw.typ, "webauthn.get"), challenge, orDefault(tw.origin, testOrigin))
	k.counter++
	counter := k.counter
	if tw.counter != nil {
		counter = *tw.counter
	}
	rpHash := sha256.Sum256([]byte(orDefault(tw.rpID, opts.PublicKey.RPID)))
	ad := append([]byte{}, rpHash[:]...)
	ad = append(ad, k.flags(tw, false))
	ad = binary.BigEndian.AppendUint32(ad, counter)

	cdh := sha256.Sum256(cdj)
	digest := sha256.Sum256(append(bytes.Clone(ad), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	if tw.corruptSig {
		ad[len(ad)-1] ^= 0xff // signed one counter, send another
	}
	handle := k.handle
	if tw.userHandle != nil {
		handle = tw.userHandle
	}
	return mustJSON(t, map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cdj),
			"authenticatorData": b64.EncodeToString(ad),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(handle),
		},
		"clientExtensionResults": map[string]any{},
	})
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := b64.DecodeString(s)
	if err != nil {
		t.Fatalf("base64url %q: %v", s, err)
	}
	return b
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixture is a WebAuthn with a settable clock and two users.
type fixture struct {
	w          *WebAuthn
	now        time.Time
	alice, bob User
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	w, err := NewWebAuthn(WebAuthnConfig{Issuer: testOrigin, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.w = w
	f.alice = User{Account: &storage.User{ID: "u-alice", Email: "alice@example.com", Name: "Alice"}, Handle: NewUserHandle()}
	f.bob = User{Account: &storage.User{ID: "u-bob", Email: "bob@example.com"}, Handle: NewUserHandle()}
	return f
}

// register runs an honest registration of k for *u and appends the
// credential to u.
func (f *fixture) register(t *testing.T, u *User, k *softKey) *storage.WebAuthnCredential {
	t.Helper()
	opts, state, err := f.w.BeginRegistration(*u)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := f.w.FinishRegistration(*u, state, k.create(t, opts, tweak{}))
	if err != nil {
		t.Fatalf("FinishRegistration: %v", err)
	}
	cred.Name = "test key"
	u.Credentials = append(u.Credentials, *cred)
	return cred
}

func (f *fixture) lookup(users ...User) func(rawID, handle []byte) (User, error) {
	return func(rawID, handle []byte) (User, error) {
		for _, u := range users {
			if bytes.Equal(u.Handle, handle) {
				return u, nil
			}
		}
		return User{}, fmt.Errorf("no such handle: %w", storage.ErrNotFound)
	}
}

func TestWebAuthnCeremonies(t *testing.T) {
	f := newFixture(t)
	k := newSoftKey(t)
	k.be, k.bs = true, true

	// Registration options.
	opts, state, err := f.w.BeginRegistration(f.alice)
	if err != nil {
		t.Fatal(err)
	}
	var creation struct {
		PublicKey struct {
			RP struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"rp"`
			User struct {
				ID          string `json:"id"`
				Name        string `json:"name"`
				DisplayName string `json:"displayName"`
			} `json:"user"`
			Challenge              string `json:"challenge"`
			Timeout                int    `json:"timeout"`
			Attestation            string `json:"attestation"`
			AuthenticatorSelection struct {
				ResidentKey        string `json:"residentKey"`
				RequireResidentKey bool   `json:"requireResidentKey"`
				UserVerification   string `json:"userVerification"`
			} `json:"authenticatorSelection"`
			ExcludeCredentials []struct {
				ID string `json:"id"`
			} `json:"excludeCredentials"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(opts, &creation); err != nil {
		t.Fatal(err)
	}
	pk := creation.PublicKey
	if pk.RP.ID != "login.example.com" || pk.RP.Name != "Gatehouse" {
		t.Errorf("rp = %+v", pk.RP)
	}
	if !bytes.Equal(mustB64(t, pk.User.ID), f.alice.Handle) || pk.User.Name != "alice@example.com" || pk.User.DisplayName != "Alice" {
		t.Errorf("user = %+v, want the handle, email and name", pk.User)
	}
	if len(mustB64(t, pk.Challenge)) < 16 {
		t.Errorf("challenge %q too short", pk.Challenge)
	}
	if pk.Timeout != int(DefaultCeremonyTimeout/time.Millisecond) {
		t.Errorf("timeout %d ms", pk.Timeout)
	}
	sel := pk.AuthenticatorSelection
	if pk.Attestation != "none" || sel.ResidentKey != "required" || !sel.RequireResidentKey || sel.UserVerification != "preferred" {
		t.Errorf("attestation %q, selection %+v", pk.Attestation, sel)
	}
	if len(pk.ExcludeCredentials) != 0 {
		t.Errorf("exclude %v for a user without passkeys", pk.ExcludeCredentials)
	}

	f.now = f.now.Add(DefaultCeremonyTimeout - time.Second) // still in time
	cred, err := f.w.FinishRegistration(f.alice, state, k.create(t, opts, tweak{}))
	if err != nil {
		t.Fatalf("FinishRegistration: %v", err)
	}
	if !bytes.Equal(cred.ID, k.id) || cred.UserID != "u-alice" || cred.AttestationType != "none" ||
		!cred.UserVerified || !cred.BackupEligible || !cred.BackupState || cred.SignCount != 0 ||
		!slices.Equal(cred.Transports, []string{"internal", "hybrid"}) || len(cred.AAGUID) != 16 ||
		!cred.CreatedAt.Equal(f.now) || len(cred.PublicKey) == 0 {
		t.Errorf("credential %+v", cred)
	}
	cred.Name = "test key"
	f.alice.Credentials = append(f.alice.Credentials, *cred)

	// A second registration excludes the first passkey.
	opts, _, err = f.w.BeginRegistration(f.alice)
	if err != nil {
		t.Fatal(err)
	}
	creation.PublicKey.ExcludeCredentials = nil
	if err := json.Unmarshal(opts, &creation); err != nil {
		t.Fatal(err)
	}
	if ex := creation.PublicKey.ExcludeCredentials; len(ex) != 1 || !bytes.Equal(mustB64(t, ex[0].ID), k.id) {
		t.Errorf("excludeCredentials = %v, want alice's passkey", ex)
	}

	// Passwordless sign-in.
	opts, state, err = f.w.BeginDiscoverableLogin()
	if err != nil {
		t.Fatal(err)
	}
	var request struct {
		PublicKey struct {
			RPID             string `json:"rpId"`
			UserVerification string `json:"userVerification"`
			AllowCredentials []struct {
				ID string `json:"id"`
			} `json:"allowCredentials"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(opts, &request); err != nil {
		t.Fatal(err)
	}
	if request.PublicKey.RPID != "login.example.com" || request.PublicKey.UserVerification != "required" || len(request.PublicKey.AllowCredentials) != 0 {
		t.Errorf("discoverable request options %+v", request.PublicKey)
	}
	f.now = f.now.Add(time.Minute)
	user, used, uv, err := f.w.FinishDiscoverableLogin(state, k.get(t, opts, tweak{}), f.lookup(f.bob, f.alice))
	if err != nil {
		t.Fatalf("FinishDiscoverableLogin: %v", err)
	}
	if user.Account.ID != "u-alice" || !uv || !bytes.Equal(used.ID, k.id) || used.SignCount != 1 || !used.BackupState || !used.LastUsedAt.Equal(f.now) || used.Name != "test key" {
		t.Errorf("signed in %s with %+v, uv %v", user.Account.ID, used, uv)
	}
	if got := authn.ACRFor(authn.AddFactor(nil, PasskeyAMR(used, uv)...)); got != authn.ACRPhishingResistant {
		t.Errorf("passwordless passkey acr %s", got)
	}
	f.alice.Credentials[0] = *used

	// Second factor, the authenticator now reports it is no longer synced
	// and skips user verification (allowed: preferred).
	opts, state, err = f.w.BeginLogin(f.alice)
	if err != nil {
		t.Fatal(err)
	}
	request.PublicKey.AllowCredentials = nil
	if err := json.Unmarshal(opts, &request); err != nil {
		t.Fatal(err)
	}
	if ac := request.PublicKey.AllowCredentials; len(ac) != 1 || !bytes.Equal(mustB64(t, ac[0].ID), k.id) || request.PublicKey.UserVerification != "preferred" {
		t.Errorf("second-factor request options %+v", request.PublicKey)
	}
	k.bs = false
	used, uv, err = f.w.FinishLogin(f.alice, state, k.get(t, opts, tweak{noUV: true}))
	if err != nil {
		t.Fatalf("FinishLogin: %v", err)
	}
	if uv || used.SignCount != 2 || used.BackupState || !used.UserVerified {
		t.Errorf("second factor: %+v uv %v (want count 2, BS false, UV-at-registration kept, uv false)", used, uv)
	}

	// The reported counter is passed on as is, even when it went
	// backwards: the store's atomic check refuses it.
	opts, state, err = f.w.BeginLogin(f.alice)
	if err != nil {
		t.Fatal(err)
	}
	zero := uint32(0)
	used, _, err = f.w.FinishLogin(f.alice, state, k.get(t, opts, tweak{counter: &zero}))
	if err != nil {
		t.Fatalf("FinishLogin with counter 0: %v", err)
	}
	if used.SignCount != 0 {
		t.Errorf("SignCount %d, want the reported 0", used.SignCount)
	}
}

// TestWebAuthnRefusals runs one dishonest or broken answer per case; each
// must be refused as an invalid response (never as an internal error).
func TestWebAuthnRefusals(t *testing.T) {
	f := newFixture(t)
	ka, kb := newSoftKey(t), newSoftKey(t)
	f.register(t, &f.alice, ka)
	f.register(t, &f.bob, kb)
	lookup := f.lookup(f.alice, f.bob)

	expectInvalid := func(t *testing.T, err error, target error) {
		t.Helper()
		if err == nil {
			t.Fatal("accepted")
		}
		t.Logf("refused: %v", err)
		if !errors.Is(err, ErrInvalidResponse) {
			t.Fatalf("error %v is not ErrInvalidResponse", err)
		}
		if target != nil && !errors.Is(err, target) {
			t.Fatalf("error %v is not %v", err, target)
		}
	}

	register := func(t *testing.T, u User, k *softKey, tw tweak) error {
		opts, state, err := f.w.BeginRegistration(u)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.w.FinishRegistration(u, state, k.create(t, opts, tw))
		return err
	}
	discoverable := func(t *testing.T, k *softKey, tw tweak) error {
		opts, state, err := f.w.BeginDiscoverableLogin()
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, err = f.w.FinishDiscoverableLogin(state, k.get(t, opts, tw), lookup)
		return err
	}
	second := func(t *testing.T, u User, k *softKey, tw tweak) error {
		opts, state, err := f.w.BeginLogin(u)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = f.w.FinishLogin(u, state, k.get(t, opts, tw))
		return err
	}

	t.Run("honest answers pass", func(t *testing.T) {
		// The baseline: without it every refusal below could be a broken
		// fixture.
		if err := register(t, f.alice, newSoftKey(t), tweak{}); err != nil {
			t.Fatal(err)
		}
		if err := discoverable(t, ka, tweak{}); err != nil {
			t.Fatal(err)
		}
		if err := second(t, f.bob, kb, tweak{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("registration from another origin", func(t *testing.T) {
		expectInvalid(t, register(t, f.alice, newSoftKey(t), tweak{origin: "https://login.example.com.evil.test"}), nil)
	})
	t.Run("registration for another RP ID", func(t *testing.T) {
		expectInvalid(t, register(t, f.alice, newSoftKey(t), tweak{rpID: "evil.test"}), nil)
	})
	t.Run("registration with a get type", func(t *testing.T) {
		expectInvalid(t, register(t, f.alice, newSoftKey(t), tweak{typ: "webauthn.get"}), nil)
	})
	t.Run("registration answering another challenge", func(t *testing.T) {
		expectInvalid(t, register(t, f.alice, newSoftKey(t), tweak{challenge: bytes.Repeat([]byte{7}, 32)}), nil)
	})
	t.Run("registration without user presence", func(t *testing.T) {
		expectInvalid(t, register(t, f.alice, newSoftKey(t), tweak{noUP: true}), nil)
	})
	t.Run("registration state of another user", func(t *testing.T) {
		opts, state, err := f.w.BeginRegistration(f.alice)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.w.FinishRegistration(f.bob, state, newSoftKey(t).create(t, opts, tweak{}))
		expectInvalid(t, err, nil)
	})
	t.Run("registration after the timeout", func(t *testing.T) {
		opts, state, err := f.w.BeginRegistration(f.alice)
		if err != nil {
			t.Fatal(err)
		}
		defer func(t0 time.Time) { f.now = t0 }(f.now)
		f.now = f.now.Add(DefaultCeremonyTimeout)
		_, err = f.w.FinishRegistration(f.alice, state, newSoftKey(t).create(t, opts, tweak{}))
		expectInvalid(t, err, ErrChallengeExpired)
	})

	t.Run("assertion from another origin", func(t *testing.T) {
		expectInvalid(t, discoverable(t, ka, tweak{origin: "https://evil.test"}), nil)
		expectInvalid(t, second(t, f.alice, ka, tweak{origin: "http://login.example.com"}), nil)
	})
	t.Run("assertion for another RP ID", func(t *testing.T) {
		expectInvalid(t, discoverable(t, ka, tweak{rpID: "example.com"}), nil)
		expectInvalid(t, second(t, f.alice, ka, tweak{rpID: "evil.test"}), nil)
	})
	t.Run("assertion with a create type", func(t *testing.T) {
		expectInvalid(t, second(t, f.alice, ka, tweak{typ: "webauthn.create"}), nil)
	})
	t.Run("assertion with a bad signature", func(t *testing.T) {
		expectInvalid(t, discoverable(t, ka, tweak{corruptSig: true}), nil)
	})
	t.Run("replayed assertion against a new challenge", func(t *testing.T) {
		opts, state, err := f.w.BeginLogin(f.alice)
		if err != nil {
			t.Fatal(err)
		}
		old := ka.get(t, opts, tweak{})
		if _, _, err := f.w.FinishLogin(f.alice, state, old); err != nil {
			t.Fatal(err)
		}
		_, state2, err := f.w.BeginLogin(f.alice)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = f.w.FinishLogin(f.alice, state2, old)
		expectInvalid(t, err, nil)
	})
	t.Run("assertion after the timeout", func(t *testing.T) {
		opts, state, err := f.w.BeginDiscoverableLogin()
		if err != nil {
			t.Fatal(err)
		}
		defer func(t0 time.Time) { f.now = t0 }(f.now)
		f.now = f.now.Add(DefaultCeremonyTimeout + time.Second)
		_, _, _, err = f.w.FinishDiscoverableLogin(state, ka.get(t, opts, tweak{}), lookup)
		expectInvalid(t, err, ErrChallengeExpired)
	})
	t.Run("state of another ceremony", func(t *testing.T) {
		opts, regState, err := f.w.BeginRegistration(f.alice)
		if err != nil {
			t.Fatal(err)
		}
		_ = opts
		lopts, _, err := f.w.BeginLogin(f.alice)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = f.w.FinishLogin(f.alice, regState, ka.get(t, lopts, tweak{}))
		expectInvalid(t, err, nil)
		dopts, dState, err := f.w.BeginDiscoverableLogin()
		if err != nil {
			t.Fatal(err)
		}
		_ = dopts
		_, _, err = f.w.FinishLogin(f.alice, dState, ka.get(t, lopts, tweak{}))
		expectInvalid(t, err, nil)
		_, _, err = f.w.FinishLogin(f.alice, []byte("not json"), ka.get(t, lopts, tweak{}))
		expectInvalid(t, err, nil)
	})
	t.Run("passwordless without user verification", func(t *testing.T) {
		expectInvalid(t, discoverable(t, ka, tweak{noUV: true}), nil)
	})
	t.Run("passwordless with another user's handle", func(t *testing.T) {
		// Alice's passkey claims to belong to Bob: Bob has no such
		// passkey.
		expectInvalid(t, discoverable(t, ka, tweak{userHandle: f.bob.Handle}), ErrUnknownCredential)
	})
	t.Run("passwordless with an unknown handle", func(t *testing.T) {
		expectInvalid(t, discoverable(t, ka, tweak{userHandle: NewUserHandle()}), ErrUnknownCredential)
	})
	t.Run("passwordless with a removed passkey", func(t *testing.T) {
		removed := f.alice
		removed.Credentials = nil
		opts, state, err := f.w.BeginDiscoverableLogin()
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, err = f.w.FinishDiscoverableLogin(state, ka.get(t, opts, tweak{}), f.lookup(removed))
		expectInvalid(t, err, ErrUnknownCredential)
	})
	t.Run("passwordless lookup that returns the wrong account", func(t *testing.T) {
		// A lookup bug (ignoring the handle) must not sign Bob in with
		// Alice's passkey, even if Bob somehow listed it.
		bobWithAlicesKey := f.bob
		bobWithAlicesKey.Credentials = append(slices.Clone(f.bob.Credentials), f.alice.Credentials...)
		opts, state, err := f.w.BeginDiscoverableLogin()
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, err = f.w.FinishDiscoverableLogin(state, ka.get(t, opts, tweak{}),
			func([]byte, []byte) (User, error) { return bobWithAlicesKey, nil })
		expectInvalid(t, err, nil)
	})
	t.Run("second factor with another user's passkey", func(t *testing.T) {
		// Bob's sign-in, Alice's passkey (with her own handle).
		expectInvalid(t, second(t, f.bob, ka, tweak{}), ErrUnknownCredential)
	})
	t.Run("second factor with another user's handle", func(t *testing.T) {
		expectInvalid(t, second(t, f.bob, kb, tweak{userHandle: f.alice.Handle}), nil)
	})
	t.Run("second factor state of another user", func(t *testing.T) {
		opts, state, err := f.w.BeginLogin(f.alice)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = f.w.FinishLogin(f.bob, state, kb.get(t, opts, tweak{}))
		expectInvalid(t, err, nil)
	})
	t.Run("oversized or malformed answers", func(t *testing.T) {
		opts, state, err := f.w.BeginLogin(f.alice)
		if err != nil {
			t.Fatal(err)
		}
		_ = opts
		_, _, err = f.w.FinishLogin(f.alice, state, make([]byte, MaxResponseSize+1))
		expectInvalid(t, err, nil)
		_, _, err = f.w.FinishLogin(f.alice, state, []byte(`{"id":"x"}`))
		expectInvalid(t, err, nil)
		_, err = f.w.FinishRegistration(f.alice, state, []byte(`nonsense`))
		expectInvalid(t, err, nil)
	})

	t.Run("a failing store is not the user's fault", func(t *testing.T) {
		opts, state, err := f.w.BeginDiscoverableLogin()
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, err = f.w.FinishDiscoverableLogin(state, ka.get(t, opts, tweak{}),
			func([]byte, []byte) (User, error) { return User{}, fmt.Errorf("db: %w", storage.ErrUnavailable) })
		if err == nil || errors.Is(err, ErrInvalidResponse) || !errors.Is(err, storage.ErrUnavailable) {
			t.Fatalf("error %v: want an internal error wrapping ErrUnavailable", err)
		}
	})
	t.Run("begin login without passkeys", func(t *testing.T) {
		if _, _, err := f.w.BeginLogin(User{Account: &storage.User{ID: "x"}, Handle: NewUserHandle()}); err == nil {
			t.Fatal("BeginLogin for a user without passkeys succeeded")
		}
	})
}

func TestNewUserHandle(t *testing.T) {
	a, b := NewUserHandle(), NewUserHandle()
	if len(a) != 32 || len(a) > storage.MaxWebAuthnUserHandle || bytes.Equal(a, b) {
		t.Errorf("handles %x %x", a, b)
	}
	u := User{Account: &storage.User{Email: "e@example.com"}, Handle: a}
	if u.WebAuthnDisplayName() != "e@example.com" || u.WebAuthnName() != "e@example.com" || !bytes.Equal(u.WebAuthnID(), a) {
		t.Error("User adapter without a name")
	}
}
