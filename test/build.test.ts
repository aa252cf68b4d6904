// libtorch discovery at build time (native/cmake/find_torch.cmake): the documented order, and one message
// that says how to get libtorch when none is found. Runs CMake's configure step only.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// CMake wraps long messages: compare with whitespace collapsed.
const flat = (s: string) => s.replace(/\s+/g, ' ');

function configure(env: Record<string, string>, ...args: string[]) {
  const build = mkdtempSync(path.join(os.tmpdir(), 'torch-moe-cmake-'));
  const r = spawnSync('cmake', ['-S', '.', '-B', build, '-DBUILD_TESTING=OFF', ...args], {
    env: { ...process.env, LIBTORCH: '', ...env },
    encoding: 'utf8',
  });
  return { status: r.status, output: flat(`${r.stdout}${r.stderr}`) };
}

describe('libtorch discovery', () => {
  it('uses LIBTORCH first when it points at a prefix with the Torch CMake config', () => {
    // Debian's libtorch under /usr here; where LIBTORCH is already set (the GPU host), that one.
    const prefix = process.env.LIBTORCH || '/usr';
    const r = configure({ LIBTORCH: prefix });
    expect(r.status).toBe(0);
    expect(r.output).toContain(`from LIBTORCH=${prefix}`);
    expect(r.output).toMatch(/torch-moe: libtorch \d+\.\d+\.\d+ from LIBTORCH=/);
  });

  it('stops with the fix when LIBTORCH points nowhere', () => {
    const r = configure({ LIBTORCH: '/nonexistent/libtorch' });
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/LIBTORCH is set to '\/nonexistent\/libtorch' but no TorchConfig.cmake was found/);
  });

  it('takes a Python PyTorch only when asked for, else the system libtorch, and explains when there is none', () => {
    // A stand-in "python" that answers torch.utils.cmake_prefix_path with the folder holding the system's
    // Torch CMake config: used only when LIBTORCH_USE_PYTORCH=1 asks for it.
    const system = /from system \((\S+)\/Torch\)/.exec(configure({}).output);
    expect(system).not.toBeNull();
    const fakePython = path.join(mkdtempSync(path.join(os.tmpdir(), 'torch-moe-py-')), 'python3');
    writeFileSync(fakePython, `#!/bin/sh\nprintf %s ${system![1]}\n`, { mode: 0o755 });
    expect(configure({ PYTHON: fakePython }).output).toMatch(/libtorch \d+\.\d+\.\d+ from system/);
    expect(configure({ PYTHON: fakePython, LIBTORCH_USE_PYTORCH: '1' }).output).toContain(`from Python PyTorch (${fakePython}: ${system![1]})`);
    const none = configure({ PYTHON: '/bin/false' }, '-DCMAKE_DISABLE_FIND_PACKAGE_Torch=TRUE');
    expect(none.status).not.toBe(0);
    expect(none.output).toMatch(/libtorch was not found\. Searched, in order:/);
    expect(none.output).toMatch(/apt-get install libtorch-dev libopenblas0-openmp/);
  });
});
