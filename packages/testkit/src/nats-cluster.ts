/**
 * A JetStream cluster of `n` nats-server processes on loopback: random client and route ports,
 * one temporary store each, routes to every node. Nodes can be killed (-9) and started again on
 * the same ports and store.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { freePort } from './net.js';

export interface ClusterNode {
  name: string;
  port: number;
  routePort: number;
  storeDir: string;
  running: boolean;
}

export interface NatsCluster {
  nodes: ClusterNode[];
  /** Every node, as a client's server list. */
  url: string;
  kill9(index: number): Promise<void>;
  start(index: number): Promise<void>;
  stop(): Promise<void>;
}

function natsBinary(): string {
  if (process.env.NATS_SERVER_BIN) return process.env.NATS_SERVER_BIN;
  const found = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' });
  if (found.status !== 0) throw new Error('nats-server not found: install it or set NATS_SERVER_BIN');
  return found.stdout.trim();
}

export async function startNatsCluster(n = 3): Promise<NatsCluster> {
  const bin = natsBinary();
  const dir = mkdtempSync(join(tmpdir(), 'pq-e2e-cluster-'));
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < n; i++) {
    nodes.push({
      name: `e2e-${i + 1}`,
      port: await freePort(),
      routePort: await freePort(),
      storeDir: join(dir, `n${i + 1}`),
      running: false,
    });
  }
  const routes = nodes.map((x) => `nats-route://127.0.0.1:${x.routePort}`).join(', ');
  const procs: (ChildProcess | undefined)[] = nodes.map(() => undefined);
  for (const node of nodes) {
    mkdirSync(node.storeDir, { recursive: true });
    writeFileSync(
      join(dir, `${node.name}.conf`),
      `server_name: ${node.name}
listen: 127.0.0.1:${node.port}
jetstream { store_dir: "${node.storeDir}" }
cluster {
  name: e2e
  listen: 127.0.0.1:${node.routePort}
  routes: [${routes}]
}
`,
    );
  }

  const start = async (i: number) => {
    const node = nodes[i]!;
    const proc = spawn(bin, ['-c', join(dir, `${node.name}.conf`)], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs[i] = proc;
    await new Promise<void>((resolve, reject) => {
      let log = '';
      const timer = setTimeout(() => reject(new Error(`${node.name} did not start:\n${log}`)), 20_000);
      const onData = (chunk: Buffer) => {
        log += chunk.toString();
        if (/Server is ready/.test(log)) {
          clearTimeout(timer);
          proc.stderr?.off('data', onData);
          proc.stdout?.off('data', onData);
          proc.stderr?.resume();
          proc.stdout?.resume();
          resolve();
        }
      };
      proc.stderr?.on('data', onData);
      proc.stdout?.on('data', onData);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${node.name} exited with ${code}:\n${log}`));
      });
    });
    node.running = true;
  };
  const kill = async (i: number, signal: NodeJS.Signals) => {
    const proc = procs[i];
    nodes[i]!.running = false;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill(signal);
    });
  };

  const cluster: NatsCluster = {
    nodes,
    get url() {
      return nodes.map((x) => `nats://127.0.0.1:${x.port}`).join(',');
    },
    kill9: (i) => kill(i, 'SIGKILL'),
    start,
    async stop() {
      await Promise.all(nodes.map((_, i) => kill(i, 'SIGTERM')));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(nodes.map((_, i) => start(i)));
    await waitJetStream(cluster.url);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/** Until the cluster has a JetStream meta leader (account info answers). */
export async function waitJetStream(url: string, timeoutMs = 30_000): Promise<void> {
  const nc = await connect({ servers: url.split(','), reconnect: true });
  try {
    // jetstreamManager() asks for the account info itself: it fails until there is a leader.
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await (await jetstreamManager(nc)).getAccountInfo();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error('no JetStream meta leader', { cause: err });
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  } finally {
    await nc.close();
  }
}
