// The run-time loader (lib/native.ts): libtorch discovery in the build's order, the prebuild's metadata
// against what was found, the CUDA variant's child-process probe, and the load-failure messages, each
// made to happen for real in a child process. Also the prebuild's metadata against ldd, and doctor.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { classifyBlas } from '../lib/backend.js';
import { classifyLoaderError } from '../lib/loader/explain.js';
import { loadIn, packageCopy, prebuildDir, root, writeJson } from './helpers/packageCopy.js';

const hasPrebuild = existsSync(path.join(prebuildDir, 'torch-moe.node'));
const systemLibDir = `/usr/lib/${process.arch === 'x64' ? 'x86_64' : 'aarch64'}-linux-gnu`;
const debianLibtorch = existsSync(path.join(systemLibDir, 'libtorch_cpu.so')) && !process.env.LIBTORCH;
const emptyDir = () => mkdtempSync(path.join(os.tmpdir(), 'torch-moe-empty-'));

describe.runIf(hasPrebuild && debianLibtorch)('loading the prebuild', () => {
  it('loads the prebuild with the system libtorch, and its metadata names what ldd shows it links', () => {
    const pkg = packageCopy();
    expect(loadIn(pkg, {})).toMatchObject({ ok: true, kind: 'prebuild', cudaVariant: 'none' });
    const meta = JSON.parse(readFileSync(path.join(prebuildDir, 'torch-moe.meta.json'), 'utf8'));
    const ldd = spawnSync('ldd', [path.join(prebuildDir, 'torch-moe.node')], { encoding: 'utf8' }).stdout;
    const linked = [...ldd.matchAll(/^\s*(lib(?:torch|c10)\S*)\s+=>/gm)].map((m) => m[1]).sort();
    expect(meta.libtorchSonames.slice().sort()).toEqual(linked);
    expect(linked.length).toBeGreaterThanOrEqual(2);
    // major.minor of the libtorch ldd resolved them to (Debian names files libtorch_cpu.so.<major.minor>)
    expect(linked.find((l: string) => l.startsWith('libtorch_cpu'))).toBe(`libtorch_cpu.so.${meta.libtorch}`);
    expect(meta).toMatchObject({ platform: `${process.platform}-${process.arch}`, flavour: 'cpu', napi: 8 });
  });

  it('an empty LIBTORCH is an error that names it, never a silent fallback', () => {
    const dir = emptyDir();
    const r = loadIn(packageCopy(), { LIBTORCH: dir });
    expect(r).toMatchObject({ ok: false, code: 'ERR_TORCH_MOE_NATIVE_LOAD', reason: 'libtorch-missing' });
    expect(r.message).toContain(`LIBTORCH=${dir}: no libtorch_cpu.so in ${dir}/lib`);
    expect(r.message).toMatch(/Platform: linux-x64, glibc [\d.]+, Node v[\d.]+, Node-API \d+/);
    expect(r.message).toContain('apt-get install libtorch1.13 libopenblas0-openmp');
    expect(r.message).toContain('LIBTORCH_USE_PYTORCH=1');
  });

  it('a hidden system libtorch (a fake system prefix) gives every step and the three ways to get one', () => {
    const fake = emptyDir();
    const r = loadIn(packageCopy(), { TORCH_MOE_SYSTEM_LIB_DIRS: fake });
    expect(r).toMatchObject({ ok: false, reason: 'libtorch-missing' });
    expect(r.message).toContain('libtorch was not found');
    expect(r.message).toContain('1. LIBTORCH: not set');
    expect(r.message).toContain('2. Python PyTorch: not asked for');
    expect(r.message).toContain(`3. system: no libtorch_cpu.so in ${fake}`);
    expect(r.message).toMatch(/apt-get install .*\n.*point LIBTORCH at an unpacked libtorch folder.*\n.*LIBTORCH_USE_PYTORCH=1/);
  });

  it('refuses a prebuild whose metadata names another libtorch, says both, and loads with the override', () => {
    const pkg = packageCopy();
    const metaFile = path.join(pkg, 'prebuilds', `${process.platform}-${process.arch}`, 'torch-moe.meta.json');
    writeJson(metaFile, { ...JSON.parse(readFileSync(metaFile, 'utf8')), libtorch: '2.1' });
    const r = loadIn(pkg, {});
    expect(r).toMatchObject({ ok: false, reason: 'libtorch-mismatch' });
    expect(r.message).toMatch(/built for libtorch 2\.1 \(cpu\) but libtorch 1\.\d+ \(cpu\) was found/);
    expect(r.message).toContain('TORCH_MOE_SKIP_LIBTORCH_CHECK=1');
    expect(r.message).toContain('npx torch-moe build');
    expect(loadIn(pkg, { TORCH_MOE_SKIP_LIBTORCH_CHECK: '1' })).toMatchObject({ ok: true, kind: 'prebuild' });
  });

  it('finds a Python PyTorch only when asked, matching the sonames the addon links', () => {
    const python = loadIn(packageCopy(), { LIBTORCH_USE_PYTORCH: '1', PYTHON: '/usr/bin/python3' });
    if (spawnSync('/usr/bin/python3', ['-c', 'import torch']).status === 0) expect(python).toMatchObject({ ok: true, kind: 'prebuild' });
    const broken = loadIn(packageCopy(), { LIBTORCH_USE_PYTORCH: '1', PYTHON: '/bin/false' });
    expect(broken).toMatchObject({ ok: false, reason: 'libtorch-missing' });
    expect(broken.message).toContain('LIBTORCH_USE_PYTORCH=1 found no usable PyTorch');
  });

  it('a libtorch folder without the sonames the addon links is a mismatch that names them', () => {
    // A libtorch 1.13 folder whose files carry other sonames (as a pip wheel's libtorch_cpu.so does).
    const dir = emptyDir();
    mkdirSync(path.join(dir, 'lib'));
    for (const f of ['libtorch_cpu.so', 'libc10.so', 'libtorch.so']) writeFileSync(path.join(dir, 'lib', f), '');
    writeFileSync(path.join(dir, 'build-version'), '1.13.1+cpu\n');
    const r = loadIn(packageCopy(), { LIBTORCH: dir });
    expect(r).toMatchObject({ ok: false, reason: 'libtorch-mismatch' });
    expect(r.message).toMatch(/the addon links lib\w+\.so\.1\.13, which .* does not have/);
  });

  describe('the CUDA variant', () => {
    // A libtorch folder that looks like a CUDA build: the system files linked in, plus a libtorch_cuda.
    function fakeCudaLibtorch(): string {
      const dir = emptyDir();
      mkdirSync(path.join(dir, 'lib'));
      for (const f of readdirSync(systemLibDir).filter((n) => /^lib(torch|c10)/.test(n))) {
        symlinkSync(path.join(systemLibDir, f), path.join(dir, 'lib', f));
      }
      writeFileSync(path.join(dir, 'lib', 'libtorch_cuda.so'), '');
      return dir;
    }
    function withVariant(contents: 'the CPU addon' | 'garbage'): string {
      const pkg = packageCopy();
      const variant = path.join(pkg, 'prebuilds', `${process.platform}-${process.arch}-cuda`);
      mkdirSync(variant);
      if (contents === 'garbage') writeFileSync(path.join(variant, 'torch-moe.node'), 'not an ELF file');
      else copyFileSync(path.join(prebuildDir, 'torch-moe.node'), path.join(variant, 'torch-moe.node'));
      const meta = JSON.parse(readFileSync(path.join(prebuildDir, 'torch-moe.meta.json'), 'utf8'));
      writeJson(path.join(variant, 'torch-moe.meta.json'), { ...meta, flavour: 'cuda' });
      return pkg;
    }

    it('is skipped with the reason when the libtorch found is a CPU one', () => {
      const r = loadIn(withVariant('the CPU addon'), {}, 'auto');
      expect(r).toMatchObject({ ok: true, kind: 'prebuild' });
      expect(r.cudaVariant).toMatch(/not used: the CUDA variant was built for libtorch .* but the libtorch found is cpu/);
    });

    it('is probed in a child process first and used when CUDA is asked for', () => {
      const r = loadIn(withVariant('the CPU addon'), { LIBTORCH: fakeCudaLibtorch() }, 'cuda');
      expect(r).toMatchObject({ ok: true, kind: 'prebuild (CUDA variant)', cudaVariant: 'used' });
      // 'auto' uses it only when the probe sees a GPU: this one sees none.
      const auto = loadIn(withVariant('the CPU addon'), { LIBTORCH: fakeCudaLibtorch(), TORCH_MOE_SKIP_LIBTORCH_CHECK: '1' }, 'auto');
      expect(auto).toMatchObject({ ok: true, kind: 'prebuild', cudaVariant: 'not used: the CUDA variant loads but sees no GPU' });
    });

    it('a variant that cannot load fails in the child, and this process goes on', () => {
      const r = loadIn(withVariant('garbage'), { LIBTORCH: fakeCudaLibtorch(), TORCH_MOE_SKIP_LIBTORCH_CHECK: '1' }, 'cuda');
      expect(r).toMatchObject({ ok: true, kind: 'prebuild' });
      expect(r.cudaVariant).toMatch(/not used: the CUDA variant failed to load in a child process \(.*not an ELF file/);
    });
  });
});

describe('load-failure causes and BLAS, from the messages the system gives', () => {
  it('picks the cause of a dynamic-loader error', () => {
    // Messages as glibc's loader prints them.
    expect(classifyLoaderError('/x/torch_moe.node: undefined symbol: _ZN3c1019UndefinedTensorImpl10_singletonE')).toBe('undefined-symbol');
    expect(classifyLoaderError("/lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.38' not found (required by /x/torch_moe.node)")).toBe('glibc');
    expect(classifyLoaderError('libtorch_cpu.so.1.13: cannot open shared object file: No such file or directory')).toBe('libtorch-missing');
    expect(classifyLoaderError('something else')).toBe('other');
  });

  it('tells OpenBLAS from the reference BLAS, and warns with the fix for the slow one', () => {
    expect(classifyBlas(['/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3'])).toMatchObject({ kind: 'openblas' });
    const slow = classifyBlas(['/usr/lib/x86_64-linux-gnu/libgomp.so.1', '/usr/lib/x86_64-linux-gnu/blas/libblas.so.3']);
    expect(slow).toMatchObject({ kind: 'reference', library: '/usr/lib/x86_64-linux-gnu/blas/libblas.so.3' });
    expect(slow.warning).toContain('apt-get install libopenblas0-openmp');
    expect(classifyBlas(['/usr/lib/libc.so.6'])).toMatchObject({ kind: 'built-in', library: null });
  });
});

describe.runIf(debianLibtorch)('doctor', () => {
  it('reports this machine: addon, libtorch, BLAS actually mapped, threads', () => {
    const r = spawnSync(process.execPath, [path.join(root, 'dist/lib/cli.js'), 'doctor', '--json'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.ok).toBe(true);
    expect(report.backend.libtorch).toMatchObject({ foundBy: 'system', flavour: 'cpu' });
    // The BLAS doctor names is one this process really mapped: compare with the loader's view from ldd.
    const ldd = spawnSync('ldd', [path.join(systemLibDir, 'libtorch_cpu.so')], { encoding: 'utf8' }).stdout;
    const blas = /libblas\.so\.3 => (\S+)/.exec(ldd)?.[1];
    if (blas) expect(report.backend.blas.library && path.dirname(report.backend.blas.library)).toBe(path.dirname(spawnSync('readlink', ['-f', blas], { encoding: 'utf8' }).stdout.trim()));
    expect(report.backend.threads.intraOp).toBeGreaterThanOrEqual(1);
  });

  it('reports a load failure as a failed check with the loader message, exit code 1', () => {
    const r = spawnSync(process.execPath, [path.join(root, 'dist/lib/cli.js'), 'doctor'], { encoding: 'utf8', env: { ...process.env, LIBTORCH: emptyDir() } });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('✗ native addon');
    expect(r.stdout).toContain('Possible solutions:');
  });
});
