import { requireServers } from '@parquetry/testkit';
import { describe } from 'vitest';
import { opsSuite } from './ops-suite.js';

const skip = await requireServers({ nats: true });
describe.skipIf(skip)('compactor on the filesystem lake', () => opsSuite('fs'));
