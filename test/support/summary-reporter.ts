import { writeFileSync } from 'fs';
import * as path from 'path';
import Mocha from 'mocha';

/**
 * The spec reporter, plus a closing `N passed, N failed` line that CI reads, and the
 * same counts in out/test-summary.json for .ci/run's final tally.
 */
class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const stats = runner.stats ?? { passes: 0, failures: 0, pending: 0 };
      const skipped = stats.pending > 0 ? `, ${stats.pending} skipped` : '';
      process.stdout.write(`${stats.passes} passed, ${stats.failures} failed${skipped}\n`);
      writeFileSync(path.resolve(__dirname, '..', '..', 'test-summary.json'), JSON.stringify({ passes: stats.passes, failures: stats.failures, pending: stats.pending }));
    });
  }
}

export = SummaryReporter;
