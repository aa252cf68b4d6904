// Preloading the libtorch libraries an addon links from one libtorch folder (RTLD_GLOBAL), so that the
// addon binds to them: used by the loader (lib/native.ts) and by the child-process probe (probe.ts).
import os from 'node:os';
import path from 'node:path';
import { readdirSync } from 'node:fs';
import { neededLibraries, soname } from './elf.js';

const isTorchLibrary = (name: string) => /^lib(torch|c10)/.test(name);

/**
 * For each libtorch soname the addon links, a file of the libtorch folder that answers to it (its own
 * DT_SONAME), in link order reversed so dependencies come first. Throws naming a soname the folder lacks.
 */
export function librariesToPreload(addon: string, libDir: string): string[] {
  const wanted = neededLibraries(addon).filter(isTorchLibrary);
  const files = readdirSync(libDir).filter((f) => isTorchLibrary(f) && /\.so(\.|$)/.test(f));
  const bySoname = new Map<string, string>();
  for (const f of files) {
    if (wanted.includes(f)) bySoname.set(f, path.join(libDir, f));  // the usual case: a file named as the soname
  }
  for (const name of wanted.filter((w) => !bySoname.has(w))) {
    const match = files.find((f) => {
      try {
        return soname(path.join(libDir, f)) === name;
      } catch {
        return false;
      }
    });
    if (!match) {
      const has = files.filter((f) => f.startsWith(name.split('.so')[0]!)).join(', ') || 'none of that name';
      throw new Error(`the addon links ${name}, which ${libDir} does not have (it has: ${has})`);
    }
    bySoname.set(name, path.join(libDir, match));
  }
  // libc10 before libtorch_cpu before libtorch: the order the libraries depend on each other.
  const rank = (s: string) => (s.startsWith('libc10') ? 0 : s.startsWith('libtorch_cpu') ? 1 : 2);
  return [...bySoname.entries()].sort((a, b) => rank(a[0]) - rank(b[0])).map(([, f]) => f);
}

/** dlopen with RTLD_GLOBAL. Node reports "did not self-register" for a plain library; it stays loaded. */
export function preload(file: string): void {
  const flags = os.constants.dlopen.RTLD_NOW | os.constants.dlopen.RTLD_GLOBAL;
  try {
    process.dlopen({ exports: {} } as NodeJS.Module, file, flags);
  } catch (err) {
    if (!/did not self-register/.test((err as Error).message)) throw err;
  }
}

