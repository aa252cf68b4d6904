// The CUDA path through the public API: device selection, the reference experiment's accuracy bars on a
// GPU, graph replay against the eager step, seeded repeatability, and model files across devices.
// Without CUDA kernels or a GPU the suite is skipped and says why (CI runs on CPU machines).
import os from 'node:os';
import path from 'node:path';
import { mkdtemp } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { MoEClassifier, buildInfo, loadModel, referenceSettings, runReferenceExperiment } from '../lib/index.js';
import { mnist } from './helpers/data.js';

const info = buildInfo();
const gpu = info.cudaKernels && info.cudaAvailable;
const reason = !info.cudaKernels ? 'this build has no CUDA kernels (libtorch without CUDA)' : 'no GPU is visible';
if (!gpu) console.warn(`test/cuda.test.ts: skipped, ${reason}`);

describe('device selection (any machine)', () => {
  it("'auto' means CUDA exactly when the kernels are built and a GPU is visible", () => {
    const model = new MoEClassifier({ inputSize: 8, hiddenSize: 8, expertHiddenSize: 4, numExperts: 4, numClasses: 3 });
    try {
      expect(model.device).toBe(gpu ? 'cuda' : 'cpu');
      expect(model.expertPath).toBe(gpu ? 'padded-bmm' : 'grouped-loop');
    } finally {
      model.dispose();
    }
  });
});

describe.skipIf(!gpu)(`CUDA path${gpu ? '' : ` (skipped: ${reason})`}`, () => {
  it('trains the reference experiment to the CPU accuracy bars', async () => {
    const r = await runReferenceExperiment({ ...referenceSettings, device: 'cuda' });
    expect(r.device).toBe('cuda');
    expect(r.expertPath).toBe('padded-bmm');
    expect(r.moe.test.accuracy).toBeGreaterThanOrEqual(0.945);
    expect(r.dense.test.accuracy).toBeGreaterThanOrEqual(0.94);
    const aux = r.moe.history.epochs.at(-1)!.auxLoss;
    expect(aux).toBeGreaterThanOrEqual(1.9);
    expect(aux).toBeLessThanOrEqual(2.3);
  }, 600_000);

  it('replays the captured step with the eager losses, and repeats a seeded run exactly', async () => {
    const data = await mnist('train', 3000);
    const run = async (cudaGraph: boolean) => {
      const model = new MoEClassifier({ seed: 4, device: 'cuda' });
      try {
        const h = await model.train(data, { epochs: 3, batchSize: 64, cudaGraph });
        return h.epochs.map((e) => [e.loss, e.auxLoss, e.accuracy]);
      } finally {
        model.dispose();
      }
    };
    const graphA = await run(true);
    const graphB = await run(true);
    const eager = await run(false);
    expect(graphB).toEqual(graphA);
    expect(eager).toEqual(graphA);
    expect(graphA[2][0]).toBeLessThan(graphA[0][0]);
  });

  it('saves a CUDA model that loads on the CPU with the same predictions', async () => {
    const data = await mnist('train', 2000);
    const test = await mnist('test', 500);
    const model = new MoEClassifier({ seed: 2, device: 'cuda' });
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'torch-moe-cuda-')), 'm.safetensors');
    try {
      await model.train(data, { epochs: 2 });
      await model.save(file);
      const onCpu = await loadModel(file, { device: 'cpu' });
      expect(onCpu.device).toBe('cpu');
      const [a, b] = [await model.predict(test.inputs), await onCpu.predict(test.inputs)];
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
      expect(worst).toBeLessThan(1e-4);
      onCpu.dispose();
    } finally {
      model.dispose();
    }
  });
});
