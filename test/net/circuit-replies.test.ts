/**
 * What a client circuit accepts (specs/relay-crypto.md §6.2), at the relay-crypto level: real hop keys and real
 * layers on a three-hop circuit, each relay played by its RelayHopCrypto, the link by a recorder. A middle relay
 * that forges INTRO_ESTABLISHED, RENDEZVOUS_ESTABLISHED or an (unsolicited) EXTENDED (valid under its own layer, as any hop can make)
 * is refused, and the client destroys the circuit; so is anything the circuit's purpose does not take, while the
 * replies and messages it does take still arrive.
 */
import { expect } from 'chai';
import { seededRandom } from '../../crypto/drbg.js';
import { CellCommand, decodeDestroyBody, DestroyReason } from '../../protocol/cell.js';
import type { HopKeys } from '../../protocol/ntor.js';
import { ClientCircuitCrypto, RelayHopCrypto } from '../../protocol/relay-crypto.js';
import { encodeRelayPayload, RelayCommand, type RelayMessage } from '../../protocol/relay-cell.js';
import { encodeRv } from '../../protocol/rendezvous-messages.js';
import { ClientCircuit, CircuitTable } from '../../net/circuit.js';
import type { Link } from '../../net/link.js';

const CIRC_ID = 7;

interface Rig {
  circuit: ClientCircuit;
  relays: RelayHopCrypto[];
  /** DESTROY reasons the client sent on the link. */
  destroys: number[];
  /** Hop `origin` sends `msg` towards the client: its layer, then every earlier hop's. */
  fromHop(origin: number, msg: RelayMessage): void;
}

let rigs = 0;

function rig(hops = 3): Rig {
  const r = seededRandom(`circuit-replies/${rigs++}`);
  const keys: HopKeys[] = Array.from({ length: hops }, () => ({ forward: r(32), backward: r(32), binding: r(32) }));
  const destroys: number[] = [];
  const link = {
    initiatedHere: true,
    isCongested: false,
    sendCell: (_circId: number, command: CellCommand, body: Uint8Array) => {
      if (command === CellCommand.DESTROY) destroys.push(decodeDestroyBody(body));
    },
    once: () => () => undefined,
  } as unknown as Link;
  const circuit = new ClientCircuit(
    link,
    CIRC_ID,
    new ClientCircuitCrypto(keys),
    [],
    new CircuitTable(),
    keys.map((k) => k.binding),
  );
  const relays = keys.map((k) => new RelayHopCrypto(k));
  return {
    circuit,
    relays,
    destroys,
    fromHop(origin, msg) {
      const body = relays[origin]!.originateBackward(encodeRelayPayload(msg));
      for (let j = origin - 1; j >= 0; j--) relays[j]!.wrapBackward(body);
      circuit.onCell({ circId: CIRC_ID, command: CellCommand.RELAY, body });
    },
  };
}

const empty = (command: RelayCommand): RelayMessage => ({ command, streamId: 0, data: encodeRv('empty', {}) });

/** How a wait ended: 'resolved', or the error code. */
async function settled(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

describe('client circuits accept replies only from the hop asked, and only what their purpose takes', () => {
  for (const [name, command] of [
    ['INTRO_ESTABLISHED', RelayCommand.INTRO_ESTABLISHED],
    ['RENDEZVOUS_ESTABLISHED', RelayCommand.RENDEZVOUS_ESTABLISHED],
  ] as const) {
    it(`a middle relay forging ${name} is refused and the circuit destroyed`, async () => {
      const { circuit, destroys, fromHop } = rig();
      const reply = circuit.waitFor(command, 30_000);
      fromHop(1, empty(command)); // valid under the middle hop's own layer
      expect({ reply: await settled(reply), state: circuit.state, destroys }).to.deep.equal({
        reply: 'ERR_RELAY_COMMAND',
        state: 'closed',
        destroys: [DestroyReason.PROTOCOL],
      });
    });
  }

  it('an EXTENDED (extension is withdrawn, so never awaited) destroys the circuit, from any hop', () => {
    for (const hop of [1, 2]) {
      const { circuit, destroys, fromHop } = rig();
      fromHop(hop, { command: RelayCommand.EXTENDED, streamId: 0, data: new Uint8Array(641) });
      expect({ state: circuit.state, destroys }).to.deep.equal({ state: 'closed', destroys: [DestroyReason.PROTOCOL] });
    }
  });

  it('the last hop’s reply is taken, once; a second one destroys the circuit', async () => {
    const { circuit, destroys, fromHop } = rig();
    circuit.setPurpose('setup');
    const reply = circuit.waitFor(RelayCommand.INTRO_ESTABLISHED, 30_000);
    fromHop(2, empty(RelayCommand.INTRO_ESTABLISHED));
    expect(await settled(reply)).to.equal('resolved');
    expect(circuit.state).to.equal('open');
    fromHop(2, empty(RelayCommand.INTRO_ESTABLISHED));
    expect({ state: circuit.state, destroys }).to.deep.equal({ state: 'closed', destroys: [DestroyReason.PROTOCOL] });
  });

  it('an introduction circuit takes INTRODUCE2 from its last hop only, and nothing else', () => {
    const introduce2: RelayMessage = { command: RelayCommand.INTRODUCE2, streamId: 0, data: encodeRv('introduce2', { p: new Uint8Array(32) }) };
    const ok = rig();
    ok.circuit.setPurpose('intro');
    const seen: number[] = [];
    ok.circuit.on('circuit:message', (hop, m) => seen.push(hop, m.command));
    ok.fromHop(2, introduce2);
    ok.fromHop(1, { command: RelayCommand.DROP, streamId: 0, data: new Uint8Array(0) }); // padding: from any hop
    expect({ seen, state: ok.circuit.state }).to.deep.equal({ seen: [2, RelayCommand.INTRODUCE2], state: 'open' });

    const cases: [string, number, RelayMessage][] = [
      ['INTRODUCE2 from the middle', 1, introduce2],
      ['DATA from the last hop', 2, { command: RelayCommand.DATA, streamId: 1, data: new Uint8Array(10) }],
      ['INTRODUCE_ACK nobody waits for', 2, { command: RelayCommand.INTRODUCE_ACK, streamId: 0, data: encodeRv('introduceAck', { s: 'ok' }) }],
    ];
    for (const [what, hop, msg] of cases) {
      const x = rig();
      x.circuit.setPurpose('intro');
      x.fromHop(hop, msg);
      expect({ what, state: x.circuit.state, destroys: x.destroys }).to.deep.equal({ what, state: 'closed', destroys: [DestroyReason.PROTOCOL] });
    }
  });

  it('a general circuit refuses BEGIN and rendezvous messages from its last hop, and stream replies from a middle hop', () => {
    const cases: [string, number, RelayMessage][] = [
      ['BEGIN from the exit', 2, { command: RelayCommand.BEGIN, streamId: 5, data: new Uint8Array(8) }],
      ['INTRODUCE2 from the exit', 2, { command: RelayCommand.INTRODUCE2, streamId: 0, data: encodeRv('introduce2', { p: new Uint8Array(32) }) }],
      ['END from the middle', 1, { command: RelayCommand.END, streamId: 1, data: Uint8Array.of(1) }],
    ];
    for (const [what, hop, msg] of cases) {
      const x = rig();
      x.fromHop(hop, msg);
      expect({ what, state: x.circuit.state, destroys: x.destroys }).to.deep.equal({ what, state: 'closed', destroys: [DestroyReason.PROTOCOL] });
    }
    // END for an unknown stream from the exit is an ordinary stream reply (ignored): the circuit stays.
    const y = rig();
    y.fromHop(2, { command: RelayCommand.END, streamId: 1, data: Uint8Array.of(1) });
    expect(y.circuit.state).to.equal('open');
  });

  it('an endpoint’s rendezvous circuit takes BEGIN from its last hop', () => {
    const x = rig();
    x.circuit.setPurpose('service');
    const begun: number[] = [];
    x.circuit.mux.on('mux:begin', (s) => begun.push(s.id));
    x.fromHop(2, { command: RelayCommand.BEGIN, streamId: 5, data: new Uint8Array(8) });
    expect({ begun, state: x.circuit.state }).to.deep.equal({ begun: [5], state: 'open' });
  });
});
