// Embedding a model in a service: concurrent predict, micro-batching, per-input routing, and the addon in
// several worker threads at once. train vs. predict on one model: the second rejects with
// ERR_TORCH_MOE_BUSY (errors.test.ts).
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { DenseClassifier, MoEClassifier } from '../lib/index.js';
import { synthetic, tinyMoE } from './helpers/data.js';

const data = synthetic(200, tinyMoE.inputSize, tinyMoE.numClasses, 5);
const D = tinyMoE.inputSize, C = tinyMoE.numClasses;
const row = (i: number) => data.inputs.slice(i * D, (i + 1) * D);

async function trained(options = {}) {
  const m = new MoEClassifier({ ...tinyMoE, seed: 3, ...options });
  await m.train(data, { epochs: 2 });
  return m;
}

describe('predict in a service', () => {
  it('concurrent predict calls give what sequential ones give', async () => {
    const m = await trained();
    const sequential = [];
    for (let i = 0; i < 40; i++) sequential.push(await m.predict(row(i)));
    const concurrent = await Promise.all(Array.from({ length: 40 }, (_, i) => m.predict(row(i))));
    expect(concurrent).toEqual(sequential);
    m.dispose();
  });

  it('routing per input agrees with routingStats, k experts each with weights summing to 1', async () => {
    const m = await trained();
    const p = await m.predict(data.inputs, { routing: true });
    expect(p.probabilities).toEqual(await m.predict(data.inputs));
    const counts = Array.from({ length: C }, () => new Array(4).fill(0));
    p.routing.forEach((r, i) => {
      expect(r.experts).toHaveLength(2);
      expect(new Set(r.experts).size).toBe(2);
      expect(r.weights[0]).toBeGreaterThanOrEqual(r.weights[1]!);
      expect(r.weights[0]! + r.weights[1]!).toBeCloseTo(1, 6);
      for (const e of r.experts) counts[data.labels[i]!]![e] += 1;
    });
    expect(counts).toEqual((await m.routingStats(data)).perClassCounts);  // the same routing, by another path
    await expect(new MoEClassifier({ ...tinyMoE }).predict(row(0), { routing: 'yes' as never })).rejects.toThrow(/options\.routing/);
    m.dispose();
  });

  it('predict over many inputs, with the output layer composed into the experts, gives what one-input calls give', async () => {
    // One call over 200 inputs against one-input calls, both on the composed weights inference keeps
    // (the native model tests compare those with forward()). With a shared expert, which is composed too.
    const m = await trained({ sharedExperts: 1 });
    const all = await m.predict(data.inputs, { routing: true });
    for (let i = 0; i < 200; i += 7) {
      const one = await m.predict(row(i), { routing: true });
      one.probabilities.forEach((v, j) => expect(all.probabilities[i * C + j]).toBeCloseTo(v, 6));
      expect(all.routing[i]!.experts).toEqual(one.routing[0]!.experts);
    }
    const { numExperts: _e, topK: _k, ...sizes } = tinyMoE;
    const dense = new DenseClassifier({ ...sizes, seed: 3 });
    await dense.train(data, { epochs: 2 });
    const denseAll = await dense.predict(data.inputs);
    const denseOne = await dense.predict(row(13));
    denseOne.forEach((v, j) => expect(denseAll[13 * C + j]).toBeCloseTo(v, 6));
    m.dispose();
    dense.dispose();
  });

  it('micro-batching merges concurrent calls and returns what unbatched predict returns', async () => {
    const m = await trained();
    const predictor = m.createPredictor({ maxBatch: 16, maxDelayMs: 5, routing: true });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => predictor.predict(row(i))));
    expect(predictor.stats.inputs).toBe(50);
    expect(predictor.stats.calls).toBeLessThanOrEqual(5);  // 50 inputs in batches of up to 16
    const alone = await m.predict(data.inputs.subarray(0, 50 * D), { routing: true, batchSize: 1 });
    results.forEach((r, i) => {
      const want = alone.probabilities.subarray(i * C, (i + 1) * C);
      r.probabilities.forEach((v, j) => expect(v).toBeCloseTo(want[j]!, 6));
      expect(r.routing!.experts).toEqual(alone.routing[i]!.experts);
    });
    // A bad input fails alone; its neighbours in the same batch are served.
    const bad = row(0);
    bad[3] = Number.NaN;
    const mixed = await Promise.allSettled([predictor.predict(row(1)), predictor.predict(bad), predictor.predict(new Float32Array(3)), predictor.predict(row(2))]);
    expect(mixed.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect((mixed[1] as PromiseRejectedResult).reason.message).toMatch(/input\[3\]/);
    await predictor.close();
    await expect(predictor.predict(row(0))).rejects.toThrow(/closed/);
    m.dispose();
  });

  it('micro-batching with maxDelayMs 0 sends what arrived in one turn of the event loop as one call', async () => {
    const m = await trained();
    const predictor = m.createPredictor({ maxDelayMs: 0 });
    const first = await Promise.all(Array.from({ length: 7 }, (_, i) => predictor.predict(row(i))));
    expect(predictor.stats).toEqual({ calls: 1, inputs: 7 });
    // Calls from a later turn (after a timer) make their own batch.
    await new Promise((resolve) => setTimeout(resolve, 2));
    await Promise.all([predictor.predict(row(7)), predictor.predict(row(8))]);
    expect(predictor.stats).toEqual({ calls: 2, inputs: 9 });
    const alone = await m.predict(data.inputs.subarray(0, 7 * D), { batchSize: 1 });
    first.forEach((r, i) => r.probabilities.forEach((v, j) => expect(v).toBeCloseTo(alone[i * C + j]!, 6)));
    await predictor.close();
    m.dispose();
  });

  it('refuses micro-batching where the batch changes the result', () => {
    for (const options of [{ routing: 'expert-choice' as const }, { capacityFactor: 1 }]) {
      const m = new MoEClassifier({ ...tinyMoE, ...options });
      expect(() => m.createPredictor()).toThrow(/micro-batching would change this model's results/);
      m.dispose();
    }
  });

  it('the addon works in two worker threads at once, each giving the main thread\'s result', async () => {
    const config = { ...tinyMoE, seed: 9 };
    const main = new MoEClassifier(config);
    await main.train(data, { epochs: 2 });
    const expected = await main.predict(data.inputs);
    main.dispose();
    const worker = path.join(import.meta.dirname, 'helpers', 'predictInWorker.mjs');
    const run = () => new Promise<Float32Array>((resolve, reject) => {
      const w = new Worker(worker, { workerData: { config, inputs: data.inputs, labels: data.labels, count: data.count } });
      w.once('message', resolve);
      w.once('error', reject);
    });
    const [a, b] = await Promise.all([run(), run()]);
    expect(a).toEqual(expected);
    expect(b).toEqual(expected);
  });

  it('a worker terminated while its predictions run or wait leaves the process serving', async () => {
    const m = await trained();
    const before = await m.predict(data.inputs);
    const worker = path.join(import.meta.dirname, 'helpers', 'predictUntilTerminated.mjs');
    for (let round = 0; round < 3; round++) {
      const w = new Worker(worker, { workerData: { rows: 40000 } });
      const first = await new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      expect(first).toBe('started');
      await new Promise((resolve) => setTimeout(resolve, 20 * round));  // before or inside the running job
      await w.terminate();
    }
    expect(await m.predict(data.inputs)).toEqual(before);
    m.dispose();
  });
});
