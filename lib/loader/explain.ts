// The load-failure message: the platform, what was searched and found, the loader's own error, and the
// fixes that match the cause. One error class with a code and a reason, so callers can branch on it.
import path from 'node:path';

export type LoadFailure =
  | 'libtorch-missing'   // no libtorch found (or an explicit LIBTORCH / LIBTORCH_USE_PYTORCH choice failed)
  | 'libtorch-mismatch'  // found, but not the version/flavour/sonames the addon was built for
  | 'no-addon'           // no prebuild for this platform and no local build
  | 'undefined-symbol'   // the dynamic loader: symbols missing (another libtorch or C++ ABI than at build)
  | 'glibc'              // the dynamic loader: the system's C library is older than the build's
  | 'other';

export class NativeLoadError extends Error {
  readonly code = 'ERR_TORCH_MOE_NATIVE_LOAD';
  constructor(message: string, readonly reason: LoadFailure, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NativeLoadError';
  }
}

/** OS, arch, glibc, Node and Node-API versions: the first line of every load report. */
export function platformLine(): string {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return `${process.platform}-${process.arch}, glibc ${header?.glibcVersionRuntime ?? 'unknown'}, Node ${process.version}, ` +
    `Node-API ${process.versions.napi}`;
}

const APT = 'sudo apt-get install libtorch1.13 libopenblas0-openmp   (Debian 12; libtorch-dev as well to build from source)';

/** The cause of a dynamic-loader error message. */
export function classifyLoaderError(message: string): LoadFailure {
  if (/GLIBC(XX)?_[\d.]+' not found|version `GLIBC/.test(message)) return 'glibc';
  if (/undefined symbol/.test(message)) return 'undefined-symbol';
  if (/lib(torch|c10)[\w.]*: cannot open shared object file/.test(message)) return 'libtorch-missing';
  return 'other';
}

/** `expected`: what the addon was built for ("libtorch 1.13 (cpu)"), when known. */
export function solutions(reason: LoadFailure, packageRoot: string, expected?: string): string[] {
  const rebuild = `build the addon from source against the libtorch found: \`npx torch-moe build\` (needs cmake and a C++17 compiler; offline)`;
  switch (reason) {
    case 'libtorch-missing':
      return [
        `install the system libtorch: ${APT}`,
        'or point LIBTORCH at an unpacked libtorch folder (the one holding lib/ and share/cmake/Torch)',
        'or use a Python PyTorch install: LIBTORCH_USE_PYTORCH=1 (and PYTHON=/path/to/python3 if it is not python3)',
      ];
    case 'libtorch-mismatch':
      return [
        expected ? `use ${expected}, the libtorch the addon was built for (LIBTORCH, LIBTORCH_USE_PYTORCH=1, or the system: ${APT})`
          : `use the libtorch the addon was built for (LIBTORCH, LIBTORCH_USE_PYTORCH=1, or the system: ${APT})`,
        rebuild,
        'or, if you know the two are compatible, set TORCH_MOE_SKIP_LIBTORCH_CHECK=1 to load it anyway',
      ];
    case 'undefined-symbol':
      return [`the addon was built against another libtorch version or C++ ABI than the one loaded: ${rebuild}`];
    case 'glibc':
      return ['the operating system is older than the one the prebuild was made on (its C library lacks a needed version): ' +
        `use a newer distribution (Debian 12 / Ubuntu 22.04 or later), or ${rebuild}`];
    case 'no-addon':
      return [`there is no prebuild for ${process.platform}-${process.arch} in ${path.join(packageRoot, 'prebuilds')}: ${rebuild}`];
    default:
      return [rebuild, `check that libtorch is installed: ${APT}`];
  }
}

export function explain(headline: string, reason: LoadFailure, details: string[], packageRoot: string, expected?: string): string {
  return [
    `torch-moe could not load its native addon: ${headline}`,
    `Platform: ${platformLine()}`,
    ...details,
    'Possible solutions:',
    ...solutions(reason, packageRoot, expected).map((s) => `  - ${s}`),
  ].join('\n');
}
