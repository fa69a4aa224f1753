import { requireServers } from '@parquetry/testkit';
import { describe } from 'vitest';
import { reshapeSuite } from './reshape-suite.js';

const skip = await requireServers({ nats: true });
describe.skipIf(skip)('upsert, repartition, vacuum (s3)', () => reshapeSuite('s3'));
