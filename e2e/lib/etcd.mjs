// An etcd cluster of separate processes for make cluster: members started
// from ETCD_BIN (default `etcd` on the PATH) on free 127.0.0.1 ports, with
// their data in the lab's directory, tracked by the lab like every other
// process it starts (stopped by PID, logs kept for a failure report).
import { AssertionError } from 'node:assert';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

import { freePort, eventually } from './harness.mjs';

/** The etcd binary: ETCD_BIN, or `etcd` on the PATH. */
export const etcdBinary = () => process.env.ETCD_BIN || 'etcd';

/**
 * Starts n members as one new cluster and waits until every member answers
 * GET /health with 200 (it has a leader). Returns the members and the
 * client URLs to put in the gateway's store.etcd.endpoints.
 *
 * @param {import('./harness.mjs').Lab} lab
 * @returns {Promise<{endpoints: string[], members: {name: string, client: string, peer: string, dataDir: string, proc: any}[]}>}
 */
export async function startEtcdCluster(lab, { members: n = 3, bin = etcdBinary(), logLevel = 'warn' } = {}) {
  const members = [];
  for (let i = 1; i <= n; i++) {
    const name = `m${i}`;
    members.push({
      name,
      client: `http://127.0.0.1:${await freePort()}`,
      peer: `http://127.0.0.1:${await freePort()}`,
      dataDir: join(lab.dir, `etcd-${name}`),
    });
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peer}`).join(',');
  // All members first: none is healthy before a quorum has met.
  for (const m of members) {
    const args = [
      '--name', m.name, '--data-dir', m.dataDir,
      '--listen-client-urls', m.client, '--advertise-client-urls', m.client,
      '--listen-peer-urls', m.peer, '--initial-advertise-peer-urls', m.peer,
      '--initial-cluster', initialCluster, '--initial-cluster-state', 'new',
      '--initial-cluster-token', `todo-gateway-${lab.name}`,
      '--logger', 'zap', '--log-outputs', 'stderr', '--log-level', logLevel,
    ];
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: lab.dir });
    m.proc = lab.track(`etcd ${m.name}`, child);
  }
  await Promise.all(members.map((m) => eventually(`etcd ${m.name} healthy at ${m.client}/health`, async () => {
    // An AssertionError ends the wait at once.
    if (!m.proc.running) throw new AssertionError({ message: `etcd ${m.name} exited (${m.proc.exitCode}): ${m.proc.lines.slice(-3).join(' | ')}` });
    const res = await fetch(`${m.client}/health`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status === 200;
  }, { timeoutMs: 30_000 })));
  return { endpoints: members.map((m) => m.client), members };
}
