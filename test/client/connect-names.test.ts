/**
 * Hidden addresses in any spelling never reach an exit (specs/streams.md §6.4, messaging.md §8 "Hostnames"):
 * `AlliumClient.connect`, directly and behind the SOCKS5 listener, normalises the host before it decides where the
 * stream goes. The client here has no network: the circuits circuitFor() gives record the host of every BEGIN meant
 * for an exit, and the Messenger's connector is a spy.
 */
import { expect } from 'chai';
import { connect as tcpConnect } from 'node:net';
import { AlliumClient } from '../../client/client.js';
import { startSocksServer, SocksReply } from '../../client/socks.js';
import { AlliumError, isAlliumError } from '../../protocol/errors.js';
import { RelayCommand, type RelayMessage } from '../../protocol/relay-cell.js';
import { decodeBegin, EndReason } from '../../protocol/stream-messages.js';
import { nodeSocketFactory } from '../../net/ws-node.js';

interface Probe {
  client: AlliumClient;
  /** Hosts that BEGIN carried towards an exit. */
  toExit: string[];
  /** Hosts handed to the Messenger's connector. */
  toMessenger: string[];
}

/**
 * A client whose circuits to exits are stand-ins that record the host of each BEGIN (and then fail the stream), and
 * whose Messenger connector, if any, is a spy.
 */
function probe(withMessenger: boolean): Probe {
  const client = new AlliumClient({ bootstrap: [], socketFactory: nodeSocketFactory, poolSize: 0 });
  const p: Probe = { client, toExit: [], toMessenger: [] };
  (client as unknown as { circuitFor: () => Promise<unknown> }).circuitFor = async () => {
    let onEnd: ((r: EndReason) => void) | null = null;
    const stream = {
      id: 1,
      once: (event: string, fn: (r: EndReason) => void) => {
        if (event === 'stream:end') onEnd = fn;
        return () => undefined;
      },
    };
    return {
      mux: { open: () => stream, reset: () => onEnd?.(EndReason.MISC) },
      send: (m: RelayMessage) => {
        if (m.command === RelayCommand.BEGIN) p.toExit.push(decodeBegin(m.data).a);
        return false;
      },
    };
  };
  if (withMessenger) {
    client.useAddressConnector(async (address) => {
      p.toMessenger.push(address);
      throw new AlliumError('ERR_UNREACHABLE', 'no messenger in this test');
    });
  }
  return p;
}

async function codeOf(p: Promise<unknown>): Promise<string | null> {
  try {
    await p;
    return null;
  } catch (e) {
    if (!isAlliumError(e)) throw e;
    return e.code;
  }
}

/** A SOCKS5 CONNECT to a domain name; resolves with the reply code. */
function socksConnect(socksPort: number, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect(socksPort, '127.0.0.1');
    let stage = 0;
    s.on('data', (d) => {
      if (stage === 0) {
        stage = 1;
        const name = Buffer.from(host, 'latin1');
        s.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 0xff])]));
      } else {
        s.destroy();
        resolve(d[1]!);
      }
    });
    s.once('error', reject);
    s.write(Buffer.from([5, 1, 0]));
  });
}

const SPELLINGS = ['x.allium.', 'X.ALLIUM', 'X.Allium.', 'sub.X.allium.'];

describe('hidden addresses never reach an exit as ordinary names', () => {
  it('connect() hands every spelling to the Messenger, normalised, and none to an exit', async () => {
    const p = probe(true);
    const codes: (string | null)[] = [];
    for (const h of SPELLINGS) codes.push(await codeOf(p.client.connect(h, 80)));
    expect(p.toExit, 'hosts sent to an exit').to.deep.equal([]);
    expect(p.toMessenger).to.deep.equal(['x.allium', 'x.allium', 'x.allium', 'sub.x.allium']);
    expect(codes).to.deep.equal(SPELLINGS.map(() => 'ERR_UNREACHABLE'));
    // Ordinary names still go to an exit, normalised.
    expect(await codeOf(p.client.connect('Example.COM.', 80))).to.equal('ERR_STREAM_FAILED');
    expect(p.toExit).to.deep.equal(['example.com']);
  });

  it('without a Messenger, every spelling is ERR_UNREACHABLE and none goes to an exit; odd forms are refused', async () => {
    const p = probe(false);
    const codes: (string | null)[] = [];
    for (const h of SPELLINGS) codes.push(await codeOf(p.client.connect(h, 80)));
    const odd = ['x.allium..', 'x\uff0eallium', 'x.allium ', 'xn--allium-'];
    for (const h of odd) codes.push(await codeOf(p.client.connect(h, 80)));
    expect(p.toExit, 'hosts sent to an exit').to.deep.equal([]);
    expect(codes).to.deep.equal([...SPELLINGS.map(() => 'ERR_UNREACHABLE'), ...odd.map(() => 'ERR_ADDRESS_FORMAT')]);
  });

  it('the same through the SOCKS5 listener', async () => {
    const p = probe(true);
    const socks = await startSocksServer(p.client, { port: 0 });
    try {
      const replies: number[] = [];
      for (const h of [...SPELLINGS, 'x.allium..']) replies.push(await socksConnect(socks.port, h, 80));
      expect(p.toExit, 'hosts sent to an exit').to.deep.equal([]);
      expect(p.toMessenger).to.deep.equal(['x.allium', 'x.allium', 'x.allium', 'sub.x.allium']);
      expect(replies).to.deep.equal([...SPELLINGS, 'x.allium..'].map(() => SocksReply.HOST_UNREACHABLE));
    } finally {
      await socks.close();
    }
  });
});
