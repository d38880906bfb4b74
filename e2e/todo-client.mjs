#!/usr/bin/env node
// A command-line MCP client for the todo gateway, built on the MCP
// TypeScript SDK: it runs the whole MCP authorization flow by itself and
// signs in headlessly with the given user's password (demo accounts only).
//
//   node todo-client.mjs <resource URL> <user> [list | create TEXT | delete ID]
//
// Example (with `make demo` running):
//   node e2e/todo-client.mjs http://127.0.0.1:3001/acme user create "Buy milk"
import { USERS } from './lib/accounts.mjs';
import { connectAs } from './lib/client.mjs';

const [url, login, command = 'list', ...rest] = process.argv.slice(2);
if (!url || !login || !['list', 'create', 'delete'].includes(command)) {
  process.stderr.write('usage: node todo-client.mjs <resource URL> <user> [list | create TEXT | delete ID]\n'
    + `users: ${Object.keys(USERS).join(', ')}\n`);
  process.exit(2);
}
const password = process.env.TODO_PASSWORD ?? USERS[login]?.password;
if (!password) {
  process.stderr.write(`unknown user ${login}; set TODO_PASSWORD for another account\n`);
  process.exit(2);
}

const client = await connectAs(url, { login, password }).catch((err) => {
  process.stderr.write(`cannot connect: ${err.message}\n`);
  process.exit(1);
});
try {
  const c = client.auth.lastAuthorizationUrl;
  process.stderr.write(`signed in as ${login} at ${c?.origin}${c?.pathname} (resource ${c?.searchParams.get('resource')}, `
    + `scope asked "${c?.searchParams.get('scope')}", granted "${client.auth.tokens()?.scope ?? ''}")\n`);
  const args = command === 'create' ? { content: rest.join(' ') } : command === 'delete' ? { id: rest[0] } : {};
  const tool = { list: 'get-todos', create: 'create-todo', delete: 'delete-todo' }[command];
  const res = await client.call(tool, args);
  process.stdout.write(`${JSON.stringify(res.structuredContent ?? res.content?.[0]?.text, null, 2)}\n`);
  process.exitCode = res.isError ? 1 : 0;
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  if (err.code === 403) {
    process.stderr.write(`the gateway answered 403 insufficient_scope; the SDK asked the provider for the missing scope `
      + `(scope "${client.auth.lastAuthorizationUrl?.searchParams.get('scope')}") and ${login}'s roles do not allow it\n`);
  }
  process.exitCode = 1;
} finally {
  await client.close();
}
