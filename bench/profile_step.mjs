// Where a CUDA training step's time goes: trains the reference MoE for a few eager steps (no CUDA graph,
// so that a kernel profiler sees each kernel) at one batch size. Run under Nsight Compute, e.g.
//   ncu --metrics gpu__time_duration.sum --print-summary per-kernel node bench/profile_step.mjs 1024
import { MoEClassifier, loadMnist } from '../dist/lib/index.js';

const batchSize = Number(process.argv[2] ?? 1024);
const steps = Number(process.argv[3] ?? 8);
const data = await loadMnist({ split: 'train', limit: batchSize * steps });
const model = new MoEClassifier({ device: 'cuda' });
const h = await model.train(data, { epochs: 1, batchSize, cudaGraph: false });
console.error(`profiled ${steps} eager steps at batch ${batchSize}: ${h.epochs[0].seconds.toFixed(3)} s`);
model.dispose();
