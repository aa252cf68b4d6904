import { native } from './native.js';
import { checkInteger } from './validate.js';

/** Sets libtorch's intra-op thread count for the whole process (default: libtorch's own; 1 with Debian's 1.13 build). */
export function setNumThreads(threads: number): void {
  native().setNumThreads(checkInteger('threads', threads, 1, 1024));
}

/** libtorch's current intra-op thread count. */
export function getNumThreads(): number {
  return native().getNumThreads();
}

/** What the loaded addon was built with and what it can see. */
export function buildInfo(): { libtorchVersion: string; cudaAvailable: boolean; cudaKernels: boolean } {
  return { ...native().buildInfo };
}
