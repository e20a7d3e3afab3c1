/**
 * One relay (issue: the simulator's relay must be the relay that ships). The shipped relay (relay/relay.ts) and the
 * simulator's relays (sim/relay-node.ts) are both made by createRelayNode (relay/node.ts), so a simulated relay has
 * every part the shipped one has and does the same housekeeping: the same endpoint handlers on its circuit reactor
 * (streams, rendezvous, echo), the same stream openers (an exit's BEGIN, STORE, FETCH) and services behind them,
 * and the same store-room check, which stops advertising `store` when the store is full.
 *
 * The shipped relay runs in this process on 127.0.0.1; the simulated one in a simulated world (virtual clock, memory
 * sockets). Both are given the same configuration: an exit to ports 80 and 443 and a content store.
 */
import { expect } from 'chai';
import { RelayCommand } from '../../protocol/relay-cell.js';
import type { CircuitReactor } from '../../relay/circuits.js';
import { silentLogger } from '../../relay/logger.js';
import { isRelayNode } from '../../relay/node.js';
import { Relay } from '../../relay/relay.js';
import { StreamsHandler } from '../../relay/streams.js';
import { FullRelay, MessageRelay } from '../../sim/relay-node.js';
import { simulate } from '../../sim/world.js';
import { tempDir } from '../helpers/network.js';

const EXIT = ['accept *:80', 'accept *:443', 'reject *:*'];

/** What a relay's circuit reactor is made of: its endpoint handlers, the stream openers and the services behind them. */
interface Shape {
  handlers: string[];
  openers: string[];
  services: string[];
}

function shapeOf(reactor: CircuitReactor): Shape {
  const handlers = (reactor as unknown as { handlers: object[] }).handlers;
  const streams = handlers.find((h) => h instanceof StreamsHandler) as unknown as { openers: Map<number, unknown>; services: object[] } | undefined;
  const name = (c: number): string => Object.entries(RelayCommand).find(([, v]) => v === c)?.[0] ?? String(c);
  return {
    handlers: handlers.map((h) => h.constructor.name),
    openers: [...(streams?.openers.keys() ?? [])].map(name).sort(),
    services: (streams?.services ?? []).map((s) => s.constructor.name),
  };
}

/** A relay's parts, and its descriptor's caps before and after its store reports no room left and it maintains. */
interface Observed {
  madeByCreateRelayNode: boolean;
  shape: Shape;
  capsBefore: readonly string[];
  capsWhenFull: readonly string[];
}

async function shipped(): Promise<Observed> {
  const relay = new Relay(
    {
      listen: '127.0.0.1:0',
      data_dir: tempDir('one-relay-'),
      storage_quota: 64 * 1024 * 1024,
      storage_min_free_disk: 0,
      exit_policy: EXIT,
      log_level: 'silent',
      allow_private_addresses: true,
    },
    { log: silentLogger() },
  );
  await relay.start();
  try {
    const capsBefore = relay.descriptor!.caps;
    relay.store!.roomLeft = () => 0;
    (relay as unknown as { maintain(): void }).maintain();
    return {
      madeByCreateRelayNode: isRelayNode((relay as unknown as { node?: unknown }).node),
      shape: shapeOf(relay.circuits),
      capsBefore,
      capsWhenFull: relay.descriptor!.caps,
    };
  } finally {
    await relay.stop();
  }
}

function simulated(): Promise<Observed> {
  return simulate({ seed: 14 }, async (w) => {
    const relay = new FullRelay(w, w.network.addHost(), 0, { store: true, exit: true, config: { storage_min_free_disk: 0 } });
    try {
      relay.start([]);
      await w.run(1000);
      const capsBefore = relay.descriptor!.caps;
      relay.store!.roomLeft = () => 0;
      relay.maintain();
      return {
        madeByCreateRelayNode: isRelayNode((relay as unknown as { node?: unknown }).node),
        shape: shapeOf(relay.reactor),
        capsBefore,
        capsWhenFull: relay.descriptor!.caps,
      };
    } finally {
      relay.dispose();
    }
  });
}

describe('architecture: one relay for the daemon and the simulator', function () {
  this.timeout(60_000);
  let real: Observed;
  let sim: Observed;

  before(async () => {
    real = await shipped();
    sim = await simulated();
  });

  it('the shipped relay and the simulated relays are each a node made by createRelayNode', async () => {
    const message = await simulate({ seed: 14 }, async (w) => {
      const r = new MessageRelay(w, w.network.addHost(), 0);
      return isRelayNode((r as unknown as { node?: unknown }).node);
    });
    expect({ shipped: real.madeByCreateRelayNode, full: sim.madeByCreateRelayNode, message }).to.deep.equal({ shipped: true, full: true, message: true });
  });

  it('a simulated relay has the parts of the shipped relay: rendezvous, echo, an exit behind BEGIN, content behind STORE and FETCH', () => {
    expect(real.shape).to.deep.equal({
      handlers: ['StreamsHandler', 'RendezvousService', 'EchoService', 'CircuitPaddingService'],
      openers: ['BEGIN', 'FETCH', 'STORE'],
      services: ['ExitService'],
    });
    expect(sim.shape).to.deep.equal(real.shape);
  });

  it('a simulated relay stops advertising a full store, as the shipped relay does (specs/content.md §7.3)', () => {
    const caps = (o: Observed): { before: boolean; whenFull: boolean } => ({
      before: o.capsBefore.includes('store'),
      whenFull: o.capsWhenFull.includes('store'),
    });
    expect(caps(real)).to.deep.equal({ before: true, whenFull: false });
    expect(caps(sim)).to.deep.equal(caps(real));
  });
});
