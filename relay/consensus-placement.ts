/**
 * Placement and flags as a relay's consensus gives them (specs/content.md §6.1): the period's shared random value
 * that salts positions, and which relays may hold (store relays with the Holder flag). Without a consensus,
 * positions are unsalted and every store relay may hold.
 */
import { toHex } from '../protocol/bytes.js';
import type { Consensus } from '../protocol/consensus.js';
import type { Descriptor } from '../protocol/descriptor.js';
import { Flag, flagNames } from '../protocol/flags.js';
import type { RelayMetrics } from './metrics.js';
import { srvFor } from '../protocol/shared-random.js';
import type { PlacementOptions } from './replication.js';

const eligibleFor = new WeakMap<Consensus, (d: Descriptor) => boolean>();

export function consensusPlacement(c: Consensus | null, now: number): PlacementOptions {
  if (!c) return { ctx: null };
  let eligible = eligibleFor.get(c);
  if (!eligible) {
    const flags = new Map(c.entries.map((e) => [toHex(e.id), e.flags]));
    eligible = (d) => d.caps.includes('store') && ((flags.get(d.fingerprint) ?? 0) & Flag.HOLDER) !== 0;
    eligibleFor.set(c, eligible);
  }
  const { pn, srv } = srvFor(c.sr, now, c.sr.srp);
  return { ctx: { pn, srv }, eligible };
}

/** The consensus a relay holds, and what it says of the relay (status page, `npm start`). */
export function consensusStatus(c: Consensus | null, fingerprint: string): Record<string, unknown> | null {
  if (!c) return null;
  const mine = c.entries.find((x) => toHex(x.id) === fingerprint);
  return {
    validAfter: new Date(c.validAfter).toISOString(),
    validUntil: new Date(c.validUntil).toISOString(),
    relays: c.count,
    signers: c.signers.length,
    period: c.sr.pn,
    sharedRandom: c.sr.cur ? toHex(c.sr.cur).slice(0, 16) : null,
    commits: c.sr.com.length,
    reveals: c.sr.rev.length,
    flags: mine ? flagNames(mine.flags) : null,
    weight: mine?.w ?? null,
    positionWeights: c.weights,
    listed: Object.fromEntries(c.entries.map((e) => [toHex(e.id), { flags: flagNames(e.flags), weight: e.w }])),
  };
}

/** `allium_consensus_relays{flag}`: the relays the consensus lists, in all and with each flag. */
export function countConsensus(metrics: Pick<RelayMetrics, 'consensusRelays'>, c: Consensus): void {
  metrics.consensusRelays.set({ flag: 'all' }, c.count);
  for (const [name, bit] of Object.entries(Flag))
    metrics.consensusRelays.set({ flag: name.toLowerCase() }, c.entries.filter((e) => (e.flags & bit) !== 0).length);
}
