// Distributed training speed: samples/s of the reference MoE and the dense model trained by 1 process and
// by 2 processes (Gloo over loopback), data parallel, and for the MoE also expert parallel, one intra-op
// thread each, on the same MNIST images; with the bytes each rank hands to the collectives per step
// (measured by the group). Medians over --reps runs of the last epoch; results in bench/results/.
//   node bench/distributed.mjs [--reps 3] [--limit 20000] [--epochs 2] [--batch 64,512,2048] [--out bench/results]
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../dist/lib/cli/launch.js';
import { commandLine, currentCommit, machineSlug, median } from './common.mjs';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '3' }, limit: { type: 'string', default: '20000' }, epochs: { type: 'string', default: '2' }, batch: { type: 'string', default: '64,512,2048' }, out: { type: 'string', default: 'bench/results' } } });
const here = path.dirname(new URL(import.meta.url).pathname);

/** Runs `world` ranks; resolves with rank 0's JSON line. */
async function job(kind, world, ep, batch) {
  const port = await freePort();
  const outputs = await Promise.all(Array.from({ length: world }, (_, rank) => new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, 'distributed_rank.mjs'), kind, values.limit, values.epochs, String(batch), ep ? 'ep' : 'dp'], {
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${kind} world ${world} rank ${rank} exited ${code}`))));
  })));
  return JSON.parse(outputs[0].trim().split('\n').at(-1));
}

// Each row: its 1-process baseline and its 2-process run, alternating within each repetition so that
// drift in the machine's speed hits both alike.
const setups = [
  { label: 'moe, data parallel', kind: 'moe', ep: false },
  { label: 'moe, expert parallel (4 experts per rank)', kind: 'moe', ep: true },
  { label: 'dense, data parallel', kind: 'dense', ep: false },
];
const rows = [];
for (const batch of values.batch.split(',').map(Number)) for (const setup of setups) {
  const steps = Number(values.epochs) * Math.ceil(Number(values.limit) / batch);
  const runs = { 1: [], 2: [] };
  let params = 0, traffic = null;
  for (let r = 0; r < Number(values.reps); r++) {
    for (const world of [1, 2]) {
      const res = await job(setup.kind, world, setup.ep, batch);
      runs[world].push(res.samplesPerSecond.at(-1));
      params = res.params;
      if (res.traffic) traffic = res.traffic;
    }
  }
  const one = median(runs[1]), two = median(runs[2]);
  const perStep = {
    allReduceBytes: Math.round(traffic.allReduceBytes / steps),
    allToAllBytes: Math.round(traffic.allToAllBytes / steps),
    setupBytesPerTrainCall: traffic.otherBytes,
  };
  rows.push({ ...setup, batch, params, onePerSecond: one, twoPerSecond: two, speedup: two / one, perStep, runs });
  console.log(`${setup.label}, batch ${batch}: 1 process ${one.toFixed(0)} samples/s, 2 processes ${two.toFixed(0)} samples/s (${(two / one).toFixed(2)}x); per step and rank ${perStep.allReduceBytes.toLocaleString('en')} bytes all-reduced, ${perStep.allToAllBytes.toLocaleString('en')} bytes sent all-to-all`);
}

const cpu = os.cpus()[0]?.model.trim() ?? 'cpu';
const commit = currentCommit();
const date = new Date().toISOString().slice(0, 10);
const machine = `${os.availableParallelism()}-core ${cpu}`;
const name = `distributed-${machineSlug()}-${date}-${commit}`;
mkdirSync(values.out, { recursive: true });
writeFileSync(path.join(values.out, `${name}.json`), JSON.stringify({ machine, commit, date, settings: values, rows }, null, 2));
writeFileSync(path.join(values.out, `${name}.md`), [
  `# Distributed training: ${machine}, ${date}, commit ${commit}`,
  '',
  `Reference models, ${values.limit} MNIST images, last of ${values.epochs} epochs, median of ${values.reps} runs; one intra-op thread per process; Gloo over loopback. Bytes: what rank 0 handed to the collectives per step (payload, averaged over the steps; a ring all-reduce sends about 2(W-1)/W of it per rank), measured by the group. Command: \`${commandLine('bench:distributed')}\`.`,
  '',
  '| setup | global batch | parameters | 1 process (samples/s) | 2 processes (samples/s) | speedup | all-reduced per step (bytes) | sent all-to-all per step (bytes) |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.label} | ${r.batch} | ${r.params.toLocaleString('en')} | ${r.onePerSecond.toFixed(0)} | ${r.twoPerSecond.toFixed(0)} | ${r.speedup.toFixed(2)}x | ${r.perStep.allReduceBytes.toLocaleString('en')} | ${r.perStep.allToAllBytes.toLocaleString('en')} |`),
  '',
  `Once per train call (not per step) each rank also receives rank 0's weights and Adam state, and with expert parallelism gathers the experts back: ${rows.filter((r) => r.batch === rows[0].batch).map((r) => `${r.label} ${r.perStep.setupBytesPerTrainCall.toLocaleString('en')} bytes`).join('; ')}.`,
  '',
].join('\n'));
console.log(`wrote ${path.join(values.out, name)}.{json,md}`);
