package mfa

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"golang.org/x/net/publicsuffix"

	"github.com/gatehouse-id/gatehouse/storage"
)

// DefaultCeremonyTimeout is how long a WebAuthn ceremony may take when
// WebAuthnConfig.Timeout is zero: the timeout the browser is given and the
// expiry of the challenge.
const DefaultCeremonyTimeout = 5 * time.Minute

// MaxResponseSize is the largest browser answer (the JSON the page posts)
// the Finish methods accept. Callers read the request body through
// http.MaxBytesReader with this limit. Attestation certificate chains make
// registrations a few kilobytes; assertions are far smaller.
const MaxResponseSize = 64 << 10

// userHandleSize is the length of a new user handle: random, so it says
// nothing about the user, and well under WebAuthn's 64-byte limit.
const userHandleSize = 32

// Errors of the Finish methods. Everything wrapping ErrInvalidResponse is
// about what the browser or authenticator sent (or the ceremony state it
// came back with) and deserves a clear message to the user ("That passkey
// did not work, try again"), not a 500; any other error is internal.
var (
	// ErrInvalidResponse: the answer does not verify: wrong origin or RP ID,
	// wrong or reused challenge, bad signature, user verification missing
	// where required, malformed, or a ceremony state for another ceremony.
	ErrInvalidResponse = errors.New("mfa: invalid WebAuthn response")
	// ErrChallengeExpired: the ceremony took longer than its timeout.
	ErrChallengeExpired = fmt.Errorf("%w: the challenge expired", ErrInvalidResponse)
	// ErrUnknownCredential: the passkey used is not registered (removed
	// since, or another user's). The browser may be told with
	// PublicKeyCredential.signalUnknownCredential.
	ErrUnknownCredential = fmt.Errorf("%w: unknown passkey", ErrInvalidResponse)
)

// WebAuthnConfig configures passkeys.
type WebAuthnConfig struct {
	// Issuer is Gatehouse's issuer URL (GATEHOUSE_ISSUER). The RP ID and
	// origin default to its host and origin.
	Issuer string
	// RPID is the WebAuthn relying party ID (GATEHOUSE_WEBAUTHN_RP_ID),
	// the domain passkeys are bound to. Empty means the issuer's host.
	// It may be a parent domain of the issuer's host (example.com for
	// https://login.example.com), so the same passkeys also work on the
	// parent's other subdomains; it can never be an IP address nor a
	// public suffix (com, co.uk), and it cannot change later without
	// orphaning every registered passkey.
	RPID string
	// RPDisplayName is the name some authenticators show; default
	// "Gatehouse".
	RPDisplayName string
	// RPOrigins are the origins (scheme://host[:port]) pages may run
	// ceremonies from; default the issuer's origin. Each host must be the
	// RP ID or a subdomain of it.
	RPOrigins []string
	// Timeout is how long a ceremony may take, from Begin to Finish; default
	// DefaultCeremonyTimeout.
	Timeout time.Duration
	// Now returns the current time; default time.Now. Tests inject a clock.
	Now func() time.Time
}

// WebAuthn runs the registration and authentication ceremonies. It keeps no
// state between Begin and Finish: Begin returns the ceremony state as bytes
// which the caller keeps (sealed, bound to the browser, single use) and
// hands back to Finish. Safe for concurrent use.
type WebAuthn struct {
	wa      *webauthn.WebAuthn
	rpID    string
	origins []string
	timeout time.Duration
	now     func() time.Time
}

// NewWebAuthn validates cfg and returns the ceremonies for it.
func NewWebAuthn(cfg WebAuthnConfig) (*WebAuthn, error) {
	iss, err := url.Parse(cfg.Issuer)
	if err != nil || (iss.Scheme != "https" && iss.Scheme != "http") || iss.Hostname() == "" {
		return nil, fmt.Errorf("webauthn: issuer %q is not an http(s) URL", cfg.Issuer)
	}
	issHost := strings.ToLower(iss.Hostname())

	rpID := strings.ToLower(strings.TrimSpace(cfg.RPID))
	if rpID == "" {
		rpID = issHost
	}
	if net.ParseIP(rpID) != nil {
		return nil, fmt.Errorf("webauthn: the RP ID %q is an IP address, which WebAuthn does not allow: serve the issuer on a host name (http://localhost:PORT for development) or set GATEHOUSE_WEBAUTHN_RP_ID to a domain of it", rpID)
	}
	if err := protocol.ValidateRPID(rpID); err != nil {
		return nil, fmt.Errorf("webauthn: GATEHOUSE_WEBAUTHN_RP_ID %q is not a domain name: %v", rpID, err)
	}
	if rpID != issHost {
		if !strings.HasSuffix(issHost, "."+rpID) {
			return nil, fmt.Errorf("webauthn: GATEHOUSE_WEBAUTHN_RP_ID %q is neither the issuer's host %q nor a parent domain of it", rpID, issHost)
		}
		// A parent must be registrable: browsers refuse an RP ID that is a
		// public suffix, as it would let every site under it claim the
		// passkeys.
		if ps, _ := publicsuffix.PublicSuffix(rpID); ps == rpID {
			return nil, fmt.Errorf("webauthn: GATEHOUSE_WEBAUTHN_RP_ID %q is a public suffix, not a registrable domain", rpID)
		}
	}

	origins := cfg.RPOrigins
	if len(origins) == 0 {
		origins = []string{iss.Scheme + "://" + iss.Host}
	}
	clean := make([]string, 0, len(origins))
	for _, o := range origins {
		c, err := checkOrigin(o, rpID)
		if err != nil {
			return nil, err
		}
		clean = append(clean, c)
	}

	name := cfg.RPDisplayName
	if name == "" {
		name = "Gatehouse"
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultCeremonyTimeout
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}

	wa, err := webauthn.New(&webauthn.Config{
		RPID:          rpID,
		RPDisplayName: name,
		RPOrigins:     clean,
		// Passkeys are what we register: a discoverable credential (so
		// the passwordless button needs no email first), user
		// verification when the authenticator can, no attestation (we
		// trust no vendor list, and asking for it only adds a prompt).
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   protocol.VerificationPreferred,
		},
		// The browser's timeout matches the challenge expiry. Enforcement
		// is ours (finish checks the expiry with the injected clock).
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: timeout, TimeoutUVD: timeout},
			Registration: webauthn.TimeoutConfig{Timeout: timeout, TimeoutUVD: timeout},
		},
		// We request no extensions and use none. Rejecting outputs we did
		// not ask for would only lock out users whose browser or password
		// manager volunteers one (credProps is common).
		ExtensionsUnsolicitedOutputPolicy: protocol.UnsolicitedOutputPolicyIgnore,
	})
	if err != nil {
		return nil, fmt.Errorf("webauthn: %w", err)
	}
	return &WebAuthn{wa: wa, rpID: rpID, origins: clean, timeout: timeout, now: now}, nil
}

// checkOrigin returns o as scheme://host[:port] or an error naming it.
func checkOrigin(o, rpID string) (string, error) {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("webauthn: origin %q is not scheme://host[:port]", o)
	}
	host := strings.ToLower(u.Hostname())
	if host != rpID && !strings.HasSuffix(host, "."+rpID) {
		return "", fmt.Errorf("webauthn: origin %q is not on the RP ID %q or a subdomain of it", o, rpID)
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), nil
}

// RPID returns the relying party ID passkeys are bound to.
func (w *WebAuthn) RPID() string { return w.rpID }

// Origins returns the origins ceremonies are accepted from.
func (w *WebAuthn) Origins() []string { return append([]string(nil), w.origins...) }

// NewUserHandle returns a new random WebAuthn user handle for
// storage.WebAuthnUserHandle's candidate: 32 bytes from crypto/rand, so it
// identifies the account to authenticators without saying who it is.
func NewUserHandle() []byte {
	h := make([]byte, userHandleSize)
	_, _ = rand.Read(h) // crypto/rand.Read never fails
	return h
}

// User is a Gatehouse account as WebAuthn sees it; it implements
// webauthn.User.
type User struct {
	// Account is the user; Email and Name are shown by authenticators.
	Account *storage.User
	// Handle is the user's WebAuthn user handle
	// (storage.WebAuthnUserHandle), stored in every passkey of the user.
	Handle []byte
	// Credentials are the user's registered passkeys
	// (storage.ListWebAuthnCredentials).
	Credentials []storage.WebAuthnCredential
}

// WebAuthnID returns the user handle.
func (u User) WebAuthnID() []byte { return u.Handle }

// WebAuthnName returns the email, the account name a passkey is listed
// under.
func (u User) WebAuthnName() string { return u.Account.Email }

// WebAuthnDisplayName returns the user's name, or the email without one.
func (u User) WebAuthnDisplayName() string {
	if u.Account.Name != "" {
		return u.Account.Name
	}
	return u.Account.Email
}

// WebAuthnCredentials converts the stored credentials.
func (u User) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, len(u.Credentials))
	for i := range u.Credentials {
		out[i] = toWebAuthnCredential(&u.Credentials[i])
	}
	return out
}

func (u User) credential(id []byte) *storage.WebAuthnCredential {
	for i := range u.Credentials {
		if bytes.Equal(u.Credentials[i].ID, id) {
			return &u.Credentials[i]
		}
	}
	return nil
}

func toWebAuthnCredential(c *storage.WebAuthnCredential) webauthn.Credential {
	// The flags are rebuilt from what the store keeps: go-webauthn
	// compares BE with each assertion's (it must never change) and keeps UV
	// as "verified at registration".
	flags := protocol.FlagUserPresent
	if c.UserVerified {
		flags |= protocol.FlagUserVerified
	}
	if c.BackupEligible {
		flags |= protocol.FlagBackupEligible
	}
	if c.BackupState {
		flags |= protocol.FlagBackupState
	}
	transports := make([]protocol.AuthenticatorTransport, len(c.Transports))
	for i, t := range c.Transports {
		transports[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{
		ID:              c.ID,
		PublicKey:       c.PublicKey,
		AttestationType: c.AttestationType,
		Transport:       transports,
		Flags:           webauthn.NewCredentialFlags(flags),
		Authenticator:   webauthn.Authenticator{AAGUID: c.AAGUID, SignCount: c.SignCount},
	}
}

// Ceremony kinds, recorded in the state so one ceremony's state cannot
// finish another.
const (
	kindRegister     = "register"
	kindLogin        = "login"
	kindDiscoverable = "discoverable"
)

// ceremonyState is what Begin returns as bytes: go-webauthn's session data
// (challenge, RP ID, user handle, allowed credentials, user verification
// requirement) plus our kind and expiry.
type ceremonyState struct {
	Kind    string               `json:"kind"`
	Expires time.Time            `json:"exp"`
	Data    webauthn.SessionData `json:"data"`
}

func (w *WebAuthn) encodeState(kind string, sd *webauthn.SessionData) ([]byte, error) {
	b, err := json.Marshal(ceremonyState{Kind: kind, Expires: w.now().Add(w.timeout), Data: *sd})
	if err != nil {
		return nil, fmt.Errorf("webauthn: encode ceremony state: %w", err)
	}
	return b, nil
}

func (w *WebAuthn) decodeState(kind string, b []byte) (*webauthn.SessionData, error) {
	var st ceremonyState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%w: ceremony state unreadable", ErrInvalidResponse)
	}
	if st.Kind != kind {
		return nil, fmt.Errorf("%w: ceremony state is for %q, not %q", ErrInvalidResponse, st.Kind, kind)
	}
	if !w.now().Before(st.Expires) {
		return nil, ErrChallengeExpired
	}
	return &st.Data, nil
}

// invalid wraps an error of go-webauthn (always about the answer: it does
// no I/O of its own) as ErrInvalidResponse, keeping its detail for logs.
func invalid(err error) error {
	var unknown *protocol.ErrorUnknownCredential
	if errors.As(err, &unknown) {
		return fmt.Errorf("%w: %w", ErrUnknownCredential, err)
	}
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.DevInfo != "" {
		return fmt.Errorf("%w: %s (%s)", ErrInvalidResponse, pe.Details, pe.DevInfo)
	}
	return fmt.Errorf("%w: %w", ErrInvalidResponse, err)
}

func checkSize(response []byte) error {
	if len(response) > MaxResponseSize {
		return fmt.Errorf("%w: response larger than %d bytes", ErrInvalidResponse, MaxResponseSize)
	}
	return nil
}

// BeginRegistration starts adding a passkey for u. options is the JSON
// {"publicKey": PublicKeyCredentialCreationOptionsJSON} for the page's
// navigator.credentials.create (binary members base64url, as
// PublicKeyCredential.parseCreationOptionsFromJSON takes them): a
// discoverable credential, user verification preferred, no attestation, and
// u's existing passkeys excluded so an authenticator is not registered
// twice. state goes back to FinishRegistration. u.Handle must be set.
func (w *WebAuthn) BeginRegistration(u User) (options, state []byte, err error) {
	if len(u.Handle) == 0 || u.Account == nil {
		return nil, nil, errors.New("webauthn: begin registration: user without handle or account")
	}
	exclude := make([]protocol.CredentialDescriptor, 0, len(u.Credentials))
	for _, c := range u.WebAuthnCredentials() {
		exclude = append(exclude, c.Descriptor())
	}
	creation, sd, err := w.wa.BeginRegistration(u, webauthn.WithExclusions(exclude))
	if err != nil {
		return nil, nil, fmt.Errorf("webauthn: begin registration: %w", err)
	}
	if options, err = json.Marshal(creation); err != nil {
		return nil, nil, fmt.Errorf("webauthn: encode creation options: %w", err)
	}
	if state, err = w.encodeState(kindRegister, sd); err != nil {
		return nil, nil, err
	}
	return options, state, nil
}

// FinishRegistration verifies the page's answer (the PublicKeyCredential
// as JSON, RegistrationResponseJSON) against state from BeginRegistration
// for the same u, and returns the credential to store: ID, PublicKey,
// AttestationType, AAGUID, SignCount, Transports, UserVerified,
// BackupEligible, BackupState, UserID and CreatedAt are set; the caller
// adds the user's Name for it and calls storage.CreateWebAuthnCredential
// (whose ErrConflict means the passkey is registered already).
func (w *WebAuthn) FinishRegistration(u User, state, response []byte) (*storage.WebAuthnCredential, error) {
	if err := checkSize(response); err != nil {
		return nil, err
	}
	sd, err := w.decodeState(kindRegister, state)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, invalid(err)
	}
	cred, err := w.wa.CreateCredential(u, *sd, parsed)
	if err != nil {
		return nil, invalid(err)
	}
	transports := make([]string, len(cred.Transport))
	for i, t := range cred.Transport {
		transports[i] = string(t)
	}
	return &storage.WebAuthnCredential{
		ID:              cred.ID,
		UserID:          u.Account.ID,
		PublicKey:       cred.PublicKey,
		AttestationType: cred.AttestationType,
		AAGUID:          cred.Authenticator.AAGUID,
		SignCount:       cred.Authenticator.SignCount,
		Transports:      transports,
		UserVerified:    cred.Flags.UserVerified,
		BackupEligible:  cred.Flags.BackupEligible,
		BackupState:     cred.Flags.BackupState,
		CreatedAt:       w.now(),
	}, nil
}

// BeginDiscoverableLogin starts a passwordless sign-in: no user is known
// yet and the browser offers whichever passkey the user picks (also through
// autofill: the page may call navigator.credentials.get with mediation
// "conditional" with the same options). User verification is required: a
// passkey alone proves only possession, and passwordless sign-in promises
// two factors. options is {"publicKey": PublicKeyCredentialRequestOptionsJSON}.
func (w *WebAuthn) BeginDiscoverableLogin() (options, state []byte, err error) {
	assertion, sd, err := w.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, nil, fmt.Errorf("webauthn: begin discoverable login: %w", err)
	}
	return w.encodeLogin(kindDiscoverable, assertion, sd)
}

// BeginLogin starts a passkey check for u, who is known: the second factor
// after a password, or a fresh check before changing the account. The
// browser is offered u's passkeys only (allowCredentials); user
// verification is preferred, and FinishLogin reports whether it happened.
// u must have at least one passkey.
func (w *WebAuthn) BeginLogin(u User) (options, state []byte, err error) {
	if len(u.Credentials) == 0 {
		return nil, nil, errors.New("webauthn: begin login: the user has no passkeys")
	}
	assertion, sd, err := w.wa.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, nil, fmt.Errorf("webauthn: begin login: %w", err)
	}
	// The browser gets the allow list (in options); the state does not
	// keep it. The state travels in a cookie, and u's credential IDs (up
	// to 1023 bytes each) would take it past the 4 KiB browsers keep for a
	// user with many passkeys, who could then never use one. FinishLogin
	// accepts only a credential of u, which is what the list says.
	sd.AllowedCredentialIDs = nil
	return w.encodeLogin(kindLogin, assertion, sd)
}

func (w *WebAuthn) encodeLogin(kind string, assertion *protocol.CredentialAssertion, sd *webauthn.SessionData) (options, state []byte, err error) {
	if options, err = json.Marshal(assertion); err != nil {
		return nil, nil, fmt.Errorf("webauthn: encode request options: %w", err)
	}
	if state, err = w.encodeState(kind, sd); err != nil {
		return nil, nil, err
	}
	return options, state, nil
}

// FinishLogin verifies the page's answer (AuthenticationResponseJSON) for
// u against state from BeginLogin(u). It returns the credential used,
// updated for storage.UseWebAuthnCredential: SignCount is the count the
// authenticator reported (the store refuses a count that went backwards,
// the sign of a cloned key), BackupState as reported, LastUsedAt now. A
// passkey that is not one of u's fails with ErrUnknownCredential.
// userVerified is this assertion's UV flag (see PasskeyAMR).
func (w *WebAuthn) FinishLogin(u User, state, response []byte) (cred *storage.WebAuthnCredential, userVerified bool, err error) {
	if err := checkSize(response); err != nil {
		return nil, false, err
	}
	sd, err := w.decodeState(kindLogin, state)
	if err != nil {
		return nil, false, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, false, invalid(err)
	}
	if u.credential(parsed.RawID) == nil {
		return nil, false, ErrUnknownCredential
	}
	if _, err := w.wa.ValidateLogin(u, *sd, parsed); err != nil {
		return nil, false, invalid(err)
	}
	return w.used(u, parsed)
}

// FinishDiscoverableLogin verifies the page's answer to a passwordless
// sign-in against state from BeginDiscoverableLogin. lookup finds the
// account from the user handle the authenticator returned (and the
// credential ID): storage.GetUserByWebAuthnHandle, then its handle and
// ListWebAuthnCredentials. lookup returns an error wrapping
// storage.ErrNotFound when no account has the handle; that, or a
// credential the account does not have, is ErrUnknownCredential. Any other
// lookup error is returned wrapped, as an internal error.
//
// user is the account signed in; cred and userVerified are as from
// FinishLogin (userVerified is always true on success here, since
// verification was required).
func (w *WebAuthn) FinishDiscoverableLogin(state, response []byte, lookup func(rawID, userHandle []byte) (User, error)) (user User, cred *storage.WebAuthnCredential, userVerified bool, err error) {
	if err := checkSize(response); err != nil {
		return User{}, nil, false, err
	}
	sd, err := w.decodeState(kindDiscoverable, state)
	if err != nil {
		return User{}, nil, false, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return User{}, nil, false, invalid(err)
	}
	// The lookup's own error is kept aside: go-webauthn folds it into a
	// "bad request", but a store that is down is not the user's fault.
	var lookupErr error
	var found User
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		u, err := lookup(rawID, userHandle)
		if err != nil {
			lookupErr = err
			return nil, err
		}
		if u.Account == nil || u.credential(rawID) == nil {
			lookupErr = ErrUnknownCredential
			return nil, lookupErr
		}
		found = u
		return u, nil
	}
	if _, _, err := w.wa.ValidatePasskeyLogin(handler, *sd, parsed); err != nil {
		switch {
		case lookupErr == nil:
			return User{}, nil, false, invalid(err)
		case errors.Is(lookupErr, ErrUnknownCredential) || errors.Is(lookupErr, storage.ErrNotFound):
			return User{}, nil, false, ErrUnknownCredential
		default:
			return User{}, nil, false, fmt.Errorf("webauthn: look up passkey owner: %w", lookupErr)
		}
	}
	cred, userVerified, err = w.used(found, parsed)
	if err != nil {
		return User{}, nil, false, err
	}
	return found, cred, userVerified, nil
}

// used returns the stored credential of the verified assertion, updated
// from its authenticator data.
func (w *WebAuthn) used(u User, parsed *protocol.ParsedCredentialAssertionData) (*storage.WebAuthnCredential, bool, error) {
	stored := u.credential(parsed.RawID)
	if stored == nil { // go-webauthn verified against u's credentials, so it is there
		return nil, false, ErrUnknownCredential
	}
	c := *stored
	ad := parsed.Response.AuthenticatorData
	// The reported count, not go-webauthn's adjusted one (which keeps the
	// old count and sets a clone warning): the store's atomic check is the
	// one that decides, and concurrent sign-ins race there, not here.
	c.SignCount = ad.Counter
	c.BackupState = ad.Flags.HasBackupState()
	c.LastUsedAt = w.now()
	return &c, ad.Flags.HasUserVerified(), nil
}
