/**
 * Replays across a restart (specs/circuits.md §3.4.1, specs/link.md §2.4), against a real relay process restarted on
 * the same data directory: a CREATE and an upgrade token recorded before the restart are refused after it — after a
 * clean stop and after a crash (the journals survive the process) — and after a simulated loss of the machine the
 * relay retires its onion key and starts its link replay cache cold.
 */
import { expect } from 'chai';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crypto } from '../../crypto/index.js';
import { parseBootstrap } from '../../client/bootstrap.js';
import { fetchFromRelay } from '../../client/directory.js';
import { CellCommand, createBody, decodeDestroyBody, DestroyReason, type Cell } from '../../protocol/cell.js';
import { verifyDescriptor, type Descriptor } from '../../protocol/descriptor.js';
import { createOnion } from '../../protocol/onion.js';
import { openLink, type SocketFactory } from '../../net/dial.js';
import type { Link } from '../../net/link.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { rawHttp, startRelay, tempDir, waitFor, type RelayProcess } from '../helpers/network.js';

function nextCell(link: Link, circId: number): Promise<Cell> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no cell on circuit ${circId}`));
    }, 30_000);
    const off = link.on('link:cell', (cell) => {
      if (cell.circId !== circId) return;
      clearTimeout(timer);
      off();
      resolve(cell);
    });
  });
}

/** Sends CREATE(header) on a fresh circuit id; resolves with the answer (CREATED or DESTROY). */
async function create(link: Link, header: Uint8Array): Promise<Cell> {
  const circId = (new DataView(crypto().random(4).buffer).getUint32(0) | 0x80000000) >>> 0;
  const answer = nextCell(link, circId);
  link.sendCell(circId, CellCommand.CREATE, createBody(header));
  return answer;
}

/** A client link to the relay, the URL it dialed (with its upgrade token), and the relay's own descriptor. */
async function connect(relay: RelayProcess, now?: () => number): Promise<{ link: Link; url: string; self: Descriptor }> {
  const b = parseBootstrap(relay.bootstrap);
  let url = '';
  const capture: SocketFactory = (u, options) => {
    url = u;
    return nodeSocketFactory(u, options);
  };
  const link = await openLink(capture, b.url, { role: 'initiator', responder: b.identity }, now ? { now } : {});
  const self = (await fetchFromRelay(link, 0)).raws.map((r) => verifyDescriptor(r, Date.now())).find((d) => d.fingerprint === relay.fingerprint)!;
  return { link, url, self };
}

/** The relay's answer to an upgrade request carrying a recorded token: 101 (admitted) or 404 (the miss). */
async function replayToken(relay: RelayProcess, url: string): Promise<number> {
  const u = new URL(url);
  return (await rawHttp({ port: Number(new URL(relay.address).port), path: `${u.pathname}${u.search}`, upgrade: true })).status;
}

describe('replays across a restart (relay process, same data directory)', function () {
  this.timeout(180_000);
  const dataDir = tempDir('allium-replay-');
  // Probe resistant, so a replayed upgrade token answers the miss (404) and an admitted one 101.
  const extra = { probe_resistant: true };
  let relay: RelayProcess | null = null;

  after(async () => {
    await relay?.kill('SIGKILL');
  });

  for (const how of ['SIGTERM', 'SIGKILL'] as const) {
    it(`refuses a CREATE and an upgrade token recorded before a ${how === 'SIGTERM' ? 'clean stop' : 'crash'}, and keeps its onion key`, async () => {
      await relay?.kill('SIGKILL');
      relay = await startRelay({ dataDir, nickname: 'replay', extra });
      const before = await connect(relay);
      const onion = createOnion([{ identity: before.self.id, onionKey: before.self.onion }]);
      expect((await create(before.link, onion.header)).command).to.equal(CellCommand.CREATED);
      const again = await create(before.link, onion.header);
      expect(again.command, 'a replay before the restart').to.equal(CellCommand.DESTROY);
      before.link.close();
      expect(await replayToken(relay, before.url), 'a replayed token before the restart').to.equal(404);

      await relay.kill(how);
      relay = await startRelay({ dataDir, nickname: 'replay', extra });
      const after = await connect(relay);
      expect(crypto().equal(after.self.onion, before.self.onion), 'the onion key survived').to.equal(true);
      const replayed = await create(after.link, onion.header);
      expect(replayed.command, 'the recorded CREATE after the restart').to.equal(CellCommand.DESTROY);
      expect(decodeDestroyBody(replayed.body)).to.equal(DestroyReason.PROTOCOL);
      expect(await relay.metric('allium_errors_total', { code: 'ERR_ONION_REPLAY' })).to.be.greaterThanOrEqual(1);
      // The kept key still opens fresh onions, and a fresh link is admitted.
      const fresh = createOnion([{ identity: after.self.id, onionKey: after.self.onion }]);
      expect((await create(after.link, fresh.header)).command).to.equal(CellCommand.CREATED);
      after.link.close();
      expect(await replayToken(relay, before.url), 'the recorded upgrade token after the restart').to.equal(404);
      await relay.kill('SIGTERM');
      relay = null;
    });
  }

  it('after a loss of the machine (the journals may have lost writes) retires its onion key and starts cold', async () => {
    const skew = 15_000;
    await relay?.kill('SIGKILL');
    const dir = tempDir('allium-replay-lost-');
    const timing = { clock_skew: skew };
    relay = await startRelay({ dataDir: dir, nickname: 'lost', extra, timing });
    const before = await connect(relay);
    const onion = createOnion([{ identity: before.self.id, onionKey: before.self.onion }]);
    expect((await create(before.link, onion.header)).command).to.equal(CellCommand.CREATED);
    before.link.close();
    await relay.kill('SIGKILL');
    // Another kernel: what the page cache held may not have reached the disk.
    mkdirSync(join(dir, 'replay'), { recursive: true });
    writeFileSync(join(dir, 'replay', 'boot'), '00000000-0000-0000-0000-000000000000\n');
    relay = await startRelay({ dataDir: dir, nickname: 'lost', extra, timing });
    expect(relay.logs()).to.match(/retired the onion keys/);

    // Cold: a link whose clock is right is refused (until start + clock_skew); one whose clock runs ahead is admitted.
    let refused = false;
    try {
      await connect(relay);
    } catch {
      refused = true;
    }
    expect(refused, 'a link with a right clock during the cold period').to.equal(true);
    let ahead: Awaited<ReturnType<typeof connect>> | null = null;
    await waitFor(
      async () => {
        ahead = await connect(relay!, () => Date.now() + skew - 100).catch(() => null);
        return ahead !== null;
      },
      10_000,
      'a link whose clock runs ahead',
    );
    ahead = ahead!;
    expect(crypto().equal(ahead.self.onion, before.self.onion), 'a new onion key').to.equal(false);
    const replayed = await create(ahead.link, onion.header);
    expect(replayed.command).to.equal(CellCommand.DESTROY);
    expect(decodeDestroyBody(replayed.body), 'the retired key opens nothing').to.equal(DestroyReason.CRYPTO);
    ahead.link.close();
    await waitFor(
      async () => {
        try {
          (await connect(relay!)).link.close();
          return true;
        } catch {
          return false;
        }
      },
      30_000,
      'links with a right clock once the cold period is over',
    );
  });
});
