// npm run prebuild: the addon for this platform in prebuildify's layout, prebuilds/<platform>-<arch>/
// torch-moe.node (a CUDA build goes to prebuilds/<platform>-<arch>-cuda/, the variant lib/native.ts
// probes before use), with torch-moe.meta.json beside it: what the loader checks against the libtorch it
// finds (major.minor and flavour) and the libtorch sonames the addon links.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });

run('npx', ['--no-install', 'tsc', '-p', 'tsconfig.json']);  // the loader's ELF reader and probe
const { neededLibraries } = await import(path.join(root, 'dist/lib/loader/elf.js'));
const { findLibtorch } = await import(path.join(root, 'dist/lib/loader/libtorch.js'));

// prebuildify moves build/Release/*.node into prebuilds/<platform>-<arch>/<name>.node.
const platform = `${process.platform}-${process.arch}`;
const staging = path.join(root, 'prebuilds', platform);
rmSync(path.join(staging, 'torch-moe.node'), { force: true });
run('npx', ['--no-install', 'prebuildify', '--napi', '--strip', '--node-gyp', path.join(root, 'scripts', 'prebuild-compile.sh')]);
const built = path.join(staging, 'torch-moe.node');

// What it was built with: asked of the addon itself, in a child (the probe preloads the libtorch found).
const libtorch = findLibtorch();
if (!libtorch.found) throw new Error(`no libtorch found:\n${libtorch.steps.join('\n')}`);
const probe = spawnSync(process.execPath, [path.join(root, 'dist/lib/loader/probe.js'), built, libtorch.found.libDir], { encoding: 'utf8' });
if (probe.status !== 0) throw new Error(`the new prebuild does not load:\n${probe.stderr}`);
const info = JSON.parse(probe.stdout.trim().split('\n').at(-1));
let flavour = 'cpu';
if (info.cudaKernels) {
  const cuda = spawnSync(process.env.PYTHON || 'python3', ['-c', 'import torch; print(torch.version.cuda or "")'], { encoding: 'utf8' });
  flavour = `cuda-${cuda.stdout.trim() || 'unknown'}`;
}
const dir = info.cudaKernels ? path.join(root, 'prebuilds', `${platform}-cuda`) : staging;
mkdirSync(dir, { recursive: true });
if (dir !== staging) renameSync(built, path.join(dir, 'torch-moe.node'));
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const meta = {
  platform,
  libtorch: info.libtorchVersion.split('.').slice(0, 2).join('.'),
  flavour,
  cxx11Abi: info.cxx11Abi,
  napi: pkg.binary.napi_versions[0],
  glibc: process.report.getReport().header.glibcVersionRuntime,
  libtorchSonames: neededLibraries(path.join(dir, 'torch-moe.node')).filter((n) => /^lib(torch|c10)/.test(n)),
};
writeFileSync(path.join(dir, 'torch-moe.meta.json'), JSON.stringify(meta, null, 2) + '\n');
console.log(`prebuild: ${path.relative(root, path.join(dir, 'torch-moe.node'))}\n${JSON.stringify(meta, null, 2)}`);
