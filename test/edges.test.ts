// Edge configurations and concurrency: the shapes at the ends of what is accepted train and infer without
// error, and concurrent inference on one model gives the same answers as sequential inference.
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MoEClassifier } from '../lib/index.js';
import { synthetic, tinyMoE } from './helpers/data.js';

describe('edge configurations', () => {
  it.each([
    ['one expert, k = 1', { numExperts: 1, topK: 1 }, 1],
    ['k = numExperts', { numExperts: 4, topK: 4 }, 4],
    ['more experts than tokens per batch', { numExperts: 32, topK: 2 }, 2],
    ['hidden size 1', { hiddenSize: 1, expertHiddenSize: 1 }, 2],
  ])('%s', async (_name, overrides, k) => {
    const model = new MoEClassifier({ ...tinyMoE, ...overrides, seed: 1 });
    const data = synthetic(37, tinyMoE.inputSize, tinyMoE.numClasses);
    const history = await model.train(data, { epochs: 2, batchSize: 5 });
    expect(history.epochs.every((e) => Number.isFinite(e.loss))).toBe(true);
    const stats = await model.routingStats(data, { batchSize: 1 });
    expect(stats.perClassCounts.flat().reduce((a, b) => a + b, 0)).toBe(37 * k);
    expect((await model.predict(data.inputs.subarray(0, tinyMoE.inputSize))).length).toBe(tinyMoE.numClasses);
    model.dispose();
  });

  it('trains on a single sample and with a batch larger than the data', async () => {
    const model = new MoEClassifier({ ...tinyMoE, seed: 2 });
    const one = synthetic(1, tinyMoE.inputSize, tinyMoE.numClasses);
    expect((await model.train(one, { epochs: 3, batchSize: 64 })).epochs.map((e) => e.samples)).toEqual([1, 1, 1]);
    expect((await model.evaluate(one)).confusion.flat().reduce((a, b) => a + b, 0)).toBe(1);
    model.dispose();
  });
});

describe('concurrent inference', () => {
  it('many predict calls at once agree with one call, and save may run beside them', async () => {
    const model = new MoEClassifier({ ...tinyMoE, seed: 3 });
    const data = synthetic(500, tinyMoE.inputSize, tinyMoE.numClasses);
    await model.train(data, { epochs: 1 });
    const alone = await model.predict(data.inputs);
    const file = path.join(os.tmpdir(), `torch-moe-concurrent-${process.pid}.safetensors`);
    const [results] = await Promise.all([
      Promise.all(Array.from({ length: 16 }, () => model.predict(data.inputs))),
      model.save(file),
      model.evaluate(data),
    ]);
    for (const r of results) expect(r).toEqual(alone);
    // Training is refused while inference runs, and allowed once it has settled.
    const pending = model.predict(data.inputs);
    await expect(model.train(data)).rejects.toMatchObject({ code: 'ERR_TORCH_MOE_BUSY' });
    await pending;
    await expect(model.train(data)).resolves.toHaveProperty('stopped', false);
    model.dispose();
  });
});
