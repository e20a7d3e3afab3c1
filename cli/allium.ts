/**
 * The `allium` command's entry. It loads nothing but cli/young-generation.ts before it has sized a relay's young
 * generation, and only then the program (cli/program.ts) and everything it imports: the modules' loading is what
 * grows the young generation first, and an ECMAScript module's static imports all load before its own code runs.
 */
import { capYoungGeneration } from './young-generation.js';

const isMain = process.argv[1] && /allium(\.ts|\.js)?$/.test(process.argv[1]);
if (isMain) {
  if (process.argv[2] === 'relay') capYoungGeneration();
  const [{ buildProgram }, { fail }] = await Promise.all([import('./program.js'), import('./errors.js')]);
  buildProgram()
    .parseAsync(process.argv)
    .catch((e: unknown) => fail(e));
}
