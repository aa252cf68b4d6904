// Helpers shared by the benchmark scripts: medians, the commit a result belongs to, file-name slugs, and
// the JSON result a child process prints last.
import { execFileSync } from 'node:child_process';

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
