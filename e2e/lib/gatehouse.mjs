// Test harness shared by the node e2e tests: builds Gatehouse, runs it on a
// loopback port with a throw-away data dir, drives its CLI, and walks its
// HTML sign-in form over plain HTTP the way a browser would.
//
//   const gh = await startGatehouse();          // inside a test file
//   after(() => gh.stop());
//   const client = await createClient(gh, ['--redirect-uri', 'http://127.0.0.1:9/cb']);
//   await createUser(gh, 'ada@example.com', 'Choose-a-Passw0rd');
//   const callback = await loginViaForm({ authorizationUrl, email, password });
//
// The binary is built once per test run (node --test runs each file in its
// own process; they share the build through a directory named after the
// runner's pid). GATEHOUSE_BIN=/path/to/gatehouse skips the build.

import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort, pidAlive, run, startProcess } from './process.mjs';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const BUILD_PREFIX = 'gatehouse-e2e-build-';
const HEALTH_TRIES = 300; // × 50 ms: 15 s for a cold start on a slow machine
const HEALTH_INTERVAL_MS = 50;
const OUTPUT_KEEP_CHARS = 200_000;

// ---------------------------------------------------------------- building

let binaryPromise;

/**
 * Path of a freshly built gatehouse binary. Built at most once per test run:
 * the first test file of the run builds into a directory named after the
 * test runner's pid, the others reuse it. Build directories of runs that have
 * ended are removed on the way.
 */
export function gatehouseBinary() {
  if (process.env.GATEHOUSE_BIN) return Promise.resolve(process.env.GATEHOUSE_BIN);
  binaryPromise ??= (async () => {
    const base = tmpdir();
    for (const name of await readdir(base)) {
      if (!name.startsWith(BUILD_PREFIX)) continue;
      const pid = Number(name.slice(BUILD_PREFIX.length));
      if (Number.isInteger(pid) && pid !== process.ppid && !pidAlive(pid)) {
        await rm(join(base, name), { recursive: true, force: true });
      }
    }
    // Under node --test (NODE_TEST_CONTEXT=child…) the files of one run share
    // their runner's pid; a file run on its own builds for itself and cleans up.
    const underRunner = (process.env.NODE_TEST_CONTEXT ?? '').startsWith('child');
    const owner = underRunner ? process.ppid : process.pid;
    const dir = join(base, BUILD_PREFIX + owner);
    if (!underRunner) process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    const bin = join(dir, 'gatehouse');
    if (existsSync(bin)) return bin;
    await mkdir(dir, { recursive: true });
    // Build to a private name and rename: concurrent test files never see a
    // half-written binary.
    const partial = `${bin}.${process.pid}.partial`;
    await run('go', ['build', '-o', partial, './cmd/gatehouse'], { cwd: repoRoot, env: process.env, timeout: 300_000 });
    await rename(partial, bin);
    return bin;
  })();
  return binaryPromise;
}

// ---------------------------------------------------------------- server

/**
 * Starts `gatehouse serve` on a free 127.0.0.1 port with a temporary data dir
 * and waits until /healthz answers.
 *
 * @param {object} [opts]
 * @param {Record<string,string>} [opts.env] extra or overriding environment
 *   (GATEHOUSE_ISSUER may contain the placeholder {port}, e.g.
 *   "http://localhost:{port}").
 * @returns {Promise<{issuer: string, port: number, dataDir: string,
 *   env: Record<string,string>, bin: string, logs: () => string,
 *   cli: (args: string[], opts?: {stdin?: string}) => Promise<any>,
 *   stop: () => Promise<void>}>}
 */
export async function startGatehouse({ env = {} } = {}) {
  const bin = await gatehouseBinary();
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(bin, env);
    } catch (err) {
      lastErr = err;
      if (!err.portInUse) throw err; // only a lost race for the port is retried
    }
  }
  throw lastErr;
}

async function startOnce(bin, extraEnv) {
  const port = await freePort();
  const ownDataDir = !extraEnv.GATEHOUSE_DATA_DIR;
  const dataDir = extraEnv.GATEHOUSE_DATA_DIR ?? (await mkdtemp(join(tmpdir(), 'gatehouse-e2e-data-')));
  const issuerTemplate = extraEnv.GATEHOUSE_ISSUER ?? 'http://127.0.0.1:{port}';
  const env = {
    ...process.env,
    GATEHOUSE_LOG_LEVEL: 'warn',
    GATEHOUSE_RATE_LOGIN_EMAIL: '1000/1m',
    GATEHOUSE_RATE_LOGIN_IP: '1000/1m',
    ...extraEnv,
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_ADDR: `127.0.0.1:${port}`,
    GATEHOUSE_ISSUER: issuerTemplate.replaceAll('{port}', String(port)),
  };
  // A DATABASE_URL in the developer's shell would point the test server at
  // their database; the harness wants a store of its own unless asked.
  if (!('DATABASE_URL' in extraEnv)) delete env.DATABASE_URL;
  const issuer = env.GATEHOUSE_ISSUER;

  const server = startProcess(bin, ['serve'], {
    env,
    // The server must not keep the test process alive: a test file that
    // forgot stop() still ends, and the exit hook kills the server.
    unref: true,
    keepChars: OUTPUT_KEEP_CHARS,
    cleanupSync: ownDataDir ? () => rmSync(dataDir, { recursive: true, force: true }) : undefined,
  });
  let stopping;
  const stop = () =>
    (stopping ??= (async () => {
      await server.stop();
      if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
    })());

  const healthz = `http://127.0.0.1:${port}/healthz`;
  let healthy = false;
  for (let i = 0; i < HEALTH_TRIES && !server.exited; i++) {
    try {
      const res = await fetch(healthz, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) {
        healthy = true;
        break;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, HEALTH_INTERVAL_MS));
  }
  if (!healthy) {
    await stop();
    const { exited } = server;
    const why = exited ? `exited (${exited.err?.message ?? exited.code ?? exited.signal})` : 'never answered /healthz';
    const output = server.output();
    const err = new Error(`gatehouse serve on 127.0.0.1:${port} ${why}\n${output.trim()}`);
    err.portInUse = /address already in use/i.test(output);
    throw err;
  }

  const cli = async (args, { stdin } = {}) => {
    // Always a pipe, ended empty when there is nothing to send: /dev/null is a
    // character device, which a CLI may take for a terminal.
    const { stdout } = await run(bin, args, { env, stdin: stdin ?? '', cwd: dataDir });
    return args.includes('--json') ? JSON.parse(stdout) : stdout;
  };

  return { issuer, port, dataDir, env, bin, logs: server.output, cli, stop };
}

// ---------------------------------------------------------------- CLI helpers

/**
 * Registers a client: `gatehouse clients create --json …args`.
 * @returns {Promise<{client_id: string, client_secret?: string, redirect_uris: string[]}>}
 */
export function createClient(gh, args = []) {
  const extra = args.includes('--name') ? [] : ['--name', 'e2e client'];
  return gh.cli(['clients', 'create', '--json', ...extra, ...args]);
}

/**
 * Creates a user: `gatehouse users create --json --password-stdin …args`.
 * @returns {Promise<{id: string, email: string, role: string, email_verified: boolean}>}
 */
export function createUser(gh, email, password, args = []) {
  const extra = args.includes('--name') ? [] : ['--name', 'E2E User'];
  return gh.cli(['users', 'create', '--json', '--password-stdin', '--email', email, ...extra, ...args], {
    stdin: `${password}\n`,
  });
}

// ---------------------------------------------------------------- a tiny browser

/** Cookies for one host, as a browser keeps them (name → value; paths ignored). */
export class CookieJar {
  #cookies = new Map();

  /** Stores the Set-Cookie headers of a response. */
  store(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let expired = value === '';
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=');
        const key = k.trim().toLowerCase();
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      if (expired) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  /** The Cookie request header, or undefined when the jar is empty. */
  header() {
    if (this.#cookies.size === 0) return undefined;
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  get(name) {
    return this.#cookies.get(name);
  }

  has(name) {
    return this.#cookies.has(name);
  }
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return String.fromCodePoint(cp);
    }
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

function attrs(tag) {
  const out = {};
  for (const m of tag.matchAll(/([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g)) {
    out[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

/**
 * The forms of an HTML page: [{method, action, hidden: {name: value}, fields: [names],
 * buttons: [{name, value}]}].
 */
export function parseForms(html) {
  const forms = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const a = attrs(m[1]);
    const form = { method: (a.method ?? 'get').toLowerCase(), action: a.action ?? '', hidden: {}, fields: [], buttons: [] };
    for (const input of m[2].matchAll(/<(input|button)\b([^>]*)>/gi)) {
      const ia = attrs(input[2]);
      if (input[1].toLowerCase() === 'button') {
        if (ia.name) form.buttons.push({ name: ia.name, value: ia.value ?? '' });
      } else if ((ia.type ?? 'text').toLowerCase() === 'hidden') {
        if (ia.name) form.hidden[ia.name] = ia.value ?? '';
      } else if (ia.name) {
        form.fields.push(ia.name);
      }
    }
    forms.push(form);
  }
  return forms;
}

/** The links of an HTML page: [{id, href, text}]. */
export function parseLinks(html) {
  const links = [];
  for (const m of html.matchAll(/<a\b([^>]*)>([\s\S]*?)<\/a>/gi)) {
    const a = attrs(m[1]);
    if (a.href === undefined) continue;
    links.push({ id: a.id ?? '', href: a.href, text: decodeEntities(m[2].replace(/<[^>]+>/g, ' ')).replace(/\s+/g, ' ').trim() });
  }
  return links;
}

/** The text of the element with this id (tags removed, entities decoded), or undefined. */
export function textById(html, id) {
  const re = new RegExp(`<([a-z][a-z0-9]*)\\b[^>]*\\bid="${id}"[^>]*>([\\s\\S]*?)</\\1>`, 'i');
  const m = html.match(re);
  return m ? decodeEntities(m[2].replace(/<[^>]+>/g, ' ')).trim() : undefined;
}

/** The visible text of a page's title, h1 and alerts, for error messages. */
export function pageSummary(html) {
  const pick = (re) => decodeEntities((html.match(re)?.[1] ?? '').replace(/<[^>]+>/g, ' ')).replace(/\s+/g, ' ').trim();
  const parts = [
    pick(/<h1[^>]*>([\s\S]*?)<\/h1>/i),
    pick(/<[^>]+role="alert"[^>]*>([\s\S]*?)<\/(?:p|div|section)>/i),
    pick(/<\/h1>[\s\S]*?<p[^>]*>([\s\S]*?)<\/p>/i),
  ];
  return [...new Set(parts.filter(Boolean))].join(' | ') || html.slice(0, 200);
}

/** A page the walk did not expect. */
export class UnexpectedPageError extends Error {
  constructor(message, { url, status, html }) {
    super(message);
    this.url = url;
    this.status = status;
    this.html = html;
  }
}

/**
 * One browser request without following redirects: sends jar's cookies,
 * stores the ones set, and for a form post (body) the Origin header a
 * browser sends (origin). Resolves to {res, text}.
 */
export async function browserRequest(url, { jar, method = 'GET', body, origin }) {
  const headers = { accept: 'text/html,application/xhtml+xml', 'user-agent': 'gatehouse-e2e' };
  const cookie = jar.header();
  if (cookie) headers.cookie = cookie;
  if (body) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    // What a browser sends with a same-origin form post; Gatehouse checks it
    // (cross-origin protection) next to the CSRF token.
    headers.origin = origin;
  }
  const res = await fetch(url, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(15_000) });
  jar.store(res);
  const text = await res.text();
  return { res, text };
}

const MAX_STEPS = 25;

/**
 * Follows a browser navigation that starts at url through Gatehouse:
 * redirects are followed while they stay on Gatehouse's origin, and pages
 * are handed to onPage, which may answer with a form submission
 * ({action, fields}), a link to follow ({href}) or throw. Returns the first
 * URL outside Gatehouse (the client's redirect_uri or
 * post_logout_redirect_uri) as a URL.
 */
async function walk(start, { jar, stopAt, onPage }) {
  let url = new URL(start);
  const gatehouseOrigin = url.origin;
  const leaves = (u) => (stopAt ? u.href.startsWith(stopAt) : u.origin !== gatehouseOrigin);
  let next = { method: 'GET' };
  for (let step = 0; step < MAX_STEPS; step++) {
    const { res, text } = await browserRequest(url, { jar, ...next, origin: gatehouseOrigin });
    if (res.status >= 300 && res.status < 400) {
      const location = res.headers.get('location');
      if (!location) throw new UnexpectedPageError(`${res.status} without Location at ${url}`, { url, status: res.status, html: text });
      const target = new URL(location, url);
      if (leaves(target)) return target;
      url = target;
      next = { method: 'GET' };
      continue;
    }
    const answer = await onPage({ url, status: res.status, html: text, forms: parseForms(text) });
    if (answer.href !== undefined) {
      // A link the user follows: a plain navigation, which may leave too.
      const target = new URL(answer.href, url);
      if (leaves(target)) return target;
      url = target;
      next = { method: 'GET' };
      continue;
    }
    url = new URL(answer.action, url);
    next = { method: 'POST', body: new URLSearchParams(answer.fields).toString() };
  }
  throw new Error(`no redirect out of Gatehouse after ${MAX_STEPS} steps (last: ${url})`);
}

/**
 * Signs in through Gatehouse's real HTML form over HTTP and returns the
 * callback URL Gatehouse redirects to (a URL with code, state and iss).
 *
 * Pass the same cookieJar again for single sign-on: with a live session the
 * authorization request goes straight to the callback and no form is needed.
 * A consent page, if shown, is allowed (or denied with consent: 'deny').
 *
 * Second factors: the second-factor page is answered with a code from
 * authenticator (lib/totp.mjs), or with recoveryCode when given. When the
 * user has no factor and one is asked for, the walk enrols the authenticator
 * app ("Use an authenticator app" on the setup page, the key shown for
 * manual entry, a code), keeps the recovery codes shown once (pushed onto
 * recoveryCodes) and continues with "I have saved them". Any of these
 * pages without the means to answer it fails the walk.
 *
 * @param {object} opts
 * @param {URL|string} opts.authorizationUrl the client's authorization request
 * @param {string|null} [opts.email]
 * @param {string|null} [opts.password] null (or undefined): the sign-in form must not be shown
 * @param {CookieJar} [opts.cookieJar] the browser's cookies (a new jar if omitted)
 * @param {string} [opts.redirectUri] stop at URLs starting with this (default: the first URL off Gatehouse's origin)
 * @param {'allow'|'deny'} [opts.consent]
 * @param {{enrolled: boolean, enrol: (secret: string) => void, code: () => string}} [opts.authenticator]
 * @param {string} [opts.recoveryCode] answers the second-factor page with this recovery code
 * @param {string[]} [opts.recoveryCodes] receives the recovery codes shown at enrolment
 * @param {{login: number, consent: number, factor: number, setup: number, totp: number, recovery: number}} [opts.stats]
 *   counts the pages answered
 * @returns {Promise<URL>}
 */
export async function loginViaForm({
  authorizationUrl,
  email,
  password,
  cookieJar,
  redirectUri,
  consent = 'allow',
  authenticator,
  recoveryCode,
  recoveryCodes,
  stats,
}) {
  const jar = cookieJar ?? new CookieJar();
  const seen = { login: 0, consent: 0, factor: 0, setup: 0, totp: 0, recovery: 0 };
  const postForm = (forms, action, pred = () => true) =>
    forms.find((f) => f.method === 'post' && new URL(f.action, 'http://x').pathname === action && pred(f));
  try {
    return await walk(authorizationUrl, {
      jar,
      stopAt: redirectUri,
      onPage: ({ url, status, html, forms }) => {
        const unexpected = (why) =>
          new UnexpectedPageError(`${why} (HTTP ${status}) at ${url}: ${pageSummary(html)}`, { url, status, html });
        const once = (kind) => {
          if (seen[kind] > 0 || status !== 200) throw unexpected(`${kind} page refused the answer or came twice`);
          seen[kind]++;
        };
        const login = forms.find((f) => f.method === 'post' && f.fields.includes('password') && f.fields.includes('email'));
        const consentForm = forms.find((f) => f.method === 'post' && f.buttons.some((b) => b.name === 'action' && b.value === consent));
        if (login) {
          if (seen.login > 0 || status !== 200) {
            throw new UnexpectedPageError(`sign-in refused (HTTP ${status}): ${pageSummary(html)}`, { url, status, html });
          }
          if (email == null || password == null) {
            throw new UnexpectedPageError(`Gatehouse asked for a password but none was given, at ${url} after ${JSON.stringify(seen)}`, {
              url,
              status,
              html,
            });
          }
          seen.login++;
          return { action: login.action, fields: { ...login.hidden, email, password } };
        }
        if (status === 200 && consentForm) {
          if (seen.consent > 0) throw new UnexpectedPageError(`consent page shown twice: ${pageSummary(html)}`, { url, status, html });
          seen.consent++;
          return { action: consentForm.action, fields: { ...consentForm.hidden, action: consent } };
        }
        // The second-factor page: a code form (method=totp) and/or a recovery code form.
        const totpForm = postForm(forms, '/login/factor', (f) => f.hidden.method === 'totp' && f.fields.includes('code'));
        const recoveryForm = postForm(forms, '/login/factor', (f) => f.hidden.method === 'recovery' && f.fields.includes('code'));
        if (totpForm || recoveryForm) {
          once('factor');
          if (recoveryCode !== undefined) {
            if (!recoveryForm) throw unexpected('no recovery code form');
            return { action: recoveryForm.action, fields: { ...recoveryForm.hidden, code: recoveryCode } };
          }
          if (!totpForm || !authenticator?.enrolled) throw unexpected('Gatehouse asked for a second factor the walk cannot give');
          return { action: totpForm.action, fields: { ...totpForm.hidden, code: authenticator.code() } };
        }
        // Enrolment: the setup page, the authenticator app page, the recovery codes.
        const setupTOTP = parseLinks(html).find((l) => l.id === 'setup-totp');
        if (setupTOTP) {
          once('setup');
          if (!authenticator) throw unexpected('Gatehouse asked to set up a second factor but no authenticator was given');
          return { href: setupTOTP.href };
        }
        const secret = textById(html, 'totp-secret');
        const enrolForm = postForm(forms, '/account/totp', (f) => f.fields.includes('code'));
        if (secret !== undefined && enrolForm) {
          once('totp');
          if (!authenticator) throw unexpected('Gatehouse asked to enrol an authenticator app but none was given');
          authenticator.enrol(secret);
          return { action: enrolForm.action, fields: { ...enrolForm.hidden, code: authenticator.code() } };
        }
        const saved = parseLinks(html).find((l) => l.id === 'codes-saved');
        if (saved) {
          once('recovery');
          const list = html.match(/<ol\b[^>]*\bid="recovery-codes"[^>]*>([\s\S]*?)<\/ol>/i)?.[1] ?? '';
          const codes = [...list.matchAll(/<code>([^<]*)<\/code>/g)].map((m) => decodeEntities(m[1]));
          if (codes.length === 0) throw unexpected('recovery codes page without codes');
          recoveryCodes?.push(...codes);
          return { href: saved.href };
        }
        throw unexpected('unexpected page');
      },
    });
  } finally {
    if (stats) Object.assign(stats, seen);
  }
}

/**
 * Follows a navigation through Gatehouse that must not show any page (an SSO
 * authorization, an end_session request with a valid id_token_hint) and
 * returns the URL it leaves Gatehouse for.
 */
export function followRedirects(url, { cookieJar, redirectUri } = {}) {
  return walk(url, {
    jar: cookieJar ?? new CookieJar(),
    stopAt: redirectUri,
    onPage: ({ url: at, status, html }) => {
      throw new UnexpectedPageError(`expected only redirects, got a page (HTTP ${status}) at ${at}: ${pageSummary(html)}`, {
        url: at,
        status,
        html,
      });
    },
  });
}

/**
 * Follows an end_session request without an id_token_hint: Gatehouse shows
 * its sign-out page, the walk confirms it once, and returns the URL Gatehouse
 * then leaves for (the post_logout_redirect_uri, with state).
 */
export function signOutViaForm(url, { cookieJar, redirectUri } = {}) {
  let confirmed = false;
  return walk(url, {
    jar: cookieJar ?? new CookieJar(),
    stopAt: redirectUri,
    onPage: ({ url: at, status, html, forms }) => {
      const form = forms.find((f) => f.method === 'post' && new URL(f.action, at).pathname === '/logout');
      if (!form || confirmed || status !== 200) {
        throw new UnexpectedPageError(`expected the sign-out page once, got (HTTP ${status}) at ${at}: ${pageSummary(html)}`, {
          url: at,
          status,
          html,
        });
      }
      confirmed = true;
      return { action: form.action, fields: form.hidden };
    },
  });
}

/** base64url of the left half of SHA-256(token): the at_hash of an RS256/ES256 ID token. */
export async function atHash(token) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token)));
  return Buffer.from(digest.slice(0, 16)).toString('base64url');
}
