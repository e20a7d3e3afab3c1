/**
 * The files in contrib/ that operators copy (docs/operator-guide.md): the example config must load as it is, and the
 * systemd unit must keep its hardening, readiness and reload lines (and pass `systemd-analyze verify`). That its paths
 * match what `npm install -g` makes is checked by test/integration/package.test.ts.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { RELAY_NODE_FLAGS, RELAY_PROCESS_ENV } from '../../cli/relay-process.js';
import { loadRelayConfigFile } from '../../relay/config.js';
import { needProgram } from '../helpers/programs.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..', '..');
const UNIT = join(ROOT, 'contrib', 'allium-relay.service');

describe('contrib/ (example config, systemd unit)', function () {
  it('contrib/relay.toml.example is a valid relay config with safe defaults', () => {
    const cfg = loadRelayConfigFile(join(ROOT, 'contrib', 'relay.toml.example'));
    expect(cfg.data_dir).to.equal('/var/lib/allium');
    expect(cfg.exit_policy).to.deep.equal(['reject *:*']);
    expect(cfg.exit_reject_private).to.equal(true);
    expect(cfg.metrics.startsWith('127.0.0.1:')).to.equal(true);
  });

  it('contrib/allium-relay.service keeps its hardening directives', () => {
    const lines = readFileSync(UNIT, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const required = [
      'Type=notify',
      'NotifyAccess=all',
      'ExecStart=/usr/bin/env allium relay --config /etc/allium/relay.toml',
      'ExecReload=/bin/kill -HUP $MAINPID',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'PrivateDevices=yes',
      'StateDirectory=allium',
      'ProtectKernelTunables=yes',
      'ProtectKernelModules=yes',
      'ProtectControlGroups=yes',
      'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
      'RestrictNamespaces=yes',
      'LockPersonality=yes',
      'MemoryDenyWriteExecute=no',
      'SystemCallFilter=@system-service',
      'CapabilityBoundingSet=',
      'AmbientCapabilities=',
      'KillSignal=SIGTERM',
      'TimeoutStopSec=30',
      'Restart=on-failure',
    ];
    for (const directive of required) expect(lines, directive).to.include(directive);
    expect(lines.includes('DynamicUser=yes') || lines.includes('User=allium'), 'DynamicUser=yes or User=allium').to.equal(true);
  });

  it('contrib/allium-relay.service starts the relay as cli/relay-process.ts does: the same malloc arenas and V8 worker threads', () => {
    const lines = readFileSync(UNIT, 'utf8').split('\n');
    for (const [k, v] of Object.entries(RELAY_PROCESS_ENV)) expect(lines).to.include(`Environment=${k}=${v}`);
    expect(lines).to.include(`Environment=NODE_OPTIONS=${RELAY_NODE_FLAGS.join(' ')}`);
  });

  it('systemd-analyze verify accepts the unit', async function () {
    this.timeout(30_000);
    needProgram(this, 'systemd-analyze');
    // verify exits 0 even for unknown keys or bad values; those are warnings that name the file, so look for them.
    const { stderr } = await run('systemd-analyze', ['verify', UNIT]).catch((e: { stderr?: string; code?: number }) => {
      throw new Error(`systemd-analyze verify failed (${e.code}): ${e.stderr ?? ''}`);
    });
    const aboutUnit = stderr.split('\n').filter((l) => l.includes('allium-relay.service'));
    expect(aboutUnit, aboutUnit.join('\n')).to.deep.equal([]);
  });
});
