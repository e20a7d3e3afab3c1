/**
 * A descriptor's address is not a request forgery (specs/link.md §1.1, specs/directory.md §2.3/§2.4): a relay
 * process with allow_private_addresses off, given by gossip a descriptor whose address is an HTTP service on its own
 * loopback (a canary on 127.0.0.1), never sends that service a request — neither for an overlay link nor to extend a
 * circuit — and a descriptor whose address carries a query is refused outright. The same descriptor does reach the
 * canary from a relay that allows private addresses, so the canary would see a forged request.
 */
import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { parseBootstrap } from '../../client/bootstrap.js';
import { buildCircuit, CircuitTable } from '../../client/circuit.js';
import { fetchFromRelay } from '../../client/directory.js';
import { concatBytes, utf8 } from '../../protocol/bytes.js';
import { encodeCbor } from '../../protocol/cbor.js';
import { signDescriptor, verifyDescriptor, type Descriptor } from '../../protocol/descriptor.js';
import { openLink } from '../../net/dial.js';
import type { Link } from '../../net/link.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { startRelay, waitFor, type RelayProcess } from '../helpers/network.js';

/** A descriptor for a new identity at `addr`, signed without the signer's own address check (forgeries need not pass it). */
function forged(addr: string): { identity: IdentityKey; raw: Uint8Array; onion: Uint8Array } {
  const identity = IdentityKey.generate();
  const onion = crypto().x25519Keypair().publicKey;
  const now = Date.now();
  const body = {
    v: 1,
    id: identity.publicKey,
    onion,
    addr,
    nick: 'canary',
    contact: '',
    family: [],
    bw: 1000,
    exit: ['reject *:*'],
    caps: [],
    proto: [1],
    pub: now,
    exp: now + 600_000,
  };
  const b = encodeCbor(body);
  const s = crypto().sign(concatBytes(utf8('allium-v1 descriptor'), b), identity.secretKey);
  return { identity, raw: encodeCbor({ b, s }), onion };
}

/** A relay link from a fresh relay identity, which may gossip. */
async function relayLink(relay: RelayProcess): Promise<Link> {
  const b = parseBootstrap(relay.bootstrap);
  return openLink(nodeSocketFactory, b.url, { role: 'initiator', responder: b.identity, identity: IdentityKey.generate() });
}

describe('descriptor addresses and private targets (relay processes)', function () {
  this.timeout(120_000);
  let canary: Server;
  let port: number;
  const requests: string[] = [];
  const relays: RelayProcess[] = [];

  before(async () => {
    const record = (req: IncomingMessage): void => void requests.push(`${req.method} ${req.url}`);
    canary = createServer((req, res) => {
      record(req);
      res.writeHead(200).end('admin');
    });
    canary.on('upgrade', (req, socket) => {
      record(req);
      socket.destroy();
    });
    await new Promise<void>((r) => canary.listen(0, '127.0.0.1', () => r()));
    port = (canary.address() as { port: number }).port;
  });
  after(async () => {
    for (const r of relays) await r.kill('SIGKILL');
    canary.closeAllConnections();
    canary.close();
  });

  it('with allow_private_addresses off: no request reaches a loopback service named by a gossiped descriptor', async () => {
    const relay = await startRelay({ nickname: 'guarded', extra: { allow_private_addresses: false } });
    relays.push(relay);
    const x = forged(`ws://127.0.0.1:${port}/admin/reset`);
    const gossip = await relayLink(relay);
    gossip.sendControl({ t: 'gossip-push', ds: [x.raw] });
    // The overlay tries to link with every relay it learns of (degree 8): the dial is refused before any byte leaves.
    await waitFor(
      async () => requests.length > 0 || (await relay.metric('allium_drops_total', { reason: 'dial_refused_address' })) >= 1,
      20_000,
      'the overlay dial',
    );
    expect(requests, 'requests at the canary after an overlay dial').to.deep.equal([]);

    // A circuit through the relay to that identity: the extension fails as unreachable, still without a request.
    const b = parseBootstrap(relay.bootstrap);
    const client = await openLink(nodeSocketFactory, b.url, { role: 'initiator', responder: b.identity });
    try {
      const self = (await fetchFromRelay(client, 0)).raws.map((r) => verifyDescriptor(r, Date.now())).find((d) => d.fingerprint === relay.fingerprint)!;
      const target = { ...verifyDescriptor(x.raw, Date.now()) } as Descriptor;
      let code = '';
      try {
        await buildCircuit(client, new CircuitTable(), [self, target], { timeoutMs: 20_000 });
      } catch (e) {
        code = (e as { code: string }).code;
        expect((e as { failedAfter?: number }).failedAfter, 'the first hop could not extend').to.equal(1);
      }
      expect(code).to.equal('ERR_HANDSHAKE_FAILED');
    } finally {
      client.close();
    }
    expect(requests, 'requests at the canary after an extension').to.deep.equal([]);
    gossip.close();
  });

  it('refuses a descriptor whose address carries a query (and closes the link that gossiped it)', async () => {
    const relay = relays[0]!;
    const q = forged(`ws://127.0.0.1:${port}/admin?action=reset`);
    const link = await relayLink(relay);
    const closed = new Promise<string | null>((r) => link.once('link:close', (e) => r(e?.code ?? null)));
    link.sendControl({ t: 'gossip-push', ds: [q.raw] });
    const timeout = new Promise<string>((r) => setTimeout(() => r('still open'), 10_000).unref());
    expect(await Promise.race([closed, timeout]), 'the link that gossiped it').to.not.equal('still open');
    await waitFor(async () => (await relay.metric('allium_errors_total', { code: 'ERR_DESCRIPTOR' })) >= 1, 5000, 'ERR_DESCRIPTOR counted');
    const probe = await relayLink(relay);
    const { raws } = await fetchFromRelay(probe, 0);
    probe.close();
    expect(raws.map((r) => verifyDescriptor(r, Date.now()).fingerprint)).to.not.include(q.identity.fingerprint);
    expect(requests).to.deep.equal([]);
  });

  it('with allow_private_addresses on (a loopback test network), the same descriptor does reach the canary', async () => {
    const relay = await startRelay({ nickname: 'open' });
    relays.push(relay);
    const x = forged(`ws://127.0.0.1:${port}/admin/reset`);
    const gossip = await relayLink(relay);
    gossip.sendControl({ t: 'gossip-push', ds: [x.raw] });
    await waitFor(() => requests.length > 0, 20_000, 'a request at the canary');
    expect(requests[0]).to.match(/^GET \/admin\/reset\?token=/);
    gossip.close();
    // (signDescriptor itself refuses such an address: nothing honest publishes one.)
    expect(() =>
      signDescriptor(
        {
          id: x.identity.publicKey,
          onion: x.onion,
          addr: `ws://127.0.0.1:${port}/a?b`,
          nick: 'n',
          contact: '',
          family: [],
          bw: 1,
          exit: ['reject *:*'],
          caps: [],
          pub: Date.now(),
          exp: Date.now() + 60_000,
        },
        x.identity.secretKey,
      ),
    ).to.throw();
  });
});
