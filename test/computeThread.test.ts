// All native work runs on one compute thread per process: the thread count defaults to the machine's
// usable cores and setNumThreads changes it for later jobs; inference of another model runs between the
// batches of a running training job instead of waiting for it to finish.
import os from 'node:os';
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

  it("runs another model's evaluate between training batches", async () => {
    const train = await mnist('train', 5000);
    const test = await mnist('test', 200);
    const trainer = new MoEClassifier({ seed: 0 });
    const other = new MoEClassifier({ seed: 1 });
    const epochsEnded: number[] = [];
    const training = trainer.train(train, { epochs: 6, onEpochEnd: () => epochsEnded.push(performance.now()) });
    await new Promise((r) => setTimeout(r, 50)); // training has started
    const evaluated = await other.evaluate(test);
    const evaluatedAt = performance.now();
    const trained = await training;
    trainer.dispose();
    other.dispose();
    expect(evaluated.accuracy).toBeGreaterThanOrEqual(0);
    expect(trained.epochs).toHaveLength(6);
    // Had evaluate waited for the whole train call, it would have settled after the last epoch.
    expect(evaluatedAt).toBeLessThan(epochsEnded.at(-1)!);
  });
});
