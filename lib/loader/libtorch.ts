// Finds libtorch at run time in the order the build uses (native/cmake/find_torch.cmake):
//   1. LIBTORCH: a libtorch folder, or a prefix holding its lib/ (a set LIBTORCH that holds none is an
//      error, never a silent fallback);
//   2. a Python PyTorch install, when asked for with LIBTORCH_USE_PYTORCH=1 ($PYTHON or python3);
//   3. the system: Debian/Ubuntu multiarch /usr/lib/<triplet>/libtorch_cpu.so.* and the usual lib folders
//      (TORCH_MOE_SYSTEM_LIB_DIRS, colon-separated, replaces that list).
// Every step says what it found, for the load-failure message and doctor.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface Libtorch {
  foundBy: 'LIBTORCH' | 'python' | 'system';
  libDir: string;
  version: string;   // "1.13.0"; "unknown" when nothing says
  flavour: string;   // "cpu", or "cuda-12.1" ("cuda" when the CUDA version is not recorded)
}

export interface LibtorchSearch {
  found?: Libtorch;
  steps: string[];   // what each step looked at and found, in order
  /** Set when an explicit choice (LIBTORCH, LIBTORCH_USE_PYTORCH=1) failed: the search stopped there. */
  failedChoice?: 'LIBTORCH' | 'python';
}

const TRIPLETS: Record<string, string> = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };
const triplet = TRIPLETS[process.arch] ?? `${process.arch}-linux-gnu`;

/** "1.13" from "1.13.0a0", "2.11.0+cu130". */
export const majorMinor = (version: string) => version.split('.').slice(0, 2).join('.');

const hasTorchCpu = (dir: string) => {
  try {
    return readdirSync(dir).some((f) => /^libtorch_cpu\.so(\.|$)/.test(f));
  } catch {
    return false;
  }
};

/** The version a libtorch folder records: its CMake config version, a build-version file, or the soname suffix. */
function versionOf(prefix: string | undefined, libDir: string): string {
  for (const f of [path.join(libDir, 'cmake', 'Torch', 'TorchConfigVersion.cmake'),
    ...(prefix ? [path.join(prefix, 'share', 'cmake', 'Torch', 'TorchConfigVersion.cmake')] : [])]) {
    const m = existsSync(f) ? /set\(PACKAGE_VERSION "([^"]+)"\)/.exec(readFileSync(f, 'utf8')) : null;
    if (m) return m[1]!;
  }
  const buildVersion = prefix ? path.join(prefix, 'build-version') : '';
  if (buildVersion && existsSync(buildVersion)) return readFileSync(buildVersion, 'utf8').trim();
  const versioned = readdirSync(libDir).map((f) => /^libtorch_cpu\.so\.(\d+\.\d+(?:\.\d+)?)$/.exec(f)?.[1]).find(Boolean);
  return versioned ?? 'unknown';
}

/** "cpu" unless the folder has libtorch_cuda; the CUDA version from a "+cu121"-style version or libcudart's soname. */
function flavourOf(libDir: string, version: string, cudaVersion?: string | null): string {
  const files = readdirSync(libDir);
  if (!files.some((f) => /^libtorch_cuda\.so/.test(f))) return 'cpu';
  if (cudaVersion) return `cuda-${cudaVersion}`;
  const cu = /\+cu(\d+)(\d)$/.exec(version);
  if (cu) return `cuda-${cu[1]}.${cu[2]}`;
  const cudart = files.map((f) => /^libcudart\.so\.(\d+(?:\.\d+)?)/.exec(f)?.[1]).find(Boolean);
  return cudart ? `cuda-${cudart}` : 'cuda';
}

export function findLibtorch(env: NodeJS.ProcessEnv = process.env): LibtorchSearch {
  const steps: string[] = [];
  if (env.LIBTORCH) {
    const prefix = path.resolve(env.LIBTORCH);
    const candidates = [path.join(prefix, 'lib'), path.join(prefix, 'lib', triplet), prefix];
    const libDir = candidates.find(hasTorchCpu);
    if (!libDir) {
      steps.push(`1. LIBTORCH=${env.LIBTORCH}: no libtorch_cpu.so in ${candidates.join(', ')}`);
      return { steps, failedChoice: 'LIBTORCH' };
    }
    const version = versionOf(prefix, libDir);
    steps.push(`1. LIBTORCH=${env.LIBTORCH}: libtorch ${version} in ${libDir}`);
    return { steps, found: { foundBy: 'LIBTORCH', libDir, version, flavour: flavourOf(libDir, version) } };
  }
  steps.push('1. LIBTORCH: not set');

  if (env.LIBTORCH_USE_PYTORCH === '1') {
    const python = env.PYTHON || 'python3';
    const r = spawnSync(python, ['-c',
      'import json, os, torch; print(json.dumps({"version": torch.__version__, "lib": os.path.join(os.path.dirname(torch.__file__), "lib"), "cuda": torch.version.cuda}))'],
    { encoding: 'utf8', env });
    const info = r.status === 0 ? (JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { version: string; lib: string; cuda: string | null }) : undefined;
    if (!info || !hasTorchCpu(info.lib)) {
      const why = r.error ? r.error.message : info ? `no libtorch_cpu.so in ${info.lib}` : (r.stderr.trim().split('\n').at(-1) ?? `exit ${r.status}`);
      steps.push(`2. LIBTORCH_USE_PYTORCH=1 (${python}): ${why}`);
      return { steps, failedChoice: 'python' };
    }
    steps.push(`2. LIBTORCH_USE_PYTORCH=1 (${python}): PyTorch ${info.version} in ${info.lib}`);
    return { steps, found: { foundBy: 'python', libDir: info.lib, version: info.version, flavour: flavourOf(info.lib, info.version, info.cuda) } };
  }
  steps.push('2. Python PyTorch: not asked for (LIBTORCH_USE_PYTORCH=1 asks)');

  const systemDirs = env.TORCH_MOE_SYSTEM_LIB_DIRS
    ? env.TORCH_MOE_SYSTEM_LIB_DIRS.split(':').filter(Boolean)
    : [`/usr/lib/${triplet}`, '/usr/local/lib', '/usr/lib', `/lib/${triplet}`];
  const libDir = systemDirs.find(hasTorchCpu);
  if (!libDir) {
    steps.push(`3. system: no libtorch_cpu.so in ${systemDirs.join(', ')}`);
    return { steps };
  }
  const version = versionOf(undefined, libDir);
  steps.push(`3. system: libtorch ${version} in ${libDir}`);
  return { steps, found: { foundBy: 'system', libDir, version, flavour: flavourOf(libDir, version) } };
}
