// GPU benchmark: torch-moe against an eager PyTorch reference of the same model (bench/eager_moe_gpu.py),
// in one run on the same GPU, one epoch of the full 60,000 MNIST training images after a warm-up epoch,
// at batch 64 and 1024. Also times torch-moe's eager step (no CUDA graph), forced-balanced routing (the
// expert path apart from the router's balance) and the dense model, to show where the time goes.
// Writes bench/results/gpu-<device>-<date>-<commit>.{json,md}. Run: npm run bench:gpu (after npm run build).
//
//   node bench/gpu.mjs [--reps 3] [--out bench/results] [--commit <sha>]
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DenseClassifier, MoEClassifier, buildInfo, loadMnist } from '../dist/lib/index.js';
import { currentCommit, lastJsonLine, median, slug } from './common.mjs';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '3' }, out: { type: 'string', default: 'bench/results' }, commit: { type: 'string' } } });
const reps = Number(values.reps);
const batches = [64, 1024];
const info = buildInfo();
if (!(info.cudaKernels && info.cudaAvailable)) {
  console.error('bench/gpu.mjs needs a CUDA build of torch-moe and a visible GPU (buildInfo: ' + JSON.stringify(info) + ')');
  process.exit(2);
}
const train = await loadMnist({ split: 'train' });
const n = train.labels.length;

const variants = [
  { name: 'torch-moe MoE (CUDA graph)', make: () => new MoEClassifier({ device: 'cuda' }), opts: {} },
  { name: 'torch-moe MoE, eager step (no graph)', make: () => new MoEClassifier({ device: 'cuda' }), opts: { cudaGraph: false } },
  { name: 'torch-moe MoE, forced balanced routing', make: () => new MoEClassifier({ device: 'cuda', forceBalancedRouting: true }), opts: {} },
  { name: 'torch-moe dense (one 128 FFN)', make: () => new DenseClassifier({ device: 'cuda' }), opts: {} },
];
const rows = [];
for (const batchSize of batches) {
  for (const v of variants) {
    const model = v.make();
    try {
      await model.train(train, { epochs: 1, batchSize, ...v.opts });  // warm-up: upload, cuBLAS, capture
      const seconds = [];
      let accuracy = 0;
      for (let r = 0; r < reps; r++) {
        const h = await model.train(train, { epochs: 1, batchSize, ...v.opts });
        seconds.push(h.epochs[0].seconds);
        accuracy = h.epochs[0].accuracy;
      }
      const m = median(seconds);
      rows.push({ impl: v.name, batch: batchSize, seconds, median_seconds: m, samples_per_second: n / m, train_accuracy: accuracy, expert_path: model.expertPath ?? 'dense' });
      console.error(`${v.name.padEnd(42)} batch ${String(batchSize).padStart(4)}: ${(n / m).toFixed(0).padStart(9)} samples/s (epoch ${(m * 1000).toFixed(1)} ms)`);
    } finally {
      model.dispose();
    }
  }
}

// The eager PyTorch reference, on the same images.
const tmp = mkdtempSync(path.join(os.tmpdir(), 'torch-moe-bench-'));
writeFileSync(path.join(tmp, 'x.f32'), Buffer.from(train.inputs.buffer, train.inputs.byteOffset, train.inputs.byteLength));
writeFileSync(path.join(tmp, 'y.u8'), Buffer.from(Uint8Array.from(train.labels)));
const python = process.env.PYTHON ?? 'python3';
const eagerRun = spawnSync(python, ['bench/eager_moe_gpu.py', '--data', path.join(tmp, 'x.f32'), '--labels', path.join(tmp, 'y.u8'), '--reps', String(reps), ...batches.flatMap((b) => ['--batch', String(b)])], { encoding: 'utf8', maxBuffer: 1 << 24 });
rmSync(tmp, { recursive: true, force: true });
const eager = lastJsonLine(eagerRun, 'bench/eager_moe_gpu.py');
if (!eager) process.exit(1);
for (const r of eager.results) {
  rows.push({ impl: 'eager PyTorch (loop over experts)', batch: r.batch, seconds: r.seconds, median_seconds: r.median_seconds, samples_per_second: r.samples_per_second });
  console.error(`${'eager PyTorch (loop over experts)'.padEnd(42)} batch ${String(r.batch).padStart(4)}: ${r.samples_per_second.toFixed(0).padStart(9)} samples/s (epoch ${(r.median_seconds * 1000).toFixed(1)} ms)`);
}

const commit = values.commit ?? currentCommit();
const date = new Date().toISOString().slice(0, 10);
const deviceName = eager.device;
const ratios = batches.map((b) => {
  const ours = rows.find((r) => r.batch === b && r.impl === variants[0].name).samples_per_second;
  const theirs = rows.find((r) => r.batch === b && r.impl.startsWith('eager')).samples_per_second;
  return { batch: b, torch_moe: ours, eager: theirs, ratio: ours / theirs };
});
const result = {
  date, commit, device: deviceName, cpu_cores: os.cpus().length,
  versions: { node: process.version, libtorch: info.libtorchVersion, python_torch: eager.torch, cuda: eager.cuda },
  samples: n, reps, rows, ratios,
  goals: { batch64_ratio_vs_eager: 20, batch1024_samples_per_second: 5e6 },
};
mkdirSync(values.out, { recursive: true });
const base = path.join(values.out, `gpu-${slug(deviceName)}-${date}-${commit}`);
writeFileSync(`${base}.json`, JSON.stringify(result, null, 2) + '\n');
const md = [
  `# GPU training benchmark: ${deviceName}, ${date}, commit ${commit}`,
  '',
  `One epoch of the ${n.toLocaleString('en')} MNIST training images after a warm-up epoch, median of ${reps}. Reference model (784→256, 8 experts of 256→128→256, top-2, aux 0.1, Adam). libtorch ${info.libtorchVersion} (torch-moe), PyTorch ${eager.torch} with CUDA ${eager.cuda} (eager reference), Node ${process.version}. Command: \`npm run bench:gpu\`.`,
  '',
  '| implementation | batch | samples/s | epoch (ms) |',
  '| --- | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.impl} | ${r.batch} | ${Math.round(r.samples_per_second).toLocaleString('en')} | ${(r.median_seconds * 1000).toFixed(1)} |`),
  '',
  '| batch | torch-moe / eager PyTorch | goal |',
  '| ---: | ---: | --- |',
  ...ratios.map((r) => `| ${r.batch} | ${r.ratio.toFixed(1)}× | ${r.batch === 64 ? '>= 20×' : `>= 5,000,000 samples/s (reached ${Math.round(r.torch_moe).toLocaleString('en')})`} |`),
  '',
];
writeFileSync(`${base}.md`, md.join('\n'));
console.log(md.join('\n'));
