import { exportSuite } from './export-suite.js';

// Exports read back equal the source rows, security and signed links, on a s3rver lake.
await exportSuite('s3');
