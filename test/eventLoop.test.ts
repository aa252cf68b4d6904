// train() runs off the JS thread and off libuv's pool: timers keep firing while it runs, and it finishes
// even when all four pool threads are blocked (a host service needs them for fs, dns and crypto).
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { MoEClassifier } from '../lib/index.js';
import { mnist } from './helpers/data.js';

describe('event loop', () => {
  it('stays responsive during train', async () => {
    const data = await mnist('train', 5000);
    const model = new MoEClassifier({ seed: 0 });
    const histogram = monitorEventLoopDelay({ resolution: 10 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    histogram.enable();
    const started = performance.now();
    await model.train(data, { epochs: 6 });  // ~0.9 s on one core of the CI machine: long enough to measure
    const elapsed = performance.now() - started;
    histogram.disable();
    clearInterval(timer);
    model.dispose();
    // A blocked loop would show one gap as long as the whole run and almost no ticks. The bounds are
    // loose on purpose: this checks where the work runs, not how fast the machine is.
    expect(elapsed).toBeGreaterThan(300);
    expect(ticks).toBeGreaterThan(elapsed / 10 / 4);
    expect(histogram.max / 1e6).toBeLessThan(Math.min(250, elapsed / 2));
  });

  it('does not use a libuv pool thread: train completes while all four are blocked', async () => {
    const data = await mnist('train', 500); // before the pool is blocked: reading files needs it
    const model = new MoEClassifier({ seed: 0 });
    const poolSize = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'torch-moe-fifo-'));
    const fifos = Array.from({ length: poolSize }, (_, i) => path.join(dir, `fifo${i}`));
    execFileSync('mkfifo', fifos);
    // Opening a FIFO for reading blocks its pool thread until a writer opens it.
    const reads = fifos.map((f) => readFile(f, 'utf8'));
    // Release the pool (the writes themselves would queue behind the blocked reads, so use a child process).
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      for (const f of fifos) execFileSync('sh', ['-c', `printf done > '${f}'`]);
    };
    // If train did need a pool thread, it would wait for this release: fail then instead of hanging.
    const failsafe = setTimeout(release, 30_000);
    await new Promise((r) => setTimeout(r, 100));
    const history = await model.train(data, { epochs: 1 });
    const finishedWhileBlocked = !released;
    release();
    clearTimeout(failsafe);
    model.dispose();
    expect(finishedWhileBlocked).toBe(true);
    expect(history.epochs).toHaveLength(1);
    expect(await Promise.all(reads)).toEqual(fifos.map(() => 'done'));
  });
});
