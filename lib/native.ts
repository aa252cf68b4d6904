// Loads the compiled addon (a prebuild or build/Release) with node-gyp-build. On failure the error says
// what was tried, what the loader reported, and how to fix the usual causes.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { NativeAddon } from './nativeTypes.js';

const require = createRequire(import.meta.url);
/** The package root: the nearest folder above this file with a package.json (from lib/ or dist/lib/). */
export const packageRoot = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();

export class NativeLoadError extends Error {
  readonly code = 'ERR_TORCH_MOE_NATIVE_LOAD';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NativeLoadError';
  }
}

function explain(err: unknown): string {
  const detail = err instanceof Error ? err.message : String(err);
  const hints: string[] = [];
  if (/libtorch|libc10|libtorch_cpu/.test(detail)) {
    hints.push('libtorch is not installed or not on the loader path: run `npm run setup` (Debian: apt-get install libtorch-dev libopenblas0-openmp), or add your libtorch lib/ folder to LD_LIBRARY_PATH.');
  }
  if (/No native build was found/.test(detail)) {
    hints.push('the addon has not been built: run `npm run build` in the package folder (needs cmake, a C++17 compiler and libtorch).');
  }
  if (/undefined symbol/.test(detail)) {
    hints.push('the addon was built against another libtorch than the one found now: rebuild with `npm run build`.');
  }
  if (hints.length === 0) hints.push('rebuild the addon with `npm run build` and check that libtorch is installed.');
  return [
    `torch-moe could not load its native addon (platform ${process.platform}-${process.arch}, Node ${process.version}, Node-API ${process.versions.napi}).`,
    `Searched: ${path.join(packageRoot, 'prebuilds')} and ${path.join(packageRoot, 'build', 'Release')}.`,
    `Loader said: ${detail}`,
    'Possible solutions:',
    ...hints.map((h) => `  - ${h}`),
  ].join('\n');
}

let cached: NativeAddon | undefined;

export function native(): NativeAddon {
  if (!cached) {
    try {
      const load = require('node-gyp-build') as (dir: string) => unknown;
      cached = load(packageRoot) as NativeAddon;
    } catch (err) {
      throw new NativeLoadError(explain(err), { cause: err });
    }
  }
  return cached;
}
