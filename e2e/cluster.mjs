#!/usr/bin/env node
// `make cluster`: the demo (demo.mjs) as a small cluster, all on 127.0.0.1:
// 3 etcd members, 3 gateway instances sharing them as their store, a
// round-robin proxy (lib/proxy.mjs, in this process) in front of the
// instances on the public port, and the Logto-like provider. Prints what to
// connect to, every PID and admin URL; stays up until Ctrl-C. Kill an
// instance or an etcd member by its PID to see the rest carry on: an exit is
// reported, nothing else stops until Ctrl-C.
//
// Ports: DEMO_GATEWAY_PORT (the proxy, default 3001) and DEMO_IDP_PORT
// (default 3002); the instances and etcd take free ports. ETCD_BIN is the
// etcd binary (default etcd on the PATH). DEMO_QUIET=1 hides the processes'
// logs (the proxy's rotation changes and exits are still shown).
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';

import { Lab } from './lib/harness.mjs';
import { connectText, echoLogs, requirePortsFree } from './lib/demo.mjs';
import { etcdBinary, startEtcdCluster } from './lib/etcd.mjs';
import { RoundRobinProxy } from './lib/proxy.mjs';

const proxyPort = Number(process.env.DEMO_GATEWAY_PORT ?? 3001);
const idpPort = Number(process.env.DEMO_IDP_PORT ?? 3002);
const quiet = !!process.env.DEMO_QUIET;
const INSTANCES = 3;
const MEMBERS = 3;
const PREFIX = 'todo-gateway/demo/';
const DRAIN = '2s';

const etcdBin = etcdBinary();
const version = spawnSync(etcdBin, ['--version'], { encoding: 'utf8' });
if (version.error || version.status !== 0) {
  process.stderr.write(`cluster: cannot run etcd (${etcdBin}): ${version.error?.message ?? version.stderr.trim()}\n`
    + 'install etcd 3.4 or newer (Debian: apt-get install -y etcd-server) or set ETCD_BIN to its path\n');
  process.exit(1);
}
const etcdVersion = /etcd Version: (\S+)/.exec(version.stdout)?.[1] ?? '?';

await requirePortsFree([['DEMO_GATEWAY_PORT', proxyPort], ['DEMO_IDP_PORT', idpPort]], 'make cluster');

const say = (line) => process.stdout.write(`[cluster] ${line}\n`);
let stopping = false;
const echo = echoLogs(quiet);
const lab = await Lab.create('cluster', {
  gatewayPort: proxyPort,
  // etcd's warnings about peers going away, once stopping: only noise.
  echo: echo && ((proc, line) => (stopping && proc.name.startsWith('etcd ') && !line.startsWith('[')) || echo(proc, line)),
});
let proxy;

async function stop(code) {
  if (stopping) {
    // A second Ctrl-C: SIGKILL by PID to every child still running.
    process.stdout.write('stopping at once\n');
    for (const p of lab.procs) {
      if (p.running) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    rmSync(lab.dir, { recursive: true, force: true });
    process.exit(130);
  }
  stopping = true;
  process.stdout.write('\nstopping the gateways (drain 2s), etcd, the provider and the proxy… (Ctrl-C again: at once)\n');
  // The gateways in parallel, by PID (Proc.stop: SIGTERM, SIGKILL after 5 s);
  // a process already gone is skipped.
  const running = (prefix) => lab.procs.filter((p) => p.name.startsWith(prefix));
  await Promise.all(running('gateway-').map((p) => p.stop()));
  // etcd one member at a time: a leader stopping hands its leadership to a
  // member still up at once, where with every member stopping at the same
  // time it waits for a transfer that cannot happen (then SIGKILL).
  for (const p of running('etcd ')) await p.stop();
  await lab.close(); // the provider, and the work directory
  await proxy?.close();
  process.exit(code);
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

/** Reports an exit that was not asked for; the rest keeps running. */
function watch(proc, what) {
  proc.exited.then(() => stopping || say(`${proc.name} (pid ${proc.pid}) exited (${proc.exitCode}); ${what}`));
}

try {
  const tenants = ['acme', 'globex'];
  const idp = await lab.startIdp({
    shape: 'logto', port: idpPort, resources: tenants.map((t) => lab.resource(t)), label: 'idp',
  });
  watch(idp.proc, 'no new tokens until Ctrl-C and a new start');

  const etcd = await startEtcdCluster(lab, { members: MEMBERS, bin: etcdBin });
  for (const m of etcd.members) watch(m.proc, 'the others go on while two of three are up');

  // One configuration file for every instance, as replicas share one: the
  // same configuration version in each /status. Port 0 for both listeners:
  // each instance gets its own and says which in its log.
  const file = lab.writeGatewayConfig(tenants.map((t) => lab.logtoTenant(t, idp)), {
    name: 'gateway',
    port: 0,
    adminPort: 0,
    store: { driver: 'etcd', etcd: { endpoints: etcd.endpoints, prefix: PREFIX } },
    shutdown: { drain: DRAIN },
  });
  const instances = await Promise.all(Array.from({ length: INSTANCES }, async (_, i) => {
    const name = `gateway-${i + 1}`;
    const proc = await lab.runGateway(file, { label: name });
    watch(proc, 'the proxy routes around it');
    return { name, proc, addr: proc.addr, admin: proc.admin };
  }));

  proxy = new RoundRobinProxy(instances, { log: (line) => process.stdout.write(`[proxy] ${line}\n`) });
  await proxy.listen(proxyPort);

  const pad = (s, n) => String(s).padEnd(n);
  process.stdout.write(connectText({
    title: 'Todo Gateway cluster: 3 gateways on 3 etcd members behind a proxy, on 127.0.0.1. Ctrl-C stops it.',
    lab,
    idp,
    tenants,
    where: `the proxy http://127.0.0.1:${proxyPort} (pid ${process.pid}, this process)`,
    after: [
      `Gateway instances behind the proxy (round robin over those whose /readyz answers 200, checked every second;`,
      '  each answer names its instance in X-Served-By; /status shows the configuration version and the store\'s health):',
      ...instances.map((g) => `  ${pad(g.name, 10)} pid ${pad(g.proc.pid, 8)} http://${pad(g.addr, 16)}  admin http://${g.admin}/status`),
      '',
      `etcd ${etcdVersion}, ${MEMBERS} members, the todos under the prefix ${PREFIX}:`,
      ...etcd.members.map((m) => `  ${pad(m.name, 10)} pid ${pad(m.proc.pid, 8)} ${m.client}`),
      '',
    ],
    hint: [
      'Kill an instance with kill PID (a PID above) and watch the proxy route around it:',
      `  kill ${instances[1].proc.pid}      # SIGTERM: /readyz answers 503 for ${DRAIN} (drain), then it stops`,
      `  kill -9 ${instances[2].proc.pid}   # a crash: refused connections go to the next instance`,
      `  curl -s -D - -o /dev/null ${lab.base}/.well-known/oauth-protected-resource/acme | grep -i x-served-by`,
      'An etcd member killed the same way leaves the other two a majority; /status names the store\'s health.',
      '',
    ],
    logs: quiet ? '' : 'Logs of the provider [idp], the gateways [gateway-N], etcd [etcd mN] (warnings) and the proxy [proxy] follow.',
  }));
} catch (err) {
  process.stderr.write(`cluster failed to start: ${err.message}\n${lab.report()}`);
  stopping = true;
  await Promise.all(lab.procs.map((p) => p.stop()));
  await lab.close();
  await proxy?.close();
  process.exit(1);
}
