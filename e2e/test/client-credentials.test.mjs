// A client-credentials token from the provider works at the gateway, and
// the todos it creates belong to the client (subject = the client).
import assert from 'node:assert/strict';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

import { M2M_CLIENT_ID } from '../lib/accounts.mjs';
import { rpc, toolCall, toolResult } from '../lib/harness.mjs';
import { scenario } from '../lib/scenario.mjs';

scenario('client credentials (JWT, Logto-like): the SDK gets a token by itself, subject = the client', async (lab) => {
  const resource = lab.resource('acme');
  const idp = await lab.startIdp({ shape: 'logto', resources: [resource] });
  await lab.startGateway([lab.logtoTenant('acme', idp)]);

  // The SDK's own machine-to-machine provider: 401 → metadata → token
  // request with grant_type=client_credentials and resource → retry.
  const auth = new ClientCredentialsProvider({
    clientId: M2M_CLIENT_ID,
    clientSecret: lab.secrets.m2m,
    expectedIssuer: idp.issuer,
    scope: 'create:todos read:todos',
  });
  const client = new Client({ name: 'm2m-e2e', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(resource), { authProvider: auth }));
  try {
    const token = auth.tokens().access_token;
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url'));
    assert.equal(claims.sub, M2M_CLIENT_ID, 'RFC 9068: sub of a client-credentials token is the client');
    assert.equal(claims.aud, resource);

    const res = await client.callTool({ name: 'create-todo', arguments: { content: 'nightly report' } });
    assert.ok(!res.isError, res.content?.[0]?.text);
    assert.equal(res.structuredContent.ownerId, M2M_CLIENT_ID);
    const list = await client.callTool({ name: 'get-todos', arguments: {} });
    assert.deepEqual(list.structuredContent.todos.map((t) => t.ownerId), [M2M_CLIENT_ID]);
  } finally {
    await client.close();
  }

  // Without create:todos in the token, create-todo is a 403 for the client
  // too. Before protocol 2026-07-28 (no header means 2025-03-26) the
  // challenge keeps the scopes the token has, since those clients replace
  // their scopes with the challenge's; from 2026-07-28 it names only the
  // missing one.
  const readOnly = await idp.clientCredentials(resource, 'read:todos');
  for (const [version, scope] of [[undefined, 'create:todos read:todos'], ['2025-06-18', 'create:todos read:todos'], ['2026-07-28', 'create:todos']]) {
    const r = await rpc(resource, readOnly.access_token, toolCall('create-todo', { content: 'x' }),
      version ? { 'mcp-protocol-version': version } : {});
    assert.equal(r.status, 403, r.text);
    assert.match(r.www, /error="insufficient_scope"/);
    assert.match(r.www, new RegExp(`scope="${scope}"$`), `protocol ${version ?? 'none'}`);
  }
});

// node-oidc-provider answers the introspection of a client-credentials token
// without "sub" (RFC 7662 makes it optional; there is no resource owner):
//   {"active":true,"client_id":"m2m-todo-client","exp":...,"iat":...,"iss":...,
//    "aud":"<resource>","scope":"create:todos read:todos","token_type":"Bearer"}
// The subject of such a token is the client (as RFC 9068 §2.2 says for JWTs):
// the gateway falls back to client_id when an introspection answer has no sub.
scenario('client credentials (opaque, introspection): subject = the client', async (lab) => {
  const resource = lab.resource('initech');
  const idp = await lab.startIdp({ shape: 'oauth', resources: [resource] });
  await lab.startGateway([lab.oauthTenant('initech', idp)]);

  const { access_token: token } = await idp.clientCredentials(resource, 'create:todos read:todos');
  const intro = await idp.introspect(token);
  assert.equal(intro.active, true);
  assert.equal(intro.client_id, M2M_CLIENT_ID);
  assert.equal(intro.sub, undefined, 'node-oidc-provider sends no sub for a client-credentials token');

  const r = await rpc(resource, token, toolCall('create-todo', { content: 'from a machine' }));
  assert.equal(r.status, 200, `${r.status} ${r.www} ${r.text}`);
  assert.equal(toolResult(r).ownerId, M2M_CLIENT_ID);
});
