/**
 * Content durability against relay processes (specs/content.md §6–7): a holder killed (the content stays
 * fetchable and the overlay restores k copies), blocks destroyed at every holder (rebuilt from check blocks), a
 * tampered copy (never served, deleted on read, repaired), and a relay killed mid-write (a consistent store that
 * kept every block it acknowledged).
 *
 * Eight store relays with replication_factor 3, a 1 s repair interval and 10 s descriptors, so a killed relay
 * leaves every directory — and the placement generation changes — within seconds.
 */
import { expect } from 'chai';
import { setMaxListeners } from 'node:events';
import { AlliumClient } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { crypto } from '../../crypto/index.js';
import { toHex } from '../../protocol/bytes.js';
import { BLOCK_PAYLOAD_MAX, BlockType, blockPlaintext, encryptBlock } from '../../protocol/chk.js';
import { parseLink } from '../../protocol/content-link.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { holdersOf } from '../../protocol/placement.js';
import { fetchItem, storeItem } from '../../net/content-requests.js';
import { circuitTo, fileLayout, openStore, patternBytes, sha256, startClient, storedBlock, withStore } from '../helpers/content.js';
import { startNetwork, startRelay, waitFor, type RelayProcess, type TestNetwork } from '../helpers/network.js';

const TIMING = { repair_interval: 1000, descriptor_lifetime: 10_000, descriptor_renew: 2000 };

describe('content durability: kill, erasure, tamper, crash (relay processes)', function () {
  this.timeout(180_000);
  let net: TestNetwork;
  let client: AlliumClient;
  let content: ContentClient;
  /** Relays not killed by a test (a test that kills one removes it here). */
  let live: RelayProcess[];
  const extraRelays: RelayProcess[] = [];

  before(async () => {
    // Without authorities: this test computes holders with unsalted placement, as its relays then do (with authorities
    // placement is salted by the consensus's shared random value: test/integration/authority-network.test.ts).
    net = await startNetwork(8, { timing: TIMING, authorities: 0 });
    live = [...net.relays];
    client = await startClient(net.bootstrap);
    content = new ContentClient(client);
  });

  after(async () => {
    content?.close();
    await client?.stop();
    await Promise.all(extraRelays.map((r) => r.kill('SIGKILL')));
    await net?.stop();
  });

  const descriptorOf = (r: RelayProcess): Descriptor => {
    const d = client.directory.all().find((x) => x.fingerprint === r.fingerprint);
    if (!d) throw new Error(`relay ${r.fingerprint.slice(0, 8)} not in the client directory`);
    return d;
  };
  /** The k = 3 holders of a key among the given relays. */
  const holdersAmong = (rk: Uint8Array, relays: RelayProcess[]): RelayProcess[] =>
    holdersOf(rk, relays.map(descriptorOf), 3).map((d) => relays.find((r) => r.fingerprint === d.fingerprint)!);
  /** Live relays whose SQLite store holds the block. */
  const holding = (rk: Uint8Array): RelayProcess[] => live.filter((r) => storedBlock(r, rk) !== null);
  const names = (rs: RelayProcess[]): string[] => rs.map((r) => r.fingerprint.slice(0, 8)).sort();
  /** Waits until every live relay's replication pass has looked at these blocks (after which, in this placement
   * generation, no relay reads or pushes them again on its own). */
  const replicationChecked = (rks: Uint8Array[]): Promise<void> =>
    waitFor(
      () =>
        live.every((r) => {
          const db = openStore(r);
          try {
            const q = db.prepare<[Uint8Array], { g: string }>('SELECT checked_gen AS g FROM blocks WHERE rk = ?');
            return rks.every((rk) => (q.get(rk)?.g ?? 'absent') !== '');
          } finally {
            db.close();
          }
        }),
      60_000,
      'replication checks of the new blocks',
    );

  it('a holder killed with SIGKILL: the content is still fetchable and k = 3 copies are restored', async () => {
    const data = patternBytes(3 * BLOCK_PAYLOAD_MAX - 100, 21);
    const layout = await fileLayout(data);
    const link = await content.put(data, { convergent: true }); // the blocks fileLayout computed
    const parsed = parseLink(link);
    expect(parsed.type === 'chk' && toHex(parsed.rk)).to.equal(toHex(layout.root.rk)); // the put stored what we computed
    for (const { ref } of layout.blocks.values()) expect(names(holding(ref.rk))).to.deep.equal(names(holdersAmong(ref.rk, live)));

    // Kill the root's nearest holder: the one a fetch asks first.
    const rootRk = layout.root.rk;
    const victim = holdersAmong(rootRk, live)[0]!;
    await victim.kill('SIGKILL');
    live = live.filter((r) => r !== victim);
    expect(holding(rootRk)).to.have.length(2);

    const back = await content.get(link);
    expect(sha256(back)).to.equal(sha256(data));

    // The victim leaves the relays' directories when its descriptor expires; the placement generation changes, and
    // within a repair pass or two the survivors copy every block of the file to its new third holder.
    await waitFor(
      async () => (await Promise.all(live.map((r) => r.metric('allium_directory_relays')))).every((n) => n === live.length),
      TIMING.descriptor_lifetime + 20_000,
      'the killed relay gone from every directory',
    );
    const generationChangedAt = Date.now();
    await waitFor(
      () => [...layout.blocks.values()].every(({ ref }) => names(holding(ref.rk)).join() === names(holdersAmong(ref.rk, live)).join()),
      60_000,
      'every block back at exactly its 3 holders among the live relays',
    );
    const repairTook = Date.now() - generationChangedAt;
    for (const { ref } of layout.blocks.values()) {
      expect(holding(ref.rk)).to.have.length(3);
      for (const r of holding(ref.rk)) expect(sha256(storedBlock(r, ref.rk)!)).to.equal(sha256(layout.blocks.get(toHex(ref.rk))!.stored));
    }
    expect(repairTook, 'ms from the directory change to 3 copies').to.be.below(8 * TIMING.repair_interval);

    // The client forgets the dead relay once its descriptor has expired.
    await waitFor(
      async () => {
        await client.refreshDirectory();
        return !client.directory.all().some((d) => d.fingerprint === victim.fingerprint);
      },
      30_000,
      'the client directory without the killed relay',
    );
  });

  it('a tampered copy is never served: deleted by its relay on read, the right bytes come from another holder, and it is repaired', async () => {
    const data = patternBytes(2 * BLOCK_PAYLOAD_MAX + 7, 33);
    const layout = await fileLayout(data);
    const link = await content.put(data, { convergent: true }); // the blocks fileLayout computed
    // So that the relays' own replication passes do not read (and delete) the damaged copy before the client does.
    await replicationChecked([...layout.blocks.values()].map((b) => b.ref.rk));
    const target = layout.segments[0]!.refs[0]!; // the first data block
    const original = layout.blocks.get(toHex(target.rk))!.stored;
    // The holder a fetch asks first, in the client's own view.
    const first = content.holders(target.rk)[0]!;
    const holder = live.find((r) => r.fingerprint === first.fingerprint)!;
    const tamper = (): void => {
      const bad = Buffer.from(original);
      bad[12345]! ^= 0x01;
      const changed = withStore(holder, (db) => db.prepare('UPDATE blocks SET data = ? WHERE rk = ?').run(bad, target.rk).changes);
      expect(changed).to.equal(1);
      expect(sha256(storedBlock(holder, target.rk)!)).to.not.equal(sha256(original));
    };

    // 1. The get returns the right bytes; the relay dropped the damaged copy and the client stored a good one.
    tamper();
    const repairsBefore = content.repairs;
    expect(sha256(await content.get(link))).to.equal(sha256(data));
    expect(content.repairs).to.be.greaterThan(repairsBefore);
    await waitFor(() => storedBlock(holder, target.rk)?.equals(original) ?? false, 20_000, 'the damaged copy repaired');

    // 2. Asked directly, the relay refuses to serve the damaged copy and deletes it.
    tamper();
    const circuit = await circuitTo(client, holder);
    expect(await fetchItem(circuit, 'block', target.rk)).to.equal(null);
    expect(storedBlock(holder, target.rk)).to.equal(null);
    circuit.close();
    // The next fetch of the file repairs it again.
    expect(sha256(await content.get(link))).to.equal(sha256(data));
    await waitFor(() => storedBlock(holder, target.rk)?.equals(original) ?? false, 20_000, 'the deleted copy repaired');
  });

  it('a file with a third of every segment destroyed at every relay is rebuilt byte-exact', async () => {
    // Three segments: 32 + 32 + 3 data blocks, with 16 + 16 + 2 check blocks.
    const data = patternBytes(67 * BLOCK_PAYLOAD_MAX - 5000, 45);
    const layout = await fileLayout(data);
    expect(layout.segments.map((s) => [s.k, s.m])).to.deep.equal([
      [32, 16],
      [32, 16],
      [3, 2],
    ]);
    const link = await content.put(data, { convergent: true }); // the blocks fileLayout computed

    // So that no relay pushes a block back while we delete it.
    await replicationChecked([...layout.blocks.values()].map((b) => b.ref.rk));

    // A third of each segment's blocks, data and check blocks alike, never the root: every third block.
    const doomed = layout.segments.flatMap((s) => s.refs.filter((_, i) => i % 3 === 0).slice(0, Math.min(s.m, Math.floor((s.k + s.m) / 3))));
    expect(doomed.length).to.equal(16 + 16 + 1);
    expect(layout.segments[0]!.refs.slice(0, 32).filter((_, i) => i % 3 === 0)).to.have.length(11); // 11 of them data blocks
    const dbs = live.map((r) => openStore(r, false));
    try {
      for (const db of dbs) {
        const del = db.prepare('DELETE FROM blocks WHERE rk = ?');
        db.transaction(() => doomed.forEach((ref) => del.run(ref.rk)))();
      }
    } finally {
      dbs.forEach((db) => db.close());
    }
    for (const ref of doomed) expect(holding(ref.rk), 'a destroyed block').to.have.length(0);

    const back = await content.get(link);
    expect(back.length).to.equal(data.length);
    expect(sha256(back)).to.equal(sha256(data));
    // Rebuilt, not refetched: the destroyed blocks are still nowhere.
    for (const ref of doomed) expect(holding(ref.rk)).to.have.length(0);
  });

  it('a relay killed mid-write restarts with a consistent store and every acknowledged block', async () => {
    const victim = live.find((r) => r !== net.relays[0])!; // not the bootstrap relay
    // 150 distinct valid blocks (random keys), stored at the victim only, 12 at a time over one circuit.
    const blocks = Array.from({ length: 150 }, () => encryptBlock(blockPlaintext(BlockType.DATA, crypto().random(BLOCK_PAYLOAD_MAX)), 'random'));
    const circuit = await circuitTo(client, victim);
    const abort = new AbortController();
    setMaxListeners(64, abort.signal); // one listener per request in flight
    const acked: number[] = [];
    let pendingAtKill = -1;
    let next = 0;
    let inFlight = 0;
    let killing: Promise<unknown> | null = null;
    const worker = async (): Promise<void> => {
      while (next < blocks.length && !abort.signal.aborted) {
        const i = next++;
        inFlight++;
        try {
          const status = await storeItem(circuit, 'block', blocks[i]!.ref.rk, blocks[i]!.stored, { signal: abort.signal });
          if (status === 'ok') acked.push(i); // an acknowledgment, even one that raced the kill
          if (acked.length >= 50 && !killing) {
            pendingAtKill = inFlight - 1;
            killing = victim.kill('SIGKILL').then(() => abort.abort());
          }
        } catch {
          /* requests cut off by the kill */
        } finally {
          inFlight--;
        }
      }
    };
    await Promise.all(Array.from({ length: 12 }, worker));
    await killing;
    live = live.filter((r) => r !== victim);
    expect(acked.length).to.be.at.least(50);
    expect(pendingAtKill, 'writes in flight when the relay was killed').to.be.greaterThan(0);

    // Same port as before, so the descriptors other relays and the client hold still point at it.
    const restarted = await startRelay({
      dataDir: victim.dataDir,
      nickname: 'restarted',
      bootstrap: [net.bootstrap],
      timing: TIMING,
      listen: `127.0.0.1:${new URL(victim.address).port}`,
    });
    extraRelays.push(restarted);
    live.push(restarted);
    expect(restarted.fingerprint).to.equal(victim.fingerprint);

    const db = openStore(restarted);
    try {
      expect(db.pragma('integrity_check', { simple: true })).to.equal('ok');
      const have = db.prepare<[Uint8Array], { n: number }>('SELECT COUNT(*) AS n FROM blocks WHERE rk = ?');
      for (const i of acked) expect(have.get(blocks[i]!.ref.rk)!.n, `acknowledged block ${i}`).to.equal(1);
    } finally {
      db.close();
    }

    // Served byte-exact by the restarted relay, over a new circuit.
    const again = await circuitTo(client, restarted, 60_000);
    for (const i of acked) {
      const got = await fetchItem(again, 'block', blocks[i]!.ref.rk);
      expect(got, `acknowledged block ${i}`).to.not.equal(null);
      expect(sha256(got!)).to.equal(sha256(blocks[i]!.stored));
    }
    again.close();
  });
});

describe('content durability: a departed holder is noticed before its descriptor expires (relay processes)', function () {
  this.timeout(180_000);
  // Descriptors valid ten minutes: expiry plays no part here. The departure grace is three repair intervals (3 s).
  const LONG = { repair_interval: 1000, descriptor_lifetime: 600_000, descriptor_renew: 200_000 };
  let net: TestNetwork;
  let client: AlliumClient;
  let content: ContentClient;

  before(async () => {
    net = await startNetwork(7, { timing: LONG, authorities: 0 }); // unsalted placement, as above
    client = await startClient(net.bootstrap);
    content = new ContentClient(client);
  });

  after(async () => {
    content?.close();
    await client?.stop();
    await net?.stop();
  });

  it('a holder killed: the other holders stop counting it and restore k = 3 live copies while its descriptor is still valid', async () => {
    const data = patternBytes(2 * BLOCK_PAYLOAD_MAX, 77);
    const layout = await fileLayout(data);
    const link = await content.put(data, { convergent: true }); // the blocks fileLayout computed
    const all = client.directory.all();
    const relayOf = (d: Descriptor): RelayProcess => net.relays.find((r) => r.fingerprint === d.fingerprint)!;
    const victim = relayOf(holdersOf(layout.root.rk, all, 3)[0]!);
    await victim.kill('SIGKILL');
    const live = net.relays.filter((r) => r !== victim);
    const liveDescriptors = all.filter((d) => d.fingerprint !== victim.fingerprint);
    const holding = (rk: Uint8Array): RelayProcess[] => live.filter((r) => storedBlock(r, rk) !== null);
    await waitFor(
      () => [...layout.blocks.values()].every(({ ref }) => holdersOf(ref.rk, liveDescriptors, 3).every((h) => holding(ref.rk).includes(relayOf(h)))),
      60_000,
      'every block at its three nearest live relays',
    );
    // Nothing expired: every survivor still has the killed relay's descriptor.
    for (const r of live) expect(await r.metric('allium_directory_relays')).to.equal(net.relays.length);
    const departures = await Promise.all(live.map((r) => r.metric('allium_holder_departures_total')));
    expect(departures.reduce((a, b) => a + b, 0)).to.be.greaterThan(0);
    expect(sha256(await content.get(link))).to.equal(sha256(data));
  });
});
