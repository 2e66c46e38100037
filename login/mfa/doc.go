// Package mfa holds the building blocks of Gatehouse's second factors and
// passwordless sign-in, free of HTTP and of the sign-in flow that uses them:
//
//   - authenticator apps (TOTP, RFC 6238): key generation with its
//     otpauth:// URI and QR code, code verification that reports the time
//     step so the store can refuse a reused code, and SecretBox to keep the
//     shared secrets encrypted at rest;
//   - recovery codes: generation, the hash the store keeps, the text file a
//     user downloads;
//   - authentication context: RFC 8176 amr values, the acr values Gatehouse
//     advertises, and how one follows from the other;
//   - passkeys and security keys (WebAuthn): a small wrapper over
//     github.com/go-webauthn/webauthn that speaks storage types and returns
//     its ceremony state as bytes for the caller to seal into a cookie.
//
// The package never touches the store or the network itself: callers load
// and save (storage.UseTOTPStep, storage.UseWebAuthnCredential, …), which
// keeps every check that needs atomicity in the store and everything here
// testable with an injected clock.
package mfa
