// The dataset shape every call takes, and its validation against a model's config.
import { invalidRange, invalidType, checkObject } from './validate.js';

/** Rows of `inputSize` float32 values, one label per row. */
export interface Dataset {
  inputs: Float32Array;
  labels: Uint8Array | Uint16Array | Int32Array;
  count: number;
}

export function checkInputs(name: string, inputs: unknown, inputSize: number): number {
  if (!(inputs instanceof Float32Array)) throw invalidType(name, 'a Float32Array', inputs);
  if (inputs.length === 0 || inputs.length % inputSize !== 0) {
    throw invalidRange(`${name}.length`, `a positive multiple of inputSize (${inputSize})`, inputs.length);
  }
  // NaN and Infinity are found by the native layer on its worker thread, not by a scan here that would
  // hold the event loop (about 150 ms for 60,000 MNIST images).
  return inputs.length / inputSize;
}

export function checkDataset(name: string, data: unknown, inputSize: number, numClasses: number): Dataset {
  checkObject(name, data);
  const rows = checkInputs(`${name}.inputs`, data.inputs, inputSize);
  const labels = data.labels;
  if (!(labels instanceof Uint8Array || labels instanceof Uint16Array || labels instanceof Int32Array)) {
    throw invalidType(`${name}.labels`, 'a Uint8Array, Uint16Array or Int32Array', labels);
  }
  if (labels.length !== rows) throw invalidRange(`${name}.labels.length`, `${rows} (one label per input row)`, labels.length);
  if (data.count !== undefined && data.count !== rows) throw invalidRange(`${name}.count`, `${rows} (inputs.length / inputSize)`, data.count);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (label < 0 || label >= numClasses) throw invalidRange(`${name}.labels[${i}]`, `a class in [0, ${numClasses})`, label);
  }
  return { inputs: data.inputs as Float32Array, labels, count: rows };
}
