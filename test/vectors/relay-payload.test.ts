/** specs/vectors/relay-payload.json against protocol/relay-cell.ts. */
import { expect } from 'chai';
import { toHex } from '../../protocol/bytes.js';
import { RELAY_DATA_LEN, RELAY_PAYLOAD_LEN } from '../../protocol/constants.js';
import { decodeRelayPayload, encodeRelayPayload, RelayCommand } from '../../protocol/relay-cell.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { expectCode, hex, readVectors } from '../helpers/vectors.js';

type Name = keyof typeof RelayCommand;
interface PayloadVectors {
  payloadLength: number;
  maxDataLength: number;
  valid: { name: string; command: Name; commandCode: number; streamId: number; data: string; hex: string }[];
  invalid: { name: string; hex: string; error: string }[];
  encodeInvalid: { name: string; command: Name; commandCode: number; streamId: number; dataLength: number; error: string }[];
}

const V = readVectors<PayloadVectors>('relay-payload.json');

describeEachBinding('vectors: relay-payload.json', () => {
  it('has the sizes of protocol/constants.ts', () => {
    expect(V.payloadLength).to.equal(RELAY_PAYLOAD_LEN);
    expect(V.maxDataLength).to.equal(RELAY_DATA_LEN);
  });

  for (const v of V.valid) {
    it(`valid: ${v.name}`, () => {
      expect(RelayCommand[v.command]).to.equal(v.commandCode);
      const bytes = encodeRelayPayload({ command: RelayCommand[v.command], streamId: v.streamId, data: hex(v.data) });
      expect(toHex(bytes)).to.equal(v.hex);
      const m = decodeRelayPayload(hex(v.hex));
      expect(m.command).to.equal(v.commandCode);
      expect(m.streamId).to.equal(v.streamId);
      expect(toHex(m.data)).to.equal(v.data);
    });
  }

  for (const v of V.invalid) {
    it(`invalid: ${v.name} → ${v.error}`, () => {
      expectCode(() => decodeRelayPayload(hex(v.hex)), v.error);
    });
  }

  for (const v of V.encodeInvalid) {
    it(`encode refuses: ${v.name} → ${v.error}`, () => {
      expectCode(() => encodeRelayPayload({ command: RelayCommand[v.command], streamId: v.streamId, data: new Uint8Array(v.dataLength) }), v.error);
    });
  }
});
