// The plain OAuth provider issues opaque tokens; the gateway verifies them
// through RFC 7662 introspection with its own client. A revoked token is
// refused once the gateway's cache entry (cache_ttl) has expired.
import assert from 'node:assert/strict';

import { credentials } from '../lib/accounts.mjs';
import { connectAs } from '../lib/client.mjs';
import { eventually, rpc, toolCall, toolResult } from '../lib/harness.mjs';
import { scenario } from '../lib/scenario.mjs';

const CACHE_TTL_MS = 1000;

scenario('opaque tokens through introspection; a revoked token is refused once the cache entry expires', async (lab) => {
  const resource = lab.resource('initech');
  const idp = await lab.startIdp({ shape: 'oauth', resources: [resource] });
  await lab.startGateway([lab.oauthTenant('initech', idp, { cache_ttl: `${CACHE_TTL_MS}ms` })]);

  // The SDK discovers the root issuer through RFC 8414 and runs the same flow.
  const user = await connectAs(resource, credentials('user'));
  const admin = await connectAs(resource, credentials('admin'));
  try {
    const token = user.auth.accessToken;
    assert.equal(token.split('.').length, 1, 'an opaque token, not a JWT');
    const intro = await idp.introspect(token);
    assert.equal(intro.active, true);
    assert.equal(intro.sub, 'user');
    assert.equal(intro.aud, resource);
    assert.equal(intro.scope, 'create:todos');

    // The tutorial's rules hold on this tenant too.
    const adminTodo = await admin.json('create-todo', { content: "Admin's" });
    const userTodo = await user.json('create-todo', { content: "User's" });
    assert.equal(userTodo.ownerId, 'user');
    assert.deepEqual((await user.json('get-todos')).todos.map((t) => t.id), [userTodo.id]);
    await assert.rejects(user.json('delete-todo', { id: adminTodo.id }), /Failed to delete todo/);
    assert.equal((await admin.json('get-todos')).todos.length, 2);

    // Revoke the user's token at the provider, as the client it was issued to.
    const revokedAt = Date.now();
    await idp.revoke(token, user.auth.clientInformation().client_id);
    assert.equal((await idp.introspect(token)).active, false, 'the provider says inactive');

    // The gateway may serve its cached answer until cache_ttl, then refuses.
    const refused = await eventually('revoked token refused', async () => {
      const r = await rpc(resource, token, toolCall('get-todos'));
      return r.status === 401 ? r : undefined;
    }, { timeoutMs: CACHE_TTL_MS + 5000, intervalMs: 100 });
    const waited = Date.now() - revokedAt;
    assert.match(refused.www, /error="invalid_token"/);
    assert.match(refused.www, /resource_metadata="/);
    assert.ok(waited < CACHE_TTL_MS + 3000, `refused after ${waited}ms, cache_ttl ${CACHE_TTL_MS}ms`);

    // The admin's token is untouched.
    assert.equal(toolResult(await rpc(resource, admin.auth.accessToken, toolCall('get-todos'))).todos.length, 2);

    // The SDK client of the revoked user gets a 401, signs in again by itself
    // and carries on with a new token.
    const after = await user.json('get-todos');
    assert.deepEqual(after.todos.map((t) => t.id), [userTodo.id]);
    assert.notEqual(user.auth.accessToken, token, 'a new token');
    assert.equal(user.auth.stats.authorizations, 2);
  } finally {
    await user.close();
    await admin.close();
  }
});
