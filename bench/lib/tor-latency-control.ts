/**
 * A small client for Tor's control protocol (control-spec: replies "250-"/"250+"/"250 ", asynchronous "650"
 * events), over the unix ControlSocket of a tor we started, for bench:tor-latency. Every event line keeps the
 * performance.now() at which its bytes arrived, so a circuit's build time runs from just before EXTENDCIRCUIT to
 * the arrival of its "650 CIRC <id> BUILT". A unix socket, not TCP: on a TCP control connection tor's small event
 * writes can be held by Nagle and delayed ACKs, which would land in the figure.
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';

export interface ControlEvent {
  /** performance.now() when the chunk carrying this event arrived. */
  readonly at: number;
  /** The event line without "650 " (e.g. "CIRC 12 BUILT $AB…~mid0,… PURPOSE=GENERAL …"). */
  readonly line: string;
}

interface Pending {
  resolve(lines: string[]): void;
  reject(e: Error): void;
}

export class TorControl {
  private buf = '';
  private lines: string[] = [];
  private inData = false;
  private readonly pending: Pending[] = [];
  private readonly listeners = new Set<(e: ControlEvent) => void>();
  private closed = false;

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.onData(chunk, performance.now()));
    const fail = (): void => {
      this.closed = true;
      for (const p of this.pending.splice(0)) p.reject(new Error('tor control connection closed'));
    };
    sock.on('close', fail);
    sock.on('error', fail);
  }

  /** Connects to a ControlSocket and authenticates with the cookie file tor wrote next to it. */
  static async open(socketPath: string, cookiePath: string): Promise<TorControl> {
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ path: socketPath }, () => resolve(s));
      s.once('error', reject);
    });
    const c = new TorControl(sock);
    await c.cmd(`AUTHENTICATE ${readFileSync(cookiePath).toString('hex')}`);
    return c;
  }

  private onData(chunk: string, at: number): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\r\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 2);
      this.onLine(line, at);
    }
  }

  private onLine(line: string, at: number): void {
    if (this.inData) {
      // A "+" reply carries a data block ending with a line holding a single ".".
      if (line === '.') this.inData = false;
      else this.lines.push(line.startsWith('..') ? line.slice(1) : line);
      return;
    }
    const sep = line[3];
    this.lines.push(line);
    if (sep === '+') this.inData = true;
    if (sep !== ' ') return;
    const reply = this.lines;
    this.lines = [];
    if (reply[0]!.startsWith('6')) {
      const ev: ControlEvent = { at, line: reply.map((l) => (/^\d{3}[ -+]/.test(l) ? l.slice(4) : l)).join('\n') };
      for (const f of this.listeners) f(ev);
      return;
    }
    const p = this.pending.shift();
    if (!p) return;
    if (line.startsWith('2')) p.resolve(reply);
    else p.reject(new Error(`tor control: ${reply.join(' | ')}`));
  }

  /** Sends one command; resolves with the reply lines, rejects on a non-2xx reply. */
  cmd(command: string): Promise<string[]> {
    if (this.closed) return Promise.reject(new Error('tor control connection closed'));
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.sock.write(`${command}\r\n`);
    });
  }

  /** GETINFO key: the value, with its "key=" prefix removed (multi-line values joined by "\n"). */
  async getinfo(key: string): Promise<string> {
    const r = await this.cmd(`GETINFO ${key}`);
    const body = r.slice(0, -1).map((l) => (/^250[-+]/.test(l) ? l.slice(4) : l));
    const first = body[0] ?? '';
    body[0] = first.startsWith(`${key}=`) ? first.slice(key.length + 1) : first;
    return body.filter((l) => l !== '').join('\n');
  }

  onEvent(f: (e: ControlEvent) => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  close(): void {
    if (!this.closed) this.sock.end('QUIT\r\n');
    this.closed = true;
  }
}
