// Child process for crash.test.ts: installs the handler, then fails the way argv[2] says.
import { exitOnBug } from '../../../src/ops/crash.js';
import { createLogger } from '../../../src/ops/log.js';

exitOnBug(createLogger({ role: 'test' }));
const how = process.argv[2];
if (how === 'rejection') void Promise.reject(new Error('boom: rejected'));
else if (how === 'exception')
  setTimeout(() => {
    throw new Error('boom: thrown');
  }, 1);
