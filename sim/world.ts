/**
 * A simulation run's world: the virtual clock, the seeded random streams, the simulated network and what the
 * relays of a run share. `World.create` installs the clock (timers, Date, performance.now), a seeded Math.random
 * and a seeded crypto random source (from which the real code draws its random choices) for the length of the run;
 * `close()` puts the process back as it was, so simulations can run inside a test process.
 *
 * Everything that happens in a run follows from its seed: two runs with one seed produce identical output
 * (test/sim/determinism.test.ts).
 */
import type { Logger } from 'pino';
import { crypto, initCrypto, useCrypto, type Crypto } from '../crypto/index.js';
import type { SodiumBinding } from '../crypto/binding.js';
import { silentLogger } from '../relay/logger.js';
import { VirtualClock } from './clock.js';
import { VerifyCache } from './directory.js';
import { DEFAULT_NETWORK, SimNetwork, type NetworkConfig } from './network.js';
import { Rng, seededCrypto } from './random.js';

export interface WorldOptions {
  seed: number;
  network?: Partial<NetworkConfig>;
  /** Virtual start time in ms (default one hour: small integers keep timestamps cheap in memory). */
  startMs?: number;
}

async function currentBinding(c: Crypto): Promise<SodiumBinding> {
  if (c.bindingName === 'sodium-native') {
    const b = (await import('../crypto/binding-native.js')).loadNativeBinding();
    if (b) return b;
  }
  return (await import('../crypto/binding-wasm.js')).loadWasmBinding();
}

export class World {
  readonly clock: VirtualClock;
  /** The simulator's own draws (topology, workloads, failures). */
  readonly rng: Rng;
  readonly network: SimNetwork;
  readonly verifyCache = new VerifyCache();
  readonly log: Logger = silentLogger();
  private restore: (() => void)[] = [];
  private closed = false;

  private constructor(
    readonly seed: number,
    options: WorldOptions,
  ) {
    this.clock = new VirtualClock(options.startMs ?? 3_600_000);
    const master = new Rng(seed);
    this.rng = master.fork();
    const netRng = master.fork();
    const codeRng = master.fork();
    this.network = new SimNetwork({ ...DEFAULT_NETWORK, ...options.network }, netRng, this.clock);
    const g = Math as unknown as { random: () => number };
    const realRandom = g.random;
    g.random = codeRng.random;
    this.restore.push(() => {
      g.random = realRandom;
    });
  }

  static async create(options: WorldOptions): Promise<World> {
    await initCrypto();
    const prev = crypto();
    const binding = await currentBinding(prev);
    const w = new World(options.seed, options);
    useCrypto(seededCrypto(binding, `allium-sim:${options.seed}`));
    w.restore.push(() => useCrypto(prev));
    w.restore.push(w.clock.install());
    return w;
  }

  get now(): number {
    return this.clock.now;
  }

  /** Runs the world for `ms` of virtual time. */
  run(ms: number, stop?: () => boolean): Promise<void> {
    return this.clock.runFor(ms, stop);
  }

  /** Runs the world until `p` settles. */
  wait<T>(p: Promise<T>, limitMs?: number): Promise<T> {
    return this.clock.waitFor(p, limitMs);
  }

  /** Restores the process's clock, Math.random and crypto source. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.restore.reverse()) r();
  }
}

/** Creates a world, runs `fn` in it and always restores the process afterwards. */
export async function simulate<T>(options: WorldOptions, fn: (w: World) => Promise<T>): Promise<T> {
  const w = await World.create(options);
  try {
    return await fn(w);
  } finally {
    w.close();
  }
}
