// Interop proof in a real browser: the example Auth.js v5 app
// (examples/authjs-nextjs) and a plain openid-client app sign in through a real
// Gatehouse, driven by Debian's chromium through playwright-core.
//
// The walk: app → Sign in → Gatehouse sign-in page → Create account → back in
// the app (dashboard: email, role USER, email_verified false) → /admin refused
// → `gatehouse users set-role EMAIL ADMIN` → sign out (RP-initiated logout
// ends the Gatehouse session) → sign in again with the password form →
// /admin allowed → a second app (openid-client) signs in with no form (SSO)
// and sees the same user → sign out of the second app (RP-initiated logout) →
// Gatehouse sends the Next app a back-channel logout token, and the Next app's
// next page load is signed out → the second app's next sign-in asks for the
// password again. A second, short walk signs in through
// an upstream identity provider: app → Gatehouse → "Continue with Corp SSO" →
// node-oidc-provider's sign-in page → back in the app as a new, verified user.
// A screenshot of every step goes to e2e/artifacts/.
//
// Needs /usr/bin/chromium (apt-get install -y chromium); never a downloaded browser.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as oidc from 'openid-client';
import { chromium } from 'playwright-core';

import { settledDeliveries } from './lib/backchannel.mjs';
import { createClient, startGatehouse } from './lib/gatehouse.mjs';
import { freePort, prepareNextApp, startNextApp } from './lib/nextapp.mjs';
import { UPSTREAM_NAME, startUpstream } from './lib/upstream.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
const STEP_TIMEOUT_MS = 20_000;

const timings = {};
const started = performance.now();
const mark = (name, t0) => {
  timings[name] = Math.round(performance.now() - t0);
};

let gh;
let up;
let app;
let appClient;
let rp;
let browser;
let prepared;

// Everything started here is stopped in after(), whatever happened; the
// harnesses also kill their processes when this process exits.
after(async () => {
  await browser?.close().catch(() => {});
  await rp?.close();
  await app?.stop();
  await gh?.stop();
  await up?.stop();
  timings.total = Math.round(performance.now() - started);
  console.log(`browser walk timings (ms): ${JSON.stringify({ ...prepared, ...timings })}`);
});

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (never a downloaded browser)`);
  await mkdir(ARTIFACTS, { recursive: true });

  // The upstream identity provider (node-oidc-provider) listens first: its
  // issuer goes into Gatehouse's upstreams file. Its ID tokens carry email
  // and name here (conformIdTokenClaims false); upstream.test.mjs covers the
  // userinfo way.
  let t0 = performance.now();
  up = await startUpstream({ conformIdTokenClaims: false });
  const upstreamsFile = await up.writeUpstreamsFile();
  mark('startUpstream', t0);

  // npm ci + next build of the example (when stale) and the Gatehouse build run side by side.
  t0 = performance.now();
  const [prep, server] = await Promise.all([
    prepareNextApp({ log: (m) => console.log(`browser walk: ${m}`) }).finally(() => mark('prepareApp', t0)),
    startGatehouse({
      env: { GATEHOUSE_ISSUER: 'http://localhost:{port}', GATEHOUSE_UPSTREAMS_FILE: upstreamsFile },
    }).finally(() => mark('startGatehouse', t0)),
  ]);
  prepared = prep;
  gh = server;
  up.registerGatehouse(gh.issuer);

  t0 = performance.now();
  const appPort = await freePort();
  const appURL = `http://localhost:${appPort}`;
  appClient = await createClient(gh, [
    '--name', 'Auth.js example',
    '--redirect-uri', `${appURL}/api/auth/callback/gatehouse`,
    '--post-logout-redirect-uri', `${appURL}/`,
    '--backchannel-logout-uri', `${appURL}/api/backchannel-logout`,
    '--backchannel-logout-session-required',
  ]);
  app = await startNextApp({
    port: appPort,
    env: {
      GATEHOUSE_ISSUER: gh.issuer,
      GATEHOUSE_CLIENT_ID: appClient.client_id,
      GATEHOUSE_CLIENT_SECRET: appClient.client_secret,
      AUTH_SECRET: randomBytes(32).toString('base64url'),
      AUTH_URL: appURL,
      AUTH_TRUST_HOST: 'true',
    },
  });
  mark('startNextApp', t0);

  t0 = performance.now();
  rp = await startOpenIDClientApp(gh);
  mark('startOpenIDClientApp', t0);

  t0 = performance.now();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  mark('launchBrowser', t0);
});

test('Auth.js app and an openid-client app sign in through Gatehouse in a browser', { timeout: 300_000 }, async (t) => {
  const context = await browser.newContext({ viewport: { width: 1000, height: 760 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);

  const gatehouse = new URL(gh.issuer).origin;
  const onGatehouse = (path) => (u) => u.origin === gatehouse && u.pathname === path;
  const onApp = (path) => (u) => u.origin === app.url && u.pathname === path;
  const email = `ada.${randomBytes(4).toString('hex')}@example.com`;
  const password = `Interop-${randomBytes(6).toString('hex')}-Passw0rd`;
  const name = 'Ada Lovelace';

  const step = stepper(page, 'browser');
  const signInButton = () => page.getByRole('button', { name: 'Sign in' });
  const signOutButton = () => page.getByRole('button', { name: 'Sign out' });

  await step('app-signed-out', async () => {
    await page.goto(`${app.url}/`);
    await page.getByTestId('status').getByText('You are not signed in.').waitFor();
  });

  await step('gatehouse-sign-in-page', async () => {
    await signInButton().click();
    await page.waitForURL(onGatehouse('/login'));
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByText('to continue to Auth.js example').waitFor();
  });

  await step('gatehouse-create-account', async () => {
    await page.getByRole('link', { name: 'Create account' }).click();
    await page.waitForURL(onGatehouse('/register'));
    await page.getByLabel('Name').fill(name);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(password);
  });

  await step('app-dashboard-user', async () => {
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(onApp('/dashboard'));
    await assertText(page.getByTestId('email'), email);
    await assertText(page.getByTestId('name'), name);
    await assertText(page.getByTestId('role'), 'USER');
    await assertText(page.getByTestId('email-verified'), 'false'); // registered, link not opened yet
  });

  await step('app-admin-refused', async () => {
    await page.goto(`${app.url}/admin`);
    await page.waitForURL(onApp('/dashboard'));
    assert.equal(new URL(page.url()).searchParams.get('denied'), 'admin');
    await page.getByTestId('denied').waitFor();
  });

  await gh.cli(['users', 'set-role', email, 'ADMIN']);

  await step('app-signed-out-after-promotion', async () => {
    await signOutButton().click();
    // Out through Gatehouse's end_session (id_token_hint: no confirmation page) and back home.
    await page.waitForURL(onApp('/'));
    await page.getByTestId('status').getByText('You are not signed in.').waitFor();
  });

  await step('gatehouse-password-form-again', async () => {
    await signInButton().click();
    await page.waitForURL(onGatehouse('/login')); // the Gatehouse session ended: the form again
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(password);
  });

  await step('app-dashboard-admin', async () => {
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL(onApp('/dashboard'));
    await assertText(page.getByTestId('email'), email);
    await assertText(page.getByTestId('role'), 'ADMIN');
  });

  await step('app-admin-allowed', async () => {
    await page.goto(`${app.url}/admin`);
    await page.waitForURL(onApp('/admin'));
    await assertText(page.getByTestId('admin'), `Welcome, administrator ${email}.`);
  });

  // Single sign-on: a second app, same browser, no form. Every main-frame page
  // the browser shows is recorded; none may be Gatehouse's.
  const shown = [];
  const record = (frame) => {
    if (frame === page.mainFrame()) shown.push(frame.url());
  };
  page.on('framenavigated', record);
  await step('sso-second-app-signed-in', async () => {
    await page.goto(`${rp.url}/`);
    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.origin === rp.url && u.pathname === '/');
    await assertText(page.getByTestId('email'), email);
    await assertText(page.getByTestId('role'), 'ADMIN');
    const atGatehouse = shown.filter((u) => new URL(u).origin === gatehouse);
    assert.deepEqual(atGatehouse, [], 'SSO sign-in showed a Gatehouse page');
  });
  page.off('framenavigated', record);

  let sid; // the SSO session both apps are in
  await step('second-app-signed-out', async () => {
    await page.goto(`${app.url}/dashboard`); // the Next app is still signed in
    await assertText(page.getByTestId('email'), email);
    await page.goto(`${rp.url}/`);
    await signOutButton().click();
    // Through Gatehouse's end_session (id_token_hint) and back.
    await page.waitForURL((u) => u.origin === rp.url && u.pathname === '/');
    await page.getByRole('link', { name: 'Sign in' }).waitFor();
    sid = rp.signedOut.at(-1);
    assert.ok(sid, 'the second app knew its session');
  });

  await step('app-signed-out-by-backchannel-logout', async () => {
    // The Next app took no part in the sign-out. Gatehouse queued a logout
    // token for it; once the app has accepted it, its next page load is
    // signed out: the dashboard sends the browser home.
    const deliveries = await settledDeliveries(gh, appClient.client_id);
    const delivery = deliveries.find((d) => d.session_id === sid);
    assert.equal(delivery?.state, 'delivered', JSON.stringify(deliveries));
    assert.equal(delivery.last_status, 200);
    await page.goto(`${app.url}/dashboard`);
    await page.waitForURL(onApp('/'));
    await page.getByTestId('status').getByText('You are not signed in.').waitFor();
  });

  await step('sso-ended-second-app-asks-for-password', async () => {
    await page.goto(`${rp.url}/login`);
    await page.waitForURL(onGatehouse('/login'));
    await page.getByText('to continue to openid-client app').waitFor();
  });

  t.diagnostic(`screenshots: ${step.count()} in ${ARTIFACTS}`);
  await context.close();
});

test(`the Auth.js app signs a user in through Gatehouse and ${UPSTREAM_NAME} (node-oidc-provider)`, { timeout: 120_000 }, async (t) => {
  const context = await browser.newContext({ viewport: { width: 1000, height: 760 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  const step = stepper(page, 'upstream');
  const gatehouse = new URL(gh.issuer).origin;

  await step('gatehouse-sign-in-page', async () => {
    await page.goto(`${app.url}/`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.origin === gatehouse && u.pathname === '/login');
  });

  await step('upstream-sign-in-page', async () => {
    await page.getByRole('link', { name: `Continue with ${UPSTREAM_NAME}` }).click();
    await page.waitForURL((u) => u.origin === up.issuer && u.pathname.startsWith('/interaction/'));
    await page.getByLabel('Account').fill('alice');
  });

  await step('app-dashboard-upstream-user', async () => {
    await page.getByRole('button', { name: `Sign in to ${UPSTREAM_NAME}` }).click();
    // Back through Gatehouse's callback (a new account: verified by the
    // upstream) and the app's callback.
    await page.waitForURL((u) => u.origin === app.url && u.pathname === '/dashboard');
    await assertText(page.getByTestId('email'), 'alice@corp.example');
    await assertText(page.getByTestId('name'), 'Alice Corp');
    await assertText(page.getByTestId('role'), 'USER');
    await assertText(page.getByTestId('email-verified'), 'true');
  });

  const users = await gh.cli(['users', 'list', '--json']);
  const alice = users.find((u) => u.email === 'alice@corp.example');
  assert.deepEqual(alice?.linked_identities?.map((l) => l.upstream), ['corp']);
  assert.deepEqual(up.errors(), []);
  t.diagnostic(`screenshots: ${step.count()} in ${ARTIFACTS}`);
  await context.close();
});

/**
 * step(title, fn) runs one step of a walk: a screenshot after it (or on
 * failure, with the servers' logs in the error), its time in timings.
 */
function stepper(page, prefix) {
  let n = 0;
  const step = async (title, fn) => {
    const t0 = performance.now();
    try {
      await fn();
    } catch (err) {
      await page.screenshot({ path: join(ARTIFACTS, `${prefix}-failed-${title}.png`), fullPage: true }).catch(() => {});
      err.message = `step "${title}" at ${page.url()}: ${err.message}\n--- gatehouse log (tail)\n${gh.logs().slice(-4000)}\n--- next log (tail)\n${app.logs().slice(-4000)}`;
      throw err;
    }
    n++;
    const num = String(n).padStart(2, '0');
    await page.screenshot({ path: join(ARTIFACTS, `${prefix}-${num}-${title}.png`), fullPage: true });
    timings[`${prefix === 'browser' ? '' : `${prefix} `}step ${num} ${title}`] = Math.round(performance.now() - t0);
  };
  step.count = () => n;
  return step;
}

async function assertText(locator, expected) {
  await locator.waitFor();
  assert.equal((await locator.innerText()).trim(), expected);
}

// ---------------------------------------------------------------- a second app

/**
 * A relying party in a few lines of node: openid-client v6 against Gatehouse,
 * authorization code + PKCE, sessions in memory, on its own localhost port.
 * GET / shows the signed-in user (or a Sign in link), /login starts the flow,
 * /callback finishes it, POST /logout signs out here and at Gatehouse
 * (signedOut: the sids of the sessions it ended).
 */
async function startOpenIDClientApp(gatehouse) {
  const port = await freePort();
  const url = `http://localhost:${port}`;
  const redirectUri = `${url}/callback`;
  const client = await createClient(gatehouse, [
    '--name', 'openid-client app',
    '--redirect-uri', redirectUri,
    '--post-logout-redirect-uri', `${url}/`,
  ]);
  const config = await oidc.discovery(
    new URL(gatehouse.issuer),
    client.client_id,
    undefined,
    oidc.ClientSecretBasic(client.client_secret),
    { execute: [oidc.allowInsecureRequests] }, // http issuer on localhost
  );

  const sessions = new Map(); // cookie value → {pending?, user?, idToken?}
  const signedOut = []; // sids of the Gatehouse sessions this app ended
  const html = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`<!doctype html><html lang="en"><head><title>openid-client app</title></head><body>${body}</body></html>`);
  };
  const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

  const server = createServer(async (req, res) => {
    try {
      const reqURL = new URL(req.url, url);
      let sid = /(?:^|;\s*)rp_sid=([\w-]+)/.exec(req.headers.cookie ?? '')?.[1];
      if (!sid || !sessions.has(sid)) {
        sid = randomBytes(16).toString('base64url');
        sessions.set(sid, {});
        res.setHeader('set-cookie', `rp_sid=${sid}; Path=/; HttpOnly; SameSite=Lax`);
      }
      const session = sessions.get(sid);

      if (reqURL.pathname === '/') {
        if (!session.user) return html(res, 200, `<h1>openid-client app</h1><p><a href="/login">Sign in</a></p>`);
        const { email, role } = session.user;
        return html(
          res,
          200,
          `<h1>openid-client app</h1><p>Signed in as <span data-testid="email">${escape(email)}</span>` +
            ` (<span data-testid="role">${escape(role)}</span>)</p>` +
            `<form method="post" action="/logout"><button type="submit">Sign out</button></form>`,
        );
      }
      if (reqURL.pathname === '/login') {
        const pending = {
          verifier: oidc.randomPKCECodeVerifier(),
          state: oidc.randomState(),
          nonce: oidc.randomNonce(),
        };
        session.pending = pending;
        const target = oidc.buildAuthorizationUrl(config, {
          redirect_uri: redirectUri,
          scope: 'openid email profile',
          code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
          code_challenge_method: 'S256',
          state: pending.state,
          nonce: pending.nonce,
        });
        res.writeHead(302, { location: target.href });
        return res.end();
      }
      if (reqURL.pathname === '/callback') {
        const { pending } = session;
        if (!pending) return html(res, 400, '<h1>No sign-in in progress</h1>');
        delete session.pending;
        const tokens = await oidc.authorizationCodeGrant(config, reqURL, {
          pkceCodeVerifier: pending.verifier,
          expectedState: pending.state,
          expectedNonce: pending.nonce,
          idTokenExpected: true,
        });
        session.user = tokens.claims();
        session.idToken = tokens.id_token;
        res.writeHead(302, { location: '/' });
        return res.end();
      }
      if (reqURL.pathname === '/logout' && req.method === 'POST') {
        // Out of this app, then out of Gatehouse (RP-initiated logout).
        const { user, idToken } = session;
        delete session.user;
        delete session.idToken;
        if (!idToken) {
          res.writeHead(303, { location: '/' });
          return res.end();
        }
        signedOut.push(user.sid);
        const target = oidc.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: `${url}/` });
        res.writeHead(303, { location: target.href });
        return res.end();
      }
      html(res, 404, '<h1>Not found</h1>');
    } catch (err) {
      html(res, 500, `<h1>Sign-in failed</h1><pre data-testid="error">${escape(err.stack ?? err)}</pre>`);
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, 'localhost', resolve);
  });
  return {
    url,
    signedOut,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
