/**
 * Mocha's spec reporter, plus one plain closing line that every runner can read:
 *
 *     N passed, N failed, N skipped
 *
 * "skipped" counts pending tests: skipped ones (a missing program: test/helpers/programs.ts) and any left pending.
 * .ci/run prints this line as its result.
 */
'use strict';
const Mocha = require('mocha');

class AlliumReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const s = this.stats;
      process.stdout.write(`${s.passes} passed, ${s.failures} failed, ${s.pending} skipped\n`);
    });
  }
}

module.exports = AlliumReporter;
