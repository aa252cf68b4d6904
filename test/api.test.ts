// The public API's shapes and invariants, each checked against an independent computation: parameter
// counts by hand, evaluate against predict's argmax, routing stats against their own definitions.
import { describe, expect, it } from 'vitest';
import { DenseClassifier, MoEClassifier, buildInfo, getNumThreads, setNumThreads } from '../lib/index.js';
import { synthetic, tinyMoE } from './helpers/data.js';

// Linear(a->b) has a*b + b parameters.
const linear = (a: number, b: number) => a * b + b;

describe('parameter counts', () => {
  it('match the reference models and a hand count', () => {
    const moe = new MoEClassifier({ inputSize: 784, hiddenSize: 256, expertHiddenSize: 128, numExperts: 8, topK: 2, numClasses: 10, auxLossWeight: 0.1, seed: 0 });
    expect(moe.paramCount()).toEqual({ total: 732946, active: 337426 });
    const dense = new DenseClassifier({ inputSize: 784, hiddenSize: 256, expertHiddenSize: 128, numClasses: 10, seed: 0 });
    expect(dense.paramCount()).toEqual({ total: 269450, active: 269450 });
    const expert = linear(256, 128) + linear(128, 256);
    expect(moe.paramCount().total).toBe(linear(784, 256) + linear(256, 8) + 8 * expert + linear(256, 10));
    expect(moe.paramCount().active).toBe(linear(784, 256) + linear(256, 8) + 2 * expert + linear(256, 10));
    const odd = new MoEClassifier({ ...tinyMoE, numExperts: 5, topK: 3 });
    const e = linear(32, 16) + linear(16, 32);
    expect(odd.paramCount()).toEqual({
      total: linear(16, 32) + linear(32, 5) + 5 * e + linear(32, 4),
      active: linear(16, 32) + linear(32, 5) + 3 * e + linear(32, 4),
    });
    [moe, dense, odd].forEach((m) => m.dispose());
  });
});

describe('inference results', () => {
  const data = synthetic(300, tinyMoE.inputSize, tinyMoE.numClasses);
  const model = new MoEClassifier({ ...tinyMoE, seed: 3 });

  it('predict returns probability rows that sum to 1, independent of the batch size up to rounding', async () => {
    const probs = await model.predict(data.inputs);
    expect(probs.length).toBe(300 * 4);
    for (let i = 0; i < 300; i++) {
      const row = probs.subarray(i * 4, i * 4 + 4);
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    }
    // BLAS blocks differently for other row counts: equal to float32 rounding, not bit for bit.
    const small = await model.predict(data.inputs, { batchSize: 7 });
    small.forEach((p, i) => expect(Math.abs(p - probs[i]!)).toBeLessThan(1e-6));
  });

  it('evaluate agrees with the argmax of predict', async () => {
    await model.train(data, { epochs: 3, batchSize: 32, learningRate: 5e-3 });
    const probs = await model.predict(data.inputs);
    const confusion = Array.from({ length: 4 }, () => new Array(4).fill(0));
    let correct = 0;
    let ce = 0;
    for (let i = 0; i < 300; i++) {
      const row = Array.from(probs.subarray(i * 4, i * 4 + 4));
      const pred = row.indexOf(Math.max(...row));
      confusion[data.labels[i]!]![pred] += 1;
      if (pred === data.labels[i]) correct++;
      ce -= Math.log(row[data.labels[i]!]!);
    }
    const r = await model.evaluate(data);
    expect(r.confusion).toEqual(confusion);
    expect(r.accuracy).toBeCloseTo(correct / 300, 12);
    expect(r.loss).toBeCloseTo(ce / 300, 4);
    r.perClassAccuracy.forEach((acc, c) => {
      const row = confusion[c]!;
      expect(acc).toBeCloseTo(row[c]! / row.reduce((a, b) => a + b, 0), 12);
    });
  });

  it('routingStats obeys its definitions', async () => {
    const s = await model.routingStats(data);
    const k = tinyMoE.topK;
    const counts = s.perClassCounts.flat();
    expect(counts.reduce((a, b) => a + b, 0)).toBe(300 * k);
    expect(s.expertLoad.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(s.importance.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    s.perClass.forEach((row, c) => {
      const n = s.perClassCounts[c]!.reduce((a, b) => a + b, 0);
      expect(n).toBe(k * Array.from(data.labels).filter((l) => l === c).length);
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      const sorted = row.map((share, expert) => ({ share, expert })).sort((a, b) => b.share - a.share || a.expert - b.expert);
      expect(s.primary[c]).toEqual(sorted[0]);
      expect(s.secondary[c]).toEqual(sorted[1]);
    });
    const load = s.expertLoad;
    const entropy = -load.reduce((a, p) => a + (p > 0 ? p * Math.log(p) : 0), 0);
    expect(s.entropy).toBeCloseTo(entropy, 12);
    const mean = 1 / load.length;
    const cv = Math.sqrt(load.reduce((a, p) => a + (p - mean) ** 2, 0) / load.length) / mean;
    expect(s.loadCV).toBeCloseTo(cv, 12);
  });

  it('reports its device, config and build', () => {
    const b = buildInfo();
    expect(model.device).toBe(b.cudaKernels && b.cudaAvailable ? 'cuda' : 'cpu');
    expect(model.config).toMatchObject({ kind: 'moe', numExperts: 4, topK: 2, auxLossWeight: 0.1 });
    expect(buildInfo().libtorchVersion).toMatch(/^\d+\.\d+/);
  });

  it('sets the thread count', () => {
    const before = getNumThreads();
    setNumThreads(1);
    expect(getNumThreads()).toBe(1);
    setNumThreads(before);
    expect(getNumThreads()).toBe(before);
  });
});
