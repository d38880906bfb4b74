#!/usr/bin/env node
// Starts node-oidc-provider on 127.0.0.1 for the todo gateway's end-to-end
// tests and demo. See lib/idp.mjs for the two shapes.
//
//   node idp.mjs --shape logto --port 4000 --resource http://127.0.0.1:3001/acme [--resource ...]
//                [--keys FILE] [--rotate-keys] [--state FILE] [--access-token-ttl SECONDS] [--groups]
//                [--oidc-scopes-in-access-tokens]
//
// Secrets come from the environment: IDP_GATEWAY_SECRET (the gateway's
// introspection client "todo-gateway") and IDP_M2M_SECRET (the client
// credentials client "m2m-todo-client"). When started with an IPC channel it
// sends {type: "ready", issuer} and accepts {type: "setRoles", user, roles}.
// SIGTERM or SIGINT stops it.
import { parseArgs } from 'node:util';

import { startIdp } from './lib/idp.mjs';

const { values } = parseArgs({
  options: {
    shape: { type: 'string', default: 'logto' },
    port: { type: 'string' },
    resource: { type: 'string', multiple: true },
    keys: { type: 'string' },
    'rotate-keys': { type: 'boolean', default: false },
    state: { type: 'string' },
    'access-token-ttl': { type: 'string' },
    groups: { type: 'boolean', default: false },
    'oidc-scopes-in-access-tokens': { type: 'boolean', default: false },
  },
});

function fail(msg) {
  process.stderr.write(`idp: ${msg}\n`);
  process.exit(2);
}

const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) fail('--port is required (1-65535)');
for (const name of ['IDP_GATEWAY_SECRET', 'IDP_M2M_SECRET']) {
  if (!process.env[name]) fail(`${name} must be set`);
}

const idp = await startIdp({
  shape: values.shape,
  port,
  resources: values.resource ?? [],
  keysFile: values.keys,
  rotateKeys: values['rotate-keys'],
  stateFile: values.state,
  accessTokenTTL: values['access-token-ttl'] ? Number(values['access-token-ttl']) : undefined,
  groups: values.groups,
  oidcScopesInAccessTokens: values['oidc-scopes-in-access-tokens'],
  gatewaySecret: process.env.IDP_GATEWAY_SECRET,
  m2mSecret: process.env.IDP_M2M_SECRET,
}).catch((err) => fail(err.stack ?? String(err)));

process.send?.({ type: 'ready', issuer: idp.issuer, kids: idp.kids });
process.on('message', (msg) => {
  try {
    if (msg?.type === 'setRoles') idp.setRoles(msg.user, msg.roles);
    process.send?.({ type: 'ack', id: msg?.id });
  } catch (err) {
    process.send?.({ type: 'ack', id: msg?.id, error: String(err) });
  }
});

let stopping = false;
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, async () => {
    if (stopping) return;
    stopping = true;
    await idp.close();
    process.exit(0);
  });
}
// With an IPC channel, the parent's death closes it: do not linger.
process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
