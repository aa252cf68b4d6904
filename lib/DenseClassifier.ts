import { Classifier, readModelFile } from './Classifier.js';
import { loadDevice, type DenseClassifierOptions, type LoadOptions } from './options.js';

/** The dense baseline: Linear(inputSize→hiddenSize) → ReLU → one expert-shaped FFN → Linear(→numClasses). */
export class DenseClassifier extends Classifier {
  constructor(options: DenseClassifierOptions = {}) {
    super('dense', options);
  }

  /** Loads a model written by `save`, verifying format, checksum, tensor names and shapes. */
  static async load(file: string, options: LoadOptions = {}): Promise<DenseClassifier> {
    const device = loadDevice(options);  // before reading: a bad option fails fast
    return Classifier.fromModelFile(await readModelFile(file), 'dense', (c) => new DenseClassifier(c), device);
  }
}
