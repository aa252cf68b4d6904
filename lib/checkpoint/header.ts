// What a model file says about itself, read from its header alone (a few KB; no tensor data, no model):
// for `torch-moe inspect`.
import { open, stat } from 'node:fs/promises';
import { MAX_HEADER, ModelFileError } from './safetensors.js';

export interface ModelFileHeader {
  file: string;
  bytes: number;
  format: string | undefined;
  version: string | undefined;
  checksum: string | undefined;
  config: Record<string, unknown> | undefined;
  tensors: { name: string; dtype: string; shape: number[] }[];
  parameters: number;  // elements over all tensors
}

export async function readModelHeader(file: string): Promise<ModelFileHeader> {
  const fail = (what: string) => new ModelFileError(`${file}: ${what}`);
  const fh = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    throw fail(`cannot read the model file (${err.code ?? String(err)})`);
  });
  try {
    const { size } = await stat(file);
    const head = Buffer.alloc(8);
    if ((await fh.read(head, 0, 8, 0)).bytesRead < 8) throw fail('truncated: shorter than 8 bytes');
    const length = Number(head.readBigUInt64LE(0));
    if (length < 2 || length > MAX_HEADER || 8 + length > size) throw fail(`not a safetensors file (header length ${length})`);
    const json = Buffer.alloc(length);
    await fh.read(json, 0, length, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(json.toString('utf8'));
    } catch {
      throw fail('not a safetensors file (the header is not JSON)');
    }
    const meta = (header.__metadata__ ?? {}) as Record<string, string>;
    let config: Record<string, unknown> | undefined;
    try {
      config = meta.config ? JSON.parse(meta.config) : undefined;
    } catch {
      throw fail('the model config in the metadata is not valid JSON');
    }
    const tensors = Object.entries(header).filter(([k]) => k !== '__metadata__')
      .map(([name, e]) => ({ name, dtype: String((e as { dtype?: unknown }).dtype), shape: (e as { shape?: number[] }).shape ?? [] }));
    const parameters = tensors.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
    return { file, bytes: size, format: meta.format, version: meta.version, checksum: meta.checksum, config, tensors, parameters };
  } finally {
    await fh.close();
  }
}
