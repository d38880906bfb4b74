// An upstream tenant in front of a real MCP server written by others:
// @modelcontextprotocol/server-everything (the MCP reference server) in its
// Streamable HTTP mode, driven by the TypeScript SDK through the whole OAuth
// flow of the Logto-like provider. The tenant maps four of its tools and
// every other method to the tutorial's scopes; the User (create:todos) and
// the Admin (create, read, delete) each see and call what the table allows:
// progress notifications and a sampling round trip stream through the
// gateway, resources need read:todos, DELETE ends the upstream's session,
// and a missing permission is the 403 insufficient_scope step-up.
import assert from 'node:assert/strict';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

import { credentials as as } from '../lib/accounts.mjs';
import { NO_TODO_TENANT } from '../lib/chain.mjs';
import { HeadlessOAuthProvider, TodoClient } from '../lib/client.mjs';
import { EVERYTHING_PERMISSIONS as PERMISSIONS, startEverything } from '../lib/everything.mjs';
import { eventually, rpc, toolCall, toolsList } from '../lib/harness.mjs';
import { scenario } from '../lib/scenario.mjs';

// server-everything's tool names (2026.8.31; older versions had
// longRunningOperation, sampleLLM, printEnv). trigger-sampling-request is
// only registered for a client that declares the sampling capability.
const ECHO = 'echo';
const PROGRESS = 'trigger-long-running-operation';
const SAMPLING = 'trigger-sampling-request';
const ADMIN_ONLY = 'get-env';
const UNLISTED = 'get-sum';

// The tenant's table (lib/everything.mjs, shared with the demo): echo for
// anyone, the two trigger tools need create:todos, get-env delete:todos,
// every other method read:todos.
for (const [tool, perms] of Object.entries({ [ECHO]: [], [PROGRESS]: ['create:todos'], [SAMPLING]: ['create:todos'], [ADMIN_ONLY]: ['delete:todos'] })) {
  assert.deepEqual(PERMISSIONS.tools[tool], perms, `the shared table maps ${tool}`);
}

const text = (res) => res.content?.find((c) => c.type === 'text')?.text ?? '';
const sorted = (xs) => [...xs].sort();
const scopesOf = (url) => sorted((url.searchParams.get('scope') ?? '').split(' '));
/** The scopes a WWW-Authenticate challenge names, sorted. */
const challengeScopes = (www) => sorted((/scope="([^"]*)"/.exec(www)?.[1] ?? '').split(' '));

/** The tools a client sees, by name. */
async function toolNames(c) {
  return sorted((await c.client.listTools()).tools.map((t) => t.name));
}

scenario('upstream tenant in front of server-everything: per-role tools, progress, sampling, resources, session end, step-up', async (lab) => {
  const resource = lab.resource('everything');
  const idp = await lab.startIdp({ shape: 'logto', resources: [resource] });
  const everything = await startEverything(lab);
  // Identity: the default, a gateway-signed assertion in Authorization;
  // server-everything reads no credentials at all (the assertion itself is
  // verified by the Go tests).
  await lab.startGateway([{
    ...lab.logtoTenant('everything', idp),
    server: { type: 'upstream', url: everything.url, permissions: PERMISSIONS },
  }]);

  // What the upstream offers when asked directly: far more than the tenant lists.
  const direct = new Client({ name: 'direct', version: '1.0.0' }, { capabilities: { sampling: {} } });
  await direct.connect(new StreamableHTTPClientTransport(new URL(everything.url)));
  const upstreamTools = (await direct.listTools()).tools.map((t) => t.name);
  await direct.close();
  for (const name of [...Object.keys(PERMISSIONS.tools), UNLISTED]) {
    assert.ok(upstreamTools.includes(name), `server-everything has a tool ${name} (it has ${upstreamTools.join(', ')})`);
  }

  // Both sign in with a client that declares sampling and answers the
  // upstream's sampling/createMessage with a canned message, and keeps the
  // log messages the upstream sends.
  const samples = [];
  const logs = [];
  const connect = (login) => new TodoClient(resource, new HeadlessOAuthProvider(as(login)), {
    capabilities: { sampling: {} },
    configure: (client) => {
      client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
        samples.push({ login, params: req.params });
        return { model: 'e2e-stub-model', role: 'assistant', content: { type: 'text', text: `canned answer for ${login}` } };
      });
      client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => { logs.push({ login, ...n.params }); });
    },
  }).connect();
  const user = await connect('user');
  const admin = await connect('admin');
  try {
    for (const c of [user, admin]) {
      assert.equal(c.auth.stats.authorizations, 1, 'one authorization');
      assert.equal(c.auth.lastAuthorizationUrl.searchParams.get('resource'), resource);
      // An upstream tenant's scopes are its permission names.
      assert.deepEqual(scopesOf(c.auth.lastAuthorizationUrl), ['create:todos', 'delete:todos', 'read:todos']);
      // initialize went through to the upstream.
      assert.equal(c.client.getServerVersion().name, 'mcp-servers/everything');
    }

    // tools/list per role: only what the table lists and the caller may call.
    assert.deepEqual(await toolNames(user), sorted([ECHO, PROGRESS, SAMPLING]), 'User: no delete:todos tool, nothing unlisted');
    assert.deepEqual(await toolNames(admin), sorted([ECHO, PROGRESS, SAMPLING, ADMIN_ONLY]), 'Admin: every listed tool, nothing unlisted');

    // A tool the tenant does not list (one the upstream has) is refused to
    // everybody, Admin too, by the gateway itself: 403 not_exposed, a
    // JSON-RPC error and no challenge, since no scope would help.
    await assert.rejects(admin.call(UNLISTED, { a: 1, b: 2 }), (err) => {
      assert.ok(err instanceof StreamableHTTPError, `${err}`);
      assert.equal(err.code, 403);
      return true;
    });
    const unlisted = await rpc(resource, admin.auth.accessToken, toolCall(UNLISTED, { a: 1, b: 2 }));
    assert.equal(unlisted.status, 403, unlisted.text);
    assert.equal(unlisted.www, '', 'not a credentials problem: no challenge');
    assert.match(unlisted.json?.error?.message ?? '', /not available through this gateway/);

    // Anyone authenticated may echo.
    assert.equal(text(await user.call(ECHO, { message: 'hello upstream' })), 'Echo: hello upstream');

    // Progress notifications stream through before the result, each as it
    // comes (one every 400 ms), not held until the answer ends.
    const progress = [];
    let answered = false;
    const long = await user.call(PROGRESS, { duration: 1.2, steps: 3 }, {
      onprogress: (p) => progress.push({ ...p, answered, at: Date.now() }),
    });
    const resultAt = Date.now();
    answered = true;
    assert.match(text(long), /Long running operation completed\. Duration: 1\.2 seconds, Steps: 3\./);
    assert.ok(progress.length >= 1, 'at least one progress notification');
    assert.deepEqual(progress.map((p) => [p.progress, p.total, p.answered]), [[1, 3, false], [2, 3, false], [3, 3, false]],
      'every step reported, each before the result');
    assert.ok(resultAt - progress[0].at >= 400, `the first step reached the client ${resultAt - progress[0].at} ms before the result`);

    // Sampling: the upstream asks the client for a message in the middle of
    // the call; the client's answer is in the tool's result.
    const sampled = await user.call(SAMPLING, { prompt: 'what is the gateway?', maxTokens: 42 });
    assert.equal(samples.length, 1, 'one sampling/createMessage request');
    assert.equal(samples[0].login, 'user', 'asked of the caller, on the caller\'s session');
    assert.equal(samples[0].params.maxTokens, 42);
    assert.match(samples[0].params.messages[0].content.text, /what is the gateway\?/);
    assert.match(text(sampled), /LLM sampling result/);
    assert.match(text(sampled), /canned answer for user/);
    assert.match(text(sampled), /e2e-stub-model/);

    // Resources need read:todos: the Admin lists and reads one.
    const { resources } = await admin.client.listResources();
    const doc = resources.find((r) => r.uri.startsWith('demo://resource/static/document/'));
    assert.ok(doc, `a static document among ${resources.map((r) => r.uri).join(', ')}`);
    const read = await admin.client.readResource({ uri: doc.uri });
    assert.equal(read.contents[0].uri, doc.uri);
    assert.ok(read.contents[0].text.length > 0, 'the document has text');
    // resources/subscribe too; server-everything acknowledges it with a log
    // message on its own stream (the GET), which reaches the client.
    await admin.client.subscribeResource({ uri: doc.uri });
    await eventually('the upstream\'s log message on the GET stream', () => logs.find((l) => l.login === 'admin'
      && String(l.data).includes(`Received Subscribe Resource request for URI: ${doc.uri}`)), { timeoutMs: 5000, intervalMs: 50 });

    // The User is refused with the step-up challenge; the SDK re-authorizes
    // for read:todos (keeping create:todos), is not granted it, and gives up.
    const refusedList = await rpc(resource, user.auth.accessToken, { method: 'resources/list' });
    assert.equal(refusedList.status, 403, refusedList.text);
    assert.match(refusedList.www, /error="insufficient_scope"/);
    // The scopes the token has as well as the missing one: the SDK (protocol
    // 2025-11-25) asks for exactly the challenge's scopes.
    assert.deepEqual(challengeScopes(refusedList.www), ['create:todos', 'read:todos']);
    const refusedRead = await rpc(resource, user.auth.accessToken, { method: 'resources/read', params: { uri: doc.uri } });
    assert.equal(refusedRead.status, 403, refusedRead.text);
    assert.match(refusedRead.www, /error="insufficient_scope"/);
    await assert.rejects(user.withStepUp(() => user.client.listResources()), (err) => {
      assert.ok(err instanceof StreamableHTTPError, `${err}`);
      assert.equal(err.code, 403);
      return true;
    });
    assert.equal(user.auth.stats.authorizations, 2, 'the step-up ran a second authorization');
    assert.deepEqual(scopesOf(user.auth.lastAuthorizationUrl), ['create:todos', 'read:todos']);

    // The User calling the Admin's tool directly: 403 insufficient_scope
    // naming delete:todos; the SDK steps up, is not granted it, gives up.
    const refusedTool = await rpc(resource, user.auth.accessToken, toolCall(ADMIN_ONLY));
    assert.equal(refusedTool.status, 403, refusedTool.text);
    assert.match(refusedTool.www, /^Bearer /);
    assert.match(refusedTool.www, /error="insufficient_scope"/);
    assert.deepEqual(challengeScopes(refusedTool.www), ['create:todos', 'delete:todos']);
    assert.match(refusedTool.www, new RegExp(`resource_metadata="${lab.base}/.well-known/oauth-protected-resource/everything"`));
    await assert.rejects(user.call(ADMIN_ONLY), (err) => {
      assert.ok(err instanceof StreamableHTTPError, `${err}`);
      assert.equal(err.code, 403);
      return true;
    });
    assert.equal(user.auth.stats.authorizations, 3, 'one more authorization for the step-up');
    assert.deepEqual(scopesOf(user.auth.lastAuthorizationUrl), ['create:todos', 'delete:todos']);
    // The User kept what they had, on the same session.
    assert.equal(text(await user.call(ECHO, { message: 'still here' })), 'Echo: still here');
    assert.match(text(await user.call(PROGRESS, { duration: 0.1, steps: 1 })), /completed/);

    // No parser differential smuggles a call past the check. Go's
    // encoding/json matches member names case-insensitively (the last
    // wins) and folds ſ and K; server-everything's JSON.parse reads names
    // exactly. A message whose names the two could read apart is refused
    // before it is forwarded: the first three, forwarded, make
    // server-everything run get-env for the User (the first did, before
    // the check). A member named twice is refused too: readers differ on
    // which one counts.
    const onSession = { 'mcp-session-id': user.transport.sessionId, 'mcp-protocol-version': user.transport.protocolVersion };
    const call = (members) => `{"jsonrpc":"2.0","id":7,${members}}`;
    for (const body of [
      call(`"method":"tools/call","params":{"name":"${ADMIN_ONLY}","Name":"${ECHO}","arguments":{}}`),
      call(`"method":"tools/call","Method":"ping","params":{"name":"${ADMIN_ONLY}","arguments":{}}`),
      call(`"method":"tools/call","params":{"name":"${ADMIN_ONLY}","arguments":{}},"paramſ":{"name":"${ECHO}"}`),
      call(`"method":"tools/call","params":{"name":"${ADMIN_ONLY}","name":"${ECHO}","arguments":{}}`),
    ]) {
      const smuggled = await rpc(resource, user.auth.accessToken, body, onSession);
      assert.equal(smuggled.status, 400, `${body}: ${smuggled.status} ${smuggled.text}`);
      assert.equal(smuggled.json?.error?.code, -32600, smuggled.text);
      assert.match(smuggled.json?.error?.message ?? '', /ambiguous|twice/, smuggled.text);
      assert.doesNotMatch(smuggled.text, /PORT/, 'get-env never ran');
    }

    // The Admin may call it: the upstream's own environment, PORT alone.
    const env = JSON.parse(text(await admin.call(ADMIN_ONLY)));
    assert.equal(env.PORT, String(everything.port));

    // DELETE ends the upstream's session through the gateway.
    const sid = admin.transport.sessionId;
    assert.ok(sid, 'the upstream gave the session an id');
    // The client's id is the upstream's bound to the caller: the
    // upstream's id, a dot and a MAC the gateway checks on every request.
    const upstreamSid = sid.slice(0, sid.lastIndexOf('.'));
    assert.ok(upstreamSid.length > 0 && upstreamSid !== sid, `session id ${sid} carries a MAC`);
    // Another user presenting the Admin's session id gets 404, as for an
    // ended session; the upstream never sees the request.
    const stolen = await rpc(resource, user.auth.accessToken, toolsList, {
      'mcp-session-id': sid, 'mcp-protocol-version': admin.transport.protocolVersion,
    });
    assert.equal(stolen.status, 404, stolen.text);
    await admin.transport.terminateSession();
    assert.equal(admin.transport.sessionId, undefined);
    await everything.proc.waitForLine(new RegExp(`session termination request for session ${upstreamSid}`), 5000);
    await everything.proc.waitForLine(new RegExp(`Transport closed for session ${upstreamSid}`), 5000);
    // The old session id is unknown upstream now. server-everything answers
    // 400 "No valid session ID" for it (the spec's answer would be 404):
    // the gateway passes the upstream's answer on as it is.
    const stale = await rpc(resource, admin.auth.accessToken, toolsList, {
      'mcp-session-id': sid, 'mcp-protocol-version': admin.transport.protocolVersion,
    });
    assert.equal(stale.status, 400, stale.text);
    assert.match(stale.json?.error?.message ?? '', /No valid session ID/);
    await assert.rejects(admin.client.listTools(), (err) => {
      assert.ok(err instanceof StreamableHTTPError, `${err}`);
      assert.equal(err.code, 400);
      return true;
    });

    // The upstream stopped (by PID): the gateway answers 502, never hangs.
    await everything.stop();
    const down = await rpc(resource, user.auth.accessToken, toolCall(ECHO, { message: 'anyone?' }));
    assert.equal(down.status, 502, down.text);
    assert.equal(down.json?.error, 'upstream_unavailable');
  } finally {
    await user.close();
    await admin.close();
  }
}, { chain: NO_TODO_TENANT });
