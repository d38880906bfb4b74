// Debian's chromium (CHROMIUM_BIN for another), headless on loopback for
// the browser tests, driven with playwright-core over the DevTools
// protocol: a process of the lab, stopped by its PID.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

const START_TIMEOUT_MS = 30_000;

/** Starts chromium as a process of lab and connects to it. */
export async function startChromium(lab) {
  const bin = process.env.CHROMIUM_BIN || 'chromium';
  const args = [
    '--headless', '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0',
    `--user-data-dir=${join(lab.dir, 'chromium')}`,
    '--no-first-run', '--no-default-browser-check', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-default-apps', '--disable-extensions',
    '--disable-gpu', '--password-store=basic', 'about:blank',
  ];
  // Chromium's sandbox cannot run as root (CI runs as root).
  if (process.getuid?.() === 0) args.unshift('--no-sandbox');
  const proc = lab.track('chromium', spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let line;
  try {
    line = await proc.waitForLine(/DevTools listening on ws:\/\//, START_TIMEOUT_MS);
  } catch (err) {
    throw new Error(`cannot start ${bin} (install Debian's chromium, or set CHROMIUM_BIN): ${err.message}`);
  }
  return chromium.connectOverCDP(line.match(/ws:\/\/\S+/)[0], { timeout: START_TIMEOUT_MS });
}
