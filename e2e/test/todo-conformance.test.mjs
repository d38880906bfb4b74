// The MCP conformance suite's server scenarios (lib/conformance.mjs) run
// against a todo tenant: the gateway's own MCP server, not a proxied one.
// Every scenario passes but those listed in
// conformance/todo-expected-failures.json, each with why: the scenarios
// that call the suite's diagnostic tools, prompts and resources (its
// "everything" server's test_simple_text, test://static-text, …), which the
// todo server does not have. A scenario that fails and is not listed fails
// the build, and so does a listed one that passes (the entry is stale).
//
// The suite does no OAuth: a loopback proxy (BearerProxy) adds a token
// with every todo scope to each request. In chain mode the tenant is an
// upstream tenant in front of an inner gateway, so the same list holds
// through two gateways.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { BearerProxy, CONFORMANCE_VERSION, passing, runServerSuite, serverScenarios } from '../lib/conformance.mjs';
import { scenario } from '../lib/scenario.mjs';

const EXPECTED = JSON.parse(readFileSync(new URL('../conformance/todo-expected-failures.json', import.meta.url), 'utf8'));

scenario(`conformance ${CONFORMANCE_VERSION} against a todo tenant: every scenario passes but the expected failures, each with why`, async (lab, t) => {
  for (const [s, why] of Object.entries(EXPECTED.scenarios)) {
    assert.ok(typeof why === 'string' && why.length > 20, `expected failure ${s} says why it is expected`);
  }
  const proxy = new BearerProxy(lab.base, undefined);
  const proxyUrl = await proxy.listen();
  try {
    const resource = `${proxyUrl}/acme`;
    const idp = await lab.startIdp({ shape: 'logto', resources: [resource] });
    await lab.startGateway([{ ...lab.logtoTenant('acme', idp), resource }]);
    proxy.token = (await idp.clientCredentials(resource, 'create:todos read:todos delete:todos')).access_token;

    const scenarios = await serverScenarios(lab);
    for (const s of Object.keys(EXPECTED.scenarios)) assert.ok(scenarios.includes(s), `expected failure ${s} is a scenario of the suite`);
    const { results, ms } = await runServerSuite(lab, resource, { name: 'todo tenant', scenarios });
    const passed = passing(results);
    const failed = scenarios.filter((s) => !results[s].passed).sort();
    t.diagnostic(`${scenarios.length} scenarios in ${ms} ms; ${passed.length} pass: ${passed.join(', ')}`);
    for (const s of failed) t.diagnostic(`${s} fails: ${results[s].failures.join('; ')}`);

    const unexpected = failed.filter((s) => !(s in EXPECTED.scenarios));
    assert.deepEqual(unexpected, [], `scenarios that fail and are not expected to:\n${unexpected.map((s) => `${s}: ${results[s].failures.join('; ')}`).join('\n')}`);
    const stale = Object.keys(EXPECTED.scenarios).filter((s) => results[s]?.passed);
    assert.deepEqual(stale, [], 'expected failures that now pass: remove them from conformance/todo-expected-failures.json');
    assert.ok(passed.includes('server-initialize') && passed.includes('tools-list'), `the suite ran for real: ${passed.join(', ')}`);
    const refused = proxy.exchanges.filter((e) => e.status === 401 || e.status === 403);
    assert.deepEqual(refused.map((e) => `#${e.n} ${e.method} ${e.status} ${e.resBody}`), [], 'no 401 or 403 from the gateway');
  } catch (err) {
    process.stderr.write(`\n===== requests through the bearer proxy =====\n${proxy.report()}\n`);
    throw err;
  } finally {
    await proxy.close();
  }
}, { timeout: 90_000 });
