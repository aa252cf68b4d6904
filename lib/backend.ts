// backend(): what torch-moe runs on, cheap and synchronous (it loads the addon if nothing has yet): the
// addon and how it was chosen, the libtorch found, CUDA, threads, and the BLAS libtorch's matrix products
// resolve to, read from the process's own memory map (Debian's libtorch silently runs about 35 times
// slower on the reference BLAS).
import { readFileSync } from 'node:fs';
import { platformLine } from './loader/explain.js';
import { loadReport, native, type AddonChoice } from './native.js';

export interface BlasInfo {
  kind: 'openblas' | 'reference' | 'mkl' | 'blis' | 'built-in';
  library: string | null;  // the mapped file, or null when libtorch carries its own
  /** Set when this BLAS makes matrix products slow, with the fix. */
  warning?: string;
}

export interface Backend {
  platform: string;
  addon: AddonChoice & { cudaVariant: string };
  libtorch: { foundBy: string; version: string; flavour: string; libDir: string; search: string[] };
  cuda: { kernels: boolean; available: boolean; devices: number; reason?: string };
  threads: { intraOp: number; interOp: number };
  blas: BlasInfo;
  cxx11Abi: boolean;
}

/** Which BLAS a list of mapped library paths holds (the first BLAS-like one decides). */
export function classifyBlas(mapped: string[]): BlasInfo {
  const lib = mapped.find((p) => /\/lib(open)?blas[^/]*\.so|\/libmkl_|\/libblis/.test(p));
  if (!lib) return { kind: 'built-in', library: null };
  if (/openblas/.test(lib)) return { kind: 'openblas', library: lib };
  if (/mkl/.test(lib)) return { kind: 'mkl', library: lib };
  if (/blis/.test(lib)) return { kind: 'blis', library: lib };
  return {
    kind: 'reference', library: lib,
    warning: 'libtorch resolves to the reference BLAS: matrix products run about 35 times slower than with OpenBLAS. ' +
      'Fix: sudo apt-get install libopenblas0-openmp (Debian/Ubuntu picks it as libblas.so.3 by itself)',
  };
}

function mappedLibraries(): string[] {
  try {
    const lines = readFileSync('/proc/self/maps', 'utf8').split('\n');
    return [...new Set(lines.map((l) => l.split(/\s+/)[5] ?? '').filter((p) => p.includes('.so')))];
  } catch {
    return [];
  }
}

export function backend(): Backend {
  const addon = native();
  const report = loadReport();
  const info = addon.buildInfo;
  const found = report.libtorch.found!;  // native() succeeded, so libtorch was found
  return {
    platform: platformLine(),
    addon: { ...report.addon!, cudaVariant: report.cudaVariant },
    libtorch: { ...found, search: report.libtorch.steps },
    cuda: {
      kernels: info.cudaKernels,
      available: info.cudaAvailable,
      devices: info.cudaDevices,
      reason: !info.cudaKernels ? 'this addon has no CUDA kernels (built against a libtorch without CUDA)'
        : !info.cudaAvailable ? 'the CUDA kernels are built but libtorch sees no GPU (check the driver and CUDA_VISIBLE_DEVICES)' : undefined,
    },
    threads: { intraOp: addon.getNumThreads(), interOp: addon.getNumInteropThreads() },
    blas: classifyBlas(mappedLibraries()),
    cxx11Abi: info.cxx11Abi,
  };
}
