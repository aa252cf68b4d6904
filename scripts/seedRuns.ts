// Runs the reference experiment at each seed with the torch-moe of one checkout and prints a JSON line per
// seed. compareSeeds runs it in a child process, so that another commit's build (its own addon) can run the
// same seeds beside this one.
// usage: node dist/scripts/seedRuns.js CHECKOUT THREADS SEED [SEED ...]   (CHECKOUT: built, with dist/)
import path from 'node:path';
import { pathToFileURL } from 'node:url';

interface Library {
  setNumThreads(n: number): void;
  getNumThreads(): number;
  referenceSettings: Record<string, unknown>;
  runReferenceExperiment(settings: Record<string, unknown>): Promise<{
    moe: { test: { accuracy: number }; history: { epochs: { auxLoss: number }[] }; trainSeconds: number };
    dense: { test: { accuracy: number } };
  }>;
}

const [checkout, threads, ...seeds] = process.argv.slice(2);
if (!checkout || !threads || seeds.length === 0) {
  console.error('usage: node dist/scripts/seedRuns.js CHECKOUT THREADS SEED [SEED ...]');
  process.exit(2);
}
const lib = (await import(pathToFileURL(path.resolve(checkout, 'dist', 'lib', 'index.js')).href)) as Library;
lib.setNumThreads(Number(threads));
for (const seed of seeds.map(Number)) {
  const r = await lib.runReferenceExperiment({ ...lib.referenceSettings, seed });
  console.log(JSON.stringify({ seed, moe: r.moe.test.accuracy, dense: r.dense.test.accuracy,
    aux: r.moe.history.epochs.at(-1)!.auxLoss, seconds: r.moe.trainSeconds, threads: lib.getNumThreads() }));
}
