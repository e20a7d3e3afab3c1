/**
 * Decoder bombs against a real relay process: a few hundred bytes of CBOR that describe an exponentially large value
 * (the value-sharing tags 28/29, which a general CBOR library expands) must be refused at once, on a link's CONTROL
 * channel and on a circuit, and the relay must keep answering everyone else (specs/README.md §CBOR "Strict decoding").
 */
import { expect } from 'chai';
import { parseBootstrap } from '../../client/bootstrap.js';
import { buildCircuit, CircuitTable } from '../../client/circuit.js';
import { fetchFromRelay } from '../../client/directory.js';
import { openLink } from '../../net/dial.js';
import type { Link } from '../../net/link.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { CellCommand, controlBody, fragmentControl } from '../../protocol/cell.js';
import { verifyDescriptor } from '../../protocol/descriptor.js';
import { RelayCommand } from '../../protocol/relay-cell.js';
import { sharingBomb } from '../helpers/cbor-shapes.js';
import { startRelay, waitFor, type RelayProcess } from '../helpers/network.js';

async function clientLink(line: string): Promise<Link> {
  const b = parseBootstrap(line);
  return openLink(nodeSocketFactory, b.url, { role: 'initiator', responder: b.identity });
}

/** A fresh link fetches a directory page; returns how long the relay took to answer it. */
async function answerTime(relay: RelayProcess): Promise<number> {
  const started = performance.now();
  const link = await clientLink(relay.bootstrap);
  try {
    const { raws } = await fetchFromRelay(link, 0);
    expect(raws.length).to.be.greaterThan(0);
  } finally {
    link.close();
  }
  return performance.now() - started;
}

describe('decoder bombs (relay process)', function () {
  this.timeout(60_000);
  let relay: RelayProcess;
  let second: RelayProcess;

  before(async () => {
    relay = await startRelay({ nickname: 'target' });
    second = await startRelay({ nickname: 'second', bootstrap: [relay.bootstrap] });
    await waitFor(async () => (await relay.metric('allium_directory_relays')) === 2, 15_000, 'two relays');
  });
  after(async () => {
    await relay?.kill('SIGKILL');
    await second?.kill('SIGKILL');
  });

  it('a value-sharing bomb in one CONTROL cell closes that link and the relay keeps answering at once', async () => {
    // 12 levels of 4 references: about 4^12 = 16.7 million nodes for a decoder that expands shared values
    const bomb = sharingBomb(12, 4);
    expect(bomb.length).to.be.lessThan(300);
    const link = await clientLink(relay.bootstrap);
    const closedWith = new Promise<string | null>((r) => link.once('link:close', (e) => r(e?.code ?? null)));
    for (const f of fragmentControl(bomb)) link.sendCell(0, CellCommand.CONTROL, controlBody(f));
    // the relay answers another peer while (and after) it refuses the bomb; a relay that expanded the value would
    // not answer for minutes, and this test's 60 s budget would run out first
    const took = await answerTime(relay);
    await closedWith;
    expect(took).to.be.lessThan(10_000);
    expect(relay.rssBytes()).to.be.lessThan(512 * 1024 * 1024);
  });

  it('a value-sharing bomb in a relay cell on a circuit destroys that circuit and nothing else', async () => {
    const link = await clientLink(relay.bootstrap);
    try {
      const { raws } = await fetchFromRelay(link, 0);
      const descs = raws.map((r) => verifyDescriptor(r, Date.now()));
      const path = [descs.find((d) => d.fingerprint === relay.fingerprint)!, descs.find((d) => d.fingerprint === second.fingerprint)!];
      const table = new CircuitTable();
      const circuit = await buildCircuit(link, table, path);
      const destroyed = new Promise<void>((r) => circuit.once('circuit:close', () => r()));
      // rendezvous messages are CBOR read at the last hop
      circuit.send({ command: RelayCommand.ESTABLISH_RENDEZVOUS, streamId: 0, data: sharingBomb(12, 4) });
      const took = await answerTime(second);
      await destroyed;
      expect(took).to.be.lessThan(10_000);
      // the link that carried the circuit still works
      const again = await buildCircuit(link, table, path);
      again.close();
    } finally {
      link.close();
    }
  });
});
