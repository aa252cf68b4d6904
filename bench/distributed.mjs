// Data-parallel training speed: samples/s of the reference MoE trained by 1 process and by 2 processes
// (Gloo over loopback), one intra-op thread each, on the same MNIST images, with the bytes each rank
// exchanges per step. Medians over --reps runs of the last epoch; results in bench/results/.
//   node bench/distributed.mjs [--reps 3] [--limit 10000] [--epochs 2] [--out bench/results]
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../dist/lib/cli/launch.js';
import { currentCommit, median, slug } from './common.mjs';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '3' }, limit: { type: 'string', default: '10000' }, epochs: { type: 'string', default: '2' }, out: { type: 'string', default: 'bench/results' } } });
const here = path.dirname(new URL(import.meta.url).pathname);

/** Runs `world` ranks; resolves with rank 0's JSON line. */
async function job(kind, world) {
  const port = await freePort();
  const outputs = await Promise.all(Array.from({ length: world }, (_, rank) => new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, 'distributed_rank.mjs'), kind, values.limit, values.epochs], {
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${kind} world ${world} rank ${rank} exited ${code}`))));
  })));
  return JSON.parse(outputs[0].trim().split('\n').at(-1));
}

const rows = [];
for (const kind of ['moe', 'dense']) {
  const runs = { 1: [], 2: [] };
  let params = 0;
  for (let r = 0; r < Number(values.reps); r++) {
    for (const world of [1, 2]) {  // alternating, so drift in the machine's speed hits both alike
      const res = await job(kind, world);
      runs[world].push(res.samplesPerSecond.at(-1));
      params = res.params;
    }
  }
  // A ring all-reduce of b bytes sends (and receives) 2(W-1)/W * b per rank: the gradients (float32),
  // plus the MoE's expert counts (E+1 int64) per forward and the stop flag.
  const gradientBytes = params * 4 + 4;
  const perStep = (2 * (2 - 1)) / 2 * gradientBytes + (kind === 'moe' ? 9 * 8 : 0);
  rows.push({ kind, params, onePerSecond: median(runs[1]), twoPerSecond: median(runs[2]), speedup: median(runs[2]) / median(runs[1]), bytesSentPerRankPerStep: Math.round(perStep), runs });
  console.log(`${kind}: 1 process ${median(runs[1]).toFixed(0)} samples/s, 2 processes ${median(runs[2]).toFixed(0)} samples/s (${(median(runs[2]) / median(runs[1])).toFixed(2)}x), ${Math.round(perStep).toLocaleString('en')} bytes sent per rank per step`);
}

const cpu = os.cpus()[0]?.model.trim() ?? 'cpu';
const commit = currentCommit();
const date = new Date().toISOString().slice(0, 10);
const machine = `${os.availableParallelism()}-core ${cpu}`;
const name = `distributed-${os.availableParallelism()}core-${slug(cpu.split(' ').slice(0, 2).join(' '))}-${date}-${commit}`;
mkdirSync(values.out, { recursive: true });
writeFileSync(path.join(values.out, `${name}.json`), JSON.stringify({ machine, commit, date, settings: values, rows }, null, 2));
writeFileSync(path.join(values.out, `${name}.md`), [
  `# Data-parallel training: ${machine}, ${date}, commit ${commit}`,
  '',
  `Reference models, batch 64 (the global batch), ${values.limit} MNIST images, last of ${values.epochs} epochs, median of ${values.reps} runs; one intra-op thread per process; Gloo over loopback. Command: \`node bench/distributed.mjs\`.`,
  '',
  '| model | parameters | 1 process (samples/s) | 2 processes (samples/s) | speedup | bytes sent per rank per step |',
  '| --- | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.kind} | ${r.params.toLocaleString('en')} | ${r.onePerSecond.toFixed(0)} | ${r.twoPerSecond.toFixed(0)} | ${r.speedup.toFixed(2)}x | ${r.bytesSentPerRankPerStep.toLocaleString('en')} |`),
  '',
  'Expert parallelism is not built yet, so it has no row.',
  '',
].join('\n'));
console.log(`wrote ${path.join(values.out, name)}.{json,md}`);
