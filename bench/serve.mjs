// Load test of the example service (examples/server/server.mjs) on loopback: N concurrent clients for a
// fixed time, with one native predict per request and with micro-batching (model.createPredictor), in
// alternating rounds on the same model. Reports requests/s, p50/p99 latency, errors and the server's
// event-loop delay (perf_hooks), medians over the rounds; writes bench/results/serve-<machine>-<date>-<commit>.
// Goals (issue 8): zero errors, p99 event-loop delay < 20 ms, micro-batching >= 3x the requests/s of
// one native call per request at 64 concurrent clients. Each is measured with JSON bodies and with raw
// float32 bodies (application/octet-stream): what parsing the request costs shows in the difference.
// Body kind json-parse: JSON bodies, the server reading them with JSON.parse instead of its fast reader.
// Each round also runs the server with --no-model-calls (uniform answers, no model call at all): the
// rate of the HTTP path alone, a reference for what batching can reach. It is not a strict bound: the load
// generator shares the machine's cores, and how the server answers changes how they share them.
// --max-in-flight 4,65536 runs one micro-batching mode per value in each round (paired comparison).
//
//   node bench/serve.mjs [--connections 64] [--seconds 10] [--rounds 3] [--threads 1] [--bodies json,binary]
//     [--max-delay-ms 0] [--max-in-flight n] [--node-flags=--max-semi-space-size=32] [--model file]
//     [--out bench/results]
// --model serves another saved model: the results describe its shapes, and their file names end with the
// model file's name. By default the reference MoE, trained briefly here.
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readModelHeader } from '../dist/lib/checkpoint/header.js';
import { MoEClassifier, buildInfo, loadMnist } from '../dist/lib/index.js';
import { commandLine, currentCommit, machineSlug, median, slug } from './common.mjs';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    model: { type: 'string' },
    // The service configuration measured: one compute thread (the JS thread and the load generator need
    // the other core of a small machine) and a larger young generation for the JSON garbage of every
    // request (V8's semi-space; a common Node server setting). Both modes run with the same settings.
    threads: { type: 'string', default: '1' },
    'node-flags': { type: 'string', default: '--max-semi-space-size=32' },  // pass --node-flags= for none
    'max-delay-ms': { type: 'string', default: '0' },  // the micro-batching server's (1 to compare with a timer)
    'max-in-flight': { type: 'string' },  // the micro-batching server's, or a list (default: the predictor's)
    out: { type: 'string', default: 'bench/results' },
    bodies: { type: 'string', default: 'json,binary' },
  },
});
const bodyKinds = values.bodies.split(',');
for (const b of bodyKinds) if (!['json', 'json-parse', 'binary'].includes(b)) throw new Error(`--bodies takes json, json-parse and binary, got ${b}`);
const connections = Number(values.connections), seconds = Number(values.seconds), rounds = Number(values.rounds);

// The reference MoE, briefly trained (what it predicts does not change the cost of predicting).
let modelFile = values.model;
if (!modelFile) {
  modelFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'torch-moe-serve-')), 'moe.safetensors');
  const m = new MoEClassifier({ device: 'cpu' });
  await m.train(await loadMnist({ split: 'train', limit: 5000 }), { epochs: 2 });
  await m.save(modelFile);
  m.dispose();
}
// What is served, from the config in the file's header (a --model file need not be the reference model).
const modelName = await (async () => {
  const c = (await readModelHeader(modelFile)).config ?? {};
  return c.kind === 'moe'
    ? `MoE (${c.inputSize}-${c.hiddenSize}, ${c.numExperts} experts of ${c.hiddenSize}-${c.expertHiddenSize}-${c.hiddenSize}, top-${c.topK})${values.model ? '' : ', the reference model'}`
    : `dense (${c.inputSize}-${c.hiddenSize}, FFN ${c.hiddenSize}-${c.expertHiddenSize}-${c.hiddenSize})`;
})();
const test = await loadMnist({ split: 'test', limit: 256 });
const pixelsOf = (i) => test.inputs.slice(i * 784, (i + 1) * 784);
const bodies = {
  json: { type: 'application/json', list: Array.from({ length: 256 }, (_, i) => JSON.stringify({ pixels: Array.from(pixelsOf(i)) })) },
  binary: { type: 'application/octet-stream', list: Array.from({ length: 256 }, (_, i) => Buffer.from(pixelsOf(i).buffer)) },
};

// The server modes measured, in the order each round runs them; the ratios compare them within a round.
const inFlight = values['max-in-flight'] ? values['max-in-flight'].split(',') : [undefined];
const microModes = inFlight.map((n) => ({
  name: inFlight.length > 1 ? `micro-batching, maxInFlight ${n}` : 'micro-batching',
  flags: ['--max-delay-ms', values['max-delay-ms'], ...(n ? ['--max-in-flight', n] : [])],
}));
const modes = [{ name: 'per-request', flags: ['--no-batching'] }, ...microModes, { name: 'no model calls', flags: ['--no-model-calls'] }];

function startServer(mode, bodyKind) {
  const args = [path.resolve('examples/server/server.mjs'), '--model', modelFile, '--port', '0', ...mode.flags,
    ...(bodyKind === 'json-parse' ? ['--json-parse'] : []),
    ...(values.threads ? ['--threads', values.threads] : [])];
  const child = spawn(process.execPath, [...values['node-flags'].split(' ').filter(Boolean), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      const m = /listening on (http:\/\/\S+)/.exec(String(d));
      if (m) resolve({ child, url: m[1] });
    });
    child.on('exit', (code) => reject(new Error(`the server exited with ${code}`)));
  });
}

// Where the CPU went during a run (Linux /proc; null elsewhere): the server's JS thread, its busiest other
// thread (the compute thread), this process (the load generator) and the idle share of the whole machine.
function cpuTimes(pid) {
  if (!existsSync(`/proc/${pid}/task`)) return null;
  const ticks = (file) => { const f = readFileSync(file, 'utf8'); const v = f.slice(f.lastIndexOf(')') + 2).split(' '); return Number(v[11]) + Number(v[12]); };
  const threads = Object.fromEntries(readdirSync(`/proc/${pid}/task`).map((t) => [t, ticks(`/proc/${pid}/task/${t}/stat`)]));
  const machine = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  return { threads, machine, self: process.cpuUsage(), at: performance.now() };
}
function cpuShares(pid, a, b) {
  if (!a || !b) return null;
  const seconds = (b.at - a.at) / 1000, hz = 100;  // USER_HZ
  const share = (t) => (b.threads[t] - (a.threads[t] ?? 0)) / hz / seconds;
  const others = Object.keys(b.threads).filter((t) => t !== String(pid)).map(share);
  const machine = b.machine.map((v, i) => v - a.machine[i]);
  return {
    serverJsThread: share(String(pid)), computeThread: Math.max(0, ...others),
    loadGenerator: (b.self.user + b.self.system - a.self.user - a.self.system) / 1e6 / seconds,
    machineIdle: (machine[3] + machine[4]) / machine.reduce((x, y) => x + y, 0),
  };
}

async function measure(mode, bodyKind) {
  const { child, url } = await startServer(mode, bodyKind);
  const { type, list } = bodies[bodyKind] ?? bodies.json;  // json-parse: the JSON bodies, read by JSON.parse
  await autocannon({ url: `${url}/predict`, method: 'POST', headers: { 'content-type': type }, body: list[0], connections, duration: 1 });  // warm-up
  await fetch(`${url}/stats`);  // (the delay histogram keeps running; the report below is for the whole run)
  const before = cpuTimes(child.pid);
  const r = await autocannon({
    url, connections, duration: seconds,
    requests: list.map((body) => ({ method: 'POST', path: '/predict', headers: { 'content-type': type }, body })),
  });
  const cpu = cpuShares(child.pid, before, cpuTimes(child.pid));
  const stats = await (await fetch(`${url}/stats`)).json();
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGTERM');
  const exitCode = await exited;
  return {
    requestsPerSecond: r.requests.average, p50Ms: r.latency.p50, p99Ms: r.latency.p99,
    errors: r.errors + r.timeouts + r.non2xx, eventLoopDelayP99Ms: stats.eventLoopDelayMs.p99,
    predictor: stats.predictor, cleanExit: exitCode === 0, cpu,
  };
}

const runs = Object.fromEntries(bodyKinds.flatMap((b) => modes.map((mode) => [`${b} ${mode.name}`, []])));
for (let round = 1; round <= rounds; round++) {
  for (const bodyKind of bodyKinds) {
    for (const mode of modes) {
      const r = await measure(mode, bodyKind);
      runs[`${bodyKind} ${mode.name}`].push(r);
      console.error(`round ${round} ${bodyKind} ${mode.name}: ${r.requestsPerSecond.toFixed(0)} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, errors ${r.errors}, event-loop p99 ${r.eventLoopDelayP99Ms.toFixed(1)} ms`);
    }
  }
}
const summary = Object.fromEntries(Object.entries(runs).map(([key, rs]) => [key, {
  requestsPerSecond: median(rs.map((r) => r.requestsPerSecond)), p50Ms: median(rs.map((r) => r.p50Ms)), p99Ms: median(rs.map((r) => r.p99Ms)),
  errors: rs.reduce((a, r) => a + r.errors, 0), eventLoopDelayP99Ms: median(rs.map((r) => r.eventLoopDelayP99Ms)),
  cleanExits: rs.every((r) => r.cleanExit),
  cpu: rs[0].cpu ? Object.fromEntries(Object.keys(rs[0].cpu).map((k) => [k, median(rs.map((r) => r.cpu[k]))])) : null,
}]));
// The ratio within each round (each micro-batching mode against the round's per-request run), then the
// median over the rounds: this host's speed drifts by a third between rounds, which a ratio of the
// medians of different rounds would mix in.
const roundRatio = (b, over, under) => runs[`${b} ${over}`].map((r, i) => r.requestsPerSecond / runs[`${b} ${under}`][i].requestsPerSecond);
// Per body kind and micro-batching mode (one, unless --max-in-flight lists several).
const byMicroMode = (fn) => Object.fromEntries(bodyKinds.map((b) => [b, Object.fromEntries(microModes.map((m) => [m.name, fn(b, m.name)]))]));
const roundRatios = byMicroMode((b, m) => roundRatio(b, m, 'per-request'));
const ratios = byMicroMode((b, m) => median(roundRatios[b][m]));
// The share of the no-model rate that each mode reaches, and that rate over per-request.
const noModel = Object.fromEntries(bodyKinds.map((b) => [b, {
  overPerRequest: median(roundRatio(b, 'no model calls', 'per-request')),
  perRequestShare: median(roundRatio(b, 'per-request', 'no model calls')),
  microBatchingShare: Object.fromEntries(microModes.map((m) => [m.name, median(roundRatio(b, m.name, 'no model calls'))])),
}]));
const commit = currentCommit(), date = new Date().toISOString().slice(0, 10), cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const bodyNames = { json: 'JSON {"pixels": [784 numbers]}', 'json-parse': 'the same JSON, read by JSON.parse', binary: 'raw float32, 3136 bytes' };
const result = { date, commit, machine: { cpu, cores: os.cpus().length }, versions: { node: process.version, libtorch: buildInfo().libtorchVersion },
  settings: { connections, seconds, rounds, threads: values.threads, nodeFlags: values['node-flags'], maxDelayMs: Number(values['max-delay-ms']), maxInFlight: values['max-in-flight'] ? inFlight.map(Number) : null, model: modelName, bodies: bodyKinds.map((b) => bodyNames[b]) }, summary, ratios, roundRatios, noModel, runs };
mkdirSync(values.out, { recursive: true });
const base = path.join(values.out, `serve-${machineSlug()}-${date}-${commit}${values.model ? `-${slug(path.basename(modelFile, '.safetensors'))}` : ''}${values['max-in-flight'] ? `-in-flight-${inFlight.join('-')}` : ''}`);
writeFileSync(`${base}.json`, JSON.stringify(result, null, 2) + '\n');
const splitKey = (key) => [key.slice(0, key.indexOf(' ')), key.slice(key.indexOf(' ') + 1)];  // body kind, mode
const row = (key) => { const s = summary[key]; const [b, mode] = splitKey(key); return `| ${bodyNames[b]} | ${mode} | ${s.requestsPerSecond.toFixed(0)} | ${s.p50Ms} | ${s.p99Ms} | ${s.errors} | ${s.eventLoopDelayP99Ms.toFixed(1)} | ${s.cleanExits ? 'yes' : 'no'} |`; };
const md = [
  `# Service load test: ${cpu} (${os.cpus().length} cores), ${date}, commit ${commit}`, '',
  `examples/server/server.mjs serving ${modelName} on the CPU; autocannon on loopback (on the same machine), ${connections} connections for ${seconds} s per run, bodies of 256 MNIST test images; median of ${rounds} rounds, the modes alternating. Server: ${values.threads} compute thread(s), node flags '${values['node-flags']}', the same for every run; micro-batching with maxDelayMs ${values['max-delay-ms']} and ${values['max-in-flight'] ? `maxInFlight ${values['max-in-flight']}` : "the predictor's default maxInFlight"}. Command: \`${commandLine('bench:serve')}\`.`, '',
  '| body | mode | requests/s | p50 latency (ms) | p99 latency (ms) | errors (all rounds) | server event-loop delay p99 (ms) | clean shutdown |',
  '| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |',
  ...Object.keys(summary).map(row), '',
  ...bodyKinds.flatMap((b) => microModes.map(({ name: m }) => `With ${bodyNames[b]} bodies, ${m} serves ${ratios[b][m].toFixed(2)}× the requests/s of one native call per request (goal: >= 3×; the median of the rounds' own ratios, ${roundRatios[b][m].map((x) => `${x.toFixed(2)}×`).join(', ')}, each against the per-request run of the same round).`)), '',
  ...bodyKinds.map((b) => { const c = noModel[b]; return `No model calls (${bodyNames[b]}): the server answering without calling the model serves ${c.overPerRequest.toFixed(2)}× the requests/s of one native call per request, the rate of its HTTP path alone; ${microModes.map(({ name: m }) => `${m} reaches ${(100 * c.microBatchingShare[m]).toFixed(0)}% of it`).join(', ')}, one call per request ${(100 * c.perRequestShare).toFixed(0)}% (medians of the rounds).`; }), '',
  ...(Object.values(summary)[0].cpu ? [
    'Where the CPU went (median over the rounds; 100% is one core): the server\'s JS thread (and its time per request served), its compute thread, the load generator, and the idle share of the whole machine.', '',
    '| body | mode | server JS thread | JS thread per request (µs) | compute thread | load generator | machine idle |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...Object.entries(summary).map(([key, x]) => { const [b, mode] = splitKey(key); const pct = (v) => `${(100 * v).toFixed(0)}%`; return `| ${bodyNames[b]} | ${mode} | ${pct(x.cpu.serverJsThread)} | ${(1e6 * x.cpu.serverJsThread / x.requestsPerSecond).toFixed(0)} | ${pct(x.cpu.computeThread)} | ${pct(x.cpu.loadGenerator)} | ${pct(x.cpu.machineIdle)} |`; }),
    '',
  ] : []),
];
writeFileSync(`${base}.md`, md.join('\n'));
console.log(md.join('\n'));
