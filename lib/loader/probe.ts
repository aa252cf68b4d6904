// Child-process probe of an addon variant (lib/native.ts): preloads the libtorch libraries of the given
// folder that the addon links, loads the addon, prints its build info as JSON. A crash here costs only
// this child.   node probe.js <addon.node> <libtorch lib dir>
import { createRequire } from 'node:module';
import { librariesToPreload, preload } from './preload.js';

const [addon, libDir] = process.argv.slice(2) as [string, string];
for (const file of librariesToPreload(addon, libDir)) preload(file);
const loaded = createRequire(import.meta.url)(addon) as { buildInfo: unknown };
console.log(JSON.stringify(loaded.buildInfo));
