import { Classifier, readModelFile } from './Classifier.js';
import { DenseClassifier } from './DenseClassifier.js';
import { MoEClassifier } from './MoEClassifier.js';
import { loadDevice, type LoadOptions } from './options.js';

/** Loads any model file written by `save`, as the class its metadata names (the file is read once). */
export async function loadModel(file: string, options: LoadOptions = {}): Promise<MoEClassifier | DenseClassifier> {
  const device = loadDevice(options);
  const m = await readModelFile(file);
  return m.config.kind === 'dense'
    ? Classifier.fromModelFile(m, 'dense', (c) => new DenseClassifier(c), device)
    : Classifier.fromModelFile(m, 'moe', (c) => new MoEClassifier(c), device);
}
