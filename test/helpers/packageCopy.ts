// A copy of the package as npm would install it (package.json, dist/lib, prebuilds, node_modules linked),
// for tests that change what the loader finds: prebuild metadata, a CUDA variant folder.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const root = path.resolve(import.meta.dirname, '..', '..');
export const prebuildDir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);

export function packageCopy(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'torch-moe-pkg-'));
  for (const item of ['package.json', 'dist/lib', 'prebuilds']) cpSync(path.join(root, item), path.join(dir, item), { recursive: true });
  symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

export interface LoadOutcome {
  ok: boolean;
  kind?: string;
  cudaVariant?: string;
  code?: string;
  reason?: string;
  message?: string;
}

/** Loads the package at `pkg` in a fresh Node process with `env` and reports how it went. */
export function loadIn(pkg: string, env: Record<string, string>, preference: 'cpu' | 'cuda' | 'auto' = 'auto'): LoadOutcome {
  const script = `
    const { native, loadReport } = await import(${JSON.stringify(path.join(pkg, 'dist/lib/native.js'))});
    try {
      native(${JSON.stringify(preference)});
      const r = loadReport();
      console.log(JSON.stringify({ ok: true, kind: r.addon.kind, cudaVariant: r.cudaVariant }));
    } catch (e) {
      console.log(JSON.stringify({ ok: false, code: e.code, reason: e.reason, message: e.message, cudaVariant: loadReport().cudaVariant }));
    }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`the child failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as LoadOutcome;
}

export function writeJson(file: string, value: unknown): void {
  writeFileSync(file, JSON.stringify(value, null, 2));
}
