// Chain mode (E2E_CHAIN=1): every todo tenant a scenario configures is
// served through two gateways. The outer gateway (the one whose URLs the
// scenario's clients use) keeps the tenant's id, resource URL, provider,
// audience, claims, scopes, missing_permission and rate_limit, but its
// server becomes an upstream: an inner gateway, started by the harness on
// another free loopback port, that serves the todo server itself and trusts
// the outer gateway as its issuer, as mcp/upstream_chain_test.go does.
//
//   client ──token──▶ outer gateway ──assertion (iss = outer origin)──▶ inner gateway ──▶ todo server
//
// The outer tenant's permissions are named as the inner tenant's scope
// strings (create:todos, read:todos, delete:todos: the inner tenant's
// default todo scope map), since the assertion's scope claim carries the
// outer permissions the caller holds and the inner tenant reads it as
// scopes. The outer door checks what the todo server's door checks
// (create-todo needs create; get-todos and delete-todo nothing) and
// forwards read and delete, with which the inner todo server decides whose
// todos a caller sees and deletes. The scopes and role grants of the
// scenario's tenant are mapped onto those names, so the client's tokens
// grant exactly what they grant on the plain tenant.

/** Whether chain mode is on: E2E_CHAIN set, and not empty, 0, false or no. */
export function chainMode(env = process.env) {
  const v = env.E2E_CHAIN;
  return !!v && !['0', 'false', 'no'].includes(v.trim().toLowerCase());
}

/** The todo server's permissions (providers.Permissions). */
const TODO_PERMISSIONS = ['create', 'read', 'delete'];

/**
 * Each todo permission as the outer upstream tenant's permission: the scope
 * string that grants it at the inner tenant (its default scope map).
 */
export const CHAIN_PERMISSION = Object.freeze({ create: 'create:todos', read: 'read:todos', delete: 'delete:todos' });

/** Where the outer gateway publishes its assertion keys (upstream.JWKSPath). */
export const ASSERTION_JWKS_PATH = '/.well-known/todo-gateway/jwks.json';

/** Whether a tenant object is served by the built-in todo server. */
export function isTodoTenant(t) {
  return (t.server?.type ?? 'todo') === 'todo';
}

/**
 * The scope string of each todo permission at tenant t, as the gateway
 * defaults it (providers.DefaultScopeMap): t.scopes, else under the scope
 * audience strategy the prefix followed by the permission, else
 * "<permission>:todos".
 */
export function todoScopeMap(t) {
  const out = {};
  for (const perm of TODO_PERMISSIONS) {
    out[perm] = t.scopes?.[perm]
      ?? (t.audience?.strategy === 'scope' ? `${t.audience.prefix ?? ''}${perm}` : `${perm}:todos`);
  }
  return out;
}

/**
 * The upstream permissions block of an outer tenant in front of the todo
 * server: what the todo server's own door requires. create-todo needs
 * create; get-todos and delete-todo need nothing (read and delete are
 * forwarded, for the todo server's ownership rules); a tool or method it
 * does not have needs nothing either (other_tools, other_methods: []), so
 * that the todo server answers it as on the plain tenant (200 with a
 * JSON-RPC error) rather than the outer gateway (403 "not available
 * through this gateway"). mcp/upstream_chain_test.go leaves those two out.
 */
export function chainPermissions() {
  return {
    tools: { 'create-todo': [CHAIN_PERMISSION.create], 'get-todos': [], 'delete-todo': [] },
    other_tools: [],
    other_methods: [],
    forward: [CHAIN_PERMISSION.read, CHAIN_PERMISSION.delete],
  };
}

/**
 * The outer tenant for todo tenant t whose todo server is innerUrl: the
 * same tenant with an upstream server, its scopes and role grants renamed
 * to the upstream's permissions. A scope or grant naming something else
 * than a todo permission is left as it is, for the gateway to refuse as it
 * would on the plain tenant.
 */
export function outerTenant(t, innerUrl) {
  const scopes = todoScopeMap(t);
  const out = {
    ...t,
    scopes: Object.fromEntries(TODO_PERMISSIONS.map((p) => [CHAIN_PERMISSION[p], scopes[p]])),
    server: { type: 'upstream', url: innerUrl, identity: { mode: 'assertion' }, permissions: chainPermissions() },
  };
  for (const [k, v] of Object.entries(t.scopes ?? {})) {
    if (!TODO_PERMISSIONS.includes(k)) out.scopes[k] = v;
  }
  const roles = t.claims?.roles;
  if (roles?.grants) {
    const grants = Object.fromEntries(Object.entries(roles.grants).map(([value, perms]) => [
      value, Array.isArray(perms) ? perms.map((p) => CHAIN_PERMISSION[p] ?? p) : perms,
    ]));
    out.claims = { ...t.claims, roles: { ...roles, grants } };
  }
  return out;
}

/**
 * The inner tenant behind outer tenant t: the todo server at resource
 * innerUrl, trusting the outer gateway as an OAuth issuer (iss = the origin
 * of t's resource URL, the keys it publishes), audience = its own resource
 * URL (the assertion's aud is the outer tenant's upstream url), scopes read
 * from the assertion's scope claim with the default todo scope map.
 */
export function innerTenant(t, innerUrl) {
  const issuer = new URL(t.resource).origin;
  return {
    id: t.id,
    resource: innerUrl,
    ...(t.resource_name ? { resource_name: t.resource_name } : {}),
    provider: { type: 'oauth', issuer, metadata: { jwks_uri: issuer + ASSERTION_JWKS_PATH } },
    audience: { strategy: 'resource' },
  };
}

/**
 * Splits a scenario's tenants into the outer gateway's and the inner
 * gateway's: each todo tenant becomes an upstream tenant at the outer one
 * and a todo tenant at the inner one (innerBase + '/' + id); other tenants
 * (upstream tenants already) stay as they are, at the outer one alone.
 * inner is empty when the scenario configures no todo tenant.
 *
 * @param {object[]} tenants
 * @param {string} innerBase the inner gateway's base URL, http://127.0.0.1:PORT
 */
export function chainTenants(tenants, innerBase) {
  const outer = [];
  const inner = [];
  for (const t of tenants) {
    if (!isTodoTenant(t)) {
      outer.push(t);
      continue;
    }
    const url = `${innerBase}/${t.id}`;
    outer.push(outerTenant(t, url));
    inner.push(innerTenant(t, url));
  }
  return { outer, inner };
}

/** The tools/call audit lines a gateway logged with decision allow, counted by tenant, subject and tool. */
function allowedCalls(proc, tenantIds) {
  const counts = new Map();
  for (const line of proc.lines) {
    if (!line.startsWith('{') || !line.includes('"msg":"audit"')) continue;
    let rec;
    try { rec = JSON.parse(line); } catch { continue; }
    if (rec.method !== 'tools/call' || rec.decision !== 'allow' || !tenantIds.has(rec.tenant)) continue;
    const key = `tenant ${rec.tenant}, subject ${rec.subject}, tool ${rec.tool}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/**
 * What a chained scenario proves only if its calls went through both
 * gateways: for each outer gateway, every tools/call it allowed on a
 * chained tenant was allowed by the inner gateway too, as many times, for
 * the same subject (the assertion's sub). Read from the audit lines once
 * every process has stopped (the gateway flushes its log every 100ms and
 * at exit). Returns the problems, empty when none.
 *
 * @param {import('./harness.mjs').Lab} lab
 * @returns {string[]}
 */
export function chainProblems(lab) {
  const problems = [];
  for (const outer of lab.procs.filter((p) => p.inner)) {
    const ids = new Set(outer.chainedTenants);
    const want = allowedCalls(outer, ids);
    const got = allowedCalls(outer.inner, ids);
    for (const key of new Set([...want.keys(), ...got.keys()])) {
      const w = want.get(key) ?? 0;
      const g = got.get(key) ?? 0;
      if (w !== g) problems.push(`${key}: allowed ${w} times by the outer gateway (${outer.name}), ${g} times by the inner one`);
    }
  }
  return problems;
}

/**
 * The skip reason of the upstream-* scenarios in chain mode: they configure
 * no todo tenant (their tenants are upstream tenants already), so chain
 * mode would run them unchanged.
 */
export const NO_TODO_TENANT = 'configures no todo tenant (its tenant is an upstream tenant already): chain mode would run it unchanged';
