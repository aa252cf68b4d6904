// One rank of a data-parallel test job: joins the group from torchrun's environment variables, trains,
// and writes its history and model to `${out}.rank${RANK}.json` / `.safetensors`.
//   node distributedTrain.mjs '<json: { model | load, train, trainByRank?, data: { file } | { mnist }, out, timeoutMs?, hangRank? }>'
// (load: a model file to start from instead of a new model of the options `model`; modelByRank and
// trainByRank: options that differ by rank, { [rank]: options })
import { readFile, writeFile } from 'node:fs/promises';
import { MoEClassifier, distributedTraffic, initDistributed, loadMnist, loadModel } from '../../dist/lib/index.js';

const job = JSON.parse(process.argv[2]);
const info = await initDistributed({ timeoutMs: job.timeoutMs ?? 20000 });
// A rank that joins and then never trains: its peers must fail within the timeout, not hang.
if (job.hangRank === info.rank) await new Promise((resolve) => setTimeout(resolve, 120_000));
const data = job.data.mnist ? await loadMnist({ split: 'train', limit: job.data.mnist }) : await readDataset(job.data.file);
const model = job.load ? await loadModel(job.load) : new MoEClassifier({ ...job.model, ...job.modelByRank?.[info.rank] });
let paramCountInTraining;  // read while the train call runs (expert parallel: the experts are sliced then)
const history = await model.train(data, { ...job.train, ...job.trainByRank?.[info.rank], distributed: true, onEpochEnd: (m) => {
  paramCountInTraining = model.paramCount();
  console.log(`rank ${info.rank} epoch ${m.epoch}`);
} });
await model.save(`${job.out}.rank${info.rank}.safetensors`);
await writeFile(`${job.out}.rank${info.rank}.json`, JSON.stringify({ info, history, traffic: distributedTraffic(), paramCount: model.paramCount(), paramCountInTraining }));

/** A dataset the test wrote: { count, inputSize } as JSON beside float32 inputs and uint8 labels. */
async function readDataset(file) {
  const { count } = JSON.parse(await readFile(`${file}.json`, 'utf8'));
  const inputs = new Float32Array(new Uint8Array(await readFile(`${file}.inputs`)).buffer);
  const labels = new Uint8Array(await readFile(`${file}.labels`));
  return { inputs, labels, count };
}
