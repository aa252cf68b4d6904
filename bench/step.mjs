// Where a CPU training step's time goes, the reference MoE against dense256 (the dense model with the
// MoE's active parameters), phase by phase: runs build/moe_step_bench (built with the native tests:
// `npm run build:native`; see bench/native/step_phases.cpp: it runs the training loop and times the
// phases the loop marks) at 1 and 2 threads and writes
// bench/results/step-<machine>-<date>-<commit>.{json,md}. Issue 5's goal, MoE training >= 0.8x dense256,
// is the ratio of the two step times; the rows show which phases make the difference.
//
//   node bench/step.mjs [--rounds 9] [--threads 1,2] [--out bench/results]
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { commandLine, currentCommit, machineSlug, nativeBench, runStepBench } from './common.mjs';

const { values } = parseArgs({ options: {
  rounds: { type: 'string', default: '9' },
  threads: { type: 'string', default: '1,2' },
  out: { type: 'string', default: 'bench/results' },
} });
const binary = nativeBench('moe_step_bench');
const runs = values.threads.split(',').map(Number).map((threads) => ({ threads, ...runStepBench(binary, values.rounds, threads) }));

const commit = currentCommit(), date = new Date().toISOString().slice(0, 10), cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const phases = Object.keys(runs[0].moe.phases_us);
const ratio = (r, without = []) => {
  const time = (m) => r[m].phases_us.step - without.reduce((sum, p) => sum + r[m].phases_us[p], 0);
  return time('dense256') / time('moe');
};
const md = [
  `# CPU training step by phase: ${cpu} (${os.cpus().length} cores), ${date}, commit ${commit}`, '',
  `The reference MoE (${runs[0].moe.params.toLocaleString('en-US')} parameters) and dense256 (${runs[0].dense256.params.toLocaleString('en-US')}), trained by the training loop itself (one train() call per epoch, timed by the phases the loop marks as RecordFunction user scopes) on the first 5,000 MNIST images, batch 64; the two alternate epoch by epoch for ${values.rounds} rounds after a warm-up epoch each. Microseconds per step, medians over the rounds (the step row is the median of the rounds' totals). Command: \`${commandLine('bench:step')}\`.`, '',
  ...runs.flatMap((r) => [
    `## ${r.threads} thread${r.threads > 1 ? 's' : ''}`, '',
    '| phase | MoE (µs) | dense256 (µs) | MoE − dense256 (µs) |',
    '| --- | ---: | ---: | ---: |',
    ...phases.map((p) => `| ${p} | ${r.moe.phases_us[p].toFixed(0)} | ${r.dense256.phases_us[p].toFixed(0)} | ${(r.moe.phases_us[p] - r.dense256.phases_us[p]).toFixed(0)} |`),
    '',
    `MoE training speed against dense256 (dense256's step time over the MoE's): ${ratio(r).toFixed(2)}× (goal >= 0.8×); leaving out both models' Adam steps, ${ratio(r, ['Adam']).toFixed(2)}×.`, '',
  ]),
];
mkdirSync(values.out, { recursive: true });
const base = path.join(values.out, `step-${machineSlug()}-${date}-${commit}`);
writeFileSync(`${base}.json`, JSON.stringify({ date, commit, machine: { cpu, cores: os.cpus().length }, rounds: Number(values.rounds), runs }, null, 2) + '\n');
writeFileSync(`${base}.md`, md.join('\n'));
console.log(md.join('\n'));
