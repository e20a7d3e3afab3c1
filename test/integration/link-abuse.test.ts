/**
 * Links under abuse, against a real relay process: wrong fingerprints, garbage and malformed frames, oversized
 * messages, forged descriptors, handshake floods and a peer that stops reading. Each is refused with the right
 * error while other links keep working and memory stays bounded.
 */
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import WebSocket from 'ws';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { parseBootstrap } from '../../client/bootstrap.js';
import { buildCircuit, CircuitTable } from '../../client/circuit.js';
import { fetchFromRelay } from '../../client/directory.js';
import { encodeCbor } from '../../protocol/cbor.js';
import { signDescriptor, verifyDescriptor } from '../../protocol/descriptor.js';
import { FRAME_LEN } from '../../protocol/link-handshake.js';
import { RelayCommand } from '../../protocol/relay-cell.js';
import { encodeBegin } from '../../protocol/stream-messages.js';
import { openLink } from '../../net/dial.js';
import type { Link } from '../../net/link.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { sleep, startRelay, waitFor, type RelayProcess } from '../helpers/network.js';

function rawSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((r) => (ws.readyState === WebSocket.CLOSED ? r(-1) : ws.once('close', (code) => r(code))));
}

async function clientLink(line: string): Promise<Link> {
  const b = parseBootstrap(line);
  return openLink(nodeSocketFactory, b.url, { role: 'initiator', responder: b.identity });
}

async function stillServes(relay: RelayProcess): Promise<void> {
  const link = await clientLink(relay.bootstrap);
  const { raws } = await fetchFromRelay(link, 0);
  expect(raws.length).to.be.greaterThan(0);
  link.close();
}

describe('link abuse (relay process)', function () {
  this.timeout(120_000);
  let relay: RelayProcess;
  let exit: RelayProcess;

  before(async () => {
    relay = await startRelay({ nickname: 'target', extra: { handshakes_per_second: 20 } });
    exit = await startRelay({ nickname: 'exit', bootstrap: [relay.bootstrap], exitPolicy: ['accept 127.0.0.1:*', 'reject *:*'] });
    await waitFor(async () => (await relay.metric('allium_directory_relays')) === 2, 15_000, 'two relays');
  });
  after(async () => {
    await relay?.kill('SIGKILL');
    await exit?.kill('SIGKILL');
  });

  it('refuses a dial that expects another fingerprint (ERR_LINK_AUTH for the dialer, probe for the relay)', async () => {
    const b = parseBootstrap(relay.bootstrap);
    const wrong = IdentityKey.generate().publicKey;
    let code = '';
    try {
      await openLink(nodeSocketFactory, b.url, { role: 'initiator', responder: wrong }, { timers: { handshakeTimeoutMs: 3000 } });
    } catch (e) {
      code = (e as { code: string }).code;
    }
    // The relay cannot decrypt a first message made for another identity, so it closes; the dialer never gets a
    // response that authenticates.
    expect(['ERR_LINK_AUTH', 'ERR_LINK_CLOSED', 'ERR_TIMEOUT']).to.include(code);
    await waitFor(async () => (await relay.metric('allium_handshakes_total', { result: 'ERR_LINK_PROBE' })) >= 1, 5000, 'probe counted');
    await stillServes(relay);
  });

  it('closes a link that sends random bytes, a short message, a text message or an oversized message', async () => {
    const url = parseBootstrap(relay.bootstrap).url;
    const a = await rawSocket(url);
    a.send(crypto().random(FRAME_LEN));
    expect(await closed(a)).to.be.oneOf([1002, 1006, 1005]);
    const b = await rawSocket(url);
    b.send(crypto().random(100));
    expect(await closed(b)).to.be.oneOf([1002, 1006, 1005]);
    const c = await rawSocket(url);
    c.send('GET / HTTP/1.1');
    expect(await closed(c)).to.be.oneOf([1002, 1006, 1005]);
    const d = await rawSocket(url);
    d.send(new Uint8Array(FRAME_LEN * 20));
    expect(await closed(d)).to.equal(1009);
    await stillServes(relay);
  });

  it('closes an authenticated link that sends a frame that does not authenticate', async () => {
    const link = await clientLink(relay.bootstrap);
    const closedWith = new Promise<string | null>((r) => link.once('link:close', (e) => r(e?.code ?? null)));
    link.socket.send(crypto().random(FRAME_LEN));
    await closedWith;
    await waitFor(async () => (await relay.metric('allium_errors_total', { code: 'ERR_LINK_FRAME' })) >= 1, 5000, 'frame error counted');
    await stillServes(relay);
  });

  it('drops a relay link that gossips a forged descriptor, and keeps the directory clean', async () => {
    const b = parseBootstrap(relay.bootstrap);
    const me = IdentityKey.generate();
    const link = await openLink(nodeSocketFactory, b.url, { role: 'initiator', responder: b.identity, identity: me });
    const now = Date.now();
    const good = signDescriptor(
      {
        id: me.publicKey,
        onion: crypto().x25519Keypair().publicKey,
        addr: 'ws://127.0.0.1:1/allium',
        nick: 'forger',
        contact: '',
        family: [],
        bw: 1000,
        exit: ['reject *:*'],
        caps: [],
        pub: now,
        exp: now + 60_000,
      },
      me.secretKey,
    );
    const forged = Uint8Array.from(good.raw);
    forged[forged.length - 1]! ^= 1; // flip a signature bit
    const closedWith = new Promise<string | null>((r) => link.once('link:close', (e) => r(e?.code ?? null)));
    link.sendControl({ t: 'gossip-push', ds: [forged] });
    await closedWith;
    await waitFor(async () => (await relay.metric('allium_errors_total', { code: 'ERR_SIGNATURE' })) >= 1, 5000, 'signature error counted');
    const probe = await clientLink(relay.bootstrap);
    const { raws } = await fetchFromRelay(probe, 0);
    probe.close();
    expect(raws.map((r) => verifyDescriptor(r, Date.now()).nick)).to.not.include('forger');
  });

  it('refuses an oversized control message', async () => {
    const link = await clientLink(relay.bootstrap);
    const closedWith = new Promise<string | null>((r) => link.once('link:close', (e) => r(e?.code ?? null)));
    // 300 KiB of CBOR in CONTROL fragments: beyond MAX_CONTROL_MESSAGE (256 KiB).
    const huge = encodeCbor({ t: 'gossip-push', ds: [new Uint8Array(300 * 1024)] });
    const { fragmentControl, controlBody, CellCommand } = await import('../../protocol/cell.js');
    for (const f of fragmentControl(huge)) link.sendCell(0, CellCommand.CONTROL, controlBody(f));
    await closedWith;
    await stillServes(relay);
  });

  it('refuses a handshake flood beyond the rate limit and still serves afterwards', async () => {
    const url = parseBootstrap(relay.bootstrap).url;
    const results = await Promise.allSettled(Array.from({ length: 120 }, () => rawSocket(url)));
    const refused = results.filter((r) => r.status === 'rejected').length;
    for (const r of results) if (r.status === 'fulfilled') r.value.terminate();
    expect(refused).to.be.greaterThan(40);
    expect(await relay.metric('allium_handshakes_total', { result: 'handshake_rate' })).to.be.greaterThan(40);
    // Time, not an event: the handshake bucket refills at its rate (the next test needs it full too).
    await sleep(2500);
    await stillServes(relay);
  });

  it('keeps memory bounded when a client stops reading a download', async function () {
    // An endless HTTP response behind the exit.
    const chunk = Buffer.alloc(64 * 1024, 1);
    const server: Server = createServer((_req, res) => {
      res.writeHead(200);
      const pump = (): void => {
        while (res.write(chunk)) {
          /* fill */
        }
        res.once('drain', pump);
      };
      pump();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const link = await clientLink(relay.bootstrap);
      const table = new CircuitTable();
      const probeLink = await clientLink(relay.bootstrap);
      const { raws } = await fetchFromRelay(probeLink, 0);
      probeLink.close();
      const descs = raws.map((r) => verifyDescriptor(r, Date.now()));
      const path = [descs.find((d) => d.fingerprint === relay.fingerprint)!, descs.find((d) => d.fingerprint === exit.fingerprint)!];
      const circuit = await buildCircuit(link, table, path);
      const s = circuit.mux.open();
      let received = 0;
      s.on('stream:data', (d) => (received += d.length)); // never calls consumed(): no stream SENDMEs
      circuit.send({ command: RelayCommand.BEGIN, streamId: s.id, data: encodeBegin({ a: '127.0.0.1', p: port }) });
      await new Promise((r) => s.once('stream:connected', () => r(null)));
      s.write(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      link.socket.pause(); // stop reading entirely
      const before = [relay.rssBytes(), exit.rssBytes()];
      // A window of time, not an event: what is measured is that nothing grows while the client does not read.
      await sleep(4000);
      // Every relay on the path: the guard (whose link to the client does not drain) and the exit (whose circuit
      // window, sized by congestion control, closes once no SENDME comes back; streams.md §4.6).
      const growth = [relay.rssBytes() - before[0]!, exit.rssBytes() - before[1]!];
      console.log(
        `      a client that stops reading: RSS growth guard ${(growth[0]! / 1048576).toFixed(1)} MiB, exit ${(growth[1]! / 1048576).toFixed(1)} MiB; received ${(received / 1048576).toFixed(2)} MiB`,
      );
      for (const g of growth) expect(g).to.be.lessThan(40 * 1024 * 1024);
      expect(received).to.be.lessThan(8 * 1024 * 1024);
      await stillServes(relay);
      link.close();
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
