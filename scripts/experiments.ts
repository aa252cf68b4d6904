// `npm run experiments`: the routing and balancing experiments of docs/experiments.md. Runs every case of
// the chosen experiments for each seed, keeps the raw results in docs/experiments.json (each experiment
// with the commit and command that made it, so experiments can be rerun one at a time) and writes the
// Markdown tables from that file.
//
//   node dist/scripts/experiments.js [--only published,published-recipe,published-augment,balancing,routing,shapes,dynamics] [--seeds 3]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { getNumThreads, loadMnist, version } from '../lib/index.js';
import { packageRoot } from '../lib/native.js';
import { experiments, type Experiment } from './experiments/cases.js';
import { runCase, type RunResult } from './experiments/run.js';

interface ExperimentRecord {
  commit: string;
  date: string;
  command: string;
  machine: string;
  seeds: number[];
  epochs: number;
  runs: Record<string, RunResult[]>;  // case label -> one result per seed
}

const { values } = parseArgs({
  options: {
    // the 60k-image table last: it takes longest
    only: { type: 'string', default: 'balancing,routing,shapes,dynamics,published,published-recipe,published-augment' },
    seeds: { type: 'string', default: '3' },
    epochs: { type: 'string' },  // a quick look: overrides every chosen experiment's epochs (recorded as such)
    render: { type: 'boolean', default: false },  // only rewrite the Markdown from the JSON
    out: { type: 'string', default: path.join(packageRoot, 'docs', 'experiments.md') },
  },
});
const chosen = values.only.split(',').map((id) => {
  const e = experiments.find((x) => x.id === id);
  if (!e) throw new Error(`unknown experiment '${id}'; known: ${experiments.map((x) => x.id).join(', ')}`);
  if (values.epochs === undefined) return e;
  const epochs = Number(values.epochs);
  return { ...e, epochs, evalAt: e.evalAt?.filter((x) => x <= epochs) };
});
const seeds = Array.from({ length: Number(values.seeds) }, (_, i) => i);
const jsonFile = values.out.replace(/\.md$/, '.json');
const records: Record<string, ExperimentRecord> = existsSync(jsonFile) ? JSON.parse(readFileSync(jsonFile, 'utf8')) : {};

if (values.render) {
  writeFileSync(values.out, markdown(records));
  process.exit(0);
}

const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: packageRoot, encoding: 'utf8' }).trim();
const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${getNumThreads()} threads`;
const [full, test] = await Promise.all([loadMnist({ split: 'train' }), loadMnist({ split: 'test' })]);
const reference = await loadMnist({ split: 'train', limit: 5000 });

for (const exp of chosen) {
  const runs: Record<string, RunResult[]> = {};
  for (const c of exp.cases) {
    runs[c.label] = [];
    for (const seed of seeds) {
      const r = await runCase(exp, c, seed, exp.data === 'full' ? full : reference, test);
      runs[c.label]!.push(r);
      process.stderr.write(`${exp.id} | ${c.label} | seed ${seed}: test ${(100 * r.testAccuracy).toFixed(2)}% (${r.seconds.toFixed(0)} s)\n`);
    }
  }
  records[exp.id] = {
    commit, date: new Date().toISOString().slice(0, 10), machine, seeds, runs, epochs: exp.epochs,
    command: `npm run experiments -- --only ${exp.id} --seeds ${seeds.length}${values.epochs ? ` --epochs ${values.epochs}` : ''}`,
  };
  mkdirSync(path.dirname(jsonFile), { recursive: true });
  // After each experiment (a crash keeps the rest); 6 significant digits keep the file small.
  writeFileSync(jsonFile, JSON.stringify(records, (_k, v: unknown) => (typeof v === 'number' ? Number(v.toPrecision(6)) : v)) + '\n');
  writeFileSync(values.out, markdown(records));
}

function table(exp: Experiment, rec: ExperimentRecord): string[] {
  const lines = [`| case | ${exp.columns.map((c) => c.header).join(' | ')} |`, `| --- |${' --- |'.repeat(exp.columns.length)}`];
  for (const c of exp.cases) {
    const runs = rec.runs[c.label];
    if (runs) lines.push(`| ${c.label} | ${exp.columns.map((col) => col.value(runs, c)).join(' | ')} |`);
  }
  return lines;
}

function markdown(all: Record<string, ExperimentRecord>): string {
  const out = [
    '# Experiments: routing and balancing methods on MNIST',
    '',
    `Written by \`npm run experiments\` (scripts/experiments.ts, cases in scripts/experiments/cases.ts), torch-moe ${version}. ` +
      'Every cell is the mean ± population standard deviation over the seeds listed (seeds set the initialisation and the ' +
      'shuffling); on 5,000 training images, test accuracies a few tenths of a point apart are within that spread. ' +
      'Raw results, per seed and per epoch: docs/experiments.json. What each method does: docs/routing.md.',
    '',
  ];
  for (const exp of experiments) {
    const rec = all[exp.id];
    out.push(`## ${exp.title}`, '');
    if (!rec) {
      out.push('Not run yet.', '');
      continue;
    }
    out.push(exp.notes, '');
    out.push(`${exp.data === 'full' ? '60,000' : '5,000'} training images, ${rec.epochs} epochs, seeds ${rec.seeds.join(', ')}; ` +
      `commit ${rec.commit}, ${rec.date}, ${rec.machine}. Command: \`${rec.command}\`.`, '');
    out.push(...table(exp, rec), '');
    const found = exp.findings?.(rec.runs) ?? [];
    if (found.length) out.push(...found.map((f) => `- ${f}`), '');
  }
  return out.join('\n');
}
