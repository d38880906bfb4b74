// A user without create:todos calling create-todo: the gateway answers 403
// insufficient_scope naming the scope, and the SDK's step-up re-authorizes
// with that scope; it succeeds once the user has been given a role that
// allows it.
import assert from 'node:assert/strict';

import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
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

// A client that signed in with offline_access (and an authorization server
// that puts the OpenID scopes in access tokens, as Keycloak's does) keeps its
// refresh token across a step-up: before 2026-07-28 clients replace their
// scopes with the challenge's, so the 403 names every scope the token
// carries, not only the tenant's.
scenario('step-up keeps offline_access: the 403 names every scope of the token, and the new sign-in still gets a refresh token', async (lab) => {
  const resource = lab.resource('acme');
  const idp = await lab.startIdp({ shape: 'logto', resources: [resource], oidcScopesInAccessTokens: true });
  await lab.startGateway([lab.logtoTenant('acme', idp)]);

  // The application asks for offline access itself, through the SDK.
  const provider = new HeadlessOAuthProvider(credentials('guest'));
  const asked = 'openid offline_access create:todos read:todos delete:todos';
  assert.equal(await auth(provider, { serverUrl: resource, scope: asked }), 'REDIRECT');
  assert.equal(await auth(provider, { serverUrl: resource, authorizationCode: provider.takeCode() }), 'AUTHORIZED');
  assert.ok(provider.tokens().refresh_token, 'a refresh token for offline_access');
  assert.equal(claims(provider.accessToken).scope, 'openid offline_access', 'the guest has no todo role');

  const guest = await new TodoClient(resource, provider).connect();
  try {
    assert.deepEqual((await guest.json('get-todos')).todos, []);
    const r = await rpc(resource, provider.accessToken, toolCall('create-todo', { content: 'not yet' }));
    assert.equal(r.status, 403, r.text);
    assert.match(r.www, /scope="create:todos openid offline_access"/);

    // An administrator gives the guest the User role. The client's refresh
    // token has meanwhile been revoked (it expired, or the user signed out
    // elsewhere): TypeScript SDK 1.x refreshes on a 403 before it
    // re-authorizes (typescript-sdk issue 2255), and a refresh cannot widen
    // the scope, so only a new sign-in picks up the role.
    await idp.setRoles('guest', ['User']);
    const md = await idp.metadata();
    const revoked = await fetch(md.revocation_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: provider.tokens().refresh_token, token_type_hint: 'refresh_token', client_id: provider.clientInformation().client_id }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(revoked.status, 200, await revoked.text());

    const todo = await guest.json('create-todo', { content: 'after step-up' });
    assert.equal(todo.ownerId, 'guest');
    const stepUp = provider.lastAuthorizationUrl;
    assert.deepEqual(stepUp.searchParams.get('scope').split(' ').sort(), ['create:todos', 'offline_access', 'openid'],
      'the step-up asked for the scopes of the challenge, offline_access among them');
    assert.ok(provider.tokens().refresh_token, 'the new sign-in got a refresh token again');
    assert.deepEqual(claims(provider.accessToken).scope.split(' ').sort(), ['create:todos', 'offline_access', 'openid']);

    // And that refresh token works: the refreshed access token keeps create:todos.
    const before = provider.accessToken;
    assert.equal(await auth(provider, { serverUrl: resource }), 'AUTHORIZED');
    assert.notEqual(provider.accessToken, before, 'refreshed');
    const again = toolResult(await rpc(resource, provider.accessToken, toolCall('create-todo', { content: 'after refresh' })));
    assert.equal(again.ownerId, 'guest');
  } finally {
    await guest.close();
  }
});
