#!/usr/bin/env node
// `make demo`: the todo gateway with two tenants and a Logto-like
// authorization server (node-oidc-provider), all on 127.0.0.1, no account
// anywhere. Prints the users, the resource URLs and how to connect; stays up
// until Ctrl-C.
//
// Ports: DEMO_GATEWAY_PORT (default 3001) and DEMO_IDP_PORT (default 3002).
// DEMO_QUIET=1 hides the processes' logs.
import { ROLES, USERS, M2M_CLIENT_ID } from './lib/accounts.mjs';
import { Lab, freePort } from './lib/harness.mjs';

const gatewayPort = Number(process.env.DEMO_GATEWAY_PORT ?? 3001);
const idpPort = Number(process.env.DEMO_IDP_PORT ?? 3002);
const quiet = !!process.env.DEMO_QUIET;

async function portFree(port) {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
for (const [name, port] of [['DEMO_GATEWAY_PORT', gatewayPort], ['DEMO_IDP_PORT', idpPort]]) {
  if (!(await portFree(port))) {
    const spare = await freePort();
    process.stderr.write(`port ${port} on 127.0.0.1 is taken; choose another, e.g. ${name}=${spare} make demo\n`);
    process.exit(1);
  }
}

const tags = new Map();
const lab = await Lab.create('demo', {
  gatewayPort,
  echo: quiet ? undefined : (proc, line) => {
    if (!tags.has(proc)) tags.set(proc, proc.name);
    process.stdout.write(`[${tags.get(proc)}] ${line}\n`);
  },
});

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  process.stdout.write('\nstopping the gateway and the provider…\n');
  await lab.close();
  process.exit(code);
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

try {
  const tenants = ['acme', 'globex'];
  const idp = await lab.startIdp({
    shape: 'logto', port: idpPort, resources: tenants.map((t) => lab.resource(t)), label: 'idp',
  });
  const gateway = await lab.startGateway(tenants.map((t) => lab.logtoTenant(t, idp)), { label: 'gateway' });
  gateway.exited.then(() => stopping || (process.stderr.write('the gateway exited\n'), stop(1)));
  idp.proc.exited.then(() => stopping || (process.stderr.write('the provider exited\n'), stop(1)));

  const pad = (s, n) => String(s).padEnd(n);
  const lines = [
    '',
    '================================================================================',
    ' Todo Gateway demo: everything on 127.0.0.1, nothing to sign up for. Ctrl-C stops it.',
    '================================================================================',
    '',
    'Authorization server (node-oidc-provider shaped like Logto: /oidc, ES384 at+jwt, open registration, PKCE):',
    `  issuer     ${idp.issuer}`,
    `  discovery  ${idp.issuer}/.well-known/openid-configuration`,
    '',
    `MCP servers (tenants) on the gateway http://127.0.0.1:${gatewayPort}:`,
    ...tenants.map((t) => `  ${pad(t, 7)} ${pad(lab.resource(t), 32)} metadata ${lab.base}/.well-known/oauth-protected-resource/${t}`),
    '',
    'Users (sign in on the provider\'s login page):',
    ...Object.entries(USERS).map(([login, u]) => {
      const scopes = u.roles.flatMap((r) => ROLES[r]);
      return `  ${pad(`${login} / ${u.password}`, 28)} ${u.roles.length ? `role ${u.roles.join(', ')}` : 'no todo role'}: ${scopes.join(' ') || '(no todo scopes)'}`;
    }),
    '',
    'Try it with the MCP TypeScript SDK client (runs the OAuth flow and signs in headlessly):',
    `  node e2e/todo-client.mjs ${lab.resource('acme')} user create "Buy milk"`,
    `  node e2e/todo-client.mjs ${lab.resource('acme')} user list`,
    `  node e2e/todo-client.mjs ${lab.resource('acme')} admin list`,
    `  node e2e/todo-client.mjs ${lab.resource('acme')} guest create "not allowed"    # 403 insufficient_scope`,
    '',
    'Or with MCP Inspector (in a browser on this machine):',
    '  npx @modelcontextprotocol/inspector',
    `  Transport Type "Streamable HTTP", URL ${lab.resource('acme')}, Connection Type "Via Proxy";`,
    '  "Open Auth Settings" → "Quick OAuth Flow", then sign in as one of the users above.',
    '',
    'A machine-to-machine token (client credentials) for curl:',
    `  curl -s -u ${M2M_CLIENT_ID}:${lab.secrets.m2m} -d grant_type=client_credentials \\`,
    `       -d resource=${lab.resource('acme')} -d scope=read:todos ${idp.issuer}/token`,
    '',
    `Data lives in ${lab.dir} and is removed on exit.`,
    quiet ? '' : 'Logs of the provider [idp] and the gateway [gateway] follow.',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} catch (err) {
  process.stderr.write(`demo failed to start: ${err.message}\n${lab.report()}`);
  await lab.close();
  process.exit(1);
}
