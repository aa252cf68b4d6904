// What MoEClassifier and DenseClassifier share: the native handle, training with progress and abort,
// evaluation, prediction, and model files. Validates every argument before it reaches native code.
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { checkDataset, checkInputs, type Dataset } from './dataset.js';
import { decodeSafetensors, encodeSafetensors, ModelFileError, type NamedTensor } from './checkpoint/safetensors.js';
import { native } from './native.js';
import type { NativeModelHandle } from './nativeTypes.js';
import {
  resolveConfig,
  resolveDevice,
  resolveForceBalancedRouting,
  resolveTrainOptions,
  type Device,
  type EpochMetrics,
  type EvaluationResult,
  type ResolvedConfig,
  type TrainHistory,
  type TrainOptions,
} from './options.js';
import { checkInteger, checkObject, invalidType, withJsStack } from './validate.js';
import { Predictor, type PredictorOptions } from './predictor.js';
import { version } from './version.js';

export interface InferenceOptions {
  /** Rows per native forward pass; default 1000. Results do not depend on it. */
  batchSize?: number;
}

const MODEL_FORMAT = 'torch-moe';

/** One input's experts, by decreasing gate weight. */
export interface InputRouting {
  experts: number[];
  weights: number[];
}

export interface PredictionWithRouting {
  probabilities: Float32Array;  // n · numClasses
  routing: InputRouting[];      // per input
}

/** Which addon variant the first model's device option asks for (validated later, by resolveDevice). */
const deviceWish = (device: unknown): 'cpu' | 'cuda' | 'auto' => (device === 'cpu' || device === 'cuda' ? device : 'auto');

export abstract class Classifier {
  /** @internal */
  protected readonly handle: NativeModelHandle;
  /** The resolved configuration (defaults filled in). */
  readonly config: Readonly<ResolvedConfig>;
  /** Where the model runs ('auto' resolved: CUDA when this build has its kernels and sees a GPU). */
  readonly device: 'cpu' | 'cuda';

  protected constructor(kind: 'moe' | 'dense', options: unknown) {
    const config = resolveConfig(kind, options);
    const addon = native(deviceWish((options as { device?: unknown } | undefined)?.device));
    const device = resolveDevice((options as { device?: unknown } | undefined)?.device, addon.buildInfo);
    const forceBalancedRouting = kind === 'moe' ? resolveForceBalancedRouting(options) : false;
    this.handle = new addon.ModelHandle(config, { device, forceBalancedRouting });
    this.device = this.handle.info().device;
    this.config = Object.freeze(config);
  }

  /** Parameter counts: all of them, and those one input uses (for an MoE: the top-k experts only). */
  paramCount(): { total: number; active: number } {
    return this.handle.paramCount();
  }

  /**
   * Trains with Adam on shuffled mini-batches, in C++ on a thread of its own. Resolves with the history.
   * Aborting `signal` stops at the next batch and resolves with `stopped: true`; the model stays usable.
   * A second train, or any other call, while training rejects with code ERR_TORCH_MOE_BUSY.
   */
  async train(data: Dataset, options: TrainOptions = {}): Promise<TrainHistory> {
    const d = checkDataset('data', data, this.config.inputSize, this.config.numClasses);
    const { onEpochEnd, signal, ...schedule } = resolveTrainOptions(options);
    // The user's callback runs here, not in native code: its exception stops training and is rethrown
    // as it was thrown, with its own stack.
    let callbackError: unknown;
    const onEpoch = (m: EpochMetrics) => {
      if (!onEpochEnd || callbackError !== undefined) return;
      try {
        onEpochEnd(m);
      } catch (err) {
        callbackError = err;
        this.handle.requestStop();
      }
    };
    // An abort before this call goes in with the job (the compute thread may start it at once); a later
    // one stops it at the next batch.
    const aborted = signal?.aborted ?? false;
    const result = withJsStack(() => this.handle.train(d.inputs, d.labels, schedule, onEpoch, aborted));
    const onAbort = () => this.handle.requestStop();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const history = await result;
      if (callbackError !== undefined) throw callbackError;
      return history;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Accuracy, mean cross-entropy, per-class accuracy and the confusion matrix over a labelled dataset.
   * `data.inputs` is read in place, as by predict and routingStats: leave it unchanged until the promise
   * settles.
   */
  async evaluate(data: Dataset, options: InferenceOptions = {}): Promise<EvaluationResult> {
    const d = checkDataset('data', data, this.config.inputSize, this.config.numClasses);
    return withJsStack(() => this.handle.evaluate(d.inputs, d.labels, inferenceBatch(options)));
  }

  /**
   * Class probabilities, `n · numClasses` values, row-major. Inputs: `n · inputSize` float32 values.
   * With `{ routing: true }` (MoE): also each input's experts and their gate weights, by decreasing weight.
   * `inputs` is read in place: leave it unchanged until the promise settles.
   */
  async predict(inputs: Float32Array, options?: InferenceOptions & { routing?: false }): Promise<Float32Array>;
  async predict(inputs: Float32Array, options: InferenceOptions & { routing: true }): Promise<PredictionWithRouting>;
  async predict(inputs: Float32Array, options: InferenceOptions & { routing?: boolean } = {}): Promise<Float32Array | PredictionWithRouting> {
    checkInputs('inputs', inputs, this.config.inputSize);
    const { routing, ...rest } = options;
    if (routing !== undefined && typeof routing !== 'boolean') throw invalidType('options.routing', 'a boolean', routing);
    if (!routing) return withJsStack(() => this.handle.predict(inputs, inferenceBatch(rest)));
    if (this.config.kind !== 'moe') throw new TypeError('options.routing needs an MoE model: a dense model has no experts');
    const p = await withJsStack(() => this.handle.predict(inputs, inferenceBatch(rest), true));
    // Plain loops: a subarray view per input costs more than its few values (micro-batched services
    // split every batch this way).
    const perInput: InputRouting[] = new Array(p.routingOffsets.length - 1);
    for (let i = 0; i < perInput.length; i++) {
      const from = p.routingOffsets[i]!, count = p.routingOffsets[i + 1]! - from;
      const experts: number[] = new Array(count), weights: number[] = new Array(count);
      for (let j = 0; j < count; j++) {
        experts[j] = p.experts[from + j]!;
        weights[j] = p.weights[from + j]!;
      }
      perInput[i] = { experts, weights };
    }
    return { probabilities: p.probabilities, routing: perInput };
  }

  /**
   * A micro-batching front for services: concurrent single-input `predict` calls are merged into one
   * native forward pass of up to `maxBatch` inputs, sent at the latest `maxDelayMs` after the first one
   * waiting (0: the calls of one turn of the event loop go together, with no timer); while `maxInFlight`
   * batches run, the calls that arrive wait and go together when one returns. Refused for routings
   * whose result depends on the batch (expert choice, capacityFactor).
   */
  createPredictor(options: PredictorOptions = {}): Predictor {
    return new Predictor(this, options);
  }

  /**
   * Writes a safetensors file (tensor names of the equivalent PyTorch modules; config, version and a
   * SHA-256 of the tensor bytes in the metadata). Writes a temporary file and renames it over `file`, so a
   * failed save leaves any previous file intact. Optimiser state is not saved.
   */
  async save(file: string): Promise<void> {
      if (typeof file !== 'string' || file.length === 0) throw invalidType('file', 'a file path', file);
      const buf = encodeSafetensors(this.handle.getState(), {
        format: MODEL_FORMAT,
        version,
        config: JSON.stringify(this.config),
      });
      const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        const fh = await open(tmp, 'wx');
        try {
          await fh.writeFile(buf);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, file);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
  }

  /** Frees the native model. Later calls reject; a running train is asked to stop first. */
  dispose(): void {
    this.handle.dispose();
  }

  /** @internal Builds the model a read model file describes; `kind` is what the caller asked for. */
  static fromModelFile<T extends Classifier>(
    m: ModelFile,
    kind: 'moe' | 'dense',
    make: (options: Omit<ResolvedConfig, 'kind'> & { device?: Device }) => T,
    device?: Device,
  ): T {
    if (m.config.kind !== kind) {
      throw new ModelFileError(`${m.file}: holds a '${m.config.kind}' model; load it with ${m.config.kind === 'moe' ? 'MoEClassifier' : 'DenseClassifier'}.load or loadModel`);
    }
    const { kind: _kind, ...options } = m.config;
    const model = make({ ...options, device });
    try {
      model.handle.setState(m.tensors);
    } catch (err) {
      model.dispose();
      throw new ModelFileError(`${m.file}: ${(err as Error).message}`);
    }
    return model;
  }
}

/** A verified model file: its config and tensors. */
export interface ModelFile {
  file: string;
  config: ResolvedConfig;
  tensors: NamedTensor[];
}

/** @internal Reads a model file and verifies format, checksum and metadata (not yet the tensor names). */
export async function readModelFile(file: string): Promise<ModelFile> {
  if (typeof file !== 'string' || file.length === 0) throw invalidType('file', 'a file path', file);
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (err) {
    throw new ModelFileError(`${file}: cannot read the model file (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const { tensors, metadata } = decodeSafetensors(buf, file);
  if (metadata.format !== MODEL_FORMAT || typeof metadata.config !== 'string') {
    throw new ModelFileError(`${file}: a safetensors file without torch-moe metadata (format '${metadata.format}')`);
  }
  let config: ResolvedConfig;
  try {
    config = JSON.parse(metadata.config) as ResolvedConfig;
    checkObject('config', config);
  } catch {
    throw new ModelFileError(`${file}: the model config in the metadata is not valid JSON`);
  }
  if (config.kind !== 'moe' && config.kind !== 'dense') {
    throw new ModelFileError(`${file}: the model config names kind ${JSON.stringify(config.kind)}; expected 'moe' or 'dense'`);
  }
  return { file, config, tensors };
}

export function inferenceBatch(options: InferenceOptions): number {
  checkObject('options', options);
  return checkInteger('options.batchSize', options.batchSize ?? 1000, 1, 1 << 24);
}
