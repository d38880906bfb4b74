// MCP Inspector 2.x, as the README and the `make demo` banner tell a person
// to use it, driven through its real web UI in headless Chromium (Debian's
// chromium, through playwright-core) against `make demo`'s provider and
// gateway: add the tenant as a streamable-http server, connect (401 →
// metadata → dynamic client registration → the provider's login page →
// connected), then as admin, user and guest call create-todo and get-todos
// and read what the page shows. Then the same for the demo's upstream tenant
// (DEMO_UPSTREAM: the gateway in front of server-everything): the Tools tab
// lists, as user and as admin, exactly the tools the tenant's permissions let
// them call, and echo and get-env run through the gateway. Every process
// (provider, gateway, server-everything, Inspector, Chromium) runs on
// loopback on free ports and is stopped by its PID; the browser may fetch
// nothing outside loopback.
//
// Needs chromium (CHROMIUM_BIN, default chromium on the PATH) and
// e2e/node_modules from npm ci (the Inspector and playwright-core are
// devDependencies). `make inspector-test` runs it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

import { ROLES, SIGN_OUT_BUTTON, USERS, signOutUrl } from '../lib/accounts.mjs';
import { DEMO_UPSTREAM_TENANT, startDemo } from '../lib/demo.mjs';
import { EVERYTHING_PERMISSIONS } from '../lib/everything.mjs';
import { startChromium } from '../lib/chromium.mjs';
import { freePort } from '../lib/harness.mjs';
import { UI, inspectorLauncher, inspectorSteps } from '../lib/inspector.mjs';
import { scenario } from '../lib/scenario.mjs';

const UI_TIMEOUT_MS = 20_000;
const START_TIMEOUT_MS = 30_000;

/** The upstream tenant's tools login may call: those whose scopes their roles all grant, by name. */
const mayCall = (login) => {
  const scopes = new Set(USERS[login].roles.flatMap((r) => ROLES[r]));
  return Object.entries(EVERYTHING_PERMISSIONS.tools).filter(([, need]) => need.every((x) => scopes.has(x))).map(([tool]) => tool).sort();
};

scenario('MCP Inspector 2.x in Chromium: connect through the provider\'s login page; admin, user and guest; an upstream tenant\'s tools per role', async (lab, t) => {
  const { idp, everything } = await startDemo(lab, { upstream: true });
  const resource = lab.resource('acme');

  // The sign-out page the banner names is the provider's own.
  const md = await idp.metadata();
  assert.equal(md.end_session_endpoint, signOutUrl(idp.issuer), 'the banner names the end_session_endpoint');

  const browser = await startChromium(lab);
  const sessions = [];
  /** A fresh Inspector process, and a browser window (no cookies) on it with the tenant id (acme) added. */
  const openInspector = async (name, id = 'acme') => {
    const s = new InspectorSession(lab, name, await startInspector(lab, name), idp, { id, url: lab.resource(id) });
    sessions.push(s);
    await s.open(browser);
    return s;
  };

  try {
    // Admin, the first to connect (dynamic client registration), creates.
    const one = await openInspector('inspector');
    await one.signIn('admin', { first: true });
    const adminTodo = await one.callTool('create-todo', { content: 'Milk (admin, from Inspector)' });
    assert.equal(adminTodo.ownerId, 'admin');
    assert.equal(adminTodo.content, 'Milk (admin, from Inspector)');

    // User creates, and sees only their own todo, not the admin's.
    await one.signIn('user');
    const userTodo = await one.callTool('create-todo', { content: 'Bread (user, from Inspector)' });
    assert.equal(userTodo.ownerId, 'user');
    const userSees = await one.callTool('get-todos');
    assert.deepEqual(userSees.todos.map((x) => x.id), [userTodo.id], 'User sees only their own todo');
    await one.shot('user-get-todos');

    // Guest: create-todo is refused with 403 insufficient_scope, and the
    // Inspector asks for the missing scope ("Cancel" here; "Authorize" below).
    await one.signIn('guest');
    const stepUp = await one.createRefused('Not allowed (guest)');
    await stepUp.getByRole('button', { name: 'Cancel' }).click();
    await stepUp.waitFor({ state: 'hidden' });
    assert.deepEqual((await one.callTool('get-todos')).todos, [], 'nothing was created for the guest');

    // Admin again: sees every todo of the tenant, the guest's none.
    await one.signIn('admin');
    const adminSees = await one.callTool('get-todos');
    assert.deepEqual(
      adminSees.todos.map((x) => [x.id, x.ownerId]),
      [[adminTodo.id, 'admin'], [userTodo.id, 'user']],
      'Admin sees all todos, oldest first',
    );
    await one.shot('admin-get-todos');

    // The guest's "Authorize": the provider grants the guest nothing, and
    // the Inspector says so. Inspector 2.12 completes this step-up only in
    // a process where "Clear OAuth state and disconnect" has not been used
    // (after it, and after a step-up, the next authorization leaves the card
    // at "Connecting…" and sends nothing to the gateway), so on a fresh one.
    const two = await openInspector('inspector-2');
    await two.signIn('guest', { first: true });
    const again = await two.createRefused('Not allowed (guest, again)');
    await again.getByRole('button', { name: UI.authorize }).click();
    const notGranted = two.page.getByRole('alert').filter({ hasText: UI.notGranted });
    await notGranted.waitFor();
    assert.match(await notGranted.innerText(), /create:todos/);
    await two.shot('guest-not-granted');
    await closeNotifications(two.page);
    assert.deepEqual((await two.callTool('get-todos')).todos, [], 'still nothing for the guest');

    // The upstream tenant, on an Inspector of its own, through the same
    // OAuth flow: tools/list comes back filtered to what the signed-in user
    // may call. (The other lists the Inspector asks for on connecting,
    // resources, prompts and tasks, need read:todos: the user's get 403
    // insufficient_scope, and the Inspector connects all the same.)
    const up = await openInspector('inspector-everything', DEMO_UPSTREAM_TENANT);
    await up.signIn('user', { first: true });
    const userTools = await up.toolNames('echo');
    assert.deepEqual(userTools, mayCall('user'), 'User: the tools that need no scope or create:todos');
    assert.ok(userTools.includes('echo') && !userTools.includes('get-env'), `User sees echo, not get-env: ${userTools.join(', ')}`);
    await up.shot('user-tools');
    assert.equal(await up.callToolText('echo', { message: 'hello from Inspector' }), 'Echo: hello from Inspector');
    await up.shot('user-echo');

    // Admin: get-env (delete:todos) too, and it runs upstream; still none
    // of server-everything's tools the tenant does not list (get-sum, ...).
    await up.signIn('admin');
    const adminTools = await up.toolNames('get-env');
    assert.deepEqual(adminTools, mayCall('admin'), 'Admin: every tool the tenant lists, nothing else');
    assert.ok(!adminTools.includes('get-sum'), 'a tool the tenant does not list is nobody\'s');
    const env = await up.callTool('get-env');
    assert.equal(env.PORT, String(everything.port), 'get-env printed server-everything\'s own environment');
    await up.shot('admin-get-env');

    for (const s of sessions) {
      // The page itself never called the gateway: the Inspector's server
      // did, so no browser Origin reached it (http.allowed_origins stays empty).
      assert.deepEqual(s.seen.gateway, [], 'requests from the page to the gateway');
      assert.ok(s.seen.provider > 0, 'the page went to the provider (login page)');
      if (s.seen.blocked.length) t.diagnostic(`${s.name}: blocked outside loopback: ${[...new Set(s.seen.blocked)].join(' ')}`);
    }

    // What the banner tells people is what this test did.
    const steps = inspectorSteps({ resource, issuer: idp.issuer, id: 'acme' }).join('\n');
    for (const s of [resource, signOutUrl(idp.issuer), SIGN_OUT_BUTTON, UI.addManually, UI.streamableHttp,
      UI.execute, UI.connectionInfo, UI.clearOAuth, UI.stepUp, UI.notGranted]) {
      assert.ok(steps.includes(s), `the banner's steps mention ${s}`);
    }
  } catch (err) {
    for (const s of sessions) await s.report();
    throw err;
  } finally {
    await browser.close().catch(() => {});
  }
}, { timeout: 240_000 });

/** One Inspector process and the browser window a person has open on it. */
class InspectorSession {
  /** server: the tenant it adds, {id, url}. */
  constructor(lab, name, inspector, idp, server) {
    Object.assign(this, { lab, name, inspector, idp, server });
    this.origin = new URL(inspector.url).origin;
    this.issuerOrigin = new URL(idp.issuer).origin;
    this.pageLog = [];
  }

  /** A browser context of its own (no cookies), the Inspector's page, the tenant added. */
  async open(browser) {
    this.context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    this.seen = watchRequests(this.context, this.lab.base);
    this.page = await this.context.newPage();
    this.page.setDefaultTimeout(UI_TIMEOUT_MS);
    this.page.on('console', (m) => this.pageLog.push(`${m.type()}: ${m.text()}`.slice(0, 500)));
    this.page.on('framenavigated', (f) => f === this.page.mainFrame() && this.pageLog.push(`navigated: ${f.url().slice(0, 200)}`));
    await this.page.goto(this.inspector.url);
    await addServer(this.page, this.server.id, this.server.url);
    await this.shot('added');
  }

  async shot(what) {
    const file = join(this.lab.dir, `${this.name}-${what}.png`);
    await this.page?.screenshot({ path: file }).catch(() => {});
    return file;
  }

  /**
   * Connects the tenant's card as login through the Inspector's OAuth flow.
   * Another user than the first: sign the provider's session out and clear
   * the Inspector's OAuth state first, as the banner says.
   */
  async signIn(login, { first = false } = {}) {
    const { page } = this;
    const { id } = this.server;
    if (!first) {
      await signOut(this.context, this.idp.issuer);
      await page.bringToFront();
      await tab(page, UI.serversTab).click();
      await card(page, id).getByRole('button', { name: UI.connectionInfo }).click();
      await page.getByRole('button', { name: UI.clearOAuth }).click();
      await card(page, id).getByText('Disconnected', { exact: true }).waitFor();
      await closeNotifications(page);
    }
    // The Inspector sends the tab to the tenant's authorization server.
    // A notification that appears just after closeNotifications can take
    // the forced click (seen about once in ten runs on a loaded machine:
    // no request reached the gateway); so while the server still shows
    // Disconnected, close the notifications and click once more.
    const atLogin = (u) => u.origin === this.issuerOrigin && u.pathname.startsWith('/oidc/interaction/');
    await page.getByLabel(UI.connectSwitch(id)).click({ force: true });
    try {
      await page.waitForURL(atLogin, { timeout: 10000 });
    } catch (err) {
      if (!(await card(page, id).getByText('Disconnected', { exact: true }).isVisible())) throw err;
      await closeNotifications(page);
      await page.getByLabel(UI.connectSwitch(id)).click({ force: true });
      await page.waitForURL(atLogin);
    }
    await page.locator('input[name=login]').fill(login);
    await page.locator('input[name=password]').fill(USERS[login].password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.origin === this.origin);
    await page.getByText(UI.authorized, { exact: true }).waitFor();
    await closeNotifications(page);
    await card(page, id).getByText(UI.connected, { exact: true }).waitFor();
    await this.shot(`connected-${login}`);
  }

  callTool(name, args) { return callTool(this.page, name, args); }

  callToolText(name, args) { return callToolText(this.page, name, args); }

  toolNames(shown) { return toolNames(this.page, shown); }

  /** create-todo without the scope: the Inspector's dialog that names it. */
  async createRefused(content) {
    await openTool(this.page, 'create-todo', { content });
    await this.page.getByRole('button', { name: UI.execute }).click();
    const dialog = this.page.getByRole('dialog', { name: UI.stepUp });
    await dialog.waitFor();
    assert.match(await dialog.innerText(), /create:todos/, 'the dialog names the missing scope');
    await this.shot('step-up');
    return dialog;
  }

  async report() {
    process.stderr.write(`${this.name}: the page's console and navigations:\n${this.pageLog.slice(-100).join('\n')}\n`);
    process.stderr.write(`${this.name}: screenshot when it failed: ${await this.shot('failed')} (E2E_KEEP=1 keeps it)\n`);
  }
}

/**
 * Starts the installed Inspector on a free loopback port with its state in
 * the lab's directory; resolves with its URL (with the API token), as it
 * prints it for a person to open.
 */
async function startInspector(lab, name) {
  const port = await freePort();
  const child = spawn(process.execPath, [inspectorLauncher()], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: lab.dir,
    env: {
      ...process.env,
      HOME: join(lab.dir, `${name}-home`),
      CLIENT_PORT: String(port),
      MCP_SANDBOX_PORT: '0',
      MCP_APP_ORIGIN_PORT: '0',
      MCP_AUTO_OPEN_ENABLED: 'false',
      MCP_LOG_FILE: join(lab.dir, `${name}.log`),
      MCP_INSPECTOR_SECRET_STORE: 'memory',
    },
  });
  const proc = lab.track(`${name} (port ${port})`, child);
  const line = await proc.waitForLine(/http:\/\/127\.0\.0\.1:\d+\/?\?MCP_INSPECTOR_API_TOKEN=[0-9a-f]+/, START_TIMEOUT_MS);
  const url = line.match(/http:\/\/127\.0\.0\.1:\d+\/?\?MCP_INSPECTOR_API_TOKEN=[0-9a-f]+/)[0];
  assert.equal(new URL(url).port, String(port));
  return { proc, url };
}

/** Starts headless Chromium on a free DevTools port and connects to it. */

/**
 * Lets the browser reach loopback only, and records the page's requests to
 * the gateway and to the provider.
 */
function watchRequests(context, gatewayBase) {
  const seen = { gateway: [], provider: 0, blocked: [] };
  const gatewayOrigin = new URL(gatewayBase).origin;
  context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
      seen.blocked.push(url.origin);
      return route.abort('blockedbyclient');
    }
    if (url.origin === gatewayOrigin) seen.gateway.push(`${route.request().method()} ${url.pathname}`);
    else if (url.pathname.startsWith('/oidc/')) seen.provider++;
    return route.continue();
  });
  return seen;
}

/** "Add Servers" → "+ Add manually" → a streamable-http server at url. */
async function addServer(page, id, url) {
  await page.getByRole('button', { name: UI.addServers }).click();
  await page.getByRole('menuitem', { name: UI.addManually }).click();
  const dialog = page.getByRole('dialog', { name: UI.addDialog });
  await dialog.getByLabel(UI.serverId).fill(id);
  await dialog.getByLabel(UI.transport).click();
  await page.getByRole('option', { name: UI.streamableHttp }).click();
  await dialog.getByLabel(UI.url).fill(url);
  await dialog.getByRole('button', { name: UI.add, exact: true }).click();
  await dialog.waitFor({ state: 'hidden' });
  await card(page, id).waitFor();
}

/** Servers or Tools, the switch at the top of the page once connected. */
function tab(page, name) {
  return page.locator('.mantine-SegmentedControl-root').getByText(name, { exact: true });
}

/** A server's card on the Servers tab. */
function card(page, id) {
  return page.locator('.mantine-Card-root', { has: page.getByLabel(UI.connectSwitch(id)) });
}

/** Signs the browser out of the provider on its sign-out page, in a tab of its own. */
async function signOut(context, issuer) {
  const tab = await context.newPage();
  try {
    await tab.goto(signOutUrl(issuer));
    await tab.getByRole('button', { name: SIGN_OUT_BUTTON }).click();
    await tab.getByText('Signed out').waitFor();
  } finally {
    await tab.close();
  }
}

/** Notifications sit over the bottom right of the page; close them so they hide nothing. */
async function closeNotifications(page) {
  for (const alert of await page.getByRole('alert').all()) {
    await alert.getByRole('button').first().click({ timeout: 2000 }).catch(() => {});
  }
}

/** The Tools tab's list of tools. */
function toolList(page) {
  return page.locator('.mantine-Card-root', { has: page.getByRole('heading', { name: UI.toolsHeading }) });
}

/**
 * A tool in the list, by its name: the item's last line (a tool with a
 * title, as server-everything's, shows the title above the name).
 */
function toolButton(page, name) {
  return toolList(page).getByRole('button').filter({ has: page.getByText(name, { exact: true }) });
}

/**
 * The names of the tools the Tools tab lists, sorted, once the tool shown
 * is among them (so not a list from before a reconnection).
 */
async function toolNames(page, shown) {
  await tab(page, UI.toolsTab).click();
  await toolButton(page, shown).waitFor();
  const names = await toolList(page).getByRole('button')
    .evaluateAll((items) => items.map((b) => [...b.querySelectorAll('p')].at(-1)?.textContent ?? b.textContent));
  const heading = await toolList(page).getByRole('heading', { name: UI.toolsHeading }).innerText();
  assert.equal(heading, `Tools (${names.length})`, 'the heading counts the tools listed');
  return names.sort();
}

/** The Tools tab, the tool selected, its form filled. */
async function openTool(page, name, args = {}) {
  await tab(page, UI.toolsTab).click();
  await toolButton(page, name).click();
  for (const [field, value] of Object.entries(args)) {
    await page.getByRole('textbox', { name: field, exact: true }).fill(value);
  }
}

/** Calls a tool through the form; returns the Results panel once it shows. */
async function executeTool(page, name, args = {}) {
  await openTool(page, name, args);
  const results = page.locator('.mantine-Card-root', { has: page.getByRole('heading', { name: UI.results, exact: true }) });
  await results.waitFor({ state: 'hidden' });
  await page.getByRole('button', { name: UI.execute }).click();
  return results;
}

/** Calls a tool whose result is plain text and returns it as the Results panel shows it. */
async function callToolText(page, name, args = {}) {
  const shown = (await executeTool(page, name, args)).locator('pre').first();
  await shown.waitFor();
  return shown.innerText();
}

/** Calls a tool through the form and returns the JSON the Results panel shows. */
async function callTool(page, name, args = {}) {
  const results = await executeTool(page, name, args);
  const editor = results.locator('.ace_editor').first();
  await editor.waitFor();
  // The panel is an Ace editor: its whole text, not only the lines on screen.
  const text = await editor.evaluate((el) => el.env?.editor?.getValue() ?? el.innerText);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${name}: the Results panel does not hold JSON: ${text.slice(0, 500)}`);
  }
}
