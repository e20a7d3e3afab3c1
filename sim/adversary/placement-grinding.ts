/**
 * Adversary 2, placement grinding: an adversary wants all k = 3 holders of a chosen routing key — a CHK block, or the
 * descriptor slot of a chosen endpoint for a chosen day 30 days ahead — among the honest network's store relays.
 * Measured with the real placement (protocol/placement.ts holdersOf, positionOf), real key generation, the real
 * descriptor locator (protocol/key-blinding.ts), the real shared-random computation (protocol/shared-random.ts) and
 * the real view of a consensus of three authorities (sim/adversary/authorities.ts: every honest store relay has
 * run long enough for the Holder flag).
 *
 * 1. Grinding keys: the adversary generates as many key pairs as grinding took without a shared random value (the
 *    baseline's median, times ten), keeping those whose position would be nearest the target (5,000 in the quick run) — it cannot compute
 *    positions of a period whose value is not out, so it can rank them only by the unsalted position. Its relays
 *    are fresh (no Holder flag). Over many periods (each a real protocol run of the authorities' reveals), the share
 *    in which it holds all k holders.
 * 2. Buying time: the same with A relays that have earned Holder (spread over distinct /16s): the smallest A for
 *    which it holds all k holders of the target in at least half of the periods, and the relay-days that costs.
 */
import { seededRandom } from '../../crypto/drbg.js';
import { IdentityKey } from '../../crypto/keys.js';
import { crypto } from '../../crypto/index.js';
import { signDescriptor, type Descriptor } from '../../protocol/descriptor.js';
import { periodAt } from '../../protocol/key-blinding.js';
import { compareDistance, holdersOf, positionOf, type PlacementContext } from '../../protocol/placement.js';
import { computeSrv, srCommit } from '../../protocol/shared-random.js';
import { DirectoryView } from '../../protocol/view.js';
import { T0 } from '../anonymity.js';
import { authorities, runConsensus, type Observed } from './authorities.js';
import { honestNetwork, type AuditOptions, type AuditRow } from './common.js';

const K = 3;
/** Days of uninterrupted uptime the Holder flag needs (DEFAULT_FLAG_THRESHOLDS.holderMinUptime). */
const HOLDER_DAYS = 4;

function sybil(key: IdentityKey, i: number, next: (n: number) => Uint8Array): Descriptor {
  return signDescriptor(
    {
      id: key.publicKey,
      onion: crypto().x25519Keypair(next(32)).publicKey,
      addr: `ws://${100 + ((i >> 8) % 100)}.${i & 255}.3.7:443/allium`,
      nick: `grind${i}`,
      contact: '',
      family: [],
      bw: 200_000,
      exit: ['reject *:*'],
      caps: ['store'],
      pub: T0,
      exp: T0 + 3 * 3600_000,
    },
    key.secretKey,
  );
}

/** A period's shared random value, from three authorities' reveals of the period before (the real computation). */
function periodValue(seed: string, pn: number): PlacementContext {
  const authorityIds = [0, 1, 2].map((i) => seededRandom(`${seed}/srv-authority/${i}`)(32));
  const reveals = authorityIds.map((a, i) => [a, seededRandom(`${seed}/srv-reveal/${pn}/${i}`)(32)] as const);
  for (const [, r] of reveals) srCommit(r, pn - 1); // committed in the previous period, before any was revealed
  return { pn, srv: computeSrv(pn, reveals, null) };
}

export async function placementGrinding(o: AuditOptions): Promise<AuditRow[]> {
  const net = honestNetwork(1000, o.seed);
  // Three authorities' consensus: honest relays known two months, up, most for days on end.
  const obs: Observed[] = net.descriptors.map((d) => {
    const a = net.availability.get(d.fingerprint)!;
    return { d, capacity: net.capacity.get(d.fingerprint)!, knownDays: 60, availability: a, up: true, uptimeDays: a >= 0.99 ? 30 : Math.min(30, 1 / (1 - a)) };
  });
  const consensus = runConsensus(authorities(o.seed), obs, T0, null, `${o.seed}/grind`);
  const view = new DirectoryView(net.descriptors, consensus);
  const holders = view.relays.filter(view.holderEligible);
  const periods = o.quick ? 30 : 400;
  const start = periodAt(T0 / 1000) + 1;

  // 1. Ground keys: as many as grinding took without authorities, times ten, ranked by their unsalted position.
  const grindKeys = o.quick ? 5_000 : 20_000;
  o.progress?.(`placement grinding: ${grindKeys} ground key pairs against ${periods} periods`);
  const started = performance.now();
  const target = seededRandom(`${o.seed}/grind/chk/0`)(32);
  const next = seededRandom(`${o.seed}/grind/after/keys`);
  const ground: { key: IdentityKey; p: Uint8Array }[] = [];
  for (let i = 0; i < grindKeys; i++) {
    const key = IdentityKey.fromSeed(next(32));
    ground.push({ key, p: positionOf(key.publicKey) });
  }
  ground.sort((x, y) => compareDistance(target, x.p, y.p));
  const best = ground.slice(0, 16).map((g, i) => sybil(g.key, i, next));
  const grindMs = performance.now() - started;
  const ids = new Set(best.map((d) => d.fingerprint));
  // Fresh relays: not in the consensus, so not even in the view; had they been listed as Holders, still ranked by
  // a position that is not the period's.
  const asIfHolders = new DirectoryView([...net.descriptors, ...best], null);
  let wonFresh = 0;
  let wonIfFlagged = 0;
  for (let t = 0; t < periods; t++) {
    const ctx = periodValue(o.seed, start + t);
    if (holdersOf(target, view.relays, K, { ctx, eligible: view.holderEligible }).every((h) => ids.has(h.fingerprint))) wonFresh++;
    const all = [...holders, ...best];
    if (holdersOf(target, all, K, { ctx, eligible: asIfHolders.holderEligible }).every((h) => ids.has(h.fingerprint))) wonIfFlagged++;
  }

  // 2. Relays that earned Holder: the smallest number that holds all k holders in at least half of the periods.
  const trials = o.quick ? 20 : 200;
  const pool = seededRandom(`${o.seed}/grind/after/pool`);
  const flagged: Descriptor[] = [];
  const success = (n: number): number => {
    while (flagged.length < n) flagged.push(sybil(IdentityKey.fromSeed(pool(32)), flagged.length + 1000, pool));
    const mine = new Set(flagged.slice(0, n).map((d) => d.fingerprint));
    const all = [...holders, ...flagged.slice(0, n)];
    let won = 0;
    for (let t = 0; t < trials; t++) {
      const ctx = periodValue(o.seed, start + 1000 + t);
      if (holdersOf(target, all, K, { ctx, eligible: asIfHolders.holderEligible, diverse: true }).every((h) => mine.has(h.fingerprint))) won++;
    }
    return won / trials;
  };
  let lo = 0;
  let hi = 1000;
  o.progress?.('placement grinding: how many Holder relays buy half of the periods');
  while (success(hi) < 0.5) {
    lo = hi;
    hi *= 2;
    if (hi > 64_000) break;
  }
  for (let i = 0; i < (o.quick ? 2 : 6); i++) {
    const mid = Math.round((lo + hi) / 2);
    if (success(mid) >= 0.5) hi = mid;
    else lo = mid;
  }
  const needed = hi;
  const relayDays = needed * HOLDER_DAYS;
  const base = {
    adversary: '2. Placement grinding',
    anchor: 'Tor: HSDir positions salted by the daily shared random value (prop 250); HSDir flag needs 96 h uptime',
  };
  // Without authorities: positions are a public function of the identity; grinding as before the defences, on the
  // current placement (holders spread over networks: the ground relays need addresses in distinct /16s).
  o.progress?.('placement grinding: without authorities');
  const stores = net.descriptors.filter((d) => d.caps.includes('store'));
  const freeKeys: number[] = [];
  for (let t = 0; t < (o.quick ? 3 : 10); t++) {
    const tgt = seededRandom(`${o.seed}/grind/free/${t}`)(32);
    let nearest: Uint8Array | null = null;
    for (const d of stores) {
      const p = positionOf(d.id, d.fingerprint);
      if (!nearest || compareDistance(tgt, p, nearest) < 0) nearest = p;
    }
    const nk = seededRandom(`${o.seed}/grind/free/keys/${t}`);
    const won: IdentityKey[] = [];
    let n = 0;
    while (won.length < K) {
      const key = IdentityKey.fromSeed(nk(32));
      n++;
      if (compareDistance(tgt, positionOf(key.publicKey), nearest!) < 0) won.push(key);
    }
    const ds = won.map((k, i) => sybil(k, i, nk));
    const got = new Set(ds.map((d) => d.fingerprint));
    if (!holdersOf(tgt, [...stores, ...ds], K).every((h) => got.has(h.fingerprint)))
      throw new Error('grinding without authorities: holdersOf does not confirm');
    freeKeys.push(n);
  }
  freeKeys.sort((x, y) => x - y);
  return [
    {
      ...base,
      id: 'grinding/chk',
      resources: `${grindKeys.toLocaleString('en-US')} ground key pairs (${grindMs.toFixed(0)} ms CPU), ${holders.length} honest Holder relays, k = ${K}, ${periods} periods`,
      metric: 'cost of holding all 3 holders of a chosen CHK with probability ≥ 0.5 (key pairs; relay-days)',
      value: relayDays,
      display: `no number suffices: ${wonFresh} of ${periods} periods won with fresh keys (not Holders); ${wonIfFlagged} had they been Holders; Holders needed for half the periods: ${needed.toLocaleString('en-US')} = ${relayDays.toLocaleString('en-US')} relay-days`,
      goal: "impossible before the period's shared random value; afterwards only relays with the holder flag (days of uptime) count",
      met: wonFresh === 0 && wonIfFlagged <= Math.max(1, periods * 0.01) && relayDays >= 1000,
    },
    {
      ...base,
      id: 'grinding/endpoint',
      resources: `an endpoint's descriptor slot 30 days ahead, ${holders.length} honest Holder relays, k = ${K}`,
      metric: 'cost of holding all 3 descriptor holders of a chosen endpoint 30 days ahead (key pairs; relay-days)',
      value: relayDays,
      display: `no number suffices: that day's holders depend on its shared random value, unknown 30 days ahead; on the day, as a CHK (${relayDays.toLocaleString('en-US')} relay-days for half the chances)`,
      goal: "impossible before the period's shared random value; afterwards only relays with the holder flag (days of uptime) count",
      met: wonFresh === 0 && relayDays >= 1000,
    },
    {
      ...base,
      id: 'grinding/free',
      resources: `fresh key pairs, ${stores.length} store relays, a network without authorities`,
      metric: 'without authorities: key pairs to hold all 3 holders of a chosen CHK (median)',
      value: freeKeys[Math.floor((freeKeys.length - 1) / 2)]!,
      display: `${freeKeys[Math.floor((freeKeys.length - 1) / 2)]!.toLocaleString('en-US')} key pairs, 0 relay-days (addresses in 3 distinct /16s)`,
      goal: 'none: what a network without authorities loses',
      met: true,
      informational: true,
    },
  ];
}
