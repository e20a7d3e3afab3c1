/**
 * Introduction points and rendezvous points (specs/rendezvous.md §3), as Tor's onion services use them.
 *
 * - An endpoint registers an introduction circuit under an intro auth key (ESTABLISH_INTRO, signed over the hop's
 *   binding so it cannot be replayed elsewhere). INTRODUCE1 naming that key is passed to the endpoint as
 *   INTRODUCE2; the relay cannot read it.
 * - An initiator registers a one-time cookie at a rendezvous point (ESTABLISH_RENDEZVOUS). The endpoint's
 *   RENDEZVOUS1 with that cookie is passed on as RENDEZVOUS2, and the two circuits are spliced: each side's cells
 *   for the other pass through, end-to-end encrypted under keys the relay does not have.
 * Neither relay learns both ends: the introduction point sees the endpoint's circuit and an initiator's circuit,
 * the rendezvous point sees two circuits; none sees an address or an IP of either party beyond its own first hop.
 */
import { crypto } from '../crypto/index.js';
import { toHex } from '../protocol/bytes.js';
import { AlliumError } from '../protocol/errors.js';
import { RelayCommand, type RelayMessage } from '../protocol/relay-cell.js';
import { decodeRv, encodeRv, introSignedMessage } from '../protocol/rendezvous-messages.js';
import type { CircuitEndpointHandler, CircuitHop, CircuitReactor } from './circuits.js';
import type { RelayMetrics } from './metrics.js';

export const MAX_INTRO_POINTS = 10_000;
export const MAX_PENDING_RENDEZVOUS = 10_000;
export const RENDEZVOUS_COOKIE_LIFETIME_MS = 120_000;

const COMMANDS = new Set<number>([RelayCommand.ESTABLISH_INTRO, RelayCommand.INTRODUCE1, RelayCommand.ESTABLISH_RENDEZVOUS, RelayCommand.RENDEZVOUS1]);

export class RendezvousService implements CircuitEndpointHandler {
  private readonly intros = new Map<string, CircuitHop>();
  private readonly cookies = new Map<string, { hop: CircuitHop; expires: number }>();

  constructor(
    private readonly reactor: CircuitReactor,
    private readonly metrics: RelayMetrics,
    private readonly now: () => number = Date.now,
  ) {}

  get introCount(): number {
    return this.intros.size;
  }

  deliver(hop: CircuitHop, msg: RelayMessage): boolean {
    if (!COMMANDS.has(msg.command)) return false;
    if (!hop.isLast || msg.streamId !== 0) throw new AlliumError('ERR_STREAM', 'rendezvous messages go to the last hop on stream 0');
    switch (msg.command) {
      case RelayCommand.ESTABLISH_INTRO:
        return this.establishIntro(hop, msg.data);
      case RelayCommand.INTRODUCE1:
        return this.introduce(hop, msg.data);
      case RelayCommand.ESTABLISH_RENDEZVOUS:
        return this.establishRendezvous(hop, msg.data);
      case RelayCommand.RENDEZVOUS1:
        return this.rendezvous(hop, msg.data);
    }
    return false;
  }

  private reply(hop: CircuitHop, command: RelayCommand, data: Uint8Array): void {
    this.reactor.sendBackward(hop, { command, streamId: 0, data });
  }

  private establishIntro(hop: CircuitHop, data: Uint8Array): boolean {
    const m = decodeRv('establishIntro', data);
    if (!hop.binding || !crypto().verify(m.s, introSignedMessage(hop.binding), m.k)) {
      throw new AlliumError('ERR_SIGNATURE', 'ESTABLISH_INTRO signature does not verify for this circuit');
    }
    const key = toHex(m.k);
    if (!this.intros.has(key) && this.intros.size >= MAX_INTRO_POINTS) {
      this.metrics.drops.inc({ reason: 'intro_limit' });
      throw new AlliumError('ERR_LIMIT', 'too many introduction points');
    }
    const old = this.intros.get(key);
    if (old && old !== hop) old.attachments.delete('intro-key');
    this.intros.set(key, hop);
    hop.attachments.set('intro-key', key);
    this.reply(hop, RelayCommand.INTRO_ESTABLISHED, encodeRv('empty', {}));
    return true;
  }

  private introduce(hop: CircuitHop, data: Uint8Array): boolean {
    const m = decodeRv('introduce1', data);
    const target = this.intros.get(toHex(m.k));
    if (!target || target.state !== 'open') {
      this.metrics.drops.inc({ reason: 'introduce_unknown' });
      this.reply(hop, RelayCommand.INTRODUCE_ACK, encodeRv('introduceAck', { s: 'unknown' }));
      return true;
    }
    this.reactor.sendBackward(target, { command: RelayCommand.INTRODUCE2, streamId: 0, data: encodeRv('introduce2', { p: m.p }) });
    this.reply(hop, RelayCommand.INTRODUCE_ACK, encodeRv('introduceAck', { s: 'ok' }));
    return true;
  }

  private prune(): void {
    const now = this.now();
    for (const [k, v] of this.cookies) if (v.expires <= now || v.hop.state === 'closed') this.cookies.delete(k);
  }

  private establishRendezvous(hop: CircuitHop, data: Uint8Array): boolean {
    const m = decodeRv('establishRendezvous', data);
    this.prune();
    const key = toHex(m.c);
    if (this.cookies.has(key)) throw new AlliumError('ERR_STREAM', 'rendezvous cookie in use');
    if (this.cookies.size >= MAX_PENDING_RENDEZVOUS) {
      this.metrics.drops.inc({ reason: 'rendezvous_limit' });
      throw new AlliumError('ERR_LIMIT', 'too many pending rendezvous');
    }
    this.cookies.set(key, { hop, expires: this.now() + RENDEZVOUS_COOKIE_LIFETIME_MS });
    hop.attachments.set('rv-cookie', key);
    this.reply(hop, RelayCommand.RENDEZVOUS_ESTABLISHED, encodeRv('empty', {}));
    return true;
  }

  private rendezvous(hop: CircuitHop, data: Uint8Array): boolean {
    const m = decodeRv('rendezvous1', data);
    this.prune();
    const key = toHex(m.c);
    const waiting = this.cookies.get(key);
    if (!waiting || waiting.hop === hop) {
      this.metrics.drops.inc({ reason: 'rendezvous_unknown_cookie' });
      throw new AlliumError('ERR_NOT_FOUND', 'no circuit waits with this cookie');
    }
    this.cookies.delete(key);
    waiting.hop.attachments.delete('rv-cookie');
    this.reactor.sendBackward(waiting.hop, { command: RelayCommand.RENDEZVOUS2, streamId: 0, data: encodeRv('rendezvous2', { h: m.h }) });
    this.reactor.splice(waiting.hop, hop);
    return true;
  }

  closed(hop: CircuitHop): void {
    const intro = hop.attachments.get('intro-key') as string | undefined;
    if (intro && this.intros.get(intro) === hop) this.intros.delete(intro);
    const cookie = hop.attachments.get('rv-cookie') as string | undefined;
    if (cookie) this.cookies.delete(cookie);
  }
}
