import { Classifier, readModelFile, inferenceBatch, type InferenceOptions } from './Classifier.js';
import { checkDataset, type Dataset } from './dataset.js';
import { loadDevice, type LoadOptions, type MoEClassifierOptions, type RoutingStats } from './options.js';
import { withJsStack } from './validate.js';

/**
 * Linear(inputSize→hiddenSize) → ReLU → MoE layer → Linear(hiddenSize→numClasses). The MoE layer has
 * numExperts FFNs (hiddenSize→expertHiddenSize→hiddenSize), a linear softmax gate, top-k routing with the
 * k weights renormalised, and a Switch/GShard load-balancing loss weighted by auxLossWeight.
 */
export class MoEClassifier extends Classifier {
  constructor(options: MoEClassifierOptions = {}) {
    super('moe', options);
  }

  /** Which experts each class is routed to, expert load and balance, over a labelled dataset. */
  async routingStats(data: Dataset, options: InferenceOptions = {}): Promise<RoutingStats> {
    const d = checkDataset('data', data, this.config.inputSize, this.config.numClasses);
    return withJsStack(() => this.handle.routingStats(d.inputs, d.labels, inferenceBatch(options)));
  }

  /** The expert path that runs: 'grouped-loop' on CPU, 'padded-bmm' on CUDA (see README, 'CUDA'). */
  get expertPath(): 'grouped-loop' | 'padded-bmm' {
    return this.handle.info().expertPath as 'grouped-loop' | 'padded-bmm';
  }

  /** Loads a model written by `save`, verifying format, checksum, tensor names and shapes. */
  static async load(file: string, options: LoadOptions = {}): Promise<MoEClassifier> {
    const device = loadDevice(options);  // before reading: a bad option fails fast
    return Classifier.fromModelFile(await readModelFile(file), 'moe', (c) => new MoEClassifier(c), device);
  }
}
