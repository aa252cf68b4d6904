// Child-process probe of an addon variant (lib/native.ts): preloads the libtorch libraries of the given
// folder that the addon links, loads the addon, prints its build info as JSON. A crash here costs only
// this child.   node probe.js <addon.node> <libtorch lib dir>
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { readdirSync } from 'node:fs';
import { neededLibraries, soname } from './elf.js';

const [addon, libDir] = process.argv.slice(2) as [string, string];
const require = createRequire(import.meta.url);
const wanted = neededLibraries(addon).filter((n) => /^lib(torch|c10)/.test(n));
const files = readdirSync(libDir).filter((f) => /^lib(torch|c10).*\.so(\.|$)/.test(f));
for (const name of wanted.sort((a) => (a.startsWith('libc10') ? -1 : 1))) {
  const file = files.find((f) => f === name) ?? files.find((f) => soname(path.join(libDir, f)) === name);
  if (!file) throw new Error(`${libDir} has no ${name}`);
  try {
    process.dlopen({ exports: {} } as NodeJS.Module, path.join(libDir, file), os.constants.dlopen.RTLD_NOW | os.constants.dlopen.RTLD_GLOBAL);
  } catch (err) {
    if (!/did not self-register/.test((err as Error).message)) throw err;
  }
}
const loaded = require(addon) as { buildInfo: { cudaAvailable: boolean; libtorchVersion: string } };
console.log(JSON.stringify(loaded.buildInfo));
