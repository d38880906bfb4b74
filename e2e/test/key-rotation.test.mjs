// The provider is restarted with a new signing key: the running gateway
// fetches the new JWKS when it meets the new kid, without a restart.
import assert from 'node:assert/strict';

import { credentials } from '../lib/accounts.mjs';
import { connectAs } from '../lib/client.mjs';
import { rpc, sleep, toolCall, toolResult } from '../lib/harness.mjs';
import { scenario } from '../lib/scenario.mjs';

const kidOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url')).kid;

scenario('provider restarted with new keys: picked up without a gateway restart', async (lab) => {
  const resource = lab.resource('acme');
  let idp = await lab.startIdp({ shape: 'logto', resources: [resource] });
  // An unknown kid triggers a JWKS refetch at most once per jwks_min_refresh
  // (default 10s); 1s keeps the scenario short.
  const gateway = await lab.startGateway([lab.logtoTenant('acme', idp, { jwks_min_refresh: '1s' })]);

  const first = await connectAs(resource, credentials('admin'));
  const todo = await first.json('create-todo', { content: 'before the rotation' });
  const oldKid = kidOf(first.auth.accessToken);
  assert.deepEqual(idp.kids, [oldKid]);
  await first.close();

  await idp.stop();
  idp = await idp.restart({ rotateKeys: true });
  const [newKid] = idp.kids;
  assert.notEqual(newKid, oldKid, 'the provider signs with a new key');
  const jwks = await (await fetch(`${idp.issuer}/jwks`)).json();
  assert.deepEqual(jwks.keys.map((k) => k.kid), [newKid], 'the old key is gone from the JWKS');
  await sleep(1100); // past jwks_min_refresh since the gateway's last fetch

  // A new sign-in gets a token signed with the new key, and the same
  // gateway process accepts it.
  const second = await connectAs(resource, credentials('admin'));
  try {
    assert.equal(kidOf(second.auth.accessToken), newKid);
    const todos = (await second.json('get-todos')).todos;
    assert.deepEqual(todos.map((t) => t.id), [todo.id]);
    const m2m = await idp.clientCredentials(resource, 'read:todos');
    assert.equal(kidOf(m2m.access_token), newKid);
    assert.equal(toolResult(await rpc(resource, m2m.access_token, toolCall('get-todos'))).todos.length, 1);
  } finally {
    await second.close();
  }
  assert.ok(gateway.running, 'the gateway was never restarted');
  assert.equal(gateway.lines.filter((l) => /todo-gateway listening on/.test(l)).length, 1);
});
