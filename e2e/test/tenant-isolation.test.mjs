// Two tenants trust the same provider: a token issued for tenant A's
// resource is refused by tenant B, and A's todos never show at B.
import assert from 'node:assert/strict';

import { credentials } from '../lib/accounts.mjs';
import { HeadlessOAuthProvider, TodoClient, connectAs } from '../lib/client.mjs';
import { rpc, toolCall, toolResult, toolsList } from '../lib/harness.mjs';
import { scenario } from '../lib/scenario.mjs';

scenario("a token for tenant A's resource is refused by tenant B on the same provider", async (lab) => {
  const acme = lab.resource('acme');
  const globex = lab.resource('globex');
  const idp = await lab.startIdp({ shape: 'logto', resources: [acme, globex] });
  await lab.startGateway([lab.logtoTenant('acme', idp), lab.logtoTenant('globex', idp)]);

  const atAcme = await connectAs(acme, credentials('admin'));
  try {
    const acmeToken = atAcme.auth.accessToken;
    const todo = await atAcme.json('create-todo', { content: 'acme only' });

    // Same issuer, same keys, valid signature: only the audience differs.
    const r = await rpc(globex, acmeToken, toolsList);
    assert.equal(r.status, 401, r.text);
    assert.match(r.www, /error="invalid_token"/);
    assert.match(r.www, /audience/i, 'the description says why');
    assert.match(r.www, new RegExp(`resource_metadata="${lab.base}/.well-known/oauth-protected-resource/globex"`));
    // Nor does a tool call sneak through.
    assert.equal((await rpc(globex, acmeToken, toolCall('get-todos'))).status, 401);
    // A client-credentials token for acme is refused at globex as well.
    const m2m = await idp.clientCredentials(acme, 'read:todos');
    assert.equal((await rpc(globex, m2m.access_token, toolsList)).status, 401);
    assert.equal((await rpc(acme, m2m.access_token, toolsList)).status, 200);

    // The same user (same sign-in session) connecting to globex: the SDK
    // gets a 401, asks for a token with resource=globex, and sees none of
    // acme's todos.
    const globexAuth = new HeadlessOAuthProvider(credentials('admin'), { browser: atAcme.auth.browser });
    const atGlobex = await new TodoClient(globex, globexAuth).connect();
    try {
      assert.equal(globexAuth.lastAuthorizationUrl.searchParams.get('resource'), globex);
      assert.deepEqual((await atGlobex.json('get-todos')).todos, []);
      // And globex's token is refused at acme.
      assert.equal((await rpc(acme, globexAuth.accessToken, toolsList)).status, 401);
    } finally {
      await atGlobex.close();
    }
    // acme still holds its todo.
    assert.deepEqual(toolResult(await rpc(acme, acmeToken, toolCall('get-todos'))).todos.map((t) => t.id), [todo.id]);
  } finally {
    await atAcme.close();
  }
});
