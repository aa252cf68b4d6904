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

describe('training recipe: learning-rate schedule and dropout', () => {
  // Full-batch steps: the shuffled order cannot matter, so separate train calls can reproduce one call.
  const data = synthetic(64, tinyMoE.inputSize, tinyMoE.numClasses, 6);
  const full = { batchSize: 64 };

  it("lrSchedule 'cosine' over 2 steps takes learningRate, then learningRate · (1 + cos(π/2)) / 2", async () => {
    const lr = 0.01;
    const scheduled = new MoEClassifier({ ...tinyMoE, seed: 2 });
    const h = await scheduled.train(data, { ...full, epochs: 2, learningRate: lr, lrSchedule: 'cosine' });
    expect(h.epochs.map((e) => e.learningRate)).toEqual([lr, lr * 0.5 * (1 + Math.cos(Math.PI / 2))]);
    // The same two steps by hand: Adam's state carries over between train calls.
    const manual = new MoEClassifier({ ...tinyMoE, seed: 2 });
    await manual.train(data, { ...full, epochs: 1, learningRate: lr });
    await manual.train(data, { ...full, epochs: 1, learningRate: lr * 0.5 * (1 + Math.cos(Math.PI / 2)) });
    const [a, b] = [await scheduled.predict(data.inputs), await manual.predict(data.inputs)];
    expect(a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0)).toBeLessThan(1e-6);
    // ... and differ from two steps at the constant rate (the schedule is applied, not only reported).
    const constant = new MoEClassifier({ ...tinyMoE, seed: 2 });
    expect((await constant.train(data, { ...full, epochs: 2, learningRate: lr })).epochs.map((e) => e.learningRate)).toEqual([lr, lr]);
    const c = await constant.predict(data.inputs);
    expect(a.reduce((m, v, i) => Math.max(m, Math.abs(v - c[i]!)), 0)).toBeGreaterThan(1e-4);
    await expect(constant.train(data, { lrSchedule: 'linear' as never })).rejects.toThrow(/lrSchedule/);
  });

  it('translate moves the training inputs (4x4 here), repeats per seed, and refuses what it cannot do', async () => {
    const train = { ...full, epochs: 3, learningRate: 0.01 };
    const run = async (translate: number) => {
      const m = new MoEClassifier({ ...tinyMoE, seed: 8 });
      const h = await m.train(data, { ...train, translate });
      return { loss: h.epochs.map((e) => e.loss), p: await m.predict(data.inputs) };
    };
    const [plain, moved, again] = [await run(0), await run(1), await run(1)];
    expect(moved.loss).toEqual(again.loss);  // the shifts come from the seed
    expect(moved.p).toEqual(again.p);
    expect(moved.loss[0]).not.toBe(plain.loss[0]);  // the first step already saw moved inputs
    const m = new MoEClassifier({ ...tinyMoE, seed: 8 });
    await expect(m.train(data, { translate: -1 })).rejects.toThrow(/integer in \[0, 65536\] for options.translate/);
    await expect(m.train(data, { translate: 0.5 })).rejects.toThrow(/options.translate/);
    await expect(m.train(data, { translate: 4 })).rejects.toThrow(/translate must be smaller than the image side \(4 pixels\), got 4/);
    const oblong = new MoEClassifier({ ...tinyMoE, inputSize: 12, seed: 8 });
    await expect(oblong.train(synthetic(8, 12, tinyMoE.numClasses), { translate: 1 })).rejects.toThrow(/inputSize 12 is not a square number of pixels/);
  });

  it('dropout acts in training only, repeats per seed, and 0 is no dropout', async () => {
    const train = { ...full, epochs: 3, learningRate: 0.01 };
    const run = async (options: { dropout?: number }, kind: 'moe' | 'dense' = 'moe') => {
      const m = kind === 'moe' ? new MoEClassifier({ ...tinyMoE, seed: 4, ...options }) : new DenseClassifier({ inputSize: tinyMoE.inputSize, numClasses: tinyMoE.numClasses, hiddenSize: 32, expertHiddenSize: 16, seed: 4, ...options });
      const h = await m.train(data, train);
      return { loss: h.epochs.map((e) => e.loss), p: await m.predict(data.inputs), again: await m.predict(data.inputs) };
    };
    for (const kind of ['moe', 'dense'] as const) {
      const [none, zero, half, halfAgain] = [await run({}, kind), await run({ dropout: 0 }, kind), await run({ dropout: 0.5 }, kind), await run({ dropout: 0.5 }, kind)];
      expect(zero.loss).toEqual(none.loss);
      expect(half.loss).not.toEqual(none.loss);       // training saw the masks
      expect(halfAgain.loss).toEqual(half.loss);      // the model's own generator: the same masks per seed
      expect(half.again).toEqual(half.p);             // inference is deterministic (no dropout)
    }
    expect(() => new MoEClassifier({ ...tinyMoE, dropout: 1 })).toThrow(/options\.dropout/);
  });
});
