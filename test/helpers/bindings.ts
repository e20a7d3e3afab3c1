/**
 * Runs a block of tests once per libsodium binding. Where sodium-native is not installed its block shows as
 * pending (visible in the report) instead of silently passing. The facade's binding is restored afterwards.
 */
import { crypto, loadCrypto, useCrypto, type Crypto } from '../../crypto/index.js';

export const BINDINGS = ['native', 'wasm'] as const;
export type BindingKind = (typeof BINDINGS)[number];

export function describeEachBinding(title: string, body: (binding: BindingKind) => void): void {
  for (const which of BINDINGS) {
    describe(`${title} [${which}]`, function () {
      let previous: Crypto | null = null;
      before(async function () {
        const c = await loadCrypto(which);
        if (!c) this.skip(); // every test below is reported pending
        previous = crypto();
        useCrypto(c);
      });
      after(function () {
        if (previous) useCrypto(previous);
      });
      body(which);
    });
  }
}
