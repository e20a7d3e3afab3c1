/**
 * Wire uniformity, measured on the wire: a capture of the loopback interface, filtered to the relays' own ports,
 * while relay processes carry streams (curl through SOCKS5 to a local web server), content (put and get) and private
 * messages. Every WebSocket message on every link — client to relay and relay to relay — must be one link frame of
 * FRAME_LEN bytes. The exceptions, asserted exactly: each connection's HTTP upgrade (a GET and its 101 answer, not
 * WebSocket frames) and close frames carrying only a status code (2 bytes) when a link shuts down.
 *
 * Then the setup onion, at every hop of circuits built through real relays (in this process, so the cells a relay
 * receives can be read after its link decryption): each CREATE carries an onion header of the same length whatever
 * the relay's position, followed only by zero padding, with no run of constant bytes where a shorter path could
 * show, and nothing carried unchanged from one hop to the next.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { parseBootstrap } from '../../client/bootstrap.js';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { Messenger, type IncomingMessage } from '../../client/messaging/node.js';
import { startSocksServer } from '../../client/socks.js';
import { CellCommand, decodeCreateBody, type Cell } from '../../protocol/cell.js';
import { CELL_BODY_LEN, ONION_HEADER_LEN } from '../../protocol/constants.js';
import { FRAME_LEN } from '../../protocol/link-handshake.js';
import { openLink } from '../../net/dial.js';
import type { Link } from '../../net/link.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { Relay } from '../../relay/relay.js';
import { silentLogger } from '../../relay/logger.js';
import {
  freePorts,
  httpMessages,
  startCapture,
  tcpConnections,
  tcpPayloadBytes,
  websocketFrames,
  wireBytes,
  type Capture,
  type WsFrame,
} from '../helpers/capture.js';
import { patternBytes, sha256 } from '../helpers/content.js';
import { needProgram } from '../helpers/programs.js';
import { FAST_TIMING, startRelay, tempDir, waitFor, type RelayProcess } from '../helpers/network.js';
import { SINGLE_HOST_NETWORK } from '../../relay/config.js';

const run = promisify(execFile);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** The only WebSocket messages allowed on a link: link frames, and close frames with a bare status code. */
const LINK_FRAME = `binary ${FRAME_LEN}`;
const CLOSE_FRAME = 'close 2';
const OPCODES: Record<number, string> = { 0: 'continuation', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };
const kindOf = (f: WsFrame): string => `${OPCODES[f.opcode] ?? `opcode-${f.opcode}`} ${f.payloadLength}`;

describe('wire audit: one WebSocket message size on every link (relay processes, tshark)', function () {
  this.timeout(300_000);
  let ports: number[];
  let relays: RelayProcess[] = [];
  let capture: Capture | null = null;
  let web: Server;
  let webPort: number;
  const page = patternBytes(300_000, 7);
  let frames: WsFrame[] = [];
  const activity = { curl: false, content: false, messages: 0 };

  before(async function () {
    needProgram(this, 'dumpcap', 'tshark', 'curl');
    ports = await freePorts(6);
    capture = await startCapture(ports);
    const exitPolicy = ['accept 127.0.0.1:*', 'reject *:*'];
    const first = await startRelay({ nickname: 'w0', listen: `127.0.0.1:${ports[0]}` });
    const rest = await Promise.all(
      ports
        .slice(1)
        .map((p, i) =>
          startRelay({ nickname: `w${i + 1}`, listen: `127.0.0.1:${p}`, bootstrap: [first.bootstrap], exitPolicy: i === 4 ? exitPolicy : ['reject *:*'] }),
        ),
    );
    relays = [first, ...rest];
    await waitFor(
      async () => (await Promise.all(relays.map((r) => r.metric('allium_directory_relays')))).every((x) => x === relays.length),
      30_000,
      'directory',
    );
    web = createServer((_req, res) => res.end(page));
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', () => r()));
    webPort = (web.address() as { port: number }).port;
  });

  after(async () => {
    web?.close();
    await Promise.all(relays.map((r) => r.kill('SIGKILL')));
    for (const r of relays) rmSync(r.dataDir, { recursive: true, force: true });
    capture?.remove();
  });

  it('carries streams, content and messages over relay processes while the capture runs', async () => {
    const fps = relays.map((r) => r.fingerprint);
    const client = (entry: string[]): AlliumClient =>
      new AlliumClient({ bootstrap: [relays[0]!.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0, entryRelays: entry });
    const ca = client([fps[1]!, fps[2]!]);
    const cb = client([fps[3]!, fps[4]!]);
    await ca.start();
    await cb.start();
    // A stream: curl through SOCKS5 and a circuit to the local web server.
    const socks = await startSocksServer(ca, { port: 0 });
    const { stdout } = await run('curl', ['-sS', '--max-time', '60', '--socks5-hostname', `127.0.0.1:${socks.port}`, `http://127.0.0.1:${webPort}/`], {
      encoding: 'buffer',
      maxBuffer: 1 << 22,
    });
    expect(sha256(stdout)).to.equal(sha256(page));
    activity.curl = true;
    await socks.close();
    // Content: put and get back.
    const content = new ContentClient(ca);
    const data = patternBytes(100_000, 11);
    const link = await content.put(data);
    const back = await new ContentClient(cb).get(link, { signal: AbortSignal.timeout(60_000) });
    expect(sha256(back)).to.equal(sha256(data));
    activity.content = true;
    content.close();
    // Messages through a rendezvous point.
    const alice = new Messenger(ca);
    const bob = new Messenger(cb);
    await alice.startListening();
    const got: IncomingMessage[] = [];
    alice.on('message:received', (m) => got.push(m));
    for (let i = 0; i < 20; i++) await bob.send(alice.address, enc(`message ${i}`));
    await waitFor(() => got.length >= 20, 60_000, '20 messages');
    expect(got.map((m) => dec(m.data))).to.deep.equal(Array.from({ length: 20 }, (_, i) => `message ${i}`));
    activity.messages = got.length;
    alice.close();
    bob.close();
    await ca.stop();
    await cb.stop();
    // Let the close handshakes of the clients' links reach the wire, then stop recording.
    await new Promise((r) => setTimeout(r, 1000));
    await capture!.stop();
    frames = await websocketFrames(capture!.file, ports);
  });

  it('decoded every byte it captured: each connection is one HTTP upgrade and then WebSocket frames', async function () {
    if (!activity.curl) this.skip();
    const streams = new Set(frames.map((f) => f.stream));
    // Relay-to-relay overlay links (5 relays joined through the first, then gossip) and the clients' links.
    expect(streams.size).to.be.greaterThan(8);
    expect(frames.length).to.be.greaterThan(1000);
    // Byte accounting: what the decoded frames explain of each connection's TCP payload. The rest is the upgrade
    // request and response (a few hundred bytes); a frame the decoder missed would leave FRAME_LEN bytes unexplained.
    const tcp = await tcpPayloadBytes(capture!.file, ports);
    const ws = new Map<number, number>();
    for (const f of frames) ws.set(f.stream, (ws.get(f.stream) ?? 0) + wireBytes(f));
    let maxRest = 0;
    for (const [s, bytes] of tcp) {
      const rest = bytes - (ws.get(s) ?? 0);
      expect(rest, `connection ${s}: bytes not in a decoded frame`).to.be.within(0, 2047);
      maxRest = Math.max(maxRest, rest);
    }
    const opened = await tcpConnections(capture!.file, ports);
    const http = await httpMessages(capture!.file, ports);
    const upgraded = new Set(http.filter((m) => m.code === 101).map((m) => m.stream));
    // Every connection to a relay port that carried WebSocket frames went through one upgrade, and nothing else
    // HTTP happened on the relays' ports.
    for (const s of streams) expect(upgraded.has(s), `stream ${s} upgraded`).to.equal(true);
    expect(http.filter((m) => m.method !== null).every((m) => m.method === 'GET')).to.equal(true);
    expect(http.filter((m) => m.code !== null).map((m) => m.code)).to.satisfy((codes: number[]) => codes.every((c) => c === 101));
    expect(opened.size).to.be.at.least(streams.size);
    console.log(
      `      capture: ${opened.size} TCP connections to relay ports, ${streams.size} links with WebSocket frames, ${frames.length} frames, ` +
        `${http.filter((m) => m.method).length} upgrade requests (at most ${maxRest} bytes per connection outside frames), ${activity.messages} messages`,
    );
  });

  it(`every WebSocket message after the upgrade is a ${FRAME_LEN}-byte binary link frame, or a close frame with only a status code`, function () {
    if (!activity.curl) this.skip();
    const kinds = new Map<string, number>();
    for (const f of frames) kinds.set(kindOf(f), (kinds.get(kindOf(f)) ?? 0) + 1);
    console.log(`      frame kinds: ${[...kinds].map(([k, n]) => `${k} ×${n}`).join(', ')}`);
    expect([...kinds.keys()].filter((k) => k !== LINK_FRAME && k !== CLOSE_FRAME)).to.deep.equal([]);
    expect(kinds.get(LINK_FRAME) ?? 0).to.be.greaterThan(1000);
    // No fragmented messages: a frame is a whole message.
    expect(frames.filter((f) => !f.fin).length).to.equal(0);
    // Per link, and per direction of each link: only link frames carry data.
    const byLink = new Map<string, Set<number>>();
    for (const f of frames) {
      if (f.opcode !== 2) continue;
      const key = `${f.stream}:${f.srcPort}>${f.dstPort}`;
      byLink.set(key, (byLink.get(key) ?? new Set()).add(f.payloadLength));
    }
    for (const [key, sizes] of byLink) expect([...sizes], key).to.deep.equal([FRAME_LEN]);
    // Both directions of the clients' links and of relay links were seen (client frames are masked, relay answers not).
    expect(frames.some((f) => f.opcode === 2 && f.masked)).to.equal(true);
    expect(frames.some((f) => f.opcode === 2 && !f.masked)).to.equal(true);
  });

  it('would see a message of another size: a 100-byte message on an open link shows up in a capture', async function () {
    if (!activity.curl) this.skip();
    const probe = await startCapture([ports[0]!]);
    try {
      const b = parseBootstrap(relays[0]!.bootstrap);
      const link = await openLink(nodeSocketFactory, b.url, { role: 'initiator', responder: b.identity });
      const closed = new Promise((r) => link.once('link:close', r));
      link.socket.send(new Uint8Array(100)); // the relay closes a link that sends anything but a link frame
      await closed;
      await new Promise((r) => setTimeout(r, 300));
      await probe.stop();
      const kinds = new Set((await websocketFrames(probe.file, [ports[0]!])).map(kindOf));
      expect(kinds.has('binary 100'), [...kinds].join(', ')).to.equal(true);
      expect(kinds.has(LINK_FRAME), [...kinds].join(', ')).to.equal(true);
    } finally {
      probe.remove();
    }
  });
});

describe('wire audit: the setup onion has one length at every hop (relays in this process)', function () {
  this.timeout(120_000);
  const relays: Relay[] = [];
  const dirs: string[] = [];
  /** CREATE cell bodies each relay received, in order, with the role of the link they came on. */
  const received = new Map<string, { body: Uint8Array; fromClient: boolean }[]>();

  before(async () => {
    for (let i = 0; i < 5; i++) {
      const dir = tempDir('allium-onion-');
      dirs.push(dir);
      const relay = new Relay(
        {
          nickname: `o${i}`,
          listen: '127.0.0.1:0',
          data_dir: dir,
          bootstrap: relays.length ? [relays[0]!.bootstrapLine] : [],
          exit_policy: ['reject *:*'],
          storage_quota: 0,
          ...SINGLE_HOST_NETWORK,
          timing: FAST_TIMING,
        },
        { log: silentLogger() },
      );
      await relay.start();
      relays.push(relay);
      const reactor = relay.circuits;
      const onCell = reactor.onCell.bind(reactor);
      const list: { body: Uint8Array; fromClient: boolean }[] = [];
      received.set(relay.fingerprint, list);
      reactor.onCell = (link: Link, cell: Cell): void => {
        if (cell.command === CellCommand.CREATE) list.push({ body: Uint8Array.from(cell.body), fromClient: link.peer?.role === 1 });
        onCell(link, cell);
      };
    }
    await waitFor(() => relays.every((r) => r.directory.all().length === relays.length), 30_000, 'directory');
  });

  after(async () => {
    for (const r of relays) await r.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('every hop of 2-, 3-, 4- and 5-hop circuits receives a CREATE with an onion header of the same length', async () => {
    const client = new AlliumClient({ bootstrap: [relays[0]!.bootstrapLine], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0 });
    await client.start();
    const byPosition = new Map<string, Uint8Array[]>();
    let circuits = 0;
    try {
      for (const hops of [2, 3, 4, 5]) {
        for (let k = 0; k < 6; k++) {
          for (const l of received.values()) l.length = 0;
          const c = await client.newCircuit({ exitPort: null, hops });
          circuits++;
          const headers: Uint8Array[] = [];
          c.path.forEach((d, i) => {
            const got = received.get(d.fingerprint)!;
            expect(got.length, `CREATEs at hop ${i}`).to.equal(1);
            expect(got[0]!.fromClient).to.equal(i === 0);
            expect(got[0]!.body.length).to.equal(CELL_BODY_LEN);
            // decodeCreateBody refuses anything but ONION_HEADER_LEN bytes followed by zeros.
            const header = decodeCreateBody(got[0]!.body);
            expect(header.length).to.equal(ONION_HEADER_LEN);
            headers.push(header);
            const position = i === 0 ? 'entry' : i === hops - 1 ? 'last' : 'middle';
            byPosition.set(position, [...(byPosition.get(position) ?? []), header]);
          });
          // Nothing travels unchanged from one hop to the next: no 8-byte string of a hop's header reappears at the
          // next hop (by chance: about 816² / 2⁶⁴).
          for (let i = 0; i + 1 < headers.length; i++) {
            const seen = new Set<string>();
            for (let j = 0; j + 8 <= ONION_HEADER_LEN; j++) seen.add(Buffer.from(headers[i]!.subarray(j, j + 8)).toString('hex'));
            for (let j = 0; j + 8 <= ONION_HEADER_LEN; j++) expect(seen.has(Buffer.from(headers[i + 1]!.subarray(j, j + 8)).toString('hex'))).to.equal(false);
          }
          c.close();
        }
      }
    } finally {
      await client.stop();
    }
    expect(circuits).to.equal(24);
    // Whatever the position, the header looks the same: no run of 8 equal bytes (a zero-filled or constant tail
    // would show a short remaining path), byte mean near 127.5.
    for (const [position, headers] of byPosition) {
      for (const h of headers) {
        let run = 1;
        for (let j = 1; j < h.length; j++) {
          run = h[j] === h[j - 1] ? run + 1 : 1;
          expect(run, `${position}: run of equal bytes`).to.be.lessThan(8);
        }
      }
      const all = headers.flatMap((h) => [...h]);
      const mean = all.reduce((s, x) => s + x, 0) / all.length;
      expect(mean, `${position} byte mean`).to.be.within(120, 135);
    }
    expect([...byPosition.keys()].sort()).to.deep.equal(['entry', 'last', 'middle']);
  });
});
