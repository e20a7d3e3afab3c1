/**
 * A client process that builds circuits and keeps them open, for the retained-memory row of bench:circuit: builds
 * `--hold N` 3-hop circuits to exits allowing `--port`, 32 in flight, prints {"held": n} and waits to be killed.
 *
 *   node holder-main.js --bootstrap LINE --port P --hold N
 */
import { initCrypto } from '../../crypto/index.js';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import type { ClientCircuit } from '../../client/circuit.js';
import { nodeSocketFactory } from '../../net/ws-node.js';

let bootstrap = '';
let port = 80;
let hold = 0;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--bootstrap') bootstrap = argv[++i]!;
  else if (argv[i] === '--port') port = Number(argv[++i]);
  else if (argv[i] === '--hold') hold = Number(argv[++i]);
  else throw new Error(`holder-main: unknown argument ${argv[i]}`);
}

await initCrypto();
const client = new AlliumClient({ bootstrap: [bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0 });
await client.start();
const held: ClientCircuit[] = [];
let started = 0;
await Promise.all(
  Array.from({ length: 32 }, async () => {
    while (started < hold) {
      started++;
      try {
        held.push(await client.newCircuit({ exitPort: port, hops: 3 }));
      } catch {
        /* counted by what is held */
      }
    }
  }),
);
process.stdout.write(JSON.stringify({ held: held.length }) + '\n');
setInterval(() => undefined, 60_000);
