/**
 * `effdet export-onnx` (any detector, EfficientNet or segmentation model to a self-contained ONNX file, verified
 * on onnxruntime against the TF.js forward pass it was traced from), `effdet bench-onnx` (end-to-end latency on
 * onnxruntime vs TF.js wasm / cpu), and the onnxruntime variants of `parity` and `validate`.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import {
  Anchors,
  type EfficientDet,
  listEfficientDetModels,
  matchDetections,
  normalizeImage,
  postProcessArrays,
} from '@effdet/effdet';
import { createDetector } from '@effdet/effdet/node';
import { listModels } from '@effdet/efficientnet';
import { loadModel } from '@effdet/efficientnet/node';
import type { Module } from '@effdet/layers';
import {
  checkOnnxModel,
  type ExportOnnxOptions,
  exportInputInfo,
  exportOnnx,
  GraphBuilder,
  type OnnxExport,
  type OrtModule,
  ortSessionOptions,
} from '@effdet/onnx';
import { createOnnxDetector, loadOrt } from '@effdet/onnx/node';
import { toFloat32 } from '@effdet/weights';
import { readSafetensorsFile } from '@effdet/weights/node';
import * as tf from '@tensorflow/tfjs-core';
import { type BackendChoice, useBackend } from './backend.js';
import { bench } from './bench.js';
import { type DiffRow, diffArrays } from './compare.js';
import { defaultWeightsPath, type ParityOptions, type ParityReport } from './parity.js';

export const EXPORT_ONNX_USAGE = `  export-onnx --model M --out FILE.onnx  [--weights W] [--with-postprocess] [--with-preprocess] [--fp16]
                             [--dynamic-batch] [--batch N] [--opset 17] [--input-size N|HxW] [--num-classes N]
                             [--task classifier|features] [--candidates] [--no-image-info] [--no-verify] [--json]:
                             a detector, an EfficientNet or a segmentation model (unet:tu-..., deeplabv3plus:tu-...)
                             as one .onnx file (weights inside, BatchNorm folded); checked with the structural
                             checker and run on onnxruntime-node against the TF.js forward pass (--no-verify skips)
  bench-onnx --model M       [--size S] [--runs 10] [--weights W] [--threads 1,2] [--spin on,off] [--tfjs wasm,cpu]
                             [--tfjs-runs N] [--json]: end-to-end latency (letterbox + network + post-processing) on
                             onnxruntime with the in-graph post-processing, the bare network on onnxruntime, and
                             TF.js; --spin: idle-thread spinning of the multi-thread rows (default on)
`;

export interface CliIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

const defaultIO: CliIO = { stdout: process.stdout, stderr: process.stderr };

function positiveInt(v: string | undefined, name: string, cmd: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0)
    throw new Error(`effdet ${cmd}: --${name} must be a positive integer, got '${v}'`);
  return n;
}

function sizeOf(v: string | undefined, cmd: string): [number, number] | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)(?:x(\d+))?$/.exec(v);
  if (!m) throw new Error(`effdet ${cmd}: --input-size must be N or HxW (height x width), got '${v}'`);
  const h = Number(m[1]);
  return [h, m[2] ? Number(m[2]) : h];
}

/** A model of any kind this package builds, by name or spec. */
async function loadAnyModel(
  name: string,
  o: {
    weights?: string;
    numClasses?: number;
    inputSize?: [number, number];
    task?: 'classifier' | 'features';
  },
): Promise<{ model: Module; kind: 'detector' | 'efficientnet' | 'segmentation'; dispose: () => void }> {
  if (listEfficientDetModels().includes(name)) {
    const det = await createDetector(name, {
      weights: o.weights,
      numClasses: o.numClasses,
      imageSize: o.inputSize,
    });
    return { model: det.model, kind: 'detector', dispose: () => det.dispose() };
  }
  if (listModels().includes(name)) {
    const m = await loadModel(name, {
      weights: o.weights,
      ...(o.numClasses !== undefined ? { numClasses: o.numClasses } : {}),
      ...(o.task === 'features' ? { featuresOnly: true } : {}),
    });
    return { model: m, kind: 'efficientnet', dispose: () => m.dispose() };
  }
  if (name.includes(':') || name.endsWith('.json')) {
    const { loadSegmentationModel } = await import('@effdet/segmentation/node');
    const m = await loadSegmentationModel(name, { weights: o.weights, classes: o.numClasses });
    return { model: m as unknown as Module, kind: 'segmentation', dispose: () => m.dispose() };
  }
  throw new Error(
    `effdet export-onnx: unknown model '${name}': a detector or backbone from 'effdet list-models', or a segmentation spec (unet:tu-tf_efficientnet_b0)`,
  );
}

export interface VerifyReport {
  /** Per output: max |ORT - TF.js| relative to max(1, max|TF.js|), or rows matched for detections. */
  rows: DiffRow[];
  pass: boolean;
}

function ortArray(
  ort: OrtModule,
  type: 'float32' | 'uint8',
  data: ArrayLike<number>,
): Float32Array | Uint8Array {
  const Ctor = (new ort.Tensor(type, [0], [1]).data as object).constructor as new (
    n: number,
  ) => Float32Array | Uint8Array;
  const a = new Ctor(data.length);
  a.set(data);
  return a;
}

/**
 * Runs an export on onnxruntime with the input it was traced on and compares with the TF.js outputs of that pass:
 * network outputs element-wise (rtol 1e-3 relative to max(1, max|ref|)); detections against the TypeScript
 * post-processing of the TF.js head outputs (98 of 100 rows per image).
 */
export async function verifyOnnxExport(
  ex: OnnxExport,
  sample: { normalized: tf.Tensor4D; pixels?: tf.Tensor4D },
  ort: OrtModule,
  detector?: EfficientDet,
  /** float16 weights: compare within float16 rounding (rtol 2e-2, rows IoU >= 0.9, scores within 0.02, 90%). */
  fp16 = false,
): Promise<VerifyReport> {
  const rtol = fp16 ? 2e-2 : 1e-3;
  const match = fp16 ? { minIou: 0.9, scoreTolerance: 0.02 } : {};
  const minShare = fp16 ? 0.9 : 0.98;
  const session = await ort.InferenceSession.create(ex.bytes, { graphOptimizationLevel: 'all' });
  const rows: DiffRow[] = [];
  try {
    const [b, h, w] = sample.normalized.shape;
    const feeds: Record<string, unknown> = {};
    if (ex.inputs.some((i) => i.name === 'image')) {
      feeds.image = new ort.Tensor(
        'uint8',
        ortArray(ort, 'uint8', (sample.pixels as tf.Tensor4D).dataSync()),
        [b, h, w, 3],
      );
    } else {
      feeds.input = new ort.Tensor(
        'float32',
        ortArray(ort, 'float32', sample.normalized.dataSync()),
        sample.normalized.shape,
      );
    }
    const imageInfo = ex.inputs.some((i) => i.name === 'img_scale');
    if (imageInfo) {
      feeds.img_scale = new ort.Tensor('float32', ortArray(ort, 'float32', new Array(b).fill(1)), [b]);
      feeds.img_size = new ort.Tensor('float32', ortArray(ort, 'float32', new Array(b).fill([w, h]).flat()), [
        b,
        2,
      ]);
    }
    const out = await session.run(feeds as Record<string, never>);
    const ref = ex.reference ?? {};
    for (const [name, r] of Object.entries(ref)) {
      const got = out[name];
      if (!got) continue;
      rows.push(diffArrays(name, r.shape, got.data as Float32Array, r.data, rtol));
    }
    if (out.detections && detector) {
      const c = detector.config;
      const nl = c.maxLevel - c.minLevel + 1;
      const anchors = Anchors.fromConfig(c);
      const cls = Array.from({ length: nl }, (_, l) =>
        tf.tensor4d(ref[`class.${l}`].data, ref[`class.${l}`].shape as [number, number, number, number]),
      );
      const box = Array.from({ length: nl }, (_, l) =>
        tf.tensor4d(ref[`box.${l}`].data, ref[`box.${l}`].shape as [number, number, number, number]),
      );
      try {
        const expected = await postProcessArrays(cls, box, anchors, {
          numClasses: c.numClasses,
          maxDetections: out.detections.dims[1],
          ...(imageInfo ? { imgScale: new Array(b).fill(1), imgSize: new Array(b).fill([w, h]) } : {}),
        });
        const got = out.detections.data as Float32Array;
        const per = got.length / b;
        const matched = expected.map(
          (e, i) => matchDetections(got.subarray(i * per, (i + 1) * per), e, match).matched,
        );
        const rowsPer = out.detections.dims[1];
        rows.push({
          name: 'detections',
          shape: [...out.detections.dims],
          maxAbs: 0,
          maxRel: 0,
          pass: matched.every((m) => m >= Math.ceil(minShare * rowsPer)),
          note: `rows matched the TypeScript post-processing: ${matched.map((m) => `${m}/${rowsPer}`).join(', ')}`,
        });
      } finally {
        tf.dispose([...cls, ...box]);
        anchors.dispose();
      }
    }
  } finally {
    await session.release();
  }
  return { rows, pass: rows.length > 0 && rows.every((r) => r.pass) };
}

/** `effdet export-onnx ...`; `argv` may start with the command name. */
export async function runExportOnnx(argv: string[], io: CliIO = defaultIO): Promise<number> {
  const cmd = 'export-onnx';
  const args = argv[0] === cmd ? argv.slice(1) : argv;
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string', short: 'm' },
      weights: { type: 'string', short: 'w' },
      out: { type: 'string', short: 'o' },
      'with-postprocess': { type: 'boolean' },
      'with-preprocess': { type: 'boolean' },
      fp16: { type: 'boolean' },
      'dynamic-batch': { type: 'boolean' },
      batch: { type: 'string' },
      opset: { type: 'string' },
      'input-size': { type: 'string' },
      'num-classes': { type: 'string' },
      task: { type: 'string' },
      candidates: { type: 'boolean' },
      'no-image-info': { type: 'boolean' },
      'no-verify': { type: 'boolean' },
      json: { type: 'boolean' },
      backend: { type: 'string', default: 'wasm' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(`effdet export-onnx [options]\n\n${EXPORT_ONNX_USAGE}`);
    return 0;
  }
  if (!values.model) throw new Error(`effdet ${cmd}: --model is required`);
  if (!values.out) throw new Error(`effdet ${cmd}: --out FILE.onnx is required`);
  const task = values.task as 'classifier' | 'features' | undefined;
  if (task !== undefined && task !== 'classifier' && task !== 'features') {
    throw new Error(`effdet ${cmd}: --task must be classifier or features, got '${task}'`);
  }
  const opset = values.opset === undefined ? 17 : Number(values.opset);
  const inputSize = sizeOf(values['input-size'], cmd);
  const numClasses = positiveInt(values['num-classes'], 'num-classes', cmd);
  const batch = positiveInt(values.batch, 'batch', cmd);
  await useBackend(values.backend as BackendChoice);
  const { model, kind, dispose } = await loadAnyModel(values.model, {
    weights: values.weights,
    numClasses,
    inputSize,
    task,
  });
  if (!values.weights) io.stderr.write('note: no --weights given: the network has random weights\n');
  try {
    if (values['with-postprocess'] && kind !== 'detector') {
      throw new Error(
        `effdet ${cmd}: --with-postprocess needs a detector, ${values.model} is a ${kind} model`,
      );
    }
    const options: ExportOnnxOptions = {
      opset,
      dynamicBatch: values['dynamic-batch'] === true,
      batch,
      inputSize: kind === 'detector' ? undefined : inputSize,
      withPreprocess: values['with-preprocess'] === true,
      withPostprocess: values['with-postprocess']
        ? { candidates: values.candidates === true, imageInfo: !values['no-image-info'] }
        : false,
      fp16: values.fp16 === true,
      task,
    };
    // Trace on a random image so that the verification compares meaningful values.
    const det = kind === 'detector' ? (model as EfficientDet) : undefined;
    const info = exportInputInfo(model, options);
    const [h, w] = info.inputSize;
    const ch = info.inChannels;
    const traceBatch = options.dynamicBatch ? 2 : (batch ?? 1);
    const pixels = tf.randomUniform([traceBatch, h, w, ch], 0, 256, 'int32', 1) as tf.Tensor4D;
    const normalized = tf.tidy(() =>
      info.mean && info.std && ch === 3
        ? normalizeImage(pixels, info.mean, info.std)
        : tf.div(tf.sub(tf.cast(pixels, 'float32'), 127.5), 127.5),
    ) as tf.Tensor4D;
    let ex: OnnxExport;
    let verify: VerifyReport | null = null;
    try {
      ex = exportOnnx(model, { ...options, sampleInput: normalized, returnReference: !values['no-verify'] });
      const check = checkOnnxModel(ex.bytes);
      if (!check.ok)
        throw new Error(
          `effdet ${cmd}: the exported graph fails the structural checker:\n  ${check.errors.join('\n  ')}`,
        );
      if (!values['no-verify'])
        verify = await verifyOnnxExport(ex, { normalized, pixels }, await loadOrt(), det, options.fp16);
    } finally {
      tf.dispose([pixels, normalized]);
    }
    await writeFile(values.out, ex.bytes);
    const summary = {
      out: values.out,
      model: values.model,
      bytes: ex.bytes.length,
      inputs: ex.inputs,
      outputs: ex.outputs,
      nodes: ex.stats.nodes,
      weights: ex.stats.weights,
      opset,
      verify,
    };
    if (values.json) io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    else {
      const dims = (s: (number | string)[]) => `[${s.join(', ')}]`;
      io.stdout.write(
        [
          `${values.out}: ${values.model} (${(ex.bytes.length / 2 ** 20).toFixed(1)} MiB, ${ex.stats.nodes} nodes, ${ex.stats.weights.toLocaleString('en-US')} weights, opset ${opset})`,
          `  inputs:  ${ex.inputs.map((i) => `${i.name} ${i.dtype} ${dims(i.shape)}`).join(', ')}`,
          `  outputs: ${ex.outputs.map((o) => `${o.name} ${o.dtype} ${dims(o.shape)}`).join(', ')}`,
          '  structural check: ok',
          verify
            ? `  onnxruntime vs TF.js: ${verify.pass ? 'PASS' : 'FAIL'} (${verify.rows.map((r) => (r.note ? `${r.name}: ${r.note}` : `${r.name} ${r.maxRel.toExponential(1)}`)).join('; ')})`
            : '  onnxruntime check skipped (--no-verify)',
          '',
        ].join('\n'),
      );
    }
    return verify && !verify.pass ? 1 : 0;
  } finally {
    dispose();
  }
}

// -------------------------------------------------------------------------------------------------------------
// Benchmark

export interface OnnxBenchOptions {
  model: string;
  size?: number;
  weights?: string;
  runs?: number;
  /** onnxruntime intra-op thread counts to measure (default [1, 2]). */
  threads?: number[];
  /**
   * Spinning of idle intra-op threads for the multi-thread rows (`session.intra_op.allow_spinning`): each
   * setting is a row (default [true], onnxruntime's default).
   */
  spinning?: boolean[];
  /** TF.js backends to measure in the same run (default ['wasm', 'cpu']). */
  tfjs?: BackendChoice[];
  /** Runs for TF.js (default: `runs`; the cpu backend takes ~20 s per D0 run). */
  tfjsRuns?: number;
  /** Source image `[width, height]` (default 640x480, as `effdet bench`). */
  imageSize?: [number, number];
}

interface Stats {
  median: number;
  min: number;
  max: number;
}

export interface OnnxBenchRow {
  runtime: string;
  /** Letterbox (+ normalise for TF.js). */
  preprocess: Stats;
  /** Network (onnx: session.run of the whole graph, post-processing included). */
  network: Stats;
  postprocess: Stats;
  total: Stats;
  /** The bare network on onnxruntime (no pre/post-processing in the graph), for the 1.3x target. */
  bareNetwork?: Stats;
}

export interface OnnxBenchResult {
  model: string;
  inputSize: [number, number];
  rows: OnnxBenchRow[];
  loadAvg: number[];
  /**
   * Machine state: the float32 GFLOP/s onnxruntime reaches on one thread on a 1x1 convolution (256 -> 256
   * channels, 128x128), measured right before the runs (best of 5).
   */
  gemmGflops: number;
}

/** GFLOP/s of onnxruntime (1 thread) on a 1x1 convolution: how much CPU the benchmark actually gets. */
async function calibrate(ort: OrtModule): Promise<number> {
  const g = new GraphBuilder(17);
  g.addInput('x', 'float32', [1, 256, 128, 128]);
  const w = new Float32Array(256 * 256).map((_, i) => ((i * 7919) % 100) / 1000 - 0.05);
  const wn = g.constant({ dtype: 'float32', dims: [256, 256, 1, 1], data: w });
  g.addOutput('y', g.op('Conv', ['x', wn], { kernel_shape: { ints: [1, 1] } }), [1, 256, 128, 128]);
  const s = await ort.InferenceSession.create(g.encode({ graphName: 'gemm', producerVersion: '0' }), {
    intraOpNumThreads: 1,
  });
  try {
    const x = new ort.Tensor(
      'float32',
      ortArray(ort, 'float32', new Float32Array(256 * 128 * 128).fill(0.5)),
      [1, 256, 128, 128],
    );
    await s.run({ x });
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await s.run({ x });
      best = Math.min(best, performance.now() - t0);
    }
    return (2 * 256 * 256 * 128 * 128) / best / 1e6;
  } finally {
    await s.release();
  }
}

function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, min: s[0], max: s[s.length - 1] };
}

/** End-to-end latency of one detector on onnxruntime (per thread count) and on TF.js backends, in one process. */
export async function benchOnnx(o: OnnxBenchOptions): Promise<OnnxBenchResult> {
  const { loadavg } = await import('node:os');
  const ort = await loadOrt();
  const runs = o.runs ?? 10;
  const imageSize = o.size ? ([o.size, o.size] as [number, number]) : undefined;
  const [sw, sh] = o.imageSize ?? [640, 480];
  const rgb = { data: new Uint8Array(sw * sh * 3), width: sw, height: sh };
  let seed = 1;
  for (let i = 0; i < rgb.data.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    rgb.data[i] = seed >>> 24;
  }
  await useBackend('wasm');
  const gemmGflops = await calibrate(ort);
  const rows: OnnxBenchRow[] = [];
  // Export once (full detector graph and bare network) with the wasm backend.
  const det = await createDetector(o.model, { weights: o.weights, imageSize });
  const full = exportOnnx(det.model, {
    dynamicBatch: true,
    withPreprocess: true,
    withPostprocess: { candidates: true },
  }).bytes;
  const bare = exportOnnx(det.model, {}).bytes;
  const [h, w] = det.model.config.imageSize;
  det.dispose();
  const settings = (o.threads ?? [1, 2]).flatMap((threads): { threads: number; spinning?: boolean }[] =>
    threads > 1 ? (o.spinning ?? [true]).map((spinning) => ({ threads, spinning })) : [{ threads }],
  );
  for (const { threads, spinning } of settings) {
    const sessionOptions = { intraOpNumThreads: threads, ...(spinning === false ? { spinning } : {}) };
    const onnx = await createOnnxDetector(o.model, { model: full, ort, ...sessionOptions });
    const bareSession = await ort.InferenceSession.create(bare, ortSessionOptions(sessionOptions));
    try {
      const x = new Float32Array(h * w * 3).map((_, i) => ((i * 7919) % 255) / 127.5 - 1);
      const input = new ort.Tensor('float32', ortArray(ort, 'float32', x), [1, h, w, 3]);
      for (let i = 0; i < 2; i++) {
        await onnx.detectRows(rgb);
        await bareSession.run({ input });
      }
      const t: number[][] = [];
      const bareT: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        await onnx.detect(rgb, { scoreThreshold: 0.3 });
        const total = performance.now() - t0;
        const l = onnx.lastTimings;
        t.push([l.preprocess, l.run, total - l.preprocess - l.run]);
        const b0 = performance.now();
        await bareSession.run({ input });
        bareT.push(performance.now() - b0);
      }
      rows.push({
        runtime: `onnxruntime-node ${threads} thread${threads > 1 ? 's' : ''}${spinning === false ? ', no spinning' : ''}`,
        preprocess: stats(t.map((r) => r[0])),
        network: stats(t.map((r) => r[1])),
        postprocess: stats(t.map((r) => r[2])),
        total: stats(t.map((r) => r[0] + r[1] + r[2])),
        bareNetwork: stats(bareT),
      });
    } finally {
      await onnx.dispose();
      await bareSession.release();
    }
  }
  for (const backend of o.tfjs ?? ['wasm', 'cpu']) {
    await useBackend(backend);
    const r = await bench({
      model: o.model,
      size: o.size,
      weights: o.weights,
      runs: o.tfjsRuns ?? runs,
      imageSize: [sw, sh],
    });
    rows.push({
      runtime: `TF.js ${backend}`,
      preprocess: r.preprocess,
      network: r.network,
      postprocess: r.postprocess,
      total: r.total,
    });
  }
  return { model: o.model, inputSize: [h, w], rows, loadAvg: loadavg(), gemmGflops };
}

export function formatOnnxBench(r: OnnxBenchResult): string {
  const f = (s: Stats | undefined) =>
    s ? `${s.median.toFixed(1)} (${s.min.toFixed(1)}-${s.max.toFixed(1)})` : '-';
  const lines = [
    `${r.model} @ ${r.inputSize.join('x')}, batch 1, ms median (min-max); load average ${r.loadAvg.map((v) => v.toFixed(2)).join(' ')}; ` +
      `onnxruntime 1x1-conv GEMM on 1 thread: ${r.gemmGflops.toFixed(1)} GFLOP/s`,
    '| runtime | preprocess | network | postprocess | end to end | bare network | end to end / bare |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const row of r.rows) {
    const ratio = row.bareNetwork ? (row.total.median / row.bareNetwork.median).toFixed(2) : '-';
    lines.push(
      `| ${row.runtime} | ${f(row.preprocess)} | ${f(row.network)} | ${f(row.postprocess)} | ${f(row.total)} | ${f(row.bareNetwork)} | ${ratio} |`,
    );
  }
  return lines.join('\n');
}

/** `effdet bench-onnx --model M ...`; `argv` may start with the command name. */
export async function runBenchOnnx(argv: string[], io: CliIO = defaultIO): Promise<number> {
  const cmd = 'bench-onnx';
  const args = argv[0] === cmd ? argv.slice(1) : argv;
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string', short: 'm' },
      weights: { type: 'string', short: 'w' },
      size: { type: 'string' },
      runs: { type: 'string' },
      threads: { type: 'string' },
      spin: { type: 'string' },
      tfjs: { type: 'string' },
      'tfjs-runs': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(`effdet bench-onnx [options]\n\n${EXPORT_ONNX_USAGE}`);
    return 0;
  }
  if (!values.model) throw new Error(`effdet ${cmd}: --model is required`);
  const threads = values.threads?.split(',').map((t) => positiveInt(t, 'threads', cmd) as number);
  const spinning = values.spin?.split(',').map((v) => {
    if (v !== 'on' && v !== 'off') throw new Error(`effdet ${cmd}: --spin takes on and / or off, got '${v}'`);
    return v === 'on';
  });
  const tfjs =
    values.tfjs === undefined
      ? undefined
      : values.tfjs === ''
        ? []
        : (values.tfjs.split(',') as BackendChoice[]);
  const r = await benchOnnx({
    model: values.model,
    weights: values.weights,
    size: positiveInt(values.size, 'size', cmd),
    runs: positiveInt(values.runs, 'runs', cmd),
    tfjsRuns: positiveInt(values['tfjs-runs'], 'tfjs-runs', cmd),
    threads,
    spinning,
    tfjs,
  });
  io.stdout.write(values.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatOnnxBench(r)}\n`);
  return 0;
}

// -------------------------------------------------------------------------------------------------------------
// parity --runtime onnx

/**
 * `effdet parity --io DUMP --runtime onnx`: exports the dump's detector (raw head outputs and the in-graph
 * post-processing with the dump's image info), runs it on onnxruntime with the dump's input and compares
 * `class.i`, `box.i`, `detections_scaled` (and `detections` through a second, no-image-info file). Backbone
 * dumps: `logits` / `pre_logits` or `features.i`.
 */
export async function runOnnxParity(options: ParityOptions): Promise<ParityReport> {
  const { metadata: meta, tensors: io } = await readSafetensorsFile(options.io);
  const model = meta.model;
  if (!model)
    throw new Error(
      `parity: ${options.io} has no 'model' in its metadata (segmentation dumps: not supported with --runtime onnx)`,
    );
  if (!io.input) throw new Error(`parity: ${options.io} has no 'input' tensor`);
  const weights = options.weights ?? defaultWeightsPath(options.io, meta.weights);
  const rtol = options.rtol ?? 1e-3;
  const ort = await loadOrt();
  const input = toFloat32(io.input);
  const [b, h, w] = io.input.shape;
  const f32 = (d: ArrayLike<number>) => ortArray(ort, 'float32', d);
  const rows: DiffRow[] = [];
  const run = async (bytes: Uint8Array, feeds: Record<string, unknown>) => {
    const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all' });
    try {
      return await s.run(feeds as Record<string, never>);
    } finally {
      await s.release();
    }
  };
  const compare = (out: Record<string, { data: unknown; dims: readonly number[] }>, names: string[]) => {
    for (const name of names) {
      if (io[name] && out[name])
        rows.push(
          diffArrays(name, io[name].shape, out[name].data as Float32Array, toFloat32(io[name]), rtol),
        );
    }
  };
  const detectionRow = (name: string, got: Float32Array, r: number) => {
    const exp = toFloat32(io[name]);
    const matched = Array.from(
      { length: b },
      (_, i) =>
        matchDetections(got.subarray(i * r * 6, (i + 1) * r * 6), exp.subarray(i * r * 6, (i + 1) * r * 6))
          .matched,
    );
    rows.push({
      name: `${name} (onnx)`,
      shape: io[name].shape,
      maxAbs: 0,
      maxRel: 0,
      pass: matched.every((m) => m >= Math.ceil(0.98 * r)),
      note: `rows matched ${matched.map((m) => `${m}/${r}`).join(', ')}`,
    });
  };
  const base = { input: new ort.Tensor('float32', f32(input), io.input.shape) };
  if (listEfficientDetModels().includes(model)) {
    const det = await createDetector(model, { weights, imageSize: [h, w] });
    try {
      const names = Object.keys(io)
        .filter((k) => /^(class|box)\.\d+$/.test(k))
        .sort((a, b) => {
          const [ka, la] = a.split('.');
          const [kb, lb] = b.split('.');
          return ka === kb ? Number(la) - Number(lb) : ka === 'class' ? -1 : 1;
        });
      const withInfo = exportOnnx(det.model, {
        batch: b,
        withPostprocess: { rawOutputs: true, imageInfo: true },
      }).bytes;
      const feeds: Record<string, unknown> = { ...base };
      if (io.img_scale && io.img_size) {
        feeds.img_scale = new ort.Tensor('float32', f32(toFloat32(io.img_scale)), io.img_scale.shape);
        feeds.img_size = new ort.Tensor('float32', f32(toFloat32(io.img_size)), io.img_size.shape);
      } else {
        feeds.img_scale = new ort.Tensor('float32', f32(new Array(b).fill(1)), [b]);
        feeds.img_size = new ort.Tensor('float32', f32(new Array(b).fill([w, h]).flat()), [b, 2]);
      }
      const out = await run(withInfo, feeds);
      compare(out, names);
      if (io.detections_scaled && io.img_scale)
        detectionRow('detections_scaled', out.detections.data as Float32Array, out.detections.dims[1]);
      if (io.detections) {
        const noInfo = exportOnnx(det.model, { batch: b, withPostprocess: { imageInfo: false } }).bytes;
        const o2 = await run(noInfo, base);
        detectionRow('detections', o2.detections.data as Float32Array, o2.detections.dims[1]);
      }
    } finally {
      det.dispose();
    }
  } else if (listModels().includes(model)) {
    const featuresOnly = !io.logits;
    const net = await loadModel(model, { weights, ...(featuresOnly ? { featuresOnly: true } : {}) });
    try {
      const ex = exportOnnx(net, {
        batch: b,
        inputSize: [h, w],
        task: featuresOnly ? 'features' : 'classifier',
      });
      compare(
        await run(ex.bytes, base),
        ex.outputs.map((o) => o.name),
      );
    } finally {
      net.dispose();
    }
  } else {
    throw new Error(`parity: unknown model '${model}' in ${options.io}; see 'effdet list-models'`);
  }
  if (rows.length === 0) throw new Error(`parity: ${options.io} holds no tensor the ONNX model produces`);
  return { model, weights, rows, pass: rows.every((r) => r.pass) };
}
