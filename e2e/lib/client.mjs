// The reference MCP client of the end-to-end tests: the MCP TypeScript SDK's
// Client and StreamableHTTPClientTransport with an OAuthClientProvider of
// ours. The SDK runs the MCP authorization flow by itself (401 → protected
// resource metadata → authorization server metadata → dynamic client
// registration → authorization code + PKCE with `resource` → token → retry);
// the one step a person would do in a browser, signing in, is done by a
// headless "browser" that follows the authorization URL with a cookie jar and
// posts the login form.
//
// Plain JavaScript with JSDoc types, so that it runs with node alone.
import { randomBytes } from 'node:crypto';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

/** @typedef {import('@modelcontextprotocol/sdk/client/auth.js').OAuthClientProvider} OAuthClientProvider */
/** @typedef {import('@modelcontextprotocol/sdk/shared/auth.js').OAuthClientInformationMixed} OAuthClientInformationMixed */
/** @typedef {import('@modelcontextprotocol/sdk/shared/auth.js').OAuthTokens} OAuthTokens */

const HTTP_TIMEOUT_MS = 10_000;
const MAX_BROWSER_STEPS = 12;

/** Refuses any URL that is not on loopback: the tests never leave 127.0.0.1. */
function loopbackOnly(url) {
  const u = new URL(url);
  if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost') {
    throw new Error(`refusing to leave loopback: ${u.origin}`);
  }
  return u;
}

/**
 * A minimal cookie-keeping user agent for one person: enough for
 * node-oidc-provider's session and interaction cookies on one host.
 */
export class HeadlessBrowser {
  /** @param {{login: string, password: string}} credentials */
  constructor(credentials) {
    this.credentials = credentials;
    /** @type {Map<string, string>} */
    this.cookies = new Map();
    /** Every URL visited, for error messages. */
    this.trail = [];
  }

  cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  keepCookies(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => {
        const [k, v = ''] = a.trim().split('=');
        return (k.toLowerCase() === 'max-age' && Number(v) <= 0)
          || (k.toLowerCase() === 'expires' && Date.parse(v) < Date.now());
      });
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async request(url, init = {}) {
    const u = loopbackOnly(url);
    this.trail.push(`${init.method ?? 'GET'} ${u.pathname}`);
    const headers = new Headers(init.headers);
    if (this.cookies.size) headers.set('cookie', this.cookieHeader());
    const res = await fetch(u, { ...init, headers, redirect: 'manual', signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    this.keepCookies(res);
    return res;
  }

  /**
   * Follows an authorization URL through login and consent until the
   * authorization server redirects to redirectUrl, and returns the
   * authorization response's parameters.
   *
   * @param {URL} authorizationUrl
   * @param {string} redirectUrl
   * @returns {Promise<URLSearchParams>}
   */
  async authorize(authorizationUrl, redirectUrl) {
    let res = await this.request(authorizationUrl);
    let url = new URL(authorizationUrl);
    let posted = false;
    for (let step = 0; step < MAX_BROWSER_STEPS; step++) {
      if (res.status >= 300 && res.status < 400) {
        await res.body?.cancel();
        const next = new URL(res.headers.get('location'), url);
        if (next.href.startsWith(redirectUrl)) return next.searchParams;
        url = next;
        res = await this.request(url);
        continue;
      }
      const body = await res.text();
      const form = /<form[^>]*method="post"[^>]*action="([^"]+)"/i.exec(body);
      if (res.ok && form && /name="login"/.test(body) && /name="password"/.test(body)) {
        if (posted) throw new Error(`signing in again after posting the form: ${this.describe(res, body)}`);
        posted = true;
        url = new URL(form[1].replaceAll('&amp;', '&'), url);
        res = await this.request(url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ login: this.credentials.login, password: this.credentials.password }),
        });
        continue;
      }
      throw new Error(`authorization did not reach the redirect URI: ${this.describe(res, body)}`);
    }
    throw new Error(`authorization took more than ${MAX_BROWSER_STEPS} steps: ${this.trail.join(' → ')}`);
  }

  describe(res, body) {
    const text = body.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);
    return `${res.status} ${text} (after ${this.trail.join(' → ')})`;
  }
}

/**
 * Our OAuthClientProvider: a public client (PKCE, no secret) registered
 * dynamically, with everything kept in memory, whose "redirect to the
 * authorization server" is the headless browser signing in.
 *
 * @implements {OAuthClientProvider}
 */
export class HeadlessOAuthProvider {
  /**
   * @param {{login: string, password: string}} credentials
   * @param {{clientName?: string, browser?: HeadlessBrowser}} [opts] browser: share a
   *   sign-in session with another provider (one provider per MCP server, as
   *   the SDK expects: it keeps that server's discovery state)
   */
  constructor(credentials, opts = {}) {
    this.browser = opts.browser ?? new HeadlessBrowser(credentials);
    this.clientName = opts.clientName ?? 'todo-gateway e2e client';
    // Never visited: the browser stops at the redirect and hands over the code.
    this._redirectUrl = 'http://127.0.0.1:1/callback';
    /** @type {OAuthClientInformationMixed|undefined} */
    this._client = undefined;
    /** @type {OAuthTokens|undefined} */
    this._tokens = undefined;
    this._verifier = undefined;
    this._state = undefined;
    this._discovery = undefined;
    /** @type {string|undefined} the authorization code waiting for finishAuth */
    this.pendingCode = undefined;
    /** Counters the tests assert on. */
    this.stats = { registrations: 0, authorizations: 0, tokens: 0 };
    /** The last authorization URL, to assert on its parameters. */
    this.lastAuthorizationUrl = undefined;
  }

  get redirectUrl() { return this._redirectUrl; }

  get clientMetadata() {
    return {
      client_name: this.clientName,
      redirect_uris: [this._redirectUrl],
      // refresh_token: a client that asks for offline_access gets a refresh token.
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    };
  }

  state() {
    this._state = randomBytes(16).toString('base64url');
    return this._state;
  }

  clientInformation() { return this._client; }

  saveClientInformation(info) {
    if (!this._client || this._client.client_id !== info.client_id) this.stats.registrations++;
    this._client = info;
  }

  tokens() { return this._tokens; }

  saveTokens(tokens) {
    this.stats.tokens++;
    this._tokens = tokens;
  }

  saveCodeVerifier(v) { this._verifier = v; }

  codeVerifier() {
    if (!this._verifier) throw new Error('no code verifier saved');
    return this._verifier;
  }

  saveDiscoveryState(s) { this._discovery = s; }

  discoveryState() { return this._discovery; }

  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'client') this._client = undefined;
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this._verifier = undefined;
    if (scope === 'all' || scope === 'discovery') this._discovery = undefined;
  }

  /** @param {URL} authorizationUrl */
  async redirectToAuthorization(authorizationUrl) {
    this.stats.authorizations++;
    this.lastAuthorizationUrl = new URL(authorizationUrl);
    const params = await this.browser.authorize(authorizationUrl, this._redirectUrl);
    if (params.has('error')) {
      throw new Error(`authorization failed: ${params.get('error')}: ${params.get('error_description') ?? ''}`);
    }
    if (params.get('state') !== this._state) throw new Error('authorization response has the wrong state');
    // RFC 9207: the response names its issuer; it must be the server we asked.
    const iss = params.get('iss');
    const expected = this._discovery?.authorizationServerMetadata?.issuer;
    if (iss && expected && iss !== expected) throw new Error(`authorization response from ${iss}, expected ${expected}`);
    this.pendingCode = params.get('code') ?? undefined;
    if (!this.pendingCode) throw new Error('authorization response has no code');
  }

  /** The authorization code the browser brought back, once. */
  takeCode() {
    const c = this.pendingCode;
    this.pendingCode = undefined;
    return c;
  }

  get accessToken() { return this._tokens?.access_token; }
}

/**
 * An MCP session with one todo server as one person, that completes the
 * authorization flow whenever the SDK asks for a redirect: at connect (401)
 * and on a step-up (403 insufficient_scope).
 */
export class TodoClient {
  /**
   * @param {string} serverUrl the tenant's resource URL
   * @param {HeadlessOAuthProvider} auth
   * @param {{capabilities?: object, configure?: (client: Client) => void, fetch?: typeof fetch}} [opts]
   *   capabilities: what the client declares (sampling, elicitation, ...);
   *   configure: sets request handlers on each new Client (connect may make
   *   more than one); fetch: the transport's (a client's instrumentation)
   */
  constructor(serverUrl, auth, opts = {}) {
    this.serverUrl = new URL(serverUrl);
    this.auth = auth;
    this.capabilities = opts.capabilities;
    this.configure = opts.configure;
    this.fetch = opts.fetch;
    this.client = undefined;
    this.transport = undefined;
  }

  newTransport() {
    return new StreamableHTTPClientTransport(this.serverUrl, { authProvider: this.auth, ...(this.fetch ? { fetch: this.fetch } : {}) });
  }

  /** Connects, running the authorization flow when the server asks for it. */
  async connect() {
    for (let attempt = 0; attempt < 3; attempt++) {
      this.client = new Client({ name: 'todo-gateway-e2e', version: '1.0.0' },
        this.capabilities ? { capabilities: this.capabilities } : undefined);
      this.configure?.(this.client);
      this.transport = this.newTransport();
      try {
        await this.client.connect(this.transport);
        return this;
      } catch (err) {
        await this.client.close().catch(() => {});
        if (!(err instanceof UnauthorizedError) || !this.auth.pendingCode) throw err;
        // What a redirect back to the client would trigger.
        await this.transport.finishAuth(this.auth.takeCode());
      }
    }
    throw new Error('could not connect after authorizing twice');
  }

  /**
   * Runs request (a call of this.client); when it needed a new
   * authorization (step-up), the authorization is finished and the request
   * is sent again, once.
   *
   * @template T
   * @param {() => Promise<T>} request
   * @returns {Promise<T>}
   */
  async withStepUp(request) {
    try {
      return await request();
    } catch (err) {
      if (!(err instanceof UnauthorizedError) || !this.auth.pendingCode) throw err;
      await this.transport.finishAuth(this.auth.takeCode());
      return await request();
    }
  }

  /**
   * Calls a tool, with a step-up when the call needs one (withStepUp).
   * options are the SDK's request options (onprogress, timeout, ...).
   */
  async call(name, args = {}, options = {}) {
    return this.withStepUp(() => this.client.callTool({ name, arguments: args }, undefined, { timeout: HTTP_TIMEOUT_MS, ...options }));
  }

  /** Calls a tool and returns its JSON result; a tool error throws. */
  async json(name, args = {}) {
    const res = await this.call(name, args);
    const text = res.content?.[0]?.text;
    if (res.isError) throw Object.assign(new Error(`${name} failed: ${text}`), { toolError: text });
    return res.structuredContent ?? JSON.parse(text);
  }

  async close() {
    await this.client?.close().catch(() => {});
  }
}

/** Connects to serverUrl as the given user, through the whole OAuth flow. */
export async function connectAs(serverUrl, credentials, opts = {}) {
  const auth = new HeadlessOAuthProvider(credentials, opts);
  return new TodoClient(serverUrl, auth, { fetch: opts.fetch }).connect();
}
