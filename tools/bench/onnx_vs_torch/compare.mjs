// Times ONNX graphs on onnxruntime-node with identical session options and summarises what they contain.
//
//   node tools/bench/onnx_vs_torch/compare.mjs [--threads 1] [--runs 10] [--warmup 3] [--profile]
//        [--out DIR] [GRAPH.onnx ...]
//
// Defaults: the PyTorch reference's tf_efficientdet_d0 @512 (export_torch_d0.py in this folder) and ours
// (`effdet export-onnx --model tf_efficientdet_d0 --input-size 512`), both in /tmp/torchref. For each graph:
// the input (name, layout) is read from the model; a random input of that shape is fed; after --warmup runs,
// --runs timed runs give the median / min / max (ms). --out DIR (default /tmp/torchref/ort) receives ORT's
// optimised graph of each model (session option optimizedModelFilePath), whose node counts per op type are
// printed next to the exported graph's. --profile also runs --runs more runs in a second session with
// enableProfiling and prints the kernel time per op type and per part of the network (ms per run: each
// node's median over the runs, summed) from ORT's profile.
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = resolve(here, '../../..');
const require = createRequire(join(root, 'package.json'));
const ort = require('onnxruntime-node');
const { decodeModel } = await import(join(root, 'packages/onnx/dist/index.js'));

function parseArgs(argv) {
  const o = { threads: 1, runs: 10, warmup: 3, profile: false, out: '/tmp/torchref/ort', graphs: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--threads') o.threads = Number(argv[++i]);
    else if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--warmup') o.warmup = Number(argv[++i]);
    else if (a === '--out') o.out = argv[++i];
    else if (a === '--profile') o.profile = true;
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else o.graphs.push(a);
  }
  if (!o.graphs.length) o.graphs = ['/tmp/torchref/torch_d0.onnx', '/tmp/torchref/ours_d0.onnx'];
  return o;
}

const opts = parseArgs(process.argv.slice(2));
mkdirSync(opts.out, { recursive: true });

const opKey = (n) =>
  (n.domain && n.domain !== 'ai.onnx' ? `${n.domain.replace(/^com\.microsoft/, 'ms')}:` : '') + n.op_type;

function countOps(model) {
  const c = new Map();
  for (const n of model.graph.node) c.set(opKey(n), (c.get(opKey(n)) ?? 0) + 1);
  return c;
}

/** Conv-like nodes of an ORT-optimised graph and how many carry a fused activation. */
function fusedConvs(model) {
  const acts = new Map();
  let convs = 0;
  for (const n of model.graph.node) {
    if (!/Conv$/.test(n.op_type)) continue;
    convs++;
    const a = n.attribute.find((x) => x.name === 'activation');
    const k = a?.s ? Buffer.from(a.s).toString() : 'none';
    acts.set(k, (acts.get(k) ?? 0) + 1);
  }
  return { convs, acts: Object.fromEntries(acts) };
}

function table(title, cols) {
  // cols: [{name, map: Map<string, number>}]
  const keys = [...new Set(cols.flatMap((c) => [...c.map.keys()]))];
  keys.sort(
    (a, b) =>
      Math.max(...cols.map((c) => c.map.get(b) ?? 0)) - Math.max(...cols.map((c) => c.map.get(a) ?? 0)),
  );
  const fmt = (v) => (v === undefined ? '' : Number.isInteger(v) ? String(v) : v.toFixed(2));
  console.log(
    `\n${title}\n| op | ${cols.map((c) => c.name).join(' | ')} |\n|---|${cols.map(() => '---:').join('|')}|`,
  );
  for (const k of keys) console.log(`| ${k} | ${cols.map((c) => fmt(c.map.get(k))).join(' | ')} |`);
  console.log(
    `| **total** | ${cols.map((c) => fmt([...c.map.values()].reduce((s, v) => s + v, 0))).join(' | ')} |`,
  );
}

function randomInput(info) {
  const dims = info.type.tensor_type.shape.dim.map((d) => d.dim_value ?? 1);
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  let s = 12345;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = (s / 2 ** 32) * 2 - 1;
  }
  return new ort.Tensor('float32', data, dims);
}

function baseOptions(threads) {
  return {
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function timeRuns(session, feeds, warmup, runs) {
  for (let i = 0; i < warmup; i++) await session.run(feeds);
  const ts = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return ts;
}

/** Which part of EfficientDet a node of either exporter belongs to (from its name). */
function region(node) {
  const n = node.replace(/\//g, '.');
  if (/^Reorder/.test(n)) return 'NCHWc reorders';
  if (/\.se\./.test(n)) return 'backbone squeeze-excite';
  if (/^\.?backbone/.test(n)) return 'backbone (rest)';
  if (/after_combine/.test(n)) return 'fpn after_combine (SiLU + sep conv)';
  if (/combine\.resample|fpn\.resample/.test(n)) return 'fpn resample (1x1 conv, up/down)';
  if (/combine/.test(n)) return 'fpn weighted combine';
  if (/predict/.test(n)) return 'heads predict';
  if (/class_net|box_net/.test(n)) return 'heads (rest)';
  if (/^(MatMul|Concat|Transpose|Identity)_node|^class|^box/.test(n)) return 'heads predict';
  return 'other';
}

/**
 * Kernel time per op type and per region (ms per run) from an ORT profile (chrome trace JSON): the median over
 * the runs of each node's kernel time, summed (robust to the other jobs preempting single kernels).
 */
function summariseProfile(file) {
  const events = JSON.parse(readFileSync(file, 'utf8'));
  const perNode = new Map();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const key = e.name.slice(0, -'_kernel_time'.length);
    const r = perNode.get(key) ?? { op: e.args?.op_name ?? '?', durs: [] };
    r.durs.push(e.dur / 1000);
    perNode.set(key, r);
  }
  const byOp = new Map();
  const byRegion = new Map();
  let total = 0;
  for (const [key, r] of perNode) {
    const m = median(r.durs);
    byOp.set(r.op, (byOp.get(r.op) ?? 0) + m);
    const g = region(key);
    byRegion.set(g, (byRegion.get(g) ?? 0) + m);
    total += m;
  }
  return { byOp, byRegion, total, nodes: perNode.size };
}

// Sessions for all graphs first, then warm-up, then the timed runs interleaved (A B A B ...), so that load from
// other processes on a shared machine falls on every graph alike.
const results = [];
const sessions = [];
for (const path of opts.graphs) {
  const bytes = readFileSync(path);
  const model = decodeModel(bytes);
  const inputs = model.graph.input.filter((i) => !model.graph.initializer.some((t) => t.name === i.name));
  const name = basename(path, '.onnx');
  const optPath = join(opts.out, `${name}.ort_optimized.onnx`);
  const session = await ort.InferenceSession.create(bytes, {
    ...baseOptions(opts.threads),
    optimizedModelFilePath: optPath,
  });
  const feeds = Object.fromEntries(inputs.map((i) => [i.name, randomInput(i)]));
  const shapes = inputs.map(
    (i) => `${i.name}[${i.type.tensor_type.shape.dim.map((d) => d.dim_value ?? d.dim_param)}]`,
  );
  console.log(
    `${name}: inputs ${shapes.join(', ')} (session: ${session.inputNames.join(',')}); outputs ${session.outputNames.length}`,
  );
  const optimized = decodeModel(readFileSync(optPath));
  results.push({
    name,
    bytes,
    feeds,
    ts: [],
    ops: countOps(model),
    optOps: countOps(optimized),
    fused: fusedConvs(optimized),
  });
  sessions.push(session);
}
for (let i = 0; i < results.length; i++) await timeRuns(sessions[i], results[i].feeds, opts.warmup, 0);
for (let k = 0; k < opts.runs; k++) {
  for (let i = 0; i < results.length; i++)
    results[i].ts.push(...(await timeRuns(sessions[i], results[i].feeds, 0, 1)));
}
for (const s of sessions) await s.release?.();

if (opts.profile) {
  for (const r of results) {
    const prefix = join(opts.out, `${r.name}.profile`);
    const before = new Set(readdirSync(opts.out));
    const ps = await ort.InferenceSession.create(r.bytes, {
      ...baseOptions(opts.threads),
      enableProfiling: true,
      profileFilePrefix: prefix,
    });
    r.profiledTs = await timeRuns(ps, r.feeds, 0, opts.warmup + opts.runs);
    ps.endProfiling();
    await ps.release?.();
    const files = readdirSync(opts.out)
      .filter((f) => !before.has(f) && f.startsWith(`${r.name}.profile`))
      .map((f) => join(opts.out, f))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    if (files.length) {
      r.profile = summariseProfile(files[0]);
      r.profileFile = files[0];
    }
  }
}

console.log(
  `\nonnxruntime-node ${require('onnxruntime-node/package.json').version}, intraOpNumThreads=${opts.threads}, ` +
    `graphOptimizationLevel=all, ${opts.warmup} warm-up + ${opts.runs} timed runs (interleaved)`,
);
console.log('| graph | median ms | min | max |\n|---|---:|---:|---:|');
for (const r of results) {
  console.log(
    `| ${r.name} | ${median(r.ts).toFixed(1)} | ${Math.min(...r.ts).toFixed(1)} | ${Math.max(...r.ts).toFixed(1)} |`,
  );
}
table(
  'Exported graph: nodes per op type',
  results.map((r) => ({ name: r.name, map: r.ops })),
);
table(
  'ORT-optimised graph (level all): nodes per op type',
  results.map((r) => ({ name: r.name, map: r.optOps })),
);
for (const r of results)
  console.log(
    `${r.name}: optimised Conv nodes ${r.fused.convs}, activation attribute: ${JSON.stringify(r.fused.acts)}`,
  );
if (opts.profile) {
  const ps = results.filter((r) => r.profile);
  const ms = (r) => `${r.name} (${median(r.profiledTs).toFixed(1)} ms/run profiled)`;
  table(
    'Kernel time per op type (ms/run: per-node median over the profiled runs, summed)',
    ps.map((r) => ({ name: ms(r), map: r.profile.byOp })),
  );
  table(
    'Kernel time per region (ms/run, same)',
    ps.map((r) => ({ name: r.name, map: r.profile.byRegion })),
  );
  for (const r of ps) console.log(`${r.name}: profile ${r.profileFile}, ${r.profile.nodes} kernels`);
}
