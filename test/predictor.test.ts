// The micro-batching predictor's scheduling, on a stand-in model whose calls return when the test says:
// which inputs go together, how many batches run at once (maxInFlight), what happens to the inputs that
// arrive meanwhile, to a failed batch's neighbours, and on close. (service.test.ts runs it on real models.)
import { describe, expect, it } from 'vitest';
import { Predictor, type Classifier } from '../lib/index.js';

const SIZE = 4, CLASSES = 3;
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
const input = (first: number) => new Float32Array([first, 0, 0, 0]);

interface Call { batch: number; firsts: number[]; finish: () => void; fail: (err: Error) => void }

/** A model whose predict answers [x, x + 1, x + 2] for an input starting with x, when `finish` is called
 * (at once on the next turn with `auto`). */
function standIn(auto = false) {
  const calls: Call[] = [];
  const model = {
    config: { kind: 'dense', inputSize: SIZE, numClasses: CLASSES },
    predict(inputs: Float32Array, options: { batchSize: number }) {
      return new Promise<Float32Array>((resolve, reject) => {
        const n = options.batchSize, out = new Float32Array(n * CLASSES);
        for (let i = 0; i < n; i++) for (let j = 0; j < CLASSES; j++) out[i * CLASSES + j] = inputs[i * SIZE]! + j;
        const call = { batch: n, firsts: Array.from({ length: n }, (_, i) => inputs[i * SIZE]!), finish: () => resolve(out), fail: reject };
        calls.push(call);
        if (auto) setImmediate(call.finish);
      });
    },
  };
  return { model: model as unknown as Classifier, calls };
}

const firstOf = (p: { probabilities: Float32Array }) => p.probabilities[0];

describe('Predictor scheduling', () => {
  it('with one batch running, the inputs that arrive meanwhile wait and go together when it returns', async () => {
    const { model, calls } = standIn();
    const predictor = new Predictor(model, { maxDelayMs: 0, maxInFlight: 1 });
    const first = [predictor.predict(input(1)), predictor.predict(input(2))];
    await nextTurn();
    expect(calls.map((c) => c.firsts)).toEqual([[1, 2]]);
    const later: Promise<{ probabilities: Float32Array }>[] = [];
    for (const x of [3, 4, 5]) {  // three separate turns while the first batch runs
      later.push(predictor.predict(input(x)));
      await nextTurn();
    }
    expect(calls.length).toBe(1);
    const callsWhenFirstResumed = first[0]!.then(() => calls.length);
    calls[0]!.finish();
    expect((await Promise.all(first)).map(firstOf)).toEqual([1, 2]);
    expect(await callsWhenFirstResumed).toBe(2);  // the next batch went before the callers resumed
    expect(calls.map((c) => c.firsts)).toEqual([[1, 2], [3, 4, 5]]);
    calls[1]!.finish();
    const answers = await Promise.all(later);
    expect(answers.map((p) => Array.from(p.probabilities))).toEqual([[3, 4, 5], [4, 5, 6], [5, 6, 7]]);
    expect(predictor.stats).toEqual({ calls: 2, inputs: 5 });
  });

  it('sends up to maxInFlight batches at once, then waits for one to return', async () => {
    const { model, calls } = standIn();
    const predictor = new Predictor(model, { maxDelayMs: 0, maxInFlight: 2 });
    const all = [predictor.predict(input(1))];
    await nextTurn();
    all.push(predictor.predict(input(2)));
    await nextTurn();
    all.push(predictor.predict(input(3)), predictor.predict(input(4)));
    await nextTurn();
    expect(calls.map((c) => c.firsts)).toEqual([[1], [2]]);  // 3 and 4 wait: two batches run
    calls[1]!.finish();
    await all[1];
    expect(calls.map((c) => c.firsts)).toEqual([[1], [2], [3, 4]]);
    calls[0]!.finish();
    calls[2]!.finish();
    expect((await Promise.all(all)).map(firstOf)).toEqual([1, 2, 3, 4]);
  });

  it('with maxDelayMs, a returning batch leaves inputs below the limit to their timer', async () => {
    const { model, calls } = standIn();
    const predictor = new Predictor(model, { maxDelayMs: 1000, maxBatch: 2, maxInFlight: 2 });
    const all = [predictor.predict(input(1)), predictor.predict(input(2))];  // a full batch goes at once
    all.push(predictor.predict(input(3)));  // below the limit: waits up to 1000 ms for a second input
    calls[0]!.finish();
    await all[0];
    await nextTurn();
    expect(calls.map((c) => c.firsts)).toEqual([[1, 2]]);
    all.push(predictor.predict(input(4)));  // fills the batch: it goes without waiting for the timer
    expect(calls.map((c) => c.firsts)).toEqual([[1, 2], [3, 4]]);
    calls[1]!.finish();
    expect((await Promise.all(all)).map(firstOf)).toEqual([1, 2, 3, 4]);
  });

  it('with maxDelayMs, inputs held back by the limit go as soon as a batch returns', async () => {
    const { model, calls } = standIn();
    const predictor = new Predictor(model, { maxDelayMs: 1000, maxBatch: 2, maxInFlight: 1 });
    const all = [predictor.predict(input(1)), predictor.predict(input(2)), predictor.predict(input(3))];
    expect(calls.map((c) => c.firsts)).toEqual([[1, 2]]);
    calls[0]!.finish();
    await all[0];
    expect(calls.map((c) => c.firsts)).toEqual([[1, 2], [3]]);  // no 1000 ms wait
    calls[1]!.finish();
    expect((await Promise.all(all)).map(firstOf)).toEqual([1, 2, 3]);
  });

  it('keeps batches to maxBatch, and close serves every waiting input first', async () => {
    const { model, calls } = standIn(true);
    const predictor = new Predictor(model, { maxDelayMs: 0, maxBatch: 2, maxInFlight: 1 });
    const all = [1, 2, 3, 4, 5].map((x) => predictor.predict(input(x)));
    await predictor.close();
    expect(calls.map((c) => c.firsts)).toEqual([[1, 2], [3, 4], [5]]);
    expect((await Promise.all(all)).map(firstOf)).toEqual([1, 2, 3, 4, 5]);
    await expect(predictor.predict(input(6))).rejects.toThrow(/closed/);
  });

  it('a failed batch rejects its own inputs only, and the inputs waiting behind it are still sent', async () => {
    const { model, calls } = standIn();
    const predictor = new Predictor(model, { maxDelayMs: 0, maxInFlight: 1 });
    const failing = [predictor.predict(input(1)), predictor.predict(input(2))];
    await nextTurn();
    const waiting = predictor.predict(input(3));
    await nextTurn();
    calls[0]!.fail(new Error('the model failed'));
    for (const p of failing) await expect(p).rejects.toThrow(/the model failed/);
    expect(calls.length).toBe(2);
    calls[1]!.finish();
    expect(firstOf(await waiting)).toBe(3);
  });

  it('refuses a maxInFlight that is not a positive integer', () => {
    const { model } = standIn();
    for (const maxInFlight of [0, 1.5, -1]) {
      expect(() => new Predictor(model, { maxInFlight })).toThrow(/options\.maxInFlight/);
    }
  });
});
