// An authenticator app for the e2e tests: RFC 6238 TOTP (HMAC-SHA1, 6 digits,
// 30-second steps, what Gatehouse enrols) with node:crypto, no dependency.
//
//   const app = new Authenticator();
//   app.enrol('JBSW Y3DP …');   // the key as Gatehouse shows it
//   const code = app.code();    // a code for a step not used before
//
// Gatehouse accepts the steps one either side of its clock and refuses a
// step (or an older one) that was already used. code() therefore hands out
// each step once, moving to the next step for the next code without waiting
// for the clock: the step after the current one is still inside the server's
// window. It refuses to go further than that rather than produce a code the
// server would have to reject.

import { createHmac } from 'node:crypto';

export const PERIOD_S = 30;
const DIGITS = 6;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** Decodes RFC 4648 base32 (spaces, padding and case ignored). */
export function base32Decode(text) {
  const s = text.replace(/[\s=]/g, '').toUpperCase();
  const out = [];
  let bits = 0;
  let value = 0;
  for (const ch of s) {
    const i = BASE32.indexOf(ch);
    if (i < 0) throw new Error(`base32: invalid character ${JSON.stringify(ch)}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** The time step of a moment (ms since the epoch). */
export function timeStep(nowMs = Date.now()) {
  return Math.floor(nowMs / 1000 / PERIOD_S);
}

/** The RFC 6238 code of key (bytes) for a time step (RFC 4226 HOTP of the step). */
export function totpCode(key, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** DIGITS).padStart(DIGITS, '0');
}

/** An authenticator app holding one key, handing out each time step once. */
export class Authenticator {
  #key;
  #lastStep = -Infinity;

  /** Takes the key Gatehouse shows for manual entry (base32, grouped by spaces). */
  enrol(secret) {
    const key = base32Decode(secret);
    if (key.length < 10) throw new Error(`TOTP key of ${key.length} bytes is too short`);
    this.#key = key;
    this.#lastStep = -Infinity;
  }

  get enrolled() {
    return this.#key !== undefined;
  }

  /** The last step code() handed out. */
  get lastStep() {
    return this.#lastStep;
  }

  /**
   * A code for the current time step, or for the step after the last one
   * handed out when that was the current one: never a step given before.
   */
  code(nowMs = Date.now()) {
    if (!this.#key) throw new Error('no key enrolled');
    const now = timeStep(nowMs);
    const step = Math.max(now, this.#lastStep + 1);
    if (step > now + 1) {
      throw new Error(`three codes within one 30-second step: step ${step} is outside the server's ±1 window`);
    }
    this.#lastStep = step;
    return totpCode(this.#key, step);
  }

  /** The code of a given step, for tests that replay one. */
  codeAt(step) {
    if (!this.#key) throw new Error('no key enrolled');
    return totpCode(this.#key, step);
  }
}
