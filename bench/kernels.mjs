// The hand-written CPU kernels against what they replace (ATen/BLAS), one thread, at the reference
// model's shapes: runs build/moe_kernel_bench (built with the native tests: `npm run build:native`) and
// writes bench/results/kernels-<machine>-<date>-<commit>.{json,md}. See bench/native/kernels_bench.cpp.
//
//   node bench/kernels.mjs [--rounds 7] [--out bench/results]
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { commandLine, currentCommit, machineSlug, nativeBench } from './common.mjs';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, out: { type: 'string', default: 'bench/results' } } });
const binary = nativeBench('moe_kernel_bench');
const lines = execFileSync(binary, [values.rounds], { encoding: 'utf8' }).trim().split('\n').map((l) => JSON.parse(l));
const commit = currentCommit();
const date = new Date().toISOString().slice(0, 10);
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const md = [
  `# CPU kernels: ${cpu} (${os.cpus().length} cores), ${date}, commit ${commit}`,
  '',
  `One thread, the reference model's shapes (8 experts of 256 → 128 → 256, batch 64); each comparison alternates the two sides for ${values.rounds} rounds and gives the medians (speedup: the median of the per-round ratios). The first forward rows time row_gemm on weights transposed beforehand against addmm on the weights as stored (the transposes have their own row); the rows "on W as stored" time what the training forward now runs for experts of up to 24 rows (row_gemm_nt) against the transposes plus row_gemm it runs for larger ones. Weights and activations are hot in cache here; in a training step the weights come from L3. The narrow layers run forward and backward through autograd on both sides; the Adam rows are one step over the reference MoE's and dense256's parameter counts (the difference between the two is what the MoE's extra parameters cost per step). The inference rows run the whole reference MoE (routing included) on inputs that are 80% zeros, like MNIST's: on the weights inference prepares (output layer composed into the experts, their first layers transposed), kept across calls until the weights change, against forward() and against preparing them in every call. The predict rows time the whole native predict with routing (probabilities, then each input's experts by decreasing weight, listed by host loops) against the same forward pass with the experts listed by the ATen sorts, gathers and concatenations predict used before. Command: \`${commandLine('bench:kernels')}\`.`,
  '',
  '| what | torch-moe kernel (µs) | against | its time (µs) | speedup |',
  '| --- | ---: | --- | ---: | ---: |',
  ...lines.filter((l) => l.what).map((l) => `| ${l.what} | ${l.ours_us.toFixed(1)} | ${l.against} | ${l.theirs_us.toFixed(1)} | ${l.speedup.toFixed(2)}× |`),
  ...lines.filter((l) => l.skipped).map((l) => `Skipped: ${l.skipped}.`),
  '',
];
mkdirSync(values.out, { recursive: true });
const base = path.join(values.out, `kernels-${machineSlug()}-${date}-${commit}`);
writeFileSync(`${base}.json`, JSON.stringify({ date, commit, machine: { cpu, cores: os.cpus().length }, rounds: Number(values.rounds), results: lines }, null, 2) + '\n');
writeFileSync(`${base}.md`, md.join('\n'));
console.log(md.join('\n'));
