/**
 * npm run bench:content — content over a local network of relay processes (10 store relays by default), the client
 * in this process. Prints medians of: put and get MB/s for 1 MiB and 50 MiB with k = 3, time to first byte of a
 * get, repair time after a holder dies, store writes per second; and, in the same run, a plain 50 MiB stream over a
 * 3-hop circuit (issue 18's goal: a get at no less than 0.8 of that throughput, its first byte within 50 ms).
 *
 * And, in the same run and on the same network, the same puts and gets by a second ContentClient with forwarding off
 * (`directForMeasurement`: straight to each holder on one circuit per holder, blocks in file order, fetches unpadded,
 * as before specs/content.md §8.2–§8.3): the two clients take turns, in alternating order, in every repetition, and
 * the benchmark prints each figure's ratio, forwarding / direct, and the verdict against issue 16's bound (no more
 * than 20 % lost). The ratio is the median of the ratios of the pairs measured back to back, which a shared machine's
 * load swings affect less than a ratio of medians.
 *
 * Each get is timed once the relays' repair passes have gone quiet after the put before it (bench/lib/repair-quiet.ts:
 * every relay has ended two passes that checked nothing, read from its metrics; at most 60 s): a put makes every
 * holder check the new blocks at the others, which at this benchmark's repair_interval of 1 s costs the relays
 * 300-600 ms of CPU in the second after it. The benchmark prints each wait (its time, passes, items checked, the
 * relays' CPU) and its median as a row.
 *
 * And, with Chromium installed, the time to first paint of a 1 MiB site (an HTML page, a stylesheet and three
 * images) opened through the local gateway (specs/content.md §12), each run a freshly published site and a browser
 * cache left empty, with the time to its load event.
 *
 *   flags: --relays N (10)  --runs N (5)  --quick (3 runs, 10 MiB instead of 50)  --site-only (only the site rows)
 *          --no-direct (leave the direct client out)  --compare (only the puts and gets of both clients: no plain
 *          stream, repair or site rows)  --no-repair (leave the repair and site rows out: puts, gets and the plain
 *          stream only)  --big N (MiB of the large put, get and plain stream: 50, or 10 with --quick)
 */
import { createServer } from 'node:http';
import { initCrypto } from '../crypto/index.js';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../client/client.js';
import { ContentClient } from '../client/content.js';
import { parseLink } from '../protocol/content-link.js';
import { fetchItem } from '../net/content-requests.js';
import { nodeSocketFactory } from '../net/ws-node.js';
import { startNetwork, waitFor } from '../cli/local-network.js';
import { chromiumPath, launchBrowser } from '../test/helpers/chromium.js';
import { memoryBookmarkStorage } from '../client/gateway/bookmarks.js';
import { startGateway } from '../client/gateway/server.js';
import { publishSite, type SiteSource } from '../client/site.js';
import { readFileSync } from 'node:fs';
import { parseFlags } from './lib/options.js';
import { median } from './lib/stats.js';
import { progress, writeResults } from './lib/results.js';
import { describeQuiet, repairQuiet } from './lib/repair-quiet.js';

const flags = parseFlags(
  process.argv.slice(2),
  {
    relays: 'number',
    runs: 'number',
    quick: 'boolean',
    'site-only': 'boolean',
    'no-direct': 'boolean',
    compare: 'boolean',
    'no-repair': 'boolean',
    big: 'number',
  },
  'npm run bench:content -- [--relays N] [--runs N] [--quick] [--site-only] [--no-direct] [--compare] [--no-repair] [--big MiB]',
);
const relaysN = flags.relays ?? 10;
const runs = flags.runs ?? (flags.quick ? 3 : 5);
const withDirect = !flags['no-direct'];
const compareOnly = flags.compare ?? false;
if (compareOnly && !withDirect) throw new Error('--compare needs the direct client');
/** issue 16: content throughput with forwarding at least this share of the same network's without it. */
const FORWARDING_GOAL = 0.8;
const BIG = (flags.big ?? (flags.quick ? 10 : 50)) * 1024 * 1024;
const bigLabel = `${BIG / 1048576} MiB`;
const MB = 1e6;

function data(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

await initCrypto();
console.log(`Allium content benchmark: ${relaysN} relay processes on 127.0.0.1 (k = 3), client in this process, ${runs} run(s)`);
const net = await startNetwork(relaysN, { exits: 1, timing: { repair_interval: 1000 } });
const stream = data(BIG, 99);
const http = createServer((_req, res) => {
  res.writeHead(200, { 'Content-Length': stream.length });
  res.end(stream);
});
await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
const httpPort = (http.address() as { port: number }).port;
const client = new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0 });
await client.start();
const content = new ContentClient(client);
/** Forwarding off, for the comparison (and nothing else). */
const direct = new ContentClient(client, { directForMeasurement: true });

const rows: Record<string, number[]> = {};
const add = (k: string, v: number): void => void (rows[k] ??= []).push(v);
const storeWrites = async (): Promise<number> =>
  (await Promise.all(net.relays.map((r) => r.metric('allium_store_blocks').catch(() => 0)))).reduce((a, b) => a + b, 0);

/** A 1 MiB site: a page with text, a stylesheet, and three images of about 330 KB (random bytes in a PNG's name). */
function oneMiBSite(seed: number): SiteSource[] {
  const png = readFileSync(new URL('../test/fixtures/garlic.png', import.meta.url));
  const text = Array.from({ length: 400 }, (_, i) => `<p>Paragraph ${i} of a site published for the benchmark, run ${seed}.</p>`).join('\n');
  const files: [string, string, Uint8Array][] = [
    [
      'index.html',
      'text/html',
      new TextEncoder().encode(
        `<!DOCTYPE html><html><head><title>bench</title><link rel="stylesheet" href="style.css"></head><body><h1>Benchmark site ${seed}</h1><img src="a.png"><img src="b.png"><img src="c.png"><img src="logo.png">${text}</body></html>`,
      ),
    ],
    ['style.css', 'text/css', new TextEncoder().encode(`body{font-family:sans-serif;background:#f6fbf1}h1{color:#2f6b20}/* ${seed} */`)],
    ['logo.png', 'image/png', png],
    ...['a', 'b', 'c'].map((n, i) => [`${n}.png`, 'image/png', data(330_000, seed * 31 + i)] as [string, string, Uint8Array]),
  ];
  return files.map(([path, type, bytes]) => ({ path, type, size: bytes.length, sha256: `${seed}-${path}`, read: async () => bytes }));
}

async function siteRows(): Promise<void> {
  if (!chromiumPath()) {
    console.log('skipped: site first paint (needs chromium, Debian package chromium)');
    return;
  }
  const gateway = await startGateway({ content, bookmarks: memoryBookmarkStorage() }, { port: 0, pollIntervalMs: 0 });
  const browser = await launchBrowser();
  try {
    for (let run = 0; run < runs; run++) {
      const sources = oneMiBSite(run + 1);
      const total = sources.reduce((n, s) => n + s.size, 0);
      const site = await publishSite(content, sources);
      const page = await browser.newPage();
      await page.setCacheEnabled(false);
      const t0 = performance.now();
      await page.goto(gateway.url.replace(/\/$/, '') + gateway.pathOf(site.link), { waitUntil: 'load', timeout: 300_000 });
      const loadMs = performance.now() - t0;
      const paint = await page.evaluate(() => {
        const e = performance.getEntriesByName('first-contentful-paint')[0] ?? performance.getEntriesByName('first-paint')[0];
        return e ? e.startTime : NaN;
      });
      add(`site ${(total / 1048576).toFixed(1)} MiB via gateway: first paint (ms)`, paint);
      add(`site ${(total / 1048576).toFixed(1)} MiB via gateway: load event (ms)`, loadMs);
      await page.close();
    }
  } finally {
    await browser.close();
    await gateway.stop();
  }
}

/** Repair: kill one holder of a fresh block and time until 3 live holders have it again; then the site rows. */
async function repairAndSiteRows(): Promise<void> {
  const link = await content.put(data(1024 * 1024, 4242));
  const root = parseLink(link);
  if (root.type !== 'chk') throw new Error('expected a chk link');
  const holders = content.holders(root.rk);
  const victim = net.relays.find((r) => r.fingerprint === holders[0]!.fingerprint)!;
  await victim.kill('SIGKILL');
  const t0 = performance.now();
  await waitFor(
    async () => {
      const live = client.directory.all().filter((d) => d.fingerprint !== victim.fingerprint && d.caps.includes('store'));
      let copies = 0;
      for (const d of live) {
        try {
          const c = await client.newCircuit({ last: d, exitPort: null, hops: 1 });
          if (await fetchItem(c, 'block', root.rk, { head: true })) copies++;
          c.close();
        } catch {
          /* relay busy or gone */
        }
      }
      return copies >= 3;
    },
    300_000,
    'three copies again',
  );
  add('repair after a holder died (s)', (performance.now() - t0) / 1000);
  await siteRows();
}

try {
  if (flags['site-only']) {
    await siteRows();
    console.log('\n| measurement | median | runs |\n| --- | --- | --- |');
    for (const [k, v] of Object.entries(rows)) console.log(`| ${k} | ${median(v).toFixed(2)} | ${v.map((x) => x.toFixed(2)).join(', ')} |`);
    console.log(`results: ${writeResults('content-site', { relays: relaysN, runs }, rows)}`);
    content.close();
    direct.close();
    await client.stop();
    http.close();
    await net.stop();
    process.exit(0);
  }
  for (let run = 0; run < runs; run++) {
    for (const [label, size] of [
      ['1 MiB', 1024 * 1024],
      [bigLabel, BIG],
    ] as const) {
      // The two clients take turns, the first alternating between repetitions (so a trend in load favours neither).
      const turns: [ContentClient, string][] = [[content, '']];
      if (withDirect) turns.splice(run % 2, 0, [direct, ' (direct)']);
      for (const [c, mode] of turns) {
        const bytes = data(size, run * 7 + size + (mode ? 1 : 0));
        const w0 = await storeWrites();
        let t = performance.now();
        const link = await c.put(bytes);
        const putS = (performance.now() - t) / 1000;
        add(`put ${label} MB/s${mode}`, size / MB / putS);
        if (!mode) add('store writes/s (all relays)', ((await storeWrites()) - w0) / putS);
        // The relays' repair passes check the new blocks at their other holders after every put (repair_interval 1 s
        // here): the get is timed once they have gone quiet, not beside them (content.md §6.2's counters).
        const q = await repairQuiet(net.relays);
        add(`wait after the put for repair passes to go quiet (ms)${mode}`, q.ms);
        progress(`run ${run + 1}: ${label}${mode || ' (forwarding)'}: ${describeQuiet(q)}`);
        t = performance.now();
        let first = 0;
        let got = 0;
        for await (const chunk of c.getStream(link)) {
          if (!first) first = performance.now() - t;
          got += chunk.length;
        }
        const getS = (performance.now() - t) / 1000;
        if (got !== size) throw new Error(`get returned ${got} of ${size} bytes`);
        add(`get ${label} MB/s${mode}`, size / MB / getS);
        add(`get ${label} time to first byte (ms)${mode}`, first);
        progress(`run ${run + 1}: ${label}${mode || ' (forwarding)'}: put ${(size / MB / putS).toFixed(2)} MB/s, get ${(size / MB / getS).toFixed(2)} MB/s`);
      }
    }
    if (compareOnly) continue;
    // A plain stream of the same size over a 3-hop circuit, in the same run.
    const s = await client.connect('127.0.0.1', httpPort, { isolation: `bench-${run}` });
    const t = performance.now();
    let n = 0;
    await new Promise<void>((resolve) => {
      s.on('stream:data', (d) => {
        n += d.length;
        s.consumed(1);
      });
      s.on('stream:end', () => resolve());
      s.write(new TextEncoder().encode('GET / HTTP/1.0\r\nHost: x\r\n\r\n'));
    });
    add('plain 3-hop stream MB/s', n / MB / ((performance.now() - t) / 1000));
  }

  if (!compareOnly && !flags['no-repair']) await repairAndSiteRows();

  console.log('\n| measurement | median | runs |\n| --- | --- | --- |');
  for (const [k, v] of Object.entries(rows)) console.log(`| ${k} | ${median(v).toFixed(2)} | ${v.map((x) => x.toFixed(2)).join(', ')} |`);
  const big = bigLabel;
  if (!compareOnly) {
    const bigGet = median(rows[`get ${big} MB/s`]!);
    const plain = median(rows['plain 3-hop stream MB/s']!);
    console.log(`\nratio: ${big} get / plain 3-hop stream = ${(bigGet / plain).toFixed(2)} (issue 18 goal ≥ 0.8: ${bigGet / plain >= 0.8 ? 'PASS' : 'MISS'})`);
    for (const label of ['1 MiB', big]) {
      const ttfb = median(rows[`get ${label} time to first byte (ms)`]!);
      console.log(`first byte of a ${label} get: ${ttfb.toFixed(1)} ms (issue 18 goal ≤ 50 ms: ${ttfb <= 50 ? 'PASS' : 'MISS'})`);
    }
  }
  if (withDirect) {
    console.log(`\nforwarding / direct, same network, same run (issue 16: ≥ ${FORWARDING_GOAL}, at most ${Math.round((1 - FORWARDING_GOAL) * 100)} % lost):`);
    console.log('| figure | forwarding | direct | ratio of medians | median of paired ratios | verdict |\n| --- | --- | --- | --- | --- | --- |');
    let met = true;
    for (const what of ['get', 'put']) {
      for (const label of ['1 MiB', big]) {
        const fwd = rows[`${what} ${label} MB/s`]!;
        const dir = rows[`${what} ${label} MB/s (direct)`]!;
        const paired = median(fwd.map((x, i) => x / dir[i]!));
        met &&= paired >= FORWARDING_GOAL;
        console.log(
          `| ${what} ${label} MB/s | ${median(fwd).toFixed(2)} | ${median(dir).toFixed(2)} | ${(median(fwd) / median(dir)).toFixed(2)} | ${paired.toFixed(2)} | ${paired >= FORWARDING_GOAL ? 'PASS' : 'MISS'} |`,
        );
      }
    }
    console.log(`verdict (issue 16, content throughput with forwarding): ${met ? 'PASS' : 'MISS'}`);
  }
  const file = writeResults('content', { relays: relaysN, runs, big: BIG }, rows);
  console.log(`results: ${file}`);
} finally {
  content.close();
  direct.close();
  await client.stop();
  http.close();
  await net.stop();
}
process.exit(0);
