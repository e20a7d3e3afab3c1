/**
 * Section 3 of the shape audit: an introduction flood (issue 17). One attacker sends 1,000 INTRODUCE1 a second,
 * spread over an endpoint's introduction points, none with a proof of work; honest initiators, each a fresh
 * identity, send the endpoint a first message. Measured: the time from send() until the message is at the endpoint,
 * and whether it went live (a rendezvous) or had to wait in the mailbox.
 *
 * Relay processes on 127.0.0.1 (cli/local-network.ts) with the real client and Messenger; the attacker is a client in
 * a process of its own (intro-flood-attacker.ts), paced by the clock, whose circuits end at the introduction points.
 * Three conditions, each with its own endpoint on the same network: no flood; the flood against the shipped endpoint
 * (which gives its introduction points the seeds its proofs are solved under, INTRO_POW, specs/rendezvous.md §3.2,
 * and asks for a proof as soon as it refuses a flood, §4.3); and the flood against an endpoint that does not give
 * its introduction points the seeds (`introPow: false`), so paid introductions share the flood's allowance there.
 */
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { Messenger, createIdentity, type IncomingMessage } from '../../client/messaging/node.js';
import type { IntroState } from '../../client/messaging/endpoint.js';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { crypto } from '../../crypto/index.js';
import { toHex } from '../../protocol/bytes.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { startNetwork, waitFor } from '../../cli/local-network.js';
import { quantile, type ShapeOptions, type ShapeRow } from './common.js';

const SECTION = '3. Introduction flood';
/** The attacker's rate, all introduction points together. */
export const FLOOD_PER_SECOND = 1000;
/** An initiator's first message gives up (and counts as not reached) after this long. */
const TRIAL_TIMEOUT_MS = 60_000;

interface Trial {
  ms: number;
  status: string;
}

const introsOf = (m: Messenger): IntroState[] => [...(m as unknown as { endpoint: { intros: Map<string, IntroState> } }).endpoint.intros.values()];
/** The proof-of-work effort the endpoint's descriptor suggests now (specs/rendezvous.md §4.3). */
const effortOf = (m: Messenger): number => (m as unknown as { endpoint: { suggestedEffort: number } }).endpoint.suggestedEffort;

const ATTACKER = join(import.meta.dirname, 'intro-flood-attacker.ts');

/**
 * Starts a flood of FLOOD_PER_SECOND junk INTRODUCE1 over the endpoint's introduction points from an attacker process
 * of its own (intro-flood-attacker.ts); resolves once its circuits are open, with its stop and its last report.
 */
async function flood(
  bootstrap: string,
  endpoint: Messenger,
): Promise<{ stop: () => Promise<void>; sent: () => number; open: () => number; acks: () => Record<string, number> }> {
  const targets = introsOf(endpoint).map((ip) => ({ relay: toHex(ip.relay.id), auth: toHex(ip.auth.publicKey) }));
  const child = spawn(process.execPath, ['--import', 'tsx', ATTACKER, JSON.stringify({ bootstrap, targets, perSecond: FLOOD_PER_SECOND })], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let last = { sent: 0, open: 0, acks: {} as Record<string, number> };
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = JSON.parse(line) as { ready?: boolean; sent?: number; open?: number; acks?: Record<string, number> };
      if (m.ready) resolve();
      else last = { sent: m.sent ?? 0, open: m.open ?? 0, acks: m.acks ?? {} };
    });
    void exited.then(() => reject(new Error('the attacker process ended before its circuits were open')));
  });
  await ready;
  let stopping: Promise<void> | null = null;
  return {
    stop: () =>
      (stopping ??= (async () => {
        child.stdin.end('stop\n');
        await exited;
      })()),
    sent: () => last.sent,
    open: () => last.open,
    acks: () => last.acks,
  };
}

/** `n` fresh initiators send the endpoint a first message, one after another. */
async function trials(client: AlliumClient, endpoint: Messenger, got: IncomingMessage[], n: number, label: string, o: ShapeOptions): Promise<Trial[]> {
  const out: Trial[] = [];
  for (let i = 0; i < n; i++) {
    const bob = new Messenger(client, createIdentity(), { offline: { collect: false } });
    const text = `${label} ${i} ${Math.floor(crypto().uniform() * 1e9)}`;
    const started = performance.now();
    let status = 'failed';
    try {
      const r = await bob.send(endpoint.address, new TextEncoder().encode(text), { timeoutMs: TRIAL_TIMEOUT_MS });
      status = r.status;
      if (r.status === 'delivered')
        await waitFor(() => got.some((m) => new TextDecoder().decode(m.data) === text), TRIAL_TIMEOUT_MS, 'the message at the endpoint');
    } catch (e) {
      status = `failed (${e instanceof Error ? e.message : String(e)})`;
    } finally {
      bob.close();
    }
    out.push({ ms: performance.now() - started, status });
    o.progress?.(`introduction flood: ${label} ${i + 1}/${n}: ${status} in ${(out.at(-1)!.ms / 1000).toFixed(2)} s`);
  }
  return out;
}

const median = (xs: readonly number[]): number =>
  quantile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );

export async function introFlood(o: ShapeOptions): Promise<ShapeRow[]> {
  const n = o.quick ? 5 : 15;
  o.progress?.(`introduction flood: starting 6 relay processes on 127.0.0.1`);
  const net = await startNetwork(6);
  const clients: AlliumClient[] = [];
  const messengers: Messenger[] = [];
  const client = async (): Promise<AlliumClient> => {
    const c = new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0 });
    await c.start();
    clients.push(c);
    return c;
  };
  try {
    const [endpointClient, initiators] = [await client(), await client()];
    const endpoint = async (introPow: boolean): Promise<{ m: Messenger; got: IncomingMessage[] }> => {
      const m = new Messenger(endpointClient, createIdentity(), { offline: { collect: false }, introPow });
      messengers.push(m);
      const got: IncomingMessage[] = [];
      m.on('message:received', (x) => got.push(x));
      await m.startListening();
      return { m, got };
    };
    const shipped = await endpoint(true);
    const without = await endpoint(false);

    const quiet = await trials(initiators, shipped.m, shipped.got, n, 'no flood', o);
    const flooded = async (
      e: { m: Messenger; got: IncomingMessage[] },
      label: string,
    ): Promise<{ t: Trial[]; sent: number; seconds: number; acks: Record<string, number>; open: number; effort: number }> => {
      const f = await flood(net.bootstrap, e.m);
      const started = performance.now();
      try {
        // The flood has outrun every introduction point's allowance for introductions without a proof (reports
        // come once a second, so this is a second of flood or two).
        await waitFor(
          () => f.sent() >= FLOOD_PER_SECOND,
          10_000,
          () => `a second of flood (${f.sent()} sent, ${f.open()} circuits open)`,
        );
        const t = await trials(initiators, e.m, e.got, n, label, o);
        await f.stop();
        return { t, sent: f.sent(), seconds: (performance.now() - started) / 1000, acks: f.acks(), open: f.open(), effort: effortOf(e.m) };
      } finally {
        await f.stop();
      }
    };
    const withPow = await flooded(shipped, 'flood, proofs of work at the introduction points');
    const noPow = await flooded(without, 'flood, no proofs of work at the introduction points');

    const base = median(quiet.map((x) => x.ms));
    const row = (id: string, label: string, t: Trial[], extra: Record<string, unknown>, goal: boolean): ShapeRow => {
      const live = t.filter((x) => x.status === 'delivered');
      const med = median(t.map((x) => x.ms));
      const ratio = med / base;
      return {
        id: `intro-flood/${id}`,
        section: SECTION,
        metric: `${label}: an honest first message's time to the endpoint, median over ${t.length} fresh initiators (× the unflooded median), and how many went live`,
        value: ratio,
        display: `${(med / 1000).toFixed(2)} s, ${ratio.toFixed(2)}× unflooded; ${live.length}/${t.length} live (p90 ${(
          quantile(
            [...t.map((x) => x.ms)].sort((a, b) => a - b),
            0.9,
          ) / 1000
        ).toFixed(2)} s; flood ${Math.round(Number(extra.floodSent) / Number(extra.floodSeconds))}/s)`,
        goal: goal ? '≤ 2× the unflooded time' : '—',
        met: goal ? ratio <= 2 && live.length === t.length : null,
        detail: { trials: t, ...extra },
      };
    };
    return [
      {
        id: 'intro-flood/quiet',
        section: SECTION,
        metric: `no flood: an honest first message's time to the endpoint, median over ${quiet.length} fresh initiators`,
        value: base,
        display: `${(base / 1000).toFixed(2)} s; ${quiet.filter((x) => x.status === 'delivered').length}/${quiet.length} live`,
        goal: '—',
        met: null,
        detail: { trials: quiet },
      },
      row(
        'pow',
        `${FLOOD_PER_SECOND} INTRODUCE1/s, shipped endpoint (INTRO_POW)`,
        withPow.t,
        { floodSent: withPow.sent, floodSeconds: withPow.seconds, acks: withPow.acks, floodCircuitsOpen: withPow.open, suggestedEffort: withPow.effort },
        true,
      ),
      row(
        'no-pow',
        `${FLOOD_PER_SECOND} INTRODUCE1/s, endpoint without INTRO_POW (its introduction points know no seeds)`,
        noPow.t,
        { floodSent: noPow.sent, floodSeconds: noPow.seconds, acks: noPow.acks, floodCircuitsOpen: noPow.open, suggestedEffort: noPow.effort },
        false,
      ),
    ];
  } finally {
    for (const m of messengers) m.close();
    for (const c of clients) await c.stop();
    await net.stop();
  }
}
