/**
 * Timing circuit builds with the client library: one build (path choice, the one-round-trip CREATE and its reply),
 * a run of sequential builds, and builds kept in flight; each circuit is closed once built.
 */
import { crypto } from '../../crypto/index.js';
import type { AlliumClient } from '../../client/client.js';
import { buildCircuit, CircuitTable, type ClientCircuit } from '../../client/circuit.js';
import { allowsExit, choosePath, weightedPick } from '../../client/path.js';
import { isExitPolicy, parseExitPolicy } from '../../protocol/exit-policy.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { openLink } from '../../net/dial.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { sleep } from '../../cli/local-network.js';

export async function timedBuild(client: AlliumClient, port: number): Promise<{ ms: number; circuit: ClientCircuit }> {
  const t0 = performance.now();
  const circuit = await client.newCircuit({ exitPort: port, hops: 3 });
  return { ms: performance.now() - t0, circuit };
}

export async function sequentialBuilds(client: AlliumClient, port: number, n: number, pauseMs = 20): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const { ms, circuit } = await timedBuild(client, port);
    out.push(ms);
    circuit.close();
    await sleep(pauseMs);
  }
  return out;
}

/**
 * Circuit-building capacity, without the client's adaptive policies (learned timeout, relays set aside after a
 * failure): `k` builds kept in flight over one open link to `entry` (a client's guard), each on a fresh path
 * chosen as the client would, with a 60 s timeout; each circuit is closed once built.
 */
export async function closedLoopBuilds(
  client: AlliumClient,
  port: number,
  k: number,
  total: number,
): Promise<{ rate: number; latency: number[]; failed: number }> {
  const relays = client.directory.all();
  const entry = client.guards.usable(relays, Date.now())[0]!;
  const link = await openLink(nodeSocketFactory, entry.addr, { role: 'initiator', responder: entry.id });
  const table = new CircuitTable();
  const exits = relays.filter((d) => d !== entry && isExitPolicy(parseExitPolicy(d.exit)) && allowsExit(d, port));
  let started = 0;
  let failed = 0;
  const latency: number[] = [];
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (started < total) {
      started++;
      const path = pathThrough(relays, exits, entry, port);
      const t = performance.now();
      try {
        const circuit = await buildCircuit(link, table, path, { timeoutMs: 60_000 });
        latency.push(performance.now() - t);
        circuit.close();
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: k }, worker));
  const rate = latency.length / ((performance.now() - t0) / 1000);
  link.close();
  return { rate, latency, failed };
}

/** A 3-hop path starting at `entry`, chosen as the client chooses, with an exit other than the entry. */
function pathThrough(relays: readonly Descriptor[], exits: readonly Descriptor[], entry: Descriptor, port: number): Descriptor[] {
  const last = weightedPick(exits, () => crypto().uniform())!;
  return choosePath(relays, { hops: 3, exitPort: port, guards: [entry], last, enforceDistinctSubnets: false });
}
