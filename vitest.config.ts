import { defineConfig } from 'vitest/config';

// Test level lives in the file name: *.unit.test.ts (pure logic, no servers) and
// *.int.test.ts (real NATS, PostgreSQL, s3rver, DuckDB). One project per level.
const shared = {
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
};
const exclude = ['**/node_modules/**', '**/dist/**'];

export default defineConfig({
  test: {
    // Two cores: integration files each start their own servers.
    maxWorkers: 2,
    projects: [
      {
        ...shared,
        test: {
          name: 'unit',
          include: [
            '{packages,services}/*/{src,test}/**/*.unit.test.ts',
            '{scripts,infra}/**/*.unit.test.ts',
          ],
          exclude,
          // Property tests run hundreds of cases; CI machines are small and shared.
          testTimeout: 30_000,
        },
      },
      {
        ...shared,
        test: {
          name: 'int',
          include: [
            '{packages,services}/*/{src,test}/**/*.int.test.ts',
            'scripts/**/*.int.test.ts',
            'test-e2e/**/*.e2e.test.ts',
          ],
          exclude,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
