// Worker for service.test.ts: starts predictions over a large array that lives in this worker (one runs, the
// others wait in the queue), says so, and is terminated by the main thread mid-job. The addon reads
// inference inputs in place, so the terminated environment must not free them under a running job.
import { parentPort, workerData } from 'node:worker_threads';
import { MoEClassifier } from '../../dist/lib/index.js';

const model = new MoEClassifier({ seed: 1 });  // the reference size: a large predict takes a while
const inputs = new Float32Array(workerData.rows * 784).map((_, i) => (i % 7 === 0 ? (i % 255) / 255 : 0));
const pending = [model.predict(inputs), model.predict(inputs), model.predict(inputs)];
parentPort.postMessage('started');
await Promise.all(pending);
parentPort.postMessage('finished');  // too late: the test terminates this worker before
