// A private Redis Cluster for specs: 3 masters on loopback ports
// (redis-server --cluster-enabled yes + redis-cli --cluster create).
import { execFileSync } from 'node:child_process';
import { Cluster, type ClusterNode } from 'ioredis';
import { startRedisServer, type PrivateRedis } from '../../scripts/lib/redis-server.cjs';

export interface PrivateCluster {
  nodes: PrivateRedis[];
  /** Startup nodes for `createActorSystem({ redis: { cluster: startup } })`. */
  startup: ClusterNode[];
  /** Stop every node and remove its data. */
  stop(): Promise<void>;
}

/** Start a cluster of `masters` nodes (no replicas) and wait until it reports `cluster_state:ok`. */
export async function startPrivateCluster(masters = 3): Promise<PrivateCluster> {
  const nodes: PrivateRedis[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    for (let i = 0; i < masters; i++) {
      nodes.push(await startRedisServer({ name: 'test-cluster', appendonly: false, extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'] }));
    }
    execFileSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'pipe' });
    const startup = nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
    const probe = new Cluster(startup);
    try {
      for (let t = 0; ; t++) {
        const info = String(await probe.cluster('INFO').catch(() => ''));
        if (info.includes('cluster_state:ok')) break;
        if (t > 200) throw new Error(`cluster not ok: ${info}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      probe.disconnect();
    }
    return { nodes, startup, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
