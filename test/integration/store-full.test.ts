/**
 * A store that cannot take more stops advertising itself (specs/content.md §7.3): a relay whose disk has less free
 * space than storage_min_free_disk never lists `store`; a relay whose quota fills with items it must keep drops
 * `store` from its descriptor, placement moves to other relays, and puts and gets go on with every new item at k
 * holders that have room. A store closed for want of disk opens again once space returns.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AlliumClient } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { BLOCK_LEN } from '../../protocol/chk.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { Flag } from '../../protocol/flags.js';
import { parseLink } from '../../protocol/content-link.js';
import { startClient, storedBlock } from '../helpers/content.js';
import { mountTmpfs, unmount } from '../helpers/chaos.js';
import { startNetwork, startRelay, tempDir, waitFor, type RelayProcess, type TestNetwork } from '../helpers/network.js';

describe('a full store stops advertising itself (relay processes)', function () {
  this.timeout(300_000);
  let net: TestNetwork;
  let lowDisk: RelayProcess;
  let small: RelayProcess;
  let client: AlliumClient;
  let content: ContentClient;

  before(async () => {
    net = await startNetwork(4, { timing: { repair_interval: 1000 } });
    [lowDisk, small] = await Promise.all([
      startRelay({
        nickname: 'lowdisk',
        bootstrap: [net.bootstrap],
        timing: { repair_interval: 1000 },
        extra: { directory_authorities: net.authorities, storage_min_free_disk: 2 ** 52 },
      }),
      startRelay({
        nickname: 'small',
        bootstrap: [net.bootstrap],
        timing: { repair_interval: 1000 },
        extra: { directory_authorities: net.authorities, storage_quota: 24 * BLOCK_LEN },
      }),
    ]);
    // The network's authorities: the client places content by their consensus, as the relays that repair it do
    // (without them the client's unsalted placement and the relays' salted one named different third holders).
    client = await startClient(net.bootstrap, 3, net.authorities);
    content = new ContentClient(client);
    await waitFor(
      async () => {
        await client.refreshDirectory();
        // all six in the consensus, the small relay a holder there (its store takes part in placement)
        return (
          client.directory.all().length === 6 &&
          client.directory.view.has(
            client.directory.all().find((d) => d.fingerprint === small.fingerprint)!,
            Flag.HOLDER,
          )
        );
      },
      60_000,
      'six relays in the client directory, the small one with the Holder flag',
    );
  });

  after(async () => {
    content?.close();
    await client?.stop();
    await Promise.all([lowDisk?.kill('SIGKILL'), small?.kill('SIGKILL')]);
    await net?.stop();
  });

  const capsOf = (r: RelayProcess): string[] => client.directory.all().find((d) => d.fingerprint === r.fingerprint)!.caps;

  it('a relay with too little free disk never advertises store', async () => {
    expect(await lowDisk.metric('allium_store_open')).to.equal(0);
    expect(capsOf(lowDisk)).to.not.include('store');
    expect(capsOf(lowDisk)).to.include('rendezvous');
    expect(await small.metric('allium_store_open')).to.equal(1);
    expect(capsOf(small)).to.include('store');
    expect(lowDisk.logs()).to.include('store full: no longer advertising it');
  });

  it('a relay whose quota fills drops store; puts and gets go on, new items placed elsewhere', async () => {
    const links: { link: string; data: Buffer }[] = [];
    // Until the small relay has closed its store: each put places about half its blocks there (k = 3 of 5).
    for (let i = 0; i < 40 && (await small.metric('allium_store_open')) === 1; i++) {
      const data = randomBytes(6 * BLOCK_LEN);
      links.push({ link: await content.put(data), data });
    }
    await waitFor(async () => (await small.metric('allium_store_open')) === 0, 30_000, 'the small relay closing its store');
    expect(small.logs()).to.include('store full: no longer advertising it');
    await waitFor(
      async () => {
        await client.refreshDirectory();
        return !capsOf(small).includes('store');
      },
      60_000,
      'a directory in which the small relay no longer lists store',
    );
    // What the full relay held is copied to the holders that replace it: every root block put so far reaches k copies
    // among the relays that still advertise store.
    const roots = links.map(({ link }) => (parseLink(link) as { rk: Uint8Array }).rk);
    const all = [...net.relays, lowDisk, small];
    const nick = (r: RelayProcess): string => (r === small ? 'small' : r === lowDisk ? 'lowdisk' : `r${net.relays.indexOf(r)}`);
    const name = (fp: string): string => {
      const r = all.find((x) => x.fingerprint === fp);
      return r ? nick(r) : fp.slice(0, 8);
    };
    let short = '';
    await waitFor(
      async () => {
        // In the client's current view: the relays may have moved to a newer consensus (and shared random value).
        await client.refreshDirectory();
        for (const rk of roots) {
          const copies = (await content.fetchFromAll('block', rk, { head: true })).length;
          if (copies >= 3) continue;
          // What a failure reports: where this block is on disk, against the holders the client asks.
          short =
            `root ${Buffer.from(rk).toString('hex').slice(0, 8)}: ${copies} answered; client's holders ` +
            `${content
              .holders(rk)
              .map((h) => name(h.fingerprint))
              .join(', ')}; on disk at ` +
            `${all
              .filter((r) => storedBlock(r, rk))
              .map(nick)
              .join(', ')}; not Holder in the client's consensus: ` +
            `${
              all
                .filter((r) => !client.directory.view.has({ fingerprint: r.fingerprint } as Descriptor, Flag.HOLDER))
                .map(nick)
                .join(', ') || 'none'
            }; ` +
            `departure lines: ${all
              .map(
                (r) =>
                  `${nick(r)} ${
                    r
                      .logs()
                      .split('\n')
                      .filter((l) => /holder unreachable|answers again/.test(l)).length
                  }`,
              )
              .join(', ')}`;
          return false;
        }
        return true;
      },
      90_000,
      () => `three copies of every root block at the relays that took over (${short})`,
    );
    // New items: never placed at the full relay, stored at k holders.
    for (let i = 0; i < 3; i++) {
      const data = randomBytes(3 * BLOCK_LEN);
      const link = await content.put(data);
      const rk = (parseLink(link) as { rk: Uint8Array }).rk;
      expect(content.holders(rk).map((h) => h.fingerprint)).to.not.include(small.fingerprint);
      expect(content.holders(rk)).to.have.length(3);
      links.push({ link, data });
    }
    // Everything put before and after reads back.
    for (const { link, data } of links) expect(Buffer.from(await content.get(link)).equals(data)).to.equal(true);
  });
});

describe('a store closed for want of disk opens again when space returns (relay process, tmpfs)', function () {
  this.timeout(120_000);
  let dir: string;
  let relay: RelayProcess | null = null;
  let mounted = false;

  before(function () {
    dir = tempDir('allium-disk-');
    mounted = mountTmpfs(dir, 64 * 1024 * 1024);
    if (!mounted) this.skip(); // mounting needs privileges this machine may not give
  });

  after(async () => {
    await relay?.kill('SIGKILL');
    if (mounted) unmount(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  it('closes below storage_min_free_disk, and reopens once twice that is free for a renewal interval', async () => {
    relay = await startRelay({
      nickname: 'disk',
      dataDir: dir,
      timing: { descriptor_renew: 2000, maintenance_interval: 250 },
      extra: { storage_min_free_disk: 16 * 1024 * 1024 },
    });
    expect(await relay.metric('allium_store_open')).to.equal(1);
    const st = statfsSync(dir);
    const filler = join(dir, 'filler');
    writeFileSync(filler, Buffer.alloc(Number(st.bavail) * Number(st.bsize) - 8 * 1024 * 1024));
    await waitFor(async () => (await relay!.metric('allium_store_open')) === 0, 20_000, 'the store closing');
    expect(relay.logs()).to.include('store full: no longer advertising it');
    const closedAt = Date.now();
    rmSync(filler);
    await waitFor(async () => (await relay!.metric('allium_store_open')) === 1, 30_000, 'the store opening again');
    expect(Date.now() - closedAt, 'held closed for a renewal interval first').to.be.at.least(2000);
    expect(relay.logs()).to.include('store has room again: advertising it');
  });
});
