// Public option and result types, their defaults, and their validation.
import type { NativeModelConfig } from './nativeTypes.js';
import { checkInteger, checkKnownKeys, checkNumber, checkObject, checkOneOf, invalidRange, invalidType } from './validate.js';

export const DEVICES = ['cpu', 'cuda', 'auto'] as const;
export type Device = (typeof DEVICES)[number];

/** Options of `new DenseClassifier(...)`: Linear(in→hidden) → ReLU → FFN(hidden→expertHidden→hidden) → Linear(→classes). */
export interface DenseClassifierOptions {
  inputSize?: number;         // default 784
  hiddenSize?: number;        // default 256
  expertHiddenSize?: number;  // default 128: the FFN has the shape of one MoE expert
  numClasses?: number;        // default 10
  seed?: number;              // default 0: initialisation and shuffling
  device?: Device;            // default 'auto'
  /**
   * Training only: the probability of zeroing each hidden activation, after the input layer and after the
   * MoE layer (or the FFN); the rest are scaled by 1/(1-p). In [0, 1); default 0. CPU only for now.
   */
  dropout?: number;
}

export const ROUTINGS = ['softmax-topk', 'sigmoid-topk', 'expert-choice', 'hash'] as const;
/**
 * How inputs are assigned to experts (docs/routing.md):
 * - 'softmax-topk': softmax over all experts, the top k, weights renormalised (Shazeer et al. 2017, GShard);
 * - 'sigmoid-topk': sigmoid affinities, the top k, weights normalised over the selected (DeepSeek-V3);
 * - 'expert-choice': each expert takes its top C inputs of a batch, C = capacityFactor · inputs · k / N
 *   (Zhou et al. 2022); an input may get 0 to N experts;
 * - 'hash': k experts fixed by a hash of the input's values, never learned (Roller et al. 2021): the baseline.
 */
export type Routing = (typeof ROUTINGS)[number];

/** Options of `new MoEClassifier(...)`: the dense model with an MoE layer in place of its FFN. */
export interface MoEClassifierOptions extends DenseClassifierOptions {
  numExperts?: number;        // default 8
  topK?: number;              // default 2, in [1, numExperts]
  /** Default 'softmax-topk'. */
  routing?: Routing;
  /**
   * Default 0.1 for token-choice routing: total loss = cross-entropy + auxLossWeight · aux (Switch/GShard).
   * Must be 0 (the default there) for 'expert-choice' and 'hash', whose load is fixed by the routing.
   */
  auxLossWeight?: number;
  /** Router z-loss weight (ST-MoE: mean of logsumexp(logits)²). Default 0. */
  zLossWeight?: number;
  /** Training only: std of Gaussian noise added to the gate logits (noisy top-k gating, fixed scale). Default 0. */
  gateNoise?: number;
  /** Training only: the gate's input is multiplied by uniform noise in [1-ε, 1+ε] (Switch). In [0, 1); default 0. */
  gateJitter?: number;
  /**
   * DeepSeek-V3's auxiliary-loss-free balancing (token-choice routing): a per-expert bias added to the
   * scores for selection only, moved after every step by rate · sign(mean load − expert load). Default off.
   */
  biasBalancing?: { rate: number } | null;
  /** Experts every input uses beside its routed ones (DeepSeekMoE), each of the routed experts' shape. Default 0. */
  sharedExperts?: number;
  /**
   * Token choice: each expert takes at most capacityFactor · inputs · k / N assignments per batch and the
   * overflow is dropped (its MoE output is zero; counted in droppedFraction). Unset: dropless (default).
   * Expert choice: the capacity C above; unset means 1. Must be > 0: 0 is an error, not "dropless".
   */
  capacityFactor?: number | null;
  /**
   * Benchmarking only: send tokens round-robin to the experts with equal weights, whatever the gate
   * says (the gate still runs and its aux loss still trains it), so that the expert path can be timed
   * apart from the router's balance. Not saved in model files. Default false.
   */
  forceBalancedRouting?: boolean;
}

/** A config with every default filled in: what the native model is built from and what model files store. */
export type ResolvedConfig = NativeModelConfig;

const SIZE_MAX = 1 << 20;  // generous, but stops a typo from asking for terabytes

const DENSE_KEYS = ['inputSize', 'hiddenSize', 'expertHiddenSize', 'numClasses', 'seed', 'device', 'dropout'] as const;
const MOE_KEYS = [
  ...DENSE_KEYS, 'numExperts', 'topK', 'auxLossWeight', 'forceBalancedRouting', 'routing', 'zLossWeight', 'gateNoise',
  'gateJitter', 'biasBalancing', 'sharedExperts', 'capacityFactor',
] as const;

/** A probability-like option: a finite number in [0, 1). */
function checkFraction(name: string, value: unknown): number {
  const x = checkNumber(name, value, 0, true);
  if (x >= 1) throw invalidRange(name, 'a finite number in [0, 1)', x);
  return x;
}

export function resolveConfig(kind: 'moe' | 'dense', options: unknown): ResolvedConfig {
  const o = options ?? {};
  checkObject('options', o);
  checkKnownKeys('options', o, kind === 'moe' ? MOE_KEYS : DENSE_KEYS);
  const int = (key: string, fallback: number, min: number, max = SIZE_MAX) =>
    checkInteger(`options.${key}`, o[key] ?? fallback, min, max);
  const config: ResolvedConfig = {
    kind,
    inputSize: int('inputSize', 784, 1),
    hiddenSize: int('hiddenSize', 256, 1),
    expertHiddenSize: int('expertHiddenSize', 128, 1),
    numClasses: int('numClasses', 10, 2),
    seed: int('seed', 0, 0, 2 ** 32 - 1),
    dropout: checkFraction('options.dropout', o.dropout ?? 0),
  };
  if (kind === 'moe') {
    config.numExperts = int('numExperts', 8, 1, 4096);
    config.topK = int('topK', 2, 1, config.numExperts);
    Object.assign(config, resolveRouting(o));
  }
  return config;
}

/** The MoE layer's routing and balancing options, defaults filled in. Combinations are checked natively. */
function resolveRouting(o: Record<string, unknown>): Partial<ResolvedConfig> {
  const routing = checkOneOf('options.routing', o.routing ?? 'softmax-topk', ROUTINGS);
  const fixedLoad = routing === 'expert-choice' || routing === 'hash';  // nothing for an aux loss to balance
  const num = (key: string, fallback: number) => checkNumber(`options.${key}`, o[key] ?? fallback, 0, true);
  let biasBalancing: { rate: number } | null = null;
  if (o.biasBalancing !== undefined && o.biasBalancing !== null) {
    checkObject('options.biasBalancing', o.biasBalancing);
    checkKnownKeys('options.biasBalancing', o.biasBalancing, ['rate']);
    biasBalancing = { rate: checkNumber('options.biasBalancing.rate', o.biasBalancing.rate, 0, false) };
  }
  let capacityFactor: number | null = null;
  if (o.capacityFactor !== undefined && o.capacityFactor !== null) {
    if (typeof o.capacityFactor !== 'number') throw invalidType('options.capacityFactor', 'a finite number > 0', o.capacityFactor);
    if (!Number.isFinite(o.capacityFactor) || o.capacityFactor <= 0) {
      throw invalidRange('options.capacityFactor', 'a finite number > 0 (leave it unset for dropless routing)', o.capacityFactor);
    }
    capacityFactor = o.capacityFactor;
  }
  return {
    routing,
    auxLossWeight: num('auxLossWeight', fixedLoad ? 0 : 0.1),
    zLossWeight: num('zLossWeight', 0),
    gateNoise: num('gateNoise', 0),
    gateJitter: checkFraction('options.gateJitter', o.gateJitter ?? 0),
    biasBalancing,
    sharedExperts: checkInteger('options.sharedExperts', o.sharedExperts ?? 0, 0, 4096),
    capacityFactor,
  };
}

/** What the native build can do: CUDA kernels compiled in, and a GPU that libtorch sees. */
export interface CudaSupport {
  cudaKernels: boolean;
  cudaAvailable: boolean;
}

/** 'auto' is CUDA when this build has its CUDA kernels and a GPU is visible, else CPU. */
export function resolveDevice(value: unknown, support: CudaSupport): 'cpu' | 'cuda' {
  const device = checkOneOf('options.device', value ?? 'auto', DEVICES);
  const usable = support.cudaKernels && support.cudaAvailable;
  if (device === 'cuda' && !usable) {
    throw new Error(
      support.cudaKernels
        ? "device 'cuda' was requested but no GPU is visible to libtorch (check the driver and CUDA_VISIBLE_DEVICES); use 'cpu' or 'auto'"
        : "device 'cuda' was requested but torch-moe was built against a libtorch without CUDA, so it has no CUDA kernels; rebuild against a CUDA libtorch (README, 'CUDA') or use 'cpu' or 'auto'",
    );
  }
  return device === 'auto' ? (usable ? 'cuda' : 'cpu') : device;
}

/** Options of `MoEClassifier.load`, `DenseClassifier.load` and `loadModel`. */
export interface LoadOptions {
  device?: Device;  // default 'auto'
}

export function loadDevice(options: unknown): Device | undefined {
  checkObject('options', options ?? {});
  const o = (options ?? {}) as Record<string, unknown>;
  checkKnownKeys('options', o, ['device']);
  // Checked here as well as by the constructor, so that a bad option fails before the file is read.
  return o.device === undefined ? undefined : checkOneOf('options.device', o.device, DEVICES);
}

export function resolveForceBalancedRouting(options: unknown): boolean {
  const value = (options as { forceBalancedRouting?: unknown } | undefined)?.forceBalancedRouting ?? false;
  if (typeof value !== 'boolean') throw invalidType('options.forceBalancedRouting', 'a boolean', value);
  return value;
}

/** One epoch of training, as reported to `onEpochEnd` and in the history. */
export interface EpochMetrics {
  epoch: number;               // 1-based within this train call
  loss: number;                // mean of cross-entropy + auxLossWeight · aux over the epoch's samples
  classificationLoss: number;  // mean cross-entropy
  auxLoss: number;             // mean load-balancing loss (k at perfect balance; 0 for a dense model)
  zLoss: number;               // mean router z-loss (0 for a dense model and hash routing)
  /** MoE: share of the epoch's expert assignments each expert ran (sums to 1); [] for a dense model. */
  expertLoad: number[];
  /** MoE: share dropped by capacity (token choice: of the n·k assignments; expert choice: of the inputs no expert took). */
  droppedFraction: number;
  accuracy: number;            // on the training batches as they were trained
  learningRate: number;        // of the epoch's last step (see TrainOptions.lrSchedule)
  seconds: number;
  samples: number;             // samples trained this epoch (fewer when aborted mid-epoch)
}

export interface TrainHistory {
  epochs: EpochMetrics[];
  /** True when `signal` ended training early; the model keeps every completed step. */
  stopped: boolean;
}

export interface TrainOptions {
  epochs?: number;        // default 1
  batchSize?: number;     // default 64
  learningRate?: number;  // default 1e-3 (Adam)
  /**
   * 'constant' (default), or 'cosine': the learning rate decays from learningRate at the first step of
   * this call to about 0 at its last, following half a cosine (SGDR without restarts). Each epoch's
   * metrics report the rate of its last step.
   */
  lrSchedule?: LrSchedule;
  /**
   * Data augmentation for square images (inputSize = side × side, e.g. 784 = 28 × 28): each training
   * input moves by a random whole number of pixels in [-translate, translate] along each axis, zeros
   * shifted in, drawn anew for every input in every epoch from the shuffling seed (runs repeat; under
   * distributed training an input moves alike on whichever rank takes it). Default 0 (off). CPU only.
   */
  translate?: number;
  /** CUDA only: capture the full-batch training step once as a CUDA graph and replay it. Default true. */
  cudaGraph?: boolean;
  /**
   * Data parallel over the group this process joined with initDistributed(): every rank passes the same
   * dataset and options; each takes its share of every global batch of batchSize inputs and the
   * gradients are summed over the ranks, so a step equals one single-process step on the global batch.
   * History metrics cover all ranks. CPU models only (Gloo). Default false.
   */
  distributed?: boolean;
  /**
   * With distributed: spread the MoE layer's experts over the ranks, numExperts / worldSize on each
   * (numExperts must be divisible by it). Routed inputs travel to their experts' ranks and back by
   * all-to-all; the other parameters stay data-parallel. A step still equals one single-process step on
   * the global batch. Between train calls every rank holds the whole model again (save, evaluate and
   * predict work as usual). Default false.
   */
  expertParallel?: boolean;
  onEpochEnd?: (metrics: EpochMetrics) => void;
  signal?: AbortSignal;
}

export const LR_SCHEDULES = ['constant', 'cosine'] as const;
export type LrSchedule = (typeof LR_SCHEDULES)[number];

export interface ResolvedTrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  lrSchedule: LrSchedule;
  translate: number;
  cudaGraph: boolean;
  distributed: boolean;
  expertParallel: boolean;
}

export function resolveTrainOptions(options: unknown): ResolvedTrainOptions & Pick<TrainOptions, 'onEpochEnd' | 'signal'> {
  const o = options ?? {};
  checkObject('options', o);
  checkKnownKeys('options', o, ['epochs', 'batchSize', 'learningRate', 'lrSchedule', 'translate', 'cudaGraph', 'distributed', 'expertParallel', 'onEpochEnd', 'signal']);
  if (o.cudaGraph !== undefined && typeof o.cudaGraph !== 'boolean') throw invalidType('options.cudaGraph', 'a boolean', o.cudaGraph);
  if (o.distributed !== undefined && typeof o.distributed !== 'boolean') throw invalidType('options.distributed', 'a boolean', o.distributed);
  if (o.expertParallel !== undefined && typeof o.expertParallel !== 'boolean') throw invalidType('options.expertParallel', 'a boolean', o.expertParallel);
  if (o.expertParallel === true && o.distributed !== true) {
    throw new TypeError('options.expertParallel needs distributed: true (the experts are spread over the ranks of the group)');
  }
  if (o.onEpochEnd !== undefined && typeof o.onEpochEnd !== 'function') {
    throw invalidType('options.onEpochEnd', 'a function', o.onEpochEnd);
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', o.signal);
  return {
    epochs: checkInteger('options.epochs', o.epochs ?? 1, 1, 1_000_000),
    batchSize: checkInteger('options.batchSize', o.batchSize ?? 64, 1, 1 << 24),
    learningRate: checkNumber('options.learningRate', o.learningRate ?? 1e-3, 0, false),
    lrSchedule: checkOneOf('options.lrSchedule', o.lrSchedule ?? 'constant', LR_SCHEDULES),
    translate: checkInteger('options.translate', o.translate ?? 0, 0, 1 << 16),
    cudaGraph: (o.cudaGraph as boolean | undefined) ?? true,
    distributed: (o.distributed as boolean | undefined) ?? false,
    expertParallel: (o.expertParallel as boolean | undefined) ?? false,
    onEpochEnd: o.onEpochEnd as TrainOptions['onEpochEnd'],
    signal: o.signal as AbortSignal | undefined,
  };
}

export interface EvaluationResult {
  accuracy: number;
  loss: number;                // mean cross-entropy
  perClassAccuracy: number[];  // NaN for a class without samples
  confusion: number[][];       // [true class][predicted class] counts
}

export interface ExpertShare {
  expert: number;
  /** Fraction of the class's top-k assignments that went to this expert. */
  share: number;
}

export interface RoutingStats {
  /** Fraction of all top-k assignments per expert; sums to 1. */
  expertLoad: number[];
  /** Mean gate probability per expert; sums to 1. */
  importance: number[];
  /** [class][expert] share of the class's assignments; each row with samples sums to 1. */
  perClass: number[][];
  /** [class][expert] assignment counts behind perClass. */
  perClassCounts: number[][];
  primary: ExpertShare[];
  secondary: ExpertShare[];
  /** Shannon entropy of expertLoad in nats (ln numExperts at perfect balance). */
  entropy: number;
  /** Coefficient of variation (population std / mean) of expertLoad; 0 at perfect balance. */
  loadCV: number;
  /** [i][j] share of inputs that ran on both experts i and j; the diagonal: share that ran on expert i. */
  coActivation: number[][];
  /** Token choice: share of the n·k assignments dropped by capacity; expert choice: share of inputs no expert took. */
  droppedFraction: number;
}
