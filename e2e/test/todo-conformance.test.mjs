// The MCP conformance suite run against a todo tenant: the gateway's own
// MCP server, not a proxied one. The suite's requirement sets
// (conformance-next, --requirements 2025-11-25 and 2026-07-28) list
// exactly the server scenarios each protocol revision requires. Every
// check of every scenario must pass but those listed, scenario by
// scenario and each scenario with why, in
// conformance/todo-expected-failures.json: the scenarios that call the
// suite's diagnostic tools, prompts and resources, which the todo server
// does not have, and the tasks extension it does not implement. A check
// that fails and is not listed fails the build, and so does a listed one
// that passes (the entry is stale).
//
// The suite does no OAuth: a loopback proxy (BearerProxy) adds a token
// with every todo scope to each request. In chain mode the tenant is an
// upstream tenant in front of an inner gateway, and the same list holds
// through two gateways.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { BearerProxy, CLI_NEXT, CONFORMANCE_NEXT_VERSION, runServerSuite } from '../lib/conformance.mjs';
import { scenario } from '../lib/scenario.mjs';

const EXPECTED = JSON.parse(readFileSync(new URL('../conformance/todo-expected-failures.json', import.meta.url), 'utf8')).requirements;

scenario(`conformance ${CONFORMANCE_NEXT_VERSION} requirement sets against a todo tenant: every check passes but the expected failures, each with why`, async (lab, t) => {
  const proxy = new BearerProxy(lab.base, undefined);
  const proxyUrl = await proxy.listen();
  try {
    const resource = `${proxyUrl}/acme`;
    const idp = await lab.startIdp({ shape: 'logto', resources: [resource] });
    await lab.startGateway([{ ...lab.logtoTenant('acme', idp), resource }]);
    proxy.token = (await idp.clientCredentials(resource, 'create:todos read:todos delete:todos')).access_token;

    for (const revision of ['2025-11-25', '2026-07-28']) {
      const expected = EXPECTED[revision];
      assert.ok(expected, `conformance/todo-expected-failures.json lists revision ${revision}`);
      for (const [s, e] of Object.entries(expected)) {
        assert.ok(typeof e.why === 'string' && e.why.length > 20 && e.failing?.length > 0, `${revision} ${s}: an expected failure says why, and which checks`);
      }
      const { results, ms } = await runServerSuite(lab, resource, { name: revision, cli: CLI_NEXT, select: ['--requirements', revision], timeoutMs: 120_000 });
      const scenarios = Object.keys(results).sort();
      const failing = (s) => {
        const ids = results[s].checks.filter((c) => c.status === 'FAILURE').map((c) => c.id);
        return [...new Set(results[s].passed || ids.length ? ids : ['(no checks)'])].sort();
      };
      const passed = scenarios.filter((s) => results[s].passed);
      t.diagnostic(`${revision}: ${scenarios.length} scenarios in ${ms} ms; ${passed.length} pass whole: ${passed.join(', ')}`);

      assert.ok(scenarios.length >= 30, `${revision}: the requirement set ran (${scenarios.join(', ')})`);
      assert.ok(passed.includes('tools-list') && passed.includes('dns-rebinding-protection'), `${revision}: ${passed.join(', ')}`);
      for (const s of Object.keys(expected)) assert.ok(s in results, `${revision}: expected failure ${s} is a scenario of the set`);
      const got = Object.fromEntries(scenarios.filter((s) => !results[s].passed).map((s) => [s, failing(s)]));
      const want = Object.fromEntries(Object.entries(expected).map(([s, e]) => [s, [...e.failing].sort()]));
      const detail = Object.keys(got).filter((s) => JSON.stringify(got[s]) !== JSON.stringify(want[s]))
        .map((s) => `${s}: ${results[s].failures.join('; ')}`).join('\n');
      assert.deepEqual(got, want, `${revision}: the failing checks (actual) and conformance/todo-expected-failures.json (expected)\n${detail}`);
    }
    const refused = proxy.exchanges.filter((e) => e.status === 401 || e.status === 403);
    assert.deepEqual(refused.map((e) => `#${e.n} ${e.method} ${e.status} ${e.resBody}`), [], 'no 401 or 403 from the gateway');
  } catch (err) {
    process.stderr.write(`\n===== requests through the bearer proxy (the last 50) =====\n${proxy.report().split('\n#').slice(-50).join('\n#')}\n`);
    throw err;
  } finally {
    await proxy.close();
  }
}, { timeout: 240_000 });
