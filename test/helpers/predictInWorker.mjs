// Worker for service.test.ts: builds a seeded model in its own thread, trains it briefly on the data it is
// given, and posts back its predictions.
import { parentPort, workerData } from 'node:worker_threads';
import { MoEClassifier } from '../../dist/lib/index.js';

const { config, inputs, labels, count } = workerData;
const model = new MoEClassifier(config);
await model.train({ inputs, labels, count }, { epochs: 2 });
parentPort.postMessage(await model.predict(inputs));
model.dispose();
