// Training across processes on c10d (Gloo over loopback): a data-parallel step equals a single-process
// step on the global batch; the launcher trains to accuracy and its checkpoint loads in one process; a
// killed or hung rank ends the job with an error that names the rank and the operation; bad settings
// (port in use, no master, missing ranks) fail with a message that says which.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MoEClassifier, destroyDistributed, distributedInfo, distributedTraffic, initDistributed, loadModel } from '../lib/index.js';
import { readModelFile } from '../lib/Classifier.js';
import { freePort } from '../lib/cli/launch.js';
import { mnist, synthetic, tinyMoE } from './helpers/data.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'torch-moe-dist-'));
const worker = path.resolve(import.meta.dirname, 'helpers', 'distributedTrain.mjs');
const cli = path.resolve(import.meta.dirname, '..', 'dist', 'lib', 'cli.js');

interface RankRun { code: number | null; stderr: string; ms: number }

/**
 * Starts `world` ranks of the worker script with torchrun's variables; resolves when all have exited.
 * Once one rank has failed the others are killed (a hung rank would otherwise sleep on).
 */
async function runRanks(world: number, job: Record<string, unknown>): Promise<RankRun[]> {
  const port = await freePort();
  const children: ReturnType<typeof spawn>[] = [];
  return Promise.all(Array.from({ length: world }, (_, rank) => new Promise<RankRun>((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [worker, JSON.stringify(job)], {
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (c) => (stderr += c));
    child.on('close', (code) => {  // (after stderr is read to its end)
      if (code !== 0) for (const other of children) if (other.exitCode === null) other.kill('SIGKILL');
      resolve({ code, stderr, ms: Date.now() - started });
    });
  })));
}

/** Writes a dataset for the worker script (test/helpers/distributedTrain.mjs reads it back). */
function writeDataset(name: string, d: { inputs: Float32Array; labels: Uint8Array | Uint16Array | Int32Array; count: number }): string {
  const file = path.join(tmp, name);
  writeFileSync(`${file}.json`, JSON.stringify({ count: d.count }));
  writeFileSync(`${file}.inputs`, Buffer.from(d.inputs.buffer, d.inputs.byteOffset, d.inputs.byteLength));
  writeFileSync(`${file}.labels`, Buffer.from(Uint8Array.from(d.labels)));
  return file;
}

/**
 * What rank 0 all-reduces in the 3-step jobs below (tinyMoE, 96 inputs, batch 33, one epoch): per step the
 * gradients of the parameters not held per expert rank (float32) with the stop flag (one float32) and the
 * forward's expert counts (E+1 int64); the epoch's metrics once (5+E float64).
 */
function expectedAllReduce(params: number, expertParams: number) {
  const E = tinyMoE.numExperts;
  return expect.objectContaining({ allReduceBytes: 3 * (4 * (params - expertParams) + 4 + 8 * (E + 1)) + 8 * (5 + E), ...(expertParams === 0 ? { allToAllBytes: 0 } : {}) });
}

const tensors = async (file: string) => new Map((await readModelFile(file)).tensors.map((t) => [t.name, t.data]));
const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

afterEach(async () => destroyDistributed());

describe('data parallel (2 processes, Gloo on loopback)', () => {
  // batchSize 33 over 96 inputs: three steps (33, 33, 30), shares of 16/17 and 15/15, so the per-rank
  // weighting of the loss matters; a high learning rate makes a wrong gradient visible in the weights.
  const cases: { name: string; model: Record<string, unknown> & { seed: number }; train?: { translate: number } }[] = [
    { name: 'the reference routing (fused softmax top-k)', model: { ...tinyMoE, seed: 3 } },
    { name: 'sigmoid top-k with bias balancing (global expert counts)', model: { ...tinyMoE, seed: 5, routing: 'sigmoid-topk', biasBalancing: { rate: 0.05 } } },
    // 16 inputs read as 4x4 images: an input must move alike whichever rank takes it
    { name: 'with translate 1 (augmented 4x4 inputs)', model: { ...tinyMoE, seed: 7 }, train: { translate: 1 } },
  ];
  for (const c of cases) {
    it(`3 steps equal one process on the global batch: ${c.name}`, async () => {
      const train = { epochs: 1, batchSize: 33, learningRate: 0.02, ...c.train };
      const out = path.join(tmp, `dp-${c.model.seed}`);
      const data = synthetic(96, tinyMoE.inputSize, tinyMoE.numClasses, 2);
      // Rank 1's model has another seed: rank 0's weights and shuffling seed are the ones every rank uses.
      const ranks = await runRanks(2, { model: c.model, modelByRank: { 1: { seed: 99 } }, train, data: { file: writeDataset(`data-${c.model.seed}`, data) }, out });
      for (const r of ranks) expect(r.code, r.stderr).toBe(0);

      const single = new MoEClassifier(c.model as ConstructorParameters<typeof MoEClassifier>[0]);
      const initial = path.join(tmp, `init-${c.model.seed}.safetensors`);
      await single.save(initial);
      const history = await single.train(data, train);
      const reference = path.join(tmp, `single-${c.model.seed}.safetensors`);
      await single.save(reference);

      const [dp0, dp1, want, before] = await Promise.all([tensors(`${out}.rank0.safetensors`), tensors(`${out}.rank1.safetensors`), tensors(reference), tensors(initial)]);
      for (const [name, w] of want) {
        const moved = maxAbsDiff(w, before.get(name)!);
        expect(moved, `${name} moved in training`).toBeGreaterThan(0);  // (bias buffers too, with balancing)
        expect(maxAbsDiff(dp0.get(name)!, w), name).toBeLessThan(1e-5 + 1e-3 * moved);
        expect(maxAbsDiff(dp1.get(name)!, dp0.get(name)!), `${name}: ranks agree`).toBe(0);
      }
      const rank0 = JSON.parse(readFileSync(`${out}.rank0.json`, 'utf8'));
      const got = rank0.history.epochs[0];
      const ref = history.epochs[0]!;
      expect(rank0.traffic).toEqual(expectedAllReduce(single.paramCount().total, 0));
      expect(got.samples).toBe(96);
      expect(got.classificationLoss).toBeCloseTo(ref.classificationLoss, 6);
      expect(got.auxLoss).toBeCloseTo(ref.auxLoss, 6);
      expect(got.accuracy).toBe(ref.accuracy);
      expect(got.expertLoad).toEqual(ref.expertLoad);
    }, 60_000);
  }

  it('world size 1 in this process is the plain single-process training', async () => {
    const joining = initDistributed({ rank: 0, worldSize: 1, masterPort: await freePort(), timeoutMs: 5000 });
    await expect(initDistributed({ rank: 0, worldSize: 1, masterPort: await freePort() })).rejects.toThrow(/already joining a group/);
    const info = await joining;
    await expect(initDistributed({ rank: 0, worldSize: 1 })).rejects.toThrow(/already joined a distributed group/);
    expect(info).toMatchObject({ rank: 0, worldSize: 1, backend: 'gloo', isMain: true });
    expect(distributedInfo()).toMatchObject({ rank: 0, worldSize: 1 });
    const data = synthetic(100, tinyMoE.inputSize, tinyMoE.numClasses);
    const a = new MoEClassifier({ ...tinyMoE, seed: 8 }), b = new MoEClassifier({ ...tinyMoE, seed: 8 });
    const ha = await a.train(data, { epochs: 2, batchSize: 16, distributed: true });
    const hb = await b.train(data, { epochs: 2, batchSize: 16 });
    expect(ha.epochs.map((e) => e.loss)).toEqual(hb.epochs.map((e) => e.loss));
    expect(await a.predict(data.inputs)).toEqual(await b.predict(data.inputs));
  });

  it('destroyDistributed returns a promise that settles once the group is released: the port can be joined again', async () => {
    const port = await freePort();
    await initDistributed({ rank: 0, worldSize: 1, masterPort: port, timeoutMs: 5000 });
    const leaving = destroyDistributed();
    expect(leaving).toBeInstanceOf(Promise);
    expect(destroyDistributed()).toBe(leaving);  // a second call while it runs shares it
    expect(distributedInfo()).toBeNull();
    await leaving;
    // rank 0's store listened on `port`: joining there again works only once the group is gone
    await expect(initDistributed({ rank: 0, worldSize: 1, masterPort: port, timeoutMs: 5000 })).resolves.toMatchObject({ worldSize: 1 });
    await destroyDistributed();
    await destroyDistributed();  // leaving twice: nothing to do
  });
});

describe('expert parallel (experts spread over the ranks, Gloo on loopback)', () => {
  // The single-process model's file is the ranks' starting point (a file crosses into any valid world
  // size); after 3 steps each rank holds the whole model again, equal to the single-process one.
  const cases = [
    { world: 2, name: 'the reference routing', model: { ...tinyMoE, seed: 11 } },
    { world: 4, name: 'the reference routing, one expert per rank', model: { ...tinyMoE, seed: 12 } },
    { world: 2, name: 'sigmoid top-k with bias balancing', model: { ...tinyMoE, seed: 13, routing: 'sigmoid-topk', biasBalancing: { rate: 0.05 } } },
  ];
  for (const c of cases) {
    it(`${c.world} ranks, 3 steps equal one process on the global batch: ${c.name}`, async () => {
      const train = { epochs: 1, batchSize: 33, learningRate: 0.02 };
      const data = synthetic(96, tinyMoE.inputSize, tinyMoE.numClasses, 4);
      const single = new MoEClassifier(c.model as ConstructorParameters<typeof MoEClassifier>[0]);
      const initial = path.join(tmp, `ep-init-${c.model.seed}.safetensors`);
      await single.save(initial);
      const out = path.join(tmp, `ep-${c.model.seed}`);
      const ranks = await runRanks(c.world, { load: initial, train: { ...train, expertParallel: true }, data: { file: writeDataset(`ep-data-${c.model.seed}`, data) }, out });
      for (const r of ranks) expect(r.code, r.stderr).toBe(0);
      const history = await single.train(data, train);
      const reference = path.join(tmp, `ep-single-${c.model.seed}.safetensors`);
      await single.save(reference);

      const [want, before, ...got] = await Promise.all([tensors(reference), tensors(initial), ...ranks.map((_, r) => tensors(`${out}.rank${r}.safetensors`))]);
      for (const [name, w] of want) {
        const moved = maxAbsDiff(w, before.get(name)!);
        expect(moved, `${name} moved in training`).toBeGreaterThan(0);
        expect(maxAbsDiff(got[0]!.get(name)!, w), name).toBeLessThan(1e-5 + 1e-3 * moved);
        for (const g of got.slice(1)) expect(maxAbsDiff(g.get(name)!, got[0]!.get(name)!), `${name}: ranks agree`).toBe(0);
      }
      const rank0 = JSON.parse(readFileSync(`${out}.rank0.json`, 'utf8'));
      const epoch = rank0.history.epochs[0];
      const ref = history.epochs[0]!;
      // The experts' gradients stay on their ranks (only the rest is all-reduced); rows travel instead.
      const { hiddenSize: H, expertHiddenSize: F, numExperts: E } = tinyMoE;
      expect(rank0.traffic).toEqual(expectedAllReduce(single.paramCount().total, E * (2 * F * H + F + H)));
      expect(rank0.traffic.allToAllBytes).toBeGreaterThan(0);
      // Counted while rank 0 held only its experts: still the whole model's numbers.
      expect(rank0.paramCountInTraining).toEqual(single.paramCount());
      expect(epoch.classificationLoss).toBeCloseTo(ref.classificationLoss, 6);
      expect(epoch.auxLoss).toBeCloseTo(ref.auxLoss, 6);
      expect(epoch.accuracy).toBe(ref.accuracy);
      expect(epoch.expertLoad).toEqual(ref.expertLoad);
      // The expert-parallel job's file is one whole model: it loads and predicts in one process.
      const loaded = await loadModel(`${out}.rank0.safetensors`);
      expect(maxAbsDiff(await loaded.predict(data.inputs), await single.predict(data.inputs))).toBeLessThan(1e-5);
      loaded.dispose();
    }, 90_000);
  }

  it('refuses an uneven split of the experts and expertParallel without distributed', async () => {
    const ranks = await runRanks(3, { model: { ...tinyMoE, seed: 1 }, train: { epochs: 1, expertParallel: true }, data: { file: writeDataset('uneven', synthetic(30, tinyMoE.inputSize, tinyMoE.numClasses)) }, out: path.join(tmp, 'uneven') });
    for (const r of ranks) {
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/numExperts divisible by the world size: 4 experts over 3 ranks/);
    }
    const model = new MoEClassifier({ ...tinyMoE });
    await expect(model.train(synthetic(10, 16, 4), { expertParallel: true })).rejects.toThrow(/expertParallel needs distributed: true/);
  }, 60_000);
});

describe('the launcher: npx torch-moe train --nproc-per-node 2', () => {
  for (const mode of [{ flags: [], says: 'data parallel' }, { flags: ['--expert-parallel'], says: 'expert and data parallel' }]) {
    it(`trains 2 ranks to accuracy on an MNIST subset (${mode.says}); the checkpoint loads in one process`, async () => {
      const file = path.join(tmp, `launched-${mode.flags.length}.safetensors`);
      const r = spawnSync(process.execPath, [cli, 'train', '--nproc-per-node', '2', '--limit', '3000', '--epochs', '2', ...mode.flags, '--out', file, '--json'],
        { encoding: 'utf8', env: { ...process.env, CI: '1' }, timeout: 240_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toContain(`, ${mode.says} over 2 ranks`);
      expect(r.stderr.match(/epoch 1\/2/g)).toHaveLength(1);  // progress from rank 0 only
      const out = JSON.parse(r.stdout);  // rank 0's results only: one JSON document
      expect(out.history.epochs.map((e: { samples: number }) => e.samples)).toEqual([3000, 3000]);
      expect(out.test.accuracy).toBeGreaterThan(0.85);
      const model = await loadModel(file);
      expect((await model.evaluate(await mnist('test', 10000))).accuracy).toBeCloseTo(out.test.accuracy, 10);
      model.dispose();
    }, 240_000);
  }

  it('a killed rank ends the job within seconds, naming the rank and the operation; the last checkpoint stays', async () => {
    const file = path.join(tmp, 'kept.safetensors');
    writeFileSync(file, 'the previous checkpoint');
    const launcher = spawn(process.execPath, [cli, 'train', '--nproc-per-node', '2', '--limit', '20000', '--epochs', '50', '--dist-timeout', '20000', '--out', file],
      { env: { ...process.env, CI: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    launcher.stderr.on('data', (c) => (stderr += c));
    const exited = new Promise<number | null>((resolve) => launcher.on('exit', (code) => resolve(code)));
    // Rank 1 is the launcher's child with RANK=1 in its environment; kill it once training runs.
    for (let waited = 0; !/training a moe model/.test(stderr) && waited < 60_000; waited += 200) await new Promise((resolve) => setTimeout(resolve, 200));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const rank1 = childWithRank(launcher.pid!, 1);
    expect(rank1, 'rank 1 is running').toBeDefined();
    const killedAt = Date.now();
    process.kill(rank1!, 'SIGKILL');
    const code = await exited;
    expect(code).not.toBe(0);
    expect(Date.now() - killedAt).toBeLessThan(10_000);  // well within the 20 s timeout: the reset is seen at once
    expect(stderr).toMatch(/rank 1 was killed by SIGKILL/);
    // rank 0 names itself and the collective that broke (the gradients' or the expert counts' all-reduce)
    expect(stderr).toMatch(/rank 0\): distributed [a-z-]+ of .* failed on rank 0 of 2 \(gloo\): .*(Connection reset|Connection closed|peer)/);
    expect(readFileSync(file, 'utf8')).toBe('the previous checkpoint');
    expect(childWithRank(launcher.pid!, 0)).toBeUndefined();  // no rank left behind
  }, 60_000);
});

describe('failures', () => {
  it('a rank that hangs makes the others fail within the timeout with the rank and operation named', async () => {
    const ranks = await runRanks(2, { model: { ...tinyMoE, seed: 1 }, train: { epochs: 1 }, data: { file: writeDataset('hang', synthetic(64, tinyMoE.inputSize, tinyMoE.numClasses)) }, out: path.join(tmp, 'hang'), timeoutMs: 3000, hangRank: 1 });
    const rank0 = ranks[0]!;
    expect(rank0.code).not.toBe(0);
    expect(rank0.stderr).toMatch(/distributed all-gather of the training settings of every rank failed on rank 0 of 2 \(gloo\).*did not take part within the timeout \(3000 ms\)/s);
    expect(rank0.ms).toBeLessThan(15_000);
  }, 200_000);

  it('ranks that disagree on the schedule are refused before training, naming the setting and both values', async () => {
    const ranks = await runRanks(2, { model: { ...tinyMoE, seed: 1 }, train: { epochs: 1, batchSize: 32 }, trainByRank: { 1: { batchSize: 16 } }, data: { file: writeDataset('disagree', synthetic(64, tinyMoE.inputSize, tinyMoE.numClasses)) }, out: path.join(tmp, 'disagree') });
    expect(ranks.map((r) => r.code)).not.toContain(0);
    expect(ranks[0]!.stderr).toMatch(/needs the same batchSize on every rank: rank 0 has 32, rank 1 has 16/);
    expect(ranks[1]!.stderr).toMatch(/needs the same batchSize on every rank: rank 1 has 16, rank 0 has 32/);
  }, 60_000);

  it('a port in use, a master nobody runs, missing ranks and bad settings each get a clear error', async () => {
    const busy: Server = await new Promise((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => resolve(s));
    });
    const busyPort = (busy.address() as { port: number }).port;
    await expect(initDistributed({ rank: 0, worldSize: 1, masterPort: busyPort, timeoutMs: 3000 }))
      .rejects.toMatchObject({ code: 'ERR_TORCH_MOE_DISTRIBUTED', message: expect.stringMatching(/port is in use.*--master-port/s) });
    busy.close();

    const nobody = await freePort();
    await expect(initDistributed({ rank: 1, worldSize: 2, masterPort: nobody, timeoutMs: 1500 }))
      .rejects.toMatchObject({ code: 'ERR_TORCH_MOE_DISTRIBUTED', message: expect.stringMatching(/rendezvous of rank 1 of 2 at 127\.0\.0\.1:\d+ failed/) });

    // WORLD_SIZE 2 but only rank 0 started: it waits the timeout for the other, then says so.
    await expect(initDistributed({ rank: 0, worldSize: 2, masterPort: await freePort(), timeoutMs: 1500 }))
      .rejects.toMatchObject({ code: 'ERR_TORCH_MOE_DISTRIBUTED', message: expect.stringMatching(/not all 2 ranks joined within 1500 ms/) });
    expect(distributedInfo()).toBeNull();
    expect(distributedTraffic()).toBeNull();

    await expect(initDistributed({ rank: 2, worldSize: 2 })).rejects.toThrow(RangeError);
    await expect(initDistributed({ rank: 0, worldSize: 1, backend: 'nccl' })).rejects.toThrow(/no NCCL backend/);
    await expect(initDistributed({ rank: 0, worldSize: 2, masterPort: 70000 })).rejects.toThrow(/masterPort/);
    const saved = { RANK: process.env.RANK, WORLD_SIZE: process.env.WORLD_SIZE };
    process.env.WORLD_SIZE = 'two';
    await expect(initDistributed()).rejects.toThrow(/environment variable WORLD_SIZE.*"two"/);
    delete process.env.WORLD_SIZE;
    await expect(initDistributed()).rejects.toThrow(/RANK and WORLD_SIZE/);
    Object.assign(process.env, Object.fromEntries(Object.entries(saved).filter(([, v]) => v !== undefined)));

    const model = new MoEClassifier({ ...tinyMoE });
    await expect(model.train(synthetic(10, 16, 4), { distributed: true })).rejects.toThrow(/initDistributed\(\)/);
  }, 30_000);
});

/** The pid of the launcher's child whose environment has RANK=<rank> (Linux /proc). */
function childWithRank(parent: number, rank: number): number | undefined {
  const r = spawnSync('pgrep', ['-P', String(parent)], { encoding: 'utf8' });
  for (const pid of r.stdout.split('\n').filter(Boolean).map(Number)) {
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`RANK=${rank}`)) return pid;
    } catch {
      // exited meanwhile
    }
  }
  return undefined;
}
