// The TypeScript client's trace continues through the gateway: the client
// propagates its trace context (W3C traceparent, with @opentelemetry/api
// and core's propagator) on every request the MCP SDK sends; the gateway,
// tracing (OTEL_EXPORTER_OTLP_ENDPOINT at a collector here that accepts
// the exports), serves the call in that trace: its access and audit lines
// name the client's trace id, and it exports its spans. Through two
// gateways (E2E_CHAIN=1) the inner one serves it in the same trace too,
// from the context the outer one's request carries.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';

import { context, trace, TraceFlags } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

import { credentials } from '../lib/accounts.mjs';
import { connectAs } from '../lib/client.mjs';
import { eventually } from '../lib/harness.mjs';
import { scenario } from '../lib/scenario.mjs';

scenario('tracing: the TypeScript client\'s trace continues through the gateway', async (lab) => {
  const exported = [];
  const collector = http.createServer((req, res) => {
    let bytes = 0;
    req.on('data', (c) => { bytes += c.length; });
    req.on('end', () => {
      exported.push({ path: req.url, bytes });
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      res.end();
    });
  });
  await new Promise((resolve) => collector.listen(0, '127.0.0.1', resolve));
  try {
    const resource = lab.resource('acme');
    const idp = await lab.startIdp({ shape: 'logto', resources: [resource] });
    const gw = await lab.startGateway([lab.logtoTenant('acme', idp)], {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collector.address().port}`, OTEL_BSP_SCHEDULE_DELAY: '50' },
    });

    // The client's trace, as an instrumented client has one.
    const propagator = new W3CTraceContextPropagator();
    const traceId = randomBytes(16).toString('hex');
    const active = trace.setSpanContext(context.active(), { traceId, spanId: randomBytes(8).toString('hex'), traceFlags: TraceFlags.SAMPLED });
    const tracedFetch = (url, init = {}) => {
      const headers = new Headers(init.headers);
      propagator.inject(active, headers, { set: (h, k, v) => h.set(k, v) });
      return fetch(url, { ...init, headers });
    };

    const admin = await connectAs(resource, credentials('admin'), { fetch: tracedFetch });
    try {
      const todo = await admin.json('create-todo', { content: 'traced' });
      assert.equal(todo.ownerId, 'admin');
    } finally {
      await admin.close();
    }
    const inTrace = (proc) => proc.lines.filter((l) => l.includes(`"trace_id":"${traceId}"`));
    await eventually('the audit line of the create in the client\'s trace', () => inTrace(gw).some((l) => l.includes('"msg":"audit"') && l.includes('"tool":"create-todo"')), { timeoutMs: 5000 });
    const access = inTrace(gw).filter((l) => l.includes('"msg":"access"'));
    assert.ok(access.length >= 2, `the gateway's access lines in the client's trace: ${access.join('\n')}`);
    if (gw.inner) {
      await eventually('the inner gateway\'s audit line in the client\'s trace', () => inTrace(gw.inner).some((l) => l.includes('"tool":"create-todo"')), { timeoutMs: 5000 });
    }
    await eventually('an export of spans', () => exported.some((e) => e.path === '/v1/traces' && e.bytes > 0), { timeoutMs: 5000 });
  } finally {
    await new Promise((resolve) => collector.close(resolve));
  }
});
