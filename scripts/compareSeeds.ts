// Compares the reference experiment's accuracy over seeds: torch-moe from this checkout, optionally from
// another commit's built checkout (--baseline DIR), and the eager PyTorch reference
// (scripts/pytorch_reference_experiment.py, Debian python3-torch; its seeds drive another generator, so its
// rows are not paired with torch-moe's). Prints a Markdown table by seed, then each column's mean, median,
// standard deviation, seeds under the bar and lowest, and how far its mean is from this checkout's in
// standard errors (Welch): one seed is one draw, a shift shows only over many.
// usage: node dist/scripts/compareSeeds.js [--threads N] [--baseline DIR] [--no-eager] [SEED ...]  (default 0-4)
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { getNumThreads } from '../lib/index.js';
import { packageRoot } from '../lib/native.js';

interface Run { seed: number; moe: number; dense: number; aux: number; seconds: number }
interface Source { name: string; runs: Run[] }

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: { threads: { type: 'string' }, baseline: { type: 'string' }, 'no-eager': { type: 'boolean', default: false } },
});
const threads = opts.threads === undefined ? getNumThreads() : Number(opts.threads);
if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`--threads takes a positive integer, got '${opts.threads}'`);
const seeds = positionals.map(Number);
if (seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new RangeError(`seeds are non-negative integers, got ${positionals.join(' ')}`);
if (seeds.length === 0) seeds.push(0, 1, 2, 3, 4);

/** torch-moe of a built checkout, in a child process (each checkout loads its own addon). */
function torchMoe(checkout: string): Run[] {
  const worker = path.join(path.dirname(fileURLToPath(import.meta.url)), 'seedRuns.js');
  const out = execFileSync(process.execPath, [worker, checkout, String(threads), ...seeds.map(String)],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
  return out.trim().split('\n').map((l) => JSON.parse(l) as Run);
}

function eager(): Run[] {
  const script = path.join(packageRoot, 'scripts', 'pytorch_reference_experiment.py');
  const lines = execFileSync('/usr/bin/python3', [script, '--threads', String(threads), ...seeds.map(String)], { encoding: 'utf8' })
    .trim().split('\n').map((l) => JSON.parse(l) as { model: string; seed: number; testAccuracy: number; finalAux: number | null; trainSeconds: number });
  return seeds.map((seed) => {
    const moe = lines.find((l) => l.seed === seed && l.model === 'moe')!;
    const dense = lines.find((l) => l.seed === seed && l.model === 'dense')!;
    return { seed, moe: moe.testAccuracy, dense: dense.testAccuracy, aux: moe.finalAux!, seconds: moe.trainSeconds };
  });
}

// Checked before any run: a wrong --baseline should not surface after this checkout's seeds have run.
const baseline = opts.baseline === undefined ? undefined : (() => {
  if (!existsSync(path.join(opts.baseline, 'dist', 'lib', 'index.js'))) {
    console.error(`--baseline ${opts.baseline}: no dist/lib/index.js there; build that checkout first (cmake-js build --out build, then tsc)`);
    process.exit(2);
  }
  const commit = execFileSync('git', ['-C', opts.baseline, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  return { dir: opts.baseline, name: `torch-moe ${commit}` };
})();

const sources: Source[] = [{ name: 'torch-moe', runs: torchMoe(packageRoot) }];
if (baseline) sources.push({ name: baseline.name, runs: torchMoe(baseline.dir) });
if (!opts['no-eager']) sources.push({ name: 'eager PyTorch', runs: eager() });

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };
const variance = (xs: number[]) => { const m = mean(xs); return xs.reduce((a, x) => a + (x - m) ** 2, 0) / Math.max(1, xs.length - 1); };

const header = sources.flatMap((s) => [`${s.name} MoE`, `${s.name} dense`, `${s.name} aux`]);
console.log(`| seed | ${header.join(' | ')} |`);
console.log(`|---|${header.map(() => '---').join('|')}|`);
seeds.forEach((seed, i) => {
  console.log(`| ${seed} | ${sources.flatMap((s) => { const r = s.runs[i]!; return [pct(r.moe), pct(r.dense), r.aux.toFixed(3)]; }).join(' | ')} |`);
});

const bars = { moe: 0.945, dense: 0.94 } as const;
console.log(`\n${seeds.length} seeds, ${threads} thread${threads === 1 ? '' : 's'}. Δ: the column's mean minus torch-moe's (this checkout), in points, ± its standard error (Welch).\n`);
console.log('| model | column | mean | median | std dev | under the bar | lowest | Δ mean ± s.e. |');
console.log('|---|---|---|---|---|---|---|---|');
for (const model of ['moe', 'dense'] as const) {
  const ours = sources[0]!.runs.map((r) => r[model]);
  for (const s of sources) {
    const xs = s.runs.map((r) => r[model]);
    const delta = s === sources[0] ? '' : seeds.length < 2 ? 'one seed: no spread to compare' : (() => {
      const se = Math.sqrt(variance(xs) / xs.length + variance(ours) / ours.length);
      const d = mean(xs) - mean(ours);
      return `${(100 * d).toFixed(2)} ± ${(100 * se).toFixed(2)} (${se > 0 ? (d / se).toFixed(1) : '∞'} s.e.)`;
    })();
    console.log(`| ${model === 'moe' ? 'MoE' : 'dense'} | ${s.name} | ${pct(mean(xs))} | ${pct(median(xs))} | ${(100 * Math.sqrt(variance(xs))).toFixed(2)} | ${xs.filter((x) => x < bars[model]).length} of ${xs.length} under ${pct(bars[model])} | ${pct(Math.min(...xs))} | ${delta} |`);
  }
}
console.log(`\nMoE training time, mean per run: ${sources.map((s) => `${s.name} ${mean(s.runs.map((r) => r.seconds)).toFixed(1)} s`).join(', ')}.`);
