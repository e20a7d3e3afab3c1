/**
 * The relay's metrics as operators see them: the operator guide's table (docs/operator-guide.md §Metrics) lists
 * exactly the allium_* metrics relay/metrics.ts registers, with the same types and label names; the process
 * metrics it names exist; labelled series with known values start at 0; and every metric and label the Grafana
 * dashboard (contrib/grafana-allium.json) queries exists.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { RelayMetrics } from '../../relay/metrics.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

interface Registered {
  type: string;
  labels: string[];
}

async function registered(): Promise<Map<string, Registered>> {
  const m = new RelayMetrics();
  const out = new Map<string, Registered>();
  for (const x of await m.registry.getMetricsAsJSON()) {
    const labels = (m.registry.getSingleMetric(x.name) as unknown as { labelNames?: string[] }).labelNames ?? [];
    out.set(x.name, { type: String(x.type), labels: [...labels].sort() });
  }
  return out;
}

/** The §Metrics section of the operator guide. */
function metricsSection(): string {
  const guide = readFileSync(join(ROOT, 'docs', 'operator-guide.md'), 'utf8');
  const start = guide.indexOf('## Metrics');
  return guide.slice(start, guide.indexOf('\n## ', start + 5));
}

/** Rows of the metric table: name, type, label names (the first backticked word of each `;`-separated part). */
function documented(): Map<string, Registered> {
  const out = new Map<string, Registered>();
  for (const line of metricsSection().split('\n')) {
    const m = /^\| `(allium_[a-z_]+)` \| (counter|gauge|histogram) \|([^|]*)\|/.exec(line);
    if (!m) continue;
    const labels = m[3]!
      .split(';')
      .map((part) => /`([a-z_]+)`/.exec(part)?.[1])
      .filter((l): l is string => !!l)
      .sort();
    out.set(m[1]!, { type: m[2]!, labels });
  }
  return out;
}

describe('relay metrics: the operator guide, the Grafana dashboard and the code agree', () => {
  it("the guide's table lists every allium_* metric, with its type and labels, and nothing else", async () => {
    const reg = await registered();
    const code = new Map([...reg].filter(([name]) => name.startsWith('allium_')));
    const docs = documented();
    expect([...docs.keys()].sort()).to.deep.equal([...code.keys()].sort());
    for (const [name, d] of docs) expect(d, name).to.deep.equal(code.get(name));
  });

  it('a relay collects the process metrics only when it serves metrics (no event-loop monitor otherwise)', async () => {
    const { Relay } = await import('../../relay/relay.js');
    const { silentLogger } = await import('../../relay/logger.js');
    const dir = mkdtempSync(join(tmpdir(), 'allium-metrics-'));
    try {
      const config = { listen: '127.0.0.1:0', data_dir: dir, storage_quota: 0, log_level: 'silent' as const };
      const quiet = new Relay(config, { log: silentLogger() });
      const served = new Relay({ ...config, metrics: '127.0.0.1:0' }, { log: silentLogger() });
      expect(await quiet.metrics.text()).to.not.include('nodejs_eventloop_lag_p99_seconds');
      expect(await served.metrics.text()).to.include('nodejs_eventloop_lag_p99_seconds');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the process metrics the guide names exist (memory, CPU, file descriptors, event-loop lag, GC)', async () => {
    const reg = await registered();
    const named = [...metricsSection().matchAll(/`((?:process|nodejs)_[a-z0-9_]+)`/g)].map((m) => m[1]!);
    expect(named.length).to.be.greaterThan(8);
    for (const n of named) expect(reg.has(n), n).to.equal(true);
    for (const n of ['process_resident_memory_bytes', 'process_cpu_seconds_total', 'process_open_fds', 'nodejs_eventloop_lag_p99_seconds']) {
      expect(named, n).to.include(n);
    }
  });

  it('the drop reasons with fixed names are in the guide, and no routine event is among them', async () => {
    const { DROP_REASONS } = await import('../../relay/metrics.js');
    const section = metricsSection();
    const reasons = section.slice(section.indexOf('`allium_drops_total` reasons:'));
    for (const r of DROP_REASONS) expect(reasons, r).to.include(`\`${r}\``);
    for (const routine of ['rate_limited_pause', 'fetch_missing', 'replicated']) expect(DROP_REASONS).not.to.include(routine);
    // Every reason the relay's code counts by a fixed name is one of them (and so starts at 0 and is documented).
    const code = ['relay.ts', 'circuits.ts', 'overlay.ts', 'exit.ts', 'streams.ts', 'rendezvous.ts', 'content.ts', 'replication.ts']
      .map((f) => readFileSync(join(ROOT, 'relay', f), 'utf8'))
      .join('\n');
    const literal = [...code.matchAll(/drops\.inc\(\{ reason: '([a-z_]+)' \}\)/g)].map((m) => m[1]!);
    expect(literal.length).to.be.greaterThan(15);
    for (const r of literal) expect(DROP_REASONS, r).to.include(r);
  });

  it('labelled series with known label values start at 0', async () => {
    const text = await new RelayMetrics().text();
    for (const series of [
      'allium_links{kind="relay"} 0',
      'allium_links{kind="client"} 0',
      'allium_link_bytes_total{direction="in"} 0',
      'allium_link_bytes_total{direction="out"} 0',
      'allium_handshakes_total{result="ok"} 0',
      'allium_handshakes_total{result="handshake_rate"} 0',
      'allium_drops_total{reason="circuit_limit"} 0',
      'allium_fetches_total{result="missing"} 0',
      'allium_circuits_created_total{role="entry"} 0',
      'allium_gossip_pulls_total{event="abandoned"} 0',
      'allium_store_quota_bytes 0',
    ]) {
      expect(text, series).to.include(`\n${series}\n`);
    }
    expect(text).to.match(/\nallium_build_info\{version="\d+\.\d+\.\d+",node="\d+\.\d+\.\d+"\} 1\n/);
  });

  it('every metric and label the Grafana dashboard queries exists', async () => {
    const reg = await registered();
    const dash = JSON.parse(readFileSync(join(ROOT, 'contrib', 'grafana-allium.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    const exprs = dash.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: t.expr })));
    expect(exprs.length).to.be.greaterThan(10);
    const base = (name: string): string => (reg.has(name) ? name : name.replace(/_(bucket|sum|count)$/, ''));
    const used = new Set<string>();
    for (const { panel, expr } of exprs) {
      for (const m of expr.matchAll(/\b((?:allium|process|nodejs)_[a-z0-9_]+)(\{([^}]*)\})?/g)) {
        const name = base(m[1]!);
        expect(reg.has(name), `${panel}: ${m[1]}`).to.equal(true);
        used.add(name);
        for (const matcher of (m[3] ?? '').split(',').filter(Boolean)) {
          const label = /^\s*([a-zA-Z_]+)\s*(=~|!=|!~|=)/.exec(matcher)?.[1];
          if (!label || label === 'instance' || label === 'job') continue; // added by Prometheus
          expect(reg.get(name)!.labels, `${panel}: ${name}{${label}}`).to.include(label);
        }
      }
      for (const by of expr.matchAll(/by \(([^)]*)\)/g)) {
        for (const label of by[1]!.split(',').map((l) => l.trim())) {
          if (label === 'instance' || label === 'job') continue;
          const names = [...expr.matchAll(/\b((?:allium|process|nodejs)_[a-z0-9_]+)/g)].map((x) => base(x[1]!));
          expect(
            names.some((n) => reg.get(n)?.labels.includes(label)),
            `${panel}: by (${label})`,
          ).to.equal(true);
        }
      }
    }
    for (const must of [
      'allium_link_bytes_total',
      'allium_store_quota_bytes',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'allium_build_info',
    ]) {
      expect(used, must).to.include(must);
    }
  });
});
