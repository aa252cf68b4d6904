// CPU benchmark: torch-moe against eager PyTorch over the same libtorch (bench/eager_cpu.py, Debian's
// python3-torch), in one run: training samples/s of the reference MoE, the reference dense model and a
// dense model with the MoE's active parameters (one 256→256→256 FFN), on the first 5,000 MNIST images,
// batch 64, at 1 and 2 threads; evaluation time of the 10,000 test images; and the resident memory of a
// 30-epoch MoE training run, epoch by epoch. Writes bench/results/cpu-<machine>-<date>-<commit>.{json,md}.
//
//   node bench/cpu.mjs [--threads 1,2] [--epochs 3] [--reps 3] [--rss-epochs 30] [--out bench/results]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DenseClassifier, MoEClassifier, buildInfo, loadMnist, setNumThreads } from '../dist/lib/index.js';
import { currentCommit, median, slug } from './common.mjs';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1,2' },
    epochs: { type: 'string', default: '3' },
    reps: { type: 'string', default: '3' },
    'rss-epochs': { type: 'string', default: '30' },
    'rss-child': { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench/results' },
  },
});
const kinds = {
  moe: () => new MoEClassifier({ device: 'cpu' }),
  dense: () => new DenseClassifier({ device: 'cpu' }),
  dense256: () => new DenseClassifier({ device: 'cpu', expertHiddenSize: 256 }),
};
const train = await loadMnist({ split: 'train', limit: 5000 });

if (values['rss-child']) {
  // A fresh process: resident memory after each epoch of one long training run.
  const model = kinds.moe();
  const rss = [];
  await model.train(train, { epochs: Number(values['rss-epochs']), onEpochEnd: () => rss.push(process.memoryUsage().rss) });
  console.log(JSON.stringify({ rss }));
  process.exit(0);
}

const test = await loadMnist({ split: 'test' });
const epochs = Number(values.epochs);
const reps = Number(values.reps);
const rows = [];
for (const threads of values.threads.split(',').map(Number)) {
  setNumThreads(threads);
  const eager = JSON.parse(execFileSync(process.env.PYTHON ?? '/usr/bin/python3', ['bench/eager_cpu.py', '--threads', String(threads), '--epochs', String(epochs), '--reps', String(reps)], { encoding: 'utf8' }));
  for (const [kind, make] of Object.entries(kinds)) {
    const model = make();
    try {
      await model.train(train, { epochs: 1 });  // warm-up
      const rates = [];
      for (let r = 0; r < reps; r++) {
        const started = performance.now();
        await model.train(train, { epochs });
        rates.push((epochs * train.count) / ((performance.now() - started) / 1000));
      }
      const evals = [];
      for (let r = 0; r < reps; r++) {
        const started = performance.now();
        await model.evaluate(test);
        evals.push((performance.now() - started) / 1000);
      }
      const row = {
        threads, model: kind,
        torch_moe_samples_per_second: median(rates), eager_samples_per_second: eager.train[kind].samples_per_second,
        torch_moe_eval_seconds: median(evals), eager_eval_seconds: eager.eval_seconds[kind].median,
      };
      row.train_ratio = row.torch_moe_samples_per_second / row.eager_samples_per_second;
      row.eval_ratio = row.eager_eval_seconds / row.torch_moe_eval_seconds;
      rows.push(row);
      console.error(`${threads} thread(s) ${kind.padEnd(8)} train ${row.torch_moe_samples_per_second.toFixed(0)} vs eager ${row.eager_samples_per_second.toFixed(0)} samples/s (${row.train_ratio.toFixed(2)}x); eval ${(row.torch_moe_eval_seconds * 1000).toFixed(0)} vs ${(row.eager_eval_seconds * 1000).toFixed(0)} ms (${row.eval_ratio.toFixed(2)}x)`);
    } finally {
      model.dispose();
    }
  }
}

const child = spawnSync(process.execPath, [path.resolve('bench/cpu.mjs'), '--rss-child', '--rss-epochs', values['rss-epochs']], { encoding: 'utf8' });
const rss = child.status === 0 ? JSON.parse(child.stdout.trim().split('\n').at(-1)).rss : [];
const mib = (b) => b / 1048576;

const commit = currentCommit();
const date = new Date().toISOString().slice(0, 10);
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const moeOwnDense = (t) => {
  const moe = rows.find((r) => r.threads === t && r.model === 'moe');
  const d256 = rows.find((r) => r.threads === t && r.model === 'dense256');
  return moe && d256 ? moe.torch_moe_samples_per_second / d256.torch_moe_samples_per_second : NaN;
};
const result = {
  date, commit, machine: { cpu, cores: os.cpus().length, memory_gib: Math.round(os.totalmem() / 2 ** 30) },
  versions: { node: process.version, libtorch: buildInfo().libtorchVersion },
  settings: { images: train.count, batch: 64, epochs_per_rep: epochs, reps },
  rows,
  moe_vs_own_dense256: Object.fromEntries([...new Set(rows.map((r) => r.threads))].map((t) => [t, moeOwnDense(t)])),
  rss_mib_per_epoch: rss.map(mib),
};
mkdirSync(values.out, { recursive: true });
const base = path.join(values.out, `cpu-${`${os.cpus().length}core-${slug(cpu)}`.slice(0, 60)}-${date}-${commit}`);
writeFileSync(`${base}.json`, JSON.stringify(result, null, 2) + '\n');
const md = [
  `# CPU benchmark: ${cpu} (${os.cpus().length} cores), ${date}, commit ${commit}`,
  '',
  `torch-moe (libtorch ${buildInfo().libtorchVersion}) against eager PyTorch on the same libtorch (bench/eager_cpu.py), first ${train.count} MNIST images, batch 64, ${epochs} epochs per repetition after a warm-up epoch, median of ${reps}; evaluation of the 10,000 test images. Command: \`npm run bench:cpu\`.`,
  '',
  '| threads | model | torch-moe samples/s | eager samples/s | ratio | torch-moe eval (ms) | eager eval (ms) | eval ratio |',
  '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.threads} | ${r.model} | ${Math.round(r.torch_moe_samples_per_second).toLocaleString('en')} | ${Math.round(r.eager_samples_per_second).toLocaleString('en')} | ${r.train_ratio.toFixed(2)}× | ${(r.torch_moe_eval_seconds * 1000).toFixed(0)} | ${(r.eager_eval_seconds * 1000).toFixed(0)} | ${r.eval_ratio.toFixed(2)}× |`),
  '',
  `MoE training speed against torch-moe's own dense model with the same active parameters (dense256): ${Object.entries(result.moe_vs_own_dense256).map(([t, v]) => `${v.toFixed(2)}× at ${t} thread(s)`).join(', ')}.`,
  '',
  `Resident memory of a ${values['rss-epochs']}-epoch MoE training run (MiB, after each epoch): ${rss.length ? `first ${mib(rss[0]).toFixed(0)}, peak ${mib(Math.max(...rss)).toFixed(0)}, last ${mib(rss.at(-1)).toFixed(0)}` : 'not measured (the child run failed)'}.`,
  '',
];
writeFileSync(`${base}.md`, md.join('\n'));
console.log(md.join('\n'));
