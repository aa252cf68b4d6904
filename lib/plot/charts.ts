// The two pictures of the CLI: the class x expert routing heatmap and the per-epoch training curves (loss,
// accuracy, and each expert's share of the load), as Vega-Lite specs.
import type { TopLevelSpec } from 'vega-lite';
import type { EpochMetrics, RoutingStats } from '../options.js';

/** One cell per class x expert: the share of the class's assignments that went to the expert. */
export function routingHeatmap(stats: RoutingStats, classNames?: string[], title = 'Routing: share of each class sent to each expert'): TopLevelSpec {
  const values = stats.perClass.flatMap((row, c) => row.map((share, e) => ({ class: classNames?.[c] ?? String(c), expert: `E${e}`, share })));
  const classes = stats.perClass.map((_, c) => classNames?.[c] ?? String(c));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values },
    encoding: {
      x: { field: 'expert', type: 'ordinal', sort: null, title: 'expert' },
      y: { field: 'class', type: 'ordinal', sort: classes, title: 'class' },
    },
    layer: [
      { mark: 'rect', encoding: { color: { field: 'share', type: 'quantitative', scale: { scheme: 'blues', domain: [0, 1] }, title: 'share' } } },
      {
        mark: { type: 'text', fontSize: 10 },
        encoding: {
          text: { field: 'share', type: 'quantitative', format: '.0%' },
          color: { condition: { test: 'datum.share > 0.5', value: 'white' }, value: 'black' },
        },
      },
    ],
    width: { step: 40 },
    height: { step: 24 },
  } as TopLevelSpec;
}

/** Loss and accuracy per epoch, and (MoE) each expert's share of the epoch's assignments. */
export function trainingCurves(history: EpochMetrics[], title = 'Training'): TopLevelSpec {
  const metrics = history.flatMap((m) => [
    { epoch: m.epoch, metric: 'loss', value: m.loss },
    { epoch: m.epoch, metric: 'accuracy', value: m.accuracy },
    ...(m.auxLoss ? [{ epoch: m.epoch, metric: 'aux loss', value: m.auxLoss }] : []),
  ]);
  const load = history.flatMap((m) => m.expertLoad.map((share, e) => ({ epoch: m.epoch, expert: `E${e}`, share })));
  const line = (data: object[], y: string, color: string, yTitle: string) => ({
    data: { values: data },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
      y: { field: y, type: 'quantitative', title: yTitle },
      color: { field: color, type: 'nominal', title: color },
    },
    width: 360,
    height: 200,
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    hconcat: [line(metrics, 'value', 'metric', 'value'), ...(load.length ? [line(load, 'share', 'expert', 'share of assignments')] : [])],
    resolve: { scale: { color: 'independent' } },
  } as TopLevelSpec;
}
