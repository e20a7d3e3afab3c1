/**
 * npm run bench:control — the cost of decoding and checking one CONTROL message (protocol/control.ts decodeControl),
 * for the mix of messages an idle local network exchanges (counted on one, see MIX). The messages are made with the
 * real encoders; descriptors are real signed descriptors, the other byte strings random bytes of the sizes seen (the
 * check reads only their lengths).
 *
 * Two decoders run alternately in one process, so a loaded machine slows both alike and their ratio holds:
 *   - zod: strict CBOR decoding, then the zod schema controlSchema alone (the check before the fast path);
 *   - decodeControl: what links run (strict CBOR decoding, then the per-type checker, zod only for a refusal);
 * and then the two checks alone on values decoded beforehand (controlSchema.safeParse against controlFastCheck).
 *
 *   flags: --rounds N (alternations: 10)  --iterations N (passes over the mix per round: 300)
 */
import { isDeepStrictEqual } from 'node:util';
import { initCrypto } from '../crypto/index.js';
import { IdentityKey } from '../crypto/keys.js';
import { seededRandom } from '../crypto/drbg.js';
import { decodeCbor, decodeMessage } from '../protocol/cbor.js';
import { controlFastCheck, controlSchema, decodeControl, encodeControl, MAX_CONTROL_MESSAGE, type ControlMessage } from '../protocol/control.js';
import { signDescriptor } from '../protocol/descriptor.js';
import { parseFlags } from './lib/options.js';
import { fmt, median } from './lib/stats.js';

const flags = parseFlags(process.argv.slice(2), { rounds: 'number', iterations: 'number' }, 'npm run bench:control -- [--rounds N] [--iterations N]');
const rounds = flags.rounds ?? 10;
const iterations = flags.iterations ?? 300;

await initCrypto();
const rand = seededRandom('bench-control');
const NOW = 1_800_000_000_000;
const RELAYS = 8;
const ids = Array.from({ length: RELAYS }, () => rand(32)).sort((a, b) => Buffer.compare(a, b));
const descs = ids.map((_, i) => {
  const k = IdentityKey.fromSeed(rand(32));
  return signDescriptor(
    {
      id: k.publicKey,
      onion: rand(32),
      addr: `ws://127.0.0.1:${9001 + i}/allium`,
      nick: `relay${i}`,
      contact: '',
      family: [],
      bw: 1000,
      exit: ['reject *:*'],
      caps: ['store', 'intro'],
      pub: NOW,
      exp: NOW + 3_600_000,
    },
    k.secretKey,
  ).raw;
});
const pairs = ids.map((id, i) => [id, NOW + i] as [Uint8Array, number]);
const entries = ids.map((id) => [id, rand(16), 3, 1000] as [Uint8Array, Uint8Array, number, number]);

/**
 * [how many of each in the mix, the message]: the counts per 100 and the sizes of the CONTROL messages that the 8
 * relays of `npm run bench:idle` received in a 30 s idle window (3,043 messages: 41 % consensus heads of 834 bytes,
 * 20 % announces of one or two descriptors, 8 % digests, 6 % each of diff requests, diffs, vote parts, pushes of
 * one descriptor and consensus signatures; wants and summaries under 1 %).
 */
const MIX: [number, ControlMessage][] = [
  [41, { t: 'consensus-head', c: rand(812) }],
  [15, { t: 'gossip-announce', e: pairs.slice(0, 1) }],
  [5, { t: 'gossip-announce', e: pairs.slice(0, 3) }],
  [8, { t: 'gossip-digest', d: rand(32), n: RELAYS }],
  [6, { t: 'consensus-diff-get', from: rand(32), to: rand(32), after: null }],
  [5, { t: 'consensus-diff', from: rand(32), to: rand(32), ch: [[ids[0]!, entries[0]!]], more: false, ok: true }],
  [1, { t: 'consensus-diff', from: rand(32), to: rand(32), ch: entries.slice(0, 5).map((e) => [e[0], e] as const), more: false, ok: true }],
  [6, { t: 'vote-part', va: NOW, i: 0, n: 1, b: rand(690) }],
  [6, { t: 'gossip-push', ds: descs.slice(0, 1) }],
  [6, { t: 'consensus-sig', va: NOW, d: rand(32), s: rand(64) }],
  [1, { t: 'gossip-want', ids: ids.slice(0, 1) }],
  [1, { t: 'gossip-summary', e: pairs, after: null, more: false }],
];
const messages = MIX.flatMap(([k, m]) => Array.from({ length: k }, () => encodeControl(m)));
const decoded = new Map(messages.map((b) => [b, decodeCbor(b, MAX_CONTROL_MESSAGE)]));

const decoders: [string, (b: Uint8Array) => unknown][] = [
  ['zod', (b) => decodeMessage(controlSchema, b, MAX_CONTROL_MESSAGE, 'control message')],
  ['decodeControl', decodeControl],
];
/** The check alone, on values decoded beforehand. */
const checks: [string, (b: Uint8Array) => unknown][] = [
  ['zod', (b) => controlSchema.safeParse(decoded.get(b)).success],
  ['fast check', (b) => controlFastCheck(decoded.get(b))],
];
// Both give the same values.
for (const b of messages) {
  const [x, y] = decoders.map(([, f]) => f(b));
  if (!isDeepStrictEqual(x, y)) throw new Error(`the decoders differ on ${(x as ControlMessage).t}`);
}

let sink = 0;
function run(f: (b: Uint8Array) => unknown, passes: number): number {
  const t0 = process.hrtime.bigint();
  for (let p = 0; p < passes; p++) for (const b of messages) if (f(b)) sink++;
  return Number(process.hrtime.bigint() - t0) / (passes * messages.length);
}
console.log(
  `Allium CONTROL decode+check: ${messages.length} messages in the mix (${MIX.length} types, ${fmt(messages.reduce((s, b) => s + b.length, 0) / messages.length)} bytes on average), ` +
    `${rounds} rounds of ${iterations} passes, the two alternated`,
);
function compare(what: string, pair: [string, (b: Uint8Array) => unknown][]): void {
  for (const [, f] of pair) run(f, Math.max(1, iterations >> 2)); // warm up
  const ns = pair.map(() => [] as number[]);
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate which runs first, so neither always follows the other.
    const order = r % 2 === 0 ? [0, 1] : [1, 0];
    const t: number[] = [];
    for (const i of order) t[i] = run(pair[i]![1], iterations);
    ns[0]!.push(t[0]!);
    ns[1]!.push(t[1]!);
    ratios.push(t[0]! / t[1]!);
  }
  console.log(`${what}:`);
  for (let i = 0; i < pair.length; i++) console.log(`  ${pair[i]![0].padEnd(14)} ${fmt(median(ns[i]!))} ns per message (median of ${rounds} rounds)`);
  console.log(
    `  ${pair[0]![0]} / ${pair[1]![0]}: ${fmt(median(ratios))}× (median of the per-round ratios; min ${fmt(Math.min(...ratios))}, max ${fmt(Math.max(...ratios))})`,
  );
}
compare('decode + check (what a link runs per message)', decoders);
compare('the check alone', checks);
if (sink < 0) console.log(sink);
