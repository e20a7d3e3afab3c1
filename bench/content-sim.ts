/**
 * npm run bench:content-sim — content gets under the simulator's virtual clock (sim/network.ts: 35 ms median one-way
 * latency per path, per-host bandwidth), the shipped relay and client code over the in-memory transport: 12 store
 * relays, one file put and fetched three times by a forwarding client, then by a direct one (`directForMeasurement`).
 * The figures are virtual time: they do not move with the machine's load, so two versions of the code compare in
 * any session (CPU per byte is not in them: bench:content measures that).
 *
 *   --mib N   the file's size (default 2)
 */
import { parseFlags } from './lib/options.js';
import { median } from './lib/stats.js';
import { AlliumClient } from '../client/client.js';
import { ContentClient } from '../client/content.js';
import { FullRelay } from '../sim/relay-node.js';
import { simulate } from '../sim/world.js';

const flags = parseFlags(process.argv.slice(2), { mib: 'number' }, 'npm run bench:content-sim -- [--mib N]');
const MIB = flags.mib ?? 2;
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
  const client = new AlliumClient({ bootstrap: boot, socketFactory: w.network.socketFactory(w.network.addHost()), poolSize: 0 });
  await w.wait(client.start());
  for (const direct of [false, true]) {
    const content = new ContentClient(client, direct ? { directForMeasurement: true } : {});
    const link = await w.wait(content.put(bytes));
    const times: number[] = [];
    const firsts: number[] = [];
    for (let run = 0; run < 3; run++) {
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
      console.log(
        `${direct ? 'direct    ' : 'forwarding'} ${MIB} MiB get ${run}: ${ms.toFixed(0)} virtual ms (${(n / 1e6 / (ms / 1000)).toFixed(2)} MB/s), first byte ${first.toFixed(0)} ms`,
      );
    }
    const t = median(times);
    console.log(
      `${direct ? 'direct    ' : 'forwarding'} median: ${t.toFixed(0)} ms (${((MIB * 1048576) / 1e6 / (t / 1000)).toFixed(2)} MB/s), first byte ${median(firsts).toFixed(0)} ms`,
    );
    content.close();
  }
  await w.wait(client.stop());
  for (const r of relays) r.dispose();
});
process.exit(0);
