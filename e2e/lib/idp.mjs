// node-oidc-provider configured as the authorization server of the todo
// gateway's end-to-end tests and demo, in two shapes:
//
//   logto  mounted under /oidc (issuer http://127.0.0.1:PORT/oidc), resource
//          indicators, RFC 9068 JWT access tokens (typ at+jwt, ES384), open
//          dynamic client registration, PKCE required: the way Logto looks.
//   oauth  a plain OAuth 2.0 server at the root issuing opaque access tokens
//          for one resource, verified by the gateway through RFC 7662
//          introspection with its own client.
//
// Both shapes allow client credentials (a static machine-to-machine client),
// token revocation and introspection, and complete login and consent without
// a browser: the login page is a plain HTML form, and consent is granted in
// code from the user's roles, as Logto's RBAC does.
import { createServer } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

import { Store } from './adapter.mjs';
import {
  GATEWAY_CLIENT_ID, GROUPS, M2M_CLIENT_ID, ROLES, SIGN_OUT_BUTTON, TODO_SCOPES, USERS,
} from './accounts.mjs';

export { TODO_SCOPES, ROLES, GROUPS, USERS, GATEWAY_CLIENT_ID, M2M_CLIENT_ID };

const SHAPES = {
  logto: { mount: '/oidc', alg: 'ES384', format: 'jwt' },
  oauth: { mount: '', alg: 'ES256', format: 'opaque' },
};

/**
 * Loads the signing key from keysFile, or generates one (and writes it there
 * when a file is named). rotate forces a new key.
 */
async function signingKeys(alg, keysFile, rotate) {
  if (keysFile && !rotate) {
    try {
      return JSON.parse(readFileSync(keysFile, 'utf8'));
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
    }
  }
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  jwk.kid = `${alg.toLowerCase()}-${randomBytes(6).toString('hex')}`;
  jwk.alg = alg;
  jwk.use = 'sig';
  const jwks = { keys: [jwk] };
  if (keysFile) writeFileSync(keysFile, JSON.stringify(jwks), { mode: 0o600 });
  return jwks;
}

function html(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body>${body}</body></html>`;
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

function originOf(url) {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

function safeEqual(a, b) {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(c);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/**
 * Starts the provider.
 *
 * @param {object} o
 * @param {'logto'|'oauth'} o.shape
 * @param {number} o.port           TCP port on 127.0.0.1
 * @param {string[]} o.resources    resource indicators (the tenants' resource URLs) it issues tokens for
 * @param {string} o.gatewaySecret  secret of the gateway's introspection client
 * @param {string} o.m2mSecret      secret of the machine-to-machine client
 * @param {string} [o.keysFile]     where the signing key is kept across restarts
 * @param {boolean} [o.rotateKeys]  start with a new signing key
 * @param {string} [o.stateFile]    where clients, sessions, grants and tokens are kept across restarts
 * @param {number} [o.accessTokenTTL] seconds, default 3600
 * @param {boolean} [o.groups]      grant by group, as Dex does: users get no todo
 *                                  scope, and access tokens carry a "groups" claim
 *                                  with the group of each of their roles (GROUPS)
 * @param {boolean} [o.oidcScopesInAccessTokens] access tokens also carry the
 *                                  granted OpenID scopes (openid, offline_access),
 *                                  as Keycloak's and Auth0's do
 * @param {(line: string) => void} [o.log]
 */
export async function startIdp(o) {
  const shape = SHAPES[o.shape];
  if (!shape) throw new Error(`unknown shape ${o.shape}: use logto or oauth`);
  if (!o.resources?.length) throw new Error('at least one resource is required');
  if (o.shape === 'oauth' && o.resources.length !== 1) throw new Error('the oauth shape issues tokens for exactly one resource');
  const log = o.log ?? ((line) => process.stdout.write(`${line}\n`));
  const origin = `http://127.0.0.1:${o.port}`;
  const issuer = origin + shape.mount;
  const store = new Store(o.stateFile);
  if (!store.meta.cookieKey) store.setMeta('cookieKey', randomBytes(32).toString('base64url'));
  const jwks = await signingKeys(shape.alg, o.keysFile, o.rotateKeys);
  const resources = new Set(o.resources);
  // Role changes made while running (the step-up scenario grants a role).
  const roles = new Map(Object.entries(USERS).map(([id, u]) => [id, [...u.roles]]));
  // The OpenID scopes a resource's tokens may carry besides its own.
  const oidcScopes = o.oidcScopesInAccessTokens ? ['openid', 'offline_access'] : [];
  const scopesOf = (accountId) => new Set([...oidcScopes, ...(o.groups ? [] : (roles.get(accountId) ?? []).flatMap((r) => ROLES[r] ?? []))]);
  const groupsOf = (accountId) => (roles.get(accountId) ?? []).flatMap((r) => (GROUPS[r] ? [GROUPS[r]] : []));

  const provider = new Provider(issuer, {
    adapter: store.adapter(),
    clients: [
      {
        client_id: GATEWAY_CLIENT_ID,
        client_secret: o.gatewaySecret,
        client_name: 'todo gateway (introspection)',
        grant_types: [],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: M2M_CLIENT_ID,
        client_secret: o.m2mSecret,
        client_name: 'machine-to-machine todo client',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: TODO_SCOPES.join(' '),
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    clientDefaults: {
      id_token_signed_response_alg: shape.alg,
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
    cookies: { keys: [store.meta.cookieKey] },
    enabledJWA: { idTokenSigningAlgValues: [shape.alg] },
    jwks,
    scopes: ['openid', 'offline_access', ...TODO_SCOPES],
    claims: { openid: ['sub'], profile: ['name', 'preferred_username'] },
    pkce: { required: () => true },
    // Browser-based clients (MCP Inspector) may call the token endpoint from
    // the origin of one of their redirect URIs.
    clientBasedCORS: (ctx, origin, client) => origin !== 'null'
      && client.redirectUris.some((uri) => originOf(uri) === origin),
    ttl: {
      AccessToken: o.accessTokenTTL ?? 3600,
      AuthorizationCode: 60,
      ClientCredentials: o.accessTokenTTL ?? 3600,
      Grant: 24 * 3600,
      IdToken: 3600,
      Interaction: 600,
      Session: 24 * 3600,
    },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true, initialAccessToken: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // The gateway may introspect every token; any other client only its own.
        allowedPolicy: async (ctx, client, token) => client.clientId === GATEWAY_CLIENT_ID || token.clientId === client.clientId,
      },
      revocation: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId,
      },
      // Sign-out (end_session_endpoint): how a person switches users, since
      // the provider's session signs the next authorization in silently.
      // Plain pages like the login form, which load nothing from elsewhere.
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.type = 'html';
          ctx.body = html('Sign out', `<h1>Sign out of ${escapeHtml(ctx.host)}?</h1>${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">${SIGN_OUT_BUTTON}</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>`);
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.type = 'html';
          ctx.body = html('Signed out', '<h1>Signed out</h1><p>The next sign-in asks for a user and password.</p>');
        },
      },
      resourceIndicators: {
        enabled: true,
        // A plain OAuth server for one API gives its tokens that audience
        // even when the client names no resource.
        defaultResource: async (ctx, client, oneOf) => oneOf ?? (o.shape === 'oauth' ? o.resources[0] : undefined),
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, indicator) => {
          if (!resources.has(indicator)) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
          const info = {
            scope: [...oidcScopes, ...TODO_SCOPES].join(' '),
            audience: indicator,
            accessTokenTTL: o.accessTokenTTL ?? 3600,
            accessTokenFormat: shape.format,
          };
          if (shape.format === 'jwt') info.jwt = { sign: { alg: shape.alg } };
          return info;
        },
      },
    },
    // Every authorization goes through consent, where the scopes are computed
    // from the user's current roles (as Logto's RBAC does at each sign-in), so
    // a role granted later is picked up by the next authorization.
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId;
      return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
    },
    // In groups mode a user's access tokens say which groups they are in,
    // as read at issue time (a role granted later shows in the next token).
    extraTokenClaims: async (ctx, token) => (o.groups && token.accountId ? { groups: groupsOf(token.accountId) } : undefined),
    findAccount: async (ctx, id) => {
      const u = USERS[id];
      if (!u) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, name: u.name, preferred_username: id }) };
    },
    interactions: { url: async (ctx, interaction) => `${shape.mount}/interaction/${interaction.uid}` },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = html('error', `<h1>${escapeHtml(out.error)}</h1><p>${escapeHtml(out.error_description ?? '')}</p>`);
    },
  });
  provider.on('server_error', (ctx, err) => log(`server_error ${err.stack}`));
  for (const ev of ['authorization.error', 'grant.error', 'introspection.error', 'revocation.error', 'registration_create.error', 'discovery.error', 'jwks.error']) {
    provider.on(ev, (ctx, err) => log(`${ev} ${err.name}: ${err.message} ${err.error_description ?? ''}`));
  }
  provider.on('grant.success', (ctx) => log(`token issued to ${ctx.oidc.client?.clientId} (${ctx.oidc.params?.grant_type})`));
  provider.on('access_token.destroyed', (t) => log(`access token revoked (client ${t.clientId})`));

  const loginForm = (uid, error) => html('Sign in', `<h1>Sign in</h1>${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="${shape.mount}/interaction/${uid}/login">
<input name="login" autocomplete="username"><input name="password" type="password" autocomplete="current-password">
<button type="submit">Sign in</button></form>`);

  async function interaction(req, res, uid, action) {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new errors.InvalidRequest('interaction mismatch');
    const { prompt, params, session } = details;
    if (prompt.name === 'login') {
      if (req.method === 'POST' && action === 'login') {
        const form = await readForm(req);
        const id = form.get('login') ?? '';
        const u = Object.hasOwn(USERS, id) ? USERS[id] : undefined;
        if (!u || !safeEqual(u.password, form.get('password') ?? '')) {
          log(`login failed for ${JSON.stringify(id)}`);
          res.writeHead(401, { 'content-type': 'text/html; charset=utf-8' });
          return res.end(loginForm(uid, 'Wrong username or password'));
        }
        log(`login ${id}`);
        return provider.interactionFinished(req, res, { login: { accountId: id } }, { mergeWithLastSubmission: false });
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      return res.end(loginForm(uid));
    }
    if (prompt.name === 'consent') {
      const allowed = scopesOf(session.accountId);
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      const d = prompt.details;
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      const summary = [];
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
        const ok = scopes.filter((s) => allowed.has(s));
        const no = scopes.filter((s) => !allowed.has(s));
        if (ok.length) grant.addResourceScope(indicator, ok.join(' '));
        if (no.length) grant.rejectResourceScope(indicator, no.join(' '));
        summary.push(`${indicator}: granted [${ok.join(' ')}] rejected [${no.join(' ')}]`);
      }
      const grantId = await grant.save();
      log(`consent for ${session.accountId} / ${params.client_id}: ${summary.join('; ') || 'no resource scopes'}`);
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    throw new errors.InvalidRequest(`unsupported prompt ${prompt.name}`);
  }

  const callback = provider.callback();
  const interactionPath = new RegExp(`^${shape.mount}/interaction/([A-Za-z0-9_-]+)(?:/(login))?$`);
  const server = createServer(async (req, res) => {
    const started = Date.now();
    res.on('finish', () => log(`${req.method} ${req.originalUrl ?? req.url} ${res.statusCode} ${Date.now() - started}ms`));
    try {
      const path = new URL(req.url, origin).pathname;
      const m = interactionPath.exec(path);
      if (m) return await interaction(req, res, m[1], m[2]);
      if (path === `${shape.mount}/reg`) {
        // Open registration from browsers too, as Logto allows (node-oidc-provider
        // itself sends no CORS headers there).
        res.setHeader('access-control-allow-origin', '*');
        if (req.method === 'OPTIONS') {
          res.writeHead(204, {
            'access-control-allow-methods': 'POST',
            'access-control-allow-headers': 'content-type, authorization',
            'access-control-max-age': '600',
          });
          return res.end();
        }
      }
      if (shape.mount) {
        // Mounted like Logto: nothing outside the mount path, in particular
        // no discovery document at the root of the host.
        if (path !== shape.mount && !path.startsWith(`${shape.mount}/`)) {
          res.writeHead(404, { 'content-type': 'application/json' });
          return res.end('{"error":"not_found"}');
        }
        req.originalUrl = req.url;
        req.url = req.url.slice(shape.mount.length) || '/';
      }
      return callback(req, res);
    } catch (err) {
      log(`error ${req.method} ${req.url}: ${err.stack ?? err}`);
      if (!res.headersSent) {
        res.writeHead(err.statusCode ?? 500, { 'content-type': 'text/html; charset=utf-8' });
        res.end(html('error', `<h1>${escapeHtml(err.error ?? 'server_error')}</h1><p>${escapeHtml(err.error_description ?? err.message)}</p>`));
      } else {
        res.end();
      }
    }
  });
  server.keepAliveTimeout = 1000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, '127.0.0.1', resolve);
  });
  const kids = jwks.keys.map((k) => k.kid);
  log(`provider ${o.shape} ready: issuer ${issuer}, signing keys ${kids.join(', ')}, resources ${[...resources].join(', ')}`);
  return {
    issuer,
    provider,
    kids,
    setRoles(user, newRoles) {
      if (!roles.has(user)) throw new Error(`no user ${user}`);
      roles.set(user, [...newRoles]);
      log(`roles of ${user} are now [${newRoles.join(', ')}]`);
    },
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
