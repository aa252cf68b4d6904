// All native work runs on one compute thread per process: the thread count defaults to the machine's
// usable cores and setNumThreads changes it for later jobs; inference of another model runs between the
// batches of a running training job instead of waiting for it to finish; a worker thread terminated in
// the middle of a job leaves the compute thread and the process working.
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { MoEClassifier, getNumThreads, setNumThreads } from '../lib/index.js';
import { mnist } from './helpers/data.js';

describe('compute thread', () => {
  it('defaults to the usable cores and takes setNumThreads', () => {
    expect(getNumThreads()).toBe(os.availableParallelism());
    setNumThreads(1);
    expect(getNumThreads()).toBe(1);
    setNumThreads(os.availableParallelism());
  });

  it("runs another model's evaluate between the batches of a running train", async () => {
    const train = await mnist('train', 5000);
    const test = await mnist('test', 200);
    const trainer = new MoEClassifier({ seed: 0 });
    const other = new MoEClassifier({ seed: 1 });
    const epochsEnded: number[] = [];
    let evaluation: Promise<number> | undefined;
    // Queued from inside the first epoch's callback: training is certainly running then.
    const training = trainer.train(train, {
      epochs: 6,
      onEpochEnd: () => {
        epochsEnded.push(performance.now());
        evaluation ??= other.evaluate(test).then(() => performance.now());
      },
    });
    const trained = await training;
    const evaluatedAt = await evaluation!;
    trainer.dispose();
    other.dispose();
    expect(trained.epochs).toHaveLength(6);
    // Had evaluate waited for the train call, it would have settled after the last epoch.
    expect(evaluatedAt).toBeLessThan(epochsEnded.at(-1)!);
  });

  it('survives a worker thread terminated while its model trains', async () => {
    const script = path.resolve('test/helpers/trainInWorker.mjs');
    const worker = new Worker(script);
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve()); // the worker's first epoch ended: training is running
      worker.once('error', reject);
    });
    await worker.terminate();
    // The compute thread finishes (or drops) the orphaned job and goes on serving this thread.
    const test = await mnist('test', 200);
    const model = new MoEClassifier({ seed: 2 });
    const result = await model.evaluate(test);
    model.dispose();
    expect(result.accuracy).toBeGreaterThanOrEqual(0);
  });
});
