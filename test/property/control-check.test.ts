/**
 * The fast check of CONTROL messages (protocol/control.ts controlFastCheck) accepts exactly what the zod schema
 * controlSchema accepts, and decodeControl, which uses it, returns the same values and refuses the same inputs with
 * the same errors as decoding with the schema alone did.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { decodeMessage, encodeCbor } from '../../protocol/cbor.js';
import { compareBytes } from '../../protocol/control.js';
import {
  CONTROL_FAST_TYPES,
  controlFastCheck,
  controlSchema,
  decodeControl,
  MAX_ANNOUNCE_ENTRIES,
  MAX_CONTROL_MESSAGE,
  MAX_DESCRIPTORS_PER_MESSAGE,
  MAX_SUMMARY_ENTRIES,
} from '../../protocol/control.js';
import { CONSENSUS_PAGE_ENTRIES } from '../../protocol/consensus.js';
import { ALL_FLAGS } from '../../protocol/flags.js';

const RUNS = { numRuns: 3_000 };

const bytes = (n: number, fill = 1) => new Uint8Array(n).fill(fill);
const id32 = fc.uint8Array({ minLength: 32, maxLength: 32, max: 3 });
const sortedIds = (max: number) => fc.uniqueArray(id32, { maxLength: max, selector: (b) => b.join() }).map((a) => a.sort(compareBytes));
const uint = fc.oneof(fc.constantFrom(0, 1, 63, 64, 2 ** 40, Number.MAX_SAFE_INTEGER), fc.nat());
const pairs = (max: number) => sortedIds(max).chain((ids) => fc.tuple(...ids.map((id) => fc.tuple(fc.constant(id), uint))));
const entry = fc.tuple(id32, fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.nat({ max: ALL_FLAGS }), fc.nat({ max: 2 ** 40 }));
const blob = (max: number) => fc.nat({ max: 80 }).map((n) => bytes(n === 80 ? max : n));
const bool = fc.boolean();

/** Messages of every type, steered towards the schema's edges (empty lists, repeated identities, flags, nulls). */
const message: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.record({ t: fc.constant('gossip-digest'), d: id32, n: uint }),
  fc.record({ t: fc.constant('gossip-summary'), e: pairs(4), after: fc.option(id32), more: bool }),
  fc.record({ t: fc.constant('gossip-want'), ids: sortedIds(4) }),
  fc.record({ t: fc.constant('gossip-push'), ds: fc.array(blob(2048), { maxLength: 3 }) }),
  fc.record({ t: fc.constant('gossip-announce'), e: pairs(4) }),
  fc.record({ t: fc.constant('dir-get'), since: uint, after: fc.option(id32) }),
  fc.record({ t: fc.constant('dir'), at: uint, ds: fc.array(blob(2048), { maxLength: 3 }), more: bool }),
  fc.record({ t: fc.constant('dir-want'), ids: sortedIds(4) }),
  fc.record({ t: fc.constant('dir-found'), ds: fc.array(blob(2048), { maxLength: 3 }) }),
  fc.record({ t: fc.constant('consensus-head-get') }),
  fc.record({ t: fc.constant('consensus-head'), c: fc.option(blob(8192 + 1024)) }),
  fc.record({ t: fc.constant('consensus-entries-get'), d: id32, from: uint }),
  fc.record({ t: fc.constant('consensus-entries'), d: id32, from: uint, e: fc.array(entry, { maxLength: 3 }), more: bool, ok: bool }),
  fc.record({ t: fc.constant('consensus-diff-get'), from: id32, to: id32, after: fc.option(id32) }),
  fc.record({ t: fc.constant('consensus-diff'), from: id32, to: id32, ch: fc.array(fc.tuple(id32, fc.option(entry)), { maxLength: 3 }), more: bool, ok: bool }),
  fc.record({ t: fc.constant('vote-part'), va: uint, i: uint, n: uint, b: blob(200 * 1024) }),
  fc.record({ t: fc.constant('consensus-sig'), va: uint, d: id32, s: fc.constantFrom(bytes(64), bytes(63), bytes(65)) }),
  fc.record({ t: fc.constant('view-get') }),
  fc.record({ t: fc.constant('view'), at: uint, d: id32, n: uint, c: fc.option(id32), s: fc.constantFrom(bytes(64), bytes(32)) }),
  fc.record({ t: fc.constant('bridge-get') }),
  fc.record({ t: fc.constant('bridge'), d: blob(2048) }),
  fc.record({ t: fc.constant('padding'), lo: uint, hi: uint }),
);

/** Values a field should not hold (or only sometimes may). */
const odd = fc.constantFrom<unknown>(
  null,
  true,
  -1,
  -0,
  0.5,
  2 ** 53,
  Number.NaN,
  Infinity,
  '',
  'gossip-digest',
  'constructor',
  [],
  {},
  bytes(0),
  bytes(16),
  bytes(31),
  bytes(32),
  bytes(33),
  bytes(64),
  bytes(2049),
  BigInt(1),
  undefined,
  Object.create(null) as object,
);

/** Changes one place in `v`, chosen by `path`: replaces it, drops or adds a key, repeats, drops or swaps items. */
function mutate(v: unknown, path: readonly number[], how: number, value: unknown): unknown {
  const [step, ...rest] = path;
  if (Array.isArray(v)) {
    const a = [...v];
    if (step !== undefined && a.length > 0 && rest.length > 0) {
      const i = step % a.length;
      a[i] = mutate(a[i], rest, how, value);
      return a;
    }
    const i = (step ?? 0) % Math.max(1, a.length);
    switch (how % 5) {
      case 0:
        a[i] = value;
        return a;
      case 1:
        return a.slice(1);
      case 2:
        return a.length ? [...a, a[a.length - 1]] : [value];
      case 3:
        return a.reverse();
      default:
        a.splice(i, 0, value);
        return a;
    }
  }
  if (typeof v === 'object' && v !== null && !(v instanceof Uint8Array)) {
    const o = { ...(v as Record<string, unknown>) };
    const keys = Object.keys(o);
    const k = keys[(step ?? 0) % keys.length]!;
    if (step !== undefined && rest.length > 0) {
      o[k] = mutate(o[k], rest, how, value);
      return o;
    }
    switch (how % 4) {
      case 0:
        o[k] = value;
        return o;
      case 1:
        delete o[k];
        return o;
      case 2:
        o[['x', 'toString', '__defineGetter__', 'T'][how % 4]!] = value;
        return o;
      default:
        o[k] = value;
        return o;
    }
  }
  return value;
}

const mutated = fc.oneof(
  message,
  fc.tuple(message, fc.array(fc.nat({ max: 7 }), { maxLength: 4 }), fc.nat(), odd).map(([m, p, h, x]) => mutate(m, p, h, x)),
  fc.tuple(message, fc.array(fc.nat({ max: 7 }), { maxLength: 4 }), fc.nat(), message).map(([m, p, h, x]) => mutate(m, p, h, x)),
  odd,
);

/** The outcome of decoding with the schema alone (the decoder before the fast check), and with decodeControl. */
function outcome(f: () => unknown): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: f() };
  } catch (e) {
    return { ok: false, error: `${(e as Error).constructor.name} ${(e as { code?: string }).code} ${(e as Error).message}` };
  }
}

/** A list of `n` distinct ascending 32-byte identities. */
function ascendingIds(n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => {
    const b = new Uint8Array(32);
    b[0] = i >> 8;
    b[1] = i & 0xff;
    return b;
  });
}

describe('property: the fast CONTROL check is the schema', () => {
  it('knows exactly the message types of the schema', () => {
    const types = controlSchema.options.map((o) => (o.shape.t as { value: string }).value);
    expect([...CONTROL_FAST_TYPES].sort()).to.deep.equal([...types].sort());
  });

  it('accepts exactly the values the schema accepts', () => {
    let accepted = 0;
    fc.assert(
      fc.property(mutated, (v) => {
        const zod = controlSchema.safeParse(v).success;
        expect(
          controlFastCheck(v),
          JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? `bytes(${x.length})` : typeof x === 'bigint' ? 'bigint' : x)),
        ).to.equal(zod);
        if (zod) accepted++;
      }),
      RUNS,
    );
    // Both sides of the boundary were tried.
    expect(accepted).to.be.within(RUNS.numRuns / 10, (RUNS.numRuns * 9) / 10);
  });

  it('agrees at the list bounds', () => {
    const cases: Record<string, unknown>[] = [];
    for (const [t, key, min, max] of [
      ['gossip-want', 'ids', 0, MAX_SUMMARY_ENTRIES],
      ['dir-want', 'ids', 1, MAX_DESCRIPTORS_PER_MESSAGE],
    ] as const) {
      for (const n of [min - 1, min, max, max + 1]) if (n >= 0) cases.push({ t, [key]: ascendingIds(n) });
    }
    for (const n of [0, 1, MAX_ANNOUNCE_ENTRIES, MAX_ANNOUNCE_ENTRIES + 1]) cases.push({ t: 'gossip-announce', e: ascendingIds(n).map((id) => [id, 1]) });
    for (const n of [MAX_SUMMARY_ENTRIES, MAX_SUMMARY_ENTRIES + 1])
      cases.push({ t: 'gossip-summary', e: ascendingIds(n).map((id) => [id, 1]), after: null, more: true });
    for (const n of [MAX_DESCRIPTORS_PER_MESSAGE, MAX_DESCRIPTORS_PER_MESSAGE + 1])
      cases.push({ t: 'dir-found', ds: Array.from({ length: n }, () => bytes(10)) });
    for (const n of [CONSENSUS_PAGE_ENTRIES, CONSENSUS_PAGE_ENTRIES + 1]) {
      cases.push({ t: 'consensus-entries', d: bytes(32), from: 0, e: ascendingIds(n).map((id) => [id, bytes(16), 0, 0]), more: false, ok: true });
    }
    for (const n of [200 * 1024, 200 * 1024 + 1]) cases.push({ t: 'vote-part', va: 0, i: 0, n: 1, b: bytes(n) });
    for (const [i, n] of [
      [63, 64],
      [64, 64],
      [0, 0],
      [0, 65],
    ]) {
      cases.push({ t: 'vote-part', va: 0, i, n, b: bytes(1) });
    }
    for (const v of cases) expect(controlFastCheck(v), `${v.t as string}`).to.equal(controlSchema.safeParse(v).success);
  });

  it('decodeControl returns and refuses as decoding with the schema alone did', () => {
    const encodable = mutated.filter((v) => {
      try {
        encodeCbor(v);
        return true;
      } catch {
        return false;
      }
    });
    fc.assert(
      fc.property(encodable, (v) => {
        const b = encodeCbor(v);
        const before = outcome(() => decodeMessage(controlSchema, b, MAX_CONTROL_MESSAGE, 'control message'));
        const after = outcome(() => decodeControl(b));
        expect(after).to.deep.equal(before);
      }),
      { numRuns: 1_000 },
    );
  });
});
