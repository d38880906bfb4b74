// Preloaded (node --import) into the MCP conformance CLI on node 20 only
// (lib/conformance.mjs). The CLI's bundle imports globSync from fs, which
// node 22 added, for its tier-check command alone; on node 20 that import
// fails and the CLI does not start. A module resolution hook gives the
// package's own imports of fs (both versions the tests pin: the CLI, and
// conformance-next, a 0.2 alpha with the 2026-07-28 scenarios) a module that is node:fs plus a globSync that
// throws if it is ever called. Every other import resolves as usual.
import { register } from 'node:module';

const FS_WITH_GLOBSYNC = `data:text/javascript,${encodeURIComponent(`
export * from 'node:fs';
export { default } from 'node:fs';
export function globSync() { throw new Error('fs.globSync needs node 22 (conformance tier-check)'); }
`)}`;

const HOOKS = `data:text/javascript,${encodeURIComponent(`
const SHIM = ${JSON.stringify(FS_WITH_GLOBSYNC)};
export async function resolve(specifier, context, next) {
  if ((specifier === 'fs' || specifier === 'node:fs')
      && ['/node_modules/@modelcontextprotocol/conformance/', '/node_modules/conformance-next/'].some((dir) => context.parentURL?.includes(dir))) {
    return { url: SHIM, shortCircuit: true };
  }
  return next(specifier, context);
}
`)}`;

register(HOOKS);
