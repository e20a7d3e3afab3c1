/**
 * Memory a relay retains per idle circuit hop, measured where the garbage collector can be asked to run: three
 * relays in this process (relay/relay.ts over real WebSockets on 127.0.0.1), a client process that builds circuits
 * through them and holds them, and V8's heap plus external memory after full collections, before and after.
 * A relay process's RSS moves with the heap's growth policy by megabytes at a time, which buries a few KiB per
 * circuit; this is the figure that RSS delta approximates.
 *
 * Before the baseline, a few circuits are built and closed: the first CREATE allocates the relay's replay filter
 * (a Bloom filter of a few MiB per onion key), a one-time cost that is not per circuit.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Relay } from '../../relay/relay.js';
import { silentLogger } from '../../relay/logger.js';
import { sleep } from '../../cli/local-network.js';
import { startChild } from './children.js';
import type { Runtime } from './compiled.js';
import { SINGLE_HOST_NETWORK } from '../../relay/config.js';

export interface Retained {
  readonly hops: number;
  readonly bytesPerHop: number;
  readonly heapPerHop: number;
  readonly externalPerHop: number;
}

function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

async function settled(gc: () => void): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 4; i++) {
    gc();
    await sleep(100);
  }
  return process.memoryUsage();
}

export async function retainedPerHop(rt: Runtime, port: number, circuits: number): Promise<Retained> {
  const gc = collector();
  const base = mkdtempSync(path.join(os.tmpdir(), 'allium-retained-'));
  const relays: Relay[] = [];
  const mk = (i: number, bootstrap: string[], exit: boolean): Relay =>
    new Relay(
      {
        listen: '127.0.0.1:0',
        data_dir: path.join(base, `r${i}`),
        bootstrap,
        log_level: 'silent',
        ...SINGLE_HOST_NETWORK,
        exit_policy: exit ? ['accept 127.0.0.1:*', 'reject *:*'] : ['reject *:*'],
        timing: { maintenance_interval: 500 },
      },
      { log: silentLogger() },
    );
  try {
    relays.push(mk(0, [], false));
    await relays[0]!.start();
    relays.push(mk(1, [relays[0]!.bootstrapLine], false), mk(2, [relays[0]!.bootstrapLine], true));
    await Promise.all(relays.slice(1).map((r) => r.start()));
    const deadline = Date.now() + 30_000;
    while (!relays.every((r) => r.directory.size === 3 && r.overlay.neighbourCount === 2)) {
      if (Date.now() > deadline) throw new Error('in-process relays did not mesh');
      await sleep(50);
    }
    const args = (n: number): string[] => ['--bootstrap', relays[0]!.bootstrapLine, '--port', String(port), '--hold', String(n)];
    const warm = await startChild<{ held: number }>(rt, 'holder-main', args(20));
    await warm.stop();
    await sleep(500);
    const before = await settled(gc);
    const holder = await startChild<{ held: number }>(rt, 'holder-main', args(circuits));
    await sleep(1000);
    const after = await settled(gc);
    const hops = relays.reduce((a, r) => a + r.circuits.size, 0);
    await holder.stop();
    const heap = after.heapUsed - before.heapUsed;
    const external = after.external - before.external;
    return { hops, bytesPerHop: (heap + external) / hops, heapPerHop: heap / hops, externalPerHop: external / hops };
  } finally {
    await Promise.all(relays.map((r) => r.stop()));
    rmSync(base, { recursive: true, force: true });
  }
}
