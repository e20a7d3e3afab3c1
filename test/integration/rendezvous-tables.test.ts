/**
 * Introduction-point registrations at a relay process (specs/rendezvous.md §3.2): a circuit that asks for a second
 * registration is destroyed by the introduction point, and the key it had registered goes with it; an honest endpoint
 * on another circuit registers and is introduced to as before. (The table's counts and bounds are
 * test/relay/rendezvous.test.ts.)
 */
import { expect } from 'chai';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { crypto } from '../../crypto/index.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { isAlliumError } from '../../protocol/errors.js';
import { RelayCommand } from '../../protocol/relay-cell.js';
import { decodeRv, encodeRv, introSignedMessage } from '../../protocol/rendezvous-messages.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { startNetwork, type TestNetwork } from '../helpers/network.js';

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (!isAlliumError(e)) throw e;
    return e.code;
  }
}

describe('introduction registrations at a relay process', function () {
  this.timeout(120_000);
  let net: TestNetwork;
  let client: AlliumClient;
  let ip: Descriptor;

  before(async () => {
    net = await startNetwork(3);
    client = new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0 });
    await client.start();
    ip = client.directory.all().find((d) => d.caps.includes('intro'))!;
  });

  after(async () => {
    try {
      await client?.stop();
    } finally {
      await net?.stop();
    }
  });

  const circuitToIp = async (): Promise<ClientCircuit> => {
    const c = await client.newCircuit({ last: ip, exitPort: null });
    c.setPurpose('setup');
    return c;
  };

  /** ESTABLISH_INTRO for a fresh key on `c`; resolves with the key once INTRO_ESTABLISHED comes back. */
  const establish = async (c: ClientCircuit): Promise<Uint8Array> => {
    const auth = crypto().ed25519Keypair();
    const ack = c.waitFor(RelayCommand.INTRO_ESTABLISHED, 10_000);
    const s = crypto().sign(introSignedMessage(c.bindings[c.bindings.length - 1]!), auth.secretKey);
    c.send({ command: RelayCommand.ESTABLISH_INTRO, streamId: 0, data: encodeRv('establishIntro', { k: auth.publicKey, s }) });
    await ack;
    return auth.publicKey;
  };

  /** INTRODUCE1 for `key` over a new circuit: the introduction point's answer. */
  const introduce = async (key: Uint8Array): Promise<string> => {
    const c = await circuitToIp();
    try {
      const ack = c.waitFor(RelayCommand.INTRODUCE_ACK, 10_000);
      c.send({ command: RelayCommand.INTRODUCE1, streamId: 0, data: encodeRv('introduce1', { k: key, p: new Uint8Array(48) }) });
      return decodeRv('introduceAck', (await ack).data).s;
    } finally {
      c.close();
    }
  };

  it('a second ESTABLISH_INTRO destroys its circuit and its first key; an honest endpoint still registers', async () => {
    const attacker = await circuitToIp();
    const first = await establish(attacker);
    attacker.setPurpose('intro'); // as an endpoint's: the INTRODUCE2 below is taken
    expect(await introduce(first)).to.equal('ok');
    expect(attacker.state).to.equal('open');
    const second = await outcome(establish(attacker));
    const afterwards = { second, circuit: attacker.state, firstKey: await introduce(first) };
    expect(afterwards).to.deep.equal({ second: 'ERR_LINK_CLOSED', circuit: 'closed', firstKey: 'unknown' });

    const honest = await circuitToIp();
    try {
      const key = await establish(honest);
      const introduced = new Promise<number>((resolve) => honest.on('circuit:message', (_hop, m) => resolve(m.command)));
      honest.setPurpose('intro');
      expect(await introduce(key)).to.equal('ok');
      expect(await introduced).to.equal(RelayCommand.INTRODUCE2);
    } finally {
      honest.close();
    }
  });
});
