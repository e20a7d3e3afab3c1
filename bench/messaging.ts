/**
 * npm run bench:messaging — private messaging over a local network of relay processes (8 by default), two clients
 * in this process on disjoint entry relays. Prints medians and p90 of:
 *
 *   - time to reach a fresh endpoint: a new initiator's first send() (descriptor lookup, rendezvous circuit,
 *     introduction, the endpoint's circuit to the rendezvous point, message stream), and until the message arrives;
 *     and the first send() of a new initiator started first (prepare(): its lookup circuits built ahead);
 *   - round-trip latency on an open session (a message and its echo);
 *   - messages per second one way on an open session (all sent at once, until every one is acknowledged);
 *   - leaving a message offline (send() to an identity that is not listening);
 *   - offline delivery after the recipient returns: from startListening() until all its mail has arrived;
 *   - groups (specs/messaging.md §13) over relay processes, of --group-live members: forming the group, and one
 *     message from send() until every other member has emitted it;
 *   - groups of --groups sizes (50 and 500) in this process (bench/lib/group-fanout.ts: the real group code and
 *     crypto over an in-memory pairwise transport, so the group layer's work, not the network's): one message to all
 *     members, envelope and wire bytes per member, and the cost of adding and removing a member; 50 also with state
 *     saved (sealed, in memory) after every change;
 *   - the same sizes over the version 2 group inbox (specs/messaging.md §13.9), in this process: the real group code
 *     (delivery 'inbox') over the same transport and mailbox slots in memory: forming, one message deposited until
 *     every member's pass has read it, the bytes stored per message (constant in the group's size) and what each
 *     member's pass fetches (slot fetches, item bytes, relay cells at least), adding and removing a member (pairwise
 *     envelopes and their bytes, until every member holds the new epoch) and the first message after it.
 *
 *   flags: --relays N (8)  --runs N (fresh endpoints, offline rounds: 10)  --pings N (200)  --burst N (2000)
 *          --groups 50,500  --group-versions 1,2 (the in-process group rows of either)  --group-live N (10; 0: none)
 *          --groups-only (no one-to-one rows)  --quick
 *          --defences-off-too  --tor FILE|DIR
 *
 * --tor FILE|DIR: prints, after our rows, Tor's onion services from a run of the real-Tor loopback anchor
 * (shared/anchors/tor-local, `./bench.sh --sections H`; DIR: its newest bench-*.json with that section) beside our
 * fresh-endpoint and open-session rows, with the ratios and issue 18's goals (bench/lib/tor-onion.ts). Run Tor's
 * bench before or after this one, never at once.
 *
 * --defences-off-too: the one-to-one rows are measured, in the same run on the same network, also by a second pair of
 * clients (on the same entry relays) and Messengers with every defence on by default turned off — link padding,
 * circuit padding, vanguards for endpoint circuits, proof of work at introductions, content forwarding (descriptor
 * lookups and publication, mailboxes) — the two sides taking turns run by run in alternating order; the table then
 * gives each figure with the defaults and with the defences off, and their ratio (bench/lib/onoff.ts). The rows
 * above it stay the defaults' alone. Group rows are measured with the defaults only.
 */
import { initCrypto } from '../crypto/index.js';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../client/client.js';
import { Messenger, createIdentity, formatAddress, type MessengerOptions } from '../client/messaging/node.js';
import { nodeSocketFactory } from '../net/ws-node.js';
import { startNetwork, waitFor } from '../cli/local-network.js';
import { parseFlags } from './lib/options.js';
import { fmt, summarize } from './lib/stats.js';
import { progress, writeResults } from './lib/results.js';
import { fanout, fetchWireBytes, formGroup, HOLDERS, memorySlots, wireBytesPerMember, type FanoutMember } from './lib/group-fanout.js';
import { OnOff, sidesOf, type Side } from './lib/onoff.js';
import { loadTor } from './lib/tor-results.js';
import { onionComparison } from './lib/tor-onion.js';

const flags = parseFlags(
  process.argv.slice(2),
  {
    relays: 'number',
    runs: 'number',
    pings: 'number',
    burst: 'number',
    quick: 'boolean',
    groups: 'string',
    'group-live': 'number',
    'groups-only': 'boolean',
    'group-versions': 'string',
    'defences-off-too': 'boolean',
    tor: 'string',
  },
  'npm run bench:messaging -- [--relays N] [--runs N] [--pings N] [--burst N] [--groups 50,500] [--group-versions 1,2] [--group-live N] [--groups-only] [--quick] [--defences-off-too] [--tor FILE|DIR]',
);
const relaysN = flags.relays ?? 8;
const runs = flags.quick ? 3 : (flags.runs ?? 10);
const pings = flags.quick ? 50 : (flags.pings ?? 200);
const burst = flags.quick ? 500 : (flags.burst ?? 2000);
const OFFLINE_BATCH = 10;
const groupSizes = (flags.groups ?? (flags.quick ? '50' : '50,500')).split(',').filter(Boolean).map(Number);
const groupLive = flags['group-live'] ?? (flags.quick ? 5 : 10);
/** Which in-process group rows: version 1 (pairwise sender keys) and version 2 (the group inbox). */
const groupVersions = (flags['group-versions'] ?? '1,2').split(',').filter(Boolean).map(Number);
const groupsOnly = flags['groups-only'] ?? false;
const offToo = (flags['defences-off-too'] ?? false) && !groupsOnly;
// Read Tor's figures before the run, so a wrong path fails at once rather than after it.
const tor = flags.tor !== undefined && !groupsOnly ? loadTor(flags.tor, 'H_onion_services') : null;
/** Every defence on by default, off: the clients' part … */
const CLIENT_DEFENCES_OFF = { linkPadding: 'off', circuitPadding: false, endpointVanguards: false } as const;
/** … and the Messengers'. */
const MESSENGER_DEFENCES_OFF: MessengerOptions = { introPow: false, directContentForMeasurement: true };
const FRESH_SENT = 'reach a fresh endpoint: send() resolves (ms)';
const FRESH_STARTED = 'reach a fresh endpoint, initiator started (prepare()) first: send() resolves (ms)';
const ROUND_TRIP = 'round trip on an open session (ms)';
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

await initCrypto();
const rows: Record<string, number[]> = {};
const add = (k: string, v: number): void => void (rows[k] ??= []).push(v);
const onOff = new OnOff();

// Groups in this process: the group layer's own cost at 50 and 500 members (see the header).
for (const k of groupVersions.includes(1) ? groupSizes : []) {
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

// Version 2, the group inbox (specs/messaging.md §13.9), in this process: the real group code (Groups tables created
// with delivery 'inbox') over the in-memory pairwise transport and mailbox slots in memory at HOLDERS holders each
// (bench/lib/group-fanout.ts). A message is one deposit; every member's pass over the inbox reads it.
for (const k of groupVersions.includes(2) ? groupSizes : []) {
  const tag = `group of ${k}, version 2 (group inbox), in process`;
  progress(`${tag}: forming`);
  const f = fanout(k, false, memorySlots());
  let t0 = performance.now();
  const group = await formGroup(f, 'inbox');
  add(`${tag}: form the group, every member holding the roster and the epoch (ms)`, performance.now() - t0);
  add(`${tag}: form the group: pairwise envelopes in all`, f.envelopes());
  const [admin, ...rest] = f.members;
  /** Every member of the group but the sender reads the inbox once; each must emit exactly one more message. */
  const readAll = async (sender: FanoutMember): Promise<void> => {
    const readers = f.members.filter((m) => m !== sender && m.groups.get(group.id)?.isActive);
    const before = readers.map((m) => m.received);
    for (const m of readers) await m.groups.collect();
    if (readers.some((m, i) => m.received !== before[i]! + 1)) throw new Error('a member did not get the message exactly once');
  };
  // The sender's key goes into the inbox before its first message of the day: one message first, not measured.
  await group.send(new Uint8Array(100));
  await readAll(admin!);
  for (let r = 0; r < (k > 100 ? 3 : 10); r++) {
    const stored = admin!.storedBytes;
    const fetched = rest.map((m) => [m.fetches, m.fetchedBytes] as const);
    t0 = performance.now();
    await group.send(new Uint8Array(100));
    await readAll(admin!);
    const ms = performance.now() - t0;
    add(`${tag}: one 100-byte message deposited, until all ${k - 1} members have it: every member's work, one pass each (ms)`, ms);
    add(`${tag}: … per receiving member (µs)`, (ms * 1000) / (k - 1));
    add(`${tag}: bytes the sender stores per message (one item at each of ${HOLDERS} holders), whatever k`, admin!.storedBytes - stored);
    const m1 = rest[0]!;
    const fetches = m1.fetches - fetched[0]![0];
    const itemBytes = m1.fetchedBytes - fetched[0]![1];
    add(`${tag}: per member, a pass reading one new message: slot fetches (each at ${HOLDERS} holders)`, fetches);
    add(`${tag}: per member, a pass reading one new message: item bytes fetched`, itemBytes);
    // Lower bound on the wire: one relay cell per request, the item's cells per answer (one for an empty slot).
    const item = itemBytes / HOLDERS;
    add(`${tag}: bytes on the wire per member, that pass (relay cells, at least)`, fetchWireBytes(item) * HOLDERS + fetchWireBytes(0) * (fetches - HOLDERS));
  }
  for (let r = 0; r < (k > 100 ? 1 : 3); r++) {
    progress(`${tag}: membership change ${r + 1}`);
    // Adding: the roster to every member and the newcomer, the new epoch to each of them (§13.9).
    const newcomer = f.join();
    let e0 = f.envelopes();
    let b0 = f.members.reduce((n, m) => n + m.bytesIn, 0);
    t0 = performance.now();
    await group.add(newcomer.address);
    await admin!.groups.settled();
    if (f.members.some((m) => m.groups.get(group.id)?.isActive && m.groups.get(group.id)!.epoch !== group.epoch))
      throw new Error('a member did not take the new epoch');
    add(`${tag}: add a member, until every member holds the new epoch (ms)`, performance.now() - t0);
    add(`${tag}: add a member: pairwise envelopes in all`, f.envelopes() - e0);
    add(`${tag}: add a member: pairwise envelope bytes per member`, (f.members.reduce((n, m) => n + m.bytesIn, 0) - b0) / k);
    // Removing: the roster to every member (the removed one too), the new epoch to the remaining ones only.
    e0 = f.envelopes();
    b0 = f.members.reduce((n, m) => n + m.bytesIn, 0);
    t0 = performance.now();
    await group.remove(newcomer.address);
    await admin!.groups.settled();
    if (rest.some((m) => m.groups.get(group.id)?.epoch !== group.epoch)) throw new Error('a member did not take the new epoch');
    add(`${tag}: remove a member, until every remaining member holds the new epoch (ms)`, performance.now() - t0);
    add(`${tag}: remove a member: pairwise envelopes in all`, f.envelopes() - e0);
    add(`${tag}: remove a member: pairwise envelope bytes per member`, (f.members.reduce((n, m) => n + m.bytesIn, 0) - b0) / k);
    // After a change each sender deposits its new generation before its next message: the first message costs two deposits.
    const stored = admin!.storedBytes;
    t0 = performance.now();
    await group.send(new Uint8Array(100));
    await readAll(admin!);
    add(`${tag}: the first message after a change (its sender's new key deposited first), until every member has it (ms)`, performance.now() - t0);
    add(`${tag}: the first message after a change: bytes the sender stores`, admin!.storedBytes - stored);
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
  if (offToo) {
    console.log(
      '\nWhat the defences cost: the one-to-one rows with the defaults (on) and with link padding, circuit padding, vanguards, proof of work at introductions and content forwarding off, same run and network, taking turns:\n',
    );
    console.log(onOff.table());
    console.log(
      '\non / off above 1 for times, below 1 for messages per second, is the cost; "paired": the median of the ratios of the pairs measured back to back.',
    );
  }
  if (tor) {
    const pick = (k: string): ReturnType<typeof summarize> => out[k] ?? summarize([]);
    console.log(
      '\n' +
        onionComparison(tor, {
          fresh: pick(FRESH_SENT),
          roundTrip: pick(ROUND_TRIP),
        }),
    );
  }
  const file = writeResults(
    'messaging',
    {
      relays: relaysN,
      runs,
      pings,
      burst,
      offlineBatch: OFFLINE_BATCH,
      groupSizes,
      groupVersions,
      groupLive,
      defencesOffToo: offToo,
      ...(tor ? { tor: tor.file } : {}),
    },
    {
      summary: out,
      samples: rows,
      ...(tor ? { torOnion: tor.r.H_onion_services } : {}),
      ...(offToo ? { defencesOff: { samples: onOff.toJSON(), rows: onOff.rows() } } : {}),
    },
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
const mkClient = (entry: string[], off = false): AlliumClient =>
  new AlliumClient({
    bootstrap: [net.bootstrap],
    socketFactory: nodeSocketFactory,
    ...SINGLE_HOST_CLIENT,
    poolSize: 0,
    entryRelays: entry,
    ...(off ? CLIENT_DEFENCES_OFF : {}),
  });
const ca = mkClient([fps[1]!, fps[2]!]);
const cb = mkClient([fps[3]!, fps[4]!]);
await ca.start();
await cb.start();
// --defences-off-too: a second pair of clients on the same entry relays, every defence off.
const caOff = offToo ? mkClient([fps[1]!, fps[2]!], true) : null;
const cbOff = offToo ? mkClient([fps[3]!, fps[4]!], true) : null;
await caOff?.start();
await cbOff?.start();

const closers: Messenger[] = [];

/** One-to-one rows between an endpoint on `ca` and initiators on `cb`, every Messenger with `mo`. */
interface OneToOne {
  fresh(i: number, started?: boolean): Promise<{ sent: number; received: number }>;
  ping(i: number): Promise<number>;
  burst(): Promise<number>;
  offline(i: number): Promise<{ first: number; later: number[]; returnFirst: number; returnAll: number }>;
}

async function oneToOne(ca: AlliumClient, cb: AlliumClient, mo: MessengerOptions): Promise<OneToOne> {
  // The endpoint: listens, echoes what starts with "ping", counts the rest.
  const alice = new Messenger(ca, createIdentity(), { ...mo, offline: { collect: false } });
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
  // The open session for round trips and bursts.
  const bob = new Messenger(cb, createIdentity(), mo);
  closers.push(bob);
  let echoed: ((s: string) => void) | null = null;
  bob.on('message:received', (m) => echoed?.(dec(m.data)));
  await bob.send(alice.address, enc('warm-up'), { offline: 'never' });
  return {
    // 1. A fresh initiator reaches the endpoint.
    // `started`: the initiator prepared first (its lookup circuits built ahead, as a running Tor client keeps
    // preemptive circuits), then the clock starts.
    async fresh(i, started = false) {
      const initiator = new Messenger(cb, createIdentity(), mo);
      closers.push(initiator);
      if (started) await initiator.prepare();
      const text = `first ${i}${started ? ' started' : ''}`;
      const t0 = performance.now();
      const r = await initiator.send(alice.address, enc(text), { offline: 'never' });
      const sent = performance.now();
      if (r.status !== 'delivered') throw new Error('expected a live delivery');
      await waitFor(() => arrived.has(text), 30_000, 'the first message');
      return { sent: sent - t0, received: arrived.get(text)! - t0 };
    },
    // 2. A round trip on the open session.
    async ping(i) {
      const text = `ping ${i}`;
      const t0 = performance.now();
      const back = new Promise<void>((resolve) => (echoed = (s) => s === text && resolve()));
      await bob.send(alice.address, enc(text), { offline: 'never' });
      await back;
      return performance.now() - t0;
    },
    // 3. Throughput one way on the open session.
    async burst() {
      burstCount = 0;
      const t0 = performance.now();
      // Every send at once (a conversation keeps them in order); each resolves when the recipient acknowledges it.
      const receipts = await Promise.all(
        Array.from({ length: burst }, (_, i) => bob.send(alice.address, enc(`burst ${i} ${'x'.repeat(100)}`), { offline: 'never' })),
      );
      if (receipts.some((r) => r.status !== 'delivered')) throw new Error('a burst message was not delivered');
      await waitFor(() => burstCount >= burst, 300_000, 'the burst');
      return burst / ((performance.now() - t0) / 1000);
    },
    // 4. Offline: leave OFFLINE_BATCH messages for an identity that is not listening, then bring it up.
    async offline() {
      const carolId = createIdentity();
      const address = formatAddress(carolId.publicKey);
      const sender = new Messenger(cb, createIdentity(), mo);
      closers.push(sender);
      const leave: number[] = [];
      for (let k = 0; k < OFFLINE_BATCH; k++) {
        const t0 = performance.now();
        const r = await sender.send(address, enc(`offline ${k}`));
        if (r.status !== 'stored-offline') throw new Error('expected an offline delivery');
        leave.push(performance.now() - t0);
      }
      const carol = new Messenger(ca, carolId, { ...mo, offline: { pollMs: 3_600_000 } });
      closers.push(carol);
      const got: number[] = [];
      carol.on('message:received', (m) => m.offline && got.push(performance.now()));
      const t0 = performance.now();
      await carol.startListening();
      await waitFor(() => got.length >= OFFLINE_BATCH, 120_000, 'the offline messages');
      carol.close();
      sender.close();
      return { first: leave[0]!, later: leave.slice(1), returnFirst: got[0]! - t0, returnAll: got[OFFLINE_BATCH - 1]! - t0 };
    },
  };
}

try {
  if (!groupsOnly) {
    progress(offToo ? 'one-to-one: endpoints and open sessions with the defaults and with every defence off' : 'one-to-one: the endpoint and an open session');
    const sides = new Map<Side, OneToOne>([['on', await oneToOne(ca, cb, {})]]);
    if (offToo) sides.set('off', await oneToOne(caOff!, cbOff!, MESSENGER_DEFENCES_OFF));
    /** The defaults' samples make the rows; with --defences-off-too both sides go to the comparison. */
    const record = (side: Side, key: string, v: number): void => {
      if (side === 'on') add(key, v);
      if (offToo) onOff.add(key, side, v);
    };
    const turns = (i: number): readonly Side[] => (offToo ? sidesOf(i) : ['on']);

    for (let i = 0; i < runs; i++) {
      progress(`fresh endpoint ${i + 1}/${runs}`);
      for (const side of turns(i)) {
        const r = await sides.get(side)!.fresh(i);
        record(side, FRESH_SENT, r.sent);
        record(side, 'reach a fresh endpoint: message received (ms)', r.received);
        record(side, FRESH_STARTED, (await sides.get(side)!.fresh(i, true)).sent);
      }
    }
    progress(`${pings} round trips${offToo ? ' on each side, taking turns' : ''}`);
    for (let i = 0; i < pings; i++) for (const side of turns(i)) record(side, ROUND_TRIP, await sides.get(side)!.ping(i));
    for (let run = 0; run < 3; run++) {
      progress(`burst ${run + 1}/3 of ${burst} messages`);
      for (const side of turns(run)) record(side, 'messages per second, one way (100-byte messages)', await sides.get(side)!.burst());
    }
    for (let i = 0; i < runs; i++) {
      progress(`offline round ${i + 1}/${runs}`);
      for (const side of turns(i)) {
        const r = await sides.get(side)!.offline(i);
        record(side, 'leave a message offline: first to a recipient (ms)', r.first);
        for (const v of r.later) record(side, 'leave a message offline: later ones (ms)', v);
        record(side, 'offline delivery after return: first message (ms)', r.returnFirst);
        record(side, `offline delivery after return: all ${OFFLINE_BATCH} messages (ms)`, r.returnAll);
      }
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
  await caOff?.stop();
  await cbOff?.stop();
  await net.stop();
}
process.exit(0);
