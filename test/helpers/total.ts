/**
 * "Total" parsing: for any input a parser returns a value or throws one of our AlliumErrors with an expected
 * code, never a TypeError or RangeError, and returns quickly.
 */
import { expect } from 'chai';
import { AlliumError } from '../../protocol/errors.js';

/**
 * A bound that only a hang or runaway allocation can exceed: a parser of one cell or one small CBOR item takes
 * well under a millisecond, but CI machines are shared and a garbage-collection pause or a busy neighbour can cost
 * hundreds, so the bound is far above that (speed belongs in benchmarks, not tests).
 */
export const MAX_PARSE_MS = 5_000;

export type Outcome<T> = { ok: true; value: T } | { ok: false; code: string };

export function total<T>(f: () => T, codes: readonly string[], maxMs = MAX_PARSE_MS): Outcome<T> {
  const t0 = performance.now();
  let out: Outcome<T>;
  try {
    out = { ok: true, value: f() };
  } catch (e) {
    if (!(e instanceof AlliumError)) {
      throw new Error(`threw ${(e as Error)?.constructor?.name ?? typeof e}, not an AlliumError: ${(e as Error)?.message}`);
    }
    expect(codes, `unexpected code ${e.code}`).to.include(e.code);
    out = { ok: false, code: e.code };
  }
  expect(performance.now() - t0, 'parse time (ms)').to.be.lessThan(maxMs);
  return out;
}
