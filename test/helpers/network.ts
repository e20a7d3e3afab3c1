/**
 * Test networks of real relay processes on 127.0.0.1: each relay is `node bin/allium.js relay` with its own data
 * directory and config file, started by the test and stopped by it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { join, resolve } from 'node:path';
import { findProgram } from './programs.js';
import { freePort, readMetric, type RelayProcess } from '../../cli/relay-process.js';
import * as local from '../../cli/local-network.js';
import { sleep, tempDir, type RelayProcessOptions } from '../../cli/local-network.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const SOURCE_CLI = join(ROOT, 'cli', 'allium.ts');
const TSX = import.meta.resolve('tsx');
const DIST_CLI = join(ROOT, 'dist', 'cli', 'allium.js');

/** Newest modification time of the TypeScript sources a relay process runs. */
function newestSource(): number {
  let newest = 0;
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const d of ['errors', 'crypto', 'protocol', 'net', 'relay', 'client', 'cli']) walk(join(ROOT, d));
  return newest;
}

/**
 * How relay processes run by default: the compiled build when it is at least as new as every source file (npm test
 * builds first; starting from JavaScript saves each process a second or more of compiling), else the sources through
 * tsx, so a test never runs a stale build. ALLIUM_TEST_SOURCES=1 forces the sources.
 */
export const DEFAULT_ENTRY: string[] =
  process.env['ALLIUM_TEST_SOURCES'] !== '1' && existsSync(DIST_CLI) && statSync(DIST_CLI).mtimeMs >= newestSource()
    ? [DIST_CLI]
    : ['--import', TSX, SOURCE_CLI];

// --- TLS and nginx (censorship tests and benchmarks) ---------------------------------------------------------------

export type { RelayProcess } from '../../cli/relay-process.js';
export { freePort, readMetric };
export {
  FAST_FLAGS,
  FAST_TIMING,
  preparedRelayDir,
  sleep,
  tempDir,
  waitFor,
  type LocalNetwork as TestNetwork,
  type RelayProcessOptions,
} from '../../cli/local-network.js';

/** A relay process as the tests start it: cli/local-network.ts, running DEFAULT_ENTRY unless told otherwise. */
export function startRelay(o: RelayProcessOptions = {}): Promise<RelayProcess> {
  return local.startRelay({ ...o, process: { entry: DEFAULT_ENTRY, ...o.process } });
}

/** A network of relay processes as the tests start it (cli/local-network.ts startNetwork), running DEFAULT_ENTRY. */
export function startNetwork(n: number, o: Parameters<typeof local.startNetwork>[1] = {}): Promise<local.LocalNetwork> {
  return local.startNetwork(n, { ...o, process: { entry: DEFAULT_ENTRY, ...o.process } });
}

/** Other processes a test started (nginx); killed when the test process exits. Relay processes: cli/relay-process.ts. */
const spawned = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of spawned) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

export interface TestCertificate {
  /** PEM files: the certificate (self-signed, so it is also the CA to trust) and its key. */
  readonly cert: string;
  readonly key: string;
  readonly pem: string;
}

/** Makes a self-signed certificate for 127.0.0.1 and localhost with the openssl CLI, valid two days. */
export function makeTestCertificate(dir: string): TestCertificate {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'pipe' },
  );
  return { cert, key, pem: readFileSync(cert, 'utf8') };
}

/** The nginx binary, or null when it is not installed (Debian: nginx-light). */
export function nginxBinary(): string | null {
  return findProgram('nginx');
}

/**
 * The location block of contrib/nginx-allium.conf (between its BEGIN and END markers), for `path` proxied to
 * `upstream` (host:port): tests run the documented snippet itself.
 */
export function nginxLocationSnippet(path: string, upstream: string, name = 'allium'): string {
  const text = readFileSync(join(ROOT, 'contrib', 'nginx-allium.conf'), 'utf8');
  const m = /# BEGIN allium location\n([\s\S]*?)# END allium location/.exec(text);
  if (!m) throw new Error('contrib/nginx-allium.conf: no "# BEGIN allium location" … "# END allium location" block');
  return m[1]!.replaceAll('/some/path', path).replaceAll('127.0.0.1:9001', upstream).replaceAll('@allium_miss', `@${name}_miss`);
}

export interface NginxSite {
  readonly port: number;
  readonly dir: string;
  readonly pid: number;
  /** https://127.0.0.1:PORT */
  readonly origin: string;
  logs(): string;
  stop(): Promise<void>;
}

/**
 * Starts nginx in the foreground (its own prefix, config and logs in a temporary directory; one process, no
 * daemon), serving a small static site over TLS on 127.0.0.1, with the documented Allium location for each of
 * `proxies` ({ path, upstream: "127.0.0.1:PORT" }). Stopped by stop() (SIGQUIT, then SIGKILL) or when the test
 * process exits.
 */
export async function startNginx(o: { cert: TestCertificate; proxies: { path: string; upstream: string }[]; port?: number }): Promise<NginxSite> {
  const bin = nginxBinary();
  if (!bin) throw new Error('nginx is not installed');
  const dir = tempDir('allium-nginx-');
  mkdirSync(join(dir, 'www'));
  mkdirSync(join(dir, 'tmp'));
  writeFileSync(
    join(dir, 'www', 'index.html'),
    '<!DOCTYPE html>\n<html><head><title>Garden notes</title></head><body><h1>Garden notes</h1><p>Leeks, garlic and chives.</p></body></html>\n',
  );
  const port = o.port ?? (await freePort());
  const locations = o.proxies.map((p, i) => nginxLocationSnippet(p.path, p.upstream, `allium${i}`)).join('\n');
  const t = (name: string): string => join(dir, 'tmp', name);
  const conf = `daemon off;
master_process off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} info;
events { worker_connections 1024; }
http {
  access_log ${join(dir, 'access.log')};
  client_body_temp_path ${t('body')};
  proxy_temp_path ${t('proxy')};
  fastcgi_temp_path ${t('fastcgi')};
  uwsgi_temp_path ${t('uwsgi')};
  scgi_temp_path ${t('scgi')};
  types { text/html html; }
  default_type application/octet-stream;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:${port} ssl;
    server_name localhost;
    ssl_certificate ${o.cert.cert};
    ssl_certificate_key ${o.cert.key};
    root ${join(dir, 'www')};
    index index.html;
${locations}
  }
}
`;
  const confFile = join(dir, 'nginx.conf');
  writeFileSync(confFile, conf);
  const proc = spawn(bin, ['-p', dir, '-c', confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  spawned.add(proc);
  proc.once('exit', () => spawned.delete(proc));
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const logs = (): string => out + (existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '');
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`nginx exited (${proc.exitCode}):\n${logs()}`);
    const up = await new Promise<boolean>((r) => {
      const c = connect(port, '127.0.0.1', () => {
        c.destroy();
        r(true);
      });
      c.once('error', () => r(false));
    });
    if (up) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`nginx did not start:\n${logs()}`);
    }
    await sleep(50);
  }
  return {
    port,
    dir,
    pid: proc.pid!,
    origin: `https://127.0.0.1:${port}`,
    logs,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGQUIT');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// --- HTTP from the outside: what a prober sees, and bytes through a circuit ----------------------------------------

export interface RawResponse {
  readonly statusLine: string;
  readonly status: number;
  /** Header lines in order, as sent. */
  readonly headers: [string, string][];
  readonly body: Buffer;
}

/**
 * One HTTP/1.1 request over a fresh TCP (or TLS) connection to 127.0.0.1, read byte for byte: the response's
 * status line, headers in order, and body (Content-Length, or to the end; nothing after a 101). `upgrade` sends a
 * browser-like WebSocket upgrade request. `ca` is the certificate to trust for TLS.
 */
export async function rawHttp(o: { port: number; path: string; ca?: string; tls?: boolean; upgrade?: boolean; method?: string }): Promise<RawResponse> {
  const host = `127.0.0.1:${o.port}`;
  const lines = [
    `${o.method ?? 'GET'} ${o.path} HTTP/1.1`,
    `Host: ${host}`,
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
    'Accept: */*',
  ];
  if (o.upgrade) {
    lines.push(
      'Connection: Upgrade',
      'Upgrade: websocket',
      'Sec-WebSocket-Version: 13',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      `Origin: ${o.tls ? 'https' : 'http'}://${host}`,
    );
  }
  const request = lines.join('\r\n') + '\r\n\r\n';
  const socket: Socket = o.tls
    ? tlsConnect({ host: '127.0.0.1', port: o.port, servername: 'localhost', ...(o.ca ? { ca: o.ca } : {}) })
    : connect(o.port, '127.0.0.1');
  return new Promise<RawResponse>((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error(`no complete response from ${host}${o.path}`)), 15_000);
    const finish = (err: Error | null): void => {
      clearTimeout(timer);
      socket.destroy();
      if (err) return reject(err);
      const end = buf.indexOf('\r\n\r\n');
      const head = buf.subarray(0, end).toString('latin1').split('\r\n');
      const statusLine = head[0]!;
      const headers = head.slice(1).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()] as [string, string]);
      resolve({ statusLine, status: Number(statusLine.split(' ')[1]), headers, body: buf.subarray(end + 4) });
    };
    const complete = (): boolean => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return false;
      const head = buf.subarray(0, end).toString('latin1');
      if (/^HTTP\/1\.1 101 /.test(head)) {
        buf = buf.subarray(0, end + 4);
        return true;
      }
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      return m ? buf.length >= end + 4 + Number(m[1]) : false;
    };
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (complete()) finish(null);
    });
    socket.once('end', () => (buf.indexOf('\r\n\r\n') >= 0 ? finish(null) : finish(new Error('connection closed before a response'))));
    socket.once('error', (e) => finish(e));
    socket.once(o.tls ? 'secureConnect' : 'connect', () => socket.write(request));
  });
}

/** A response as text with the Date header left out: what two misses must share byte for byte. */
export function withoutDate(r: RawResponse): string {
  const headers = r.headers.filter(([k]) => k.toLowerCase() !== 'date').map(([k, v]) => `${k}: ${v}`);
  return [r.statusLine, ...headers, '', r.body.toString('latin1')].join('\n');
}

/** A web server on 127.0.0.1 serving `body` at every path (Content-Length, connection closed after each response). */
export async function startBytesServer(body: Uint8Array): Promise<{ port: number; close(): Promise<void> }> {
  const server = createHttpServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length, Connection: 'close' });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The slice of AlliumClient that fetchThrough uses (so this helper does not import the client). */
interface StreamClient {
  connect(
    host: string,
    port: number,
    o: { isolation?: string; signal?: AbortSignal },
  ): Promise<{
    on(e: 'stream:data', f: (c: Uint8Array) => void): unknown;
    on(e: 'stream:end', f: (reason: number) => void): unknown;
    write(b: Uint8Array): boolean;
    consumed(n: number): void;
  }>;
  listCircuits(): { isolation: string | null; path: { fingerprint: string }[] }[];
}

/**
 * GET http://127.0.0.1:PORT/ through one of the client's circuits (HTTP/1.0, the exit connects to 127.0.0.1).
 * Returns the status, the body and the fingerprints of the circuit's path.
 */
export async function fetchThrough(
  client: StreamClient,
  port: number,
  isolation = `fetch-${Date.now()}-${Math.random()}`,
): Promise<{ status: number; body: Buffer; path: string[] }> {
  const stream = await client.connect('127.0.0.1', port, { isolation, signal: AbortSignal.timeout(60_000) });
  const chunks: Buffer[] = [];
  const ended = new Promise<void>((r) => stream.on('stream:end', () => r()));
  stream.on('stream:data', (c) => {
    chunks.push(Buffer.from(c));
    stream.consumed(1);
  });
  stream.write(new TextEncoder().encode(`GET / HTTP/1.0\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`));
  await ended;
  const all = Buffer.concat(chunks);
  const end = all.indexOf('\r\n\r\n');
  const circuit = client.listCircuits().find((c) => c.isolation === isolation);
  return {
    status: Number(all.subarray(0, end).toString('latin1').split(' ')[1]),
    body: all.subarray(end + 4),
    path: circuit?.path.map((d) => d.fingerprint) ?? [],
  };
}
