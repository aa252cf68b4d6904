// Before and after a change to the CPU training step, measured side by side: alternates this checkout's
// build/moe_step_bench with the same benchmark built from an earlier commit, pair after pair, and reports
// each build's MoE-against-dense256 step ratio (issue 5's goal) per pair and the medians. This host's speed
// moves by ±25% from minute to minute, so two `bench:step` runs minutes apart cannot show a change of a few
// percent; pairs run seconds apart can, the two builds taking turns to go first (ABBA) so that running
// order cannot pass for a difference. The baseline is built once in a git worktree under the system's temp
// folder (the native build, about 6 minutes on 2 cores; this checkout's node_modules are linked, not copied)
// and kept for later runs (`git worktree remove <its folder>` drops it). This checkout must be committed
// and built (`npm run build:native`) so that its results name the commit they measure. Writes
// bench/results/step-compare-<machine>-<date>-<baseline>-<commit>.{json,md}.
//
//   node bench/step_compare.mjs --baseline <commit> [--pairs 10] [--rounds 5] [--threads 1,2] [--out bench/results]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { commandLine, currentCommit, machineSlug, median, nativeBench, runStepBench } from './common.mjs';

const { values } = parseArgs({ options: {
  baseline: { type: 'string' },
  pairs: { type: 'string', default: '10' },
  rounds: { type: 'string', default: '5' },
  threads: { type: 'string', default: '1,2' },
  out: { type: 'string', default: 'bench/results' },
} });
if (!values.baseline) {
  console.error('usage: node bench/step_compare.mjs --baseline <commit> [--pairs 10] [--rounds 5] [--threads 1,2] [--out bench/results]');
  process.exit(2);
}
const git = (...args) => execFileSync('git', args, { encoding: 'utf8' }).trim();
const base = git('rev-parse', '--short', `${values.baseline}^{commit}`);

/** The baseline's moe_step_bench, built in a worktree of its own the first time. */
function baselineBench() {
  const dir = path.join(os.tmpdir(), `torch-moe-baseline-${base}`);
  const binary = path.join(dir, 'build', 'moe_step_bench');
  if (existsSync(binary)) return binary;
  if (!existsSync(dir)) git('worktree', 'add', '--detach', dir, base);
  if (!existsSync(path.join(dir, 'node_modules'))) symlinkSync(path.resolve('node_modules'), path.join(dir, 'node_modules'));
  console.error(`building the benchmark of ${base} in ${dir} (the native build; once)`);
  execFileSync(path.resolve('node_modules/.bin/cmake-js'), ['build', '--out', 'build'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  if (!existsSync(binary)) throw new Error(`${base}'s build made no build/moe_step_bench (a commit before bench:step existed?)`);
  return binary;
}

/** This checkout's benchmark, refused when the results would name a commit it was not built from. */
function currentBench() {
  const binary = nativeBench('moe_step_bench');
  if (git('status', '--porcelain', '--untracked-files=no', '--', 'native', 'bench/native', 'CMakeLists.txt') !== '') {
    console.error('native/ has uncommitted changes: commit them (and `npm run build:native`) so that the results name what they measure');
    process.exit(2);
  }
  const sources = git('ls-files', 'native', 'bench/native', 'CMakeLists.txt').split('\n');
  const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs));
  if (statSync(binary).mtimeMs < newest) {
    console.error(`${binary} is older than the native sources: run \`npm run build:native\` first`);
    process.exit(2);
  }
  return binary;
}

const builds = [{ label: base, binary: baselineBench() }, { label: currentCommit(), binary: currentBench() }];
/** One run of a build: its per-phase medians for both models. */
function run(binary, threads) {
  const { moe, dense256 } = runStepBench(binary, values.rounds, threads);
  return { moe: moe.phases_us, dense256: dense256.phases_us };
}

const results = values.threads.split(',').map(Number).map((threads) => {
  const runs = builds.map(() => []);
  for (let pair = 0; pair < Number(values.pairs); pair++) {
    const order = pair % 2 === 0 ? [0, 1] : [1, 0];
    for (const i of order) runs[i].push(run(builds[i].binary, threads));
    console.error(`${threads} thread(s), pair ${pair + 1}/${values.pairs}: ${builds.map((b, i) => `${b.label} ${(runs[i].at(-1).dense256.step / runs[i].at(-1).moe.step).toFixed(3)}`).join(', ')}`);
  }
  return { threads, builds: builds.map((b, i) => ({ label: b.label, runs: runs[i] })) };
});

const commit = builds[1].label, date = new Date().toISOString().slice(0, 10), cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const ratio = (r) => r.dense256.step / r.moe.step;
// Phases either build names (a phase one build lacks shows as "-").
const phases = [...new Set(results[0].builds.flatMap((b) => Object.keys(b.runs[0].moe)))];
const cell = (runs, model, p) => (runs[0][model][p] === undefined ? '-' : median(runs.map((x) => x[model][p])).toFixed(0));
const md = [
  `# CPU training step, ${base} against ${commit}: ${cpu} (${os.cpus().length} cores), ${date}`, '',
  `\`bench/native/step_phases.cpp\` (the training loop itself, as \`npm run bench:step\` runs it: the reference MoE and dense256 on the first 5,000 MNIST images, batch 64, alternating epoch by epoch for ${values.rounds} rounds after a warm-up) built from each commit, the two builds run alternately (each going first in every other pair), ${values.pairs} pairs per thread count. The ratio is dense256's step time over the MoE's (goal >= 0.8×); phases are medians over the pairs, in µs per step. Command: \`${commandLine('bench:step-compare')}\`.`, '',
  ...results.flatMap((r) => [
    `## ${r.threads} thread${r.threads > 1 ? 's' : ''}`, '',
    ...r.builds.map((b) => `- ${b.label}: median ratio **${median(b.runs.map(ratio)).toFixed(3)}×**; pair by pair ${b.runs.map((x) => ratio(x).toFixed(3)).join(', ')}`), '',
    `| phase | ${r.builds.map((b) => `MoE at ${b.label}`).join(' | ')} | ${r.builds.map((b) => `dense256 at ${b.label}`).join(' | ')} |`,
    `| --- | ${r.builds.map(() => '---:').join(' | ')} | ${r.builds.map(() => '---:').join(' | ')} |`,
    ...phases.map((p) => `| ${p} | ${r.builds.map((b) => cell(b.runs, 'moe', p)).join(' | ')} | ${r.builds.map((b) => cell(b.runs, 'dense256', p)).join(' | ')} |`),
    '',
  ]),
];
mkdirSync(values.out, { recursive: true });
const out = path.join(values.out, `step-compare-${machineSlug()}-${date}-${base}-${commit}`);
writeFileSync(`${out}.json`, JSON.stringify({ date, machine: { cpu, cores: os.cpus().length }, baseline: base, commit, rounds: Number(values.rounds), results }, null, 2) + '\n');
writeFileSync(`${out}.md`, md.join('\n'));
console.log(md.join('\n'));
