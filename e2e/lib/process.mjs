// Child processes for the e2e harness (lib/gatehouse.mjs, lib/nextapp.mjs):
// start them, keep the tail of their output, stop them politely, and make
// sure none outlives the test process whatever way it ends.
//
//   const proc = startProcess(cmd, args, { env, group: true });
//   proc.output(); proc.exited; await proc.stop();
//   const { stdout } = await run(cmd, args, { cwd, stdin, timeout });

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';

const STOP_GRACE_MS = 5000;
const DEFAULT_KEEP_CHARS = 200_000;
const PIPE_DRAIN_MS = 1000;

// ---------------------------------------------------------------- exit hooks

/** Every process started here that has not exited yet. */
const running = new Set();

function killAllSync() {
  for (const proc of running) {
    proc.kill('SIGKILL');
    proc.cleanupSync?.();
  }
  running.clear();
}

// Last line of defence: whatever happens to the test process (a test that
// forgot stop(), an uncaught error, Ctrl-C, the runner's timeout signal), no
// child outlives it. Installed once, here, for every child of every module.
process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    killAllSync();
    process.kill(process.pid, sig); // our listener is gone: die of the signal as usual
  });
}

// ---------------------------------------------------------------- small helpers

/** Whether a process with this pid exists (EPERM: it does, owned by someone else). */
export function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

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

// ---------------------------------------------------------------- supervised processes

/**
 * Spawns cmd and supervises it until it exits.
 *
 * @param {string} cmd
 * @param {string[]} args
 * @param {object} [opts]
 * @param {string} [opts.cwd]
 * @param {Record<string,string>} [opts.env]
 * @param {string} [opts.stdin] written to the child's stdin, then closed; without it stdin is /dev/null
 * @param {boolean} [opts.group] start it in its own process group and signal the whole
 *   group, so that workers it forks go with it
 * @param {boolean} [opts.unref] do not let it keep the test process alive (a test file
 *   that forgot stop() still ends; the exit hook kills the child)
 * @param {number} [opts.keepChars] output() keeps between keepChars/2 and keepChars of
 *   the latest stdout+stderr
 * @param {() => void} [opts.cleanupSync] run by the exit hook after killing the child
 *   if it is still running then (e.g. remove its temporary directory)
 * @returns {{child: import('node:child_process').ChildProcess, output: () => string,
 *   readonly exited: null | {code: number|null, signal: string|null, err?: Error},
 *   exitPromise: Promise<void>, kill: (signal: string) => void,
 *   stop: (graceMs?: number) => Promise<void>}}
 */
export function startProcess(cmd, args, { cwd, env, stdin, group = false, unref = false, keepChars = DEFAULT_KEEP_CHARS, cleanupSync } = {}) {
  const child = spawn(cmd, args, {
    cwd,
    env,
    detached: group, // detached = leader of a new process group
    stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });

  const kill = (signal) => {
    if (group && child.pid) {
      try {
        process.kill(-child.pid, signal);
        return;
      } catch {
        // no such group (any more): fall back to the child itself
      }
    }
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  };

  let output = '';
  let exited = null;
  const proc = {
    child,
    kill,
    cleanupSync,
    output: () => output,
    get exited() {
      return exited;
    },
  };
  running.add(proc);

  if (unref) {
    child.unref();
    child.stdout.unref();
    child.stderr.unref();
  }
  if (stdin !== undefined) {
    child.stdin.on('error', () => {}); // EPIPE when the child exits without reading: its exit status tells
    child.stdin.end(stdin);
  }

  const keep = (chunk) => {
    output += chunk;
    if (output.length > keepChars) output = output.slice(-Math.floor(keepChars / 2));
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);

  proc.exitPromise = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      running.delete(proc);
      resolve();
    });
    child.once('error', (err) => {
      exited = { code: null, signal: null, err };
      running.delete(proc);
      resolve();
    });
  });

  let stopping;
  /** SIGTERM, then SIGKILL if it is still there after graceMs. Idempotent. */
  proc.stop = (graceMs = STOP_GRACE_MS) =>
    (stopping ??= (async () => {
      if (!exited) {
        kill('SIGTERM');
        const timer = setTimeout(() => kill('SIGKILL'), graceMs);
        await proc.exitPromise;
        clearTimeout(timer);
      }
      if (group) kill('SIGKILL'); // stragglers in the group, if any
    })());

  return proc;
}

/**
 * Runs a command to completion (killed with SIGKILL after timeout ms) and
 * resolves to its {stdout, stderr}; rejects on failure with an Error carrying
 * stdout, stderr and exitCode, its message ending in the output's tail.
 * Takes startProcess's options (stdin, group, keepChars, cwd, env) and timeout.
 */
export async function run(cmd, args, { timeout = 120_000, ...opts } = {}) {
  const proc = startProcess(cmd, args, opts);
  // In full, next to output()'s interleaved tail: callers parse stdout.
  let stdout = '';
  let stderr = '';
  proc.child.stdout.on('data', (chunk) => (stdout += chunk));
  proc.child.stderr.on('data', (chunk) => (stderr += chunk));

  const closed = new Promise((resolve) => proc.child.once('close', resolve));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill('SIGKILL');
  }, timeout);
  await proc.exitPromise;
  clearTimeout(timer);
  // 'exit' can come before the last of stdout has been read: wait for
  // 'close' too, but not for a grandchild that keeps the pipes open.
  if (!proc.exited.err) {
    const grace = setTimeout(() => {
      proc.child.stdout.destroy();
      proc.child.stderr.destroy();
    }, PIPE_DRAIN_MS);
    await closed;
    clearTimeout(grace);
  }

  const { code, signal, err } = proc.exited;
  if (code === 0) return { stdout, stderr };
  const where = opts.cwd ? ` (in ${opts.cwd})` : '';
  const why = timedOut ? 'timed out' : err ? err.message : signal ?? `exit ${code}`;
  const e = new Error(`${[cmd, ...args].join(' ')}${where}: ${why}\n${proc.output().trim()}`, err ? { cause: err } : undefined);
  e.stdout = stdout;
  e.stderr = stderr;
  e.exitCode = code;
  throw e;
}
