import { native } from './native.js';
import { checkInteger } from './validate.js';

/**
 * Sets the number of threads torch-moe's compute thread uses inside one operation (libtorch's intra-op
 * threads), for the whole process, from the next job on. Default: the machine's usable cores.
 */
export function setNumThreads(threads: number): void {
  native().setNumThreads(checkInteger('threads', threads, 1, 1024));
}

/** The intra-op thread count jobs run with (set by setNumThreads, else the machine's usable cores). */
export function getNumThreads(): number {
  return native().getNumThreads();
}

/** What the loaded addon was built with and what it can see. */
export function buildInfo(): { libtorchVersion: string; cudaAvailable: boolean; cudaKernels: boolean; cxx11Abi: boolean; cudaDevices: number } {
  return { ...native().buildInfo };
}
