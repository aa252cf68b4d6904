// Loads the native addon once per process, after checking that it can work:
//   1. find libtorch (loader/libtorch.ts: LIBTORCH -> Python PyTorch when asked -> the system);
//   2. pick the addon: a local build (build/Release) if there is one, else the prebuild node-gyp-build
//      finds for this platform; a CUDA variant (prebuilds/<platform>-cuda/) only when CUDA is wanted and a
//      child process has loaded it first (so a broken CUDA install cannot take this process down);
//   3. check a prebuild's metadata (libtorch major.minor and flavour) against what was found, and that the
//      libtorch folder has every libtorch soname the addon links;
//   4. preload those libraries from that folder (RTLD_GLOBAL), so the addon binds to them and not to
//      whatever the loader path holds, then load the addon.
// Any failure is a NativeLoadError whose message lists each step, the loader's error and the fixes.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { classifyLoaderError, explain, NativeLoadError } from './loader/explain.js';
import { findLibtorch, majorMinor, type Libtorch, type LibtorchSearch } from './loader/libtorch.js';
import { librariesToPreload, preload } from './loader/preload.js';
import type { NativeAddon } from './nativeTypes.js';

export { NativeLoadError } from './loader/explain.js';

const require = createRequire(import.meta.url);
/** The package root: the nearest folder above this file with a package.json (from lib/ or dist/lib/). */
export const packageRoot = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();

/** What a prebuild was made with (written by scripts/prebuild.mjs beside the .node file). */
export interface PrebuildMeta {
  platform: string;         // "linux-x64"
  libtorch: string;         // major.minor, "1.13"
  flavour: string;          // "cpu" or "cuda-13.0"
  cxx11Abi: boolean;        // _GLIBCXX_USE_CXX11_ABI of the build
  napi: number;             // Node-API version the addon needs
  glibc: string;            // glibc of the build machine (the oldest the prebuild is known to run on)
  libtorchSonames: string[];  // the libtorch/c10 libraries the addon links (DT_NEEDED)
}

export interface AddonChoice {
  path: string;
  kind: 'local build' | 'prebuild' | 'prebuild (CUDA variant)';
  meta?: PrebuildMeta;
}

/** Everything the loader found: doctor and backend() report it. */
export interface LoadReport {
  libtorch: LibtorchSearch;
  addon?: AddonChoice;
  cudaVariant: string;  // what became of the CUDA variant: "none", "used", or why it was not
  preloaded: string[];  // files preloaded from the libtorch folder
}

const PREBUILD_NAME = 'torch-moe.node', META_NAME = 'torch-moe.meta.json';
const platformDir = `${process.platform}-${process.arch}`;
const flavourFamily = (f: string) => (f.startsWith('cuda') ? f.split('.')[0]! : f);  // "cuda-13" / "cpu"

function readMeta(dir: string): PrebuildMeta | undefined {
  const file = path.join(dir, META_NAME);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as PrebuildMeta) : undefined;
}

/** Why a prebuild does not fit the libtorch found ('' when it does). */
export function prebuildMismatch(meta: PrebuildMeta, found: Libtorch): string {
  const foundMm = majorMinor(found.version);
  if (found.version !== 'unknown' && foundMm !== meta.libtorch) {
    return `the prebuild was built for libtorch ${meta.libtorch} (${meta.flavour}) but libtorch ${foundMm} (${found.flavour}) was found`;
  }
  if (flavourFamily(meta.flavour) !== flavourFamily(found.flavour)) {
    return `the prebuild was built for libtorch ${meta.libtorch} (${meta.flavour}) but the libtorch found is ${found.flavour}`;
  }
  return '';
}

/**
 * Loads the CUDA variant in a child process first: returns '' when it loads and sees a GPU (or CUDA was
 * asked for explicitly), else why it is not used.
 */
function probeCudaVariant(addon: string, found: Libtorch, explicit: boolean): string {
  const probe = path.join(path.dirname(fileURLToPath(import.meta.url)), 'loader', 'probe.js');
  const r = spawnSync(process.execPath, [probe, addon, found.libDir], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) {
    // The thrown error's line (Node prints its version banner last).
    const lines = `${r.stderr}`.trim().split('\n').filter(Boolean);
    const cause = lines.find((l) => /Error: /.test(l))?.trim() ?? lines.at(-1) ?? `exit ${r.status ?? r.signal}`;
    return `the CUDA variant failed to load in a child process (${cause})`;
  }
  const info = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { cudaAvailable: boolean };
  return info.cudaAvailable || explicit ? '' : 'the CUDA variant loads but sees no GPU';
}

/** The addon to load and what became of the CUDA variant. */
function chooseAddon(found: Libtorch, preference: 'cpu' | 'cuda' | 'auto'): { choice: AddonChoice; cudaVariant: string } {
  const local = path.join(packageRoot, 'build', 'Release', 'torch_moe.node');
  if (existsSync(local)) return { choice: { path: local, kind: 'local build' }, cudaVariant: 'none (a local build is used)' };
  let cudaVariant = 'none';
  const cudaDir = path.join(packageRoot, 'prebuilds', `${platformDir}-cuda`);
  const cudaMeta = readMeta(cudaDir);
  const wanted = process.env.TORCH_MOE_VARIANT ?? preference;
  if (cudaMeta && existsSync(path.join(cudaDir, PREBUILD_NAME))) {
    const mismatch = prebuildMismatch(cudaMeta, found);
    if (wanted === 'cpu') cudaVariant = 'not used: the CPU variant was asked for';
    else if (mismatch) cudaVariant = `not used: ${mismatch.replace('the prebuild', 'the CUDA variant')}`;
    else {
      const why = probeCudaVariant(path.join(cudaDir, PREBUILD_NAME), found, wanted === 'cuda');
      if (!why) return { choice: { path: path.join(cudaDir, PREBUILD_NAME), kind: 'prebuild (CUDA variant)', meta: cudaMeta }, cudaVariant: 'used' };
      cudaVariant = `not used: ${why}`;
    }
  }
  let resolved: string;
  try {
    resolved = (require('node-gyp-build') as { resolve(dir: string): string }).resolve(packageRoot);
  } catch (err) {
    throw new NativeLoadError(explain('no addon for this platform', 'no-addon', [`Node-gyp-build said: ${(err as Error).message}`], packageRoot),
      'no-addon', { cause: err });
  }
  return { choice: { path: resolved, kind: 'prebuild', meta: readMeta(path.dirname(resolved)) }, cudaVariant };
}

let cached: NativeAddon | undefined;
let report: LoadReport | undefined;

/** What the loader found (runs the search without loading when nothing is loaded yet). */
export function loadReport(): LoadReport {
  return report ?? { libtorch: findLibtorch(), cudaVariant: 'not chosen yet (nothing loaded)', preloaded: [] };
}

/**
 * The addon, loaded on first use. `preference` (the device of the first model) decides whether a CUDA
 * variant may be used; later calls get the same addon.
 */
export function native(preference: 'cpu' | 'cuda' | 'auto' = 'auto'): NativeAddon {
  if (cached) return cached;
  const libtorch = findLibtorch();
  const steps = ['Searched for libtorch, in order:', ...libtorch.steps.map((s) => `  ${s}`)];
  report = { libtorch, cudaVariant: 'none', preloaded: [] };
  const found = libtorch.found;
  if (!found) {
    const headline = libtorch.failedChoice === 'LIBTORCH' ? 'LIBTORCH names no libtorch'
      : libtorch.failedChoice === 'python' ? 'LIBTORCH_USE_PYTORCH=1 found no usable PyTorch' : 'libtorch was not found';
    throw new NativeLoadError(explain(headline, 'libtorch-missing', steps, packageRoot), 'libtorch-missing');
  }
  const { choice, cudaVariant } = chooseAddon(found, preference);
  report.addon = choice;
  report.cudaVariant = cudaVariant;
  const addonLine = `Addon: ${choice.path} (${choice.kind}${choice.meta ? `, built for libtorch ${choice.meta.libtorch} ${choice.meta.flavour}` : ''})`;
  const details = [...steps, addonLine];
  const mismatch = choice.meta ? prebuildMismatch(choice.meta, found) : '';
  if (mismatch && process.env.TORCH_MOE_SKIP_LIBTORCH_CHECK !== '1') {
    const expected = `libtorch ${choice.meta!.libtorch} (${choice.meta!.flavour})`;
    throw new NativeLoadError(explain(mismatch, 'libtorch-mismatch', details, packageRoot, expected), 'libtorch-mismatch');
  }
  try {
    report.preloaded = librariesToPreload(choice.path, found.libDir);
    for (const file of report.preloaded) preload(file);
  } catch (err) {
    throw new NativeLoadError(explain((err as Error).message, 'libtorch-mismatch', details, packageRoot), 'libtorch-mismatch', { cause: err });
  }
  try {
    cached = require(choice.path) as NativeAddon;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const reason = classifyLoaderError(message);
    throw new NativeLoadError(explain('the dynamic loader refused it', reason, [...details, `Loader said: ${message}`], packageRoot), reason, { cause: err });
  }
  return cached;
}
