/**
 * npm run bench:content-sim — content gets under the simulator's virtual clock (sim/network.ts: 35 ms median one-way
 * latency per path, per-host bandwidth), the shipped relay and client code over the in-memory transport: 12 store
 * relays, one file put, then fetched N times by a forwarding client (circuits built ahead, content.md §8.2), by one
 * that builds each get's circuits at its first request (`circuitsAhead: false`, as before), and by a direct one
 * (`directForMeasurement`).
 * The figures are virtual time: they do not move with the machine's load, so two versions of the code compare in
 * any session (CPU per byte is not in them: bench:content measures that).
 *
 *   --mib N   the file's size (default 2)
 *   --gets N  gets per client (default 3)
 *   --gap S   virtual seconds between one get's end and the next get (default 0: back to back). Circuits built ahead
 *             pad (SLOTS, ten seconds after their build) while they wait; with no gap that padding shares the
 *             client's access link with the get, with a gap of 10 s or more it is over when the get starts.
 *   --unpadded  the client's circuits without circuit padding (circuitPadding: false), to see what padding costs
 */
import { parseFlags } from './lib/options.js';
import { median } from './lib/stats.js';
import { AlliumClient } from '../client/client.js';
import { ContentClient } from '../client/content.js';
import { FullRelay } from '../sim/relay-node.js';
import { simulate } from '../sim/world.js';

const flags = parseFlags(
  process.argv.slice(2),
  { mib: 'number', gets: 'number', gap: 'number', unpadded: 'boolean' },
  'npm run bench:content-sim -- [--mib N] [--gets N] [--gap S] [--unpadded]',
);
const MIB = flags.mib ?? 2;
const GETS = Math.max(1, flags.gets ?? 3);
const GAP_MS = Math.max(0, flags.gap ?? 0) * 1000;
const MODES = {
  forwarding: {},
  'not ahead ': { circuitsAhead: false },
  'direct    ': { directForMeasurement: true },
} as const;
const medians = new Map<string, number>();
const bytes = new Uint8Array(MIB * 1048576).map((_, i) => (i * 2654435761) >>> 24);
await simulate({ seed: 16 }, async (w) => {
  const relays: FullRelay[] = [];
  for (let i = 0; i < 12; i++) {
    const r = new FullRelay(w, w.network.addHost(), i, { store: true });
    relays.push(r);
    r.start(relays.slice(0, Math.min(i, 2)));
    await w.run(500);
  }
  await w.run(30_000);
  const boot = relays.slice(0, 3).map((r) => r.bootstrapLine);
  const client = new AlliumClient({
    bootstrap: boot,
    socketFactory: w.network.socketFactory(w.network.addHost()),
    poolSize: 0,
    ...(flags.unpadded ? { circuitPadding: false } : {}),
  });
  await w.wait(client.start());
  // One put, fetched by every mode: the same holders for each, so the modes differ only in how they reach them.
  const publisher = new ContentClient(client);
  const link = await w.wait(publisher.put(bytes));
  publisher.close();
  for (const [mode, options] of Object.entries(MODES)) {
    const content = new ContentClient(client, options);
    const times: number[] = [];
    const firsts: number[] = [];
    for (let run = 0; run < GETS; run++) {
      if (GAP_MS > 0) await w.run(GAP_MS);
      const t0 = w.now;
      let first = -1;
      let n = 0;
      await w.wait(
        (async () => {
          for await (const c of content.getStream(link)) {
            if (first < 0) first = w.now - t0;
            n += c.length;
          }
        })(),
      );
      const ms = w.now - t0;
      times.push(ms);
      firsts.push(first);
      console.log(`${mode} ${MIB} MiB get ${run}: ${ms.toFixed(0)} virtual ms (${(n / 1e6 / (ms / 1000)).toFixed(2)} MB/s), first byte ${first.toFixed(0)} ms`);
    }
    const t = median(times);
    console.log(`${mode} median: ${t.toFixed(0)} ms (${((MIB * 1048576) / 1e6 / (t / 1000)).toFixed(2)} MB/s), first byte ${median(firsts).toFixed(0)} ms`);
    medians.set(mode.trim(), t);
    content.close();
  }
  const direct = medians.get('direct')!;
  console.log(
    `get time, direct / forwarded: ${(direct / medians.get('forwarding')!).toFixed(2)} with circuits built ahead, ${(direct / medians.get('not ahead')!).toFixed(2)} without`,
  );
  await w.wait(client.stop());
  for (const r of relays) r.dispose();
});
process.exit(0);
