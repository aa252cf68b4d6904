// The reference experiment of the README: the MoE classifier and its dense baseline trained on the
// first 5,000 MNIST training images and tested on all 10,000 test images, with the routing table.
import { DenseClassifier } from './DenseClassifier.js';
import { MoEClassifier } from './MoEClassifier.js';
import { loadMnist } from './data/loadMnist.js';
import { checkKnownKeys, checkObject } from './validate.js';
import type { Device, EpochMetrics, EvaluationResult, RoutingStats, TrainHistory } from './options.js';

export interface ReferenceSettings {
  limit: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  auxLossWeight: number;
  seed: number;
  device?: Device;  // default 'auto'
  onEpochEnd?: (model: 'moe' | 'dense', m: EpochMetrics) => void;
  signal?: AbortSignal;
}

export const referenceSettings: Readonly<ReferenceSettings> = Object.freeze({
  limit: 5000,
  epochs: 30,
  batchSize: 64,
  learningRate: 1e-3,
  auxLossWeight: 0.1,
  seed: 0,
});

export interface ModelReport {
  params: { total: number; active: number };
  history: TrainHistory;
  trainSeconds: number;
  test: EvaluationResult;
}

/** One of the reference experiment's bars (part 1 of the project), judged on a run. */
export interface TargetCheck {
  target: string;  // e.g. 'MoE test >= 94.5%'
  value: number;   // what the run gave (NaN when it has no epochs)
  met: boolean;
}

export interface ReferenceReport {
  settings: Omit<ReferenceSettings, 'onEpochEnd' | 'signal'>;
  device: 'cpu' | 'cuda';
  expertPath: string;
  moe: ModelReport & { routing: RoutingStats };
  dense: ModelReport;
  targets: TargetCheck[];
}

/** The bars of the reference experiment: MoE test accuracy, dense test accuracy, the MoE's last-epoch aux loss. */
export function referenceTargets(r: { moe: ModelReport; dense: ModelReport }): TargetCheck[] {
  const aux = r.moe.history.epochs.at(-1)?.auxLoss ?? NaN;
  return [
    { target: 'MoE test >= 94.5%', value: r.moe.test.accuracy, met: r.moe.test.accuracy >= 0.945 },
    { target: 'dense test >= 94.0%', value: r.dense.test.accuracy, met: r.dense.test.accuracy >= 0.94 },
    { target: 'final aux in [1.9, 2.3]', value: aux, met: aux >= 1.9 && aux <= 2.3 },
  ];
}

/** Runs the reference experiment; `overrides` replace single settings (seed, device, ...), unknown keys are refused. */
export async function runReferenceExperiment(overrides: Partial<ReferenceSettings> = {}): Promise<ReferenceReport> {
  checkObject('settings', overrides);
  const known = [...Object.keys(referenceSettings), 'device', 'onEpochEnd', 'signal'];
  checkKnownKeys('settings', overrides as Record<string, unknown>, known);
  const settings: ReferenceSettings = { ...referenceSettings, ...overrides };
  const { onEpochEnd, signal, ...plain } = settings;
  const [train, test] = await Promise.all([loadMnist({ split: 'train', limit: settings.limit }), loadMnist({ split: 'test' })]);
  const trainOptions = { epochs: settings.epochs, batchSize: settings.batchSize, learningRate: settings.learningRate, signal };

  const moe = new MoEClassifier({ numExperts: 8, topK: 2, auxLossWeight: settings.auxLossWeight, seed: settings.seed, device: settings.device });
  const dense = new DenseClassifier({ seed: settings.seed, device: settings.device });
  try {
    const run = async (model: MoEClassifier | DenseClassifier, kind: 'moe' | 'dense') => {
      const started = performance.now();
      const history = await model.train(train, { ...trainOptions, onEpochEnd: (m) => onEpochEnd?.(kind, m) });
      const trainSeconds = (performance.now() - started) / 1000;
      return { params: model.paramCount(), history, trainSeconds, test: await model.evaluate(test) };
    };
    const moeReport = { ...(await run(moe, 'moe')), routing: await moe.routingStats(test) };
    const denseReport = await run(dense, 'dense');
    return { settings: plain, device: moe.device, expertPath: moe.expertPath, moe: moeReport, dense: denseReport,
      targets: referenceTargets({ moe: moeReport, dense: denseReport }) };
  } finally {
    moe.dispose();
    dense.dispose();
  }
}
