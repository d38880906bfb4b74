// The tutorial's checkpoint against a Logto-like node-oidc-provider, with the
// MCP TypeScript SDK doing the whole authorization flow.
import assert from 'node:assert/strict';

import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';

import { credentials as as } from '../lib/accounts.mjs';
import { connectAs } from '../lib/client.mjs';
import { scenario } from '../lib/scenario.mjs';

scenario('tutorial checkpoint: User sees and deletes only their own todos, Admin all', async (lab) => {
  const resource = lab.resource('acme');
  const idp = await lab.startIdp({ shape: 'logto', resources: [resource] });
  await lab.startGateway([lab.logtoTenant('acme', idp)]);

  const user = await connectAs(resource, as('user'));
  const admin = await connectAs(resource, as('admin'));
  try {
    // The SDK went through the whole flow on its own, once each.
    for (const c of [user, admin]) {
      assert.equal(c.auth.stats.registrations, 1, 'one dynamic client registration');
      assert.equal(c.auth.stats.authorizations, 1, 'one authorization');
      const url = c.auth.lastAuthorizationUrl;
      assert.equal(url.searchParams.get('resource'), resource, 'resource indicator = the tenant URL');
      assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
      assert.equal(url.searchParams.get('scope'), 'create:todos read:todos delete:todos', 'scope from the 401 challenge');
    }
    // The SDK's newest protocol version is the one agreed on.
    assert.equal(user.transport.protocolVersion, LATEST_PROTOCOL_VERSION);
    assert.match(user.client.getServerVersion().name, /acme/);
    const tools = (await user.client.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(tools, ['create-todo', 'delete-todo', 'get-todos']);

    const adminTodo = await admin.json('create-todo', { content: "Admin's todo" });
    const userTodo = await user.json('create-todo', { content: "User's todo" });
    assert.equal(userTodo.ownerId, 'user');
    assert.equal(adminTodo.ownerId, 'admin');
    assert.equal(userTodo.content, "User's todo");

    const userSees = (await user.json('get-todos')).todos.map((t) => t.id);
    assert.deepEqual(userSees, [userTodo.id], 'User sees only their own todo');

    await assert.rejects(user.json('delete-todo', { id: adminTodo.id }), (err) => {
      assert.match(err.toolError, /Failed to delete todo/);
      return true;
    });

    const adminSees = (await admin.json('get-todos')).todos.map((t) => t.id).sort();
    assert.deepEqual(adminSees, [adminTodo.id, userTodo.id].sort(), 'Admin sees every todo');

    const del = await admin.json('delete-todo', { id: userTodo.id });
    assert.equal(del.message, `Todo ${userTodo.id} deleted`);
    await admin.json('delete-todo', { id: adminTodo.id });
    assert.deepEqual((await admin.json('get-todos')).todos, []);
  } finally {
    await user.close();
    await admin.close();
  }
});
