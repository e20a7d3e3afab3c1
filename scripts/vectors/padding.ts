/**
 * specs/vectors/padding.json: PADDING_NEGOTIATE and PADDING_NEGOTIATED (specs/padding.md §3), and one run of the
 * STREAM_SETUP machine's relay half with a fixed sequence of uniform draws (padding.md §2, §4): the actions it
 * returns for a fixed sequence of events.
 */
import { fromHex, toHex } from '../../protocol/bytes.js';
import {
  decodePaddingNegotiate,
  decodePaddingNegotiated,
  encodePaddingNegotiate,
  encodePaddingNegotiated,
  PaddingCommand,
  PaddingMachineId,
  PaddingRuntime,
  PaddingStatus,
  paddingMachine,
  type PaddingAction,
} from '../../protocol/circuit-padding.js';
import { check, errorCodeOf, expectCode, VECTORS_VERSION, type VectorFile } from './common.js';

/** A uniform source cycling through fixed values (the vector's `draws`). */
export function fixedDraws(draws: readonly number[]): () => number {
  let i = 0;
  return () => draws[i++ % draws.length]!;
}

const show = (a: PaddingAction): string => (a.kind === 'schedule' ? `schedule ${a.delayMs.toFixed(3)}` : a.kind);

export function paddingFile(): VectorFile {
  const negotiate = [
    { name: 'START STREAM_SETUP', command: PaddingCommand.START, machine: PaddingMachineId.STREAM_SETUP },
    { name: 'STOP', command: PaddingCommand.STOP, machine: 0 },
  ].map((v) => {
    const hex = toHex(encodePaddingNegotiate(v));
    const d = decodePaddingNegotiate(fromHex(hex));
    check(d.command === v.command && d.machine === v.machine, `PADDING_NEGOTIATE "${v.name}" round trip`);
    return { ...v, hex };
  });
  const negotiated = [
    { name: 'OK', machine: PaddingMachineId.STREAM_SETUP, status: PaddingStatus.OK },
    { name: 'REFUSED', machine: PaddingMachineId.STREAM_SETUP, status: PaddingStatus.REFUSED },
    { name: 'UNKNOWN_MACHINE', machine: 200, status: PaddingStatus.UNKNOWN_MACHINE },
  ].map((v) => {
    const hex = toHex(encodePaddingNegotiated(v));
    const d = decodePaddingNegotiated(fromHex(hex));
    check(d.machine === v.machine && d.status === v.status, `PADDING_NEGOTIATED "${v.name}" round trip`);
    return { ...v, hex };
  });
  const invalid = (
    [
      ['NEGOTIATE', 'version 2', '020101', 'ERR_SCHEMA'],
      ['NEGOTIATE', 'command 3', '010301', 'ERR_SCHEMA'],
      ['NEGOTIATE', 'STOP naming a machine', '010201', 'ERR_SCHEMA'],
      ['NEGOTIATE', 'START naming machine 0', '010100', 'ERR_SCHEMA'],
      ['NEGOTIATE', 'two bytes', '0101', 'ERR_BAD_LENGTH'],
      ['NEGOTIATE', 'four bytes', '01010100', 'ERR_BAD_LENGTH'],
      ['NEGOTIATED', 'status 4', '010104', 'ERR_SCHEMA'],
      ['NEGOTIATED', 'version 0', '000100', 'ERR_SCHEMA'],
      ['NEGOTIATED', 'empty', '', 'ERR_BAD_LENGTH'],
    ] as const
  ).map(([message, name, hex, code]) => ({
    message,
    name,
    hex,
    code: expectCode(
      errorCodeOf(() => (message === 'NEGOTIATE' ? decodePaddingNegotiate(fromHex(hex)) : decodePaddingNegotiated(fromHex(hex))), name),
      code,
      `padding invalid "${name}"`,
    ),
  }));

  // One run of STREAM_SETUP's relay half: the events in order, and what the runtime answers each.
  const draws = [0.5, 0.25, 0.75, 0.1, 0.9, 0.6];
  const rt = new PaddingRuntime(paddingMachine(PaddingMachineId.STREAM_SETUP)!.relay, fixedDraws(draws));
  const events = ['start', 'nonpadding-received', 'timer', 'nonpadding-sent', 'timer', 'timer', 'timer', 'nonpadding-received'] as const;
  const run = events.map((e) => {
    const a = e === 'start' ? rt.start() : e === 'timer' ? rt.onPaddingSent() : rt.on(e);
    return { event: e, action: show(a), state: rt.stateName, padding: rt.padding };
  });
  return {
    description:
      'Circuit padding (specs/padding.md). negotiate/negotiated: fields ↔ hex. invalid: decoding `hex` as `message` throws `code`. run: PaddingRuntime(STREAM_SETUP relay half) with uniform draws cycling through `draws`; each event gives `action` (delays to 3 decimals), then `state` and `padding` sent so far.',
    version: VECTORS_VERSION,
    negotiate,
    negotiated,
    invalid,
    run: { machine: PaddingMachineId.STREAM_SETUP, half: 'relay', draws, steps: run },
  };
}
