// Reader for the IDX format of MNIST and Fashion-MNIST: a big-endian header (magic 0x0000 <type> <dims>,
// then one uint32 per dimension) followed by the data. Checks the magic, the dimensions and the size.
import { readFile } from 'node:fs/promises';

export class DataFileError extends Error {
  readonly code = 'ERR_TORCH_MOE_DATA';
  constructor(message: string) {
    super(message);
    this.name = 'DataFileError';
  }
}

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const UBYTE = 0x08;

/** Parses an unsigned-byte IDX buffer whose dimension count must be `rank`. */
export function parseIdx(buf: Uint8Array, rank: number, file: string): IdxArray {
  if (buf.length < 4) throw new DataFileError(`${file}: truncated: ${buf.length} bytes, too short for an IDX header`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint16(0) !== 0 || buf[2] !== UBYTE || buf[3] !== rank) {
    const magic = view.getUint32(0).toString(16).padStart(8, '0');
    throw new DataFileError(
      `${file}: not an unsigned-byte IDX file of rank ${rank}: magic 0x${magic}, expected 0x000008${rank.toString(16).padStart(2, '0')}`,
    );
  }
  const headerBytes = 4 + 4 * rank;
  if (buf.length < headerBytes) throw new DataFileError(`${file}: truncated: the header needs ${headerBytes} bytes, the file has ${buf.length}`);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const expected = headerBytes + dims.reduce((a, b) => a * b, 1);
  if (buf.length !== expected) {
    throw new DataFileError(`${file}: ${buf.length < expected ? 'truncated' : 'has trailing bytes'}: header dimensions [${dims.join(', ')}] need ${expected} bytes, the file has ${buf.length}`);
  }
  return { dims, data: buf.subarray(headerBytes) };
}

export async function readIdx(file: string, rank: number): Promise<IdxArray> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DataFileError(`${file}: cannot read the data file (${code ?? String(err)})`);
  }
  return parseIdx(buf, rank, file);
}
