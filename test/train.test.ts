// Training on real MNIST subsets reaches accuracy; progress, abort and seeded reproducibility behave as
// documented.
import { describe, expect, it } from 'vitest';
import { DenseClassifier, MoEClassifier } from '../lib/index.js';
import { mnist, synthetic, tinyMoE } from './helpers/data.js';

describe('training on MNIST', () => {
  it('the MoE and the dense baseline learn a 2,000-image subset', async () => {
    const train = await mnist('train', 2000);
    const test = await mnist('test', 2000);
    const moe = new MoEClassifier({ seed: 0 });
    const epochs: number[] = [];
    const history = await moe.train(train, { epochs: 5, batchSize: 64, learningRate: 1e-3, onEpochEnd: (m) => epochs.push(m.epoch) });
    expect(epochs).toEqual([1, 2, 3, 4, 5]);
    expect(history.stopped).toBe(false);
    expect(history.epochs.map((e) => e.epoch)).toEqual(epochs);
    for (const e of history.epochs) {
      expect(e.samples).toBe(2000);
      expect(e.loss).toBeCloseTo(e.classificationLoss + 0.1 * e.auxLoss, 10);
      expect(e.seconds).toBeGreaterThan(0);
    }
    expect(history.epochs[4]!.classificationLoss).toBeLessThan(history.epochs[0]!.classificationLoss / 2);
    // aux = N·Σ f_i·P_i is k = 2 at perfect balance and at most N·k = 16; trained with weight 0.1 it stays near 2.
    expect(history.epochs[4]!.auxLoss).toBeGreaterThan(1.9);
    expect(history.epochs[4]!.auxLoss).toBeLessThan(2.5);
    // 5 epochs on 2,000 images reach about 85% on the (harder) first 2,000 test images; chance is 10%.
    expect((await moe.evaluate(test)).accuracy).toBeGreaterThan(0.8);

    const dense = new DenseClassifier({ seed: 0 });
    const dh = await dense.train(train, { epochs: 5 });
    expect(dh.epochs.every((e) => e.auxLoss === 0)).toBe(true);
    expect((await dense.evaluate(test)).accuracy).toBeGreaterThan(0.8);

    // Routing specialises: each digit's primary expert takes a clearly larger share than uniform (1/8).
    const routing = await moe.routingStats(test);
    expect(Math.min(...routing.primary.map((p) => p.share))).toBeGreaterThan(0.2);
    moe.dispose();
    dense.dispose();
  });
});

describe('training control', () => {
  it('seeded runs are reproducible and another seed differs', async () => {
    const data = synthetic(400, tinyMoE.inputSize, tinyMoE.numClasses);
    const run = async (seed: number) => {
      const m = new MoEClassifier({ ...tinyMoE, seed });
      const h = await m.train(data, { epochs: 3, batchSize: 32 });
      const p = await m.predict(data.inputs);
      m.dispose();
      return { losses: h.epochs.map((e) => e.loss), p };
    };
    const a = await run(7);
    const b = await run(7);
    const c = await run(8);
    expect(b.losses).toEqual(a.losses);
    expect(b.p).toEqual(a.p);
    expect(c.p).not.toEqual(a.p);
  });

  it('two train calls continue where the first stopped (optimizer state is kept)', async () => {
    const data = synthetic(400, tinyMoE.inputSize, tinyMoE.numClasses);
    const m = new MoEClassifier({ ...tinyMoE, seed: 1 });
    const first = await m.train(data, { epochs: 2 });
    const second = await m.train(data, { epochs: 2 });
    expect(second.epochs[1]!.classificationLoss).toBeLessThan(first.epochs[0]!.classificationLoss);
    m.dispose();
  });

  it('an AbortSignal stops at the next batch and leaves a usable model', async () => {
    const data = synthetic(4000, tinyMoE.inputSize, tinyMoE.numClasses);
    const m = new MoEClassifier({ ...tinyMoE, seed: 2 });
    const controller = new AbortController();
    const history = await m.train(data, {
      epochs: 1000,
      batchSize: 16,
      signal: controller.signal,
      onEpochEnd: (e) => {
        if (e.epoch === 2) controller.abort();
      },
    });
    expect(history.stopped).toBe(true);
    expect(history.epochs.length).toBeGreaterThanOrEqual(2);
    expect(history.epochs.length).toBeLessThan(1000);
    const r = await m.evaluate(data);
    expect(r.accuracy).toBeGreaterThan(0.5);

    // Aborted before it starts: no step is taken and the weights stay as they were.
    const before = await m.predict(data.inputs);
    const aborted = await m.train(data, { epochs: 3, signal: AbortSignal.abort() });
    expect(aborted).toEqual({ epochs: [], stopped: true });
    expect(await m.predict(data.inputs)).toEqual(before);
    m.dispose();
  });
});
