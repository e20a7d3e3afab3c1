/**
 * Section 5 of the shape audit: what link padding (specs/link.md §4.4) costs on a client's guard link. Two real
 * Links (net/link.ts: handshake, frames, the padding timer as shipped) over an in-memory socket pair with 20 ms of
 * one-way latency, in the simulator's virtual time, both ends padding with the client's default bounds
 * ('auto', 1.5–9.5 s; and 'reduced', 9–14 s), as a client and a relay that honoured its request do. Each workload
 * runs for an hour of virtual time:
 *
 *   idle      the link open, nothing sent
 *   chat      one message each way at exponential intervals, mean 30 s (a frame each)
 *   browsing  a page every 60 s on average: a 200-frame burst towards the client and 10 frames from it
 *   bulk      a frame every 5 ms towards the client (about 0.8 MB/s), nothing from it
 *
 * Figures: padding bytes per payload byte on the link (both directions), and padding bytes per second each way.
 * For the browsing and bulk clients also the same with circuit padding added (specs/padding.md §4.3): one circuit
 * per CIRCUIT_DIRTINESS (10 min) carrying a whole unanswered run of both halves of SLOTS — the most one run
 * sends, as a circuit without traffic of its own gets — plus its negotiation.
 */
import { HandshakeReplayCache } from '../../protocol/link-handshake.js';
import { LINK_PADDING_AUTO, LINK_PADDING_REDUCED, type LinkPadding } from '../../protocol/link-padding.js';
import { CellCommand } from '../../protocol/cell.js';
import { IdentityKey } from '../../crypto/keys.js';
import { Link } from '../../net/link.js';
import { memorySocketPair } from '../../net/memory-socket.js';
import { FRAME_LEN } from '../../protocol/link-handshake.js';
import { simulate, type World } from '../../sim/world.js';
import { PaddingMachineId, PaddingRuntime, paddingMachine, type PaddingMachine } from '../../protocol/circuit-padding.js';
import { Rng } from '../../sim/random.js';
import type { ShapeOptions, ShapeRow } from './common.js';

/** How long a client's circuit takes new streams (client option circuitDirtinessMs, default 10 min). */
const CIRCUIT_DIRTINESS_MS = 600_000;

/**
 * Padding cells of one run of a half with no real traffic: every timer fires, every deadline runs out, every other
 * wait ends with the other half's padding.
 */
function unansweredRun(machine: PaddingMachine, random: () => number): number {
  const rt = new PaddingRuntime(machine, random);
  let a = rt.start();
  for (let i = 0; i < 10_000 && a.kind !== 'end'; i++) {
    a = a.kind === 'schedule' ? rt.onPaddingSent() : rt.deadlineMs !== null ? rt.onTimeout() : rt.on('padding-received');
  }
  return rt.padding;
}

/** Mean bytes on the guard link of one circuit's padding: both halves of SLOTS unanswered, and the negotiation. */
export function circuitPaddingBytes(runs: number): number {
  const m = paddingMachine(PaddingMachineId.SLOTS)!;
  const rng = new Rng(17);
  let cells = 0;
  for (let i = 0; i < runs; i++) cells += unansweredRun(m.relay, rng.random) + unansweredRun(m.client, rng.random) + 2;
  return (cells / runs) * (FRAME_LEN / 4);
}

type Workload = 'idle' | 'chat' | 'browsing' | 'bulk';

interface Measured {
  paddingBytes: number;
  payloadBytes: number;
  seconds: number;
}

/** One frame's worth of cells from `link` (a DATA-like cell on a made-up circuit: the peer discards unknown ones). */
function sendFrame(link: Link): void {
  if (!link.isOpen) return;
  for (let i = 0; i < 4; i++) link.sendCell(0x80000001, CellCommand.RELAY, new Uint8Array(1019));
}

async function measure(w: World, padding: LinkPadding | null, workload: Workload, hours: number): Promise<Measured> {
  const relay = IdentityKey.fromSeed(new Uint8Array(32).fill(7));
  const [a, b] = memorySocketPair({ forward: { latencyMs: 20 } });
  const server = new Link(b, { role: 'responder', identity: relay, replay: new HandshakeReplayCache(60_000, 100), maxClockSkewMs: 60_000 });
  const client = new Link(a, { role: 'initiator', responder: relay.publicKey }, { timers: { idleTimeoutMs: 24 * 3_600_000, keepaliveMs: 5 * 60_000 } });
  await w.run(1_000);
  if (!client.isOpen || !server.isOpen) throw new Error('the link did not open');
  if (padding) {
    client.setPadding(padding);
    server.setPadding(padding);
  }
  const start = { c: { ...client.stats }, s: { ...server.stats } };
  const ms = hours * 3_600_000;
  const exp = (mean: number): number => -Math.log(1 - w.rng.random()) * mean;
  const timers: ReturnType<typeof setTimeout>[] = [];
  const every = (meanMs: number, f: () => void): void => {
    const next = (): void => {
      timers.push(
        setTimeout(() => {
          f();
          next();
        }, exp(meanMs)),
      );
    };
    next();
  };
  if (workload === 'chat') {
    every(30_000, () => sendFrame(client));
    every(30_000, () => sendFrame(server));
  } else if (workload === 'browsing') {
    every(60_000, () => {
      for (let i = 0; i < 10; i++) sendFrame(client);
      for (let i = 0; i < 200; i++) sendFrame(server);
    });
  } else if (workload === 'bulk') {
    const tick = setInterval(() => sendFrame(server), 5);
    timers.push(tick as unknown as ReturnType<typeof setTimeout>);
  }
  await w.run(ms);
  for (const t of timers) clearTimeout(t);
  const paddingFrames = client.stats.paddingFramesOut - start.c.paddingFramesOut + (server.stats.paddingFramesOut - start.s.paddingFramesOut);
  const frames = client.stats.framesOut - start.c.framesOut + (server.stats.framesOut - start.s.framesOut);
  client.close();
  server.close();
  await w.run(1_000);
  return { paddingBytes: paddingFrames * FRAME_LEN, payloadBytes: (frames - paddingFrames) * FRAME_LEN, seconds: ms / 1000 };
}

export async function paddingOverhead(o: ShapeOptions): Promise<ShapeRow[]> {
  const hours = o.quick ? 0.25 : 1;
  const rows: ShapeRow[] = [];
  const section = '5. Link padding overhead';
  const perCircuit = circuitPaddingBytes(1000);
  for (const workload of ['idle', 'chat', 'browsing', 'bulk'] as const) {
    for (const [mode, p] of [
      ['auto', LINK_PADDING_AUTO],
      ['reduced', LINK_PADDING_REDUCED],
    ] as const) {
      if (workload === 'bulk' && mode === 'reduced') continue;
      o.progress?.(`padding overhead: ${workload}, ${mode}, ${hours} h of virtual time`);
      const m = await simulate({ seed: 5 }, (w) => measure(w, p, workload, hours));
      const perSecond = m.paddingBytes / m.seconds / 2;
      const share = m.payloadBytes > 0 ? m.paddingBytes / m.payloadBytes : Number.POSITIVE_INFINITY;
      const busy = workload === 'bulk';
      rows.push({
        id: `padding/${workload}/${mode}`,
        section,
        metric: `${workload} client, padding '${mode}': padding bytes per payload byte on its guard link (and padding B/s each way)`,
        value: share,
        display: `${Number.isFinite(share) ? `${(share * 100).toFixed(1)} %` : 'all padding'} (${perSecond.toFixed(0)} B/s each way)`,
        goal: busy && mode === 'auto' ? '≤ 10 % for a busy client' : '—',
        met: busy && mode === 'auto' ? share <= 0.1 : null,
        detail: { ...m },
      });
      if (mode === 'auto' && (workload === 'browsing' || workload === 'bulk')) {
        const circuitBytes = Math.ceil((m.seconds * 1000) / CIRCUIT_DIRTINESS_MS) * perCircuit;
        const both = (m.paddingBytes + circuitBytes) / m.payloadBytes;
        rows.push({
          id: `padding/${workload}/auto+circuit`,
          section,
          metric: `${workload} client, link padding 'auto' and circuit padding (SLOTS, one circuit per 10 min, each a whole run: ${(perCircuit / 1024).toFixed(0)} KiB): padding bytes per payload byte on its guard link`,
          value: both,
          display: `${(both * 100).toFixed(1)} % (circuit padding alone ${((circuitBytes / m.payloadBytes) * 100).toFixed(2)} %)`,
          goal: busy ? '≤ 10 % for a busy client' : '—',
          met: busy ? both <= 0.1 : null,
          detail: { ...m, circuitBytes, perCircuit },
        });
      }
    }
  }
  return rows;
}
