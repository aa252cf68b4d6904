// npx torch-moe build: the opt-in source build of the addon inside the installed package, with the
// cmake-js and node-api-headers the package depends on (offline: nothing is downloaded). The result,
// build/Release/torch_moe.node, is then loaded in preference to the prebuild (lib/native.ts).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { packageRoot } from './native.js';

export function buildFromSource(extraArgs: string[] = []): number {
  const require = createRequire(path.join(packageRoot, 'package.json'));
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  process.stderr.write(`torch-moe: building the addon from source in ${packageRoot} (cmake-js, libtorch as native/cmake/find_torch.cmake finds it)\n`);
  const r = spawnSync(process.execPath, [cmakeJs, 'build', '--out', 'build', ...extraArgs], { cwd: packageRoot, stdio: 'inherit' });
  if (r.status === 0) process.stderr.write(`torch-moe: built ${path.join(packageRoot, 'build', 'Release', 'torch_moe.node')}; it is used from now on\n`);
  else process.stderr.write('torch-moe: the source build failed (it needs cmake >= 3.18, a C++17 compiler and libtorch; the log above says which step failed)\n');
  return r.status ?? 1;
}
