import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { Metrics } from '../../packages/service/src/metrics.js';

/**
 * The deployment files, checked without a Docker engine or a cluster: they parse, every path
 * they name exists, every service has its health checks, and every metric an alert or a
 * dashboard panel uses is one the code really registers.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const read = (p: string) => readFileSync(join(root, p), 'utf8');

const SERVICES: Record<string, number> = {
  'ingest-backup': 9101,
  'candle-aggregator': 9102,
  compactor: 9103,
  'pg-loader': 9104,
  'export-api': 8080,
};

type Obj = Record<string, any>;

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.name.endsWith('.ts') && !/\.test\.ts$/.test(e.name)) out.push(p);
  }
  return out;
}

/** Every metric name the code registers: its own (`.counter('parquetry_…'`) and the default process metrics. */
function codeMetrics(): Set<string> {
  const names = new Set<string>();
  const sources = ['packages', 'services'].flatMap((top) =>
    readdirSync(join(root, top))
      .filter((p) => existsSync(join(root, top, p, 'src')))
      .flatMap((p) => walk(join(top, p, 'src'))),
  );
  for (const f of sources) {
    for (const m of read(f).matchAll(/\.(?:counter|gauge|histogram)\(\s*'(parquetry_[a-z0-9_]+)'/g))
      names.add(m[1]!);
  }
  for (const m of new Metrics('probe').registry.getMetricsAsArray()) names.add(m.name);
  return names;
}

/** The metric names a PromQL expression uses (histogram series map to their metric). */
function exprMetrics(expr: string): string[] {
  return [...expr.matchAll(/\bparquetry_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''));
}

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml'), { merge: true }) as Obj;

  it('runs NATS with JetStream durability, PostgreSQL, MinIO with its bucket, and the five services', () => {
    expect(Object.keys(compose.services)).toEqual(
      expect.arrayContaining(['nats', 'postgres', 'minio', 'minio-init', ...Object.keys(SERVICES)]),
    );
    const nats = compose.services.nats;
    const conf = nats.volumes.find((v: string) => v.includes('nats.conf')).split(':')[0];
    expect(read(conf)).toMatch(/^\s*sync_interval:\s*always/m);
    expect(read(conf)).toMatch(/jetstream\s*{/);
    expect(compose.services['minio-init'].command.join(' ')).toMatch(
      /mc mb --ignore-existing local\/parquetry/,
    );
    for (const name of ['nats', 'postgres', 'minio'])
      expect(compose.services[name].healthcheck.test).toBeDefined();
  });

  it('builds every service from its Dockerfile on the S3 lake, with a health check and start conditions', () => {
    for (const [name, port] of Object.entries(SERVICES)) {
      const s = compose.services[name];
      expect(existsSync(join(root, s.build.context, s.build.dockerfile)), `${name} Dockerfile`).toBe(true);
      expect(s.build.dockerfile).toBe(`services/${name}/Dockerfile`);
      expect(s.environment.LAKE_URL).toMatch(/^s3:\/\/parquetry\//);
      expect(s.environment.NATS_URL).toBe('nats://nats:4222');
      expect(String(s.environment.HTTP_PORT)).toBe(String(port));
      expect(s.healthcheck.test.join(' ')).toContain(`127.0.0.1:${port}/health`);
      expect(s.depends_on.nats.condition).toBe('service_healthy');
      expect(s.depends_on['minio-init'].condition).toBe('service_completed_successfully');
    }
    expect(compose.services['pg-loader'].depends_on.postgres.condition).toBe('service_healthy');
    expect(compose.services['export-api'].depends_on['keys-init'].condition).toBe(
      'service_completed_successfully',
    );
  });

  it('names only files that exist', () => {
    for (const [name, s] of Object.entries<Obj>(compose.services)) {
      for (const v of (s.volumes ?? []) as string[]) {
        if (v.startsWith('./')) expect(existsSync(join(root, v.split(':')[0]!)), `${name}: ${v}`).toBe(true);
      }
    }
  });
});

describe('Dockerfiles', () => {
  for (const [name, port] of Object.entries(SERVICES)) {
    it(`${name}: multi-stage, pnpm deploy, non-root, health check on /health`, () => {
      const text = read(`services/${name}/Dockerfile`);
      expect(text.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
      expect(text).toMatch(/^FROM \S+ AS build$/m);
      expect(text).toContain(`--filter @parquetry/${name} deploy --prod`);
      expect(text).toMatch(/^USER node$/m);
      expect(text).toMatch(new RegExp(`^EXPOSE ${port}$`, 'm'));
      expect(text).toMatch(/^HEALTHCHECK [\s\S]*\/health/m);
      expect(text).toMatch(/^CMD \["node", "dist\/main.js"\]$/m);
      const pkg = JSON.parse(read(`services/${name}/package.json`)) as Obj;
      expect(pkg.scripts.start).toBe('node dist/main.js');
    });
  }
});

describe('NATS cluster', () => {
  it('has three nodes that route to each other, with JetStream and sync_interval', () => {
    const files = readdirSync(join(root, 'infra/nats/cluster')).filter((f) => f.endsWith('.conf'));
    expect(files.sort()).toEqual(['nats-1.conf', 'nats-2.conf', 'nats-3.conf']);
    const names = files.map((f) => /server_name:\s*(\S+)/.exec(read(`infra/nats/cluster/${f}`))?.[1]);
    expect(new Set(names).size).toBe(3);
    for (const f of files) {
      const text = read(`infra/nats/cluster/${f}`);
      expect(text).toMatch(/sync_interval:/);
      for (const n of names) expect(text).toContain(`nats-route://${n}:6222`);
    }
  });
});

describe('Kubernetes manifests', () => {
  const kustomization = parse(read('infra/k8s/kustomization.yaml')) as Obj;
  const docs: Obj[] = kustomization.resources.flatMap((f: string) =>
    parseAllDocuments(read(`infra/k8s/${f}`)).map((d) => {
      expect(d.errors, f).toEqual([]);
      return d.toJSON() as Obj;
    }),
  );

  it('runs every service with liveness on /health, readiness on /ready and resources', () => {
    for (const [name, port] of Object.entries(SERVICES)) {
      const workload = docs.find(
        (d) => ['Deployment', 'StatefulSet'].includes(d.kind) && d.metadata.name === name,
      );
      expect(workload, name).toBeDefined();
      const c = workload!.spec.template.spec.containers[0];
      expect(c.image).toBe(`parquetry/${name}`);
      expect(c.ports[0].containerPort).toBe(port);
      expect(c.livenessProbe.httpGet.path).toBe('/health');
      expect(c.readinessProbe.httpGet.path).toBe('/ready');
      expect(c.resources.requests.memory).toBeDefined();
      expect(c.resources.limits.memory).toBeDefined();
      expect(c.envFrom[0].configMapRef.name).toBe('parquetry-config');
      expect(docs.some((d) => d.kind === 'Service' && d.metadata.name === name)).toBe(true);
    }
  });

  it('autoscales only workloads that exist, within sane bounds', () => {
    const hpas = docs.filter((d) => d.kind === 'HorizontalPodAutoscaler');
    expect(hpas.map((h) => h.metadata.name).sort()).toEqual(['export-api', 'ingest-backup']);
    for (const h of hpas) {
      const t = h.spec.scaleTargetRef;
      expect(docs.some((d) => d.kind === t.kind && d.metadata.name === t.name)).toBe(true);
      expect(h.spec.minReplicas).toBeLessThan(h.spec.maxReplicas);
    }
  });
});

describe('alerts and dashboard use metrics the code emits', () => {
  const known = codeMetrics();

  it('finds the metrics of every service in the code (sanity of the scan)', () => {
    for (const n of [
      'parquetry_messages_consumed_total',
      'parquetry_rows_written_total',
      'parquetry_candles_closed_total',
      'parquetry_http_request_duration_seconds',
      'parquetry_pg_rows_loaded_total',
      'parquetry_process_resident_memory_bytes',
    ]) {
      expect(known.has(n), n).toBe(true);
    }
  });

  it('alerts.yml: every rule has an expression, a severity and a summary over real metric names', () => {
    const rules = (parse(read('infra/prometheus/alerts.yml')) as Obj).groups.flatMap(
      (g: Obj) => g.rules,
    ) as Obj[];
    const wanted = [
      'ParquetryNoBackup24h',
      'ParquetryBackupSizeAbnormal',
      'ParquetryRecurringRetries',
      'ParquetryDiskFreeUnder1GB',
      'ParquetryCandlesStale',
      'ParquetryDlqGrowing',
    ];
    expect(rules.map((r) => r.alert)).toEqual(expect.arrayContaining(wanted));
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
    for (const r of rules) {
      expect(r.expr, r.alert).toBeTypeOf('string');
      expect(['critical', 'warning', 'info']).toContain(r.labels.severity);
      expect(r.annotations.summary, r.alert).toBeTruthy();
      for (const m of exprMetrics(r.expr)) expect(known.has(m), `${r.alert}: ${m}`).toBe(true);
    }
    const prom = parse(read('infra/prometheus/prometheus.yml')) as Obj;
    expect(prom.rule_files).toContain('alerts.yml');
  });

  it('the Grafana dashboard: valid JSON, every panel query over real metric names', () => {
    const dash = JSON.parse(read('infra/grafana/parquetry.json')) as Obj;
    const targets = (dash.panels as Obj[]).flatMap((p) => p.targets ?? []);
    expect(targets.length).toBeGreaterThan(20);
    const used = new Set(targets.flatMap((t: Obj) => exprMetrics(t.expr)));
    for (const m of used) expect(known.has(m), m).toBe(true);
    // Each service has at least one panel of its own metrics.
    for (const m of [
      'parquetry_buffer_bytes',
      'parquetry_candles_closed_total',
      'parquetry_lake_ops_total',
      'parquetry_pg_rows_loaded_total',
      'parquetry_http_request_duration_seconds',
    ]) {
      expect(used.has(m), m).toBe(true);
    }
  });

  it('docs/observability.md: every metric of the contract tables is emitted (or marked planned)', () => {
    const rows = read('docs/observability.md')
      .split('\n')
      .filter((l) => /^\| `parquetry_/.test(l) && !/planned/.test(l));
    expect(rows.length).toBeGreaterThan(20);
    for (const row of rows) {
      const name = /`(parquetry_[a-z0-9_]+)`/.exec(row)![1]!;
      expect(known.has(name), name).toBe(true);
    }
  });
});
