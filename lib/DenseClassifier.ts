import { Classifier, readModelFile } from './Classifier.js';
import type { DenseClassifierOptions } from './options.js';

/** The dense baseline: Linear(inputSize→hiddenSize) → ReLU → one expert-shaped FFN → Linear(→numClasses). */
export class DenseClassifier extends Classifier {
  constructor(options: DenseClassifierOptions = {}) {
    super('dense', options);
  }

  /** Loads a model written by `save`, verifying format, checksum, tensor names and shapes. */
  static async load(file: string): Promise<DenseClassifier> {
    return Classifier.fromModelFile(await readModelFile(file), 'dense', (c) => new DenseClassifier(c));
  }
}
