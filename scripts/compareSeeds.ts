// Runs the reference experiment for several seeds with torch-moe and with the eager PyTorch reference
// (scripts/pytorch_reference_experiment.py, Debian python3-torch), and prints a Markdown table.
// usage: node dist/scripts/compareSeeds.js [seeds...]   (default 0 1 2 3 4)
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { getNumThreads, runReferenceExperiment, referenceSettings } from '../lib/index.js';
import { packageRoot } from '../lib/native.js';

interface Row { seed: number; moe: number; dense: number; aux: number; seconds: number }

const seeds = process.argv.slice(2).map(Number);
if (seeds.length === 0) seeds.push(0, 1, 2, 3, 4);

const ours: Row[] = [];
for (const seed of seeds) {
  const r = await runReferenceExperiment({ ...referenceSettings, seed });
  ours.push({ seed, moe: r.moe.test.accuracy, dense: r.dense.test.accuracy, aux: r.moe.history.epochs.at(-1)!.auxLoss, seconds: r.moe.trainSeconds });
  process.stderr.write(`torch-moe seed ${seed}: MoE ${r.moe.test.accuracy}, dense ${r.dense.test.accuracy}\n`);
}

const script = path.join(packageRoot, 'scripts', 'pytorch_reference_experiment.py');
const lines = execFileSync('/usr/bin/python3', [script, '--threads', String(getNumThreads()), ...seeds.map(String)], { encoding: 'utf8' })
  .trim().split('\n').map((l) => JSON.parse(l) as { model: string; seed: number; testAccuracy: number; finalAux: number | null; trainSeconds: number });
const theirs: Row[] = seeds.map((seed) => {
  const moe = lines.find((l) => l.seed === seed && l.model === 'moe')!;
  const dense = lines.find((l) => l.seed === seed && l.model === 'dense')!;
  return { seed, moe: moe.testAccuracy, dense: dense.testAccuracy, aux: moe.finalAux!, seconds: moe.trainSeconds };
});

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log('| seed | torch-moe MoE | torch-moe dense | torch-moe aux | eager PyTorch MoE | eager PyTorch dense | eager aux |');
console.log('|---|---|---|---|---|---|---|');
seeds.forEach((seed, i) => {
  const a = ours[i]!, b = theirs[i]!;
  console.log(`| ${seed} | ${pct(a.moe)} | ${pct(a.dense)} | ${a.aux.toFixed(3)} | ${pct(b.moe)} | ${pct(b.dense)} | ${b.aux.toFixed(3)} |`);
});
console.log(`| mean | ${pct(mean(ours.map((r) => r.moe)))} | ${pct(mean(ours.map((r) => r.dense)))} | ${mean(ours.map((r) => r.aux)).toFixed(3)} | ${pct(mean(theirs.map((r) => r.moe)))} | ${pct(mean(theirs.map((r) => r.dense)))} | ${mean(theirs.map((r) => r.aux)).toFixed(3)} |`);
console.log(`\nMoE training time, mean per run: torch-moe ${mean(ours.map((r) => r.seconds)).toFixed(1)} s, eager PyTorch ${mean(theirs.map((r) => r.seconds)).toFixed(1)} s (${getNumThreads()} threads).`);
