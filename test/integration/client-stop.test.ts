/**
 * AlliumClient.stop() leaves nothing running (the one async contract, docs/developer-guide.md §Cancellation): with
 * circuit builds, a pool fill, a directory refresh, a stream open and a content fetch in flight against relay
 * processes on 127.0.0.1, stop() resolves only once every one of them has settled, each call that had not finished
 * rejects with ERR_ABORTED, what had finished is closed, and this process holds no socket or timer more than before
 * the client existed.
 */
import { expect } from 'chai';
import { createHook } from 'node:async_hooks';
import { createServer, type Server, type Socket } from 'node:net';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import type { ClientCircuit } from '../../net/circuit.js';
import type { MuxStream } from '../../net/stream-mux.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { crypto } from '../../crypto/index.js';
import { startNetwork, type TestNetwork } from '../helpers/network.js';

/** TCP sockets keeping this process alive now (the client's links and dials are the only ones a test opens). */
function tcpSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
}

/**
 * Records the timers created from now on; `pending()` lists those still set (neither fired nor cleared) that would
 * keep the process alive, by the stack that set them.
 */
function watchTimers(): { pending(): string[]; stop(): void } {
  const timers = new Map<number, { timer: { hasRef?: () => boolean; _destroyed?: boolean }; stack: string }>();
  const hook = createHook({
    init(id, type, _trigger, resource) {
      // Mocha's own test timer is not the client's.
      if (type === 'Timeout' && !(new Error().stack ?? '').includes('/node_modules/mocha/'))
        timers.set(id, { timer: resource as never, stack: (new Error().stack ?? '').split('\n').slice(4, 9).join(' ←') });
    },
    destroy(id) {
      timers.delete(id);
    },
  }).enable();
  return {
    pending: () => [...timers.values()].filter((t) => t.timer._destroyed !== true && t.timer.hasRef?.() !== false).map((t) => t.stack),
    stop: () => void hook.disable(),
  };
}

interface Outcome {
  what: string;
  settled: boolean;
  value?: unknown;
  error?: unknown;
}

/** Runs `p`, recording when and how it settles. */
function watch(what: string, p: Promise<unknown>): { outcome: Outcome; done: Promise<void> } {
  const outcome: Outcome = { what, settled: false };
  const done = p.then(
    (value) => void Object.assign(outcome, { settled: true, value }),
    (error: unknown) => void Object.assign(outcome, { settled: true, error }),
  );
  return { outcome, done };
}

describe('AlliumClient.stop() leaves nothing running (relay processes)', function () {
  this.timeout(300_000);
  let net: TestNetwork;
  let server: Server;
  let port: number;
  const accepted: Socket[] = [];

  before(async () => {
    net = await startNetwork(4, { exits: 1 });
    // A local service for the stream opens: it accepts and says nothing.
    server = createServer((s) => void accepted.push(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
  });

  after(async () => {
    for (const s of accepted) s.destroy();
    await new Promise<void>((r) => server?.close(() => r()));
    await net?.stop();
  });

  it('with builds, a pool fill, a refresh, a stream open and a fetch in flight: all settle by the time stop() resolves, aborted, and no socket or timer is left', async () => {
    const sockets = tcpSockets();
    const timers = watchTimers();
    const client = new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 2 });
    await client.start();
    const content = new ContentClient(client);
    const relays = client.directory.all();
    expect(relays.length).to.equal(4);
    // Circuits can be built here (so the builds below are real ones, cut short by stop()).
    (await client.newCircuit({ exitPort: null })).close();

    // Everything below is in flight when stop() is called: nothing has had a chance to finish.
    const calls = [
      ...Array.from({ length: 4 }, (_, i) => watch(`newCircuit #${i}`, client.newCircuit({ exitPort: null }))),
      watch('newCircuit to a chosen last hop', client.newCircuit({ last: relays[1]!, exitPort: null })),
      watch('connect', client.connect('127.0.0.1', port)),
      watch('refreshDirectory', client.refreshDirectory()),
    ];
    const fetch = watch(
      'fetchAnywhere',
      content.fetchAnywhere('block', crypto().random(32), () => true),
    );
    await client.stop();

    // stop() resolved: every call the client ran has settled already.
    expect(
      calls.filter((c) => !c.outcome.settled).map((c) => c.outcome.what),
      'still running after stop() resolved',
    ).to.deep.equal([]);
    // And nothing is left: no link's socket, no dial, no build or stream timer.
    try {
      expect({ sockets: tcpSockets(), timers: timers.pending() }, 'left after stop() resolved').to.deep.equal({ sockets, timers: [] });
    } finally {
      timers.stop();
    }

    await Promise.all([...calls, fetch].map((c) => c.done));
    const wrong: string[] = [];
    for (const { outcome: o } of [...calls, fetch]) {
      if (o.what === 'refreshDirectory') continue; // keeps the current view on any failure: it resolves either way
      if (o.error !== undefined) {
        const code = (o.error as { code?: string }).code;
        if (code !== 'ERR_ABORTED') wrong.push(`${o.what}: ${code ?? String(o.error)}`);
      } else {
        // A call that finished before stop() took effect: what it gave is closed.
        const state = (o.value as ClientCircuit | MuxStream | null)?.state;
        if (state !== undefined && state !== 'closed') wrong.push(`${o.what}: resolved, and still ${state}`);
      }
    }
    expect(wrong, 'calls that did not end with ERR_ABORTED').to.deep.equal([]);
    expect(client.openCircuits).to.equal(0);
    content.close();
    // A stopped client starts nothing new.
    const late = await client.newCircuit().then(
      () => 'built',
      (e: unknown) => (e as { code?: string }).code,
    );
    expect(late).to.equal('ERR_ABORTED');
  });
});
