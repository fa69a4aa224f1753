import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';

export interface ProbeServerOptions {
  port: number;
  host?: string;
  metrics: Metrics;
  logger: Logger;
  /** Ready means "can do work now" (connected to NATS, lake reachable). */
  ready: () => boolean | Promise<boolean>;
  /** Extra fields in /health. */
  health?: () => Record<string, unknown>;
}

/** `GET /health`, `/ready`, `/metrics` for services that have no HTTP API of their own. */
export async function startProbeServer(opts: ProbeServerOptions): Promise<Server & { port: number }> {
  const server = createServer(async (req, res) => {
    try {
      const url = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET') {
        res.writeHead(405).end();
      } else if (url === '/health') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: 'ok', timestamp: new Date().toISOString(), ...opts.health?.() }));
      } else if (url === '/ready') {
        const ok = await opts.ready();
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ready: ok }));
      } else if (url === '/metrics') {
        const body = await opts.metrics.text();
        res.writeHead(200, { 'content-type': opts.metrics.registry.contentType });
        res.end(body);
      } else {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'not_found', message: 'unknown route' } }));
      }
    } catch (err) {
      opts.logger.error({ err }, 'probe_request_failed');
      res.writeHead(500).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  return Object.assign(server, { port });
}
