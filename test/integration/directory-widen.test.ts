/**
 * A client with one bootstrap line widens to several directory sources before it trusts a directory
 * (specs/directory.md §6.4, stage `widen`). The bootstrap relay here lists a relay no other relay knows (a valid
 * self-signed descriptor of a Sybil that was never gossiped): with the bootstrap relay as the only source, the
 * client took it; widened to three sources, the majority cross-check leaves it out.
 */
import { expect } from 'chai';
import { rmSync } from 'node:fs';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { AlliumClient, type BootstrapStage, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { signDescriptor } from '../../protocol/descriptor.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { Relay } from '../../relay/relay.js';
import { silentLogger } from '../../relay/logger.js';
import { FAST_TIMING, tempDir, waitFor } from '../helpers/network.js';
import { SINGLE_HOST_NETWORK } from '../../relay/config.js';

describe('directory sources: one bootstrap line widens to several before the directory is trusted', function () {
  this.timeout(120_000);
  const relays: Relay[] = [];
  const dirs: string[] = [];
  let sybil = '';

  before(async () => {
    for (let i = 0; i < 4; i++) {
      const dir = tempDir('allium-widen-');
      dirs.push(dir);
      const relay = new Relay(
        {
          nickname: `w${i}`,
          listen: '127.0.0.1:0',
          data_dir: dir,
          bootstrap: relays.length ? [relays[0]!.bootstrapLine] : [],
          storage_quota: 0,
          ...SINGLE_HOST_NETWORK,
          // anti-entropy slow enough that the Sybil below is never passed on during the test
          timing: { ...FAST_TIMING, gossip_interval: 600_000 },
        },
        { log: silentLogger() },
      );
      await relay.start();
      relays.push(relay);
    }
    await waitFor(() => relays.every((r) => r.directory.size === 4), 30_000, 'every relay to know all four');
    // A relay only the bootstrap relay lists: a valid descriptor, added to its store without being gossiped.
    const key = IdentityKey.generate();
    const now = Date.now();
    const d = signDescriptor(
      {
        id: key.publicKey,
        onion: crypto().x25519Keypair().publicKey,
        addr: 'ws://127.0.0.1:1/allium',
        nick: 'sybil',
        contact: '',
        family: [],
        bw: 1_000_000,
        exit: ['reject *:*'],
        caps: ['intro', 'rendezvous'],
        pub: now,
        exp: now + 3600_000,
      },
      key.secretKey,
    );
    relays[0]!.directory.add(d, now);
    sybil = key.fingerprint;
  });

  after(async () => {
    await Promise.all(relays.map((r) => r.stop()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('asks three relays, and leaves out what only the bootstrap relay lists', async () => {
    expect(relays[0]!.directory.all().map((d) => d.fingerprint)).to.include(sybil);
    const client = new AlliumClient({ bootstrap: [relays[0]!.bootstrapLine], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0 });
    const stages: BootstrapStage[] = [];
    const progress: string[] = [];
    client.on('client:bootstrap', (s) => stages.push(s));
    client.on('client:progress', (m) => progress.push(m));
    try {
      await client.start({ signal: AbortSignal.timeout(60_000) });
      console.log(`      ${progress.filter((m) => m.startsWith('directory:')).join('; ')}`);
      expect(
        client.directory.all().map((d) => d.fingerprint),
        'the relay only the bootstrap relay lists',
      ).not.to.include(sybil);
      expect(client.directory.size).to.equal(4);
      expect(stages.map((s) => s.stage)).to.deep.equal(['bootstrap', 'widen']);
      expect(stages[1]!.reached).to.be.at.least(2);
      expect(progress.find((m) => m.startsWith('directory:'))).to.match(/^directory: 4 relays from [34] sources \(1 not confirmed by a majority\)$/);
    } finally {
      await client.stop();
    }
  });
});
