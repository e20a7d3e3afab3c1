/**
 * The server side of a SOCKS5 handshake (RFC 1928 CONNECT, RFC 1929 username/password; specs/streams.md §6.3) as a
 * sans-I/O state machine: bytes in, actions out. It knows nothing of sockets; client/socks.ts wires it to one.
 *
 *     client                                  this machine
 *     05 n methods[n]            ──────────▶   method 02 (credentials) if offered, else 00, else FF and close
 *                                ◀──────────   05 02 | 05 00 | 05 FF
 *     [01 ulen user plen pass]   ──────────▶   (method 02 only) credentials kept for isolation, never checked
 *                                ◀──────────   01 00
 *     05 cmd 00 atyp addr port   ──────────▶   a request: CONNECT to (host, port), or a refusal reply
 *
 * Every byte it is given is counted against MAX_SOCKS_HANDSHAKE_BYTES before it is kept, and each field's length is
 * read before the field, so the work and memory for any input are linear in it and never above the cap. An input
 * that is not a SOCKS5 handshake is refused with ERR_SOCKS (and an HTTP request, which browsers and HTTP clients send
 * to a mistyped proxy port, is recognised so the caller can answer with a page that says what this port is).
 */
import { LimitError, ProtocolError } from '../protocol/errors.js';

/** The most bytes a client may send up to the end of its request (specs/streams.md §6.3; specs/limits.md). */
export const MAX_SOCKS_HANDSHAKE_BYTES = 600;

export const SocksReply = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;

export interface SocksCredentials {
  readonly user: Uint8Array;
  readonly password: Uint8Array;
}

/** What the caller must do next. */
export type SocksAction =
  | { readonly kind: 'write'; readonly bytes: Uint8Array }
  /** The handshake is over: connect; `early` is what the client sent after its request. */
  | { readonly kind: 'connect'; readonly host: string; readonly port: number; readonly credentials: SocksCredentials | null; readonly early: Uint8Array }
  /** Send `bytes` (possibly empty) and close. */
  | { readonly kind: 'close'; readonly bytes: Uint8Array }
  /** The client speaks HTTP to this port. */
  | { readonly kind: 'http' };

/** The reply to a request: `05 REP 00 01 0.0.0.0:0`. */
export function socksReply(code: number): Uint8Array {
  return Uint8Array.of(5, code, 0, 1, 0, 0, 0, 0, 0, 0);
}

/** The first two bytes of an HTTP request line: the start of a method (GET, POST, HEAD, CONNECT, PUT, …). */
function looksLikeHttp(a: number, b: number): boolean {
  return ['GE', 'PO', 'HE', 'CO', 'PU', 'DE', 'OP', 'PA', 'TR'].includes(String.fromCharCode(a, b));
}

type State = 'greeting' | 'auth' | 'request' | 'done';

const refuse = (why: string): never => {
  throw new ProtocolError('ERR_SOCKS', `SOCKS5 handshake refused: ${why}`);
};

export class SocksHandshake {
  private state: State = 'greeting';
  private buf = new Uint8Array(0);
  private received = 0;
  private credentials: SocksCredentials | null = null;

  /** True once the machine has answered `connect` or `close`: it reads nothing more. */
  get done(): boolean {
    return this.state === 'done';
  }

  /**
   * Takes bytes from the client; returns what to do, in order. Throws ERR_SOCKS for an input that is not a SOCKS5
   * handshake, ERR_LIMIT past MAX_SOCKS_HANDSHAKE_BYTES (the caller closes the connection for either). After a
   * `connect`, bytes that followed the request are in its `early`; the machine takes nothing more.
   */
  push(data: Uint8Array): SocksAction[] {
    if (this.state === 'done') throw new ProtocolError('ERR_SOCKS', 'SOCKS5 handshake already over');
    // Everything up to the end of the request counts, early data sent with it too (specs/streams.md §6.3).
    this.received += data.length;
    if (this.received > MAX_SOCKS_HANDSHAKE_BYTES)
      throw new LimitError('MAX_SOCKS_HANDSHAKE_BYTES', `SOCKS5 handshake longer than ${MAX_SOCKS_HANDSHAKE_BYTES} bytes`);
    const joined = new Uint8Array(this.buf.length + data.length);
    joined.set(this.buf);
    joined.set(data, this.buf.length);
    this.buf = joined;
    const actions: SocksAction[] = [];
    while (!this.done) {
      const used = this.step(actions);
      if (used === 0) break;
      this.buf = this.buf.subarray(used);
    }
    return actions;
  }

  /** Consumes one message from the buffer if it is complete; returns the bytes used (0: need more). */
  private step(actions: SocksAction[]): number {
    const b = this.buf;
    switch (this.state) {
      case 'greeting': {
        if (b.length < 2) return 0; // one byte cannot tell SOCKS from HTTP
        if (b[0] !== 5) {
          if (looksLikeHttp(b[0]!, b[1]!)) {
            this.state = 'done';
            actions.push({ kind: 'http' });
            return 2;
          }
          refuse(`version ${b[0]}`);
        }
        const n = b[1]!;
        if (n === 0) refuse('no authentication methods offered');
        if (b.length < 2 + n) return 0;
        const methods = b.subarray(2, 2 + n);
        if (methods.includes(2)) {
          this.state = 'auth';
          actions.push({ kind: 'write', bytes: Uint8Array.of(5, 2) });
        } else if (methods.includes(0)) {
          this.state = 'request';
          actions.push({ kind: 'write', bytes: Uint8Array.of(5, 0) });
        } else {
          this.state = 'done';
          actions.push({ kind: 'close', bytes: Uint8Array.of(5, 0xff) });
        }
        return 2 + n;
      }
      case 'auth': {
        if (b.length >= 1 && b[0] !== 1) refuse(`username/password version ${b[0]}`);
        if (b.length < 2) return 0;
        const ulen = b[1]!;
        if (b.length < 2 + ulen + 1) return 0;
        const plen = b[2 + ulen]!;
        const end = 3 + ulen + plen;
        if (b.length < end) return 0;
        this.credentials = { user: b.slice(2, 2 + ulen), password: b.slice(3 + ulen, end) };
        this.state = 'request';
        actions.push({ kind: 'write', bytes: Uint8Array.of(1, 0) });
        return end;
      }
      case 'request': {
        if (b.length >= 1 && b[0] !== 5) refuse(`request version ${b[0]}`);
        if (b.length < 5) return 0;
        const cmd = b[1]!;
        const atyp = b[3]!;
        let host: string;
        let at: number;
        if (atyp === 1) {
          if (b.length < 10) return 0;
          host = `${b[4]}.${b[5]}.${b[6]}.${b[7]}`;
          at = 8;
        } else if (atyp === 3) {
          const len = b[4]!;
          if (b.length < 5 + len + 2) return 0;
          host = new TextDecoder().decode(b.subarray(5, 5 + len));
          at = 5 + len;
        } else if (atyp === 4) {
          if (b.length < 22) return 0;
          const parts: string[] = [];
          for (let i = 4; i < 20; i += 2) parts.push(((b[i]! << 8) | b[i + 1]!).toString(16));
          host = parts.join(':');
          at = 20;
        } else {
          this.state = 'done';
          actions.push({ kind: 'close', bytes: socksReply(SocksReply.ADDRESS_TYPE_NOT_SUPPORTED) });
          return b.length;
        }
        const port = (b[at]! << 8) | b[at + 1]!;
        const used = at + 2;
        this.state = 'done';
        if (cmd !== 1) actions.push({ kind: 'close', bytes: socksReply(SocksReply.COMMAND_NOT_SUPPORTED) });
        else if (port === 0 || host.length === 0) actions.push({ kind: 'close', bytes: socksReply(SocksReply.GENERAL_FAILURE) });
        else actions.push({ kind: 'connect', host, port, credentials: this.credentials, early: b.slice(used) });
        return used;
      }
      default:
        return 0;
    }
  }
}
