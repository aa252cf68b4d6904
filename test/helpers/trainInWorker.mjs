// Worker for computeThread.test.ts: trains a model for long enough to be terminated mid-run, and posts a
// message after the first epoch.
import { parentPort } from 'node:worker_threads';
import { MoEClassifier, loadMnist } from '../../dist/lib/index.js';

const train = await loadMnist({ split: 'train', limit: 2000 });
const model = new MoEClassifier({ seed: 0 });
await model.train(train, { epochs: 100, onEpochEnd: () => parentPort.postMessage('epoch') });
