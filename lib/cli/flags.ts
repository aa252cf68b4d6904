// Flag values of the CLI: numbers parsed with the flag's name in the error, and the model options the
// train flags describe.
import { InvalidArgumentError } from 'commander';
import type { Device, MoEClassifierOptions, Routing } from '../options.js';
import { DEVICES, ROUTINGS } from '../options.js';

export const number = (flag: string) => (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${flag} takes a number, got '${value}'`);
  return n;
};

export const integer = (flag: string) => (value: string): number => {
  const n = number(flag)(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`${flag} takes an integer, got '${value}'`);
  return n;
};

export const oneOf = <T extends string>(flag: string, allowed: readonly T[]) => (value: string): T => {
  if (!(allowed as readonly string[]).includes(value)) throw new InvalidArgumentError(`${flag} takes one of ${allowed.join(', ')}, got '${value}'`);
  return value as T;
};

export const device = oneOf('--device', DEVICES);
export const routing = oneOf('--routing', ROUTINGS);

export interface ModelFlags {
  hidden?: number;
  expertHidden?: number;
  experts?: number;
  topK?: number;
  aux?: number;
  routing?: Routing;
  capacityFactor?: number;
  gateNoise?: number;
  gateJitter?: number;
  zLoss?: number;
  biasBalancing?: number;
  sharedExperts?: number;
  dropout?: number;
  seed?: number;
  device?: Device;
}

/** The MoEClassifier options the flags set (unset flags keep the library's defaults). */
export function moeOptions(f: ModelFlags, inputSize: number, numClasses: number): MoEClassifierOptions {
  const o: MoEClassifierOptions = { inputSize, numClasses };
  const set = <K extends keyof MoEClassifierOptions>(key: K, value: MoEClassifierOptions[K] | undefined) => {
    if (value !== undefined) o[key] = value;
  };
  set('hiddenSize', f.hidden);
  set('expertHiddenSize', f.expertHidden);
  set('numExperts', f.experts);
  set('topK', f.topK);
  set('auxLossWeight', f.aux);
  set('routing', f.routing);
  set('capacityFactor', f.capacityFactor);
  set('gateNoise', f.gateNoise);
  set('gateJitter', f.gateJitter);
  set('zLossWeight', f.zLoss);
  set('biasBalancing', f.biasBalancing === undefined ? undefined : { rate: f.biasBalancing });
  set('sharedExperts', f.sharedExperts);
  set('dropout', f.dropout);
  set('seed', f.seed);
  set('device', f.device);
  return o;
}
