#!/usr/bin/env node
// `make demo`: the todo gateway with two tenants and a Logto-like
// authorization server (node-oidc-provider), all on 127.0.0.1, no account
// anywhere. Prints the users, the resource URLs and how to connect; stays up
// until Ctrl-C.
//
// Ports: DEMO_GATEWAY_PORT (default 3001) and DEMO_IDP_PORT (default 3002).
// DEMO_ALLOWED_ORIGINS: comma-separated browser origins for the gateway's
// http.allowed_origins (for a client that calls it from a web page; MCP
// Inspector 2.x does not). DEMO_QUIET=1 hides the processes' logs.
// DEMO_UPSTREAM=1 adds a third tenant, everything: an upstream tenant in
// front of @modelcontextprotocol/server-everything on a loopback port.
import { Lab } from './lib/harness.mjs';
import {
  allowedOriginsFrom, connectText, echoLogs, envFlag, onStopSignal, requirePortsFree, startDemo, upstreamText,
} from './lib/demo.mjs';

const gatewayPort = Number(process.env.DEMO_GATEWAY_PORT ?? 3001);
const idpPort = Number(process.env.DEMO_IDP_PORT ?? 3002);
const quiet = !!process.env.DEMO_QUIET;
const allowedOrigins = allowedOriginsFrom(process.env.DEMO_ALLOWED_ORIGINS);
const upstream = envFlag(process.env.DEMO_UPSTREAM);

await requirePortsFree([['DEMO_GATEWAY_PORT', gatewayPort], ['DEMO_IDP_PORT', idpPort]], 'make demo');

const lab = await Lab.create('demo', { gatewayPort, echo: echoLogs(quiet) });

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`\nstopping the gateway${upstream ? ', server-everything' : ''} and the provider…\n`);
  await lab.close();
  process.exit(code);
}
onStopSignal(stop);

try {
  const { idp, gateway, tenants, everything } = await startDemo(lab, { idpPort, allowedOrigins, upstream });
  gateway.exited.then(() => stopping || (process.stderr.write('the gateway exited\n'), stop(1)));
  idp.proc.exited.then(() => stopping || (process.stderr.write('the provider exited\n'), stop(1)));
  everything?.proc.exited.then(() => stopping || (process.stderr.write('server-everything exited\n'), stop(1)));

  process.stdout.write(connectText({
    title: 'Todo Gateway demo: everything on 127.0.0.1, nothing to sign up for. Ctrl-C stops it.',
    lab,
    idp,
    tenants,
    where: `the gateway http://127.0.0.1:${gatewayPort}`,
    after: [
      `Admin endpoints (private): http://${gateway.admin}/status  /metrics  /readyz  /healthz`,
      allowedOrigins
        ? `Browser origins allowed besides the gateway's own (http.allowed_origins, from DEMO_ALLOWED_ORIGINS): ${allowedOrigins.join(' ')}`
        : 'Browser origins allowed: only the gateway\'s own (DEMO_ALLOWED_ORIGINS=http://host:port,... adds some).',
      '',
      ...upstreamText(lab, everything),
    ],
    logs: quiet ? '' : `Logs of the provider [idp]${upstream ? ', server-everything' : ''} and the gateway [gateway] follow.`,
  }));
} catch (err) {
  process.stderr.write(`demo failed to start: ${err.message}\n${lab.report()}`);
  await lab.close();
  process.exit(1);
}
