import { exportSuite } from './export-suite.js';

// Exports read back equal the source rows, security and signed links, on a filesystem lake.
await exportSuite('fs');
