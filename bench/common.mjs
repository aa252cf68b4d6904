// Helpers shared by the benchmark scripts: medians, the commit a result belongs to, file-name slugs, the
// machine and command a result names, the native benchmark binaries, and the JSON result a child process
// prints last.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
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
