// Training progress on stderr: a live line with a bar on a terminal, one Keras-style line per epoch
// elsewhere (pipes, files, CI), so that stdout carries only results (--json).
import type { EpochMetrics } from '../options.js';
import { formatHistoryLine } from '../report.js';

export interface Progress {
  epoch(m: EpochMetrics): void;
  done(): void;
}

export function progress(epochs: number, label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  const live = stream.isTTY === true && !process.env.CI;
  if (!live) return { epoch: (m) => stream.write(`${label}${formatHistoryLine(m, epochs)}\n`), done: () => {} };
  const width = 24;
  let drawn = false;
  return {
    epoch(m) {
      const filled = Math.round((width * m.epoch) / epochs);
      const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
      const aux = m.auxLoss ? `  aux ${m.auxLoss.toFixed(3)}` : '';
      stream.write(`\r\x1b[2K${label}${bar} ${m.epoch}/${epochs}  loss ${m.loss.toFixed(4)}  acc ${(100 * m.accuracy).toFixed(1)}%${aux}  ${Math.round(m.samples / m.seconds)} samples/s`);
      drawn = true;
    },
    done() {
      if (drawn) stream.write('\n');
    },
  };
}
