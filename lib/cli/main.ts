// torch-moe command line (commander: strict options, --help on every command). Results go to stdout
// (--json: one JSON document), progress to stderr. Ctrl+C stops training at the next batch through the
// same AbortSignal the API takes, saves the model when --out was given, and exits 130.
import { Command, Option } from 'commander';
import { readModelHeader } from '../checkpoint/header.js';
import { Classifier } from '../Classifier.js';
import { DenseClassifier } from '../DenseClassifier.js';
import { MoEClassifier } from '../MoEClassifier.js';
import { CLASS_NAMES, loadMnist, type LoadMnistOptions } from '../data/loadMnist.js';
import { destroyDistributed, envInteger, initDistributed, type DistributedInfo } from '../distributed.js';
import { doctor, formatDoctor } from '../doctor.js';
import { runReferenceExperiment, referenceSettings } from '../experiment.js';
import { loadModel } from '../loadModel.js';
import { LR_SCHEDULES, type LrSchedule } from '../options.js';
import { routingHeatmap, trainingCurves } from '../plot/charts.js';
import { writeChart } from '../plot/render.js';
import { formatRoutingTable } from '../report.js';
import { buildFromSource } from '../sourceBuild.js';
import { buildInfo, getNumThreads, setNumThreads } from '../threads.js';
import { version } from '../version.js';
import { device, integer, moeOptions, number, oneOf, routing, type ModelFlags } from './flags.js';
import { launch } from './launch.js';
import { readPixels } from './pixels.js';
import { printReference } from './reference.js';
import { progress } from './progress.js';

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const print = (json: boolean, value: unknown, text: () => string) => console.log(json ? JSON.stringify(value, null, 2) : text());

/** --data: 'mnist', 'fashion-mnist', or a folder of IDX files; with the class names for tables. */
function dataSource(data: string): { options: LoadMnistOptions; classNames: string[] } {
  if (data === 'mnist' || data === 'fashion-mnist') return { options: { dataset: data }, classNames: CLASS_NAMES[data] };
  return { options: { dir: data }, classNames: CLASS_NAMES.mnist };
}

/** Ctrl+C: the first aborts `controller` (training stops at the next batch); a second exits at once. */
function onInterrupt(controller: AbortController, quiet = false): () => void {
  let count = 0;
  const handler = () => {
    if (++count > 1) process.exit(130);
    if (!quiet) process.stderr.write('\ninterrupted: stopping at the next batch (Ctrl+C again to quit now)\n');
    controller.abort();
  };
  process.on('SIGINT', handler);
  return () => process.off('SIGINT', handler);
}

/** Joins the job's group; a rank whose launcher dies stops too (its peers would fail anyway). */
async function joinGroup(o: { masterAddr?: string; masterPort?: number; timeoutMs?: number }): Promise<DistributedInfo> {
  if (process.send) {
    process.channel?.unref();
    process.on('disconnect', () => {
      process.stderr.write(`torch-moe (rank ${process.env.RANK}): the launcher has gone; stopping\n`);
      process.exit(1);
    });
  }
  return initDistributed({ masterAddr: o.masterAddr, masterPort: o.masterPort, timeoutMs: o.timeoutMs });
}

const threadsOption = () => new Option('--threads <n>', 'intra-op threads of the compute thread (default: the machine\'s cores)').argParser(integer('--threads'));
const deviceOption = () => new Option('--device <device>', 'cpu, cuda or auto (CUDA when built with it and a GPU is visible)').argParser(device);
const dataOption = () => new Option('--data <source>', 'mnist, fashion-mnist, or a folder of IDX files').default('mnist');
const applyThreads = (threads?: number) => threads !== undefined && setNumThreads(threads);

const program = new Command('torch-moe')
  .description('Mixture-of-Experts classifiers in C++ over libtorch: train, evaluate and inspect them from the terminal')
  .version(version)
  .showSuggestionAfterError(true)
  .showHelpAfterError('(run with --help for the options)');

program.command('train')
  .description('train a model on MNIST-format data, test it, and save it with --out')
  .option('--model <kind>', 'moe or dense', oneOf('--model', ['moe', 'dense'] as const), 'moe')
  .addOption(dataOption())
  .option('--limit <n>', 'training images to use (default: all)', integer('--limit'))
  .option('--epochs <n>', 'epochs', integer('--epochs'), 10)
  .option('--batch-size <n>', 'mini-batch size', integer('--batch-size'), 64)
  .option('--lr <x>', 'Adam learning rate', number('--lr'), 1e-3)
  .option('--lr-schedule <kind>', 'constant, or cosine: decay from --lr to ~0 over the run', oneOf('--lr-schedule', LR_SCHEDULES), 'constant')
  .option('--dropout <p>', 'training only: drop hidden activations with probability p (default 0)', number('--dropout'))
  .option('--translate <n>', 'augmentation: move each training image by up to n pixels (default 0)', integer('--translate'), 0)
  .option('--seed <n>', 'seed for initialisation and shuffling', integer('--seed'), 0)
  .option('--hidden <n>', 'hidden width (default 256)', integer('--hidden'))
  .option('--expert-hidden <n>', 'inner width of each expert / the dense FFN (default 128)', integer('--expert-hidden'))
  .option('--experts <n>', 'number of experts (default 8)', integer('--experts'))
  .option('--top-k <n>', 'experts per input (default 2)', integer('--top-k'))
  .option('--routing <method>', 'softmax-topk, sigmoid-topk, expert-choice or hash (docs/routing.md)', routing)
  .option('--aux <x>', 'load-balancing loss weight (default 0.1 for token choice)', number('--aux'))
  .option('--z-loss <x>', 'router z-loss weight (default 0)', number('--z-loss'))
  .option('--capacity-factor <x>', 'expert capacity factor (default: dropless)', number('--capacity-factor'))
  .option('--gate-noise <x>', 'std of Gaussian noise on the gate logits, training only', number('--gate-noise'))
  .option('--gate-jitter <x>', 'multiplicative jitter of the gate input, training only', number('--gate-jitter'))
  .option('--bias-balancing <rate>', 'auxiliary-loss-free balancing with this bias rate', number('--bias-balancing'))
  .option('--shared-experts <n>', 'experts every input uses beside the routed ones', integer('--shared-experts'))
  .addOption(deviceOption())
  .addOption(threadsOption())
  .option('--out <file>', 'save the trained model here (.safetensors); also when interrupted')
  .option('--plot <file>', 'draw loss, accuracy and per-expert load per epoch (.svg or .png)')
  .option('--json', 'print the results as JSON on stdout', false)
  .option('--nproc-per-node <n>', 'data-parallel training: start n ranks on this machine (Gloo over loopback/TCP)', integer('--nproc-per-node'), 1)
  .option('--nnodes <n>', 'machines taking part; run the same command on each with its --node-rank', integer('--nnodes'), 1)
  .option('--node-rank <n>', 'this machine\'s index among --nnodes', integer('--node-rank'), 0)
  .option('--master-addr <host>', 'address of the machine with node rank 0 (default 127.0.0.1, or MASTER_ADDR)')
  .option('--master-port <port>', 'port on the master for the rendezvous (default: a free one on one machine, or MASTER_PORT)', integer('--master-port'))
  .option('--dist-timeout <ms>', 'how long a rank waits for the others before failing (default 120000)', integer('--dist-timeout'))
  .option('--expert-parallel', 'with several ranks: spread the experts over them (--experts divisible by the world size)', false)
  .action(async (o: ModelFlags & Record<string, unknown> & { model: 'moe' | 'dense'; data: string; limit?: number; epochs: number; batchSize: number; lr: number; lrSchedule: LrSchedule; translate: number; out?: string; plot?: string; json: boolean; threads?: number; nprocPerNode: number; nnodes: number; nodeRank: number; masterAddr?: string; masterPort?: number; distTimeout?: number; expertParallel: boolean }) => {
    // Usage errors first: before any rank is started or any data is read.
    if (o.expertParallel && o.model !== 'moe') throw new Error('--expert-parallel needs --model moe');
    if (o.expertParallel && o.nprocPerNode <= 1 && o.nnodes <= 1 && Number(process.env.WORLD_SIZE ?? 1) <= 1) {
      throw new Error('--expert-parallel needs several ranks: add --nproc-per-node N (or --nnodes)');
    }
    if ((o.nprocPerNode > 1 || o.nnodes > 1) && !process.env.TORCH_MOE_LAUNCHED) {
      process.exitCode = await launch({ nprocPerNode: o.nprocPerNode, nnodes: o.nnodes, nodeRank: o.nodeRank, masterAddr: o.masterAddr ?? process.env.MASTER_ADDR ?? '127.0.0.1',
        masterPort: o.masterPort ?? envInteger(process.env, 'MASTER_PORT', 1, 65535), threads: o.threads }, process.argv[1]!, process.argv.slice(2));
      return;
    }
    applyThreads(o.threads);
    // A rank of a distributed job: started by the launcher above, or by torchrun-style tools (WORLD_SIZE > 1).
    const dist: DistributedInfo | undefined = Number(process.env.WORLD_SIZE ?? 1) > 1
      ? await joinGroup({ masterAddr: o.masterAddr, masterPort: o.masterPort, timeoutMs: o.distTimeout })
      : undefined;
    const main = dist?.isMain ?? true;
    if (dist && o.device === undefined) o.device = 'cpu';  // Gloo trains CPU models (no NCCL yet)
    const { options: source, classNames } = dataSource(o.data);
    const train = await loadMnist({ ...source, split: 'train', limit: o.limit });
    const inputSize = train.inputs.length / train.count;
    const model: Classifier = o.model === 'moe'
      ? new MoEClassifier(moeOptions(o, inputSize, 10))
      : new DenseClassifier({ inputSize, numClasses: 10, hiddenSize: o.hidden, expertHiddenSize: o.expertHidden, seed: o.seed, device: o.device, dropout: o.dropout });
    const parallel = dist ? `, ${o.expertParallel ? 'expert and data' : 'data'} parallel over ${dist.worldSize} ranks` : '';
    if (main) process.stderr.write(`training a ${o.model} model on ${model.device}, ${train.count} images of ${o.data}, ${o.epochs} epochs${parallel}\n`);
    const controller = new AbortController();
    const release = onInterrupt(controller, !main);
    const bar = main ? progress(o.epochs, '') : { epoch: () => {}, done: () => {} };
    const history = await model.train(train, { epochs: o.epochs, batchSize: o.batchSize, learningRate: o.lr, lrSchedule: o.lrSchedule, translate: o.translate, signal: controller.signal, distributed: dist !== undefined, expertParallel: o.expertParallel, onEpochEnd: (m) => bar.epoch(m) });
    bar.done();
    release();
    if (dist) await destroyDistributed();
    if (!main) {  // rank 0 reports, tests and saves: the weights are the same on every rank
      model.dispose();
      process.exitCode = history.stopped ? 130 : 0;
      return;
    }
    if (o.out) await model.save(o.out);
    if (o.plot) await writeChart(trainingCurves(history.epochs, `Training: ${o.model} on ${o.data}`), o.plot);
    const test = history.stopped ? undefined : await model.evaluate(await loadMnist({ ...source, split: 'test' }));
    const routingStats = !history.stopped && model instanceof MoEClassifier ? await model.routingStats(await loadMnist({ ...source, split: 'test' })) : undefined;
    print(o.json, { config: model.config, params: model.paramCount(), history, test: test ?? null, saved: o.out ?? null }, () => [
      history.stopped ? `stopped after ${history.epochs.length} epoch(s)` : `test accuracy ${pct(test!.accuracy)}`,
      ...(routingStats ? [formatRoutingTable(routingStats, classNames)] : []),
      ...(o.out ? [`saved to ${o.out}`] : []),
      ...(o.plot ? [`curves drawn to ${o.plot}`] : []),
    ].join('\n'));
    model.dispose();
    process.exitCode = history.stopped ? 130 : 0;
  });

program.command('evaluate <model>')
  .description('accuracy and loss of a saved model on the test split')
  .addOption(dataOption()).addOption(deviceOption()).addOption(threadsOption())
  .option('--json', 'print the result as JSON', false)
  .action(async (file: string, o: { data: string; device?: 'cpu' | 'cuda' | 'auto'; threads?: number; json: boolean }) => {
    applyThreads(o.threads);
    const model = await loadModel(file, { device: o.device });
    const r = await model.evaluate(await loadMnist({ ...dataSource(o.data).options, split: 'test' }));
    print(o.json, r, () => `test accuracy ${pct(r.accuracy)}, loss ${r.loss.toFixed(4)}`);
    model.dispose();
  });

program.command('routing <model>')
  .description('the class x expert table of a saved MoE model: primary/secondary experts, load, entropy')
  .addOption(dataOption()).addOption(deviceOption()).addOption(threadsOption())
  .option('--plot <file>', 'draw the class x expert heatmap (.svg or .png)')
  .option('--json', 'print the statistics as JSON', false)
  .action(async (file: string, o: { data: string; device?: 'cpu' | 'cuda' | 'auto'; threads?: number; plot?: string; json: boolean }) => {
    applyThreads(o.threads);
    const model = await loadModel(file, { device: o.device });
    if (!(model instanceof MoEClassifier)) throw new TypeError(`${file} holds a dense model: routing needs an MoE model`);
    const { options, classNames } = dataSource(o.data);
    const stats = await model.routingStats(await loadMnist({ ...options, split: 'test' }));
    if (o.plot) await writeChart(routingHeatmap(stats, classNames), o.plot);
    print(o.json, stats, () => formatRoutingTable(stats, classNames) + (o.plot ? `\nheatmap drawn to ${o.plot}` : ''));
    model.dispose();
  });

program.command('inspect <model>')
  .description('what a model file holds (format, version, config, tensors), read from its header without running it')
  .option('--json', 'print as JSON', false)
  .action(async (file: string, o: { json: boolean }) => {
    const h = await readModelHeader(file);
    print(o.json, h, () => [
      `${file}: ${h.bytes.toLocaleString('en')} bytes, format ${h.format ?? '(none)'}, written by torch-moe ${h.version ?? '?'}`,
      `config: ${JSON.stringify(h.config)}`,
      `${h.tensors.length} tensors, ${h.parameters.toLocaleString('en')} parameters, checksum ${h.checksum ?? '(none)'}`,
      ...h.tensors.map((t) => `  ${t.name.padEnd(32)} ${t.dtype} [${t.shape.join(', ')}]`),
    ].join('\n'));
  });

program.command('predict <model> <input>')
  .description('class probabilities of a PNG image or of every image in an IDX file, with the experts used')
  .option('--top <n>', 'classes to show per image', integer('--top'), 3)
  .option('--limit <n>', 'images to show from an IDX file', integer('--limit'), 10)
  .addOption(deviceOption())
  .option('--json', 'print as JSON', false)
  .action(async (file: string, input: string, o: { top: number; limit: number; device?: 'cpu' | 'cuda' | 'auto'; json: boolean }) => {
    const model = await loadModel(file, { device: o.device });
    const { inputs, count } = await readPixels(input, model.config.inputSize);
    const n = Math.min(count, o.limit), C = model.config.numClasses;
    const rows = inputs.subarray(0, n * model.config.inputSize);
    const p = model instanceof MoEClassifier ? await model.predict(rows, { routing: true }) : { probabilities: await model.predict(rows), routing: undefined };
    const results = Array.from({ length: n }, (_, i) => {
      const probs = Array.from(p.probabilities.subarray(i * C, (i + 1) * C));
      const top = probs.map((v, c) => ({ class: c, probability: v })).sort((a, b) => b.probability - a.probability).slice(0, o.top);
      return { image: i, top, routing: p.routing?.[i] };
    });
    print(o.json, results, () => results.map((r) => `image ${r.image}: ${r.top.map((t) => `${t.class} ${pct(t.probability)}`).join(', ')}` +
      (r.routing ? `  (experts ${r.routing.experts.map((e, j) => `E${e} ${r.routing!.weights[j]!.toFixed(2)}`).join(', ')})` : '')).join('\n'));
    model.dispose();
  });

program.command('reference')
  .description('the reference experiment: the MoE and its dense baseline on 5,000 MNIST images, with the routing table')
  .option('--limit <n>', 'training images', integer('--limit'), referenceSettings.limit)
  .option('--epochs <n>', 'epochs', integer('--epochs'), referenceSettings.epochs)
  .option('--batch-size <n>', 'mini-batch size', integer('--batch-size'), referenceSettings.batchSize)
  .option('--lr <x>', 'Adam learning rate', number('--lr'), referenceSettings.learningRate)
  .option('--seed <n>', 'seed', integer('--seed'), referenceSettings.seed)
  .addOption(deviceOption()).addOption(threadsOption())
  .option('--json', 'print the report as JSON', false)
  .action(async (o: { limit: number; epochs: number; batchSize: number; lr: number; seed: number; device?: 'cpu' | 'cuda' | 'auto'; threads?: number; json: boolean }) => {
    applyThreads(o.threads);
    const controller = new AbortController();
    const release = onInterrupt(controller);
    process.stderr.write(`torch-moe reference experiment (libtorch ${buildInfo().libtorchVersion}, ${getNumThreads()} threads)\n`);
    const bars = { moe: progress(o.epochs, 'moe   '), dense: progress(o.epochs, 'dense ') };
    let current: 'moe' | 'dense' = 'moe';
    const report = await runReferenceExperiment({
      limit: o.limit, epochs: o.epochs, batchSize: o.batchSize, learningRate: o.lr, seed: o.seed, device: o.device, signal: controller.signal,
      onEpochEnd: (kind, m) => {
        if (kind !== current) bars[current].done();
        current = kind;
        bars[kind].epoch(m);
      },
    });
    bars[current].done();
    release();
    if (o.json) console.log(JSON.stringify(report, null, 2));
    else printReference(report);
    process.exitCode = controller.signal.aborted ? 130 : 0;
  });

program.command('doctor')
  .description('what torch-moe runs on (addon, libtorch, CUDA, threads, BLAS), each problem with its fix')
  .option('--json', 'print the report as JSON', false)
  .action((o: { json: boolean }) => {
    const report = doctor();
    console.log(o.json ? JSON.stringify(report, null, 2) : formatDoctor(report));
    process.exitCode = report.ok ? 0 : 1;
  });

program.command('build')
  .description('build the native addon from source in the installed package (cmake-js; offline)')
  .action(() => {
    process.exitCode = buildFromSource();
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  const who = Number(process.env.WORLD_SIZE ?? 1) > 1 ? `torch-moe (rank ${process.env.RANK})` : 'torch-moe';
  process.stderr.write(`${who}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
