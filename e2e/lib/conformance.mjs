// The MCP conformance suite (@modelcontextprotocol/conformance, a
// devDependency) run against an MCP server at a URL: its CLI's server mode,
//   conformance server --url URL --suite all --output-dir DIR
// which connects as an MCP client and runs every server scenario in turn,
// writing DIR/server-<scenario>-<timestamp>/checks.json for each (an array
// of checks, each SUCCESS, FAILURE, WARNING or INFO). As in the CLI's own
// summary, a scenario passes when none of its checks failed; a scenario
// that throws gets no checks.json (the CLI prints "Failed to run scenario")
// and fails. The CLI exits 1 when any scenario fails, so its exit code says
// nothing here: the results are read from the files.
//
// Also here: the server the suite's scenarios are written for, as the Go
// SDK ships it (below), and a loopback proxy that adds a bearer token to
// every request (the suite has no OAuth) and keeps each exchange, to look at
// what passed.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { eventually, freePort } from './harness.mjs';

const require = createRequire(import.meta.url);
const LIB_DIR = dirname(fileURLToPath(import.meta.url));
const REPO_DIR = dirname(dirname(LIB_DIR));
const PACKAGE = '@modelcontextprotocol/conformance';
/** The version pinned in package.json. */
export const CONFORMANCE_VERSION = require(`${PACKAGE}/package.json`).version;
const cliOf = (pkg) => join(dirname(require.resolve(`${pkg}/package.json`)), require(`${pkg}/package.json`).bin.conformance);
const CLI = cliOf(PACKAGE);
/**
 * The suite's 0.2 line (conformance-next in package.json, an alias of the
 * same package): its requirement sets, --requirements 2025-11-25 and
 * 2026-07-28, list exactly the scenarios each protocol revision requires,
 * frozen at its release; 0.1.16 stops at 2025-11-25.
 */
export const CONFORMANCE_NEXT_VERSION = require('conformance-next/package.json').version;
export const CLI_NEXT = cliOf('conformance-next');

/**
 * Node 20 support: the CLI's single bundle imports fs.globSync (node 22)
 * at the top, for its tier-check command alone, so on node 20 it does not
 * even load. Preloaded into the CLI, this module gives that one import (from
 * the package's own files only) node:fs plus a globSync that throws if it
 * is ever called; nothing the server scenarios run calls it. Where node:fs
 * has globSync (node 22 and later) it is not used.
 */
const NODE20_PRELOAD = join(LIB_DIR, 'conformance-node20.mjs');

/**
 * The suite's server scenarios, in the CLI's order (`conformance list
 * --server`, "all": the active ones and the pending ones).
 */
export async function serverScenarios(lab, { timeoutMs = 15_000 } = {}) {
  const proc = await runCli(lab, ['list', '--server'], { name: 'conformance list', timeoutMs });
  return proc.lines.map((l) => /^\s+- (\S+)/.exec(l)?.[1]).filter(Boolean);
}

/**
 * Runs every server scenario against url; resolves with each scenario's
 * result: {scenario: {passed, checks, failures}}, passed when none of its
 * checks failed. name tells the runs apart in the logs and the output
 * directory.
 *
 * @returns {Promise<{results: Record<string, {passed: boolean, checks: any[], failures: string[]}>, ms: number, proc: any}>}
 */
export async function runServerSuite(lab, url, { name, scenarios, timeoutMs = 40_000, cli = CLI, select = ['--suite', 'all'] }) {
  const out = join(lab.dir, `conformance-${name}`);
  const start = Date.now();
  const proc = await runCli(lab, ['server', '--url', url, ...select, '--output-dir', out], { name: `conformance (${name})`, timeoutMs, cli });
  const ms = Date.now() - start;
  const dirs = existsSync(out) ? readdirSync(out) : [];
  // Without a list, the scenarios that ran (and left a directory).
  scenarios ??= [...new Set(dirs.map((d) => /^server-(.+)-\d{4}-\d\d-\d\dT/.exec(d)?.[1]).filter(Boolean))].sort();
  const results = {};
  for (const scenario of scenarios) {
    // server-<scenario>-<ISO timestamp with - for : and .>
    const re = new RegExp(`^server-${scenario.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-\\d{4}-\\d\\d-\\d\\dT`);
    const dir = dirs.find((d) => re.test(d));
    if (!dir) {
      results[scenario] = { passed: false, checks: [], failures: ['no checks.json: the scenario did not run to its end (see the CLI\'s log)'] };
      continue;
    }
    const checks = JSON.parse(readFileSync(join(out, dir, 'checks.json'), 'utf8'));
    const failures = checks.filter((c) => c.status === 'FAILURE').map((c) => `${c.id}: ${c.errorMessage ?? c.description}`);
    results[scenario] = { passed: failures.length === 0, checks, failures };
  }
  // The CLI's own summary ("✓ name: 2 passed, 0 failed") must agree.
  for (const line of proc.lines) {
    const m = /^([✓✗]) (\S+): \d+ passed, \d+ failed/.exec(line);
    if (m && results[m[2]] && (m[1] === '✓') !== results[m[2]].passed) {
      throw new Error(`conformance (${name}): the CLI says ${line}, its checks.json says ${results[m[2]].passed ? 'passed' : 'failed'}`);
    }
  }
  return { results, ms, proc };
}

/** The names of the scenarios that passed, sorted. */
export const passing = (results) => Object.keys(results).filter((s) => results[s].passed).sort();

/**
 * Runs the conformance CLI to its end as a process of the lab (killed after
 * timeoutMs): exit 0, or 1 when some scenario failed.
 */
async function runCli(lab, args, { name, timeoutMs, cli = CLI }) {
  const preload = 'globSync' in fs ? [] : ['--import', NODE20_PRELOAD];
  const child = spawn(process.execPath, [...preload, cli, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: lab.dir,
    // No proxy variables, no tokens: the suite talks to the URL it is given.
    env: { PATH: process.env.PATH, NO_COLOR: '1' },
  });
  const proc = lab.track(name, child);
  let timer;
  const timeout = new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs, 'timeout'); });
  const how = await Promise.race([proc.exited.then(() => 'exited'), timeout]);
  clearTimeout(timer);
  if (how === 'timeout') {
    await proc.stop();
    throw new Error(`${name}: not finished within ${timeoutMs}ms`);
  }
  if (proc.exitCode !== 0 && proc.exitCode !== 1) throw new Error(`${name}: exited ${proc.exitCode}\n${proc.log()}`);
  return proc;
}

/** The Go SDK version in the project's go.mod. */
export const GO_SDK_VERSION = /^\s*github\.com\/modelcontextprotocol\/go-sdk (v\S+)/m.exec(readFileSync(join(REPO_DIR, 'go.mod'), 'utf8'))?.[1];
const GO_SDK_SERVER_PKG = 'github.com/modelcontextprotocol/go-sdk/conformance/everything-server';

/**
 * The server the suite's scenarios are written for (test_simple_text,
 * test_sampling, test://static-text, …), as the MCP Go SDK ships it: its
 * module (the version in go.mod, which the project already depends on) has
 * conformance/everything-server, a main package that "mirrors the
 * TypeScript conformance server" of the suite's repository.
 *
 * Built into bin/e2e beside the gateway with the project's go and
 * -mod=readonly (go.mod and go.sum stay as they are; the module is in the
 * module cache after `go mod download`), unless CONFORMANCE_SERVER_BIN names
 * a binary already built. A few seconds once the gateway has been built;
 * about a minute with an empty build cache, hence its own timeout.
 */
export async function buildGoConformanceServer({ timeoutMs = 180_000 } = {}) {
  if (process.env.CONFORMANCE_SERVER_BIN) return process.env.CONFORMANCE_SERVER_BIN;
  const bin = join(REPO_DIR, 'bin', 'e2e', 'conformance-everything-server');
  const child = spawn(process.env.GO ?? 'go', ['build', '-mod=readonly', '-o', bin, GO_SDK_SERVER_PKG], { cwd: REPO_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  child.stderr.on('data', (c) => { out += c; });
  let timer;
  const code = await new Promise((resolve) => {
    timer = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } resolve('timeout'); }, timeoutMs);
    child.once('error', (err) => resolve(err.message));
    child.once('close', (c, signal) => resolve(c ?? signal));
  });
  clearTimeout(timer);
  if (code !== 0) throw new Error(`go build ${GO_SDK_SERVER_PKG} (pid ${child.pid}): ${code}\n${out}`);
  return bin;
}

/**
 * Starts the Go SDK's conformance server (bin: buildGoConformanceServer) as
 * the SDK's own script runs it, stateful (-stateless=false: sampling and
 * elicitation need a session), on a free loopback port; it serves MCP on
 * every path.
 */
export async function startGoConformanceServer(lab, bin, { name = 'go-sdk conformance server' } = {}) {
  const port = await freePort();
  const child = spawn(bin, [`-http=127.0.0.1:${port}`, '-stateless=false'], { stdio: ['ignore', 'pipe', 'pipe'], cwd: lab.dir, env: {} });
  const proc = lab.track(`${name} ${GO_SDK_VERSION} (port ${port})`, child);
  const url = `http://127.0.0.1:${port}/mcp`;
  // It logs before it listens: ready once it answers.
  await proc.waitForLine(/Conformance server listening at/);
  await eventually(`${name} answers`, async () => {
    if (!proc.running) throw new Error(`${name} exited (${proc.exitCode})`);
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return true;
  }, { timeoutMs: 10_000, intervalMs: 100 });
  return { proc, port, pid: proc.pid, url, stop: () => proc.stop() };
}

/**
 * A loopback HTTP proxy to target (http://host:port) that adds
 * "Authorization: Bearer <token>" to every request and passes the rest
 * through as it is: method, path, the Host header (the gateway finds a
 * tenant by host and path, so the tenant's resource URL names this proxy),
 * the other headers, and the bodies both ways, streamed (SSE answers come
 * event by event). Each exchange is kept (request line and headers, the
 * first 4 KiB of each body) in exchanges, to look at what went through.
 */
export class BearerProxy {
  constructor(target, token) {
    this.target = new URL(target);
    this.token = token;
    /** @type {{n: number, method: string, url: string, reqHeaders: object, reqBody: string, status?: number, resHeaders?: object, resBody: string, error?: string}[]} */
    this.exchanges = [];
    this.server = http.createServer((req, res) => this.forward(req, res));
    this.server.requestTimeout = 0; // long-lived SSE answers
  }

  async listen() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
    this.url = `http://127.0.0.1:${this.port}`;
    return this.url;
  }

  async close() {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }

  forward(req, res) {
    const ex = { n: this.exchanges.length + 1, method: req.method, url: req.url, reqHeaders: { ...req.headers }, reqBody: '', resBody: '' };
    this.exchanges.push(ex);
    const headers = {};
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const k = req.rawHeaders[i];
      if (/^(connection|keep-alive|proxy-connection|te|trailer|upgrade|authorization)$/i.test(k)) continue;
      headers[k] = headers[k] === undefined ? req.rawHeaders[i + 1] : [].concat(headers[k], req.rawHeaders[i + 1]);
    }
    headers.Authorization = `Bearer ${this.token}`;
    const up = http.request({
      host: this.target.hostname, port: this.target.port, method: req.method, path: req.url, headers, agent: false,
    });
    req.on('data', (c) => { if (ex.reqBody.length < 4096) ex.reqBody += c; });
    req.pipe(up);
    up.on('error', (err) => {
      ex.error = err.code ?? err.message;
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'bad_gateway', error_description: `bearer proxy: ${ex.error}` }));
      } else res.destroy();
    });
    up.on('response', (ur) => {
      ex.status = ur.statusCode;
      ex.resHeaders = { ...ur.headers };
      for (let i = 0; i < ur.rawHeaders.length; i += 2) {
        const k = ur.rawHeaders[i];
        if (/^(connection|keep-alive|transfer-encoding|trailer|upgrade)$/i.test(k)) continue;
        res.appendHeader(k, ur.rawHeaders[i + 1]);
      }
      res.writeHead(ur.statusCode, ur.statusMessage);
      res.flushHeaders();
      ur.on('data', (c) => { if (ex.resBody.length < 4096) ex.resBody += c; });
      ur.pipe(res);
      ur.on('close', () => { if (!ur.complete) res.destroy(); });
      ur.on('error', () => res.destroy());
    });
    res.on('close', () => { if (!res.writableFinished) up.destroy(); });
  }

  /** The exchanges as text, for a failure report. */
  report(filter = () => true) {
    return this.exchanges.filter(filter).map((e) => [
      `#${e.n} ${e.method} ${e.url} → ${e.status ?? e.error ?? '(no answer)'}`,
      `  request headers: ${JSON.stringify(Object.fromEntries(Object.entries(e.reqHeaders).filter(([k]) => k !== 'authorization')))}`,
      e.reqBody && `  request body: ${e.reqBody}`,
      e.resHeaders && `  response headers: ${JSON.stringify(e.resHeaders)}`,
      e.resBody && `  response body: ${e.resBody}`,
    ].filter(Boolean).join('\n')).join('\n');
  }
}
