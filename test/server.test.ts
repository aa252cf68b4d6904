// The example service (examples/server/server.mjs) in a child process: answers as the model predicts, for
// JSON, raw float32 and PNG bodies; bad requests get a 400 with a message and the server keeps serving; SIGTERM lets
// in-flight requests finish and exits 0.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MoEClassifier } from '../lib/index.js';
import { mnist } from './helpers/data.js';

const root = path.resolve(import.meta.dirname, '..');
let server: ChildProcess, url = '', model: MoEClassifier;
let test: Awaited<ReturnType<typeof mnist>>;

let modelFile = '';

function start(file: string, ...flags: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [path.join(root, 'examples/server/server.mjs'), '--model', file, '--port', '0', ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      const m = /listening on (http:\/\/\S+)/.exec(String(d));
      if (m) resolve({ child, url: m[1]! });
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

const post = (body: string | Buffer, type = 'application/json') => fetch(`${url}/predict`, { method: 'POST', body, headers: { 'content-type': type } });

beforeAll(async () => {
  const train = await mnist('train', 1000);
  test = await mnist('test', 8);
  model = new MoEClassifier({ seed: 1 });
  await model.train(train, { epochs: 1 });
  modelFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'torch-moe-server-')), 'moe.safetensors');
  await model.save(modelFile);
  ({ child: server, url } = await start(modelFile));
}, 120_000);

afterAll(() => {
  server?.kill('SIGKILL');
  model?.dispose();
});

describe('example server', () => {
  it('answers JSON pixels as the model predicts, with the routing', async () => {
    const pixels = test.inputs.subarray(0, 784);
    const r = await post(JSON.stringify({ pixels: Array.from(pixels) }));
    expect(r.status).toBe(200);
    const body = await r.json();
    const want = await model.predict(pixels, { routing: true });
    body.probabilities.forEach((v: number, i: number) => expect(v).toBeCloseTo(want.probabilities[i]!, 6));
    expect(body.prediction).toBe(body.probabilities.indexOf(Math.max(...body.probabilities)));
    expect(body.routing.experts).toEqual(want.routing[0]!.experts);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('reads raw float32 bodies exactly as the same pixels in JSON', async () => {
    for (const i of [2, 3]) {
      const pixels = test.inputs.slice(784 * i, 784 * (i + 1));
      const json = await (await post(JSON.stringify({ pixels: Array.from(pixels) }))).json();
      const r = await post(Buffer.from(pixels.buffer), 'application/octet-stream');
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual(json);
    }
  });

  it('reads a 28x28 PNG', async () => {
    const png = new PNG({ width: 28, height: 28 });
    for (let i = 0; i < 784; i++) {
      const v = Math.round(test.inputs[784 + i]! * 255);
      png.data.set([v, v, v, 255], 4 * i);
    }
    const r = await post(PNG.sync.write(png), 'image/png');
    expect(r.status).toBe(200);
    const body = await r.json();
    // 8-bit pixels: the same digit, up to rounding
    const want = await model.predict(test.inputs.slice(784, 1568));
    expect(body.prediction).toBe(Array.from(want).indexOf(Math.max(...want)));
  });

  it('answers a bad request with 400 and a message, and keeps serving', async () => {
    const cases: [string | Buffer, string, RegExp][] = [
      ['{"pixels": [1, 2, 3]}', 'application/json', /expected 784 pixels, got 3/],
      [JSON.stringify({ pixels: [...new Array(783).fill(0), null] }), 'application/json', /pixels\[783\] is not a finite number: null/],
      [`{"pixels": [1e999${',0'.repeat(783)}]}`, 'application/json', /pixels\[0\] is not a finite number: Infinity/],
      ['not json', 'application/json', /not JSON/],
      ['{"image": []}', 'application/json', /expected \{"pixels": \[numbers\]\}/],
      [Buffer.from('not a png'), 'image/png', /not a readable PNG/],
      [Buffer.alloc(784 * 4 - 1), 'application/octet-stream', /expected 3136 bytes \(784 float32 values, little-endian\), got 3135/],
      [Buffer.from(new Float32Array(784).fill(Number.NaN).buffer), 'application/octet-stream', /pixels\[0\] is not a finite number: NaN/],
    ];
    for (const [body, type, message] of cases) {
      const r = await post(body, type);
      expect(r.status, String(body).slice(0, 40)).toBe(400);
      expect((await r.json()).error).toMatch(message);
    }
    expect((await post(JSON.stringify({ pixels: Array.from(test.inputs.subarray(0, 784)) }))).status).toBe(200);
    const stats = await (await fetch(`${url}/stats`)).json();
    expect(stats.badRequests).toBe(cases.length);
    expect(stats.errors).toBe(0);
  });

  it('with --no-model-calls answers uniform probabilities in the same shape, and still refuses bad pixels', async () => {
    const noModel = await start(modelFile, '--no-model-calls');
    try {
      const ask = (body: string | Buffer, type = 'application/json') => fetch(`${noModel.url}/predict`, { method: 'POST', body, headers: { 'content-type': type } });
      const r = await ask(JSON.stringify({ pixels: Array.from(test.inputs.subarray(0, 784)) }));
      expect(r.status).toBe(200);
      const body = await r.json();
      expect(body.probabilities).toEqual(new Array(10).fill(Math.fround(0.1)));
      expect(body.prediction).toBe(0);
      expect(body.routing).toEqual({ experts: [0, 1], weights: [0.5, 0.5] });
      const nan = await ask(Buffer.from(new Float32Array(784).fill(Number.NaN).buffer), 'application/octet-stream');
      expect(nan.status).toBe(400);
      expect((await nan.json()).error).toBe('pixels[0] is not a finite number: NaN');  // as the other modes say
      expect((await ask('{"pixels": [1]}')).status).toBe(400);
      const stats = await (await fetch(`${noModel.url}/stats`)).json();
      expect(stats.predictor).toBeNull();
    } finally {
      noModel.child.kill('SIGKILL');
    }
  });

  it('with --no-batching answers as the micro-batching server does, bad pixels included', async () => {
    const single = await start(modelFile, '--no-batching');
    try {
      const ask = (body: string | Buffer, type = 'application/json') => fetch(`${single.url}/predict`, { method: 'POST', body, headers: { 'content-type': type } });
      const pixels = Array.from(test.inputs.subarray(0, 784));
      const [one, batched] = await Promise.all([ask(JSON.stringify({ pixels })), post(JSON.stringify({ pixels }))]);
      expect(one.status).toBe(200);
      expect(await one.json()).toEqual(await batched.json());
      const nan = await ask(Buffer.from(new Float32Array(784).fill(Number.NaN).buffer), 'application/octet-stream');
      expect(nan.status).toBe(400);
      expect((await nan.json()).error).toBe('pixels[0] is not a finite number: NaN');
    } finally {
      single.child.kill('SIGKILL');
    }
  });

  it('refuses batching options in a mode without batching, and bad numbers, with a usage error (exit 2)', async () => {
    const run = (...flags: string[]) => new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [path.join(root, 'examples/server/server.mjs'), '--model', modelFile, '--port', '0', ...flags], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d) => { stderr += String(d); });
      child.once('close', (code) => resolve({ code, stderr }));  // (after stderr is read to its end)
    });
    for (const [flags, message] of [
      [['--no-batching', '--max-in-flight', '2'], '--max-in-flight applies to micro-batching; it cannot be combined with --no-batching'],
      [['--max-batch', '8', '--no-model-calls'], '--max-batch applies to micro-batching; it cannot be combined with --no-model-calls'],
      [['--max-in-flight', '0'], 'Expected an integer in [1, 65536] for options.maxInFlight but received 0'],
      [['--threads', 'many'], '--threads: '],
    ] as [string[], string][]) {
      const { code, stderr } = await run(...flags);
      expect(code, flags.join(' ')).toBe(2);
      expect(stderr).toContain(message);
      expect(stderr).toContain('usage: node examples/server/server.mjs');
    }
  }, 60_000);

  it('on SIGTERM finishes the requests in flight, then exits 0', async () => {
    const body = JSON.stringify({ pixels: Array.from(test.inputs.subarray(0, 784)) });
    const inFlight = Array.from({ length: 20 }, () => post(body).then((r) => r.status));
    await new Promise((r) => setTimeout(r, 5));
    const exited = new Promise<number | null>((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    const statuses = await Promise.all(inFlight.map((p) => p.catch(() => 'refused')));
    // Requests the server had accepted are answered; any sent after it stopped listening are refused.
    expect(statuses.filter((s) => s !== 200 && s !== 'refused')).toEqual([]);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
    expect(await exited).toBe(0);
  });
});
