import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { startNats } from './nats.js';

describe('testkit nats-server', () => {
  it('starts a JetStream server on a random port and restarts it on the same port', async () => {
    const server = await startNats();
    try {
      const nc = await connect({ servers: server.url });
      const port = server.port;
      await nc.flush();
      await nc.close();
      await server.restart();
      expect(server.port).toBe(port);
      const nc2 = await connect({ servers: server.url });
      await nc2.flush();
      await nc2.close();
    } finally {
      await server.stop();
    }
  });
});
