// Package keys owns Gatehouse's token signing keys and the secrets derived from
// GATEHOUSE_SECRET.
//
// Signing keys live in the Store so that every instance signs with the same key
// and publishes the same JWKS. Private keys are encrypted before they reach the
// store (AES-256-GCM under a key derived from GATEHOUSE_SECRET), so a database
// dump alone cannot forge tokens.
//
// Every algorithm Gatehouse signs with (RS256, ES256, EdDSA) has its own keys,
// so each client can have its tokens signed in the algorithm it registered;
// the configured default signs for the others. A key moves through three
// states: next (published, not yet signing, so relying parties can cache it
// before it is used), active (published and signing) and retired (published
// until every token it signed has expired, then removed by
// Store.DeleteExpired). Each algorithm has one active and one next key. The
// Manager keeps an immutable in-memory snapshot of the active signers and the
// published keys; hot paths read it without locks or I/O.
package keys
