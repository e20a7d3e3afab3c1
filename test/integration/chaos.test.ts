/**
 * Chaos, short form (npm run chaos -- --long for the long one; docs/chaos.md): relay processes killed with SIGKILL
 * and restarted at random, never k or more at once, while streams, content and messages run; one relay flooded
 * with handshakes and garbage; one relay's disk full. Nothing acknowledged may be lost, every failure must carry an
 * error code, the flooded and the full relay must stay up and keep carrying circuits, and once the faults stop every
 * kind of request must work again. Failures during the faults are counted and reported, not forbidden.
 */
import { expect } from 'chai';
import { formatChaosReport, REQUEST_KINDS, runChaos, type ChaosReport } from '../helpers/chaos.js';

describe('chaos: relays killed, flooded and out of disk while traffic runs (relay processes)', function () {
  this.timeout(600_000);
  let report: ChaosReport;

  before(async () => {
    report = await runChaos({
      relays: 7,
      exits: 2,
      k: 3,
      durationMs: 60_000,
      killIntervalMs: [6000, 12_000],
      downMs: [2000, 6000],
      maxDown: 2,
      flood: { startMs: 15_000, durationMs: 15_000, workers: 16, handshakesPerSecond: 50 },
      disk: { freeBytes: 256 * 1024 },
      putBytes: [20_000, 100_000],
      seed: 1,
      log: (l) => console.log(`      ${l}`),
    });
    console.log(formatChaosReport(report).replace(/^/gm, '      '));
  });

  it('killed relays at random (never k or more at once) while every kind of request ran', () => {
    expect(report.kills.length).to.be.at.least(3);
    expect(report.maxDownSeen).to.be.within(1, report.options.k - 1);
    for (const k of REQUEST_KINDS) expect(report.requests[k].firstTry + report.requests[k].afterRetry, `${k} succeeded`).to.be.greaterThan(0);
  });

  it('lost no acknowledged block and no link: every put still fetches after the faults', () => {
    expect(report.content.puts).to.be.greaterThan(3);
    expect(report.content.blocksLost).to.equal(0);
    expect(report.content.linksLost).to.equal(0);
  });

  it('every failed attempt carried an Allium error code', () => {
    expect(report.untyped).to.equal(0);
  });

  it('the flooded relay refused the flood, stayed up and carries circuits', () => {
    const f = report.flood!;
    expect(f.alive).to.equal(true);
    expect(f.servesAfter).to.equal(true);
    expect(f.handshakeRefusals + f.probes + f.frameErrors).to.be.greaterThan(0);
  });

  it('the relay whose disk filled closed its store (no longer advertised), stayed up and carries circuits', () => {
    const d = report.disk!;
    expect(d.alive).to.equal(true);
    expect(d.servesAfter).to.equal(true);
    expect(d.storeOpen).to.equal(false);
  });

  it('once the faults stopped, streams, puts, gets and messages all worked again (within 120 s)', () => {
    expect(report.final).to.deep.equal({ stream: true, put: true, get: true, message: true });
  });
});
