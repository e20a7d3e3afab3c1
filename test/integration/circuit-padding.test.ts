/**
 * Circuit padding machines end to end (specs/padding.md): relay processes on 127.0.0.1 and the client library in
 * this process. A circuit negotiates STREAM_SETUP or EXCHANGES with its middle; the middle pads back towards the client and
 * discards the client's padding, which never reaches the last hop; a START beyond a relay's budget is refused with a
 * LimitError while the relay serves on; and STOP/START cycles cannot make the middle pad a circuit without end.
 */
import { expect } from 'chai';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import {
  decodePaddingNegotiated,
  encodePaddingNegotiate,
  PaddingCommand,
  PaddingMachineId,
  PaddingStatus,
  SCHEDULE_BULK_CELLS,
} from '../../protocol/circuit-padding.js';
import { LimitError } from '../../protocol/errors.js';
import { RelayCommand } from '../../protocol/relay-cell.js';
import { CIRCUIT_PADDING_MAX_CELLS, CIRCUIT_PADDING_MAX_STARTS } from '../../relay/circuit-padding.js';
import { startNetwork, waitFor, type RelayProcess, type TestNetwork } from '../helpers/network.js';

describe('circuit padding machines (relay processes)', function () {
  this.timeout(180_000);
  let net: TestNetwork;
  let client: AlliumClient;

  before(async () => {
    net = await startNetwork(5);
    // Machines are started by hand here (circuitPadding off), so each test knows exactly what was asked.
    client = new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0, circuitPadding: false });
    await client.start();
  });

  after(async () => {
    await client?.stop();
    await net?.stop();
  });

  const relayAt = (c: ClientCircuit, i: number): RelayProcess => net.relays.find((r) => r.fingerprint === c.path[i]!.fingerprint)!;

  /** START or STOP sent by hand to hop 1, as any client (or attacker) can; resolves with the status answered. */
  async function negotiate(c: ClientCircuit, command: PaddingCommand, machine: number): Promise<number> {
    const reply = c.waitFor(RelayCommand.PADDING_NEGOTIATED, 20_000, { hop: 1 });
    c.send({ command: RelayCommand.PADDING_NEGOTIATE, streamId: 0, data: encodePaddingNegotiate({ command, machine }) }, 1);
    return decodePaddingNegotiated((await reply).data).status;
  }

  it('negotiates STREAM_SETUP with the middle: padding flows both ways, and the middle discards the client’s', async () => {
    const c = await client.newCircuit();
    const middle = relayAt(c, 1);
    const last = relayAt(c, 2);
    const before = { sent: await middle.metric('allium_circuit_padding_cells_total'), lastGot: await last.metric('allium_circuit_padding_received_total') };
    const middleGot = await middle.metric('allium_circuit_padding_received_total');
    await c.startPadding(PaddingMachineId.STREAM_SETUP);
    // The client's half sends its BEGIN-like cell at once; the middle answers with CONNECTED-like, first-byte and burst.
    await waitFor(async () => (await middle.metric('allium_circuit_padding_cells_total')) - before.sent >= 3, 20_000, 'padding from the middle');
    await waitFor(() => c.paddingSent >= 1, 20_000, 'padding from the client');
    await waitFor(
      async () => (await middle.metric('allium_circuit_padding_received_total')) - middleGot === c.paddingSent,
      20_000,
      'the middle received every padding cell the client sent',
    );
    expect(await last.metric('allium_circuit_padding_received_total'), 'no padding reached the last hop').to.equal(before.lastGot);
    expect(c.state, 'the client discarded the middle’s padding and kept the circuit').to.equal('open');
    c.close();
  });

  it('EXCHANGES: real cells go to the link at once while both halves pad, in order, and all reach the last hop', async () => {
    const c = await client.newCircuit();
    const middle = relayAt(c, 1);
    const last = relayAt(c, 2);
    const before = { sent: await middle.metric('allium_circuit_padding_cells_total'), lastGot: await last.metric('allium_circuit_padding_received_total') };
    // Every cell the client's link is handed for this circuit, in order, tagged real or padding by who sends it.
    const handed: string[] = [];
    let sending: string | null = null;
    const sendCell = c.link.sendCell.bind(c.link);
    c.link.sendCell = (circId, command, body): void => {
      if (circId === c.circId) handed.push(sending ?? 'machine');
      sendCell(circId, command, body);
    };
    await c.startPadding(PaddingMachineId.EXCHANGES);
    await waitFor(async () => (await middle.metric('allium_circuit_padding_cells_total')) - before.sent >= 1, 20_000, 'padding from the middle');
    // Real cells while the machines run (timers armed on both sides): each is on the link before send() returns.
    for (let i = 0; i < 20; i++) {
      const n = handed.length;
      sending = `real ${i}`;
      expect(c.send({ command: RelayCommand.DROP, streamId: 0, data: new Uint8Array(0) })).to.equal(true);
      sending = null;
      expect(handed.slice(n), 'handed to the link synchronously, nothing queued').to.deep.equal([`real ${i}`]);
      await new Promise((r) => setTimeout(r, 5));
    }
    await waitFor(() => c.paddingSent >= 3, 20_000, 'requests from the client’s half');
    expect(handed.filter((h) => h.startsWith('real'))).to.deep.equal(Array.from({ length: 20 }, (_, i) => `real ${i}`));
    // The 20 real DROPs reach the last hop (counted there as DROPs it received); the padding stops at the middle.
    await waitFor(async () => (await last.metric('allium_circuit_padding_received_total')) - before.lastGot === 20, 20_000, 'the real cells at the last hop');
    expect(c.state).to.equal('open');
    c.close();
  });

  it('SCHEDULE: real cells are held to the schedule, not handed to the link by send(), and all reach the last hop in order', async () => {
    const c = await client.newCircuit();
    const last = relayAt(c, 2);
    const lastGot = await last.metric('allium_circuit_padding_received_total');
    const handed: string[] = [];
    let sending: string | null = null;
    const sendCell = c.link.sendCell.bind(c.link);
    c.link.sendCell = (circId, command, body): void => {
      if (circId === c.circId) handed.push(sending ?? 'machine');
      sendCell(circId, command, body);
    };
    await c.startPadding(PaddingMachineId.SCHEDULE);
    // A burst of 20 real cells while the machine holds: none goes to the link from send(); the machine's timer
    // sends them at its slots' ends, in place of padding.
    for (let i = 0; i < 20; i++) {
      sending = `real ${i}`;
      expect(c.send({ command: RelayCommand.DROP, streamId: 0, data: new Uint8Array(0) })).to.equal(true);
      sending = null;
    }
    expect(
      handed.filter((h) => h.startsWith('real')),
      'held: nothing handed to the link by send()',
    ).to.deep.equal([]);
    // The 20 real DROPs reach the last hop (it counts the DROPs it receives), decrypted there in order.
    await waitFor(async () => (await last.metric('allium_circuit_padding_received_total')) - lastGot === 20, 60_000, 'the held cells at the last hop');
    expect(c.state).to.equal('open');
    c.close();
  });

  it('SCHEDULE: a circuit that carries more than SCHEDULE_BULK_CELLS ends the run at both ends, and the rest flows at once', async () => {
    const c = await client.newCircuit();
    const last = relayAt(c, 2);
    const lastGot = await last.metric('allium_circuit_padding_received_total');
    const handed: string[] = [];
    let sending: string | null = null;
    const sendCell = c.link.sendCell.bind(c.link);
    c.link.sendCell = (circId, command, body): void => {
      if (circId === c.circId) handed.push(sending ?? 'machine');
      sendCell(circId, command, body);
    };
    await c.startPadding(PaddingMachineId.SCHEDULE);
    // An upload of 300 real cells: the client's half holds them until the one past the mark (its 241st real cell,
    // PADDING_NEGOTIATED being the first), then sends what it held and lets the rest flow from send().
    const n = 300;
    for (let i = 0; i < n; i++) {
      sending = `real ${i}`;
      expect(c.send({ command: RelayCommand.DROP, streamId: 0, data: new Uint8Array(0) })).to.equal(true);
      sending = null;
    }
    // Handed to the link inside send(): nothing until the cell past the mark, which sent what was held and then
    // itself; every later cell from its own send().
    const fromSend = handed.filter((h) => h.startsWith('real'));
    const mark = `real ${SCHEDULE_BULK_CELLS - 1}`;
    expect(fromSend[0], 'held until the cell past the mark').to.equal(mark);
    expect(fromSend.filter((h) => h !== mark)).to.deep.equal(Array.from({ length: n - SCHEDULE_BULK_CELLS }, (_, i) => `real ${SCHEDULE_BULK_CELLS + i}`));
    await waitFor(async () => (await last.metric('allium_circuit_padding_received_total')) - lastGot === n, 60_000, 'every cell at the last hop');
    // The middle counted them too and ended its run: a new START is honoured (a running machine would be REFUSED).
    expect(await negotiate(c, PaddingCommand.START, PaddingMachineId.SLOTS)).to.equal(PaddingStatus.OK);
    expect(c.state).to.equal('open');
    c.close();
  });

  it('a START beyond the budget is refused with a LimitError; the circuit and the relay serve on', async () => {
    const c = await client.newCircuit();
    const middle = relayAt(c, 1);
    for (let i = 0; i < CIRCUIT_PADDING_MAX_STARTS; i++) {
      await c.startPadding(PaddingMachineId.STREAM_SETUP);
      await c.stopPadding();
    }
    const refusedBefore = await middle.metric('allium_circuit_padding_refused_total', { reason: 'limit' });
    let err: unknown = null;
    await c.startPadding(PaddingMachineId.STREAM_SETUP).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(LimitError);
    expect((err as LimitError).limit).to.equal('CIRCUIT_PADDING_BUDGET');
    expect(await middle.metric('allium_circuit_padding_refused_total', { reason: 'limit' })).to.equal(refusedBefore + 1);
    // The relay answered on the same circuit, which is still open, and starts machines for new circuits.
    expect(await negotiate(c, PaddingCommand.START, PaddingMachineId.STREAM_SETUP)).to.equal(PaddingStatus.REFUSED);
    expect(c.state).to.equal('open');
    const fresh = await client.newCircuit();
    await fresh.startPadding(PaddingMachineId.STREAM_SETUP);
    c.close();
    fresh.close();
  });

  it('regression: STOP and START again, and poking the machine, cannot make the middle pad a circuit without end', async () => {
    const c = await client.newCircuit();
    const middle = relayAt(c, 1);
    const before = await middle.metric('allium_circuit_padding_cells_total');
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      statuses.push(await negotiate(c, PaddingCommand.START, PaddingMachineId.STREAM_SETUP));
      // What wakes the machine: a DROP to the middle (the client's BEGIN-like cell), then time for its burst.
      for (let k = 0; k < 3; k++) c.send({ command: RelayCommand.DROP, streamId: 0, data: new Uint8Array(0) }, 1);
      await new Promise((r) => setTimeout(r, 1_500));
      await negotiate(c, PaddingCommand.STOP, 0);
    }
    const sent = (await middle.metric('allium_circuit_padding_cells_total')) - before;
    console.log(`      padding cells the middle sent on one circuit in 12 START/STOP cycles: ${sent} (cap ${CIRCUIT_PADDING_MAX_CELLS})`);
    expect(statuses.filter((s) => s === PaddingStatus.OK)).to.have.length(CIRCUIT_PADDING_MAX_STARTS);
    expect(sent).to.be.at.most(CIRCUIT_PADDING_MAX_CELLS);
    expect(c.state).to.equal('open');
    c.close();
  });
});
