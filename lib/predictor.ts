// Micro-batching for services: single-input predict calls from many concurrent requests are merged into
// one native forward pass and the results split back, so a service gets batch throughput from
// one-request-at-a-time code. Each input is checked on its own before it joins a batch, so one bad
// request fails alone.
import type { Classifier, InputRouting } from './Classifier.js';
import { checkInteger, checkKnownKeys, checkNumber, checkObject, invalidRange, invalidType } from './validate.js';

export interface PredictorOptions {
  maxBatch?: number;    // inputs per native call, default 64
  // The longest the first waiting input waits for others, default 1 ms; 0: no timer, the inputs that
  // arrived in the same turn of the event loop go together (setImmediate).
  maxDelayMs?: number;
  // Batches sent and not yet returned, default 4. While that many run, arriving inputs wait and go
  // together as soon as one returns: the model runs one call at a time anyway (one compute thread), so
  // under load the batches grow instead of queueing behind each other (`npm run bench:serve --
  // --max-in-flight 4,65536` compares).
  maxInFlight?: number;
  routing?: boolean;    // also return each input's experts and weights (MoE), default false
}

export interface SinglePrediction {
  probabilities: Float32Array;  // numClasses values
  routing?: InputRouting;
}

interface Waiting {
  input: Float32Array;
  resolve: (p: SinglePrediction) => void;
  reject: (err: unknown) => void;
}

export class Predictor {
  private readonly maxBatch: number;
  private readonly maxDelayMs: number;
  private readonly maxInFlight: number;
  private readonly routing: boolean;
  private queue: Waiting[] = [];
  private timer: { cancel(): void } | undefined;
  private inFlight = new Set<Promise<void>>();
  private running = 0;  // batches whose native call has not returned
  private closed = false;
  /** Native calls made and inputs served: how well requests were merged. */
  readonly stats = { calls: 0, inputs: 0 };

  constructor(private readonly model: Classifier, options: PredictorOptions = {}) {
    checkObject('options', options);
    checkKnownKeys('options', options as Record<string, unknown>, ['maxBatch', 'maxDelayMs', 'maxInFlight', 'routing']);
    this.maxBatch = checkInteger('options.maxBatch', options.maxBatch ?? 64, 1, 1 << 16);
    this.maxDelayMs = checkNumber('options.maxDelayMs', options.maxDelayMs ?? 1, 0, true);
    this.maxInFlight = checkInteger('options.maxInFlight', options.maxInFlight ?? 4, 1, 1 << 16);
    if (options.routing !== undefined && typeof options.routing !== 'boolean') throw invalidType('options.routing', 'a boolean', options.routing);
    this.routing = options.routing ?? false;
    const c = model.config;
    if (c.kind === 'moe' && (c.routing === 'expert-choice' || (c.capacityFactor ?? null) !== null)) {
      throw new Error(`micro-batching would change this model's results: with ${c.routing === 'expert-choice' ? "routing 'expert-choice'" : 'a capacityFactor'} an input's routing depends on the other inputs of its batch (docs/routing.md); call predict directly`);
    }
    if (this.routing && c.kind !== 'moe') throw new TypeError('options.routing needs an MoE model: a dense model has no experts');
  }

  /** Class probabilities (and routing) of one input of `inputSize` values. */
  predict(input: Float32Array): Promise<SinglePrediction> {
    if (this.closed) return Promise.reject(new Error('the predictor is closed'));
    const size = this.model.config.inputSize;
    if (!(input instanceof Float32Array)) return Promise.reject(invalidType('input', 'a Float32Array', input));
    if (input.length !== size) return Promise.reject(invalidRange('input.length', `inputSize (${size})`, input.length));
    for (let i = 0; i < size; i++) {
      if (!Number.isFinite(input[i])) return Promise.reject(invalidRange(`input[${i}]`, 'a finite number', input[i]));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (this.queue.length >= this.maxBatch) this.flush();
      else if (this.running < this.maxInFlight) this.timer ??= this.later(() => this.flush());
      // else: a running batch sends what waits when it returns
    });
  }

  /** Serves what is waiting, waits for it, then refuses new calls. */
  async close(): Promise<void> {
    this.closed = true;
    this.flush();
    // Each batch that returns sends the next of what waits, until nothing is left.
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
  }

  /** A batch's native call returned: what waits below the limit keeps its timer (maxDelayMs); what the
   * limit held back (it has no timer) goes now, as one batch. */
  private returned(): void {
    this.running -= 1;
    if (this.timer === undefined) this.flush();
  }

  /** fn after `delayMs`, or, for 0, once this turn of the event loop has read what has arrived. */
  private later(fn: () => void, delayMs = this.maxDelayMs): { cancel(): void } {
    if (delayMs === 0) {
      const immediate = setImmediate(fn);
      return { cancel: () => clearImmediate(immediate) };
    }
    const timeout = setTimeout(fn, delayMs);
    return { cancel: () => clearTimeout(timeout) };
  }

  /** Sends what waits, in batches of up to maxBatch, while fewer than maxInFlight batches run; a batch
   * that returns calls this again for the rest. */
  private flush(): void {
    this.timer?.cancel();
    this.timer = undefined;
    while (this.queue.length > 0 && this.running < this.maxInFlight) this.send(this.queue.splice(0, this.maxBatch));
  }

  private send(batch: Waiting[]): void {
    const size = this.model.config.inputSize, classes = this.model.config.numClasses;
    const inputs = new Float32Array(batch.length * size);
    batch.forEach((w, i) => inputs.set(w.input, i * size));
    this.stats.calls += 1;
    this.stats.inputs += batch.length;
    this.running += 1;
    const done = (async () => {
      let answer: (i: number) => SinglePrediction;
      try {
        if (this.routing) {
          const p = await this.model.predict(inputs, { batchSize: batch.length, routing: true });
          answer = (i) => ({ probabilities: p.probabilities.slice(i * classes, (i + 1) * classes), routing: p.routing[i] });
        } else {
          const p = await this.model.predict(inputs, { batchSize: batch.length });
          answer = (i) => ({ probabilities: p.slice(i * classes, (i + 1) * classes) });
        }
      } catch (err) {
        this.returned();
        for (const w of batch) w.reject(err);
        return;
      }
      this.returned();  // before these callers resume, so that the model is not idle while they answer
      batch.forEach((w, i) => w.resolve(answer(i)));
    })();
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }
}
