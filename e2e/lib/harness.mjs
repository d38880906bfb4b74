// The test bench: starts the gateway binary and node-oidc-provider as child
// processes on free loopback ports, keeps their logs, writes the gateway's
// configuration, and stops every process it started by its PID. A scenario
// that fails prints the logs of every process it started.
import { AssertionError } from 'node:assert';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { GATEWAY_CLIENT_ID, M2M_CLIENT_ID } from './accounts.mjs';
import { chainTenants } from './chain.mjs';

const E2E_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
const IDP_SCRIPT = join(E2E_DIR, 'idp.mjs');
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
const HTTP_TIMEOUT_MS = 10_000;
const MAX_LOG_LINES = 3000;

/** The gateway binary built by `make e2e`. */
export function gatewayBinary() {
  const bin = process.env.TODO_GATEWAY_BIN;
  if (!bin) {
    throw new Error('TODO_GATEWAY_BIN is not set: run `make e2e`, or build the gateway with '
      + '`GOTOOLCHAIN=go1.27.3 go build -o bin/e2e/todo-gateway ./cmd/todo-gateway` and set TODO_GATEWAY_BIN to its path');
  }
  // The gateway runs in the lab's directory: a relative path
  // (../bin/e2e/todo-gateway) is taken from where the tests were started.
  return bin.includes('/') ? resolve(bin) : bin;
}

/** Ports freePort has handed out in this process. */
const handedOut = new Set();

/**
 * A TCP port free on 127.0.0.1 right now, and never one this process was
 * given before: a port is chosen before the process that listens on it
 * starts, and the kernel may offer a port just released to the next
 * caller (seen in CI: a provider and a gateway given the same port).
 */
export async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const srv = createServer();
      srv.unref();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const { port } = srv.address();
        srv.close(() => resolve(port));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls fn until it returns a truthy value or timeoutMs passes; returns the
 * value, or throws with the last result for the message. An assertion that
 * fails inside fn fails at once: it states what must never happen meanwhile.
 */
export async function eventually(what, fn, { timeoutMs = 20_000, intervalMs = 250 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      if (err instanceof AssertionError) throw err;
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${timeoutMs}ms; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    }
    await sleep(intervalMs);
  }
}

/** A child process with its output kept for the failure report. */
class Proc {
  constructor(name, child, echo) {
    this.name = name;
    this.echo = echo;
    this.child = child;
    this.pid = child.pid;
    this.lines = [];
    this.exitCode = undefined;
    this.exited = new Promise((resolve) => {
      // 'close' comes after the last output line; 'error' when it could not start.
      child.once('close', (code, signal) => {
        if (this.exitCode === undefined) {
          this.exitCode = code ?? signal;
          this.record(`[exited: ${code ?? signal}]`);
        }
        resolve();
      });
      child.once('error', (err) => {
        this.exitCode ??= err.code ?? 'error';
        this.record(`[could not run: ${err.message}]`);
        resolve();
      });
    });
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop();
        for (const l of parts) this.record(l);
      });
      stream?.on('end', () => partial && this.record(partial));
    }
  }

  record(line) {
    this.echo?.(this, line);
    this.lines.push(line);
    if (this.lines.length > MAX_LOG_LINES) this.lines.splice(0, this.lines.length - MAX_LOG_LINES);
    for (const w of this.waiters ?? []) w(line);
  }

  /** Resolves with the first line matching re, rejects on exit or timeout. */
  waitForLine(re, timeoutMs = START_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      const hit = this.lines.find((l) => re.test(l));
      if (hit) return resolve(hit);
      this.waiters ??= new Set();
      const done = (fn, v) => {
        clearTimeout(timer);
        this.waiters.delete(onLine);
        fn(v);
      };
      const onLine = (l) => re.test(l) && done(resolve, l);
      const timer = setTimeout(() => done(reject, new Error(`${this.name}: no line matching ${re} within ${timeoutMs}ms`)), timeoutMs);
      this.waiters.add(onLine);
      this.exited.then(() => done(reject, new Error(`${this.name} exited (${this.exitCode}) before printing ${re}`)));
    });
  }

  get running() { return this.exitCode === undefined; }

  /** SIGTERM by PID, then SIGKILL if it does not exit in time. */
  async stop() {
    if (!this.running) return;
    try { process.kill(this.pid, 'SIGTERM'); } catch { /* already gone */ }
    let timer;
    const timeout = new Promise((resolve) => { timer = setTimeout(resolve, STOP_TIMEOUT_MS, 'timeout'); });
    const how = await Promise.race([this.exited.then(() => 'exited'), timeout]);
    clearTimeout(timer);
    if (how === 'timeout') {
      this.record('[did not stop on SIGTERM; killing]');
      try { process.kill(this.pid, 'SIGKILL'); } catch { /* already gone */ }
      await this.exited;
    }
  }

  log() { return this.lines.join('\n'); }
}

// Children must not outlive a test process that dies on an uncaught error.
const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
  }
});

/**
 * One scenario's processes, ports, secrets and temporary directory.
 */
export class Lab {
  /**
   * @param {string} name
   * @param {{echo?: (proc: Proc, line: string) => void, gatewayPort?: number, chain?: boolean}} [opts]
   *   echo: also show each log line as it comes (the demo); chain: serve
   *   every todo tenant through two gateways (lib/chain.mjs, E2E_CHAIN=1)
   */
  constructor(name, opts = {}) {
    this.name = name;
    this.echo = opts.echo;
    this.chain = !!opts.chain;
    /** @type {Proc[]} the inner gateways of chain mode, in the order started */
    this.innerGateways = [];
    this.dir = mkdtempSync(join(tmpdir(), 'todo-gateway-e2e-'));
    /** @type {Proc[]} every process started, in order */
    this.procs = [];
    this.secrets = {
      gateway: randomBytes(24).toString('base64url'),
      m2m: randomBytes(24).toString('base64url'),
    };
    this.gatewayPort = undefined;
  }

  static async create(name, opts = {}) {
    const lab = new Lab(name, opts);
    lab.gatewayPort = opts.gatewayPort ?? await freePort();
    return lab;
  }

  /** The gateway's base URL; tenants live at base + '/' + id. */
  get base() { return `http://127.0.0.1:${this.gatewayPort}`; }

  resource(id) { return `${this.base}/${id}`; }

  track(name, child) {
    const p = new Proc(name, child, this.echo);
    this.procs.push(p);
    live.add(p);
    p.exited.then(() => live.delete(p));
    return p;
  }

  /**
   * Starts node-oidc-provider (idp.mjs). Pass the same port, keys and state
   * file to "restart" it; rotateKeys gives it a new signing key.
   *
   * @returns {Promise<Idp>}
   */
  async startIdp({ name = 'idp', shape, port, resources, rotateKeys = false, persist = true, accessTokenTTL, groups = false, oidcScopesInAccessTokens = false, label } = {}) {
    port ??= await freePort();
    const args = [IDP_SCRIPT, '--shape', shape, '--port', String(port)];
    for (const r of resources) args.push('--resource', r);
    if (persist) args.push('--keys', join(this.dir, `${name}-keys.json`), '--state', join(this.dir, `${name}-state.json`));
    if (rotateKeys) args.push('--rotate-keys');
    if (accessTokenTTL) args.push('--access-token-ttl', String(accessTokenTTL));
    if (groups) args.push('--groups');
    if (oidcScopesInAccessTokens) args.push('--oidc-scopes-in-access-tokens');
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, IDP_GATEWAY_SECRET: this.secrets.gateway, IDP_M2M_SECRET: this.secrets.m2m },
    });
    const proc = this.track(label ?? `${name} (${shape}, port ${port})`, child);
    const ready = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${proc.name} not ready within ${START_TIMEOUT_MS}ms`)), START_TIMEOUT_MS);
      child.once('message', (m) => { clearTimeout(timer); resolve(m); });
      proc.exited.then(() => { clearTimeout(timer); reject(new Error(`${proc.name} exited (${proc.exitCode}) at start`)); });
    });
    return new Idp(proc, { name, shape, port, resources, groups, oidcScopesInAccessTokens, issuer: ready.issuer, kids: ready.kids, lab: this });
  }

  /**
   * Writes the gateway configuration and starts the gateway binary, by
   * default on the lab's port with a bbolt file in the lab's directory.
   * tenants are the configuration's tenant objects; port, adminPort, store,
   * shutdown and http are for other set-ups (see writeGatewayConfig).
   */
  async startGateway(tenants, {
    name = 'gateway', label, port = this.gatewayPort, adminPort = 0, store, shutdown, http, env,
  } = {}) {
    if (this.chain) return this.startChain(tenants, { name, label, port, adminPort, store, shutdown, http, env });
    const file = this.writeGatewayConfig(tenants, { name, port, adminPort, store, shutdown, http });
    return this.runGateway(file, { label: label ?? `${name} (port ${port})`, env });
  }

  /**
   * Chain mode's startGateway: the outer gateway on port with each todo
   * tenant turned into an upstream tenant (lib/chain.mjs), and an inner
   * gateway on a free loopback port serving those todo tenants with the
   * outer gateway as their issuer, its own bbolt file, admin listener and
   * the same http and shutdown blocks. Returns the outer gateway, as
   * startGateway does, with the inner one as its .inner (undefined when no
   * tenant is a todo tenant).
   */
  async startChain(tenants, { name, label, port, adminPort, store, shutdown, http, env }) {
    const innerPort = await freePort();
    const split = chainTenants(tenants, `http://127.0.0.1:${innerPort}`);
    const file = this.writeGatewayConfig(split.outer, { name, port, adminPort, store, shutdown, http });
    const outer = await this.runGateway(file, { label: `${label ?? `${name} (port ${port})`}, outer gateway of the chain`, env });
    if (split.inner.length) {
      // The outer gateway serves its assertion keys from now on; the inner
      // one fetches them at the first assertion it verifies.
      const innerName = `${name}-inner`;
      const innerFile = this.writeGatewayConfig(split.inner, {
        name: innerName,
        port: innerPort,
        adminPort: 0,
        store: { driver: 'bbolt', bbolt: { path: join(this.dir, `${innerName}-todos.db`) } },
        shutdown,
        http,
      });
      outer.chainedTenants = split.inner.map((t) => t.id);
      outer.inner = await this.runGateway(innerFile, { label: `${innerName} (port ${innerPort}), inner gateway of the chain: todo server of ${split.inner.map((t) => t.id).join(', ')}`, env });
      this.innerGateways.push(outer.inner);
    }
    return outer;
  }

  /**
   * Writes a gateway configuration file named name.json in the lab's
   * directory and returns its path. port and adminPort are the listeners'
   * (0: a free one, chosen by the gateway); store, shutdown and http are the
   * configuration's blocks (default: bbolt in the lab's directory; the
   * gateway's defaults for the others).
   */
  writeGatewayConfig(tenants, { name = 'gateway', port = this.gatewayPort, adminPort = 0, store, shutdown, http } = {}) {
    const config = {
      listen: `127.0.0.1:${port}`,
      // Port 0: gateways of scenarios running side by side must not collide.
      admin: { listen: `127.0.0.1:${adminPort}` },
      store: store ?? { driver: 'bbolt', bbolt: { path: join(this.dir, 'todos.db') } },
      ...(shutdown ? { shutdown } : {}),
      ...(http ? { http } : {}),
      tenants,
    };
    const file = join(this.dir, `${name}.json`);
    writeFileSync(file, JSON.stringify(config, null, 2));
    return file;
  }

  /**
   * Starts the gateway binary on a configuration file and waits until it
   * serves. Several instances may share one file whose listeners are on
   * port 0 (make cluster): the returned process knows the addresses it got,
   * as addr and admin (host:port), from its "serving" log line.
   */
  async runGateway(file, { label = 'gateway', env = {} } = {}) {
    const child = spawn(gatewayBinary(), ['serve', '--config', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: this.dir,
      env: { ...process.env, E2E_GATEWAY_SECRET: this.secrets.gateway, ...env },
    });
    const proc = this.track(label, child);
    await proc.waitForLine(/todo-gateway listening on/);
    // The log line comes on stderr, the one above on stdout: either may be first.
    const serving = JSON.parse(await proc.waitForLine(/^\{.*"msg":"serving"/));
    proc.addr = serving.addr;
    proc.admin = serving.admin;
    return proc;
  }

  /** A tenant verified with JWTs from a Logto-like issuer. */
  logtoTenant(id, idp, provider = {}) {
    return {
      id,
      resource: this.resource(id),
      resource_name: `${id} todos`,
      provider: { type: 'logto', issuer: idp.issuer, ...provider },
      audience: { strategy: 'resource' },
    };
  }

  /** A tenant verified by introspecting opaque tokens at a plain OAuth server. */
  oauthTenant(id, idp, introspection = {}) {
    return {
      id,
      resource: this.resource(id),
      resource_name: `${id} todos`,
      provider: {
        type: 'oauth',
        issuer: idp.issuer,
        token: 'introspection',
        introspection: { client_id: GATEWAY_CLIENT_ID, client_secret_env: 'E2E_GATEWAY_SECRET', ...introspection },
      },
      audience: { strategy: 'resource' },
    };
  }

  /** Every process's log, for a failure. */
  report() {
    const parts = [`\n===== logs of scenario "${this.name}" (work dir ${this.dir}) =====`];
    for (const p of this.procs) {
      parts.push(`----- ${p.name}, pid ${p.pid}${p.running ? '' : `, exited ${p.exitCode}`} -----`, p.log());
    }
    parts.push(`===== end of logs of "${this.name}" =====\n`);
    return parts.join('\n');
  }

  /** Stops every process still running, newest first, and removes the work dir. */
  async close({ keepDir = false } = {}) {
    for (const p of [...this.procs].reverse()) await p.stop();
    if (!keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A running node-oidc-provider and what the tests ask of it. */
export class Idp {
  constructor(proc, { name, shape, port, resources, groups, oidcScopesInAccessTokens, issuer, kids, lab }) {
    Object.assign(this, { proc, name, shape, port, resources, groups, oidcScopesInAccessTokens, issuer, kids, lab });
    this.acks = 0;
  }

  get pid() { return this.proc.pid; }

  async stop() { await this.proc.stop(); }

  /** Starts it again on the same port with the same state; rotateKeys for new keys. */
  restart({ rotateKeys = false } = {}) {
    return this.lab.startIdp({ name: this.name, shape: this.shape, port: this.port, resources: this.resources, groups: this.groups, oidcScopesInAccessTokens: this.oidcScopesInAccessTokens, rotateKeys });
  }

  async metadata() {
    const wk = this.shape === 'logto' ? '/.well-known/openid-configuration' : '/.well-known/oauth-authorization-server';
    const res = await fetch(this.issuer + wk, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    if (!res.ok) throw new Error(`metadata: ${res.status}`);
    return res.json();
  }

  /** Changes a user's roles in the running provider (an admin's action). */
  setRoles(user, roles) {
    const id = ++this.acks;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('setRoles: no answer')), 5000);
      const onMessage = (m) => {
        if (m?.type !== 'ack' || m.id !== id) return;
        clearTimeout(timer);
        this.proc.child.off('message', onMessage);
        m.error ? reject(new Error(m.error)) : resolve();
      };
      this.proc.child.on('message', onMessage);
      this.proc.child.send({ type: 'setRoles', id, user, roles });
    });
  }

  /** A client-credentials token of the machine-to-machine client. */
  async clientCredentials(resource, scope) {
    const md = await this.metadata();
    const body = new URLSearchParams({ grant_type: 'client_credentials', resource });
    if (scope) body.set('scope', scope);
    const res = await fetch(md.token_endpoint, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${M2M_CLIENT_ID}:${this.lab.secrets.m2m}`).toString('base64')}` },
      body,
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`client credentials: ${res.status} ${JSON.stringify(json)}`);
    return json;
  }

  /** Revokes a token as the public client it was issued to. */
  async revoke(token, clientId) {
    const md = await this.metadata();
    const res = await fetch(md.revocation_endpoint, {
      method: 'POST',
      body: new URLSearchParams({ token, token_type_hint: 'access_token', client_id: clientId }),
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    if (res.status !== 200) throw new Error(`revocation: ${res.status} ${await res.text()}`);
  }

  /** Introspects a token as the gateway would. */
  async introspect(token) {
    const md = await this.metadata();
    const res = await fetch(md.introspection_endpoint, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${GATEWAY_CLIENT_ID}:${this.lab.secrets.gateway}`).toString('base64')}` },
      body: new URLSearchParams({ token }),
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    return res.json();
  }
}

/**
 * Sends one JSON-RPC request to an MCP endpoint with a bearer token, without
 * the SDK, to look at the HTTP answer itself. A string message is sent as
 * it is, byte for byte (for bodies JSON.stringify cannot write, such as a
 * member that appears twice).
 */
export async function rpc(url, token, message, extraHeaders = {}) {
  const headers = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    ...extraHeaders,
  };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url, {
    method: 'POST',
    headers,
    body: typeof message === 'string' ? message : JSON.stringify({ jsonrpc: '2.0', id: 1, ...message }),
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, www: res.headers.get('www-authenticate') ?? '', text, json };
}

export const toolsList = { method: 'tools/list' };
export const toolCall = (name, args = {}) => ({ method: 'tools/call', params: { name, arguments: args } });

/** The structured result of a successful raw tools/call. */
export function toolResult(r) {
  if (r.status !== 200 || !r.json?.result) throw new Error(`tools/call: ${r.status} ${r.text}`);
  if (r.json.result.isError) throw new Error(`tool error: ${r.json.result.content?.[0]?.text}`);
  return r.json.result.structuredContent;
}
