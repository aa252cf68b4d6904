// Training across processes on libtorch's c10d engine (Gloo on CPU). A process joins its group once with
// initDistributed(); `model.train(data, { distributed: true })` then trains data-parallel: each rank takes
// its share of every global batch and the gradients are summed over the ranks. The settings come from the
// options or from torchrun's environment variables (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE,
// LOCAL_RANK), so the same script runs under torchrun-style launchers, Slurm or Kubernetes.
import { native } from './native.js';
import { checkInteger, checkKnownKeys, checkObject, checkOneOf, invalidRange, invalidType, withJsStack } from './validate.js';

export type DistributedBackend = 'auto' | 'gloo' | 'nccl';
export const DISTRIBUTED_BACKENDS: readonly DistributedBackend[] = ['auto', 'gloo', 'nccl'];

export interface DistributedOptions {
  /** 'auto' (default): Gloo, the backend for CPU models; NCCL is not in this build yet. */
  backend?: DistributedBackend;
  /** How long the rendezvous and every collective may wait for the other ranks. Default 120000 ms. */
  timeoutMs?: number;
  rank?: number;        // default: env RANK
  worldSize?: number;   // default: env WORLD_SIZE
  localRank?: number;   // default: env LOCAL_RANK, else rank (informational: which local device/slot)
  masterAddr?: string;  // default: env MASTER_ADDR, else 127.0.0.1
  masterPort?: number;  // default: env MASTER_PORT, else 29500
}

export interface DistributedInfo {
  rank: number;
  worldSize: number;
  localRank: number;
  backend: 'gloo';
  timeoutMs: number;
  masterAddr: string;
  masterPort: number;
  /** Rank 0: the one that prints progress and writes files. */
  isMain: boolean;
}

const DEFAULT_TIMEOUT_MS = 120_000;
let current: DistributedInfo | null = null;
let joining = false;  // a rendezvous in flight: a second initDistributed must not start another

/** An integer from an environment variable, or undefined when it is not set. */
export function envInteger(env: NodeJS.ProcessEnv, name: string, min: number, max?: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!/^\s*\d+\s*$/.test(raw) || !Number.isSafeInteger(value) || value < min || (max !== undefined && value > max)) {
    throw new RangeError(`Expected an integer ${max === undefined ? `>= ${min}` : `in [${min}, ${max}]`} in the environment variable ${name} but it is ${JSON.stringify(raw)}`);
  }
  return value;
}

/** The settings a process gets from its options, then torchrun's environment variables, then defaults. */
export function resolveDistributedOptions(options: unknown = {}, env: NodeJS.ProcessEnv = process.env): Omit<DistributedInfo, 'isMain' | 'backend'> & { backend: 'gloo' } {
  checkObject('options', options);
  checkKnownKeys('options', options, ['backend', 'timeoutMs', 'rank', 'worldSize', 'localRank', 'masterAddr', 'masterPort']);
  const backend = checkOneOf('options.backend', options.backend ?? 'auto', DISTRIBUTED_BACKENDS);
  if (backend === 'nccl') {
    throw new RangeError("Expected backend 'auto' or 'gloo' but received 'nccl': this build has no NCCL backend yet (CUDA models cannot train distributed); train on the CPU with Gloo");
  }
  const worldSize = options.worldSize !== undefined ? checkInteger('options.worldSize', options.worldSize, 1, 65536) : envInteger(env, 'WORLD_SIZE', 1, 65536);
  const rank = options.rank !== undefined ? checkInteger('options.rank', options.rank, 0, 65535) : envInteger(env, 'RANK', 0, 65535);
  if (worldSize === undefined || rank === undefined) {
    throw new Error('distributed training needs the rank and world size: pass { rank, worldSize } or set RANK and WORLD_SIZE (as torchrun does), or launch with npx torch-moe train --nproc-per-node N');
  }
  if (rank >= worldSize) throw invalidRange('rank', `an integer in [0, ${worldSize - 1}] (world size ${worldSize})`, rank);
  const localRank = options.localRank !== undefined ? checkInteger('options.localRank', options.localRank, 0, 65535) : envInteger(env, 'LOCAL_RANK', 0, 65535) ?? rank;
  const masterAddr = options.masterAddr ?? (env.MASTER_ADDR || '127.0.0.1');
  if (typeof masterAddr !== 'string' || masterAddr.length === 0) throw invalidType('options.masterAddr', 'a host name or address', masterAddr);
  const masterPort = options.masterPort !== undefined ? checkInteger('options.masterPort', options.masterPort, 1, 65535) : envInteger(env, 'MASTER_PORT', 1, 65535) ?? 29500;
  const timeoutMs = checkInteger('options.timeoutMs', options.timeoutMs ?? envInteger(env, 'TORCH_MOE_DIST_TIMEOUT_MS', 1) ?? DEFAULT_TIMEOUT_MS, 1, 24 * 3600 * 1000);
  return { rank, worldSize, localRank, masterAddr, masterPort, timeoutMs, backend: 'gloo' };
}

/**
 * Joins this process to its distributed group: waits (up to timeoutMs) until every rank has joined.
 * Rejects with code ERR_TORCH_MOE_DISTRIBUTED when the rendezvous fails (port in use, master unreachable,
 * ranks missing), saying which.
 */
export async function initDistributed(options: DistributedOptions = {}): Promise<DistributedInfo> {
  const o = resolveDistributedOptions(options);
  const addon = native();
  if (!addon.distributedBuilt) {
    throw new Error('this build of torch-moe has no distributed training: the Gloo headers were missing when it was compiled (Debian/Ubuntu: apt-get install libgloo-dev, then npx torch-moe build)');
  }
  if (joining) throw new Error('initDistributed() is already joining a group: await the first call');
  joining = true;
  try {
    await withJsStack(() => addon.initDistributed(o));
  } finally {
    joining = false;
  }
  current = { ...o, isMain: o.rank === 0 };
  return { ...current };
}

/** This process's group, or null before initDistributed (or after destroyDistributed). */
export function distributedInfo(): DistributedInfo | null {
  return current ? { ...current } : null;
}

/** What this process has handed to the collectives since it joined (payload bytes, not wire bytes). */
export interface DistributedTraffic {
  collectives: number;
  /** Tensors summed over the ranks: gradients, expert counts, epoch metrics. */
  allReduceBytes: number;
  /** Rows sent to other ranks by expert parallelism (routed inputs and their outputs, and gradients). */
  allToAllBytes: number;
  /** Broadcasts and all-gathers: the start (rank 0's state) and end (experts gathered) of a train call. */
  otherBytes: number;
}

/** This process's traffic so far, or null before initDistributed. */
export function distributedTraffic(): DistributedTraffic | null {
  return current ? native().distributedTraffic() : null;
}

let leaving: Promise<void> | null = null;

/**
 * Leaves the group (a later initDistributed may join another). Resolves once the group is released,
 * which happens off the event loop: after a failed collective, Gloo may first wait for the collectives
 * still queued to time out. A later initDistributed on the same port should await it. (A train call still
 * running holds the group until it ends: the group is then freed as that call ends.) Calls made while a
 * release is under way share its promise.
 */
export function destroyDistributed(): Promise<void> {
  if (leaving) return leaving;
  if (!current) return Promise.resolve();
  current = null;
  leaving = native().destroyDistributed().finally(() => {
    leaving = null;
  });
  return leaving;
}
