// Permissions from a group claim, as with Dex, Keycloak or Entra: the
// provider grants no todo scope at all and puts the user's groups in the
// access token; the tenant maps them (claims.roles) to the tutorial's role
// table. Admin (todo-admins): create, and read and delete every todo; User
// (todo-users): create, and read and delete their own; Guest (no group):
// nothing but their own (empty) list.
import assert from 'node:assert/strict';

import { credentials as as, GROUPS } from '../lib/accounts.mjs';
import { connectAs } from '../lib/client.mjs';
import { rpc, toolCall } from '../lib/harness.mjs';
import { scenario } from '../lib/scenario.mjs';

function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

scenario('permissions from a groups claim: the tutorial role table through claims.roles', async (lab) => {
  const resource = lab.resource('acme');
  const idp = await lab.startIdp({ shape: 'logto', resources: [resource], groups: true });
  await lab.startGateway([{
    ...lab.logtoTenant('acme', idp),
    claims: { roles: { claim: 'groups', grants: { [GROUPS.Admin]: ['create', 'read', 'delete'], [GROUPS.User]: ['create'] } } },
  }]);

  const admin = await connectAs(resource, as('admin'));
  const user = await connectAs(resource, as('user'));
  const guest = await connectAs(resource, as('guest'));
  try {
    // The tokens carry groups and no todo scope: only the mapping grants.
    for (const [c, groups] of [[admin, [GROUPS.Admin]], [user, [GROUPS.User]], [guest, []]]) {
      const tok = claims(c.auth.accessToken);
      assert.deepEqual(tok.groups, groups);
      assert.ok(!/todos/.test(tok.scope ?? ''), `no todo scope in ${tok.scope}`);
    }

    const adminTodo = await admin.json('create-todo', { content: "Admin's todo" });
    const userTodo = await user.json('create-todo', { content: "User's todo" });
    assert.equal(adminTodo.ownerId, 'admin');
    assert.equal(userTodo.ownerId, 'user');

    // The guest's group grants nothing: create-todo is refused at the HTTP
    // layer (raw, so that the SDK does not go on to step up).
    const r = await rpc(resource, guest.auth.accessToken, toolCall('create-todo', { content: 'not allowed' }));
    assert.equal(r.status, 403, r.text);
    assert.match(r.www, /error="insufficient_scope"/);
    assert.deepEqual((await guest.json('get-todos')).todos, [], 'the guest sees nothing');

    // User: read own only, delete own only.
    assert.deepEqual((await user.json('get-todos')).todos.map((t) => t.id), [userTodo.id]);
    await assert.rejects(user.json('delete-todo', { id: adminTodo.id }), (err) => {
      assert.match(err.toolError, /Failed to delete todo/);
      return true;
    });

    // Admin: read all, delete any.
    assert.deepEqual((await admin.json('get-todos')).todos.map((t) => t.id).sort(), [adminTodo.id, userTodo.id].sort());
    assert.equal((await admin.json('delete-todo', { id: userTodo.id })).message, `Todo ${userTodo.id} deleted`);
    await admin.json('delete-todo', { id: adminTodo.id });
    assert.deepEqual((await admin.json('get-todos')).todos, []);
  } finally {
    await admin.close();
    await user.close();
    await guest.close();
  }
});
