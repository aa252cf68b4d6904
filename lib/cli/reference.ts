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
    `Targets: ${r.targets.map((t) => `${t.target} ${t.met ? 'met' : 'MISSED'}`).join(', ')}`,
  ];
  // A missed accuracy bar at one seed is often the seed's luck, not the code: say how to tell them apart.
  if (r.targets.some((t) => !t.met)) {
    lines.push(
      `One seed is one draw: the MoE's test accuracy moves by about a point from seed to seed (--seed runs another;`,
      `the README's "The reference experiment" compares 15 seeds with eager PyTorch).`,
    );
  }
  console.log(lines.join('\n'));
}

