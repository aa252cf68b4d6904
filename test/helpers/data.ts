// Shared, memoised test data: MNIST subsets load once per test process.
import { loadMnist, type Dataset } from '../../lib/index.js';

const cache = new Map<string, Promise<Dataset>>();

export function mnist(split: 'train' | 'test', limit: number): Promise<Dataset> {
  const key = `${split}:${limit}`;
  if (!cache.has(key)) cache.set(key, loadMnist({ split, limit }));
  return cache.get(key)!;
}

/** A small synthetic dataset: class = index of the largest of the first numClasses inputs. */
export function synthetic(n: number, inputSize: number, numClasses: number, seed = 1): Dataset {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const inputs = new Float32Array(n * inputSize);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 0; j < inputSize; j++) {
      inputs[i * inputSize + j] = rand();
      if (j < numClasses && inputs[i * inputSize + j]! > inputs[i * inputSize + best]!) best = j;
    }
    labels[i] = best;
  }
  return { inputs, labels, count: n };
}

export const tinyMoE = { inputSize: 16, hiddenSize: 32, expertHiddenSize: 16, numExperts: 4, topK: 2, numClasses: 4 };
