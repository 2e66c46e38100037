package login

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/login/mfa"
	"github.com/gatehouse-id/gatehouse/storage"
)

// Attacks on the passkey ceremonies at the HTTP layer (issue 10): what
// package mfa cannot see — the sealed ceremony cookie, its single use, its
// binding to the session, the session a ceremony upgrades. The
// authenticator is a software one that can lie (another user's handle, a
// lower counter, another origin, no user verification).

// withPasskeys turns passkeys on for an issuer at http://localhost:PORT
// (an IP address cannot be an RP ID); requests still go to 127.0.0.1.
func withPasskeys(c *Config) {
	iss := strings.Replace(c.Issuer, "127.0.0.1", "localhost", 1)
	w, err := mfa.NewWebAuthn(mfa.WebAuthnConfig{Issuer: iss, Now: c.Now})
	if err != nil {
		panic(err)
	}
	c.WebAuthn = w
	copy(c.FactorKey[:], "fedcba9876543210fedcba9876543210")
}

// softPasskey is an authenticator holding one discoverable credential.
type softPasskey struct {
	key     *ecdsa.PrivateKey
	id      []byte
	handle  []byte
	counter uint32
	origin  string
}

// lie is how an answer deviates from an honest one.
type lie struct {
	origin  string
	rpID    string
	handle  []byte
	counter *uint32
	noUV    bool
}

func (e *env) newPasskey() *softPasskey {
	e.t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	return &softPasskey{key: k, id: id, origin: strings.Replace(e.srv.URL, "127.0.0.1", "localhost", 1)}
}

func (k *softPasskey) clientData(t *testing.T, typ string, challenge []byte, origin string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"type": typ, "challenge": b64.EncodeToString(challenge), "origin": origin, "crossOrigin": false})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// create answers navigator.credentials.create.
func (k *softPasskey) create(t *testing.T, options []byte) string {
	t.Helper()
	var o struct {
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
	if err := json.Unmarshal(options, &o); err != nil {
		t.Fatalf("creation options %s: %v", options, err)
	}
	challenge, _ := b64.DecodeString(o.PublicKey.Challenge)
	k.handle, _ = b64.DecodeString(o.PublicKey.User.ID)
	pub, err := k.key.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	raw := pub.Bytes()
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: raw[1:33], -3: raw[33:65]})
	if err != nil {
		t.Fatal(err)
	}
	rpHash := sha256.Sum256([]byte(o.PublicKey.RP.ID))
	ad := append([]byte{}, rpHash[:]...)
	ad = append(ad, 0x01|0x04|0x40) // UP, UV, attested credential data; not backup eligible
	ad = binary.BigEndian.AppendUint32(ad, k.counter)
	ad = append(ad, make([]byte, 16)...)
	ad = binary.BigEndian.AppendUint16(ad, uint16(len(k.id)))
	ad = append(ad, k.id...)
	ad = append(ad, cose...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": ad})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(k.clientData(t, "webauthn.create", challenge, k.origin)),
			"attestationObject": b64.EncodeToString(att),
		},
		"clientExtensionResults": map[string]any{},
	})
	return string(b)
}

// get answers navigator.credentials.get, signing with the key.
func (k *softPasskey) get(t *testing.T, options []byte, l lie) string {
	t.Helper()
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			RPID      string `json:"rpId"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil {
		t.Fatalf("request options %s: %v", options, err)
	}
	challenge, _ := b64.DecodeString(o.PublicKey.Challenge)
	cdj := k.clientData(t, "webauthn.get", challenge, or(l.origin, k.origin))
	k.counter++
	counter := k.counter
	if l.counter != nil {
		counter = *l.counter
	}
	rpHash := sha256.Sum256([]byte(or(l.rpID, o.PublicKey.RPID)))
	ad := append([]byte{}, rpHash[:]...)
	flags := byte(0x01 | 0x04)
	if l.noUV {
		flags = 0x01
	}
	ad = append(ad, flags)
	ad = binary.BigEndian.AppendUint32(ad, counter)
	cdh := sha256.Sum256(cdj)
	digest := sha256.Sum256(append(bytes.Clone(ad), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	handle := k.handle
	if l.handle != nil {
		handle = l.handle
	}
	b, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cdj),
			"authenticatorData": b64.EncodeToString(ad),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(handle),
		},
		"clientExtensionResults": map[string]any{},
	})
	return string(b)
}

// csrfOf returns the form token of browser c (from a public page).
func (e *env) csrfOf(c *http.Client) string {
	e.t.Helper()
	return field(e.t, csrfRe, e.get(c, "/forgot").Body)
}

// begin posts form to a ceremony's begin URL and returns the options.
func (e *env) begin(c *http.Client, path string, form url.Values) []byte {
	e.t.Helper()
	res := e.post(c, path, form)
	if res.Status != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		e.t.Fatalf("POST %s: %d %s\n%s", path, res.Status, res.Header.Get("Content-Type"), res.Body)
	}
	return []byte(res.Body)
}

// accountBrowser signs user in on the plain sign-in page (the password).
func (e *env) accountBrowser(email, pw string) *http.Client {
	e.t.Helper()
	c := e.newBrowser()
	res := e.post(c, "/login", url.Values{"email": {email}, "password": {pw}, "return": {"/account"}, "csrf": {e.csrfOf(c)}})
	if res.Status != http.StatusSeeOther || res.Location() != "/account" {
		e.t.Fatalf("password sign-in of %s: %d %q\n%s", email, res.Status, res.Location(), res.Body)
	}
	return c
}

// register adds k to the account signed in in c and returns the answer.
func (e *env) register(c *http.Client, k *softPasskey, name string) response {
	e.t.Helper()
	csrf := e.csrfOf(c)
	opts := e.begin(c, "/account/passkeys/begin", url.Values{"csrf": {csrf}})
	return e.post(c, "/account/passkeys", url.Values{"csrf": {csrf}, "name": {name}, "response": {k.create(e.t, opts)}})
}

// passwordStep starts an auth request of "app" in a new browser and
// enters the password; it expects the second-factor page to be next.
func (e *env) passwordStep(email, pw string) (*http.Client, string) {
	e.t.Helper()
	c := e.newBrowser()
	id := e.authRequest("app")
	res := e.signIn(c, id, email, pw)
	if res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Location(), "/login/factor?") {
		e.t.Fatalf("password of %s: %d %q, want the second step", email, res.Status, res.Location())
	}
	return c, id
}

// secondStep runs a passkey second step in c for auth request id,
// answering with answer(options).
func (e *env) secondStep(c *http.Client, id string, answer func(opts []byte) string) response {
	e.t.Helper()
	csrf := e.csrfOf(c)
	opts := e.begin(c, "/login/factor/passkey/begin", url.Values{"csrf": {csrf}, "authRequestID": {id}})
	return e.post(c, "/login/factor/passkey", url.Values{"csrf": {csrf}, "authRequestID": {id}, "response": {answer(opts)}})
}

func (e *env) expectNotCompleted(what, id string) {
	e.t.Helper()
	if ar := e.getAuthRequest(id); ar.Done {
		e.t.Fatalf("%s: the auth request was completed: %+v", what, ar)
	}
}

func expectPasskeyRefused(t *testing.T, what string, res response, status int, msg string) {
	t.Helper()
	if res.Status != status || !strings.Contains(res.Body, msg) {
		t.Fatalf("%s: want %d saying %q, got %d %q\n%s", what, status, msg, res.Status, res.Location(), res.Body)
	}
}

func TestPasskeyAttacks(t *testing.T) {
	e := newEnv(t, withPasskeys)
	bob := e.createUser("bob@example.com", "Bobs-Passw0rd-1")

	// Alice and Bob each add a passkey on the account page.
	ka, kb := e.newPasskey(), e.newPasskey()
	for _, u := range []struct {
		email, pw string
		k         *softPasskey
	}{{e.alice.Email, alicePassword, ka}, {bob.Email, "Bobs-Passw0rd-1", kb}} {
		c := e.accountBrowser(u.email, u.pw)
		if res := e.register(c, u.k, "Key of "+u.email); res.Status != http.StatusSeeOther || res.Location() != "/account/recovery-codes" {
			t.Fatalf("registering a passkey for %s: %d %q\n%s", u.email, res.Status, res.Location(), res.Body)
		}
	}

	t.Run("another user's passkey is not Bob's second step", func(t *testing.T) {
		c, id := e.passwordStep(bob.Email, "Bobs-Passw0rd-1")
		res := e.secondStep(c, id, func(o []byte) string { return ka.get(t, o, lie{}) })
		expectPasskeyRefused(t, "Alice's passkey", res, http.StatusBadRequest, msgPasskeyFailed)
		res = e.secondStep(c, id, func(o []byte) string { return ka.get(t, o, lie{handle: kb.handle}) })
		expectPasskeyRefused(t, "Alice's passkey with Bob's user handle", res, http.StatusBadRequest, msgPasskeyFailed)
		res = e.secondStep(c, id, func(o []byte) string { return kb.get(t, o, lie{handle: ka.handle}) })
		expectPasskeyRefused(t, "Bob's passkey with Alice's user handle", res, http.StatusBadRequest, msgPasskeyFailed)
		e.expectNotCompleted("refused passkeys", id)
		// Bob's own passkey, with user verification, completes it.
		ar := e.expectCompleted(e.secondStep(c, id, func(o []byte) string { return kb.get(t, o, lie{}) }), id, bob)
		if got := authn.ACRFor(ar.AMR); got != authn.ACRPhishingResistant || !slices.Contains(ar.AMR, authn.AMRPassword) {
			t.Errorf("after the password and Bob's passkey: amr %v acr %s", ar.AMR, got)
		}
	})

	t.Run("a passkey of A does not sign in B, whatever handle it sends", func(t *testing.T) {
		c := e.newBrowser()
		id := e.authRequest("app")
		csrf := e.csrfOf(c)
		opts := e.begin(c, "/login/passkey/begin", url.Values{"csrf": {csrf}, "authRequestID": {id}})
		res := e.post(c, "/login/passkey", url.Values{"csrf": {csrf}, "authRequestID": {id}, "response": {ka.get(t, opts, lie{handle: kb.handle})}})
		expectPasskeyRefused(t, "Alice's passkey naming Bob", res, http.StatusBadRequest, msgPasskeyFailed)
		e.expectNotCompleted("Alice's passkey naming Bob", id)
		if res := e.get(c, "/account"); res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Location(), "/login") {
			t.Fatalf("a session was started: /account gives %d %q", res.Status, res.Location())
		}
	})

	t.Run("a ceremony is used once", func(t *testing.T) {
		c := e.newBrowser()
		id := e.authRequest("app")
		csrf := e.csrfOf(c)
		opts := e.begin(c, "/login/passkey/begin", url.Values{"csrf": {csrf}, "authRequestID": {id}})
		cer := cookieOf(t, c, e.srv.URL, ceremonyCookie)
		answer := ka.get(t, opts, lie{})
		e.expectCompleted(e.post(c, "/login/passkey", url.Values{"csrf": {csrf}, "authRequestID": {id}, "response": {answer}}), id, e.alice)

		// The same cookie and answer, replayed from another browser for
		// another request: refused by the store's mark, not the cookie.
		c2 := e.newBrowser()
		id2 := e.authRequest("app")
		csrf2 := e.csrfOf(c2)
		setCookie(t, c2, e.srv.URL, ceremonyCookie, cer)
		res := e.post(c2, "/login/passkey", url.Values{"csrf": {csrf2}, "authRequestID": {id2}, "response": {answer}})
		expectPasskeyRefused(t, "a replayed ceremony", res, http.StatusBadRequest, "This passkey request has expired")
		e.expectNotCompleted("a replayed ceremony", id2)
	})

	t.Run("a ceremony of one session does not finish another", func(t *testing.T) {
		// Bob's password in two browsers; the ceremony begun in the first
		// is carried to the second, with a good answer to it.
		c1, id1 := e.passwordStep(bob.Email, "Bobs-Passw0rd-1")
		opts := e.begin(c1, "/login/factor/passkey/begin", url.Values{"csrf": {e.csrfOf(c1)}, "authRequestID": {id1}})
		c2, id2 := e.passwordStep(bob.Email, "Bobs-Passw0rd-1")
		setCookie(t, c2, e.srv.URL, ceremonyCookie, cookieOf(t, c1, e.srv.URL, ceremonyCookie))
		res := e.post(c2, "/login/factor/passkey", url.Values{"csrf": {e.csrfOf(c2)}, "authRequestID": {id2}, "response": {kb.get(t, opts, lie{})}})
		expectPasskeyRefused(t, "another session's ceremony", res, http.StatusBadRequest, "This passkey request has expired")
		e.expectNotCompleted("another session's ceremony", id2)

		// A re-authentication ceremony is not a second step either.
		opts = e.begin(c2, "/account/reauth/passkey/begin", url.Values{"csrf": {e.csrfOf(c2)}})
		res = e.post(c2, "/login/factor/passkey", url.Values{"csrf": {e.csrfOf(c2)}, "authRequestID": {id2}, "response": {kb.get(t, opts, lie{})}})
		expectPasskeyRefused(t, "a re-authentication ceremony as the second step", res, http.StatusBadRequest, "This passkey request has expired")
		e.expectNotCompleted("a re-authentication ceremony", id2)
	})

	t.Run("lies of the authenticator", func(t *testing.T) {
		lower := uint32(1)
		for _, tc := range []struct {
			name   string
			l      lie
			status int
			msg    string
		}{
			{"another origin", lie{origin: "http://evil.localhost"}, http.StatusBadRequest, msgPasskeyFailed},
			{"another RP ID", lie{rpID: "evil.example"}, http.StatusBadRequest, msgPasskeyFailed},
			{"no user verification", lie{noUV: true}, http.StatusBadRequest, msgPasskeyFailed},
			{"a counter gone backwards", lie{counter: &lower}, http.StatusForbidden, msgPasskeyClone},
		} {
			c := e.newBrowser()
			id := e.authRequest("app")
			csrf := e.csrfOf(c)
			opts := e.begin(c, "/login/passkey/begin", url.Values{"csrf": {csrf}, "authRequestID": {id}})
			res := e.post(c, "/login/passkey", url.Values{"csrf": {csrf}, "authRequestID": {id}, "response": {ka.get(t, opts, tc.l)}})
			expectPasskeyRefused(t, tc.name, res, tc.status, tc.msg)
			e.expectNotCompleted(tc.name, id)
		}
	})

	t.Run("registration", func(t *testing.T) {
		c := e.accountBrowser(bob.Email, "Bobs-Passw0rd-1")
		// The session has the password only and Bob has a passkey: the
		// account forms send it to the second step first.
		if res := e.register(c, e.newPasskey(), "x"); res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Location(), "/login/factor") {
			t.Fatalf("adding a passkey with the password only: %d %q", res.Status, res.Location())
		}
		if res := e.secondStep(c, "", func(o []byte) string { return kb.get(t, o, lie{}) }); res.Status != http.StatusSeeOther {
			t.Fatalf("Bob's second step: %d\n%s", res.Status, res.Body)
		}
		// Alice's credential on Bob's account: refused, and still Alice's.
		stolen := &softPasskey{key: ka.key, id: ka.id, origin: ka.origin}
		expectPasskeyRefused(t, "Alice's credential ID on Bob's account", e.register(c, stolen, "mine now"), http.StatusConflict, "already registered")
		if cred, err := e.store.GetWebAuthnCredential(e.ctx, ka.id); err != nil || cred.UserID != e.alice.ID {
			t.Fatalf("Alice's credential after the attempt: %+v %v", cred, err)
		}
		// Removing Alice's passkey by its ID from Bob's account: nothing.
		if res := e.post(c, "/account/passkeys/remove", url.Values{"csrf": {e.csrfOf(c)}, "id": {b64.EncodeToString(ka.id)}}); res.Status != http.StatusSeeOther || res.Location() != "/account" {
			t.Errorf("removing Alice's passkey from Bob's account: %d %q", res.Status, res.Location())
		}
		if _, err := e.store.GetWebAuthnCredential(e.ctx, ka.id); err != nil {
			t.Fatalf("Alice's passkey after Bob removed it by ID: %v", err)
		}
		// A name with markup is text on the account page and in the mail.
		name := `<img src=x onerror=alert(1)>`
		if res := e.register(c, e.newPasskey(), name); res.Status != http.StatusSeeOther {
			t.Fatalf("adding a second passkey: %d\n%s", res.Status, res.Body)
		}
		if body := e.get(c, "/account").Body; strings.Contains(body, name) || !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
			t.Errorf("the passkey name is not escaped on the account page")
		}
		for i := 0; ; i++ {
			m := e.waitMail(bob.Email)
			if !strings.Contains(m.Text, "onerror") {
				if i == 5 {
					t.Fatalf("no mail about the passkey %s", name)
				}
				continue
			}
			if strings.Contains(m.HTML, name) || !strings.Contains(m.Text, name) {
				t.Errorf("the passkey name in the mail: html %q", m.HTML)
			}
			break
		}
		// Six minutes on, adding one needs the password again: the begin
		// request says where to go, and a ceremony begun in time is not
		// finished late.
		csrf := e.csrfOf(c)
		k := e.newPasskey()
		opts := e.begin(c, "/account/passkeys/begin", url.Values{"csrf": {csrf}})
		e.clock.Advance(6 * time.Minute)
		res := e.post(c, "/account/passkeys/begin", url.Values{"csrf": {csrf}})
		if res.Status != http.StatusForbidden || !strings.Contains(res.Body, `"redirect":"/account/reauth?`) {
			t.Errorf("begin 6 minutes after sign-in: %d %s", res.Status, res.Body)
		}
		res = e.post(c, "/account/passkeys", url.Values{"csrf": {csrf}, "name": {"late"}, "response": {k.create(t, opts)}})
		if res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Location(), "/account/reauth?") {
			t.Errorf("finishing 6 minutes after sign-in: %d %q", res.Status, res.Location())
		}
		if _, err := e.store.GetWebAuthnCredential(e.ctx, k.id); err == nil {
			t.Errorf("a passkey was added without a recent authentication")
		}
	})
}

// TestPasskeyRegistrationIsNotPhishingResistant: a session that signed in
// with a password and added a passkey has proved possession of it, not
// user verification with it: two factors, not a phishing-resistant sign-in.
func TestPasskeyRegistrationIsNotPhishingResistant(t *testing.T) {
	e := newEnv(t, withPasskeys)
	c := e.accountBrowser(e.alice.Email, alicePassword)
	if res := e.register(c, e.newPasskey(), "k"); res.Status != http.StatusSeeOther {
		t.Fatalf("register: %d\n%s", res.Status, res.Body)
	}
	id := e.authRequest("app", func(ar *storage.AuthRequest) { ar.ACRValues = []string{authn.ACRMFA} })
	res := e.get(c, "/login?authRequestID="+url.QueryEscape(id))
	ar := e.expectCompleted(res, id, e.alice)
	if got := authn.ACRFor(ar.AMR); got != authn.ACRMFA || slices.Contains(ar.AMR, authn.AMRUser) {
		t.Errorf("after the password and a registration: amr %v acr %s, want mfa without user", ar.AMR, got)
	}
	id = e.authRequest("app", func(ar *storage.AuthRequest) { ar.ACRValues = []string{authn.ACRPhishingResistant} })
	if res := e.get(c, "/login?authRequestID="+url.QueryEscape(id)); res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Location(), "/login/factor?") {
		t.Errorf("phishing-resistant asked after a registration: %d %q, want the passkey step", res.Status, res.Location())
	}
}

// TestPasskeyCeremonyCookieSize: the ceremony cookie of a user with many
// passkeys stays within what browsers keep (4096 bytes): a larger one is
// dropped silently and the passkey step fails as "expired" every time.
func TestPasskeyCeremonyCookieSize(t *testing.T) {
	e := newEnv(t, withPasskeys)
	c := e.accountBrowser(e.alice.Email, alicePassword)
	k := e.newPasskey()
	if res := e.register(c, k, "real"); res.Status != http.StatusSeeOther {
		t.Fatalf("register: %d\n%s", res.Status, res.Body)
	}
	// 20 more with long IDs (WebAuthn allows up to 1023 bytes).
	for i := range 20 {
		id := make([]byte, 200)
		_, _ = rand.Read(id)
		if err := e.store.CreateWebAuthnCredential(e.ctx, &storage.WebAuthnCredential{ID: id, UserID: e.alice.ID, PublicKey: []byte{0xa0},
			Name: "k" + string(rune('a'+i)), CreatedAt: e.clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	c2, id := e.passwordStep(e.alice.Email, alicePassword)
	csrf := e.csrfOf(c2)
	res := e.post(c2, "/login/factor/passkey/begin", url.Values{"csrf": {csrf}, "authRequestID": {id}})
	for _, sc := range res.Header.Values("Set-Cookie") {
		if len(sc) > 4096 {
			name, _, _ := strings.Cut(sc, "=")
			t.Fatalf("the passkey step sets %s of %d bytes, more than a browser keeps", name, len(sc))
		}
	}
	res = e.post(c2, "/login/factor/passkey", url.Values{"csrf": {csrf}, "authRequestID": {id}, "response": {k.get(t, []byte(res.Body), lie{})}})
	e.expectCompleted(res, id, e.alice)
}

func cookieOf(t *testing.T, c *http.Client, base, name string) string {
	t.Helper()
	u, _ := url.Parse(base)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	t.Fatalf("no cookie %s", name)
	return ""
}

func setCookie(t *testing.T, c *http.Client, base, name, value string) {
	t.Helper()
	u, _ := url.Parse(base)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}
