// One rank of bench/distributed.mjs: trains the reference MoE (or the dense model) on MNIST images with
// one intra-op thread, data-parallel (and expert-parallel with `ep`) when WORLD_SIZE > 1; rank 0 prints
// the epochs' samples/s and what it handed to the collectives as JSON.
//   node bench/distributed_rank.mjs <moe|dense> <limit> <epochs> <batch> [ep]
import { DenseClassifier, MoEClassifier, destroyDistributed, distributedTraffic, initDistributed, loadMnist, setNumThreads } from '../dist/lib/index.js';

const [kind, limit, epochs, batch, ep] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]), process.argv[6] === 'ep'];
setNumThreads(1);
const world = Number(process.env.WORLD_SIZE ?? 1);
const info = world > 1 ? await initDistributed({ timeoutMs: 60_000 }) : { rank: 0 };
const train = await loadMnist({ split: 'train', limit });
const model = kind === 'moe' ? new MoEClassifier({ seed: 0 }) : new DenseClassifier({ seed: 0 });
const history = await model.train(train, { epochs, batchSize: batch, distributed: world > 1, expertParallel: ep && world > 1 });
const traffic = world > 1 ? distributedTraffic() : null;
if (world > 1) await destroyDistributed();
const params = model.paramCount().total;
if (info.rank === 0) console.log(JSON.stringify({ samplesPerSecond: history.epochs.map((e) => e.samples / e.seconds), accuracy: history.epochs.at(-1).accuracy, params, traffic }));
