// The example server's fast body reader (examples/server/pixels.mjs) against JSON.parse: the same float32
// values for every MNIST test image and for numbers of every JSON form, and undefined (so that the server
// falls back to JSON.parse and its messages) for anything that is not exactly {"pixels": [size numbers]}.
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs example module without types
import { readPixelsFast } from '../examples/server/pixels.mjs';
import { mnist } from './helpers/data.js';

const read = readPixelsFast as (body: Buffer, size: number) => Float32Array | undefined;
const viaJson = (text: string) => Float32Array.from(JSON.parse(text).pixels as number[]);

function expectSameFloats(got: Float32Array | undefined, want: Float32Array, what: string) {
  expect(got, what).toBeInstanceOf(Float32Array);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got![i], want[i])) throw new Error(`${what}: value ${i} is ${got![i]}, JSON.parse gives ${want[i]}`);
  }
}

describe('readPixelsFast', () => {
  it('reads every MNIST test image as JSON.parse does', async () => {
    const test = await mnist('test', 10000);
    for (let i = 0; i < test.count; i++) {
      const text = JSON.stringify({ pixels: Array.from(test.inputs.subarray(784 * i, 784 * (i + 1))) });
      expectSameFloats(read(Buffer.from(text), 784), viaJson(text), `image ${i}`);
    }
  }, 60_000);

  it('reads numbers of every JSON form as JSON.parse does', () => {
    let state = 12345;  // a fixed LCG: the same numbers every run
    const rand = () => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648);
    const forms = [
      () => String(rand()),                                   // 16-17 significant digits
      () => String(-rand() * 1000),
      () => String(Math.floor(rand() * 1e6)),                 // integers
      () => (rand() * 10).toExponential(Math.floor(rand() * 20)) .replace('e+', rand() < 0.5 ? 'e' : 'E+'),
      () => `${Math.floor(rand() * 100)}.${'0'.repeat(Math.floor(rand() * 8))}${Math.floor(rand() * 1e6)}`,
      () => `-0.${'0'.repeat(Math.floor(rand() * 30))}1e-${Math.floor(rand() * 9)}`,  // tiny: float32 subnormals and zero
      () => `${Math.floor(rand() * 9) + 1}${'7'.repeat(Math.floor(rand() * 30))}`,   // integers past 2^53
      () => '0', () => '-0', () => '1e38', () => '3.4028235e38',
    ];
    for (let round = 0; round < 2000; round++) {
      const numbers = Array.from({ length: 16 }, () => forms[Math.floor(rand() * forms.length)]!());
      const text = `{ "pixels" :\n[ ${numbers.join(' ,\t')} ] }\n`;
      expectSameFloats(read(Buffer.from(text), 16), viaJson(text), text);
    }
  });

  it('returns undefined for anything but {"pixels": [size finite numbers]}', () => {
    const bodies = [
      '{"pixels":[1,2]}', '{"pixels":[1,2,3,4]}', '{"pixels":[]}',          // counts
      '{"pixels":[1,2,3],"x":1}', '{"x":1,"pixels":[1,2,3]}', '{"pixel":[1,2,3]}', '[1,2,3]',
      '{"pixels":[1,2,"3"]}', '{"pixels":[1,2,[3]]}', '{"pixels":[1,2,null]}', '{"pixels":[1,2,NaN]}',
      '{"pixels":[1,2,01]}', '{"pixels":[1,2,1.]}', '{"pixels":[1,2,.5]}', '{"pixels":[1,2,+1]}',
      '{"pixels":[1,2,1e]}', '{"pixels":[1,2,-]}', '{"pixels":[1,2,3,]}', '{"pixels":[1,,3]}',
      '{"pixels":[1,2,1e400]}', '{"pixels":[1,2,3]', '{"pixels":[1,2,3]}x', '', '{',
    ];
    for (const body of bodies) expect(read(Buffer.from(body), 3), body).toBeUndefined();
    expectSameFloats(read(Buffer.from(' {"pixels":[1,2,3]} '), 3), new Float32Array([1, 2, 3]), 'spaces');
  });
});
