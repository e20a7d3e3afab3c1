/**
 * The placement index (protocol/placement-index.ts) against the reference holdersOf (protocol/placement.ts): the same
 * relays, the same objects, in the same order, over random directories, keys, k, networks, families, eligibility
 * and placement contexts, tiny directories and identities listed twice included; and its XOR walk against a sort
 * by compareDistance over positions crowded into few prefixes, so that long common prefixes and ties are common.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { crypto } from '../../crypto/index.js';
import { toHex } from '../../protocol/bytes.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { compareDistance, holdersOf, positionOf, type PlacementContext } from '../../protocol/placement.js';
import { PlacementIndex, XorOrder } from '../../protocol/placement-index.js';

const ADDRS = [
  'ws://10.1.0.1:9001/allium',
  'ws://10.1.7.9:9001/allium',
  'ws://10.2.0.1:9001/allium',
  'ws://192.168.3.4:9001/allium',
  'ws://[2001:db8::1]:9001/allium',
  'ws://[2001:db8:1::1]:9001/allium',
  'wss://relay.example:443/allium',
  'ws://127.0.0.1:9001/allium',
];

function descriptor(id: Uint8Array, addr: string, caps: Descriptor['caps'], family: Uint8Array[]): Descriptor {
  return {
    v: 1,
    id,
    onion: new Uint8Array(32),
    addr,
    nick: 'r',
    contact: '',
    family,
    bw: 1000,
    exit: ['reject *:*'],
    caps,
    proto: [1],
    pub: 0,
    exp: 0,
    raw: new Uint8Array(0),
    digest: new Uint8Array(32),
    fingerprint: toHex(id),
  };
}

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

/** A directory: relays drawn from a pool of identities (so one identity may be listed twice), in few networks. */
const directory = fc
  .record({
    ids: fc.array(bytes32, { minLength: 1, maxLength: 40 }),
    picks: fc.array(
      fc.record({
        id: fc.nat(),
        addr: fc.nat({ max: ADDRS.length - 1 }),
        store: fc.boolean(),
        family: fc.array(fc.nat(), { maxLength: 3 }),
        again: fc.boolean(),
      }),
      { maxLength: 60 },
    ),
    oneAddress: fc.boolean(),
  })
  .map(({ ids, picks, oneAddress }) => {
    const ds: Descriptor[] = [];
    for (const p of picks) {
      const d = descriptor(
        ids[p.id % ids.length]!,
        oneAddress ? ADDRS[7]! : ADDRS[p.addr]!,
        p.store ? ['store'] : ['intro'],
        p.family.map((f) => ids[f % ids.length]!),
      );
      ds.push(d);
      // The same object listed twice.
      if (p.again && ds.length % 5 === 0) ds.push(d);
    }
    return ds;
  });

const context: fc.Arbitrary<PlacementContext | null> = fc.option(fc.record({ srv: bytes32, pn: fc.nat({ max: 1_000_000 }) }), { nil: null });
const kValue = fc.oneof({ weight: 10, arbitrary: fc.integer({ min: 0, max: 12 }) }, { weight: 1, arbitrary: fc.constantFrom(-1, 2.5, Number.NaN, Infinity) });

function sameObjects(a: readonly Descriptor[], b: readonly Descriptor[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

describe('protocol: placement index', () => {
  it('PlacementIndex.holders returns exactly what holdersOf returns (random directories, keys, k, networks, families, contexts)', () => {
    fc.assert(
      fc.property(
        directory,
        context,
        fc.array(bytes32, { minLength: 1, maxLength: 8 }),
        fc.array(kValue, { minLength: 1, maxLength: 4 }),
        fc.constantFrom(undefined, true, false),
        fc.option(fc.nat(), { nil: undefined }),
        (ds, ctx, keys, ks, diverse, mask) => {
          // Eligibility: the default (store relays), or an arbitrary rule on the identity.
          const eligible = mask === undefined ? undefined : (d: Descriptor): boolean => ((d.id[0]! ^ mask) & 3) !== 0;
          const o = { ctx, ...(eligible ? { eligible } : {}), ...(diverse === undefined ? {} : { diverse }) };
          const index = new PlacementIndex(ds, { ctx, ...(eligible ? { eligible } : {}) });
          for (const key of [...keys, ...ds.slice(0, 2).map((d) => positionOf(d.id, d.fingerprint, ctx))]) {
            for (const k of ks) {
              const want = holdersOf(key, ds, k, o);
              const got = index.holders(key, k, diverse === undefined ? {} : { diverse });
              if (!sameObjects(got, want)) return false;
            }
          }
          return true;
        },
      ),
      { numRuns: 600 },
    );
  });

  it('agrees with holdersOf on a directory of 2,000 relays in 40 networks with families', () => {
    const ids = Array.from({ length: 2000 }, (_, i) => crypto().hash(32, new Uint8Array([i & 255, i >> 8, 7])));
    const ds = ids.map((id, i) =>
      descriptor(
        id,
        `ws://10.${i % 40}.${(i >> 3) & 255}.1:9001/allium`,
        i % 9 === 4 ? ['intro'] : ['store'],
        i % 13 === 0 ? [ids[(i + 1) % ids.length]!] : [],
      ),
    );
    const ctx = { srv: crypto().hash(32, new Uint8Array([1])), pn: 42 };
    const index = new PlacementIndex(ds, { ctx });
    expect(index.size).to.equal(ds.filter((d) => d.caps.includes('store')).length);
    for (let i = 0; i < 60; i++) {
      const key = crypto().hash(32, new Uint8Array([i, 9]));
      const k = [1, 3, 6, 50][i % 4]!;
      expect(sameObjects(index.holders(key, k), holdersOf(key, ds, k, { ctx }))).to.equal(true);
      expect(sameObjects(index.holders(key, k, { diverse: false }), holdersOf(key, ds, k, { ctx, diverse: false }))).to.equal(true);
    }
  });

  it('XorOrder walks positions by increasing XOR distance, equal positions in the order given', () => {
    // Positions crowded into a few prefixes: long shared prefixes, equal positions and keys among them are common.
    const crowded = fc
      .tuple(
        fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff),
        fc.constantFrom(0x00, 0x80, 0xff),
        fc.nat({ max: 3 }),
        fc.uint8Array({ minLength: 29, maxLength: 29 }),
      )
      .map(([a, b, c, rest]) => {
        const p = new Uint8Array(32);
        p[0] = a;
        p[1] = b;
        p[31] = c;
        if (c === 3) p.set(rest, 2);
        return p;
      });
    fc.assert(
      fc.property(fc.array(crowded, { maxLength: 50 }), fc.oneof(crowded, bytes32), (ps, key) => {
        const order = new XorOrder(ps.map((pos, item) => ({ pos, item })));
        const next = order.cursor(key);
        const got: number[] = [];
        for (let x = next(); x !== undefined; x = next()) got.push(x);
        const want = ps.map((_, i) => i).sort((x, y) => compareDistance(key, ps[x]!, ps[y]!));
        expect(got).to.deep.equal(want);
        expect(next()).to.equal(undefined);
      }),
      { numRuns: 1000 },
    );
  });
});
