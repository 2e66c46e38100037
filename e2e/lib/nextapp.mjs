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

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { repoRoot } from './gatehouse.mjs';

export const appDir = join(repoRoot, 'examples', 'authjs-nextjs');

const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 5000;

// ---------------------------------------------------------------- processes

/** Process groups of every app this process started and has not stopped. */
const running = new Set();

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal); // the whole group: next start and any worker it forks
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

process.on('exit', () => {
  for (const child of running) killGroup(child, 'SIGKILL');
  running.clear();
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    for (const child of running) killGroup(child, 'SIGKILL');
    running.clear();
    process.kill(process.pid, sig);
  });
}

/** Runs a command to completion in its own process group; rejects with its output on failure. */
function run(cmd, args, { cwd, env, timeout }) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let output = '';
    const keep = (chunk) => {
      output += chunk;
      if (output.length > 400_000) output = output.slice(-200_000);
    };
    child.stdout.setEncoding('utf8').on('data', keep);
    child.stderr.setEncoding('utf8').on('data', keep);
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), timeout);
    child.once('error', (err) => {
      clearTimeout(timer);
      running.delete(child);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      if (code === 0) resolve(output);
      else reject(new Error(`${cmd} ${args.join(' ')} (in ${cwd}): ${signal ?? `exit ${code}`}\n${output.trim()}`));
    });
  });
}

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

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
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
      await run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: appDir, env, timeout: 600_000 });
      did.npmCiMs = Math.round(performance.now() - t0);
    }
    const buildId = join(appDir, '.next', 'BUILD_ID');
    const built = await mtime(buildId);
    if (!built || built < (await newestSource(appDir)) || built < (await mtime(installed))) {
      log('next build in examples/authjs-nextjs');
      const t0 = performance.now();
      await run(process.execPath, [join(appDir, 'node_modules', 'next', 'dist', 'bin', 'next'), 'build'], {
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

/** A free TCP port on 127.0.0.1 (localhost resolves there). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts `next start -H localhost -p port` on the built app with env added to
 * the environment, and waits until it answers. Returns {url, logs(), stop()}.
 */
export async function startNextApp({ port, env = {} }) {
  const url = `http://localhost:${port}`;
  const child = spawn(
    process.execPath,
    [join(appDir, 'node_modules', 'next', 'dist', 'bin', 'next'), 'start', '-H', 'localhost', '-p', String(port)],
    {
      cwd: appDir,
      env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1', NODE_ENV: 'production', ...env },
      detached: true, // own process group, killed as a whole
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  running.add(child);
  let output = '';
  const keep = (chunk) => {
    output += chunk;
    if (output.length > 400_000) output = output.slice(-200_000);
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      running.delete(child);
      resolve();
    });
    child.once('error', (err) => {
      exited = { err };
      running.delete(child);
      resolve();
    });
  });

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      killGroup(child, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), STOP_GRACE_MS);
      await exitPromise;
      clearTimeout(timer);
    }
    killGroup(child, 'SIGKILL'); // stragglers in the group, if any
  };

  // Ready when Auth.js answers (the route that every sign-in goes through).
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let ready = false;
  while (!exited && Date.now() < deadline) {
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
    await stop();
    const why = exited ? `exited (${exited.err?.message ?? exited.code ?? exited.signal})` : 'did not answer in time';
    throw new Error(`next start on ${url} ${why}\n${output.trim()}`);
  }
  return { url, port, logs: () => output, stop };
}
