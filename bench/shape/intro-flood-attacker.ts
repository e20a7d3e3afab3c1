/**
 * The attacker of the shape audit's introduction flood (bench/shape/intro-flood.ts), run as a process of its own so
 * that its work — building INTRODUCE1 cells and encrypting them — competes with the honest initiators for the machine,
 * as an attacker's own computer would not, but never for their event loop.
 *
 *   node --import tsx bench/shape/intro-flood-attacker.ts '<json>'
 *   json = { "bootstrap": line, "targets": [{ "relay": hex id, "auth": hex intro key }], "perSecond": n }
 *
 * It starts a client, builds one circuit to each introduction point and sends `perSecond` INTRODUCE1 a second among
 * them, none with a proof of work, ignoring the acknowledgements but counting them. Lines on stdout, one JSON object
 * each: {"ready": true} once the circuits are open, then {"sent", "open", "acks"} every second and once more on "stop"
 * (a line on stdin), after which it exits.
 */
import { createInterface } from 'node:readline';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { crypto, initCrypto } from '../../crypto/index.js';
import { fromHex } from '../../protocol/bytes.js';
import { RelayCommand, type RelayMessage } from '../../protocol/relay-cell.js';
import { decodeRv, encodeRv } from '../../protocol/rendezvous-messages.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { nodeSocketFactory } from '../../net/ws-node.js';

interface Orders {
  bootstrap: string;
  targets: { relay: string; auth: string }[];
  perSecond: number;
}

const TICK_MS = 20;
const out = (x: unknown): void => void process.stdout.write(JSON.stringify(x) + '\n');

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? '{}') as Orders;
  await initCrypto();
  const client = new AlliumClient({ bootstrap: [o.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0 });
  await client.start();
  const circuits: { c: ClientCircuit; auth: Uint8Array }[] = [];
  const acks = new Map<string, number>();
  for (const t of o.targets) {
    const relay = client.directory.get(fromHex(t.relay));
    if (!relay) throw new Error('introduction point not in the attacker’s directory');
    const c = await client.newCircuit({ last: relay, exitPort: null });
    // An attacker ignores the INTRODUCE_ACKs; our circuit would close on a reply nobody waits for, so one waiter
    // takes them all (and counts how the introduction point answered).
    (c as unknown as { waiters: Map<number, { hop: number; deliver: (m: RelayMessage) => void }> }).waiters.set(RelayCommand.INTRODUCE_ACK, {
      hop: c.hops - 1,
      deliver: (m) => {
        const s = decodeRv('introduceAck', m.data).s;
        acks.set(s, (acks.get(s) ?? 0) + 1);
      },
    });
    circuits.push({ c, auth: fromHex(t.auth) });
  }
  let sent = 0;
  let slots = 0;
  const started = performance.now();
  // Paced by the clock, not by ticks: a tick that comes late (a busy machine) sends what the rate owes by then.
  const flood = setInterval(() => {
    const owed = Math.floor(((performance.now() - started) * o.perSecond) / 1000) - slots;
    for (let i = 0; i < owed; i++) {
      const { c, auth } = circuits[slots++ % circuits.length]!;
      if (c.state !== 'open') continue;
      sent++;
      c.send({ command: RelayCommand.INTRODUCE1, streamId: 0, data: encodeRv('introduce1', { k: auth, p: crypto().random(300) }) });
    }
  }, TICK_MS);
  const report = (): void => out({ sent, open: circuits.filter((x) => x.c.state === 'open').length, acks: Object.fromEntries(acks) });
  const reporting = setInterval(report, 1000);
  out({ ready: true });
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => {
    lines.once('line', () => resolve());
    lines.once('close', () => resolve());
  });
  clearInterval(flood);
  clearInterval(reporting);
  report();
  lines.close();
  for (const x of circuits) x.c.close();
  await client.stop();
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`intro-flood attacker: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
