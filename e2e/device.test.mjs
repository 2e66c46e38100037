// The device authorization grant (RFC 8628) with openid-client v6: the
// "device" starts with initiateDeviceAuthorization() and waits in
// pollDeviceAuthorizationGrant() while a person, in a browser (fetch with a
// cookie jar), signs in at the verification URI, confirms the code and
// approves or denies through Gatehouse's real forms. The library checks the
// ID token (signature, iss, aud, exp, iat) as it would for any client; the
// one switch is allowInsecureRequests for the http://127.0.0.1 test server.
// GATEHOUSE_DEVICE_POLL_INTERVAL=1s keeps the library's real waits short.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import * as client from 'openid-client';

import {
  CookieJar,
  UnexpectedPageError,
  browserRequest,
  createClient,
  createUser,
  pageSummary,
  parseForms,
  startGatehouse,
} from './lib/gatehouse.mjs';

const PASSWORD = 'Choose-a-Passw0rd';

let gh;
let user;
let config;
before(async () => {
  gh = await startGatehouse({ env: { GATEHOUSE_DEVICE_POLL_INTERVAL: '1s' } });
  user = await createUser(gh, 'dana@example.com', PASSWORD, ['--role', 'BILLING']);
  const tv = await createClient(gh, ['--name', 'Living Room TV', '--public', '--grant-types', 'device_code,refresh_token']);
  config = await deviceConfig(gh.issuer, tv.client_id);
});
after(() => gh?.stop());

/**
 * How a device app configures openid-client from discovery (the README's
 * snippet): a public client, no secret. enableNonRepudiationChecks checks
 * the ID token's signature too; it relaxes nothing.
 */
async function deviceConfig(issuer, clientId) {
  const config = await client.discovery(new URL(issuer), clientId, undefined, client.None(), {
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
  });
  return config;
}

/**
 * A person's browser: GET url (or POST fields to it), following redirects
 * while they stay on Gatehouse; resolves to the page it ends on.
 */
async function browse(jar, url, fields) {
  let target = new URL(url);
  let next = fields ? { method: 'POST', body: new URLSearchParams(fields).toString() } : { method: 'GET' };
  for (let step = 0; step < 10; step++) {
    const { res, text } = await browserRequest(target, { jar, ...next, origin: new URL(gh.issuer).origin });
    if (res.status < 300 || res.status >= 400) {
      return { url: target, status: res.status, html: text, forms: parseForms(text) };
    }
    target = new URL(res.headers.get('location'), target);
    assert.equal(target.origin, new URL(gh.issuer).origin, `the device pages never leave Gatehouse (to ${target})`);
    next = { method: 'GET' };
  }
  throw new Error(`too many redirects from ${url}`);
}

/** The page's POST form to path; fails the test with the page's text when there is none. */
function formTo(page, path) {
  const form = page.forms.find((f) => f.method === 'post' && new URL(f.action, page.url).pathname === path);
  if (!form) {
    throw new UnexpectedPageError(`no form to ${path} (HTTP ${page.status}) at ${page.url}: ${pageSummary(page.html)}`, page);
  }
  return form;
}

/**
 * What the person does with the code the device shows: open the
 * verification URI (signing in first if the browser has no session), enter
 * the code, and press Approve or Deny. Resolves to the last page.
 */
async function decide(jar, da, action) {
  let page = await browse(jar, da.verification_uri);
  if (page.url.pathname === '/login') {
    const login = formTo(page, '/login');
    page = await browse(jar, new URL(login.action, page.url), { ...login.hidden, email: user.email, password: PASSWORD });
  }
  assert.equal(page.url.pathname, '/device', `after sign-in: ${pageSummary(page.html)}`);
  const entry = formTo(page, '/device');
  assert.ok(entry.fields.includes('user_code'), 'the code form asks for the code');
  page = await browse(jar, new URL(entry.action, page.url), { ...entry.hidden, user_code: da.user_code });
  assert.equal(page.status, 200, pageSummary(page.html));
  assert.match(page.html, /Living Room TV/, 'the confirmation names the device client');
  const confirm = formTo(page, '/device/decide');
  assert.deepEqual(confirm.buttons.map((b) => b.value), ['approve', 'deny']);
  return browse(jar, new URL(confirm.action, page.url), { ...confirm.hidden, action });
}

describe('openid-client: device authorization grant', () => {
  const jar = new CookieJar(); // one person's browser for both tests: the second reuses the session

  it('the device polls while the user approves in a browser, and gets tokens for that user', async () => {
    const da = await client.initiateDeviceAuthorization(config, { scope: 'openid email offline_access' });
    assert.match(da.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    assert.equal(da.verification_uri, `${gh.issuer}/device`);
    assert.equal(da.verification_uri_complete, `${gh.issuer}/device?user_code=${da.user_code}`);
    assert.equal(da.interval, 1);
    assert.ok(da.expires_in > 0 && da.expires_in <= 600, `expires_in ${da.expires_in}`);

    // The library waits and polls for real; the person acts meanwhile.
    const polling = client.pollDeviceAuthorizationGrant(config, da);
    const done = await decide(jar, da, 'approve');
    assert.equal(done.status, 200);
    assert.match(done.html, /You can go back to your device/, pageSummary(done.html));

    const tokens = await polling;
    const claims = tokens.claims();
    assert.equal(claims.sub, user.id);
    assert.equal(claims.email, 'dana@example.com');
    assert.equal(claims.email_verified, true);
    assert.equal(claims.role, 'BILLING');
    assert.equal(claims.sid, undefined, "the device's ID token does not name the browser's session");
    assert.ok(tokens.refresh_token, 'offline_access gives the device a refresh token');

    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.equal(info.email, 'dana@example.com');
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    assert.ok(refreshed.access_token);
  });

  it('a denied request makes the poll reject with access_denied', async () => {
    const da = await client.initiateDeviceAuthorization(config, { scope: 'openid' });
    const polling = client.pollDeviceAuthorizationGrant(config, da);
    // Observe the rejection from the start: the poll may settle before the
    // assertion below is reached.
    const refused = assert.rejects(polling, (err) => {
      assert.ok(err instanceof client.ResponseBodyError, `expected an OAuth error response, got ${err}`);
      assert.equal(err.error, 'access_denied');
      assert.equal(err.status, 400);
      return true;
    });
    const done = await decide(jar, da, 'deny');
    assert.equal(done.status, 200);
    assert.match(done.html, /not connected/, pageSummary(done.html));
    await refused;
  });
});
