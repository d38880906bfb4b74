// The provider stopped: requests that need it answer 503 (with
// Retry-After), never 401, so clients keep their tokens; started again,
// service resumes by itself.
import assert from 'node:assert/strict';

import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { credentials } from '../lib/accounts.mjs';
import { connectAs } from '../lib/client.mjs';
import { eventually, rpc, sleep, toolCall, toolResult } from '../lib/harness.mjs';
import { scenario } from '../lib/scenario.mjs';

function assertUnavailable(r) {
  assert.equal(r.status, 503, `${r.status} ${r.www} ${r.text}`);
  assert.ok(Number(r.headers.get('retry-after')) > 0, 'Retry-After');
  assert.doesNotMatch(r.www, /invalid_token/, 'not a token problem');
  assert.equal(r.json?.error, 'temporarily_unavailable');
}

scenario('JWT tenants: provider stopped → 503 where keys are needed, started again → resumes', async (lab) => {
  const warm = lab.resource('acme');
  const sharing = lab.resource('umbrella');
  const cold = lab.resource('globex');
  let idp = await lab.startIdp({ shape: 'logto', resources: [warm, sharing, cold] });
  // umbrella fetches from the issuer exactly as acme does, so the two share
  // its discovery document and key set; globex's other jwks_min_refresh
  // makes it fetch on its own.
  await lab.startGateway([
    lab.logtoTenant('acme', idp), lab.logtoTenant('umbrella', idp),
    lab.logtoTenant('globex', idp, { jwks_min_refresh: '11s' }),
  ]);

  // acme has verified a token (the issuer's keys are held); globex never has.
  const warmToken = (await idp.clientCredentials(warm, 'create:todos read:todos')).access_token;
  const sharingToken = (await idp.clientCredentials(sharing, 'create:todos read:todos')).access_token;
  const coldToken = (await idp.clientCredentials(cold, 'create:todos read:todos')).access_token;
  toolResult(await rpc(warm, warmToken, toolCall('create-todo', { content: 'warm' })));

  await idp.stop();
  // globex cannot discover the provider nor fetch its keys: 503, not 401.
  assertUnavailable(await rpc(cold, coldToken, toolCall('get-todos')));
  // acme keeps serving with the keys it holds, and so does umbrella, which
  // never fetched them itself: keys are held per issuer, not per tenant.
  assert.equal(toolResult(await rpc(warm, warmToken, toolCall('get-todos'))).todos.length, 1);
  assert.deepEqual(toolResult(await rpc(sharing, sharingToken, toolCall('get-todos'))).todos, []);
  // Sharing keys shares no trust: acme's token is still refused at umbrella.
  assert.equal((await rpc(sharing, warmToken, toolCall('get-todos'))).status, 401);

  idp = await idp.restart();
  // The same token now works, with no gateway restart (the gateway may be
  // waiting out its retry backoff for a few seconds).
  const ok = await eventually('globex serves again', async () => {
    const r = await rpc(cold, coldToken, toolCall('get-todos'));
    assert.notEqual(r.status, 401, `a 401 while recovering: ${r.www}`);
    return r.status === 200 ? r : undefined;
  }, { timeoutMs: 20_000, intervalMs: 250 });
  assert.deepEqual(toolResult(ok).todos, []);
  // And a person can sign in and use it.
  const user = await connectAs(cold, credentials('user'));
  try {
    assert.equal((await user.json('create-todo', { content: 'after the outage' })).ownerId, 'user');
  } finally {
    await user.close();
  }
});

scenario('introspection tenant: provider stopped → 503, started again → the same token works', async (lab) => {
  const resource = lab.resource('initech');
  let idp = await lab.startIdp({ shape: 'oauth', resources: [resource] });
  await lab.startGateway([lab.oauthTenant('initech', idp, { cache_ttl: '1s' })]);

  const user = await connectAs(resource, credentials('user'));
  try {
    const token = user.auth.accessToken;
    const todo = await user.json('create-todo', { content: 'before the outage' });

    await idp.stop();
    await sleep(1100); // past the introspection cache entry
    assertUnavailable(await rpc(resource, token, toolCall('get-todos')));
    // The SDK client sees a 503 and does not throw its token away.
    await assert.rejects(user.call('get-todos'), (err) => {
      assert.ok(err instanceof StreamableHTTPError, `${err}`);
      assert.equal(err.code, 503);
      return true;
    });
    assert.equal(user.auth.stats.authorizations, 1, 'no re-authorization during the outage');

    idp = await idp.restart(); // same port, same stored tokens
    const ok = await eventually('initech serves again', async () => {
      const r = await rpc(resource, token, toolCall('get-todos'));
      assert.notEqual(r.status, 401, `a 401 while recovering: ${r.www}`);
      return r.status === 200 ? r : undefined;
    }, { timeoutMs: 20_000, intervalMs: 250 });
    assert.deepEqual(toolResult(ok).todos.map((t) => t.id), [todo.id]);
    assert.deepEqual((await user.json('get-todos')).todos.map((t) => t.id), [todo.id]);
    assert.equal(user.auth.stats.authorizations, 1, 'the same token throughout');
  } finally {
    await user.close();
  }
});

scenario('provider unreachable when a token is signed with a key the gateway has not fetched: 503, then resumes', async (lab) => {
  const resource = lab.resource('acme');
  let idp = await lab.startIdp({ shape: 'logto', resources: [resource] });
  await lab.startGateway([lab.logtoTenant('acme', idp, { jwks_min_refresh: '1s' })]);
  const first = (await idp.clientCredentials(resource, 'read:todos')).access_token;
  toolResult(await rpc(resource, first, toolCall('get-todos'))); // the gateway holds the first key

  // The provider rotates its key and issues a token with it, then becomes
  // unreachable before the gateway could fetch the new key.
  await idp.stop();
  idp = await idp.restart({ rotateKeys: true });
  const rotated = (await idp.clientCredentials(resource, 'read:todos')).access_token;
  await idp.stop();
  await sleep(1100); // past jwks_min_refresh: the gateway tries to fetch and cannot
  // The gateway cannot tell whether the token is good: 503, not 401.
  assertUnavailable(await rpc(resource, rotated, toolCall('get-todos')));

  idp = await idp.restart();
  const ok = await eventually('acme verifies the new key', async () => {
    const r = await rpc(resource, rotated, toolCall('get-todos'));
    assert.notEqual(r.status, 401, `a 401 while recovering: ${r.www}`);
    return r.status === 200 ? r : undefined;
  }, { timeoutMs: 20_000, intervalMs: 250 });
  assert.deepEqual(toolResult(ok).todos, []);
});
