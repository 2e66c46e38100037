// Package authn names how a user authenticated: the amr values (RFC 8176)
// an SSO session remembers and ID tokens carry, and the acr levels apps ask
// for with acr_values. Both the sign-in flow (package login) and the token
// side (package op) use it, so it sits below both.
package authn

import (
	"slices"
	"strings"
)

// Authentication method references (RFC 8176) that Gatehouse puts in the
// amr claim and remembers in the SSO session.
const (
	// AMRPassword: the user's password.
	AMRPassword = "pwd"
	// AMROTP: a one-time code, from an authenticator app (TOTP) or a
	// recovery code.
	AMROTP = "otp"
	// AMRHardwareKey: a passkey or security key whose private key cannot
	// leave the device (not backup eligible).
	AMRHardwareKey = "hwk"
	// AMRSoftwareKey: a passkey that may be synced or backed up (backup
	// eligible), so its key exists outside one piece of hardware.
	AMRSoftwareKey = "swk"
	// AMRUser: the authenticator verified the user (PIN or biometric) for a
	// passkey: WebAuthn's UV flag. Only meaningful beside hwk or swk.
	AMRUser = "user"
	// AMRMFA: two or more independent factors were used (added by
	// AddFactor, never passed to it by callers).
	AMRMFA = "mfa"
	// AMRFederated: the user signed in at an upstream identity provider.
	// Not in RFC 8176's registry but widely used (Microsoft Entra ID); it
	// counts as one factor of its own kind.
	AMRFederated = "fed"
)

// upstreamPrefix marks, inside a session's amr, a value an upstream
// identity provider reported about its own sign-in. Such a value is shown
// in ID tokens (without the prefix) but is not a proof made to Gatehouse,
// so it never counts towards an acr: an upstream's "pwd" is what "fed"
// already stands for, and ["fed", "pwd"] must not read as two factors.
const upstreamPrefix = "upstream:"

// Upstream returns the session amr value for an amr value an upstream
// reported.
func Upstream(v string) string { return upstreamPrefix + v }

// ClaimAMR is the amr claim for a session's amr: upstream-reported values
// without their marker, each value once, in order.
func ClaimAMR(amr []string) []string {
	if amr == nil {
		return nil
	}
	out := make([]string, 0, len(amr))
	for _, v := range amr {
		v = strings.TrimPrefix(v, upstreamPrefix)
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// Authentication context class references (the acr claim and acr_values),
// weakest first. Each names what it guarantees, so an app can ask for it
// without reading Gatehouse's documentation.
const (
	// ACRSingleFactor: one factor: a password, an upstream sign-in, or a
	// passkey without user verification. It is named for what it is, not
	// "password", because a federated sign-in gets it too; apps see it so
	// that a missing acr never has to be interpreted.
	ACRSingleFactor = "urn:gatehouse:acr:single-factor"
	// ACRMFA: two independent factors (password and authenticator app,
	// password and security key, upstream sign-in and code, …).
	ACRMFA = "urn:gatehouse:acr:mfa"
	// ACRPhishingResistant: a passkey or security key with user
	// verification: two factors, and nothing a fake site can replay since
	// the signature is bound to Gatehouse's origin.
	ACRPhishingResistant = "urn:gatehouse:acr:phishing-resistant"
)

// ACRValues returns the acr values Gatehouse supports, weakest first, for
// discovery's acr_values_supported.
func ACRValues() []string {
	return []string{ACRSingleFactor, ACRMFA, ACRPhishingResistant}
}

// acrRank orders the acr values; 0 for a value Gatehouse does not know.
func acrRank(acr string) int {
	switch acr {
	case ACRSingleFactor:
		return 1
	case ACRMFA:
		return 2
	case ACRPhishingResistant:
		return 3
	}
	return 0
}

// factorKind groups amr values into independent kinds: two values of one
// kind (an authenticator app and a security key are both something you
// have) are not two factors.
//
// The amr values are taken as separate proofs made to Gatehouse. Values an
// upstream identity provider reported about its own sign-in are not: its
// "pwd" is what "fed" already stands for, and ["fed", "pwd"] would read as
// two factors. Such values should not be mixed into a session's amr as
// they are.
func factorKind(amr string) string {
	switch amr {
	case AMRPassword:
		return "knowledge"
	case AMROTP, AMRHardwareKey, AMRSoftwareKey:
		return "possession"
	case AMRFederated:
		return "federated"
	}
	return "" // user, mfa and anything unknown are not a factor by themselves
}

// isMultiFactor reports whether amr shows two independent factors: two
// different kinds, or a passkey (hwk or swk) with user verification (user),
// where the authenticator checked a PIN or biometric besides proving
// possession — which is why WebAuthn's UV counts as a kind only beside a key.
func isMultiFactor(amr []string) bool {
	kinds := map[string]bool{}
	for _, m := range amr {
		if k := factorKind(m); k != "" {
			kinds[k] = true
		}
	}
	if hasPasskeyUV(amr) {
		kinds["verified"] = true
	}
	return len(kinds) >= 2
}

func hasPasskeyUV(amr []string) bool {
	return (slices.Contains(amr, AMRHardwareKey) || slices.Contains(amr, AMRSoftwareKey)) && slices.Contains(amr, AMRUser)
}

// ACRFor returns the acr a sign-in with these amr values achieved:
// ACRPhishingResistant for a passkey with user verification (hwk or swk,
// and user); ACRMFA for two independent factors or an amr that already says
// mfa; ACRSingleFactor otherwise (including an empty amr).
func ACRFor(amr []string) string {
	switch {
	case hasPasskeyUV(amr):
		return ACRPhishingResistant
	case slices.Contains(amr, AMRMFA) || isMultiFactor(amr):
		return ACRMFA
	default:
		return ACRSingleFactor
	}
}

// Satisfies reports whether a session at acr have meets an app's
// acr_values, wanted. acr_values is a preference list, so meeting any one
// known value is enough; a stronger acr meets a weaker one
// (phishing-resistant meets mfa meets single-factor). Values Gatehouse does
// not know are ignored, as OpenID Connect Core asks; when none is known the
// request asks for nothing and Satisfies is true.
func Satisfies(have string, wanted []string) bool {
	h := acrRank(have)
	known := false
	for _, w := range wanted {
		r := acrRank(w)
		if r == 0 {
			continue
		}
		known = true
		if h >= r {
			return true
		}
	}
	return !known
}

// AddFactor returns amr with the values of m that it lacks appended, and
// AMRMFA appended when the result shows two independent factors (pwd+otp,
// pwd+hwk, fed+otp, hwk+user, …; user alone is not a factor). amr is not
// modified. Callers pass what a step proved, e.g. AddFactor(sess.AMR,
// AMROTP) after a code, AddFactor(nil, PasskeyAMR(cred, uv)...) after a
// passwordless passkey.
func AddFactor(amr []string, m ...string) []string {
	out := slices.Clone(amr)
	for _, v := range m {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if !slices.Contains(out, AMRMFA) && isMultiFactor(out) {
		out = append(out, AMRMFA)
	}
	return out
}
