// node:test glue: every scenario gets its own Lab (processes, ports,
// temporary directory), prints every process's log when it fails, and stops
// everything it started whatever happens.
import { test } from 'node:test';

import { chainMode, chainProblems } from './chain.mjs';
import { Lab } from './harness.mjs';

/**
 * A test that gets its own Lab, prints every process's log if it fails, and
 * stops every process it started whatever happens.
 *
 * With E2E_CHAIN=1 the Lab serves every todo tenant through two gateways
 * (lib/chain.mjs) and the test's name says "[chain]". chain: false (or a
 * string, the reason) skips a scenario that cannot run that way, printing
 * why.
 */
export function scenario(name, fn, { timeout = 60_000, chain = true, ...opts } = {}) {
  const chained = chainMode();
  if (chained && chain !== true) {
    const reason = `not run through two gateways (E2E_CHAIN=1): ${typeof chain === 'string' ? chain : 'the scenario opts out'}`;
    // The runner prints the reason with the skip; stderr says it at once too.
    process.stderr.write(`scenario "${name}" skipped: ${reason}\n`);
    return test(`${name} [chain]`, { ...opts, skip: reason }, () => {});
  }
  return test(chained ? `${name} [chain]` : name, { timeout, ...opts }, async (t) => {
    const lab = await Lab.create(name, { chain: chained });
    let failed = false;
    let finished = false;
    // A scenario that times out never reaches catch or finally: report and
    // stop its processes when the runner gives up on it.
    t.signal.addEventListener('abort', () => {
      if (finished) return;
      process.stderr.write(`scenario "${name}" timed out or was cancelled\n${lab.report()}`);
      lab.close({ keepDir: !!process.env.E2E_KEEP });
    });
    try {
      await fn(lab, t);
    } catch (err) {
      failed = true;
      process.stderr.write(lab.report());
      throw err;
    } finally {
      finished = true;
      if (!failed && process.env.E2E_LOGS) process.stderr.write(lab.report());
      await lab.close({ keepDir: failed && !!process.env.E2E_KEEP });
    }
    // Chained: every call the outer gateway let through reached the inner
    // one (read once both have stopped and flushed their logs).
    const problems = chained ? chainProblems(lab) : [];
    if (problems.length) {
      process.stderr.write(lab.report());
      throw new Error(`not every call went through both gateways:\n  ${problems.join('\n  ')}`);
    }
  });
}
