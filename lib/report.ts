// Plain-text reports: one line per epoch, and the per-class routing table (primary and secondary expert).
import type { EpochMetrics, RoutingStats } from './options.js';

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function formatHistoryLine(m: EpochMetrics, epochs: number): string {
  const width = String(epochs).length;
  return `epoch ${String(m.epoch).padStart(width)}/${epochs}  loss ${m.loss.toFixed(4)}  ce ${m.classificationLoss.toFixed(4)}  aux ${m.auxLoss.toFixed(4)}  acc ${pct(m.accuracy).padStart(6)}  ${(m.samples / m.seconds).toFixed(0)} samples/s`;
}

/** The class × expert table: for each class its primary and secondary expert with their shares. */
export function formatRoutingTable(stats: RoutingStats, classNames?: string[]): string {
  const names = stats.primary.map((_, c) => classNames?.[c] ?? String(c));
  const width = Math.max(5, ...names.map((n) => n.length));
  const lines = [`${'class'.padEnd(width)}  primary expert (share)  secondary expert (share)`];
  stats.primary.forEach((p, c) => {
    const s = stats.secondary[c]!;
    const name = names[c]!.padEnd(width);
    lines.push(`${name}  E${p.expert} (${pct(p.share).padStart(6)})          E${s.expert} (${pct(s.share).padStart(6)})`);
  });
  lines.push(`expert load: ${stats.expertLoad.map((l, e) => `E${e} ${pct(l)}`).join('  ')}`);
  lines.push(`load entropy ${stats.entropy.toFixed(3)} nats (max ${Math.log(stats.expertLoad.length).toFixed(3)}), load CV ${stats.loadCV.toFixed(3)}`);
  return lines.join('\n');
}
