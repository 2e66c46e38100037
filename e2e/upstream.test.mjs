// Upstream sign-in against a real OpenID provider: Gatehouse signs users in
// through node-oidc-provider (lib/upstream.mjs, upstream "corp", "Corp SSO")
// while openid-client v6 is the relying party of Gatehouse, all checks on.
// The browser is plain HTTP with one cookie jar for both servers (cookies do
// not tell ports apart, and a browser keeps one jar).
//
// The linking rules under test (login/federation.go):
//   - a new identity with a verified email and no account → a new account;
//   - the same identity again → the same account (found by upstream+sub);
//   - an unverified (or absent email_verified) email → 403, nothing created or linked;
//   - a verified email of an existing account → the password is asked, and
//     the link is made only by that password sign-in in the same browser;
//   - the user cancels at the upstream → 403 sign-in page, the RP gets nothing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import * as client from 'openid-client';

import {
  CookieJar,
  browserRequest,
  createClient,
  createUser,
  loginViaForm,
  pageSummary,
  parseForms,
  startGatehouse,
} from './lib/gatehouse.mjs';
import { UPSTREAM_ID, UPSTREAM_NAME, startUpstream } from './lib/upstream.mjs';

const PASSWORD = 'Choose-a-Passw0rd';
const REDIRECT_URI = 'http://127.0.0.1:9/upstream-rp/callback';
const SCOPE = 'openid email profile';
const MAX_STEPS = 15;

let up;
let gh;
let config;
let ada; // a Gatehouse account whose address mallory claims at the upstream, unverified
let bob; // a Gatehouse account with a password; the upstream's bob has the same, verified, address

before(async () => {
  up = await startUpstream({
    accounts: {
      mallory: { email: 'ada@example.com', email_verified: false, name: 'Mallory' },
      carol: { email: 'carol@corp.example', name: 'Carol Corp' }, // no email_verified at all
    },
  });
  gh = await startGatehouse({ env: { GATEHOUSE_UPSTREAMS_FILE: await up.writeUpstreamsFile() } });
  up.registerGatehouse(gh.issuer);
  ada = await createUser(gh, 'ada@example.com', PASSWORD, ['--name', 'Ada Lovelace']);
  bob = await createUser(gh, 'bob@corp.example', PASSWORD, ['--name', 'Bob Gatehouse']);
  const reg = await createClient(gh, ['--name', 'upstream e2e RP', '--redirect-uri', REDIRECT_URI]);
  config = await client.discovery(new URL(gh.issuer), reg.client_id, undefined, client.ClientSecretBasic(reg.client_secret), {
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks], // http only because the test issuer is
  });
});
after(async () => {
  await gh?.stop();
  await up?.stop();
});

// ---------------------------------------------------------------- the browser

/**
 * GETs url and follows redirects while they stay on Gatehouse. Returns
 * {left: URL} for the first redirect off Gatehouse (the RP's redirect_uri),
 * or the page it stopped at: {url, status, html}.
 */
async function follow(start, jar, first = { method: 'GET' }) {
  const origin = new URL(gh.issuer).origin;
  let url = new URL(start);
  let req = first;
  for (let step = 0; step < MAX_STEPS; step++) {
    const { res, text } = await browserRequest(url, { jar, origin, ...req });
    if (res.status < 300 || res.status >= 400) return { url, status: res.status, html: text };
    const target = new URL(res.headers.get('location'), url);
    if (target.origin !== origin) return { left: target };
    url = target;
    req = { method: 'GET' };
  }
  throw new Error(`no page and no way out of Gatehouse after ${MAX_STEPS} steps (last: ${url})`);
}

/** The text of the page's alert (role="alert"), entities decoded, white space folded. */
function alertText(html) {
  return pageSummary(`<p role="alert">${html.match(/<p[^>]*role="alert"[^>]*>([\s\S]*?)<\/p>/)?.[1] ?? ''}</p>`);
}

/** A fresh authorization request of the RP: code + PKCE S256 + state + nonce. */
async function authorize() {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const expectedState = client.randomState();
  const expectedNonce = client.randomNonce();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: expectedState,
    nonce: expectedNonce,
  });
  return { authorizationUrl, checks: { pkceCodeVerifier, expectedState, expectedNonce } };
}

/**
 * Opens the RP's authorization request at Gatehouse, follows "Continue
 * with Corp SSO" on the sign-in page, and returns the upstream authorization
 * URL Gatehouse redirects to (checked: code flow, PKCE S256, state, nonce).
 */
async function continueWithCorp(authorizationUrl, jar) {
  const login = await follow(authorizationUrl, jar);
  assert.equal(login.status, 200, `expected the sign-in page: ${login.left ?? pageSummary(login.html)}`);
  assert.equal(login.url.pathname, '/login');
  const tag = login.html.match(new RegExp(`<a\\b[^>]*\\bid="upstream-${UPSTREAM_ID}"[^>]*>([^<]*)</a>`));
  assert.ok(tag, 'the sign-in page has the upstream link');
  assert.equal(tag[1].trim(), `Continue with ${UPSTREAM_NAME}`);
  const href = parseHref(tag[0]);
  assert.equal(href.pathname, `/upstream/${UPSTREAM_ID}/start`);
  assert.equal(href.searchParams.get('authRequestID'), login.url.searchParams.get('authRequestID'));

  const { res } = await browserRequest(new URL(href, login.url), { jar });
  assert.equal(res.status, 303);
  const target = new URL(res.headers.get('location'));
  assert.equal(target.origin, up.issuer);
  const q = target.searchParams;
  assert.equal(q.get('response_type'), 'code');
  assert.equal(q.get('client_id'), up.clientId);
  assert.equal(q.get('redirect_uri'), `${gh.issuer}/upstream/${UPSTREAM_ID}/callback`);
  assert.equal(q.get('code_challenge_method'), 'S256');
  assert.match(q.get('code_challenge') ?? '', /^[\w-]{43}$/);
  assert.ok(q.get('state')?.length >= 22, 'state');
  assert.ok(q.get('nonce')?.length >= 22, 'nonce');
  assert.deepEqual(q.get('scope').split(' ').sort(), ['email', 'openid', 'profile']);
  return target;
}

function parseHref(tag) {
  const raw = tag.match(/\bhref="([^"]*)"/)[1].replaceAll('&amp;', '&');
  return new URL(raw, gh.issuer);
}

/**
 * A whole sign-in through the upstream in the browser jar: RP → Gatehouse
 * sign-in page → Continue with Corp SSO → the upstream's page (account, or
 * Cancel with abort) → Gatehouse's callback → wherever Gatehouse goes: {end}
 * is follow()'s result there.
 */
async function viaCorp(account, { jar = new CookieJar(), abort = false } = {}) {
  const { authorizationUrl, checks } = await authorize();
  const atUpstream = await continueWithCorp(authorizationUrl, jar);
  const stats = {};
  const callback = await up.signIn(atUpstream, { jar, account, abort, stats });
  assert.equal(callback.origin + callback.pathname, `${gh.issuer}/upstream/${UPSTREAM_ID}/callback`);
  if (abort) assert.equal(callback.searchParams.get('error'), 'access_denied');
  else assert.ok(callback.searchParams.get('code'), 'the upstream answered with a code');
  const end = await follow(callback, jar);
  return { end, checks, jar, stats, callback };
}

/** The RP's side: the redirect must reach it, with a code it redeems. */
async function tokensFrom(end, checks) {
  assert.ok(end.left, `expected a redirect to the RP, got HTTP ${end.status} at ${end.url}: ${end.html && pageSummary(end.html)}`);
  assert.equal(end.left.origin + end.left.pathname, REDIRECT_URI);
  assert.equal(end.left.searchParams.get('iss'), gh.issuer);
  return client.authorizationCodeGrant(config, end.left, { ...checks, idTokenExpected: true });
}

/** Gatehouse's user list, by email. */
async function usersByEmail() {
  const list = await gh.cli(['users', 'list', '--json']);
  return new Map(list.map((u) => [u.email, u]));
}

/** A refused upstream sign-in ends on Gatehouse's sign-in page, not at the RP. */
function assertRefusedOnSignInPage(end, status, message) {
  assert.equal(end.left, undefined, `the RP must receive nothing, but Gatehouse redirected to ${end.left}`);
  assert.equal(end.status, status, pageSummary(end.html));
  assert.ok(alertText(end.html).includes(message), `alert: ${alertText(end.html)}`);
  const forms = parseForms(end.html);
  assert.ok(forms.some((f) => f.fields.includes('password')), 'the sign-in form is shown again');
  assert.match(end.html, new RegExp(`id="upstream-${UPSTREAM_ID}"`), 'with the upstream link');
}

// ---------------------------------------------------------------- tests

describe(`upstream sign-in through ${UPSTREAM_NAME} (node-oidc-provider)`, () => {
  let aliceSub;

  it('a new identity with a verified email creates an account and signs in with idp and amr fed', async () => {
    const before = await usersByEmail();
    assert.equal(before.has('alice@corp.example'), false);

    const { end, checks, stats, callback, jar } = await viaCorp('alice');
    assert.equal(stats.prompted, 1, "the upstream's sign-in page was shown");
    const tokens = await tokensFrom(end, checks);

    // The upstream's answer is single use: replayed in the same browser it is refused.
    const replay = await follow(callback, jar);
    assert.equal(replay.left, undefined, `a replayed callback reached ${replay.left}`);
    assert.equal(replay.status, 400, pageSummary(replay.html));
    const claims = tokens.claims();
    assert.equal(claims.iss, gh.issuer);
    assert.equal(claims.idp, UPSTREAM_ID);
    assert.ok(Array.isArray(claims.amr), `amr: ${JSON.stringify(claims.amr)}`);
    assert.equal(claims.amr[0], 'fed');
    assert.ok(claims.amr.includes('pwd'), `the upstream's amr is passed on: ${JSON.stringify(claims.amr)}`);
    assert.equal(claims.email, 'alice@corp.example');
    assert.equal(claims.email_verified, true);
    assert.equal(claims.role, 'USER');
    assert.equal(claims.name, 'Alice Corp');
    aliceSub = claims.sub;

    const alice = (await usersByEmail()).get('alice@corp.example');
    assert.ok(alice, 'the account was created');
    assert.equal(alice.id, aliceSub);
    assert.equal(alice.role, 'USER');
    assert.equal(alice.email_verified, true);
    assert.equal(alice.has_password, false);
    assert.deepEqual(
      alice.linked_identities.map((l) => [l.upstream, l.subject]),
      [[UPSTREAM_ID, 'alice']],
    );
  });

  it('the same identity again (a fresh browser) signs in to the same account', async () => {
    assert.ok(aliceSub, 'needs the previous test');
    const count = (await usersByEmail()).size;
    const { end, checks } = await viaCorp('alice');
    const claims = (await tokensFrom(end, checks)).claims();
    assert.equal(claims.sub, aliceSub);
    assert.equal(claims.idp, UPSTREAM_ID);
    assert.equal(claims.amr[0], 'fed');
    assert.equal((await usersByEmail()).size, count, 'no second account');
  });

  it("an unverified email equal to an account's is refused with 403; nothing is created or linked", async () => {
    const before = await usersByEmail();
    const { end } = await viaCorp('mallory');
    assertRefusedOnSignInPage(end, 403, `${UPSTREAM_NAME} did not confirm that this email address is yours`);

    const after = await usersByEmail();
    assert.equal(after.size, before.size, 'no account created');
    assert.deepEqual(after.get('ada@example.com'), before.get('ada@example.com'), "ada's account is unchanged");
    assert.equal(after.get('ada@example.com').linked_identities, undefined, 'no link to ada');

    // Ada's password still signs her in, as herself and by password alone.
    const { authorizationUrl, checks } = await authorize();
    const callback = await loginViaForm({ authorizationUrl, email: 'ada@example.com', password: PASSWORD, redirectUri: REDIRECT_URI });
    const claims = (await tokensFrom({ left: callback }, checks)).claims();
    assert.equal(claims.sub, ada.id);
    assert.deepEqual(claims.amr, ['pwd']);
    assert.equal(claims.idp, undefined);
  });

  it('an email without email_verified is refused with 403; nothing is created', async () => {
    const count = (await usersByEmail()).size;
    const { end } = await viaCorp('carol');
    assertRefusedOnSignInPage(end, 403, `${UPSTREAM_NAME} did not confirm that this email address is yours`);
    const after = await usersByEmail();
    assert.equal(after.size, count);
    assert.equal(after.has('carol@corp.example'), false);
  });

  it("a verified email of an existing account links only after that account's password, in the same browser", async () => {
    const { end, checks, jar } = await viaCorp('bob');
    assert.equal(end.left, undefined, `nothing reaches the RP yet (went to ${end.left})`);
    assert.equal(end.status, 200, pageSummary(end.html));
    assert.equal(
      alertText(end.html),
      `An account with this email already exists — sign in with your password to link ${UPSTREAM_NAME}.`,
    );
    assert.equal((await usersByEmail()).get('bob@corp.example').linked_identities, undefined, 'not linked before the password');
    const form = parseForms(end.html).find((f) => f.method === 'post' && f.fields.includes('password'));
    assert.ok(form, 'the page has the password form');
    assert.match(end.html, /<input\b[^>]*name="email"[^>]*value="bob@corp\.example"/, 'with the email filled in');

    // Bob's password in another browser links nothing: the pending link
    // lives in the browser that came back from the upstream.
    {
      const { authorizationUrl, checks: other } = await authorize();
      const callback = await loginViaForm({ authorizationUrl, email: 'bob@corp.example', password: PASSWORD, redirectUri: REDIRECT_URI });
      assert.equal((await tokensFrom({ left: callback }, other)).claims().sub, bob.id);
      assert.equal((await usersByEmail()).get('bob@corp.example').linked_identities, undefined, 'not linked by another browser');
    }

    // The password, on that same page: the RP's request continues.
    const body = new URLSearchParams({ ...form.hidden, email: 'bob@corp.example', password: PASSWORD }).toString();
    const done = await follow(new URL(form.action, end.url), jar, { method: 'POST', body });
    const claims = (await tokensFrom(done, checks)).claims();
    assert.equal(claims.sub, bob.id);
    assert.deepEqual(claims.amr, ['pwd'], 'this sign-in was by password');
    assert.equal(claims.idp, undefined);

    const linked = (await usersByEmail()).get('bob@corp.example');
    assert.deepEqual(
      linked.linked_identities.map((l) => [l.upstream, l.subject]),
      [[UPSTREAM_ID, 'bob']],
    );
    assert.equal(linked.has_password, true);

    // Now linked: a fresh browser signs in as bob through Corp SSO alone.
    const again = await viaCorp('bob');
    const fed = (await tokensFrom(again.end, again.checks)).claims();
    assert.equal(fed.sub, bob.id);
    assert.equal(fed.idp, UPSTREAM_ID);
    assert.equal(fed.amr[0], 'fed');
    assert.equal(fed.email, 'bob@corp.example');
  });

  it('cancelling at the upstream (access_denied) shows the sign-in page again with 403; the RP gets nothing', async () => {
    const count = (await usersByEmail()).size;
    const { end } = await viaCorp('alice', { abort: true });
    assertRefusedOnSignInPage(end, 403, `Signing in with ${UPSTREAM_NAME} was cancelled or not allowed there.`);
    assert.equal((await usersByEmail()).size, count);
  });

  it('the upstream reported no server errors', () => {
    assert.deepEqual(up.errors(), []);
  });
});
