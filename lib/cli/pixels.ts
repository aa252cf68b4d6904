// Inputs for `torch-moe predict`: a PNG (greyscale or colour, as many pixels as the model's inputSize) or
// an IDX image file (every image in it), as float32 rows in [0, 1].
import { readFile } from 'node:fs/promises';
import { PNG } from 'pngjs';
import { readIdx } from '../data/idx.js';

export async function readPixels(file: string, inputSize: number): Promise<{ inputs: Float32Array; count: number }> {
  if (/\.png$/i.test(file)) {
    const png = PNG.sync.read(await readFile(file));
    if (png.width * png.height !== inputSize) {
      throw new RangeError(`${file} is ${png.width}x${png.height} (${png.width * png.height} pixels); the model takes ${inputSize}`);
    }
    const inputs = new Float32Array(inputSize);
    for (let i = 0; i < inputSize; i++) {
      inputs[i] = (0.299 * png.data[4 * i]! + 0.587 * png.data[4 * i + 1]! + 0.114 * png.data[4 * i + 2]!) / 255;
    }
    return { inputs, count: 1 };
  }
  const idx = await readIdx(file, 3);
  const [n, rows, cols] = idx.dims as [number, number, number];
  if (rows * cols !== inputSize) throw new RangeError(`${file} holds ${rows}x${cols} images; the model takes ${inputSize} pixels`);
  const inputs = new Float32Array(n * inputSize);
  for (let i = 0; i < inputs.length; i++) inputs[i] = idx.data[i]! / 255;
  return { inputs, count: n };
}
