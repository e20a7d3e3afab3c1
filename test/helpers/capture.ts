/**
 * Packet captures of a test network on the loopback interface (Debian's tshark: tests call needProgram first): dumpcap
 * records only the relays' own TCP ports, and tshark decodes what was recorded — HTTP upgrades and WebSocket frames
 * (opcode and payload length of each, per TCP connection).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sleep } from './network.js';
import { findProgram } from './programs.js';

const run = promisify(execFile);

/** `n` distinct free TCP ports on 127.0.0.1 (bound and released, so a relay can listen on them next). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export interface Capture {
  readonly file: string;
  /** Stops recording and waits until the file is complete. */
  stop(): Promise<void>;
  /** Removes the capture file and its directory. */
  remove(): void;
}

/** Starts recording TCP traffic to or from `ports` on the loopback interface. */
export async function startCapture(ports: readonly number[]): Promise<Capture> {
  const dir = mkdtempSync(join(tmpdir(), 'allium-capture-'));
  const file = join(dir, 'links.pcapng');
  const filter = ports.map((p) => `tcp port ${p}`).join(' or ');
  const proc: ChildProcess = spawn(findProgram('dumpcap') ?? 'dumpcap', ['-i', 'lo', '-f', filter, '-w', file, '-q'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const deadline = Date.now() + 15_000;
  // dumpcap creates the file once it captures; give it a moment after that to have the filter in place.
  while (!existsSync(file) || statSync(file).size === 0) {
    if (proc.exitCode !== null) throw new Error(`dumpcap exited: ${err}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`dumpcap did not start: ${err}`);
    }
    await sleep(50);
  }
  await sleep(300);
  return {
    file,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGINT');
      await exited;
    },
    remove() {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface WsFrame {
  /** tshark's TCP connection index. */
  stream: number;
  srcPort: number;
  dstPort: number;
  opcode: number;
  fin: boolean;
  masked: boolean;
  payloadLength: number;
}

export interface HttpMessage {
  stream: number;
  /** The request line's method, or null for a response. */
  method: string | null;
  /** The response code, or null for a request. */
  code: number | null;
}

function decodeAsHttp(ports: readonly number[]): string[] {
  return ports.flatMap((p) => ['-d', `tcp.port==${p},http`]);
}

async function tsharkFields(file: string, ports: readonly number[], filter: string, fields: readonly string[]): Promise<string[][]> {
  const { stdout } = await run(
    findProgram('tshark') ?? 'tshark',
    [
      '-r',
      file,
      ...decodeAsHttp(ports),
      '-Y',
      filter,
      '-T',
      'fields',
      '-E',
      'separator=\t',
      '-E',
      'aggregator=,',
      '-E',
      'occurrence=a',
      ...fields.flatMap((f) => ['-e', f]),
    ],
    { maxBuffer: 1 << 28 },
  );
  return stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.split('\t'));
}

/**
 * Every WebSocket frame in the capture. A TCP segment may carry several frames (tshark lists their fields
 * comma-separated); the 16- and 64-bit extended lengths are listed only for the frames that have them, in order.
 */
export async function websocketFrames(file: string, ports: readonly number[]): Promise<WsFrame[]> {
  const rows = await tsharkFields(file, ports, 'websocket', [
    'tcp.stream',
    'tcp.srcport',
    'tcp.dstport',
    'websocket.opcode',
    'websocket.fin',
    'websocket.mask',
    'websocket.payload_length',
    'websocket.payload_length_ext_16',
    'websocket.payload_length_ext_64',
  ]);
  const frames: WsFrame[] = [];
  const list = (s: string | undefined): string[] => (s ? s.split(',') : []);
  const bool = (s: string): boolean => s === '1' || s === 'True' || s === 'true';
  for (const r of rows) {
    const [stream, src, dst, opcodes, fins, masks, lens, ext16, ext64] = r;
    const ops = list(opcodes);
    const finL = list(fins);
    const maskL = list(masks);
    const lenL = list(lens).map(Number);
    const e16 = list(ext16).map(Number);
    const e64 = list(ext64).map(Number);
    ops.forEach((op, i) => {
      let len = lenL[i]!;
      if (len === 126) len = e16.shift()!;
      else if (len === 127) len = e64.shift()!;
      frames.push({
        stream: Number(stream),
        srcPort: Number(src),
        dstPort: Number(dst),
        opcode: Number(op),
        fin: bool(finL[i] ?? '1'),
        masked: bool(maskL[i] ?? '0'),
        payloadLength: len,
      });
    });
  }
  return frames;
}

/** Every HTTP request and response on the given ports (the WebSocket upgrades). */
export async function httpMessages(file: string, ports: readonly number[]): Promise<HttpMessage[]> {
  const rows = await tsharkFields(file, ports, 'http', ['tcp.stream', 'http.request.method', 'http.response.code']);
  return rows.map(([stream, method, code]) => ({ stream: Number(stream), method: method || null, code: code ? Number(code) : null }));
}

/** TCP connections in the capture that opened (a SYN to one of `ports`), by tshark's stream index. */
export async function tcpConnections(file: string, ports: readonly number[]): Promise<Set<number>> {
  const rows = await tsharkFields(file, ports, 'tcp.flags.syn == 1 && tcp.flags.ack == 0', ['tcp.stream']);
  return new Set(rows.map(([s]) => Number(s)));
}

/** TCP payload bytes per connection (retransmissions left out). */
export async function tcpPayloadBytes(file: string, ports: readonly number[]): Promise<Map<number, number>> {
  const rows = await tsharkFields(file, ports, 'tcp.len > 0 && !tcp.analysis.retransmission', ['tcp.stream', 'tcp.len']);
  const out = new Map<number, number>();
  for (const [s, len] of rows) out.set(Number(s), (out.get(Number(s)) ?? 0) + Number(len));
  return out;
}

/** Bytes a WebSocket frame takes on the wire: header, extended length, masking key, payload (RFC 6455 §5.2). */
export function wireBytes(f: WsFrame): number {
  const ext = f.payloadLength > 65535 ? 8 : f.payloadLength >= 126 ? 2 : 0;
  return 2 + ext + (f.masked ? 4 : 0) + f.payloadLength;
}
