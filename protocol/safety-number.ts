/**
 * Safety numbers (specs/messaging.md §11.2), in the manner of Signal's numeric fingerprints: two people who hold
 * each other's identity key compute the same 60 digits, whichever side computes.
 *
 *   d_0 = H(u16(1) | A, "allium-v1:safety-number");  d_i = H(d_(i−1) | A, "allium-v1:safety-number"), i = 1..5200
 *   half(A) = for j in 0..5: u40(d_5200[5j..5j+5)) mod 100000, 5 digits each              30 digits
 *   number(A1, A2) = the smaller half first, then the other                                60 digits
 *
 * What it protects against: a key substituted in transit (a forged card or address) makes the two sides' numbers
 * differ; an adversary who wants them equal must find a key whose half matches the contact's, about 2^99.7 tries
 * of SAFETY_ITERATIONS + 1 hashes. Only BLAKE2b from the crypto facade is used; nothing is built by hand. Pure.
 */
import { crypto } from '../crypto/index.js';
import { concatBytes, utf8 } from './bytes.js';
import { AlliumError } from './errors.js';

export const SAFETY_ITERATIONS = 5200;
export const SAFETY_VERSION = 1;
/** Digits in a full safety number (two halves of 30). */
export const SAFETY_DIGITS = 60;
const LABEL = utf8('allium-v1:safety-number');

/** One key's 30 digits (the same in every pairing: a person can read theirs out once). */
export function safetyHalf(key: Uint8Array): string {
  if (key.length !== 32) throw new AlliumError('ERR_KEY_FORMAT', 'an identity key is 32 bytes');
  const c = crypto();
  let d = c.hash(32, concatBytes(Uint8Array.of(SAFETY_VERSION >> 8, SAFETY_VERSION & 0xff), key), LABEL);
  const buf = new Uint8Array(64);
  buf.set(key, 32);
  for (let i = 0; i < SAFETY_ITERATIONS; i++) {
    buf.set(d, 0);
    d = c.hash(32, buf, LABEL);
  }
  let out = '';
  for (let j = 0; j < 6; j++) {
    let v = 0;
    for (let b = 0; b < 5; b++) v = v * 256 + d[5 * j + b]!; // 40 bits: exact in a double
    out += String(v % 100000).padStart(5, '0');
  }
  return out;
}

/** The safety number of two identity keys, as 12 groups of 5 digits separated by spaces. Order does not matter. */
export function safetyNumber(a: Uint8Array, b: Uint8Array): string {
  const ha = safetyHalf(a);
  const hb = safetyHalf(b);
  const digits = ha <= hb ? ha + hb : hb + ha;
  return digits.replace(/(\d{5})(?=\d)/g, '$1 ');
}

/** True when two safety numbers as people type or read them (spaces anywhere) are the same 60 digits. */
export function sameSafetyNumber(a: string, b: string): boolean {
  const x = a.replace(/\s+/g, '');
  const y = b.replace(/\s+/g, '');
  return x.length === SAFETY_DIGITS && /^\d+$/.test(x) && x === y;
}
