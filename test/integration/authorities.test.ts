/**
 * Optional directory authorities: relay processes, three of them authorities with an approved list; a client that
 * requires their consensus uses only the relays a majority lists, and refuses to run without a majority.
 */
import { expect } from 'chai';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IdentityKey } from '../../crypto/keys.js';
import { toHex } from '../../protocol/bytes.js';
import { AlliumClient } from '../../client/client.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { startRelay, tempDir, waitFor, type RelayProcess } from '../helpers/network.js';

function preparedDir(): { dir: string; key: IdentityKey } {
  const dir = tempDir('allium-auth-');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = IdentityKey.generate();
  writeFileSync(join(dir, 'identity.key'), toHex(key.seed) + '\n', { mode: 0o600 });
  return { dir, key };
}

describe('directory authorities (relay processes)', function () {
  this.timeout(120_000);
  const relays: RelayProcess[] = [];
  let prepared: { dir: string; key: IdentityKey }[] = [];
  let authorities: string[] = [];
  let approved: string[] = [];

  before(async () => {
    prepared = Array.from({ length: 5 }, preparedDir);
    authorities = prepared.slice(0, 3).map((p) => p.key.fingerprint);
    approved = prepared.slice(0, 4).map((p) => p.key.fingerprint); // relay 4 is not approved
    const timing = { consensus_interval: 500 };
    const common = { directory_authorities: authorities, authority_approved: approved };
    relays.push(await startRelay({ dataDir: prepared[0]!.dir, nickname: 'auth0', timing, extra: { ...common, authority: true } }));
    for (let i = 1; i < 5; i++) {
      relays.push(
        await startRelay({ dataDir: prepared[i]!.dir, nickname: `r${i}`, bootstrap: [relays[0]!.bootstrap], timing, extra: { ...common, authority: i < 3 } }),
      );
    }
    await waitFor(async () => (await Promise.all(relays.map((r) => r.metric('allium_directory_relays')))).every((n) => n === 5), 20_000, 'convergence');
  });
  after(async () => {
    for (const r of relays) await r.kill('SIGKILL');
  });

  it('a client requiring the authorities uses only relays a majority of them lists', async () => {
    let client: AlliumClient | null = null;
    await waitFor(
      async () => {
        client = new AlliumClient({ bootstrap: [relays[0]!.bootstrap], socketFactory: nodeSocketFactory, authorities, poolSize: 0 });
        try {
          await client.start();
          return client.directory.all().length === 4;
        } catch {
          return false;
        } finally {
          await client.stop();
        }
      },
      20_000,
      'a consensus from a majority',
    );
    const c = new AlliumClient({ bootstrap: [relays[0]!.bootstrap], socketFactory: nodeSocketFactory, authorities, poolSize: 0 });
    await c.start();
    const listed = c.directory
      .all()
      .map((d) => d.fingerprint)
      .sort();
    expect(listed).to.deep.equal([...approved].sort());
    expect(listed).to.not.include(prepared[4]!.key.fingerprint);
    await c.stop();
  });

  it('a client that requires authorities it cannot hear from refuses to use the directory', async () => {
    const strangers = [IdentityKey.generate(), IdentityKey.generate(), IdentityKey.generate()].map((k) => k.fingerprint);
    // The line without the authorities it names (the old form): with them, a set other than `strangers` is ERR_CONFIG.
    const plain = relays[0]!.bootstrap.split(' ').slice(0, 2).join(' ');
    const c = new AlliumClient({ bootstrap: [plain], socketFactory: nodeSocketFactory, authorities: strangers, poolSize: 0 });
    let code = '';
    try {
      await c.start();
    } catch (e) {
      code = (e as { code: string }).code;
    } finally {
      await c.stop();
    }
    expect(code).to.equal('ERR_DIRECTORY');
  });
});
