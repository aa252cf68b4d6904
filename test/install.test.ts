// What a user gets from npm: packs the project, installs the tarball into a fresh project whose PATH holds
// node and nothing else (no cmake, c++, g++, make), and there trains a tiny model through `import` and
// through `require`, and runs `npx torch-moe doctor --json`. Needs the prebuild (scripts/prepare.sh --dev).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { prebuildDir, root } from './helpers/packageCopy.js';

// npm's own CLI scripts, run with this node (npm_execpath is set under `npm test`).
const npmCli = [process.env.npm_execpath, path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js')]
  .find((p) => p && /npm-cli\.js$/.test(p) && existsSync(p));
const npxCli = npmCli && path.join(path.dirname(npmCli), 'npx-cli.js');
const ready = !!npmCli && existsSync(path.join(prebuildDir, 'torch-moe.node'));

const TRAIN = (load: string) => `
${load}
const n = 64, d = 8, inputs = new Float32Array(n * d), labels = new Uint8Array(n);
for (let i = 0; i < n; i++) { labels[i] = i % 2; for (let j = 0; j < d; j++) inputs[i * d + j] = (j % 2 === labels[i] ? 1 : 0) + 0.1 * Math.sin(i + j); }
const model = new MoEClassifier({ inputSize: d, hiddenSize: 8, expertHiddenSize: 4, numExperts: 2, topK: 1, numClasses: 2, device: 'cpu' });
model.train({ inputs, labels, count: n }, { epochs: 20, batchSize: 16 }).then(async (h) => {
  const e = await model.evaluate({ inputs, labels, count: n });
  console.log(JSON.stringify({ epochs: h.epochs.length, accuracy: e.accuracy, addon: backend().addon.kind }));
});`;

describe.runIf(ready)('npm install of the packed tarball', () => {
  const platform = `${process.platform}-${process.arch}`;
  let tmp = '', app = '', env: NodeJS.ProcessEnv = {};
  let files: string[] = [];

  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'torch-moe-install-'));
    const packed = spawnSync(process.execPath, [npmCli!, 'pack', '--json', '--pack-destination', tmp], { cwd: root, encoding: 'utf8' });
    expect(packed.status, packed.stderr).toBe(0);
    const [info] = JSON.parse(packed.stdout) as { filename: string; size: number; unpackedSize: number; files: { path: string }[] }[];
    files = info!.files.map((f) => f.path);
    console.log(`packed ${info!.filename}: ${(info!.size / 1024).toFixed(0)} KiB (${(info!.unpackedSize / 1024).toFixed(0)} KiB unpacked), ${files.length} files`);
    // A PATH with node and sh only (npx runs bins through sh): no cmake, c++, g++ or make can run.
    const bin = path.join(tmp, 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, path.join(bin, 'node'));
    symlinkSync('/bin/sh', path.join(bin, 'sh'));
    env = { ...process.env, PATH: bin, npm_config_update_notifier: 'false' };
    app = path.join(tmp, 'app');
    mkdirSync(app);
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
    writeFileSync(path.join(app, 'esm.mjs'), TRAIN("import { MoEClassifier, backend } from 'torch-moe';"));
    writeFileSync(path.join(app, 'cjs.cjs'), TRAIN("const { MoEClassifier, backend } = require('torch-moe');"));
    const install = spawnSync(process.execPath, [npmCli!, 'install', path.join(tmp, info!.filename), '--no-audit', '--no-fund', '--prefer-offline'],
      { cwd: app, env, encoding: 'utf8' });
    expect(install.status, install.stderr).toBe(0);
  }, 300_000);

  it('packs the prebuild, the compiled TypeScript with types, the CLI and the sources for a source build, and nothing else', () => {
    for (const f of [`prebuilds/${platform}/torch-moe.node`, `prebuilds/${platform}/torch-moe.meta.json`, 'dist/lib/index.js',
      'dist/lib/index.d.ts', 'dist/lib/cli.js', 'dist/lib/loader/probe.js', 'CMakeLists.txt', 'native/cmake/find_torch.cmake',
      'native/binding/addon.cpp', 'LICENSE', 'CHANGELOG.md', 'README.md']) {
      expect(files, f).toContain(f);
    }
    for (const prefix of ['test/', 'bench/', 'build/', 'dist/scripts/', 'scripts/', 'docs/experiments']) {
      expect(files.filter((f) => f.startsWith(prefix)), prefix).toEqual([]);
    }
  });

  it('installs without a compiler and trains through import and require; doctor works there', () => {
    for (const tool of ['cmake', 'c++', 'g++', 'make', 'cc']) {
      expect(spawnSync(tool, ['--version'], { env }).error, tool).toMatchObject({ code: 'ENOENT' });
    }
    for (const script of ['esm.mjs', 'cjs.cjs']) {
      const r = spawnSync(process.execPath, [script], { cwd: app, env, encoding: 'utf8' });
      expect(r.status, `${script}: ${r.stderr}`).toBe(0);
      const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
      expect(out, script).toMatchObject({ epochs: 20, addon: 'prebuild' });
      expect(out.accuracy, script).toBeGreaterThan(0.9);  // a separable toy problem: training happened
    }
    const doctor = spawnSync(process.execPath, [npxCli!, '--no-install', 'torch-moe', 'doctor', '--json'], { cwd: app, env, encoding: 'utf8' });
    expect(doctor.status, doctor.stderr).toBe(0);
    const report = JSON.parse(doctor.stdout);
    expect(report.ok).toBe(true);
    expect(report.backend.addon.path).toBe(path.join(app, 'node_modules', 'torch-moe', 'prebuilds', platform, 'torch-moe.node'));
  });

  it('builds from source with one command where a compiler is, offline, and then uses that build', () => {
    const withTools = { ...env, PATH: process.env.PATH, npm_config_offline: 'true' };
    const build = spawnSync(process.execPath, [npxCli!, '--no-install', 'torch-moe', 'build'], { cwd: app, env: withTools, encoding: 'utf8' });
    expect(build.status, build.stderr.slice(-3000)).toBe(0);
    const local = path.join(app, 'node_modules', 'torch-moe', 'build', 'Release', 'torch_moe.node');
    expect(existsSync(local)).toBe(true);
    const r = spawnSync(process.execPath, ['esm.mjs'], { cwd: app, env, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toMatchObject({ epochs: 20, addon: 'local build' });
  }, 900_000);
});
