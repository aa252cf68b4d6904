// The exact shape of the native addon (native/binding/addon.cpp, model_handle.cpp). Internal: not exported
// from the package.
import type { DistributedTraffic } from './distributed.js';

export interface NativeModelConfig {
  kind: 'moe' | 'dense';
  inputSize: number;
  hiddenSize: number;
  expertHiddenSize: number;
  numClasses: number;
  numExperts?: number;
  topK?: number;
  auxLossWeight?: number;
  routing?: 'softmax-topk' | 'sigmoid-topk' | 'expert-choice' | 'hash';
  zLossWeight?: number;
  gateNoise?: number;
  gateJitter?: number;
  biasBalancing?: { rate: number } | null;
  sharedExperts?: number;
  capacityFactor?: number | null;
  dropout?: number;
  seed: number;
}

export interface NativeEpochMetrics {
  epoch: number;
  loss: number;
  classificationLoss: number;
  auxLoss: number;
  zLoss: number;
  expertLoad: number[];
  droppedFraction: number;
  accuracy: number;
  learningRate: number;
  seconds: number;
  samples: number;
}

export interface NativeTrainResult {
  epochs: NativeEpochMetrics[];
  stopped: boolean;
}

export interface NativeEvalResult {
  accuracy: number;
  loss: number;
  perClassAccuracy: number[];
  confusion: number[][];
}

export interface NativeRoutingStats {
  expertLoad: number[];
  importance: number[];
  perClass: number[][];
  perClassCounts: number[][];
  primary: { expert: number; share: number }[];
  secondary: { expert: number; share: number }[];
  entropy: number;
  loadCV: number;
  coActivation: number[][];
  droppedFraction: number;
}

export interface NativeTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export type NativeLabels = Uint8Array | Uint16Array | Int32Array;

export interface NativeRuntimeOptions {
  device: 'cpu' | 'cuda';
  forceBalancedRouting: boolean;
}

export interface NativeModelHandle {
  paramCount(): { total: number; active: number };
  info(): { device: 'cpu' | 'cuda'; expertPath: 'grouped-loop' | 'padded-bmm' | 'dense' };
  train(
    inputs: Float32Array,
    labels: NativeLabels,
    options: { epochs: number; batchSize: number; learningRate: number; lrSchedule: 'constant' | 'cosine'; translate: number; cudaGraph: boolean; distributed: boolean; expertParallel: boolean },
    onEpoch?: (m: NativeEpochMetrics) => void,
    stopped?: boolean,  // already aborted: queue it stopped, so no step runs
  ): Promise<NativeTrainResult>;
  requestStop(): void;
  evaluate(inputs: Float32Array, labels: NativeLabels, batchSize: number): Promise<NativeEvalResult>;
  routingStats(inputs: Float32Array, labels: NativeLabels, batchSize: number): Promise<NativeRoutingStats>;
  predict(inputs: Float32Array, batchSize: number): Promise<Float32Array>;
  predict(inputs: Float32Array, batchSize: number, withRouting: true): Promise<NativePrediction>;
  getState(): NativeTensor[];
  setState(state: NativeTensor[]): void;
  dispose(): void;
}

export interface NativeAddon {
  ModelHandle: new (config: NativeModelConfig, runtime?: NativeRuntimeOptions) => NativeModelHandle;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  getNumInteropThreads(): number;
  buildInfo: { libtorchVersion: string; cudaAvailable: boolean; cudaKernels: boolean; cxx11Abi: boolean; cudaDevices: number };
  distributedBuilt: boolean;
  initDistributed(options: { masterAddr: string; masterPort: number; rank: number; worldSize: number; timeoutMs: number; backend: 'gloo' }): Promise<void>;
  destroyDistributed(): Promise<void>;
  distributedTraffic(): DistributedTraffic | null;
}

/** predict(..., withRouting): input i's assignments are [routingOffsets[i], routingOffsets[i+1]). */
export interface NativePrediction {
  probabilities: Float32Array;
  routingOffsets: Int32Array;
  experts: Int32Array;
  weights: Float32Array;
}
