// An app's back-channel logout endpoint (OpenID Connect Back-Channel Logout
// 1.0 §2.5–2.8) for the e2e tests: a loopback HTTP server that validates each
// logout token the way a relying party must, with openid-client's discovery
// and jose — libraries nobody here wrote — and hands the verified claims to
// the test.
//
//   const config = await client.discovery(…);              // openid-client v6
//   const receiver = await startLogoutReceiver(config);
//   after(() => receiver.close());
//   // register receiver.url as the client's --backchannel-logout-uri, sign in, sign out
//   const claims = await receiver.next();                  // bounded by a deadline
//
// A token that fails any check is answered 400 (as §2.8 says) and makes the
// pending or next next() fail with the reason, so a wrong token never looks
// like a missing one.

import { createServer } from 'node:http';

import * as jose from 'jose';

export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

// How old a logout token may be when it arrives (iat), and how far clocks may
// disagree. Gatehouse sends within seconds and mints a fresh token per attempt.
const MAX_TOKEN_AGE = '2m';
const CLOCK_TOLERANCE_S = 5;
// A logout token is short-lived: exp more than this after iat is not sane.
const MAX_LIFETIME_S = 600;
const MAX_BODY_BYTES = 16 << 10;
const DEFAULT_WAIT_MS = 20_000;

/**
 * Starts a receiver on a free 127.0.0.1 port for the client that config (an
 * openid-client Configuration) describes: the issuer, its JWKS and the
 * signing algorithms come from config's discovery document, the audience is
 * config's client_id. algorithms narrows the signing algorithms accepted
 * (a client's id_token_signed_response_alg); all that discovery lists when absent.
 *
 * @returns {Promise<{url: string, received: object[], refused: string[],
 *   next: (timeoutMs?: number) => Promise<object>, close: () => Promise<void>}>}
 */
export async function startLogoutReceiver(config, { path = '/backchannel-logout', algorithms } = {}) {
  const meta = config.serverMetadata();
  const clientId = config.clientMetadata().client_id;
  const jwks = jose.createRemoteJWKSet(new URL(meta.jwks_uri));
  const seenJTIs = new Set();
  const received = []; // verified claims, in order of arrival
  const refused = []; // why each refused request was refused
  const pending = []; // verified claims next() has not handed out yet
  let waiter;

  // settle answers a waiting next(): a refused token first, else the oldest
  // verified one.
  const settle = () => {
    if (!waiter) return;
    if (refused.length > 0) waiter.reject(new Error(`the receiver refused a logout token: ${refused.join('; ')}`));
    else if (pending.length > 0) waiter.resolve(pending.shift());
    else return;
    waiter = undefined;
  };

  /** Every check an RP makes on a logout token (§2.6); returns the claims or throws. */
  const verify = async (token) => {
    const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
      issuer: meta.issuer,
      audience: clientId,
      algorithms: algorithms ?? meta.id_token_signing_alg_values_supported, // signed like ID tokens
      typ: 'logout+jwt',
      requiredClaims: ['iat', 'exp', 'jti', 'sub', 'sid', 'events'],
      maxTokenAge: MAX_TOKEN_AGE, // iat present, not in the future, not too old
      clockTolerance: CLOCK_TOLERANCE_S,
    });
    // jose accepts "application/logout+jwt" too; Gatehouse sends the short form.
    if (protectedHeader.typ !== 'logout+jwt') throw new Error(`typ ${protectedHeader.typ}`);
    const event = payload.events?.[BACKCHANNEL_LOGOUT_EVENT];
    if (typeof event !== 'object' || event === null || Array.isArray(event)) {
      throw new Error(`events ${JSON.stringify(payload.events)} lacks ${BACKCHANNEL_LOGOUT_EVENT}`);
    }
    if ('nonce' in payload) throw new Error('a logout token must not carry a nonce');
    if (typeof payload.sub !== 'string' || typeof payload.sid !== 'string') throw new Error('sub and sid must be strings');
    if (payload.exp - payload.iat <= 0 || payload.exp - payload.iat > MAX_LIFETIME_S) {
      throw new Error(`lifetime ${payload.exp - payload.iat} s`);
    }
    if (seenJTIs.has(payload.jti)) throw new Error(`jti ${payload.jti} replayed`);
    seenJTIs.add(payload.jti);
    return payload;
  };

  const readForm = async (req) => {
    let body = '';
    for await (const chunk of req) {
      body += chunk;
      if (body.length > MAX_BODY_BYTES) throw new Error('body too large');
    }
    return new URLSearchParams(body);
  };

  const server = createServer(async (req, res) => {
    const answer = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    try {
      if (req.method !== 'POST' || new URL(req.url, 'http://x').pathname !== path) throw new Error(`${req.method} ${req.url}`);
      const type = req.headers['content-type'] ?? '';
      if (!type.startsWith('application/x-www-form-urlencoded')) throw new Error(`content-type ${type}`);
      const tokens = (await readForm(req)).getAll('logout_token');
      if (tokens.length !== 1) throw new Error(`${tokens.length} logout_token parameters`);
      const claims = await verify(tokens[0]);
      received.push(claims);
      pending.push(claims);
      answer(200);
    } catch (err) {
      refused.push(err.message);
      answer(400, { error: 'invalid_request', error_description: err.message });
    }
    settle();
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve); // a port of its own, no race for a free one
  });
  const { port } = server.address();

  return {
    url: `http://127.0.0.1:${port}${path}`,
    received,
    refused,
    /** The next verified logout token's claims; fails on a refused one or after timeoutMs. */
    next: (timeoutMs = DEFAULT_WAIT_MS) =>
      new Promise((resolve, reject) => {
        if (waiter) throw new Error('next() is already waiting');
        const timer = setTimeout(() => {
          waiter = undefined;
          reject(new Error(`no logout token arrived within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = (fn) => (v) => {
          clearTimeout(timer);
          fn(v);
        };
        waiter = { resolve: done(resolve), reject: done(reject) };
        settle();
      }),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Gatehouse's record of the logout deliveries to clientId (`gatehouse
 * logout-deliveries list --json --client`), once none is pending: each is then
 * delivered or given up, and no attempt follows. Polls within a deadline.
 */
export async function settledDeliveries(gh, clientId, timeoutMs = DEFAULT_WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const list = await gh.cli(['logout-deliveries', 'list', '--json', '--client', clientId]);
    if (list.every((d) => d.state !== 'pending')) return list;
    if (Date.now() > deadline) throw new Error(`logout deliveries to ${clientId} still pending after ${timeoutMs} ms: ${JSON.stringify(list)}`);
    await new Promise((r) => setTimeout(r, 100)); // the next look at the outbox
  }
}
