// @modelcontextprotocol/server-everything, the MCP reference server that
// exercises every feature of the protocol, as the upstream MCP server of a
// gateway tenant: its Streamable HTTP mode (`dist/index.js streamableHttp`,
// endpoint /mcp, port from PORT) on a free loopback port, tracked by the Lab
// and stopped by PID like every other process.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort } from './harness.mjs';

const require = createRequire(import.meta.url);
const LIB_DIR = dirname(fileURLToPath(import.meta.url));
const PACKAGE = '@modelcontextprotocol/server-everything';
/** The version pinned in package.json; the tests depend on its tool names. */
export const EVERYTHING_VERSION = require(`${PACKAGE}/package.json`).version;
const ENTRY = join(dirname(require.resolve(`${PACKAGE}/package.json`)), 'dist', 'index.js');

/**
 * The tutorial's scopes on four of server-everything's tools (its names in
 * 2026.8.31), as an upstream tenant's server.permissions: echo for anyone
 * signed in; trigger-long-running-operation and trigger-sampling-request
 * (registered only for a client that declares sampling) for create:todos;
 * get-env, which prints the server's environment, for delete:todos (Admin);
 * every other method (resources, prompts, ...) for read:todos. Its other
 * tools are not listed, so nobody may call them. `make demo`'s everything
 * tenant (DEMO_UPSTREAM=1) and the browser test use it.
 */
export const EVERYTHING_PERMISSIONS = Object.freeze({
  tools: {
    echo: [],
    'trigger-long-running-operation': ['create:todos'],
    'trigger-sampling-request': ['create:todos'],
    'get-env': ['delete:todos'],
  },
  other_methods: ['read:todos'],
});

/**
 * Starts server-everything in its Streamable HTTP mode and waits until it
 * listens. It listens on every interface when given only a port, so it is
 * started with lib/listen-loopback.mjs preloaded, which makes that
 * 127.0.0.1. Its environment is PORT alone: its get-env tool prints it.
 *
 * @param {import('./harness.mjs').Lab} lab
 * @returns {Promise<{proc: any, port: number, url: string, pid: number, stop: () => Promise<void>}>}
 */
export async function startEverything(lab, { name = 'server-everything' } = {}) {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', join(LIB_DIR, 'listen-loopback.mjs'), ENTRY, 'streamableHttp'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: lab.dir,
    env: { PORT: String(port) },
  });
  const proc = lab.track(`${name} ${EVERYTHING_VERSION} (port ${port})`, child);
  await proc.waitForLine(/MCP Streamable HTTP Server listening on port \d+/);
  return { proc, port, pid: proc.pid, url: `http://127.0.0.1:${port}/mcp`, stop: () => proc.stop() };
}
