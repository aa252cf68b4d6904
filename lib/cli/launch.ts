// `torch-moe train --nproc-per-node N`: a torchrun-style launcher. It starts N copies of the same command
// on this machine with torchrun's environment variables (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT); each copy joins the group and trains its share. Rank 0's stdout is the
// command's; every rank's stderr is passed through. When a rank fails, the launcher names it, stops the
// others (SIGTERM, then SIGKILL after a grace period) and exits non-zero. Ctrl+C is forwarded once to
// every rank, which stop together after the same step.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import os from 'node:os';

export interface LaunchOptions {
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort?: number;
  /** Intra-op threads per rank; default: this machine's cores shared out among the local ranks. */
  threads?: number;
}

/** The launcher's own flags, which the ranks must not see again. */
export const LAUNCH_FLAGS = ['--nproc-per-node', '--nnodes', '--node-rank', '--master-addr', '--master-port'];

/** argv without the launcher's flags (both `--flag value` and `--flag=value`). */
export function stripLaunchFlags(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const name = a.split('=')[0]!;
    if (LAUNCH_FLAGS.includes(name)) {
      if (!a.includes('=')) i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

/** A TCP port that was free a moment ago (one machine only: the ranks all run here). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const GRACE_MS = 5000;
const REPORT_MS = 2000;

/** Starts the local ranks and resolves with the exit code the launcher should end with. */
export async function launch(o: LaunchOptions, script: string, args: string[]): Promise<number> {
  if (o.nodeRank >= o.nnodes) throw new RangeError(`--node-rank must be in [0, ${o.nnodes - 1}] for --nnodes ${o.nnodes}, got ${o.nodeRank}`);
  if (o.nnodes > 1 && o.masterPort === undefined) throw new RangeError('--nnodes > 1 needs --master-port (and --master-addr): every machine must meet at the same address');
  const worldSize = o.nnodes * o.nprocPerNode;
  const masterPort = o.masterPort ?? await freePort();
  const threads = o.threads ?? Math.max(1, Math.floor(os.availableParallelism() / o.nprocPerNode));
  const rankArgs = [...stripLaunchFlags(args), ...(o.threads === undefined ? ['--threads', String(threads)] : [])];
  process.stderr.write(`launching ${o.nprocPerNode} rank(s) of ${worldSize} on this machine (node ${o.nodeRank} of ${o.nnodes}), master ${o.masterAddr}:${masterPort}, ${threads} thread(s) each\n`);

  const children: { rank: number; child: ChildProcess; exited: boolean }[] = [];
  let failure: { rank: number; code: number; why: string } | undefined;
  let stopping = false;
  const stopAll = (signal: NodeJS.Signals) => {
    for (const c of children) if (!c.exited) c.child.kill(signal);
  };
  const timers: NodeJS.Timeout[] = [];
  const later = (ms: number, fn: () => void) => timers.push(setTimeout(fn, ms));
  // After a failure the others first get REPORT_MS to fail on their own (a dead peer breaks their next
  // collective within milliseconds) and say so, then SIGTERM, then SIGKILL.
  const stopOthers = (reportMs: number) => {
    if (stopping) return;
    stopping = true;
    later(reportMs, () => stopAll('SIGTERM'));
    later(reportMs + GRACE_MS, () => stopAll('SIGKILL'));
  };

  const exits = Array.from({ length: o.nprocPerNode }, (_, local) => {
    const rank = o.nodeRank * o.nprocPerNode + local;
    // Each rank in a process group of its own, so that a terminal's Ctrl+C reaches the launcher only and
    // is forwarded once; an IPC channel lets a rank notice the launcher's death and stop.
    const child = spawn(process.execPath, [...process.execArgv, script, ...rankArgs], {
      stdio: ['ignore', rank === 0 ? 'inherit' : 'ignore', 'inherit', 'ipc'],
      detached: true,
      env: {
        ...process.env,
        RANK: String(rank), LOCAL_RANK: String(local), WORLD_SIZE: String(worldSize), LOCAL_WORLD_SIZE: String(o.nprocPerNode),
        MASTER_ADDR: o.masterAddr, MASTER_PORT: String(masterPort), TORCH_MOE_LAUNCHED: '1',
      },
    });
    const entry = { rank, child, exited: false };
    children.push(entry);
    return new Promise<void>((resolve) => {
      child.once('error', (err) => {
        failure ??= { rank, code: 1, why: `could not start: ${err.message}` };
        entry.exited = true;
        stopOthers(0);
        resolve();
      });
      child.once('exit', (code, signal) => {
        entry.exited = true;
        const failed = signal !== null || (code !== 0 && code !== 130);
        if (failed && !stopping) {
          failure ??= { rank, code: code ?? 1, why: signal ? `was killed by ${signal}` : `exited with code ${code}` };
          process.stderr.write(`torch-moe launcher: rank ${rank} ${failure.rank === rank ? failure.why : 'failed'}; stopping the other ranks\n`);
          stopOthers(REPORT_MS);
        }
        resolve();
      });
    });
  });

  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signal === 'SIGINT' && !interrupted) {
      interrupted = true;
      stopAll('SIGINT');  // once: every rank stops after the same step, rank 0 saves
      return;
    }
    stopOthers(0);
  };
  const sigint = () => onSignal('SIGINT'), sigterm = () => onSignal('SIGTERM');
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigterm);
  await Promise.all(exits);
  process.off('SIGINT', sigint);
  process.off('SIGTERM', sigterm);
  for (const t of timers) clearTimeout(t);
  if (failure) return failure.code === 0 || failure.code === 130 ? 1 : failure.code;
  return children.some((c) => c.child.exitCode === 130) ? 130 : 0;
}
