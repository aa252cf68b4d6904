// safetensors encoding and decoding for float32 tensors, with torch-moe's metadata and a SHA-256 of the
// tensor bytes. Layout: u64 little-endian header length N, N bytes of JSON (padded with spaces to a
// multiple of 8), then the tensor bytes in header order. Python's `safetensors` reads these files.
import { createHash } from 'node:crypto';

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export class ModelFileError extends Error {
  readonly code = 'ERR_TORCH_MOE_MODEL_FILE';
  constructor(message: string) {
    super(message);
    this.name = 'ModelFileError';
  }
}

export const MAX_HEADER = 100 * 1024 * 1024;  // the safetensors limit: refuse absurd headers before parsing

function checksum(tensors: NamedTensor[]): string {
  const hash = createHash('sha256');
  for (const t of tensors) hash.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return `sha256:${hash.digest('hex')}`;
}

/** Encodes tensors (float32, little-endian like every platform torch-moe runs on) and string metadata. */
export function encodeSafetensors(tensors: NamedTensor[], metadata: Record<string, string>): Buffer {
  const header: Record<string, unknown> = { __metadata__: { ...metadata, checksum: checksum(tensors) } };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

export interface DecodedFile {
  tensors: NamedTensor[];
  metadata: Record<string, string>;
}

/** Decodes and verifies a file: header length, JSON, dtypes, shapes vs. byte ranges, and the checksum. */
export function decodeSafetensors(buf: Uint8Array, file: string): DecodedFile {
  const fail = (what: string) => new ModelFileError(`${file}: ${what}`);
  if (buf.length < 8) throw fail(`truncated: ${buf.length} bytes, a safetensors file needs at least 8`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > MAX_HEADER || headerLength < 2) throw fail(`not a safetensors file (header length ${headerLength})`);
  if (8 + headerLength > buf.length) throw fail(`truncated: the header needs ${headerLength} bytes, the file has ${buf.length - 8} after the length`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + 8, headerLength).toString('utf8'));
  } catch {
    throw fail('not a safetensors file (the header is not JSON)');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw fail('not a safetensors file (the header is not a JSON object)');
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  const dataStart = 8 + headerLength;
  const dataLength = buf.length - dataStart;
  const tensors: NamedTensor[] = [];
  let covered = 0;
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e.dtype !== 'F32') throw fail(`tensor '${name}' has dtype ${String(e.dtype)}; torch-moe reads F32 only`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) throw fail(`tensor '${name}' has a malformed shape`);
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => Number.isInteger(d) && d >= 0) || offsets[0] > offsets[1]) {
      throw fail(`tensor '${name}' has malformed data_offsets`);
    }
    const [begin, end] = offsets as [number, number];
    const numel = (e.shape as number[]).reduce((a, b) => a * b, 1);
    if (end - begin !== numel * 4) throw fail(`tensor '${name}' has shape [${(e.shape as number[]).join(', ')}] but ${end - begin} bytes`);
    if (end > dataLength) throw fail(`truncated: tensor '${name}' ends at byte ${end} of the data, which has ${dataLength}`);
    // Copy into an aligned buffer: the file's data region need not be 4-byte aligned in memory.
    const bytes = new Uint8Array(numel * 4);
    bytes.set(buf.subarray(dataStart + begin, dataStart + end));
    tensors.push({ name, shape: e.shape as number[], data: new Float32Array(bytes.buffer) });
    covered += end - begin;
  }
  if (covered !== dataLength) throw fail(`has ${dataLength - covered} bytes not covered by any tensor (damaged or not written by torch-moe)`);
  // The checksum covers the tensors in file order, as they were written.
  tensors.sort((a, b) => {
    const oa = (header[a.name] as { data_offsets: number[] }).data_offsets[0]!;
    const ob = (header[b.name] as { data_offsets: number[] }).data_offsets[0]!;
    return oa - ob;
  });
  if (metadata.checksum !== undefined && metadata.checksum !== checksum(tensors)) {
    throw fail('checksum mismatch: the tensor data is damaged');
  }
  return { tensors, metadata };
}
