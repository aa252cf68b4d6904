// CPU benchmark: torch-moe against eager PyTorch over the same libtorch (bench/eager_cpu.py, Debian's
// python3-torch), in one run: training samples/s of the reference MoE, the reference dense model and a
// dense model with the MoE's active parameters (dense256: one 256→256→256 FFN), on the first 5,000 MNIST
// images, batch 64, at 1 and 2 threads; evaluation time of the 10,000 test images; and the resident
// memory of a 30-epoch MoE training run, epoch by epoch. The machine is shared and noisy, so each round
// runs eager PyTorch and then torch-moe back to back, and the table reports medians over the rounds.
// Two last torch-moe rows repeat the MoE with one optimisation turned off, in a child process, to show
// what it contributes on MNIST: moe-gemm-input without the zero-skipping input layer
// (TORCH_MOE_SKIP_ZEROS=0), moe-plain-forward without the weights inference prepares and keeps (the
// output layer composed into the experts' second layers, their first layers transposed for the row
// kernel; TORCH_MOE_PREPARE_INFERENCE=0; evaluation only).
// Each measurement trains 10 epochs after a warm-up one (about 1 s for the MoE at 1 thread): with 3, a
// measurement lasted a third of a second, and one run's pairs of the MoE and dense256 spread from 0.69×
// to 0.89× at 1 thread as the host's speed moved between them; with 10, from 0.79× to 0.83×.
// Writes bench/results/cpu-<machine>-<date>-<commit>.{json,md}.
//
//   node bench/cpu.mjs [--threads 1,2] [--epochs 10] [--rounds 5] [--rss-epochs 30] [--out bench/results]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DenseClassifier, MoEClassifier, buildInfo, loadMnist, setNumThreads } from '../dist/lib/index.js';
import { commandLine, currentCommit, lastJsonLine, machineSlug, median } from './common.mjs';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1,2' },
    epochs: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '5' },
    'rss-epochs': { type: 'string', default: '30' },
    'rss-child': { type: 'boolean', default: false },
    'measure-child': { type: 'string' },  // internal: "<threads>" → one MoE measurement as JSON
    out: { type: 'string', default: 'bench/results' },
  },
});
// moe and dense256 back to back in each round, so that their ratio is taken a few seconds apart, and in
// turn first (moe, dense256 in odd rounds; dense256, moe in even ones): a fixed order would put any
// effect of going first or second (caches, the allocator's state, the host's clock) into every ratio.
const kinds = {
  moe: () => new MoEClassifier({ device: 'cpu' }),
  dense256: () => new DenseClassifier({ device: 'cpu', expertHiddenSize: 256 }),
  dense: () => new DenseClassifier({ device: 'cpu' }),
};
const epochs = Number(values.epochs);
const evalReps = 5;  // evaluations per measurement (after a warm-up), their median taken; the same in eager_cpu.py
const train = await loadMnist({ split: 'train', limit: 5000 });

/** One torch-moe measurement of a model kind: training samples/s (after a warm-up epoch) and eval seconds. */
async function measure(kind, test) {
  const model = kinds[kind]();
  try {
    await model.train(train, { epochs: 1 });
    let started = performance.now();
    await model.train(train, { epochs });
    const samplesPerSecond = (epochs * train.count) / ((performance.now() - started) / 1000);
    await model.evaluate(test);  // warm-up
    const evalSeconds = [];
    for (let rep = 0; rep < evalReps; rep++) {
      started = performance.now();
      await model.evaluate(test);
      evalSeconds.push((performance.now() - started) / 1000);
    }
    return { samplesPerSecond, evalSeconds: median(evalSeconds) };
  } finally {
    model.dispose();
  }
}

if (values['rss-child']) {
  // A fresh process: resident memory after each epoch of one long training run.
  const model = kinds.moe();
  const rss = [];
  await model.train(train, { epochs: Number(values['rss-epochs']), onEpochEnd: () => rss.push(process.memoryUsage().rss) });
  console.log(JSON.stringify({ rss }));
  process.exit(0);
}
const test = await loadMnist({ split: 'test' });
if (values['measure-child'] !== undefined) {
  setNumThreads(Number(values['measure-child']));
  console.log(JSON.stringify(await measure('moe', test)));
  process.exit(0);
}

const variants = { 'moe-gemm-input': { TORCH_MOE_SKIP_ZEROS: '0' }, 'moe-plain-forward': { TORCH_MOE_PREPARE_INFERENCE: '0' } };
const rounds = Number(values.rounds);
const threadCounts = values.threads.split(',').map(Number);
const samples = {};  // `${threads}/${model}` -> { ours: [], eager: [], oursEval: [], eagerEval: [] }
const slot = (t, m) => (samples[`${t}/${m}`] ??= { ours: [], eager: [], oursEval: [], eagerEval: [] });
let eagerVersion = '';
for (const threads of threadCounts) {
  setNumThreads(threads);
  for (let round = 1; round <= rounds; round++) {
    const eager = JSON.parse(execFileSync(process.env.PYTHON ?? '/usr/bin/python3', ['bench/eager_cpu.py', '--threads', String(threads), '--epochs', String(epochs), '--reps', '1', '--eval-reps', String(evalReps)], { encoding: 'utf8' }));
    eagerVersion = eager.torch;
    const order = round % 2 === 1 ? ['moe', 'dense256', 'dense'] : ['dense256', 'moe', 'dense'];
    for (const kind of order) {
      const ours = await measure(kind, test);
      const s = slot(threads, kind);
      s.ours.push(ours.samplesPerSecond);
      s.oursEval.push(ours.evalSeconds);
      s.eager.push(eager.train[kind].samples_per_second);
      s.eagerEval.push(eager.eval_seconds[kind].median);
    }
    for (const [variant, env] of Object.entries(variants)) {
      const child = spawnSync(process.execPath, [path.resolve('bench/cpu.mjs'), '--measure-child', String(threads), '--epochs', String(epochs)],
        { encoding: 'utf8', env: { ...process.env, ...env } });
      const r = lastJsonLine(child, `the ${variant} run`);
      if (!r) continue;
      const s = slot(threads, variant);
      s.ours.push(r.samplesPerSecond);
      s.oursEval.push(r.evalSeconds);
      s.eager.push(...slot(threads, 'moe').eager.slice(-1));
      s.eagerEval.push(...slot(threads, 'moe').eagerEval.slice(-1));
    }
    console.error(`${threads} thread(s), round ${round}/${rounds}: ${Object.entries(samples).filter(([k]) => k.startsWith(`${threads}/`)).map(([k, s]) => `${k.split('/')[1]} ${s.ours.at(-1).toFixed(0)} vs ${s.eager.at(-1).toFixed(0)}`).join(', ')}`);
  }
}
const rows = Object.entries(samples).map(([key, s]) => {
  const [threads, model] = key.split('/');
  const row = {
    threads: Number(threads), model,
    torch_moe_samples_per_second: median(s.ours), eager_samples_per_second: median(s.eager),
    torch_moe_eval_seconds: median(s.oursEval), eager_eval_seconds: median(s.eagerEval),
    runs: s,
  };
  row.train_ratio = row.torch_moe_samples_per_second / row.eager_samples_per_second;
  row.eval_ratio = row.eager_eval_seconds / row.torch_moe_eval_seconds;
  // Within each round (eager PyTorch, then torch-moe right after): free of the host's drift between rounds.
  row.round_train_ratios = s.ours.map((v, i) => v / s.eager[i]);
  row.round_eval_ratios = s.eagerEval.map((v, i) => v / s.oursEval[i]);
  return row;
});

const child = spawnSync(process.execPath, [path.resolve('bench/cpu.mjs'), '--rss-child', '--rss-epochs', values['rss-epochs']], { encoding: 'utf8' });
const rss = lastJsonLine(child, 'the resident-memory run')?.rss ?? [];
const mib = (b) => b / 1048576;

const commit = currentCommit();
const date = new Date().toISOString().slice(0, 10);
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const moeOwnDense = (t) => {
  const moe = rows.find((r) => r.threads === t && r.model === 'moe');
  const d256 = rows.find((r) => r.threads === t && r.model === 'dense256');
  return moe && d256 ? moe.torch_moe_samples_per_second / d256.torch_moe_samples_per_second : NaN;
};
// Round by round (moe and dense256 back to back, each first in every other round): free of the host's
// drift between rounds.
const moeOwnDenseRounds = (t) => {
  const moe = samples[`${t}/moe`]?.ours ?? [], d256 = samples[`${t}/dense256`]?.ours ?? [];
  return moe.map((v, i) => v / d256[i]);
};
const result = {
  date, commit, machine: { cpu, cores: os.cpus().length, memory_gib: Math.round(os.totalmem() / 2 ** 30) },
  versions: { node: process.version, libtorch: buildInfo().libtorchVersion, eager_torch: eagerVersion },
  settings: { images: train.count, batch: 64, epochs_per_round: epochs, rounds },
  rows,
  moe_vs_own_dense256: Object.fromEntries(threadCounts.map((t) => [t, moeOwnDense(t)])),
  moe_vs_own_dense256_rounds: Object.fromEntries(threadCounts.map((t) => [t, moeOwnDenseRounds(t)])),
  rss_mib_per_epoch: rss.map(mib),
};
mkdirSync(values.out, { recursive: true });
const base = path.join(values.out, `cpu-${machineSlug()}-${date}-${commit}`);
writeFileSync(`${base}.json`, JSON.stringify(result, null, 2) + '\n');
const md = [
  `# CPU benchmark: ${cpu} (${os.cpus().length} cores), ${date}, commit ${commit}`,
  '',
  `torch-moe (libtorch ${buildInfo().libtorchVersion}) against eager PyTorch ${eagerVersion} on the same libtorch (bench/eager_cpu.py), first ${train.count} MNIST images, batch 64, ${epochs} epochs per measurement after a warm-up epoch; evaluation of the 10,000 test images (batches of 1,000; the median of ${evalReps} after a warm-up, in each round). Median of ${rounds} rounds, each running eager PyTorch and torch-moe back to back. Command: \`${commandLine('bench:cpu')}\`.`,
  '',
  '| threads | model | torch-moe samples/s | eager samples/s | ratio | torch-moe eval (ms) | eager eval (ms) | eval ratio |',
  '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.threads} | ${r.model} | ${Math.round(r.torch_moe_samples_per_second).toLocaleString('en')} | ${Math.round(r.eager_samples_per_second).toLocaleString('en')} | ${r.train_ratio.toFixed(2)}× | ${(r.torch_moe_eval_seconds * 1000).toFixed(0)} | ${(r.eager_eval_seconds * 1000).toFixed(0)} | ${r.eval_ratio.toFixed(2)}× |`),
  '',
  'moe-gemm-input: the MoE with the zero-skipping input layer off (TORCH_MOE_SKIP_ZEROS=0), against the same eager MoE. moe-plain-forward: the MoE evaluated by forward(), without the weights inference prepares and keeps (output layer composed into the experts, their first layers transposed for the row kernel; TORCH_MOE_PREPARE_INFERENCE=0; its training is the same as moe).',
  '',
  ...rows.filter((r) => r.model === 'moe').map((r) => `The MoE at ${r.threads} thread(s), round by round (each torch-moe run against the eager run just before it): training ${r.round_train_ratios.map((x) => `${x.toFixed(2)}×`).join(', ')}; evaluation ${r.round_eval_ratios.map((x) => `${x.toFixed(2)}×`).join(', ')}.`),
  '',
  `MoE training speed against torch-moe's own dense model with the same active parameters (dense256): ${Object.entries(result.moe_vs_own_dense256).map(([t, v]) => `${v.toFixed(2)}× at ${t} thread(s)`).join(', ')} (ratio of the medians); round by round (the two back to back, the MoE first in odd rounds and second in even ones): ${threadCounts.map((t) => `${moeOwnDenseRounds(t).map((x) => `${x.toFixed(2)}×`).join(', ')} at ${t} thread(s), median ${median(moeOwnDenseRounds(t)).toFixed(2)}×`).join('; ')}.`,
  '',
  `Resident memory of a ${values['rss-epochs']}-epoch MoE training run (MiB, after each epoch): ${rss.length ? `first ${mib(rss[0]).toFixed(0)}, peak ${mib(Math.max(...rss)).toFixed(0)}, last ${mib(rss.at(-1)).toFixed(0)}` : 'not measured (the child run failed)'}.`,
  '',
];
writeFileSync(`${base}.md`, md.join('\n'));
console.log(md.join('\n'));
