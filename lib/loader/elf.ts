// The shared libraries an ELF file asks the dynamic loader for (its DT_NEEDED entries) and the name it
// answers to (DT_SONAME), read from the file with a few small positional reads (libtorch_cpu is hundreds
// of MB): what a prebuild links, recorded in its metadata, matched against a libtorch folder, shown by doctor.
import { closeSync, openSync, readSync } from 'node:fs';

const PT_LOAD = 1, PT_DYNAMIC = 2, DT_NULL = 0, DT_NEEDED = 1, DT_STRTAB = 5, DT_SONAME = 14;

/** DT_NEEDED sonames of a 64-bit little-endian ELF file (Linux x64/arm64), in file order. */
export function neededLibraries(file: string): string[] {
  return dynamicStrings(file, DT_NEEDED);
}

/** The DT_SONAME of a shared library, if it has one. */
export function soname(file: string): string | undefined {
  return dynamicStrings(file, DT_SONAME)[0];
}

function dynamicStrings(file: string, wanted: number): string[] {
  const fd = openSync(file, 'r');
  try {
    const read = (offset: number, length: number) => {
      const b = Buffer.alloc(length);
      return b.subarray(0, readSync(fd, b, 0, length, offset));
    };
    const h = read(0, 64);
    if (h.length < 64 || h.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF file`);
    if (h[4] !== 2 || h[5] !== 1) throw new Error(`${file} is not a 64-bit little-endian ELF file`);
    const phoff = Number(h.readBigUInt64LE(0x20)), phentsize = h.readUInt16LE(0x36), phnum = h.readUInt16LE(0x38);
    const ph = read(phoff, phentsize * phnum);
    const segments = Array.from({ length: phnum }, (_, i) => {
      const p = i * phentsize;
      return { type: ph.readUInt32LE(p), offset: Number(ph.readBigUInt64LE(p + 8)), vaddr: Number(ph.readBigUInt64LE(p + 16)),
        filesz: Number(ph.readBigUInt64LE(p + 32)) };
    });
    const dynamic = segments.find((s) => s.type === PT_DYNAMIC);
    if (!dynamic) return [];
    const dyn = read(dynamic.offset, dynamic.filesz);
    const entries: [number, number][] = [];
    for (let p = 0; p + 16 <= dyn.length; p += 16) {
      const tag = Number(dyn.readBigInt64LE(p));
      if (tag === DT_NULL) break;
      entries.push([tag, Number(dyn.readBigUInt64LE(p + 8))]);
    }
    // DT_STRTAB is a virtual address: map it to a file offset through the loadable segment holding it.
    const strtabAddr = entries.find(([t]) => t === DT_STRTAB)?.[1];
    const load = segments.find((s) => s.type === PT_LOAD && strtabAddr !== undefined && strtabAddr >= s.vaddr && strtabAddr < s.vaddr + s.filesz);
    if (strtabAddr === undefined || !load) return [];
    const strtab = strtabAddr - load.vaddr + load.offset;
    return entries.filter(([t]) => t === wanted).map(([, off]) => {
      const s = read(strtab + off, 256);
      return s.toString('latin1', 0, s.indexOf(0) >= 0 ? s.indexOf(0) : s.length);
    });
  } finally {
    closeSync(fd);
  }
}
