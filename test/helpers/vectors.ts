/** Reading specs/vectors/*.json and the small tools the vector tests share. */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { fromHex } from '../../protocol/bytes.js';
import { AlliumError } from '../../protocol/errors.js';

/** The version of the vector format these tests understand. */
export const VECTORS_VERSION = 1;

export const VECTORS_DIR = new URL('../../specs/vectors/', import.meta.url);

export function readVectorText(name: string): string {
  return readFileSync(new URL(name, VECTORS_DIR), 'utf8');
}

/** Parses a vector file and checks its envelope. */
export function readVectors<T>(name: string): T & { description: string; version: number } {
  const v = JSON.parse(readVectorText(name)) as T & { description: string; version: number };
  if (typeof v.description !== 'string' || v.description.length === 0) throw new Error(`${name}: no description`);
  if (v.version !== VECTORS_VERSION) throw new Error(`${name}: version ${v.version}, expected ${VECTORS_VERSION}`);
  return v;
}

export const hex = fromHex;

/** A random source that hands out exactly `bytes`, in order, and fails if asked for more. */
export function byteQueue(bytes: Uint8Array): { random: (n: number) => Uint8Array; remaining: () => number } {
  let off = 0;
  return {
    random: (n) => {
      if (off + n > bytes.length) throw new Error(`byte queue exhausted: asked ${n} at ${off} of ${bytes.length}`);
      const out = bytes.slice(off, off + n);
      off += n;
      return out;
    },
    remaining: () => bytes.length - off,
  };
}

/** Asserts that f throws an AlliumError with exactly this code, and returns it. */
export function expectCode(f: () => unknown, code: string): AlliumError {
  let thrown: unknown = null;
  try {
    f();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected ${code}, nothing was thrown`).to.not.equal(null);
  expect(thrown).to.be.instanceOf(AlliumError);
  expect((thrown as AlliumError).code).to.equal(code);
  return thrown as AlliumError;
}
