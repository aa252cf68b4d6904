// Bad input never crashes: each case gets a TypeError/RangeError/Error naming the argument and what is
// accepted. Includes the native re-checks, reached by bypassing the TypeScript layer.
import { describe, expect, it } from 'vitest';
import { DenseClassifier, MoEClassifier, runReferenceExperiment } from '../lib/index.js';
import { native } from '../lib/native.js';
import { synthetic, tinyMoE } from './helpers/data.js';

describe('configuration', () => {
  it('refuses an unknown reference-experiment setting before any work', async () => {
    await expect(runReferenceExperiment({ dense: false } as never)).rejects.toThrow(/settings.dense/);
  });

  it.each([
    [{ topK: 9, numExperts: 8 }, RangeError, /Expected an integer in \[1, 8\] for options.topK but received 9/],
    [{ numExperts: 0 }, RangeError, /options.numExperts/],
    [{ hiddenSize: 0 }, RangeError, /Expected an integer in \[1, \d+\] for options.hiddenSize but received 0/],
    [{ inputSize: 78.4 }, RangeError, /Expected an integer .* for options.inputSize but received 78.4/],
    [{ expertHiddenSize: '128' }, TypeError, /options.expertHiddenSize/],
    [{ numClasses: 1 }, RangeError, /Expected an integer in \[2, \d+\] for options.numClasses/],
    [{ auxLossWeight: -1 }, RangeError, /Expected a finite number >= 0 for options.auxLossWeight but received -1/],
    [{ auxLossWeight: NaN }, RangeError, /options.auxLossWeight/],
    [{ seed: -1 }, RangeError, /options.seed/],
    [{ topk: 2 }, RangeError, /options.topk/],
    [{ device: 'tpu' }, RangeError, /Expected one of 'cpu', 'cuda', 'auto' for options.device but received "tpu"/],
  ])('MoEClassifier(%j) throws', (options, type, message) => {
    expect(() => new MoEClassifier(options as never)).toThrow(type);
    expect(() => new MoEClassifier(options as never)).toThrow(message);
  });

  it('refuses MoE options on the dense model and a non-object', () => {
    expect(() => new DenseClassifier({ numExperts: 8 } as never)).toThrow(/options.numExperts/);
    expect(() => new MoEClassifier(42 as never)).toThrow(TypeError);
  });

  const info = native().buildInfo;
  it.skipIf(info.cudaKernels && info.cudaAvailable)("explains device 'cuda' without CUDA", () => {
    expect(() => new MoEClassifier({ ...tinyMoE, device: 'cuda' })).toThrow(/cuda/);
  });

  it('the native layer re-checks a config that bypasses TypeScript', () => {
    const { ModelHandle } = native();
    const base = { kind: 'moe' as const, inputSize: 4, hiddenSize: 4, expertHiddenSize: 4, numClasses: 2, seed: 0 };
    expect(() => new ModelHandle({ ...base, numExperts: 2, topK: 3 })).toThrow(RangeError);
    expect(() => new ModelHandle({ ...base, numExperts: 2, topK: 3 })).toThrow(/topK must be an integer in \[1, numExperts=2\], got 3/);
    expect(() => new ModelHandle({ ...base, hiddenSize: 1.5 })).toThrow(/Expected an integer for hiddenSize/);
  });
});

describe('data and training options', () => {
  const data = synthetic(64, tinyMoE.inputSize, tinyMoE.numClasses);
  const model = new MoEClassifier(tinyMoE);

  it('rejects malformed datasets', async () => {
    await expect(model.train({ ...data, inputs: data.inputs.subarray(1) })).rejects.toThrow(/multiple of inputSize \(16\) for data.inputs.length but received 1023/);
    const nan = Float32Array.from(data.inputs);
    nan[37] = NaN;
    await expect(model.train({ ...data, inputs: nan })).rejects.toThrow(/finite number .* for inputs\[37\] but received NaN/);
    nan[37] = -Infinity;
    await expect(model.predict(nan)).rejects.toThrow(/for inputs\[37\] but received -Infinity/);
    // The scan is split over the threads in chunks of 2^18 values: the lowest bad index is reported.
    const big = new Float32Array(40000 * tinyMoE.inputSize);
    big[600000] = NaN;
    big[300001] = Infinity;
    await expect(model.predict(big)).rejects.toThrow(/for inputs\[300001\] but received Infinity/);
    const bad = Uint8Array.from(data.labels);
    bad[5] = 4;
    await expect(model.train({ ...data, labels: bad })).rejects.toThrow(/Expected a class in \[0, 4\) for data.labels\[5\] but received 4/);
    await expect(model.train({ ...data, labels: data.labels.subarray(1) })).rejects.toThrow(/data.labels.length/);
    await expect(model.train({ ...data, inputs: Array.from(data.inputs) as never })).rejects.toThrow(TypeError);
    await expect(model.evaluate({ ...data, labels: new Float32Array(64) as never })).rejects.toThrow(/Uint8Array/);
    await expect(model.predict(new Float32Array(0))).rejects.toThrow(RangeError);
  });

  it.each([
    [{ learningRate: 0 }, /Expected a finite number > 0 for options.learningRate but received 0/],
    [{ learningRate: -1e-3 }, /options.learningRate/],
    [{ batchSize: 0 }, /Expected an integer in \[1, \d+\] for options.batchSize but received 0/],
    [{ epochs: 1.5 }, /Expected an integer .* for options.epochs but received 1.5/],
    [{ epochs: 2, batchsize: 3 }, /options.batchsize/],
    [{ onEpochEnd: 'log' }, /options.onEpochEnd/],
  ])('train(%j) rejects', async (options, message) => {
    await expect(model.train(data, options as never)).rejects.toThrow(message);
  });

  it('the native layer re-checks data that bypasses TypeScript', async () => {
    const handle = new (native().ModelHandle)({ kind: 'moe', inputSize: 4, hiddenSize: 4, expertHiddenSize: 4, numClasses: 2, numExperts: 2, topK: 1, seed: 0 });
    const inputs = new Float32Array(8);
    expect(() => handle.train(new Float32Array(7), new Uint8Array(2), { epochs: 1, batchSize: 1, learningRate: 1 })).toThrow(/multiple of 4/);
    await expect(handle.train(inputs, Uint8Array.of(0, 2), { epochs: 1, batchSize: 1, learningRate: 1 })).rejects.toThrow(/labels must be in \[0, numClasses=2\)/);
    expect(() => handle.train(inputs, Uint8Array.of(0, 1), { epochs: 1, batchSize: 0, learningRate: 1 })).toThrow(/batchSize/);
    // A throwing progress callback given straight to the native layer stops training and rejects with it.
    const boom = new Error('native callback failed');
    await expect(handle.train(inputs, Uint8Array.of(0, 1), { epochs: 5, batchSize: 1, learningRate: 1e-3 }, () => { throw boom; })).rejects.toBe(boom);
    inputs[3] = NaN;
    await expect(handle.predict(inputs, 10)).rejects.toThrow(/for inputs\[3\] but received NaN/);
    handle.dispose();
  });
});

describe('model state', () => {
  it('rejects use after dispose', async () => {
    const model = new MoEClassifier(tinyMoE);
    model.dispose();
    const data = synthetic(8, tinyMoE.inputSize, tinyMoE.numClasses);
    expect(() => model.paramCount()).toThrow(/disposed/);
    await expect(model.train(data)).rejects.toMatchObject({ code: 'ERR_TORCH_MOE_DISPOSED' });
    await expect(model.predict(data.inputs)).rejects.toThrow(/disposed/);
    await expect(model.save('/tmp/never.safetensors')).rejects.toThrow(/disposed/);
    expect(() => model.dispose()).not.toThrow();
  });

  it('rejects a second train, evaluate and save while training, then works again', async () => {
    const model = new MoEClassifier(tinyMoE);
    const data = synthetic(2000, tinyMoE.inputSize, tinyMoE.numClasses);
    const first = model.train(data, { epochs: 20, batchSize: 8 });
    await expect(model.train(data)).rejects.toMatchObject({ code: 'ERR_TORCH_MOE_BUSY', message: expect.stringMatching(/training/) });
    await expect(model.evaluate(data)).rejects.toMatchObject({ code: 'ERR_TORCH_MOE_BUSY' });
    await expect(model.save('/tmp/never.safetensors')).rejects.toMatchObject({ code: 'ERR_TORCH_MOE_BUSY' });
    model.dispose(); // asks the running train to stop; it settles with a partial history
    const history = await first;
    expect(history.stopped).toBe(true);
    expect(history.epochs.length).toBeLessThan(20);
  });

  it('an exception thrown by onEpochEnd stops training and rejects train with it', async () => {
    const model = new MoEClassifier(tinyMoE);
    const data = synthetic(64, tinyMoE.inputSize, tinyMoE.numClasses);
    let calls = 0;
    const boom = new Error('callback failed');
    const stack = boom.stack;
    await expect(model.train(data, { epochs: 50, onEpochEnd: () => { calls++; throw boom; } })).rejects.toBe(boom);
    expect(calls).toBe(1);
    expect(boom.stack).toBe(stack); // the user's error comes back untouched
    await expect(model.evaluate(data)).resolves.toHaveProperty('accuracy'); // still usable
    model.dispose();
  });
});
