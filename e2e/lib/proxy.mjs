// The load balancer of make cluster: a small round-robin HTTP reverse proxy
// (node:http only) in front of several gateway instances.
//
// - The Host header and the path go through unchanged: the gateway routes by
//   both, and the tenants' resource URLs (the tokens' audience) name the
//   proxy's address, not an instance's.
// - Every end-to-end header goes through both ways (repeated ones such as
//   Set-Cookie included); the hop-by-hop ones of RFC 9110 §7.6.1 (Connection,
//   Keep-Alive, TE, Upgrade, … and those Connection names) concern one
//   connection only and are not forwarded. Every answer gets X-Served-By
//   naming the instance.
// - Bodies are streamed both ways (MCP's SSE answers included), never
//   buffered.
// - An instance is in rotation while its admin /readyz answers 200, checked
//   every second; a draining instance (SIGTERM with shutdown.drain) answers
//   503 there and leaves the rotation before it stops listening.
// - A request whose connection is refused (the instance died since the last
//   check; nothing was sent) goes to the next instance; the instance leaves
//   the rotation until /readyz answers 200 again.
// - No instance in rotation: 502 with a JSON body.
import http from 'node:http';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade']);
const CHECK_INTERVAL_MS = 1000;
const CHECK_TIMEOUT_MS = 900;

/**
 * The end-to-end headers of a message's rawHeaders as an object for
 * setHeader / http.request: the first spelling of each name, repeated
 * headers as arrays (sent as separate lines).
 */
function endToEnd(raw) {
  const named = new Set();
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].toLowerCase() === 'connection') {
      for (const t of raw[i + 1].split(',')) named.add(t.trim().toLowerCase());
    }
  }
  const out = {};
  const spelled = new Map();
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i].toLowerCase();
    if (HOP_BY_HOP.has(lower) || named.has(lower)) continue;
    const key = spelled.get(lower);
    if (key === undefined) {
      spelled.set(lower, raw[i]);
      out[raw[i]] = raw[i + 1];
    } else {
      out[key] = [].concat(out[key], raw[i + 1]);
    }
  }
  return out;
}

function jsonError(res, status, error, description, servedBy) {
  const body = JSON.stringify({ error, error_description: description });
  const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  if (servedBy) headers['x-served-by'] = servedBy;
  res.writeHead(status, headers);
  res.end(body);
}

export class RoundRobinProxy {
  /**
   * @param {{name: string, addr: string, admin: string}[]} backends
   *   addr and admin are host:port of an instance's listener and admin listener
   * @param {{log?: (line: string) => void}} [opts] log: rotation changes and proxy errors
   */
  constructor(backends, { log = () => {} } = {}) {
    this.backends = backends.map((b) => ({
      ...b, host: b.addr.split(':')[0], port: Number(b.addr.split(':')[1]),
      ready: false, why: 'not checked yet', checking: false, served: 0,
    }));
    this.log = log;
    this.next = 0;
    this.server = http.createServer((req, res) => this.forward(req, res, new Set()));
    // Long-lived SSE answers: no time limit on a request once its headers are in.
    this.server.requestTimeout = 0;
  }

  /** Listens on 127.0.0.1:port after a first round of checks. */
  async listen(port) {
    await Promise.all(this.backends.map((b) => this.check(b)));
    this.timer = setInterval(() => { for (const b of this.backends) this.check(b); }, CHECK_INTERVAL_MS);
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', resolve);
    });
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this.url;
  }

  async close() {
    clearInterval(this.timer);
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }

  setReady(b, ready, why) {
    if (b.ready !== ready) {
      this.log(ready ? `${b.name} in rotation (/readyz 200)` : `${b.name} out of rotation (${why})`);
    }
    b.ready = ready;
    b.why = why;
  }

  /** One GET of the instance's admin /readyz. */
  check(b) {
    if (b.checking) return Promise.resolve();
    b.checking = true;
    return new Promise((resolve) => {
      const done = (ready, why) => { b.checking = false; this.setReady(b, ready, why); resolve(); };
      const req = http.get(`http://${b.admin}/readyz`, { agent: false, timeout: CHECK_TIMEOUT_MS }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => { body += c; });
        res.on('end', () => {
          let reason = '';
          try { reason = JSON.parse(body).reason ?? ''; } catch { /* not JSON */ }
          done(res.statusCode === 200, `/readyz ${res.statusCode}${reason ? `: ${reason}` : ''}`);
        });
        res.on('error', (err) => done(false, `/readyz: ${err.code ?? err.message}`));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => done(false, `/readyz: ${err.code ?? err.message}`));
    });
  }

  /** The next instance in rotation not tried yet for this request. */
  pick(tried) {
    for (let i = 0; i < this.backends.length; i++) {
      const b = this.backends[(this.next + i) % this.backends.length];
      if (b.ready && !tried.has(b)) {
        this.next = (this.next + i + 1) % this.backends.length;
        return b;
      }
    }
    return undefined;
  }

  forward(req, res, tried) {
    const b = this.pick(tried);
    if (!b) {
      const why = tried.size ? 'no other gateway instance accepted the connection' : 'no gateway instance is ready';
      jsonError(res, 502, 'bad_gateway', why);
      req.resume();
      return;
    }
    tried.add(b);
    // A new connection per request: a refused connection then means that
    // nothing was sent, so the request may go to another instance.
    const up = http.request({
      host: b.host, port: b.port, method: req.method, path: req.url,
      headers: endToEnd(req.rawHeaders), agent: false,
    });
    let connected = false;
    up.on('socket', (socket) => {
      // The body waits for the connection: a refused one has consumed none of it.
      socket.once('connect', () => { connected = true; req.pipe(up); });
    });
    up.on('error', (err) => {
      if (!connected && err.code === 'ECONNREFUSED') {
        this.setReady(b, false, 'connection refused');
        this.forward(req, res, tried);
        return;
      }
      this.log(`${req.method} ${req.url} via ${b.name}: ${err.code ?? err.message}`);
      if (!res.headersSent) jsonError(res, 502, 'bad_gateway', `${b.name}: ${err.code ?? err.message}`, b.name);
      else res.destroy();
    });
    up.on('response', (ur) => {
      b.served++;
      for (const [k, v] of Object.entries(endToEnd(ur.rawHeaders))) res.setHeader(k, v);
      res.setHeader('X-Served-By', b.name);
      res.writeHead(ur.statusCode, ur.statusMessage);
      res.flushHeaders();
      ur.pipe(res);
      // The instance died in the middle of the answer: cut the client's too.
      ur.on('close', () => { if (!ur.complete) res.destroy(); });
      ur.on('error', () => res.destroy());
    });
    // The client went away: so does the request to the instance.
    res.on('close', () => { if (!res.writableFinished) up.destroy(); });
  }
}
