// The routing and balancing options through the public API: validation and defaults, what training
// reports (expert load, drops, z-loss), routing statistics checked against identities that hold for any
// weights, model files of every routing, and the stated inference behaviour of batch-dependent routing.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MoEClassifier, type MoEClassifierOptions } from '../lib/index.js';
import { synthetic, tinyMoE } from './helpers/data.js';

const data = synthetic(300, tinyMoE.inputSize, tinyMoE.numClasses, 3);
const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);

describe('routing options', () => {
  it('fills defaults by routing and refuses invalid values and combinations with the reason', () => {
    const m = new MoEClassifier(tinyMoE);
    expect(m.config).toMatchObject({ routing: 'softmax-topk', auxLossWeight: 0.1, zLossWeight: 0, gateNoise: 0,
      gateJitter: 0, biasBalancing: null, sharedExperts: 0, capacityFactor: null });
    m.dispose();
    const ec = new MoEClassifier({ ...tinyMoE, routing: 'expert-choice' });
    expect(ec.config.auxLossWeight).toBe(0);  // nothing to balance: the default is 0 there
    ec.dispose();
    const bad: [MoEClassifierOptions, RegExp][] = [
      [{ capacityFactor: 0 }, /> 0 \(leave it unset for dropless routing\) for options\.capacityFactor but received 0/],
      [{ capacityFactor: -1 }, /options\.capacityFactor/],
      [{ biasBalancing: { rate: -0.1 } }, /> 0 for options\.biasBalancing\.rate/],
      [{ biasBalancing: { rate: 0.1, speed: 1 } as never }, /options\.biasBalancing.*speed/],
      [{ gateNoise: -1 }, /options\.gateNoise/],
      [{ gateJitter: 1 }, /\[0, 1\) for options\.gateJitter/],
      [{ sharedExperts: 1.5 }, /options\.sharedExperts/],
      [{ routing: 'top-k' as never }, /'softmax-topk', 'sigmoid-topk', 'expert-choice', 'hash' for options\.routing/],
      [{ routing: 'expert-choice', auxLossWeight: 0.1 }, /auxLossWeight has no effect with routing 'expert-choice'/],
      [{ routing: 'expert-choice', topK: 5 }, /topK/],
      [{ routing: 'hash', gateNoise: 1 }, /routing 'hash' does not have/],
      [{ routing: 'expert-choice', biasBalancing: { rate: 0.01 } }, /biasBalancing needs token-choice routing/],
      [{ capacityFactor: 1, forceBalancedRouting: true }, /forceBalancedRouting is a benchmark switch/],
    ];
    for (const [options, message] of bad) {
      expect(() => new MoEClassifier({ ...tinyMoE, ...options }), JSON.stringify(options)).toThrow(message);
    }
  });

  it('reports expert load, drops and z-loss per epoch', async () => {
    const dropless = new MoEClassifier({ ...tinyMoE, zLossWeight: 0.01 });
    const h1 = await dropless.train(data, { epochs: 2, batchSize: 32 });
    for (const e of h1.epochs) {
      expect(e.expertLoad).toHaveLength(4);
      expect(sum(e.expertLoad)).toBeCloseTo(1, 12);
      expect(e.droppedFraction).toBe(0);
      expect(e.zLoss).toBeGreaterThan(0);
      expect(e.loss).toBeCloseTo(e.classificationLoss + 0.1 * e.auxLoss + 0.01 * e.zLoss, 10);
    }
    // Capacity 0.5 * 32 * 2 / 4 = 8 of the 16 a balanced expert would get: at least half of all
    // assignments must be dropped, whatever the routing.
    const limited = new MoEClassifier({ ...tinyMoE, capacityFactor: 0.5 });
    const h2 = await limited.train(data, { epochs: 1, batchSize: 32 });
    expect(h2.epochs[0].droppedFraction).toBeGreaterThanOrEqual(0.5);
    const stats = await limited.routingStats(data, { batchSize: 32 });
    expect(stats.droppedFraction).toBeGreaterThanOrEqual(0.5);
    dropless.dispose();
    limited.dispose();
  });

  it('co-activation obeys the identities of dropless top-k routing', async () => {
    const m = new MoEClassifier({ ...tinyMoE, topK: 2 });
    await m.train(data, { epochs: 1 });
    const s = await m.routingStats(data);
    const E = 4;
    for (let i = 0; i < E; i++) {
      // Each input runs on exactly k experts: the diagonal is each expert's share of inputs (k · load),
      // and an input on expert i shares it with k - 1 others.
      expect(s.coActivation[i][i]).toBeCloseTo(2 * s.expertLoad[i], 12);
      const others = sum(s.coActivation[i]) - s.coActivation[i][i];
      expect(others).toBeCloseTo((2 - 1) * s.coActivation[i][i], 12);
      for (let j = 0; j < E; j++) expect(s.coActivation[i][j]).toBe(s.coActivation[j][i]);
    }
    expect(s.droppedFraction).toBe(0);
    m.dispose();
  });

  it('hash routing never changes with training', async () => {
    const m = new MoEClassifier({ ...tinyMoE, routing: 'hash' });
    const before = await m.routingStats(data);
    await m.train(data, { epochs: 2 });
    const after = await m.routingStats(data);
    expect(after.perClassCounts).toEqual(before.perClassCounts);
    expect(m.paramCount().total).toBe(new MoEClassifier(tinyMoE).paramCount().total - (4 * 32 + 4));  // no gate
    m.dispose();
  });

  it('saves and loads every routing, with its bias and shared experts', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'torch-moe-routing-'));
    const variants: MoEClassifierOptions[] = [
      { routing: 'sigmoid-topk', biasBalancing: { rate: 0.05 }, auxLossWeight: 0 },
      { routing: 'expert-choice', capacityFactor: 1.5 },
      { routing: 'hash' },
      { sharedExperts: 2, capacityFactor: 1.25, zLossWeight: 0.001, gateNoise: 0.5, gateJitter: 0.01 },
    ];
    for (const [i, options] of variants.entries()) {
      const m = new MoEClassifier({ ...tinyMoE, ...options, seed: i });
      await m.train(data, { epochs: 2 });
      const file = path.join(dir, `m${i}.safetensors`);
      await m.save(file);
      const loaded = await MoEClassifier.load(file);
      expect(loaded.config).toEqual(m.config);
      expect(await loaded.predict(data.inputs)).toEqual(await m.predict(data.inputs));
      m.dispose();
      loaded.dispose();
    }
  });

  it('routes inference in batches of batchSize when the routing depends on the batch, and per input otherwise', async () => {
    const n = 300, chunk = 100;
    const ec = new MoEClassifier({ ...tinyMoE, routing: 'expert-choice' });
    await ec.train(data, { epochs: 2 });
    const whole = await ec.predict(data.inputs, { batchSize: chunk });
    const width = tinyMoE.numClasses * chunk;
    for (let b = 0; b < n / chunk; b++) {
      // The stated behaviour: each batch of batchSize inputs is routed on its own, exactly as if predicted alone.
      const part = await ec.predict(data.inputs.subarray(b * chunk * tinyMoE.inputSize, (b + 1) * chunk * tinyMoE.inputSize), { batchSize: chunk });
      expect(Array.from(whole.subarray(b * width, (b + 1) * width))).toEqual(Array.from(part));
    }
    // ... so another batch size is another routing (the docs say so: keep batchSize fixed to compare).
    expect(Array.from(await ec.predict(data.inputs, { batchSize: n }))).not.toEqual(Array.from(whole));
    // evaluate routes the same batches as predict with the same batchSize.
    const probs = await ec.predict(data.inputs, { batchSize: chunk });
    let correct = 0;
    for (let i = 0; i < n; i++) {
      const row = Array.from(probs.subarray(i * 4, i * 4 + 4));
      if (row.indexOf(Math.max(...row)) === data.labels[i]) correct++;
    }
    expect((await ec.evaluate(data, { batchSize: chunk })).accuracy).toBeCloseTo(correct / n, 12);
    ec.dispose();
    // Dropless token choice routes each input by itself: the batch size changes nothing but rounding.
    const tc = new MoEClassifier({ ...tinyMoE, routing: 'sigmoid-topk' });
    await tc.train(data, { epochs: 1 });
    const a = await tc.predict(data.inputs, { batchSize: 7 }), b = await tc.predict(data.inputs, { batchSize: n });
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i], 5);
    tc.dispose();
  });
});
