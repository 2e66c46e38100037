// Package backchannel implements the provider's side of OpenID Connect
// Back-Channel Logout 1.0: minting Logout Tokens, posting them to the
// relying parties' registered back-channel logout URIs, and a worker that
// drains a durable outbox of such deliveries with bounded retries.
//
// The package knows nothing about how sessions end or where the outbox is
// stored. Whoever ends a session mints one token per client that received
// tokens in it and enqueues a Delivery (in the same transaction as the
// session's end, ideally); the Worker, run by whichever instance holds the
// background lock, sends them. Signing out therefore never waits on a
// relying party.
//
// Outbound requests are the SSRF-sensitive part: the URI is fixed when the
// client is registered (ValidateURI), redirects are never followed (a
// receiver cannot point Gatehouse elsewhere), every request ends within a
// short timeout and at most a few KiB of any answer are read.
package backchannel
