// node:test glue: every scenario gets its own Lab (processes, ports,
// temporary directory), prints every process's log when it fails, and stops
// everything it started whatever happens.
import { test } from 'node:test';

import { Lab } from './harness.mjs';

/**
 * A test that gets its own Lab, prints every process's log if it fails, and
 * stops every process it started whatever happens.
 */
export function scenario(name, fn, { timeout = 90_000, ...opts } = {}) {
  return test(name, { timeout, ...opts }, async (t) => {
    const lab = await Lab.create(name);
    let failed = false;
    try {
      await fn(lab, t);
    } catch (err) {
      failed = true;
      process.stderr.write(lab.report());
      throw err;
    } finally {
      if (!failed && process.env.E2E_LOGS) process.stderr.write(lab.report());
      await lab.close({ keepDir: failed && !!process.env.E2E_KEEP });
    }
  });
}
