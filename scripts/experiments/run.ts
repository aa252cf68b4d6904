// One case of an experiment, trained once for one seed: the numbers the tables are made of.
import { DenseClassifier, MoEClassifier, type Dataset, type EpochMetrics, type RoutingStats } from '../../lib/index.js';
import type { Case, Experiment } from './cases.js';

export interface RunResult {
  seed: number;
  testAccuracy: number;
  trainAccuracy: number;   // evaluated on the training data after training
  history: EpochMetrics[];
  testAt: Record<number, number>;  // test accuracy after the experiment's evalAt epochs
  routing?: RoutingStats;  // on the test set, MoE only
  params: { total: number; active: number };
  seconds: number;         // training only
}

export async function runCase(exp: Experiment, c: Case, seed: number, train: Dataset, test: Dataset): Promise<RunResult> {
  const model = c.kind === 'moe' ? new MoEClassifier({ ...c.options, seed }) : new DenseClassifier({ seed });
  // (a schedule spans one train call: an experiment that stops to evaluate restarts it at each segment)
  try {
    const history: EpochMetrics[] = [];
    const testAt: Record<number, number> = {};
    // Segments end at the evalAt epochs; Adam's state carries over between train calls.
    const stops = [...new Set([...(exp.evalAt ?? []), exp.epochs])].sort((a, b) => a - b);
    let done = 0, seconds = 0;
    for (const stop of stops) {
      const started = performance.now();
      const h = await model.train(train, { ...c.train, epochs: stop - done });
      seconds += (performance.now() - started) / 1000;
      history.push(...h.epochs.map((m) => ({ ...m, epoch: m.epoch + done })));
      done = stop;
      if (exp.evalAt?.includes(stop)) testAt[stop] = (await model.evaluate(test)).accuracy;
    }
    return {
      seed,
      testAccuracy: (await model.evaluate(test)).accuracy,
      trainAccuracy: (await model.evaluate(train)).accuracy,
      history,
      testAt,
      routing: model instanceof MoEClassifier ? await model.routingStats(test) : undefined,
      params: model.paramCount(),
      seconds,
    };
  } finally {
    model.dispose();
  }
}
