// A tenant's rate_limit counts tool calls: with one call a second, real
// clients still connect (their handshake, notifications and listings cost
// no call) and get one tool call a second. Issue 24: at 1/s the Go SDK and
// Inspector failed to connect while every HTTP request counted.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { credentials } from '../lib/accounts.mjs';
import { connectAs } from '../lib/client.mjs';
import { inspectorLauncher } from '../lib/inspector.mjs';
import { scenario } from '../lib/scenario.mjs';

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

scenario('rate_limit of 1 call/s: the TypeScript SDK and Inspector connect, and get one tool call a second', async (lab) => {
  const resource = lab.resource('acme');
  const idp = await lab.startIdp({ shape: 'logto', resources: [resource] });
  await lab.startGateway([{ ...lab.logtoTenant('acme', idp), rate_limit: { requests_per_second: 1 } }]);

  // The whole OAuth flow, the handshake and a listing.
  const admin = await connectAs(resource, credentials('admin'));
  try {
    const tools = await admin.client.listTools();
    assert.ok(tools.tools.some((t) => t.name === 'get-todos'));
    for (let i = 0; i < 3; i++) {
      if (i > 0) await sleep(1100);
      assert.deepEqual((await admin.json('get-todos')).todos, [], `call ${i}, a second after the last`);
    }
    // A second call within the same second is over the limit.
    await assert.rejects(admin.call('get-todos'), (err) => {
      assert.ok(err instanceof StreamableHTTPError || /429|rate_limited/.test(String(err)), `${err}`);
      assert.match(String(err.message ?? err), /rate_limited|Too Many Requests|429/);
      return true;
    });

    // Inspector's CLI connects afresh with the same token (initialize,
    // notifications/initialized, then the call): a second later, it gets its call.
    await sleep(1100);
    const run = promisify(execFile);
    const { stdout } = await run(process.execPath, [inspectorLauncher(), '--cli', resource, '--transport', 'http',
      '--header', `Authorization: Bearer ${admin.auth.accessToken}`, '--method', 'tools/call', '--tool-name', 'get-todos'],
    { timeout: 30_000 });
    assert.match(stdout, /"todos"/, stdout);
  } finally {
    await admin.close();
  }
});
