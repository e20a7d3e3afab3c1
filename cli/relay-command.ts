/**
 * `allium relay`: builds the configuration from the file and the flags, checks it (`--verify-config` stops there),
 * runs the relay, prints its banner, tells systemd when it is ready, and handles signals — SIGTERM/SIGINT stop it in
 * order, SIGHUP reads the configuration again and applies what a running relay can (relay/reload.ts) and re-reads
 * the TLS certificate.
 */
import { loadRelayConfigFile, resolveRelayConfig, SINGLE_HOST_NETWORK, type RelayConfig, type RelayConfigInput } from '../relay/config.js';
import { createLogger } from '../relay/logger.js';
import { preflightRelay } from '../relay/preflight.js';
import { loadTlsFiles, Relay } from '../relay/relay.js';
import { writeFileAtomic } from '../relay/keystore.js';
import { describeError, EXIT } from './errors.js';
import { systemdNotifier } from './sd-notify.js';

/** The relay's configuration input: the file's keys, then the flags over them. */
export function relayConfigInput(opts: Record<string, unknown>): Record<string, unknown> {
  const base: Record<string, unknown> = opts['config'] ? { ...loadRelayConfigFile(String(opts['config'])) } : {};
  if (opts['listen']) base['listen'] = opts['listen'];
  if (opts['dataDir']) base['data_dir'] = opts['dataDir'];
  if ((opts['bootstrap'] as string[]).length) base['bootstrap'] = opts['bootstrap'];
  if (opts['nickname']) base['nickname'] = opts['nickname'];
  if ((opts['exitPolicy'] as string[]).length) base['exit_policy'] = opts['exitPolicy'];
  if (opts['metrics']) base['metrics'] = opts['metrics'];
  if (opts['logLevel']) base['log_level'] = opts['logLevel'];
  if (opts['logFormat']) base['log_format'] = opts['logFormat'];
  if (opts['bridge']) base['bridge'] = true;
  if (opts['testNetwork']) {
    for (const [k, v] of Object.entries(SINGLE_HOST_NETWORK)) base[k] ??= v;
    base['exit_reject_private'] = false;
    base['allow_private_addresses'] = true;
    base['timing'] = { gossip_interval: 1000, maintenance_interval: 500, ...(base['timing'] as object | undefined) };
  }
  return base;
}

const SECRET_KEYS = new Set(['admin_token']);

/** The effective configuration, one `key = value` line each (timing keys as timing.x), secrets left out. */
export function formatConfig(cfg: RelayConfig): string {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(cfg)) {
    if (k === 'timing') for (const [t, tv] of Object.entries(v as object)) lines.push(`timing.${t} = ${JSON.stringify(tv)}`);
    else lines.push(`${k} = ${SECRET_KEYS.has(k) && v ? '"(set)"' : JSON.stringify(v)}`);
  }
  return lines.join('\n');
}

export async function runRelayCommand(opts: Record<string, unknown>): Promise<void> {
  const build = (): RelayConfig => resolveRelayConfig(relayConfigInput(opts) as RelayConfigInput);
  const config = build();
  if (opts['verifyConfig']) {
    if (config.tls_cert) loadTlsFiles(config.tls_cert, config.tls_key);
    await preflightRelay(config);
    process.stdout.write(`configuration OK: every key valid, data_dir usable, every listen address free\n${formatConfig(config)}\n`);
    process.exit(EXIT.OK);
  }
  const log = createLogger(config.log_level, 'allium-relay', undefined, config.log_format);
  const notify = systemdNotifier(process.env, (why) => log.error(why));
  const relay = new Relay(config, { log });
  await relay.start();
  // one write, so a reader that waits for the bootstrap line also has the addresses after it
  let banner = relay.bridgeLine
    ? `Allium bridge ${relay.config.nickname} running (unlisted: never published in the directory)\n  fingerprint: ${relay.fingerprint}\n  bridge line: ${relay.bridgeLine}\n` +
      `  give the bridge line only to people you want to use this bridge: it lets them in, and lets anyone who has it find the bridge\n`
    : `Allium relay ${relay.config.nickname} running\n  fingerprint: ${relay.fingerprint}\n  bootstrap line: ${relay.bootstrapLine}\n`;
  if (relay.metricsAddress) banner += `  metrics: ${relay.metricsAddress}\n`;
  if (relay.adminAddress) banner += `  status page: ${relay.adminAddress}\n`;
  process.stdout.write(banner);
  if (opts['readyFile']) {
    writeFileAtomic(
      String(opts['readyFile']),
      JSON.stringify({
        fingerprint: relay.fingerprint,
        address: relay.address,
        bootstrap: relay.bootstrapLine,
        bridge: relay.bridgeLine,
        metrics: relay.metricsAddress,
        admin: relay.adminAddress,
        pid: process.pid,
      }),
    );
  }
  void notify({ READY: '1', STATUS: `relay ${relay.fingerprint.slice(0, 8)} running at ${relay.address}` });

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void notify({ STOPPING: '1' });
    relay.stop().then(
      () => process.exit(EXIT.OK),
      () => process.exit(EXIT.FAILURE),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  let reloading = Promise.resolve();
  process.on('SIGHUP', () => {
    if (stopping) return;
    reloading = reloading.then(async () => {
      await notify({ RELOADING: '1', MONOTONIC_USEC: String(process.hrtime.bigint() / 1000n) });
      try {
        relay.reload(build());
      } catch (e) {
        log.error(`reload failed, nothing changed: ${describeError(e)}`);
      }
      await notify({ READY: '1' });
    });
  });
}
