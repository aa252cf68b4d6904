// The reference experiment's printed report (torch-moe reference).
import type { ReferenceReport } from '../experiment.js';
import { formatRoutingTable } from '../report.js';

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

export function printReference(r: ReferenceReport): void {
  const lastAux = r.moe.history.epochs.at(-1)?.auxLoss ?? NaN;
  const trainAcc = r.moe.history.epochs.at(-1)?.accuracy ?? NaN;
  const lines = [
    `MNIST: first ${r.settings.limit} training images, ${r.settings.epochs} epochs, Adam lr ${r.settings.learningRate}, batch ${r.settings.batchSize}, aux weight ${r.settings.auxLossWeight}, seed ${r.settings.seed}; 10,000 test images`,
    '',
    `device: ${r.device}${r.device === 'cuda' ? ' (CUDA graph step)' : ''}, MoE expert path: ${r.expertPath}`,
    '',
    'model   params (active)      test acc  train acc  final aux  train time',
    `MoE     ${r.moe.params.total} (${r.moe.params.active})    ${pct(r.moe.test.accuracy).padStart(7)}   ${pct(trainAcc).padStart(7)}    ${lastAux.toFixed(3)}     ${r.moe.trainSeconds.toFixed(1)} s`,
    `dense   ${r.dense.params.total} (${r.dense.params.active})    ${pct(r.dense.test.accuracy).padStart(7)}   ${pct(r.dense.history.epochs.at(-1)?.accuracy ?? NaN).padStart(7)}        -      ${r.dense.trainSeconds.toFixed(1)} s`,
    '',
    'Routing of the 10,000 test digits (share of each digit\'s top-2 assignments):',
    formatRoutingTable(r.moe.routing),
    '',
    `Targets: MoE test >= 94.5% ${r.moe.test.accuracy >= 0.945 ? 'met' : 'MISSED'}, dense test >= 94.0% ${r.dense.test.accuracy >= 0.94 ? 'met' : 'MISSED'}, final aux in [1.9, 2.3] ${lastAux >= 1.9 && lastAux <= 2.3 ? 'met' : 'MISSED'}`,
  ];
  console.log(lines.join('\n'));
}

