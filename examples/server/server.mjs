// A small HTTP service around a saved torch-moe model (node:http, no framework):
//   POST /predict   a JSON body {"pixels": [inputSize numbers]}, the same pixels as raw float32
//                   (Content-Type: application/octet-stream, 4*inputSize bytes, little-endian: no parsing
//                   at all, for clients that care about throughput) or a PNG image (Content-Type:
//                   image/png, as many pixels as inputSize, e.g. 28x28 for MNIST): class probabilities,
//                   the prediction and, for an MoE, the experts the input went to with their weights
//   GET  /healthz   200 while serving, 503 while shutting down
//   GET  /stats     requests, errors, micro-batching counters, event-loop delay (perf_hooks)
// The model is loaded once; concurrent requests are merged into batches by model.createPredictor()
// (--no-batching: one native call per request). SIGTERM/SIGINT: stop accepting, let in-flight requests
// finish, then dispose the model and exit 0. --no-model-calls answers every request with uniform
// probabilities without calling the model: what the HTTP path alone can serve, the load test's reference
// rate (bench/serve.mjs).
//
//   node --max-semi-space-size=32 examples/server/server.mjs --model mnist-moe.safetensors [--port 8080]
//     [--no-batching] [--max-batch 64] [--max-delay-ms 0] [--max-in-flight n] [--threads n] [--json-parse]
//     [--no-model-calls]
// (--max-semi-space-size: a larger young generation for the garbage each JSON request leaves; about 17%
// more requests/s in bench/serve.mjs)
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { PNG } from 'pngjs';
import { loadModel, setNumThreads } from '../../dist/lib/index.js';
import { readPixelsFast } from './pixels.mjs';

const { values, tokens } = parseArgs({
  tokens: true,
  options: {
    model: { type: 'string' },
    port: { type: 'string', default: '8080' },
    host: { type: 'string', default: '127.0.0.1' },
    'no-batching': { type: 'boolean', default: false },
    'max-batch': { type: 'string', default: '64' },
    'max-delay-ms': { type: 'string', default: '0' },  // 0: what one event-loop turn read goes as one batch
    'max-in-flight': { type: 'string' },  // batches running at once (the predictor's default if not given)
    threads: { type: 'string' },  // intra-op threads of the compute thread (default: the machine's cores)
    'json-parse': { type: 'boolean', default: false },  // read every JSON body with JSON.parse (bench/serve.mjs compares)
    'no-model-calls': { type: 'boolean', default: false },  // uniform answers, no model call (bench/serve.mjs's reference)
  },
});
function usageError(message) {
  console.error(`${message}\nusage: node examples/server/server.mjs --model <file.safetensors> [--port 8080] [--host 127.0.0.1]\n` +
    '  [--no-batching | --no-model-calls] [--max-batch 64] [--max-delay-ms 0] [--max-in-flight n] [--threads n] [--json-parse]');
  process.exit(2);
}
if (!values.model) usageError('--model is required');
// The predictor's options shape micro-batching only: given with a mode that has no predictor, they would
// be ignored silently.
const given = new Set(tokens.filter((t) => t.kind === 'option').map((t) => t.name));
const unbatched = ['no-batching', 'no-model-calls'].find((f) => values[f]);
const batchingFlag = ['max-batch', 'max-delay-ms', 'max-in-flight'].find((f) => given.has(f));
if (unbatched && batchingFlag) usageError(`--${batchingFlag} applies to micro-batching; it cannot be combined with --${unbatched}`);

const MAX_BODY = 1 << 20;
const littleEndian = new Uint8Array(new Float32Array([1]).buffer)[3] === 0x3f;
// The library checks the numbers (a RangeError that names the option): a usage error here, not a stack.
if (values.threads) {
  try {
    setNumThreads(Number(values.threads));
  } catch (err) {
    usageError(`--threads: ${err.message}`);
  }
}
const model = await loadModel(values.model);
const moe = model.config.kind === 'moe';
const modelCalls = !values['no-model-calls'];
const batching = modelCalls && !values['no-batching'];
let predictor;
try {
  predictor = batching ? model.createPredictor({ maxBatch: Number(values['max-batch']), maxDelayMs: Number(values['max-delay-ms']),
    ...(values['max-in-flight'] ? { maxInFlight: Number(values['max-in-flight']) } : {}), routing: moe }) : undefined;
} catch (err) {
  usageError(`--max-batch, --max-delay-ms or --max-in-flight: ${err.message}`);
}
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
const counters = { requests: 0, ok: 0, badRequests: 0, errors: 0 };
let shuttingDown = false;

class BadRequest extends Error {}

/** The request body's pixels: JSON {"pixels": [...]}, raw float32 or a PNG, as inputSize floats. */
function pixelsOf(type, body) {
  const size = model.config.inputSize;
  if (type.startsWith('application/octet-stream')) {
    if (body.length !== 4 * size) throw new BadRequest(`expected ${4 * size} bytes (${size} float32 values, little-endian), got ${body.length}`);
    const out = new Float32Array(size);  // a copy: the body's bytes need not be 4-byte aligned
    if (littleEndian) new Uint8Array(out.buffer).set(body);
    else for (let i = 0; i < size; i++) out[i] = body.readFloatLE(4 * i);
    return out;  // (non-finite values: refused in predict() below)
  }
  if (type.startsWith('image/png')) {
    let png;
    try {
      png = PNG.sync.read(body);
    } catch (err) {
      throw new BadRequest(`not a readable PNG: ${err.message}`);
    }
    if (png.width * png.height !== size) throw new BadRequest(`the image has ${png.width}x${png.height} pixels; the model takes ${size}`);
    const out = new Float32Array(size);
    // PNG.sync.read gives RGBA: luminance of the colour, scaled to [0, 1]
    for (let i = 0; i < size; i++) out[i] = (0.299 * png.data[4 * i] + 0.587 * png.data[4 * i + 1] + 0.114 * png.data[4 * i + 2]) / 255;
    return out;
  }
  const fast = values['json-parse'] ? undefined : readPixelsFast(body, size);  // the usual body, without JSON.parse
  if (fast) return fast;
  let json;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new BadRequest('the body is not JSON: send {"pixels": [numbers]} or a PNG with Content-Type image/png');
  }
  const pixels = json?.pixels;
  if (!Array.isArray(pixels)) throw new BadRequest('expected {"pixels": [numbers]}');
  if (pixels.length !== size) throw new BadRequest(`expected ${size} pixels, got ${pixels.length}`);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    // (a number that is not finite, such as 1e999, is refused with every body's in predict() below)
    if (typeof pixels[i] !== 'number') throw new BadRequest(`pixels[${i}] is not a finite number: ${JSON.stringify(pixels[i])}`);
    out[i] = pixels[i];
  }
  return out;
}

// What --no-model-calls answers: the shapes of a real answer, every class equally likely.
const uniform = (() => {
  const { numClasses, topK = 1 } = model.config;
  const routing = { experts: Array.from({ length: topK }, (_, i) => i), weights: new Array(topK).fill(1 / topK) };
  return { probabilities: new Float32Array(numClasses).fill(1 / numClasses), ...(moe ? { routing } : {}) };
})();

async function predict(pixels) {
  // Checked here, in one wording for every mode and body (the library would refuse them too, in words
  // that differ between predict and the predictor, and the no-model mode does not call it).
  for (let i = 0; i < pixels.length; i++) {
    if (!Number.isFinite(pixels[i])) throw new BadRequest(`pixels[${i}] is not a finite number: ${pixels[i]}`);
  }
  if (!modelCalls) return uniform;
  if (predictor) return predictor.predict(pixels);
  if (!moe) return { probabilities: await model.predict(pixels, { batchSize: 1 }) };
  const p = await model.predict(pixels, { batchSize: 1, routing: true });
  return { probabilities: p.probabilities, routing: p.routing[0] };
}

function send(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(shuttingDown ? { connection: 'close' } : {}) });
  res.end(body);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) reject(new BadRequest(`the body is larger than ${MAX_BODY} bytes`));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const server = http.createServer(async (req, res) => {
  counters.requests++;
  try {
    if (req.method === 'GET' && req.url === '/healthz') return send(res, shuttingDown ? 503 : 200, { ok: !shuttingDown, kind: model.config.kind, device: model.device, batching });
    if (req.method === 'GET' && req.url === '/stats') {
      const ms = (ns) => ns / 1e6;
      return send(res, 200, { ...counters, batching, predictor: predictor?.stats ?? null,
        eventLoopDelayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) } });
    }
    if (req.url !== '/predict') return send(res, 404, { error: `no route ${req.method} ${req.url}` });
    if (req.method !== 'POST') return send(res, 405, { error: 'use POST /predict' });
    const pixels = pixelsOf(req.headers['content-type'] ?? 'application/json', await readBody(req));
    const p = await predict(pixels);
    const probabilities = Array.from(p.probabilities);
    counters.ok++;
    return send(res, 200, { prediction: probabilities.indexOf(Math.max(...probabilities)), probabilities, ...(p.routing ? { routing: p.routing } : {}) });
  } catch (err) {
    const bad = err instanceof BadRequest || err instanceof RangeError || err instanceof TypeError;
    if (bad) counters.badRequests++;
    else counters.errors++;
    return send(res, bad ? 400 : 500, { error: err.message });
  }
});

server.listen(Number(values.port), values.host, () => {
  const { port } = server.address();
  const mode = !modelCalls ? 'no model calls' : batching ? 'micro-batching' : 'one native call per request';
  console.log(`listening on http://${values.host}:${port} (${model.config.kind} model, ${mode})`);
});

async function shutdown(signal) {
  if (shuttingDown) return;
  shuttingDown = true;
  console.log(`${signal}: finishing in-flight requests`);
  server.close(async () => {
    await predictor?.close();
    model.dispose();
    console.log('stopped');
    process.exit(0);
  });
  server.closeIdleConnections();
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
