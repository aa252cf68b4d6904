// Model files: round trip, a read by an independent eager PyTorch implementation, verification of damaged
// files, and a failed save that leaves the previous file in place.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DenseClassifier, ModelFileError, MoEClassifier, loadModel } from '../lib/index.js';
import { mnist, synthetic, tinyMoE } from './helpers/data.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'torch-moe-files-'));
});

// The Debian python3-torch interpreter, installed by `scripts/setup.sh --dev`.
const python = ['/usr/bin/python3', 'python3'].find((p) => {
  try {
    execFileSync(p, ['-c', 'import torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});

describe('save and load', () => {
  it('round-trips an MoE and a dense model with identical predictions', async () => {
    const data = synthetic(200, tinyMoE.inputSize, tinyMoE.numClasses);
    const moe = new MoEClassifier({ ...tinyMoE, seed: 4 });
    await moe.train(data, { epochs: 2 });
    const file = path.join(dir, 'moe.safetensors');
    await moe.save(file);
    const loaded = await MoEClassifier.load(file);
    expect(loaded.config).toEqual(moe.config);
    expect(await loaded.predict(data.inputs)).toEqual(await moe.predict(data.inputs));
    expect(await loaded.routingStats(data)).toEqual(await moe.routingStats(data));

    const dense = new DenseClassifier({ inputSize: 16, hiddenSize: 8, expertHiddenSize: 4, numClasses: 4, seed: 5 });
    const denseFile = path.join(dir, 'dense.safetensors');
    await dense.save(denseFile);
    expect(await (await DenseClassifier.load(denseFile)).predict(data.inputs)).toEqual(await dense.predict(data.inputs));
    await expect(MoEClassifier.load(denseFile)).rejects.toThrow(/holds a 'dense' model; load it with DenseClassifier.load/);
    // loadModel picks the class from the file's metadata.
    const anyDense = await loadModel(denseFile);
    expect(anyDense).toBeInstanceOf(DenseClassifier);
    expect(await anyDense.predict(data.inputs)).toEqual(await dense.predict(data.inputs));
    expect(await loadModel(file)).toBeInstanceOf(MoEClassifier);
  });

  it.skipIf(!python)('is read by an eager PyTorch model with the same module names and gives the same probabilities', async () => {
    const train = await mnist('train', 1000);
    const test = await mnist('test', 500);
    const model = new MoEClassifier({ seed: 6 });
    await model.train(train, { epochs: 2 });
    const file = path.join(dir, 'reference.safetensors');
    await model.save(file);
    const inputs = path.join(dir, 'inputs.f32');
    const output = path.join(dir, 'probs.f32');
    await writeFile(inputs, test.inputs);
    const info = JSON.parse(execFileSync(python!, ['scripts/pytorch_reference.py', file, inputs, output], { encoding: 'utf8' }));
    expect(info).toEqual({ params: 732946, rows: 500 });
    const theirs = new Float32Array((await readFile(output)).buffer.slice(0));
    const ours = await model.predict(test.inputs);
    expect(theirs.length).toBe(ours.length);
    let worst = 0;
    ours.forEach((p, i) => (worst = Math.max(worst, Math.abs(p - theirs[i]!))));
    expect(worst).toBeLessThan(1e-5); // float32 sums in another order
  });
});

describe('damaged files', () => {
  let good: Buffer;
  beforeAll(async () => {
    const model = new MoEClassifier({ ...tinyMoE, seed: 1 });
    const file = path.join(dir, 'good.safetensors');
    await model.save(file);
    good = await readFile(file);
  });

  const headerOf = (buf: Buffer) => {
    const n = Number(buf.readBigUInt64LE(0));
    return { n, json: JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, any> };
  };
  const withHeader = (buf: Buffer, json: Record<string, unknown>) => {
    const { n } = headerOf(buf);
    const text = Buffer.from(JSON.stringify(json));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(text.length));
    return Buffer.concat([len, text, buf.subarray(8 + n)]);
  };
  const loadBytes = async (name: string, bytes: Uint8Array) => {
    const file = path.join(dir, name);
    await writeFile(file, bytes);
    return MoEClassifier.load(file);
  };

  it('names what is wrong', async () => {
    await expect(MoEClassifier.load(path.join(dir, 'absent.safetensors'))).rejects.toThrow(/cannot read the model file \(ENOENT\)/);
    await expect(loadBytes('empty', new Uint8Array(3))).rejects.toThrow(/truncated: 3 bytes/);
    await expect(loadBytes('short', good.subarray(0, good.length - 10))).rejects.toThrow(/truncated: tensor/);
    await expect(loadBytes('text', Buffer.from('hello world, not a model file'))).rejects.toThrow(/not a safetensors file/);
    const flipped = Buffer.from(good);
    flipped[flipped.length - 5]! ^= 0xff;
    await expect(loadBytes('flipped', flipped)).rejects.toThrow(/checksum mismatch/);
    await expect(loadBytes('flipped', flipped)).rejects.toBeInstanceOf(ModelFileError);

    const { json } = headerOf(good);
    const { ['input.weight']: _dropped, ...missing } = json;
    // Dropping the entry leaves its bytes uncovered: reported as such.
    await expect(loadBytes('missing', withHeader(good, missing))).rejects.toThrow(/not covered by any tensor/);
    const renamed = Object.fromEntries(Object.entries(json).map(([k, v]) => [k === 'input.weight' ? 'input.w' : k, v]));
    await expect(loadBytes('renamed', withHeader(good, renamed))).rejects.toThrow(/missing tensor 'input.weight'/);
    const reshaped = structuredClone(json);
    reshaped['output.weight'].shape = [reshaped['output.weight'].shape[1], reshaped['output.weight'].shape[0]];
    await expect(loadBytes('reshaped', withHeader(good, reshaped))).rejects.toThrow(/tensor 'output.weight' has shape \[32, 4\] but the model's config needs \[4, 32\]/);
    const noMeta = structuredClone(json);
    delete noMeta.__metadata__;
    await expect(loadBytes('nometa', withHeader(good, noMeta))).rejects.toThrow(/without torch-moe metadata/);
    const oddKind = structuredClone(json);
    oddKind.__metadata__.config = JSON.stringify({ ...JSON.parse(oddKind.__metadata__.config), kind: 'sparse' });
    await expect(loadBytes('kind', withHeader(good, oddKind))).rejects.toThrow(/kind "sparse"; expected 'moe' or 'dense'/);
    // A bad load option is named before the file is read (this file does not exist).
    await expect(MoEClassifier.load(path.join(dir, 'absent.safetensors'), { device: 'gpu' as never }))
      .rejects.toThrow(/options\.device/);
  });
});

describe('a failed save', () => {
  it('leaves the previous file intact and no temporary file behind', async () => {
    const folder = path.join(dir, 'atomic');
    await mkdir(folder);
    const file = path.join(folder, 'model.safetensors');
    const first = new MoEClassifier({ ...tinyMoE, seed: 1 });
    await first.save(file);
    const before = await readFile(file);

    // Busy model: save is refused before anything is written.
    const data = synthetic(3000, tinyMoE.inputSize, tinyMoE.numClasses);
    const second = new MoEClassifier({ ...tinyMoE, seed: 2 });
    const training = second.train(data, { epochs: 50, batchSize: 4 });
    await expect(second.save(file)).rejects.toMatchObject({ code: 'ERR_TORCH_MOE_BUSY' });
    second.dispose();
    await training;

    // Rename fails (the target is a non-empty folder): the temporary file is removed.
    const blocked = path.join(folder, 'taken');
    await mkdir(blocked);
    await writeFile(path.join(blocked, 'x'), 'x');
    await expect(first.save(blocked)).rejects.toThrow();
    expect(await readFile(file)).toEqual(before);
    expect((await readdir(folder)).sort()).toEqual(['model.safetensors', 'taken']);
    expect(existsSync(path.join(blocked, 'x'))).toBe(true);
  });
});
