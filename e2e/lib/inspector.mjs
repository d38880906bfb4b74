// MCP Inspector 2.x as `make demo` tells people to use it and as the browser
// test (browser/inspector.test.mjs) drives it: the pinned version, how to
// start it, the words on its buttons, and the steps printed in the banner.
// The test clicks the labels below, so a change in the Inspector's UI fails
// the test and is fixed here, in the text people read too.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { SIGN_OUT_BUTTON, signOutUrl } from './accounts.mjs';

const E2E_DIR = dirname(dirname(fileURLToPath(import.meta.url)));

export const INSPECTOR_PACKAGE = '@modelcontextprotocol/inspector';

/** The Inspector version e2e/package.json pins (a devDependency, in the lock file). */
export function inspectorVersion() {
  const pkg = JSON.parse(readFileSync(join(E2E_DIR, 'package.json'), 'utf8'));
  const version = pkg.devDependencies?.[INSPECTOR_PACKAGE];
  if (!version) throw new Error(`e2e/package.json has no devDependency ${INSPECTOR_PACKAGE}`);
  return version;
}

/**
 * The command that starts it. The version is explicit: on Node 20, npx
 * without one picks the newest release whose engines allow Node 20, 0.15.0,
 * which cannot connect to a tenant at a path.
 */
export const inspectorCommand = () => `npx ${INSPECTOR_PACKAGE}@${inspectorVersion()}`;

/** The installed Inspector's launcher script (e2e/node_modules, from npm ci). */
export function inspectorLauncher() {
  const dir = join(E2E_DIR, 'node_modules', ...INSPECTOR_PACKAGE.split('/'));
  let pkg;
  try {
    pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  } catch (err) {
    throw new Error(`${INSPECTOR_PACKAGE} is not installed in e2e/node_modules (run npm ci in e2e/): ${err.message}`);
  }
  if (pkg.version !== inspectorVersion()) {
    throw new Error(`e2e/node_modules has ${INSPECTOR_PACKAGE} ${pkg.version}, package.json pins ${inspectorVersion()}: run npm ci in e2e/`);
  }
  return join(dir, pkg.bin['mcp-inspector']);
}

/** What the Inspector's web UI says, exactly; the test clicks these. */
export const UI = {
  addServers: 'Add Servers',
  addManually: '+ Add manually',
  addDialog: 'Add server',
  serverId: 'Server ID',
  transport: 'Transport',
  streamableHttp: 'streamable-http',
  url: 'URL',
  add: 'Add',
  connectSwitch: (id) => `Connect or disconnect "${id}"`,
  connected: 'Connected',
  authorized: 'Authorization complete',
  serversTab: 'Servers',
  toolsTab: 'Tools',
  /** The heading of the Tools tab's list, with the number of tools listed. */
  toolsHeading: /^Tools \(\d+\)$/,
  execute: 'Execute Tool',
  results: 'Results',
  connectionInfo: 'Connection Info',
  clearOAuth: 'Clear OAuth state and disconnect',
  stepUp: 'Additional permissions required',
  authorize: 'Authorize',
  notGranted: 'Additional permissions not granted',
};

/**
 * The banner's lines on connecting MCP Inspector to a tenant.
 *
 * @param {{resource: string, issuer: string, id: string}} o
 */
export function inspectorSteps({ resource, issuer, id }) {
  return [
    `Or with MCP Inspector ${inspectorVersion()} in a browser on this machine (it wants Node 22.19+; on Node 20 npm warns and it runs):`,
    `  ${inspectorCommand()}     # open the URL it prints: http://127.0.0.1:6274?MCP_INSPECTOR_API_TOKEN=…`,
    `  1. "${UI.addServers}" → "${UI.addManually}": ${UI.serverId} ${id}, ${UI.transport} "${UI.streamableHttp}", ${UI.url} ${resource} → "${UI.add}".`,
    `  2. Switch the ${id} card on: the provider's login page opens; sign in as a user above → "${UI.connected}".`,
    `  3. "${UI.toolsTab}" (top) → create-todo or get-todos → "${UI.execute}". The guest's create-todo opens`,
    `     "${UI.stepUp}" (create:todos): "Cancel", or "${UI.authorize}" → "${UI.notGranted}".`,
    `  Another user: sign out at ${signOutUrl(issuer)} ("${SIGN_OUT_BUTTON}"), then on the card`,
    `  "${UI.connectionInfo}" → "${UI.clearOAuth}", and switch it on again. (Inspector ${inspectorVersion()} stays at`,
    `  "Connecting…" once one run of it has both cleared OAuth state and done "${UI.authorize}": restart it.)`,
    '  The Inspector calls the gateway from its own server, not from the page: no http.allowed_origins needed.',
  ];
}
