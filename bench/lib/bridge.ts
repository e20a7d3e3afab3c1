/**
 * A bridge behind nginx with TLS, for bench:circuit's bridge rows: a certificate made with openssl, nginx (Debian's
 * nginx-light) on 127.0.0.1 running the location block of contrib/nginx-allium.conf, and one more relay process —
 * an unlisted bridge joined to the bench network — listening on 127.0.0.1 behind it. Started and stopped by the
 * benchmark (nginx by its own pid).
 */
import { rmSync } from 'node:fs';
import { startRelay, tempDir, waitFor } from '../../cli/local-network.js';
import { freePort, type RelayProcess } from '../../cli/relay-process.js';
import { makeTestCertificate, nginxBinary, startNginx, type NginxSite, type TestCertificate } from '../../test/helpers/network.js';
import type { Runtime } from './compiled.js';
import { BENCH_TIMING, type BenchNetwork } from './network.js';

export interface BridgeSetup {
  readonly bridge: RelayProcess;
  readonly nginx: NginxSite;
  readonly cert: TestCertificate;
  /** The bridge line clients use: wss:// through nginx. */
  readonly line: string;
  stop(): Promise<void>;
}

const PATH = '/api/v2/events';

/** Null when nginx is not installed (the rows are then left out, with a note). */
export async function startBridgeBehindNginx(net: BenchNetwork, rt: Runtime, nodeArgs: readonly string[]): Promise<BridgeSetup | null> {
  if (!nginxBinary()) return null;
  const certDir = tempDir('allium-bench-cert-');
  const cert = makeTestCertificate(certDir);
  const port = await freePort();
  const nginx = await startNginx({ cert, proxies: [{ path: PATH, upstream: `127.0.0.1:${port}` }] });
  let bridge: RelayProcess;
  try {
    bridge = await startRelay({
      nickname: 'bridge',
      listen: `127.0.0.1:${port}`,
      bootstrap: [net.bootstrap],
      timing: BENCH_TIMING,
      env: { NODE_EXTRA_CA_CERTS: cert.cert },
      extra: { path: PATH, public_address: `wss://127.0.0.1:${nginx.port}${PATH}`, bridge: true },
      process: { entry: [rt.cli], nodeArgs: [...rt.loaderArgs, ...nodeArgs] },
    });
    const n = net.relays.length;
    await waitFor(async () => (await bridge.metric('allium_directory_relays')) === n, 60_000, 'the bridge to learn the directory');
  } catch (e) {
    await nginx.stop();
    throw e;
  }
  return {
    bridge,
    nginx,
    cert,
    line: bridge.bridge!,
    async stop() {
      await bridge.kill('SIGTERM');
      rmSync(bridge.dataDir, { recursive: true, force: true });
      await nginx.stop();
      rmSync(certDir, { recursive: true, force: true });
    },
  };
}
