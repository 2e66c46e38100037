// Prepares and runs the example Next.js app (examples/authjs-nextjs) for the
// browser test:
//
//   await prepareNextApp();                       // npm ci + next build, only when stale
//   const app = await startNextApp({ port, env }); // next start -H localhost -p port
//   after(() => app.stop());
//
// `npm ci` runs when node_modules is missing or older than package-lock.json;
// `next build` runs when .next/BUILD_ID is missing or older than any source
// file. Both run under a lock (a directory in the OS temp dir holding the
// owner's pid), so two test runs in one checkout do not build over each other.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { repoRoot } from './gatehouse.mjs';
import { pidAlive, run, startProcess } from './process.mjs';

export { freePort } from './process.mjs'; // browser.test.mjs picks the app's port with it

export const appDir = join(repoRoot, 'examples', 'authjs-nextjs');

const READY_TIMEOUT_MS = 60_000;
const OUTPUT_KEEP_CHARS = 400_000;

// npm and next fork workers: each command runs in its own process group and
// is killed as a whole.
const runGrouped = (cmd, args, opts) => run(cmd, args, { group: true, keepChars: OUTPUT_KEEP_CHARS, ...opts });

// ---------------------------------------------------------------- preparing

async function mtime(path) {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return 0;
  }
}

/** Newest mtime of the app's sources (what next build reads), node_modules excluded. */
async function newestSource(dir) {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const name = entry.name;
    if (name === 'node_modules' || name === '.next' || name === 'next-env.d.ts' || name.endsWith('.md')) continue;
    const path = join(dir, name);
    if (entry.isDirectory()) newest = Math.max(newest, await newestSource(path));
    else newest = Math.max(newest, await mtime(path));
  }
  return newest;
}

async function withLock(name, fn) {
  const lock = join(tmpdir(), `gatehouse-e2e-${createHash('sha256').update(name).digest('hex').slice(0, 12)}.lock`);
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(join(lock, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      const pid = Number(await readFile(join(lock, 'pid'), 'utf8').catch(() => ''));
      if (pid && !pidAlive(pid)) {
        await rm(lock, { recursive: true, force: true }); // its owner died
        continue;
      }
      if (Date.now() > deadline) throw new Error(`lock ${lock} held by pid ${pid || '?'} for too long`);
      await new Promise((r) => setTimeout(r, 250)); // another test run is building
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/**
 * Installs the example app's dependencies (`npm ci`) and builds it
 * (`next build`), each only when stale. Returns what it did, with timings.
 */
export async function prepareNextApp({ log = () => {} } = {}) {
  return withLock(appDir, async () => {
    const did = { npmCiMs: 0, buildMs: 0 };
    const env = { ...process.env, NEXT_TELEMETRY_DISABLED: '1' };
    const installed = join(appDir, 'node_modules', '.package-lock.json');
    if (!existsSync(installed) || (await mtime(installed)) < (await mtime(join(appDir, 'package-lock.json')))) {
      log('npm ci in examples/authjs-nextjs');
      const t0 = performance.now();
      await runGrouped('npm', ['ci', '--no-audit', '--no-fund'], { cwd: appDir, env, timeout: 600_000 });
      did.npmCiMs = Math.round(performance.now() - t0);
    }
    const buildId = join(appDir, '.next', 'BUILD_ID');
    const built = await mtime(buildId);
    if (!built || built < (await newestSource(appDir)) || built < (await mtime(installed))) {
      log('next build in examples/authjs-nextjs');
      const t0 = performance.now();
      await runGrouped(process.execPath, [join(appDir, 'node_modules', 'next', 'dist', 'bin', 'next'), 'build'], {
        cwd: appDir,
        env: { ...env, NODE_ENV: 'production' },
        timeout: 600_000,
      });
      did.buildMs = Math.round(performance.now() - t0);
    }
    return did;
  });
}

// ---------------------------------------------------------------- running

/**
 * Starts `next start -H localhost -p port` on the built app with env added to
 * the environment, and waits until it answers. Returns {url, logs(), stop()}.
 */
export async function startNextApp({ port, env = {} }) {
  const url = `http://localhost:${port}`;
  const app = startProcess(
    process.execPath,
    [join(appDir, 'node_modules', 'next', 'dist', 'bin', 'next'), 'start', '-H', 'localhost', '-p', String(port)],
    {
      cwd: appDir,
      env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1', NODE_ENV: 'production', ...env },
      group: true, // next start and any worker it forks, killed as a whole
      keepChars: OUTPUT_KEEP_CHARS,
    },
  );

  // Ready when Auth.js answers (the route that every sign-in goes through).
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let ready = false;
  while (!app.exited && Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/api/auth/providers`, { signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      if (res.ok) {
        ready = true;
        break;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!ready) {
    await app.stop();
    const { exited } = app;
    const why = exited ? `exited (${exited.err?.message ?? exited.code ?? exited.signal})` : 'did not answer in time';
    throw new Error(`next start on ${url} ${why}\n${app.output().trim()}`);
  }
  return { url, port, logs: app.output, stop: () => app.stop() };
}
