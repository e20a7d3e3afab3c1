/**
 * The programs in examples/ (used by README.md and docs/developer-guide.md) run against a real local network: each
 * is started as a child process, as a user would run it, and its output is checked. They are typechecked with the
 * rest of the code (tsconfig.json includes examples/).
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { startNetwork, tempDir, type TestNetwork } from '../helpers/network.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..', '..');
const BODY = 'hello through allium\n';

/** True when dist/ is missing or older than a source file it is compiled from. */
function distIsStale(): boolean {
  const built = join(ROOT, 'dist', 'client', 'index.js');
  if (!existsSync(built)) return true;
  const builtAt = statSync(built).mtimeMs;
  return ['errors', 'crypto', 'protocol', 'net', 'relay', 'client'].some((dir) =>
    readdirSync(join(ROOT, dir)).some((f) => f.endsWith('.ts') && statSync(join(ROOT, dir, f)).mtimeMs > builtAt),
  );
}

describe('examples/ (child processes against a 5-relay network)', function () {
  this.timeout(120_000);
  let net: TestNetwork;
  let http: Server;
  let httpPort: number;
  let stateDir: string;

  before(async function () {
    this.timeout(300_000); // a build, when dist/ is stale, then the network
    // The examples import 'allium/client' as an application does; in the checkout that resolves to dist/.
    if (distIsStale()) await run('npm', ['run', '-s', 'build'], { cwd: ROOT });
    http = createServer((req, res) => {
      if (req.url !== '/hello') return void res.writeHead(404).end();
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(BODY) }).end(BODY);
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    httpPort = (http.address() as { port: number }).port;
    net = await startNetwork(5, { exits: 2 });
    stateDir = tempDir('allium-state-');
  });

  after(async () => {
    http?.closeAllConnections();
    http?.close();
    await net?.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  function example(name: string, env: Record<string, string>, args: string[] = []): Promise<{ stdout: string; stderr: string }> {
    return run(process.execPath, ['--import', 'tsx', join('examples', name), ...args], {
      cwd: ROOT,
      // Where the examples' clients keep state by default (never this machine's ~/.local/state).
      env: { ...process.env, ALLIUM_BOOTSTRAP: net.bootstrap, ALLIUM_TEST_NETWORK: '1', ALLIUM_STATE_DIR: stateDir, ...env },
      timeout: 60_000,
    });
  }

  it('fetch-through-allium.ts prints the HTTP response it fetched through a circuit', async () => {
    const { stdout } = await example('fetch-through-allium.ts', { ALLIUM_TARGET: `http://127.0.0.1:${httpPort}/hello` });
    expect(stdout).to.match(/^HTTP\/1\.1 200 OK\r\n/);
    expect(stdout.endsWith(`\r\n\r\n${BODY}`)).to.equal(true);
  });

  it('publish-and-fetch.ts puts bytes, prints their link and gets the same bytes back', async () => {
    const text = `example ${Date.now()}`;
    const { stdout } = await example('publish-and-fetch.ts', {}, [text]);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).to.match(/^link: allium:chk\/[a-z2-7]+$/);
    expect(lines[1]).to.equal(`fetched ${Buffer.byteLength(text)} bytes: identical`);
  });

  it('send-a-file.ts exchanges cards, compares safety numbers and sends a file that arrives identical', async () => {
    const { stdout } = await example('send-a-file.ts', {}, ['100000']);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).to.match(/^safety number: (\d{5} ){11}\d{5} \(bob reads the same: true\)$/);
    expect(lines[1]).to.equal('sent pattern.bin (100000 bytes): delivered');
    expect(lines[2]).to.equal('received 100000 bytes: identical');
  });

  it('their clients kept the directory and guards in the state directory, which no example configured', () => {
    expect(readdirSync(stateDir).sort()).to.include.members(['directory.cbor', 'guards.json']);
    expect(statSync(stateDir).mode & 0o777).to.equal(0o700);
    expect(statSync(join(stateDir, 'guards.json')).mode & 0o777).to.equal(0o600);
  });
});
