// node:test glue: every scenario gets its own Lab (processes, ports,
// temporary directory), prints every process's log when it fails, and stops
// everything it started whatever happens.
import { test } from 'node:test';

import { Lab } from './harness.mjs';

/**
 * A test that gets its own Lab, prints every process's log if it fails, and
 * stops every process it started whatever happens.
 */
export function scenario(name, fn, { timeout = 60_000, ...opts } = {}) {
  return test(name, { timeout, ...opts }, async (t) => {
    const lab = await Lab.create(name);
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
  });
}
