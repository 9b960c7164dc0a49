// Preload for lazy-commands.test.ts: `node --import ./record-modules.mjs` appends the URL of
// every module the process resolves (ESM imports, static and dynamic, as the loader chain
// resolves them) to the file named by $HL_MODULE_LOG, one per line.
import { register } from 'node:module';

const hooks = `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.HL_MODULE_LOG, r.url + '\\n');
  return r;
}
`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
