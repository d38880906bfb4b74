// What `make demo` (demo.mjs) and `make cluster` (cluster.mjs) share: the
// check that their fixed ports are free, the echo of the processes' logs,
// the stop on Ctrl-C, and the text that says what to connect to; and the
// demo's provider and gateway, which the browser test starts too.
import { createServer } from 'node:net';

import { ROLES, USERS, M2M_CLIENT_ID } from './accounts.mjs';
import { freePort } from './harness.mjs';
import { inspectorSteps } from './inspector.mjs';

/** The demo's tenants. */
export const DEMO_TENANTS = ['acme', 'globex'];

/**
 * The value of DEMO_ALLOWED_ORIGINS (comma-separated browser origins) as
 * the gateway's http.allowed_origins; undefined when unset or empty. The
 * gateway checks each origin and refuses to start on a bad one.
 */
export function allowedOriginsFrom(value) {
  const origins = (value ?? '').split(',').map((o) => o.trim()).filter(Boolean);
  return origins.length ? origins : undefined;
}

/**
 * `make demo`'s provider and gateway in lab: node-oidc-provider shaped like
 * Logto on idpPort (a free one when undefined) and the gateway on the lab's
 * port with DEMO_TENANTS, each verified with the provider's JWTs.
 *
 * @param {import('./harness.mjs').Lab} lab
 * @param {{idpPort?: number, allowedOrigins?: string[]}} [o]
 *   allowedOrigins: the gateway's http.allowed_origins
 */
export async function startDemo(lab, { idpPort, allowedOrigins } = {}) {
  const idp = await lab.startIdp({
    shape: 'logto', port: idpPort, resources: DEMO_TENANTS.map((t) => lab.resource(t)), label: 'idp',
  });
  const gateway = await lab.startGateway(DEMO_TENANTS.map((t) => lab.logtoTenant(t, idp)), {
    label: 'gateway',
    http: allowedOrigins ? { allowed_origins: allowedOrigins } : undefined,
  });
  return { idp, gateway };
}

/** Whether port is free on 127.0.0.1 right now. */
export function portFree(port) {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * Exits with a hint when one of the ports is taken.
 *
 * @param {[string, number][]} ports environment variable and port
 * @param {string} command what to run again, such as "make demo"
 */
export async function requirePortsFree(ports, command) {
  for (const [name, port] of ports) {
    if (!(await portFree(port))) {
      const spare = await freePort();
      process.stderr.write(`port ${port} on 127.0.0.1 is taken; choose another, e.g. ${name}=${spare} ${command}\n`);
      process.exit(1);
    }
  }
}

/** The Lab's echo: each process's log lines prefixed with its name, or nothing when quiet. */
export function echoLogs(quiet) {
  if (quiet) return undefined;
  return (proc, line) => process.stdout.write(`[${proc.name}] ${line}\n`);
}

/** Runs stop once on the first SIGINT or SIGTERM. */
export function onStopSignal(stop) {
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));
}

const pad = (s, n) => String(s).padEnd(n);

/**
 * The text printed once everything is up.
 *
 * @param {object} o
 * @param {string} o.title the line in the banner
 * @param {import('./harness.mjs').Lab} o.lab
 * @param {import('./harness.mjs').Idp} o.idp
 * @param {string[]} o.tenants tenant ids
 * @param {string} o.where what serves the tenants, such as "the gateway http://127.0.0.1:3001"
 * @param {string[]} [o.after] lines after the tenants (the cluster's instances)
 * @param {string[]} [o.hint] lines before the closing ones
 * @param {string} o.logs the last line, about the logs that follow ('' when quiet)
 */
export function connectText({ title, lab, idp, tenants, where, after = [], hint = [], logs }) {
  const lines = [
    '',
    '================================================================================',
    ` ${title}`,
    '================================================================================',
    '',
    'Authorization server (node-oidc-provider shaped like Logto: /oidc, ES384 at+jwt, open registration, PKCE):',
    `  issuer     ${idp.issuer}`,
    `  discovery  ${idp.issuer}/.well-known/openid-configuration`,
    '',
    `MCP servers (tenants) on ${where}:`,
    ...tenants.map((t) => `  ${pad(t, 7)} ${pad(lab.resource(t), 32)} metadata ${lab.base}/.well-known/oauth-protected-resource/${t}`),
    '',
    ...after,
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
    ...inspectorSteps({ resource: lab.resource('acme'), issuer: idp.issuer, id: 'acme' }),
    '',
    'A machine-to-machine token (client credentials) for curl:',
    `  curl -s -u ${M2M_CLIENT_ID}:${lab.secrets.m2m} -d grant_type=client_credentials \\`,
    `       -d resource=${lab.resource('acme')} -d scope=read:todos ${idp.issuer}/token`,
    '',
    ...hint,
    `Data lives in ${lab.dir} and is removed on exit.`,
    logs,
    '',
  ];
  return `${lines.join('\n')}\n`;
}
