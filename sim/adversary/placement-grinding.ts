/**
 * Adversary 2, placement grinding: an adversary generates key pairs until it holds all k = 3 holders of a chosen
 * routing key — a CHK block, and the descriptor slot of a chosen endpoint for a chosen day 30 days ahead — among the
 * honest network's store relays. Measured with the real placement (protocol/placement.ts), real key generation and
 * the real descriptor locator (protocol/key-blinding.ts); the ground keys are then signed into descriptors and the
 * real holdersOf confirms that the adversary holds every holder.
 *
 * The goal: no number of key pairs suffices before the period's shared random value is public; afterwards the
 * adversary needs relays that earned the holder flag (days of uptime): the cost is time, not CPU.
 */
import { seededRandom } from '../../crypto/drbg.js';
import { IdentityKey } from '../../crypto/keys.js';
import { crypto } from '../../crypto/index.js';
import { signDescriptor, type Descriptor } from '../../protocol/descriptor.js';
import { descriptorLocator, periodAt } from '../../protocol/key-blinding.js';
import { compareDistance, holdersOf, positionOf } from '../../protocol/placement.js';
import { T0 } from '../anonymity.js';
import { honestNetwork, median, type AuditOptions, type AuditRow } from './common.js';

const K = 3;

interface Grind {
  keys: number;
  ms: number;
}

/** Generates key pairs until K of them are nearer to `target` than every honest store relay; checks with holdersOf. */
function grind(target: Uint8Array, honest: readonly Descriptor[], seed: string): Grind {
  const started = performance.now();
  let nearestHonest: Uint8Array | null = null;
  for (const d of honest) {
    const p = positionOf(d.id, d.fingerprint);
    if (!nearestHonest || compareDistance(target, p, nearestHonest) < 0) nearestHonest = p;
  }
  const next = seededRandom(seed);
  const won: IdentityKey[] = [];
  let keys = 0;
  while (won.length < K) {
    const key = IdentityKey.fromSeed(next(32));
    keys++;
    if (compareDistance(target, positionOf(key.publicKey), nearestHonest!) < 0) won.push(key);
  }
  const ms = performance.now() - started;
  const sybils = won.map((key, i) =>
    signDescriptor(
      { id: key.publicKey, onion: crypto().x25519Keypair(next(32)).publicKey, addr: `ws://198.51.${100 + i}.7:443/allium`, nick: `grind${i}`, contact: '', family: [], bw: 20_000, exit: ['reject *:*'], caps: ['store'], pub: T0, exp: T0 + 3 * 3600_000 },
      key.secretKey,
    ),
  );
  const ids = new Set(sybils.map((d) => d.fingerprint));
  const holders = holdersOf(target, [...honest, ...sybils], K);
  if (!holders.every((h) => ids.has(h.fingerprint))) throw new Error('grinding: holdersOf does not confirm the ground holders');
  return { keys, ms };
}

export async function placementGrinding(o: AuditOptions): Promise<AuditRow[]> {
  const net = honestNetwork(1000, o.seed);
  const stores = net.descriptors.filter((d) => d.caps.includes('store'));
  const trials = o.quick ? 4 : 30;
  const chk: Grind[] = [];
  const endpoint: Grind[] = [];
  const victim = IdentityKey.fromSeed(seededRandom(`${o.seed}/grind/victim`)(32));
  const futureDay = periodAt(T0 / 1000) + 30;
  for (let t = 0; t < trials; t++) {
    o.progress?.(`placement grinding: trial ${t + 1} of ${trials}`);
    chk.push(grind(seededRandom(`${o.seed}/grind/chk/${t}`)(32), stores, `${o.seed}/grind/keys/chk/${t}`));
    endpoint.push(grind(descriptorLocator(victim.publicKey, futureDay + t), stores, `${o.seed}/grind/keys/ep/${t}`));
  }
  const resources = `fresh key pairs (CPU only), ${stores.length} honest store relays, k = ${K}`;
  const row = (id: string, metric: string, g: Grind[]): AuditRow => {
    const keys = median(g.map((x) => x.keys));
    return {
      id: `grinding/${id}`,
      adversary: '2. Placement grinding',
      resources,
      metric,
      value: keys,
      display: `${keys.toLocaleString('en-US')} key pairs, ${median(g.map((x) => x.ms)).toFixed(0)} ms CPU, 0 relay-days`,
      goal: 'impossible before the period\'s shared random value; afterwards only relays with the holder flag (days of uptime) count',
      met: false,
      anchor: 'Tor: HSDir positions salted by the daily shared random value (prop 250); HSDir flag needs 96 h uptime',
    };
  };
  return [
    row('chk', 'key pairs to hold all 3 holders of a chosen CHK (median)', chk),
    row('endpoint', 'key pairs to hold all 3 descriptor holders of a chosen endpoint 30 days ahead (median)', endpoint),
  ];
}
