// What `make demo` (demo.mjs) and `make cluster` (cluster.mjs) share: the
// check that their fixed ports are free, the echo of the processes' logs,
// the stop on Ctrl-C, and the text that says what to connect to; and the
// demo's provider and gateway, which the browser test starts too.
import { createServer } from 'node:net';

import { ROLES, USERS, M2M_CLIENT_ID } from './accounts.mjs';
import { EVERYTHING_PERMISSIONS, EVERYTHING_VERSION, startEverything } from './everything.mjs';
import { freePort } from './harness.mjs';
import { inspectorSteps } from './inspector.mjs';

/** The demo's tenants. */
export const DEMO_TENANTS = ['acme', 'globex'];

/**
 * The upstream tenant the demo adds when asked (DEMO_UPSTREAM=1, the
 * browser test): server-everything on a loopback port behind the gateway,
 * its tools mapped to the tutorial's scopes (EVERYTHING_PERMISSIONS).
 */
export const DEMO_UPSTREAM_TENANT = 'everything';

/** Whether an environment variable such as DEMO_UPSTREAM is on: set, and not empty, 0, false or no. */
export function envFlag(value) {
  return !!value && !['0', 'false', 'no'].includes(value.trim().toLowerCase());
}

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
 * port with DEMO_TENANTS, each verified with the provider's JWTs. With
 * upstream, also server-everything on a free loopback port and the tenant
 * DEMO_UPSTREAM_TENANT in front of it (an upstream tenant, the same
 * provider, EVERYTHING_PERMISSIONS).
 *
 * @param {import('./harness.mjs').Lab} lab
 * @param {{idpPort?: number, allowedOrigins?: string[], upstream?: boolean}} [o]
 *   allowedOrigins: the gateway's http.allowed_origins
 * @returns {Promise<{idp: any, gateway: any, tenants: string[], everything?: any}>}
 *   tenants: the ids served; everything: server-everything when upstream
 */
export async function startDemo(lab, { idpPort, allowedOrigins, upstream = false } = {}) {
  const tenants = upstream ? [...DEMO_TENANTS, DEMO_UPSTREAM_TENANT] : [...DEMO_TENANTS];
  const [idp, everything] = await Promise.all([
    lab.startIdp({ shape: 'logto', port: idpPort, resources: tenants.map((t) => lab.resource(t)), label: 'idp' }),
    upstream ? startEverything(lab) : undefined,
  ]);
  const config = DEMO_TENANTS.map((t) => lab.logtoTenant(t, idp));
  if (everything) {
    config.push({
      ...lab.logtoTenant(DEMO_UPSTREAM_TENANT, idp),
      resource_name: `server-everything ${EVERYTHING_VERSION}`,
      server: { type: 'upstream', url: everything.url, permissions: EVERYTHING_PERMISSIONS },
    });
  }
  const gateway = await lab.startGateway(config, {
    label: 'gateway',
    http: allowedOrigins ? { allowed_origins: allowedOrigins } : undefined,
  });
  return { idp, gateway, tenants, everything };
}

/**
 * The banner's lines on the upstream tenant: what it fronts and who may
 * call which of its tools; or, when it is off, how to turn it on.
 *
 * @param {import('./harness.mjs').Lab} lab
 * @param {{url: string} | undefined} everything server-everything, when started
 */
export function upstreamText(lab, everything) {
  if (!everything) {
    return [
      `DEMO_UPSTREAM=1 adds a tenant ${DEMO_UPSTREAM_TENANT} (${lab.resource(DEMO_UPSTREAM_TENANT)}): an upstream tenant in front of`,
      `  @modelcontextprotocol/server-everything ${EVERYTHING_VERSION} on loopback, its tools mapped to the todo scopes.`,
      '',
    ];
  }
  const byScopes = new Map();
  for (const [tool, scopes] of Object.entries(EVERYTHING_PERMISSIONS.tools)) {
    const key = scopes.join(' ') || 'anyone signed in';
    byScopes.set(key, [...(byScopes.get(key) ?? []), tool]);
  }
  return [
    `${DEMO_UPSTREAM_TENANT} is an upstream tenant: the gateway checks the token and proxies to @modelcontextprotocol/server-everything`,
    `  ${EVERYTHING_VERSION} at ${everything.url} (loopback). tools/list shows only what the caller may call:`,
    ...[...byScopes].map(([scopes, tools]) => `    ${tools.join(', ')}: ${scopes}`),
    `    any other method (resources, prompts, ...): ${EVERYTHING_PERMISSIONS.other_methods.join(' ')}; its other tools: nobody`,
    `  (user sees echo, not get-env; admin sees both). Connect to it as to acme below: ${lab.resource(DEMO_UPSTREAM_TENANT)}`,
    '',
  ];
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
  const width = Math.max(7, ...tenants.map((t) => t.length));
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
    ...tenants.map((t) => `  ${pad(t, width)} ${pad(lab.resource(t), 32)} metadata ${lab.base}/.well-known/oauth-protected-resource/${t}`),
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
