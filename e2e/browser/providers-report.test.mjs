// `todo-gateway providers --format html`, the report people share, rendered
// in headless Chromium (lib/chromium.mjs) at 1280 px for 3 and for 12
// tenants: nothing overflows (neither the page nor any element of it), the
// page fetches nothing (one self-contained file), and its text holds every
// verdict of --format json for the same configuration. The tenants are on
// node-oidc-provider in both its shapes (Logto-like and plain OAuth with
// introspection), with the audience strategies varied, and one on an issuer
// that is down, so that every severity shows. The screenshots are kept in
// bin/e2e/artifacts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

import { startChromium } from '../lib/chromium.mjs';
import { freePort, gatewayBinary } from '../lib/harness.mjs';
import { scenario } from '../lib/scenario.mjs';

const ARTIFACTS = join(dirname(dirname(dirname(fileURLToPath(import.meta.url)))), 'bin', 'e2e', 'artifacts');
const run = promisify(execFile);

/** Runs the providers command; it exits 1 when a tenant cannot work, which some here cannot. */
async function providers(lab, config, format) {
  try {
    const { stdout } = await run(gatewayBinary(), ['providers', '--config', config, '--format', format],
      { timeout: 60_000, maxBuffer: 16 << 20, env: { ...process.env, E2E_GATEWAY_SECRET: lab.secrets.gateway } });
    return stdout;
  } catch (err) {
    if (err.code === 1 && err.stdout) return err.stdout;
    throw err;
  }
}

scenario('providers --format html in Chromium: 3 and 12 tenants side by side, nothing overflows at 1280 px, every verdict of --format json shown', async (lab, t) => {
  const ids = Array.from({ length: 12 }, (_, i) => `tenant-${String(i + 1).padStart(2, '0')}`);
  const logto = await lab.startIdp({ name: 'logto', shape: 'logto', resources: ids.map((id) => lab.resource(id)) });
  const oauth = await lab.startIdp({ name: 'oauth', shape: 'oauth', resources: [lab.resource(ids[1])] });
  const down = `http://127.0.0.1:${await freePort()}/oidc`;
  const tenant = (id, i) => {
    switch (i % 4) {
      case 0: return lab.logtoTenant(id, logto);
      case 1: return lab.oauthTenant(id, oauth);
      case 2: return { ...lab.logtoTenant(id, logto), provider: { type: 'oidc', issuer: logto.issuer }, audience: { strategy: 'audience', values: ['todo-api'] } };
      default: return { ...lab.logtoTenant(id, logto), provider: { type: 'logto', issuer: down } };
    }
  };
  mkdirSync(ARTIFACTS, { recursive: true });
  const browser = await startChromium(lab);
  try {
    for (const n of [3, 12]) {
      const config = join(lab.dir, `providers-${n}.json`);
      writeFileSync(config, JSON.stringify({ tenants: ids.slice(0, n).map(tenant) }, null, 2));
      const doc = JSON.parse(await providers(lab, config, 'json'));
      const html = await providers(lab, config, 'html');
      const file = join(lab.dir, `providers-${n}.html`);
      writeFileSync(file, html);

      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const fetched = [];
      await context.route('**/*', (route) => {
        const url = route.request().url();
        if (!url.startsWith('file:')) fetched.push(url);
        return url.startsWith('file:') ? route.continue() : route.abort();
      });
      const page = await context.newPage();
      await page.goto(pathToFileURL(file).href);
      const shot = join(ARTIFACTS, `providers-report-${n}-tenants.png`);
      await page.screenshot({ path: shot, fullPage: true });
      t.diagnostic(`${n} tenants: ${html.length} bytes of HTML, screenshot ${shot}`);

      assert.deepEqual(fetched, [], 'the report fetches nothing');
      const overflow = await page.evaluate(() => {
        const wide = [];
        if (document.documentElement.scrollWidth > window.innerWidth) wide.push(`the page: ${document.documentElement.scrollWidth} px`);
        for (const el of document.querySelectorAll('body *')) {
          if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible') wide.push(`${el.tagName}.${el.className}: ${el.scrollWidth} > ${el.clientWidth}`);
          const r = el.getBoundingClientRect();
          if (r.right > window.innerWidth + 1) wide.push(`${el.tagName}.${el.className} ends at ${Math.round(r.right)} px`);
        }
        return wide.slice(0, 10);
      });
      assert.deepEqual(overflow, [], `${n} tenants at 1280 px: nothing wider than the window`);

      const text = (await page.evaluate(() => document.body.innerText)).replace(/\s+/g, ' ');
      const severities = new Set();
      for (const tj of doc.tenants) {
        assert.ok(text.includes(tj.tenant), `${n} tenants: ${tj.tenant} is shown`);
        for (const v of tj.verdicts) {
          severities.add(v.severity);
          assert.ok(text.includes(v.message.replace(/\s+/g, ' ')), `${n} tenants: ${tj.tenant}'s ${v.severity} verdict ${v.rule} is shown: ${v.message}`);
        }
      }
      if (n === 12) assert.deepEqual([...severities].sort(), ['error', 'info', 'warning'], 'every severity is exercised');
      await context.close();
    }
  } finally {
    await browser.close().catch(() => {});
  }
}, { timeout: 180_000, chain: 'no gateway runs: the report is made from the configuration alone' });
