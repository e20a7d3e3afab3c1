/**
 * bench:messaging beside Tor's onion services: lines our one-to-one rows up with section H of the real-Tor loopback
 * anchor (shared/anchors/tor-local, `./bench.sh --sections H`: 10 v3 onion services on one client-only tor, each
 * forwarding to a web server on 127.0.0.1), with the ratios and the goals of issue 18.
 *
 * What is compared with what:
 *   - reach a fresh endpoint: our first send() to an endpoint new to the initiator, until it resolves with the
 *     recipient's acknowledgement (descriptor lookup, rendezvous, introduction, the message and its ack), against
 *     curl's time to the first byte of a 1-byte object from an onion service new to the Tor client (descriptor
 *     fetch, introduction, rendezvous, the request and the first byte of the answer). Both are one round trip to the
 *     service on top of everything it takes to reach it.
 *   - round trip on an open session: a message and its echo, against a second request to the same service over the
 *     rendezvous circuit the first one left open (curl's first byte; a new stream, no new circuit).
 */
import path from 'node:path';
import { table } from '../harness.js';
import { fmt, verdict, type Summary } from './stats.js';
import { ourMedian, torMedian, type LoadedTor } from './tor-results.js';

/** Issue 18's goals: each a ceiling on our median over Tor's, measured in the same session. */
export const ONION_GOALS = { freshRatio: 0.2, roundTripRatio: 0.15 } as const;

export interface MessagingSide {
  /** reach a fresh endpoint: send() resolves (ms) */
  fresh: Summary;
  /** round trip on an open session (ms) */
  roundTrip: Summary;
}

export function onionComparison(t: LoadedTor, a: MessagingSide): string {
  const h = t.r.H_onion_services;
  if (!h || h.skipped || h.error) return `Tor's onion services: no figures in ${path.basename(t.file)} (${h?.skipped ?? h?.error ?? 'no section H'})`;
  const fresh = h.fresh_ttfb_ms;
  const again = h.existing_ttfb_ms;
  const ratio = (ours: Summary, tor: number | undefined): number => (tor ? ours.median / tor : NaN);
  const rFresh = ratio(a.fresh, fresh?.median);
  const rTrip = ratio(a.roundTrip, again?.median);
  const fails = (n: number | undefined): string => (n ? `, ${n} failed` : '');
  const rows: string[][] = [['', 'Allium (this run), ms', `Tor ${t.r.meta.tor_version} onion services (${t.r.meta.started}), ms`, 'ratio']];
  rows.push([
    'reach a fresh endpoint / first connection to a new onion service',
    ourMedian(a.fresh),
    `${torMedian(fresh)} n=${fresh?.n ?? 0}${fails(h.fresh_fail)}`,
    `${fmt(rFresh)}×`,
  ]);
  rows.push([
    'round trip on an open session / request over the open rendezvous circuit',
    ourMedian(a.roundTrip),
    `${torMedian(again)} n=${again?.n ?? 0}${fails(h.existing_fail)}`,
    `${fmt(rTrip)}×`,
  ]);
  const goals: string[][] = [['goal (issue 18)', 'measured (median ratio)', 'verdict']];
  goals.push([
    `reach a fresh endpoint ≤ ${ONION_GOALS.freshRatio}× Tor's first onion-service connection`,
    `${fmt(rFresh)}×`,
    verdict(rFresh, '<=', ONION_GOALS.freshRatio),
  ]);
  goals.push([
    `round trip on an open session ≤ ${ONION_GOALS.roundTripRatio}× Tor's open rendezvous`,
    `${fmt(rTrip)}×`,
    verdict(rTrip, '<=', ONION_GOALS.roundTripRatio),
  ]);
  return [
    `Beside real Tor's onion services on the same machine (${path.basename(t.file)}; its methods: shared/anchors/tor-local/README.md, section H):`,
    table(rows, new Set()),
    '',
    table(goals, new Set()),
  ].join('\n');
}
