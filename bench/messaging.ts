/**
 * npm run bench:messaging — private messaging over a local network of relay processes (8 by default), two clients
 * in this process on disjoint entry relays. Prints medians and p90 of:
 *
 *   - time to reach a fresh endpoint: a new initiator's first send() (descriptor lookup, rendezvous circuit,
 *     introduction, the endpoint's circuit to the rendezvous point, message stream), and until the message arrives;
 *   - round-trip latency on an open session (a message and its echo);
 *   - messages per second one way on an open session (all sent at once, until every one is acknowledged);
 *   - leaving a message offline (send() to an identity that is not listening);
 *   - offline delivery after the recipient returns: from startListening() until all its mail has arrived;
 *   - groups (specs/messaging.md §13) over relay processes, of --group-live members: forming the group, and one
 *     message from send() until every other member has emitted it;
 *   - groups of --groups sizes (50 and 500) in this process (bench/lib/group-fanout.ts: the real group code and
 *     crypto over an in-memory pairwise transport, so the group layer's work, not the network's): one message to all
 *     members, envelope and wire bytes per member, and the cost of adding and removing a member; 50 also with state
 *     saved (sealed, in memory) after every change.
 *
 *   flags: --relays N (8)  --runs N (fresh endpoints, offline rounds: 10)  --pings N (200)  --burst N (2000)
 *          --groups 50,500  --group-live N (10; 0: none)  --groups-only (no one-to-one rows)  --quick
 */
import { initCrypto } from '../crypto/index.js';
import { AlliumClient } from '../client/client.js';
import { Messenger, createIdentity, formatAddress } from '../client/messaging/node.js';
import { nodeSocketFactory } from '../net/ws-node.js';
import { startNetwork, waitFor } from '../cli/local-network.js';
import { parseFlags } from './lib/options.js';
import { fmt, summarize } from './lib/stats.js';
import { progress, writeResults } from './lib/results.js';
import { fanout, formGroup, wireBytesPerMember } from './lib/group-fanout.js';

const flags = parseFlags(
  process.argv.slice(2),
  { relays: 'number', runs: 'number', pings: 'number', burst: 'number', quick: 'boolean', groups: 'string', 'group-live': 'number', 'groups-only': 'boolean' },
  'npm run bench:messaging -- [--relays N] [--runs N] [--pings N] [--burst N] [--groups 50,500] [--group-live N] [--groups-only] [--quick]',
);
const relaysN = flags.relays ?? 8;
const runs = flags.quick ? 3 : (flags.runs ?? 10);
const pings = flags.quick ? 50 : (flags.pings ?? 200);
const burst = flags.quick ? 500 : (flags.burst ?? 2000);
const OFFLINE_BATCH = 10;
const groupSizes = (flags.groups ?? (flags.quick ? '50' : '50,500')).split(',').filter(Boolean).map(Number);
const groupLive = flags['group-live'] ?? (flags.quick ? 5 : 10);
const groupsOnly = flags['groups-only'] ?? false;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

await initCrypto();
const rows: Record<string, number[]> = {};
const add = (k: string, v: number): void => void (rows[k] ??= []).push(v);

// Groups in this process: the group layer's own cost at 50 and 500 members (see the header).
for (const k of groupSizes) {
  for (const store of k <= 100 ? [false, true] : [false]) {
    const tag = `group of ${k}, in process${store ? ', state saved' : ''}`;
    progress(`${tag}: forming`);
    const f = fanout(k, store);
    let t0 = performance.now();
    const group = await formGroup(f);
    add(`${tag}: form the group, every member holding every key (ms)`, performance.now() - t0);
    add(`${tag}: form the group: envelopes in all`, f.envelopes());
    const data = new Uint8Array(100);
    for (let r = 0; r < (k > 100 ? 3 : 10); r++) {
      const before = f.members.map((m) => m.received);
      const bytesBefore = f.members[1]!.bytesIn;
      t0 = performance.now();
      await group.send(data);
      const ms = performance.now() - t0;
      if (f.members.some((m, i) => i > 0 && m.received !== before[i]! + 1)) throw new Error('a member did not get the message exactly once');
      add(`${tag}: one 100-byte message to all ${k - 1} members, every member's work (ms)`, ms);
      add(`${tag}: … per receiving member (µs)`, (ms * 1000) / (k - 1));
      const envelope = f.members[1]!.bytesIn - bytesBefore;
      add(`${tag}: envelope bytes per member (100-byte message)`, envelope);
      add(`${tag}: bytes on the wire per member, one padded message (+ one ${wireBytesPerMember(0)}-byte ack)`, wireBytesPerMember(envelope));
    }
    for (let r = 0; r < (k > 100 ? 1 : 3); r++) {
      progress(`${tag}: membership change ${r + 1}`);
      // Adding: the new roster to every member, then every member's sender key to the newcomer and its key to all.
      const newcomer = f.join();
      let e0 = f.envelopes();
      t0 = performance.now();
      await group.add(newcomer.address);
      add(`${tag}: add a member, until it and every member hold each other's keys (ms)`, performance.now() - t0);
      add(`${tag}: add a member: envelopes in all`, f.envelopes() - e0);
      // Removing: every remaining member makes a new generation and hands it to every other (§13.4).
      e0 = f.envelopes();
      t0 = performance.now();
      await group.remove(newcomer.address);
      add(`${tag}: remove a member, until every remaining member holds every new key (ms)`, performance.now() - t0);
      add(`${tag}: remove a member: envelopes in all`, f.envelopes() - e0);
    }
  }
}

/** Prints the table of every row measured and writes the results file. */
function report(): void {
  console.log('\n| measurement | median | p90 | min–max | n |\n| --- | --- | --- | --- | --- |');
  const out: Record<string, ReturnType<typeof summarize>> = {};
  for (const [k, v] of Object.entries(rows)) {
    const s = summarize(v);
    out[k] = s;
    console.log(`| ${k} | ${fmt(s.median)} | ${fmt(s.p90)} | ${fmt(s.min)}–${fmt(s.max)} | ${s.n} |`);
  }
  const file = writeResults(
    'messaging',
    { relays: relaysN, runs, pings, burst, offlineBatch: OFFLINE_BATCH, groupSizes, groupLive },
    { summary: out, samples: rows },
  );
  console.log(`\nresults: ${file}`);
}
if (groupsOnly && groupLive < 2) {
  report();
  process.exit(0);
}

console.log(
  `Allium messaging benchmark: ${relaysN} relay processes on 127.0.0.1, two clients in this process, ${runs} fresh endpoints and offline rounds, ${pings} pings, ${burst} messages`,
);
const net = await startNetwork(relaysN);
const fps = net.relays.map((r) => r.fingerprint);
const mkClient = (entry: string[]): AlliumClient =>
  new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, enforceDistinctSubnets: false, poolSize: 0, entryRelays: entry });
const ca = mkClient([fps[1]!, fps[2]!]);
const cb = mkClient([fps[3]!, fps[4]!]);
await ca.start();
await cb.start();

const closers: Messenger[] = [];

try {
  if (!groupsOnly) {
    // The endpoint: listens, echoes what starts with "ping", counts the rest.
    const alice = new Messenger(ca, createIdentity(), { offline: { collect: false } });
    closers.push(alice);
    await alice.startListening();
    const arrived = new Map<string, number>();
    let burstCount = 0;
    alice.on('message:received', (m) => {
      const text = dec(m.data);
      if (text.startsWith('ping')) void alice.send(m.from, m.data, { offline: 'never' }).catch(() => undefined);
      else if (text.startsWith('burst')) burstCount++;
      else arrived.set(text, performance.now());
    });

    // 1. A fresh initiator reaches the endpoint.
    for (let i = 0; i < runs; i++) {
      progress(`fresh endpoint ${i + 1}/${runs}`);
      const bob = new Messenger(cb);
      closers.push(bob);
      const text = `first ${i}`;
      const t0 = performance.now();
      const r = await bob.send(alice.address, enc(text), { offline: 'never' });
      const sent = performance.now();
      if (r.status !== 'delivered') throw new Error('expected a live delivery');
      await waitFor(() => arrived.has(text), 30_000, 'the first message');
      add('reach a fresh endpoint: send() resolves (ms)', sent - t0);
      add('reach a fresh endpoint: message received (ms)', arrived.get(text)! - t0);
    }

    // 2. Round trips on an open session.
    const bob = new Messenger(cb);
    closers.push(bob);
    let echoed: ((s: string) => void) | null = null;
    bob.on('message:received', (m) => echoed?.(dec(m.data)));
    await bob.send(alice.address, enc('warm-up'), { offline: 'never' });
    progress(`${pings} round trips`);
    for (let i = 0; i < pings; i++) {
      const text = `ping ${i}`;
      const t0 = performance.now();
      const back = new Promise<void>((resolve) => (echoed = (s) => s === text && resolve()));
      await bob.send(alice.address, enc(text), { offline: 'never' });
      await back;
      add('round trip on an open session (ms)', performance.now() - t0);
    }

    // 3. Throughput one way on the open session.
    for (let run = 0; run < 3; run++) {
      progress(`burst ${run + 1}/3 of ${burst} messages`);
      burstCount = 0;
      const t0 = performance.now();
      // Every send at once (a conversation keeps them in order); each resolves when the recipient acknowledges it.
      const receipts = await Promise.all(
        Array.from({ length: burst }, (_, i) => bob.send(alice.address, enc(`burst ${i} ${'x'.repeat(100)}`), { offline: 'never' })),
      );
      if (receipts.some((r) => r.status !== 'delivered')) throw new Error('a burst message was not delivered');
      await waitFor(() => burstCount >= burst, 300_000, 'the burst');
      add('messages per second, one way (100-byte messages)', burst / ((performance.now() - t0) / 1000));
    }

    // 4. Offline: leave OFFLINE_BATCH messages for an identity that is not listening, then bring it up.
    for (let i = 0; i < runs; i++) {
      progress(`offline round ${i + 1}/${runs}`);
      const carolId = createIdentity();
      const address = formatAddress(carolId.publicKey);
      const sender = new Messenger(cb);
      closers.push(sender);
      for (let k = 0; k < OFFLINE_BATCH; k++) {
        const t0 = performance.now();
        const r = await sender.send(address, enc(`offline ${k}`));
        if (r.status !== 'stored-offline') throw new Error('expected an offline delivery');
        add(k === 0 ? 'leave a message offline: first to a recipient (ms)' : 'leave a message offline: later ones (ms)', performance.now() - t0);
      }
      const carol = new Messenger(ca, carolId, { offline: { pollMs: 3_600_000 } });
      closers.push(carol);
      const got: number[] = [];
      carol.on('message:received', (m) => m.offline && got.push(performance.now()));
      const t0 = performance.now();
      await carol.startListening();
      await waitFor(() => got.length >= OFFLINE_BATCH, 120_000, 'the offline messages');
      add('offline delivery after return: first message (ms)', got[0]! - t0);
      add(`offline delivery after return: all ${OFFLINE_BATCH} messages (ms)`, got[OFFLINE_BATCH - 1]! - t0);
      carol.close();
      sender.close();
    }
  }

  // Groups over relay processes: every member a Messenger listening at its own address, the clients alternating.
  if (groupLive > 1) {
    progress(`group of ${groupLive} over relay processes: forming`);
    const members = Array.from({ length: groupLive }, (_, i) => new Messenger(i % 2 ? cb : ca, createIdentity(), { offline: { collect: false } }));
    closers.push(...members);
    const counts = new Map<Messenger, number>(members.map((m) => [m, 0]));
    for (const m of members) m.on('group:message', () => counts.set(m, counts.get(m)! + 1));
    await Promise.all(members.map((m) => m.startListening()));
    let t0 = performance.now();
    const group = await members[0]!.createGroup(
      'bench',
      members.slice(1).map((m) => m.address),
    );
    await waitFor(() => members.every((m) => m.group(group.id) !== undefined), 600_000, 'every member joined');
    // Every member's first message carries its key to those that lack it: the group is formed once each has sent.
    await Promise.all(members.map((m) => m.group(group.id)!.send(enc('hello'))));
    await waitFor(() => members.every((m) => counts.get(m)! >= groupLive - 1), 600_000, 'every first message');
    add(`group of ${groupLive}, relay processes: form the group and every member's first message to all (ms)`, performance.now() - t0);
    for (let r = 0; r < runs; r++) {
      progress(`group of ${groupLive} over relay processes: message ${r + 1}/${runs}`);
      const before = new Map(counts);
      const sender = members[r % groupLive]!;
      t0 = performance.now();
      const report = await sender.group(group.id)!.send(enc(`message ${r}`));
      if (report.failed.length) throw new Error(`a group message failed for ${report.failed.length} members`);
      await waitFor(() => members.every((m) => m === sender || counts.get(m)! === before.get(m)! + 1), 120_000, 'the group message');
      add(`group of ${groupLive}, relay processes: one message until every member has it (ms)`, performance.now() - t0);
    }
    for (const m of members) m.close();
  }

  report();
} finally {
  for (const m of closers) m.close();
  await ca.stop();
  await cb.stop();
  await net.stop();
}
process.exit(0);
