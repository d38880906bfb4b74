// A user without create:todos calling create-todo: the gateway answers 403
// insufficient_scope naming the scope, and the SDK's step-up re-authorizes
// with that scope; it succeeds once the user has been given a role that
// allows it.
import assert from 'node:assert/strict';

import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { credentials } from '../lib/accounts.mjs';
import { HeadlessOAuthProvider, TodoClient, connectAs } from '../lib/client.mjs';
import { rpc, toolCall, toolResult } from '../lib/harness.mjs';
import { scenario } from '../lib/scenario.mjs';

function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

scenario('no create:todos: 403 insufficient_scope with scope="create:todos", then SDK step-up', async (lab) => {
  const resource = lab.resource('acme');
  const idp = await lab.startIdp({ shape: 'logto', resources: [resource] });
  await lab.startGateway([lab.logtoTenant('acme', idp)]);

  const guest = await connectAs(resource, credentials('guest'));
  try {
    const token = guest.auth.accessToken;
    const c = claims(token);
    assert.equal(c.sub, 'guest');
    assert.equal(c.aud, resource);
    assert.ok(!(c.scope ?? '').includes('create:todos'), `guest's token has no create:todos (scope ${c.scope})`);

    // The guest may still list (their own, none) ...
    assert.deepEqual((await guest.json('get-todos')).todos, []);

    // ... but create-todo is refused at the HTTP layer, naming the scope.
    const r = await rpc(resource, token, toolCall('create-todo', { content: 'not allowed' }));
    assert.equal(r.status, 403, r.text);
    assert.match(r.www, /^Bearer /);
    assert.match(r.www, /error="insufficient_scope"/);
    assert.match(r.www, /scope="create:todos"/);
    assert.match(r.www, new RegExp(`resource_metadata="${lab.base}/.well-known/oauth-protected-resource/acme"`));
    assert.equal(r.json?.error, 'insufficient_scope');

    // The SDK steps up: it re-authorizes asking for exactly create:todos.
    // The guest's roles do not allow it, so the new token still lacks it and
    // the SDK gives up instead of looping.
    await assert.rejects(guest.call('create-todo', { content: 'still not allowed' }), (err) => {
      assert.ok(err instanceof StreamableHTTPError, `${err}`);
      assert.equal(err.code, 403);
      return true;
    });
    assert.equal(guest.auth.stats.authorizations, 2, 'the step-up ran a second authorization');
    assert.equal(guest.auth.lastAuthorizationUrl.searchParams.get('scope'), 'create:todos');
    assert.equal(guest.auth.lastAuthorizationUrl.searchParams.get('resource'), resource);

    // An administrator gives the guest the User role. The same client (same
    // registration, same sign-in session, same token) on a new connection
    // steps up again, and this time the call goes through.
    await idp.setRoles('guest', ['User']);
    const again = await new TodoClient(resource, guest.auth).connect();
    try {
      const todo = await again.json('create-todo', { content: 'after step-up' });
      assert.equal(todo.ownerId, 'guest');
      assert.equal(guest.auth.stats.authorizations, 3, 'one more authorization for the step-up');
      assert.equal(guest.auth.stats.registrations, 1, 'no new registration');
      assert.match(claims(guest.auth.accessToken).scope, /\bcreate:todos\b/);
      // And with the raw token too.
      const t = toolResult(await rpc(resource, guest.auth.accessToken, toolCall('get-todos')));
      assert.deepEqual(t.todos.map((x) => x.id), [todo.id]);
    } finally {
      await again.close();
    }
  } finally {
    await guest.close();
  }
});
