// A real upstream identity provider for the e2e tests: node-oidc-provider
// (panva, OpenID Certified) on a loopback port, with one client for
// Gatehouse, a small table of accounts and a minimal sign-in page of its own
// (an account id, no password; a Cancel button that answers access_denied).
//
//   const up = await startUpstream();                        // listening, issuer known
//   const gh = await startGatehouse({ env: { GATEHOUSE_UPSTREAMS_FILE: await up.writeUpstreamsFile() } });
//   up.registerGatehouse(gh.issuer);                         // the client, with Gatehouse's callback
//   const callback = await up.signIn(upstreamAuthorizationUrl, { jar, account: 'alice' });
//   after(() => up.stop());
//
// The issuer must be in Gatehouse's upstreams file before Gatehouse starts,
// and Gatehouse's callback (on a port the harness picks) must be the client's
// redirect URI: so the server listens first and the provider itself is made
// by registerGatehouse. Gatehouse reads the upstream's discovery document on
// first use, after that.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import Provider from 'oidc-provider';

import { UnexpectedPageError, browserRequest, pageSummary, parseForms } from './gatehouse.mjs';

export const UPSTREAM_ID = 'corp';
export const UPSTREAM_NAME = 'Corp SSO';
const CLIENT_ID = 'gatehouse';
const MAX_STEPS = 15;
const MAX_FORM_BYTES = 16 << 10;

/**
 * The upstream's accounts (account id → claims). Tests add their own through
 * startUpstream({ accounts }).
 */
export const DEFAULT_ACCOUNTS = {
  alice: { email: 'alice@corp.example', email_verified: true, name: 'Alice Corp' },
  bob: { email: 'bob@corp.example', email_verified: true, name: 'Bob Corp' },
};

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res, status, title, body) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // Nothing from elsewhere: the page must render with no internet.
    // No form-action: it would also govern the redirect back to Gatehouse.
    'content-security-policy': "default-src 'none'",
  });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title></head>` +
    `<body><h1>${escape(title)}</h1>${body}</body></html>`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > MAX_FORM_BYTES) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

/**
 * Starts listening on 127.0.0.1 (a free port) and returns the upstream; it
 * answers 503 until registerGatehouse() has made the provider.
 *
 * @param {object} [opts]
 * @param {Record<string, {email?: string, email_verified?: boolean, name?: string}>} [opts.accounts]
 *   accounts in addition to DEFAULT_ACCOUNTS
 * @param {boolean} [opts.conformIdTokenClaims] oidc-provider's switch (default true: the
 *   code flow's ID token carries only sub and the protocol claims, email and name come
 *   from userinfo — which exercises Gatehouse's userinfo fallback). false puts them in the ID token.
 */
export async function startUpstream({ accounts = {}, conformIdTokenClaims = true } = {}) {
  const table = { ...DEFAULT_ACCOUNTS, ...accounts };
  const clientSecret = randomBytes(24).toString('base64url');
  const errors = []; // server errors oidc-provider reported, for failure messages
  let provider;
  let providerCallback;
  let tmpDir;

  const server = createServer(async (req, res) => {
    try {
      if (!providerCallback) return page(res, 503, 'Not ready', '<p>registerGatehouse() has not been called.</p>');
      const m = /^\/interaction\/([\w-]+)(\/login|\/abort)?$/.exec(new URL(req.url, 'http://x').pathname);
      if (m) return await interaction(req, res, m[1], m[2]);
      return providerCallback(req, res);
    } catch (err) {
      errors.push(err);
      if (!res.headersSent) page(res, 500, 'Error', `<pre>${escape(err.message)}</pre>`);
      else res.destroy();
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  // The sign-in page: any account of the table by its id. oidc-provider
  // checks the interaction cookie (bound to this browser) in
  // interactionDetails and interactionFinished.
  async function interaction(req, res, uid, action) {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) return page(res, 400, 'Wrong interaction', '<p>This page belongs to another sign-in.</p>');
    if (req.method === 'GET' && !action) {
      if (details.prompt.name !== 'login') {
        // loadExistingGrant grants Gatehouse's scopes, so consent never comes up.
        return page(res, 501, 'Not implemented', `<p>prompt ${escape(details.prompt.name)}</p>`);
      }
      return page(
        res,
        200,
        UPSTREAM_NAME,
        `<p>Sign in to continue to Gatehouse.</p>` +
          `<form method="post" action="/interaction/${escape(uid)}/login">` +
          `<label>Account <input type="text" name="login" autocomplete="off" required autofocus></label>` +
          `<button type="submit">Sign in to ${escape(UPSTREAM_NAME)}</button></form>` +
          `<form method="post" action="/interaction/${escape(uid)}/abort"><button type="submit">Cancel</button></form>`,
      );
    }
    if (req.method !== 'POST' || !action) return page(res, 405, 'Method not allowed', '');
    if (action === '/abort') {
      return provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'End-User aborted interaction' },
        { mergeWithLastSubmission: false },
      );
    }
    const login = (await readForm(req)).get('login') ?? '';
    if (!Object.hasOwn(table, login)) {
      return page(res, 200, UPSTREAM_NAME, `<p role="alert">No account ${escape(login)}.</p>`);
    }
    // amr: what Gatehouse is expected to pass on after its own "fed".
    return provider.interactionFinished(req, res, { login: { accountId: login, amr: ['pwd'] } }, { mergeWithLastSubmission: false });
  }

  /** Makes the provider with Gatehouse as its one client (redirect URI under gatehouseIssuer). */
  function registerGatehouse(gatehouseIssuer) {
    if (provider) throw new Error('registerGatehouse called twice');
    const redirectUri = `${gatehouseIssuer.replace(/\/$/, '')}/upstream/${UPSTREAM_ID}/callback`;
    const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
    provider = new Provider(issuer, {
      clients: [
        {
          client_id: CLIENT_ID,
          client_secret: clientSecret,
          client_name: 'Gatehouse',
          redirect_uris: [redirectUri],
          grant_types: ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
      jwks: { keys: [{ ...jwk, kid: 'upstream-1', use: 'sig', alg: 'RS256' }] },
      cookies: { keys: [randomBytes(32).toString('base64url')] },
      pkce: { methods: ['S256'], required: () => true },
      // oidc-provider's defaults (acr, auth_time, iss, sid: only on request)
      // plus amr in every ID token, as many real providers send it: it is
      // what Gatehouse passes on after its own "fed".
      claims: {
        acr: null,
        auth_time: null,
        iss: null,
        sid: null,
        openid: ['sub', 'amr'],
        email: ['email', 'email_verified'],
        profile: ['name'],
      },
      conformIdTokenClaims,
      // Short lives, said explicitly (the defaults log a notice each).
      ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 3600, IdToken: 600, Interaction: 600, Session: 3600 },
      features: { devInteractions: { enabled: false } },
      interactions: { url: (ctx, i) => `/interaction/${i.uid}` },
      // Gatehouse is this provider's own first-party client: grant what it
      // asks for without a consent page (oidc-provider's documented recipe).
      async loadExistingGrant(ctx) {
        const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
        if (grantId) return ctx.oidc.provider.Grant.find(grantId);
        const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
        grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(' '));
        await grant.save();
        return grant;
      },
      async findAccount(ctx, sub) {
        if (!Object.hasOwn(table, sub)) return undefined;
        return { accountId: sub, claims: async () => ({ sub, ...table[sub] }) };
      },
      async renderError(ctx, out) {
        ctx.type = 'html';
        ctx.body = `<!doctype html><html lang="en"><head><title>Upstream error</title></head><body><h1>Upstream error</h1>` +
          `<p role="alert">${escape(out.error)}: ${escape(out.error_description ?? '')}</p></body></html>`;
      },
    });
    provider.on('server_error', (ctx, err) => errors.push(err));
    providerCallback = provider.callback();
    return { redirectUri };
  }

  /** The entry of Gatehouse's upstreams file for this provider. */
  const upstreamConfig = () => ({
    id: UPSTREAM_ID,
    type: 'oidc',
    name: UPSTREAM_NAME,
    issuer,
    client_id: CLIENT_ID,
    client_secret: clientSecret,
    scopes: ['openid', 'email', 'profile'],
  });

  /** Writes {"upstreams":[…]} to a temporary file (removed by stop()) and returns its path. */
  async function writeUpstreamsFile() {
    if (!tmpDir) {
      tmpDir = await mkdtemp(join(tmpdir(), 'gatehouse-e2e-upstream-'));
      const dir = tmpDir;
      process.once('exit', () => rmSync(dir, { recursive: true, force: true })); // a test that forgot stop()
    }
    const path = join(tmpDir, 'upstreams.json');
    await writeFile(path, JSON.stringify({ upstreams: [upstreamConfig()] }, null, 2), { mode: 0o600 });
    return path;
  }

  /**
   * Drives a browser through the upstream from its authorization URL: follows
   * redirects on the upstream's origin, signs in as account on the sign-in
   * page (or presses Cancel with abort), and returns the first URL off the
   * upstream's origin — Gatehouse's callback — without fetching it.
   * With a live upstream session in jar no page is shown (stats.prompted 0).
   *
   * @param {URL|string} authorizationUrl
   * @param {{jar: import('./gatehouse.mjs').CookieJar, account?: string, abort?: boolean,
   *   stats?: {prompted: number}}} opts
   * @returns {Promise<URL>}
   */
  async function signIn(authorizationUrl, { jar, account, abort = false, stats = {} }) {
    let url = new URL(authorizationUrl);
    if (url.origin !== issuer) throw new Error(`${url} is not at the upstream ${issuer}`);
    let next = { method: 'GET' };
    stats.prompted = 0;
    for (let step = 0; step < MAX_STEPS; step++) {
      const { res, text } = await browserRequest(url, { jar, origin: issuer, ...next });
      if (res.status >= 300 && res.status < 400) {
        const target = new URL(res.headers.get('location'), url);
        if (target.origin !== issuer) return target;
        url = target;
        next = { method: 'GET' };
        continue;
      }
      const forms = parseForms(text);
      const login = forms.find((f) => f.action.endsWith('/login') && f.fields.includes('login'));
      const cancel = forms.find((f) => f.action.endsWith('/abort'));
      if (res.status !== 200 || !login || stats.prompted > 0) {
        throw new UnexpectedPageError(`upstream: unexpected page (HTTP ${res.status}) at ${url}: ${pageSummary(text)}${errorsText()}`, {
          url,
          status: res.status,
          html: text,
        });
      }
      stats.prompted++;
      const form = abort ? cancel : login;
      url = new URL(form.action, url);
      next = { method: 'POST', body: new URLSearchParams(abort ? {} : { login: account }).toString() };
    }
    throw new Error(`upstream: no redirect off ${issuer} after ${MAX_STEPS} steps (last: ${url})`);
  }

  const errorsText = () => (errors.length ? `\nupstream errors: ${errors.map((e) => e.stack ?? e).join('\n')}` : '');

  let stopping;
  const stop = () =>
    (stopping ??= (async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(() => resolve()));
      if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
    })());

  return {
    issuer,
    clientId: CLIENT_ID,
    clientSecret,
    upstreamConfig,
    writeUpstreamsFile,
    registerGatehouse,
    signIn,
    errors: () => errors,
    stop,
  };
}
