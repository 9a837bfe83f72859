/**
 * `exportOnnx(model, options)`: an EfficientDet, an EfficientNet (classifier or feature extractor), a
 * segmentation model (anything with `forwardLogits`) or any Module with `forward(x)` to a self-contained ONNX
 * file, by tracing one forward pass (see trace.ts).
 */
import { type EffDetConfig, EfficientDet, generateAnchorBoxes, labelFor } from '@effdet/effdet';
import { EfficientNet, getPretrainedCfg } from '@effdet/efficientnet';
import { type Module, shapeStr } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';
import { type Dim, GraphBuilder, MAX_OPSET, MIN_OPSET, type OnnxDType } from './graph.js';
import { buildPostprocess, type PostprocessGraphOptions } from './postprocess.js';
import { type GraphValue, OnnxExportError, outputDims, Tracer } from './trace.js';

/** Version written as the ONNX `producer_version`. */
export const PRODUCER_VERSION = '0.1.0';

export interface ExportOnnxOptions {
  /** ONNX opset (13..21). Default 17. */
  opset?: number;
  /** A symbolic batch dimension (`batch`): the file runs any batch size. Default false. */
  dynamicBatch?: boolean;
  /** The fixed batch size when `dynamicBatch` is false. Default 1. */
  batch?: number;
  /**
   * Input `[height, width]`. EfficientDet: must equal the config's `imageSize` (the default; anchors and the
   * pyramid depend on it). EfficientNet: default the pretrained config's size (224 for most). Segmentation and
   * other modules: required.
   */
  inputSize?: readonly [number, number];
  /**
   * Take the letterboxed `image` as uint8 `[B, H, W, 3]` (RGB, 0..255) and normalise in the graph with the
   * model's mean / std: `(x - 255 * mean) / (255 * std)`. Default false: `input` is the normalised float32 NHWC
   * batch.
   */
  withPreprocess?: boolean;
  /** EfficientDet only: append the detection post-processing (true, or its options). */
  withPostprocess?: boolean | PostprocessGraphOptions;
  /** Store the weights as float16 (half the file; a Cast back to float32 runs once when the session loads). */
  fp16?: boolean;
  /** EfficientNet: 'classifier' (outputs `logits` and `pre_logits`) or 'features' (`features.i`). */
  task?: 'classifier' | 'features';
  /** Input channels of a generic module (default 3). */
  inputChannels?: number;
  /** Output names for a generic module's outputs (in order). */
  outputNames?: readonly string[];
  /** mean / std (fractions of 255) for `withPreprocess` on a generic module. */
  mean?: readonly [number, number, number];
  std?: readonly [number, number, number];
  /** Class names written to the metadata (`classes`, JSON). */
  labels?: readonly string[];
  /** Extra metadata entries. */
  metadata?: Record<string, string>;
  /**
   * The input the trace runs on (normalised float32 NHWC; batch 1, or batch >= 2 for `dynamicBatch`). Default
   * zeros. With `returnReference` the TF.js outputs of this input come back for comparison.
   */
  sampleInput?: tf.Tensor4D;
  /** Return the TF.js outputs of the traced forward pass as host arrays. */
  returnReference?: boolean;
}

export interface OnnxIo {
  name: string;
  dtype: OnnxDType;
  shape: Dim[];
}

export interface OnnxExport {
  /** The serialised model. */
  bytes: Uint8Array;
  inputs: OnnxIo[];
  outputs: OnnxIo[];
  metadata: Record<string, string>;
  /** Graph statistics. */
  stats: {
    nodes: number;
    initializers: number;
    /** Values stored in initializers. */
    weights: number;
    /** TF.js kernels seen by the trace, and how many were folded into constants. */
    kernels: Record<string, number>;
    folded: number;
    traceMs: number;
  };
  /** TF.js outputs of the traced pass by output name (network outputs only), with `returnReference`. */
  reference?: Record<string, { shape: number[]; data: Float32Array }>;
}

interface Plan {
  kind: 'efficientdet' | 'classifier' | 'features' | 'segmentation' | 'module';
  inputSize: [number, number];
  inChannels: number;
  mean?: readonly [number, number, number];
  std?: readonly [number, number, number];
  run: (x: tf.Tensor4D) => [string, tf.Tensor][];
  metadata: Record<string, string>;
  config?: Readonly<EffDetConfig>;
}

function sizeArg(fn: string, v: unknown): [number, number] {
  if (!Array.isArray(v) || v.length !== 2 || !v.every((d) => Number.isInteger(d) && d > 0)) {
    throw new OnnxExportError(
      `${fn}: inputSize must be [height, width] positive integers, got ${JSON.stringify(v)}`,
    );
  }
  return [v[0], v[1]];
}

interface SegmentationLike {
  /** smp-style models (`SegmentationModel`). */
  forwardLogits?(x: tf.Tensor): tf.Tensor4D;
  /** EfficientDet with the segmentation head (`EfficientDetSegmenter`). */
  segmentLogits?(x: tf.Tensor4D): tf.Tensor4D;
  fixedInputSize?: readonly [number, number] | null;
  mean?: readonly [number, number, number];
  std?: readonly [number, number, number];
  arch?: string;
  classes?: number;
  inChannels?: number;
}

function isSegmentation(m: unknown): m is SegmentationLike {
  const s = m as SegmentationLike;
  return typeof s.forwardLogits === 'function' || typeof s.segmentLogits === 'function';
}

function plan(fn: string, model: Module, o: ExportOnnxOptions): Plan {
  if (model instanceof EfficientDet) {
    const c = model.config;
    const size: [number, number] = [c.imageSize[0], c.imageSize[1]];
    if (o.inputSize && (o.inputSize[0] !== size[0] || o.inputSize[1] !== size[1])) {
      throw new OnnxExportError(
        `${fn}: inputSize [${o.inputSize.join(', ')}] differs from ${c.name}'s config imageSize [${size.join(', ')}]; ` +
          `build the model with {imageSize: [${o.inputSize.join(', ')}]} instead (anchors and the pyramid depend on it)`,
      );
    }
    return {
      kind: 'efficientdet',
      inputSize: size,
      inChannels: 3,
      mean: c.mean,
      std: c.std,
      config: c,
      run: (x) => {
        const out = model.forward(x);
        return [
          ...out.classOut.map((t, i): [string, tf.Tensor] => [`class.${i}`, t]),
          ...out.boxOut.map((t, i): [string, tf.Tensor] => [`box.${i}`, t]),
        ];
      },
      metadata: {
        model: c.name,
        task: 'detection',
        num_classes: String(c.numClasses),
        image_size: JSON.stringify(size),
        mean: JSON.stringify(c.mean),
        std: JSON.stringify(c.std),
        fill_color: JSON.stringify(c.fillColor),
        min_level: String(c.minLevel),
        max_level: String(c.maxLevel),
        config: JSON.stringify(c),
      },
    };
  }
  if (o.withPostprocess) {
    throw new OnnxExportError(`${fn}: withPostprocess needs an EfficientDet, got ${model.constructor.name}`);
  }
  if (model instanceof EfficientNet) {
    const cfg = getPretrainedCfg(model.name);
    const size = o.inputSize
      ? sizeArg(fn, o.inputSize)
      : cfg
        ? ([cfg.inputSize[1], cfg.inputSize[2]] as [number, number])
        : null;
    if (!size) throw new OnnxExportError(`${fn}: ${model.name} has no default input size; give inputSize`);
    const task = o.task ?? (model.featuresOnly ? 'features' : 'classifier');
    if (task !== 'classifier' && task !== 'features') {
      throw new OnnxExportError(`${fn}: task must be 'classifier' or 'features', got ${String(task)}`);
    }
    if (task === 'classifier' && model.featuresOnly) {
      throw new OnnxExportError(`${fn}: ${model.name} was built with featuresOnly; export task 'features'`);
    }
    const base = {
      inputSize: size,
      inChannels: model.inChannels,
      mean: o.mean ?? cfg?.mean,
      std: o.std ?? cfg?.std,
      metadata: {
        model: model.name,
        task,
        image_size: JSON.stringify(size),
        ...(cfg ? { mean: JSON.stringify(o.mean ?? cfg.mean), std: JSON.stringify(o.std ?? cfg.std) } : {}),
        ...(task === 'classifier' ? { num_classes: String(model.numClasses) } : {}),
        ...(task === 'features' ? { feature_info: JSON.stringify(model.featureInfo) } : {}),
      },
    };
    if (task === 'features') {
      return {
        ...base,
        kind: 'features',
        run: (x) => model.features(x).map((t, i): [string, tf.Tensor] => [`features.${i}`, t]),
      };
    }
    return {
      ...base,
      kind: 'classifier',
      run: (x) => {
        const f = model.forwardFeatures(x);
        const pre = model.forwardHead(f, { preLogits: true });
        const out: [string, tf.Tensor][] = [];
        if (model.classifier) out.push(['logits', model.classifier.forward(pre)]);
        out.push(['pre_logits', pre]);
        return out;
      },
    };
  }
  const fixed = isSegmentation(model) ? model.fixedInputSize : null;
  if (fixed && o.inputSize && (o.inputSize[0] !== fixed[0] || o.inputSize[1] !== fixed[1])) {
    throw new OnnxExportError(
      `${fn}: ${model.constructor.name} runs at [${fixed.join(', ')}] only, got inputSize [${o.inputSize.join(', ')}]`,
    );
  }
  const given = o.inputSize ?? fixed;
  if (!given)
    throw new OnnxExportError(`${fn}: give inputSize [height, width] for a ${model.constructor.name}`);
  const size = sizeArg(fn, given);
  if (isSegmentation(model)) {
    const logits = (x: tf.Tensor4D): tf.Tensor =>
      model.forwardLogits
        ? model.forwardLogits(x)
        : (model.segmentLogits as (x: tf.Tensor4D) => tf.Tensor4D)(x);
    return {
      kind: 'segmentation',
      inputSize: size,
      inChannels: model.inChannels ?? 3,
      mean: o.mean ?? model.mean,
      std: o.std ?? model.std,
      run: (x) => [[o.outputNames?.[0] ?? 'logits', logits(x)]],
      metadata: {
        model: model.arch ?? model.constructor.name,
        task: 'segmentation',
        image_size: JSON.stringify(size),
        ...(model.classes !== undefined ? { num_classes: String(model.classes) } : {}),
        ...(model.mean
          ? { mean: JSON.stringify(o.mean ?? model.mean), std: JSON.stringify(o.std ?? model.std) }
          : {}),
      },
    };
  }
  const fwd = (model as unknown as { forward?: (x: tf.Tensor) => unknown }).forward;
  if (typeof fwd !== 'function')
    throw new OnnxExportError(`${fn}: ${model.constructor.name} has no forward(x)`);
  const inChannels = o.inputChannels ?? 3;
  if (!Number.isInteger(inChannels) || inChannels < 1) {
    throw new OnnxExportError(
      `${fn}: inputChannels must be a positive integer, got ${String(o.inputChannels)}`,
    );
  }
  return {
    kind: 'module',
    inputSize: size,
    inChannels,
    mean: o.mean,
    std: o.std,
    run: (x) => {
      const r = fwd.call(model, x);
      const named: [string, tf.Tensor][] =
        r instanceof tf.Tensor
          ? [['output', r]]
          : Array.isArray(r)
            ? r.map((t, i): [string, tf.Tensor] => [`output.${i}`, t as tf.Tensor])
            : Object.entries(r as Record<string, tf.Tensor>);
      return named.map(([n, t], i) => [o.outputNames?.[i] ?? n, t]);
    },
    metadata: { model: model.constructor.name, task: 'module', image_size: JSON.stringify(size) },
  };
}

/** What an export of `model` with `options` takes as input (no forward pass runs). */
export function exportInputInfo(
  model: Module,
  options: ExportOnnxOptions = {},
): {
  kind: 'efficientdet' | 'classifier' | 'features' | 'segmentation' | 'module';
  inputSize: [number, number];
  inChannels: number;
  mean?: readonly [number, number, number];
  std?: readonly [number, number, number];
} {
  const p = plan('exportInputInfo', model, options);
  return { kind: p.kind, inputSize: p.inputSize, inChannels: p.inChannels, mean: p.mean, std: p.std };
}

const METHODS = [
  'forward',
  'convolve',
  'features',
  'forwardFeatures',
  'forwardHead',
  'forwardExpansion',
  'forwardInputs',
  'forwardNodes',
  'forwardLogits',
  'segmentLogits',
  'logits',
];

/** Wraps module methods so the tracer knows which module runs each kernel; returns the undo. */
function instrument(model: Module, tracer: Tracer): () => void {
  const undo: (() => void)[] = [];
  for (const [path, m] of model.namedModules()) {
    const rec = m as unknown as Record<string, unknown>;
    for (const name of METHODS) {
      const f = rec[name];
      if (typeof f !== 'function' || Object.hasOwn(rec, name)) continue;
      rec[name] = function (this: unknown, ...args: unknown[]) {
        tracer.pushModule(path || model.constructor.name);
        try {
          return (f as (...a: unknown[]) => unknown).apply(this, args);
        } finally {
          tracer.popModule();
        }
      };
      undo.push(() => {
        delete rec[name];
      });
    }
  }
  return () => {
    for (const u of undo) u();
  };
}

interface Engine {
  runKernel: (name: string, inputs: unknown, attrs: unknown) => tf.Tensor | tf.Tensor[];
}

/** Runs `body` while every top-level kernel is reported to `tracer`. */
function withKernelHook<T>(tracer: Tracer, body: () => T): T {
  const engine = tf.engine() as unknown as Engine;
  const had = Object.hasOwn(engine, 'runKernel');
  const prev = engine.runKernel;
  let depth = 0;
  let error: unknown = null;
  engine.runKernel = function (this: unknown, name: string, inputs: unknown, attrs: unknown) {
    depth++;
    let out: tf.Tensor | tf.Tensor[];
    try {
      out = prev.call(this, name, inputs, attrs);
    } finally {
      depth--;
    }
    if (depth === 0 && error === null) {
      try {
        tracer.record(name, inputs, attrs, out);
      } catch (e) {
        error = e;
        throw e;
      }
    }
    return out;
  };
  try {
    return body();
  } finally {
    if (had) engine.runKernel = prev;
    else delete (engine as Partial<Engine>).runKernel;
  }
}

/** Snapshot of each module's mode flags. */
function saveModes(model: Module): () => void {
  const saved = model.namedModules().map(([, m]) => [m, m.training, m.folded] as const);
  return () => {
    for (const [m, training, folded] of saved) {
      if (m.training !== training || m.folded !== folded) {
        m.training = training;
        m.folded = folded;
        m.invalidate();
      }
    }
  };
}

/**
 * Exports `model` to ONNX (see `ExportOnnxOptions`). The model runs one forward pass on the active TF.js backend
 * in eval mode with BatchNorm folded (its modes are restored afterwards). Inputs: `input` (normalised float32
 * NHWC) or `image` (uint8 NHWC, `withPreprocess`), plus `img_scale` / `img_size` with post-processing. Outputs:
 * EfficientDet `class.i` / `box.i` (NHWC head outputs, levels min..max) or with post-processing `detections`,
 * `boxes`, `scores`, `classes`, `num_detections`; EfficientNet `logits`, `pre_logits` or `features.i`;
 * segmentation `logits` (NHWC).
 */
export function exportOnnx(model: Module, options: ExportOnnxOptions = {}): OnnxExport {
  const fn = 'exportOnnx';
  const t0 = performance.now();
  const opset = options.opset ?? 17;
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new OnnxExportError(`${fn}: opset must be an integer in ${MIN_OPSET}..${MAX_OPSET}, got ${opset}`);
  }
  const dynamic = options.dynamicBatch === true;
  const batch = options.batch ?? 1;
  if (!Number.isInteger(batch) || batch < 1) {
    throw new OnnxExportError(`${fn}: batch must be a positive integer, got ${String(options.batch)}`);
  }
  const p = plan(fn, model, options);
  if (options.withPreprocess && (!p.mean || !p.std)) {
    throw new OnnxExportError(`${fn}: withPreprocess needs mean and std for a ${model.constructor.name}`);
  }
  if (options.withPreprocess && p.inChannels !== 3) {
    throw new OnnxExportError(
      `${fn}: withPreprocess needs a 3-channel model, ${model.constructor.name} takes ${p.inChannels}`,
    );
  }
  const [h, w] = p.inputSize;
  const traceBatch = dynamic ? Math.max(2, options.sampleInput?.shape[0] ?? 2) : batch;
  const sample = options.sampleInput;
  if (sample) {
    const ok =
      sample instanceof tf.Tensor &&
      sample.rank === 4 &&
      sample.shape[1] === h &&
      sample.shape[2] === w &&
      sample.shape[3] === p.inChannels &&
      sample.dtype === 'float32' &&
      (sample.shape[0] === traceBatch || (dynamic && sample.shape[0] === 1));
    if (!ok) {
      throw new OnnxExportError(
        `${fn}: sampleInput must be float32 [${dynamic ? 'batch >= 1' : batch}, ${h}, ${w}, ${p.inChannels}], got ${sample instanceof tf.Tensor ? `${sample.dtype} ${shapeStr(sample.shape)}` : typeof sample}`,
      );
    }
  }
  const g = new GraphBuilder(opset);
  const tracer = new Tracer(g, { batch: dynamic ? 'dynamic' : batch, fp16Weights: options.fp16 === true });
  const batchDim: Dim = dynamic ? 'batch' : batch;
  const restoreModes = saveModes(model);
  model.eval();
  model.fuseForInference();
  const x = tf.tidy(() => {
    if (!sample) return tf.zeros([traceBatch, h, w, p.inChannels], 'float32') as tf.Tensor4D;
    return sample.shape[0] === traceBatch
      ? tf.clone(sample)
      : (tf.tile(sample, [traceBatch, 1, 1, 1]) as tf.Tensor4D);
  });
  const inputs: OnnxIo[] = [];
  if (options.withPreprocess) {
    const image = g.addInput('image', 'uint8', [batchDim, h, w, 3], 'letterboxed RGB image, uint8 NHWC');
    inputs.push({ name: 'image', dtype: 'uint8', shape: [batchDim, h, w, 3] });
    const mean = p.mean as readonly number[];
    const std = p.std as readonly number[];
    g.scope = 'preprocess';
    const nchw = g.op('Transpose', [image], { perm: { ints: [0, 3, 1, 2] } });
    const f = g.op('Cast', [nchw], { to: { i: 1 } }, { dtypes: ['float32'] });
    const sub = g.op('Sub', [
      f,
      g.float(
        mean.map((m) => 255 * m),
        [1, 3, 1, 1],
      ),
    ]);
    const norm = g.op('Div', [
      sub,
      g.float(
        std.map((s) => 255 * s),
        [1, 3, 1, 1],
      ),
    ]);
    g.scope = '';
    const v: GraphValue = {
      kind: 'value',
      name: norm,
      shape: [...x.shape],
      dtype: 'float32',
      perm: [0, 3, 1, 2],
      batchAxis: 0,
    };
    tracer.bindValue(x, v);
  } else {
    g.addInput('input', 'float32', [batchDim, h, w, p.inChannels], 'normalised float32 NHWC batch');
    inputs.push({ name: 'input', dtype: 'float32', shape: [batchDim, h, w, p.inChannels] });
    tracer.bindInput(x, 'input');
  }
  const undoInstrument = instrument(model, tracer);
  let named: [string, tf.Tensor][] = [];
  const reference: Record<string, { shape: number[]; data: Float32Array }> = {};
  const outputs: OnnxIo[] = [];
  const tfOutputs: { name: string; entry: GraphValue; dims: Dim[]; dtype: OnnxDType }[] = [];
  // The TF-layout value of an output, built once on first use (the post-processing may not need it, see
  // Tracer.nhwcConcat; Tracer.nhwcOutput may replace the head Conv).
  const built = new Map<string, string>();
  const tfValue = (o: (typeof tfOutputs)[number]): string => {
    let v = built.get(o.name);
    if (v === undefined) {
      g.scope = '';
      v = tracer.nhwcOutput(o.entry);
      built.set(o.name, v);
    }
    return v;
  };
  try {
    named = withKernelHook(tracer, () =>
      tf.tidy(() => p.run(x)).map(([n, t]) => [n, tf.keep(t)] as [string, tf.Tensor]),
    );
    for (const [name, t] of named) {
      const e = tracer.entryOf(t);
      if (e.kind !== 'value')
        throw new OnnxExportError(`${fn}: output '${name}' does not depend on the input`);
      if (dynamic && e.batchAxis !== 0) {
        throw new OnnxExportError(
          `${fn}: output '${name}' does not keep the batch on axis 0, so it cannot be exported with a dynamic batch`,
        );
      }
      const dims = outputDims(tracer, e);
      if (!dynamic) dims[0] = batch;
      tfOutputs.push({ name, entry: e, dims, dtype: e.dtype });
      if (options.returnReference) {
        const data = Float32Array.from(t.dataSync() as Float32Array);
        const shape = [...t.shape];
        if (dynamic && sample && sample.shape[0] === 1) {
          shape[0] = 1;
          reference[name] = { shape, data: data.slice(0, data.length / t.shape[0]) };
        } else reference[name] = { shape, data };
      }
    }
  } finally {
    undoInstrument();
    tf.dispose([x, ...named.map(([, t]) => t)]);
    restoreModes();
  }
  const post = options.withPostprocess;
  const metadata: Record<string, string> = { ...p.metadata };
  if (options.labels) metadata.classes = JSON.stringify(options.labels);
  else if (p.kind === 'efficientdet' && p.config?.numClasses === 90) {
    // COCO models: the category names by 1-based id (index = id - 1).
    metadata.classes = JSON.stringify(Array.from({ length: 90 }, (_, i) => labelFor(i + 1)));
  }
  metadata.input = options.withPreprocess ? 'image' : 'input';
  metadata.dynamic_batch = String(dynamic);
  if (!dynamic) metadata.batch = String(batch);
  if (post && p.config) {
    const po = post === true ? {} : post;
    const nl = tfOutputs.length / 2;
    const c = p.config;
    const anchors = generateAnchorBoxes(c).length / 4;
    const fromHeads = tfOutputs
      .slice(0, nl)
      .reduce(
        (n, o) => n + (o.dims[1] as number) * (o.dims[2] as number) * ((o.dims[3] as number) / c.numClasses),
        0,
      );
    if (fromHeads !== anchors) {
      throw new OnnxExportError(
        `${fn}: the class heads cover ${fromHeads} anchors but ${c.name}'s anchors number ${anchors}; the config does not match the network`,
      );
    }
    // Without the raw outputs, each head's shared 1x1 Conv runs once over all levels, directly in the flattened
    // order the post-processing wants (see Tracer.nhwcConcat).
    g.scope = 'postprocess';
    const fc = po.rawOutputs ? null : tracer.nhwcConcat(tfOutputs.slice(0, nl).map((o) => o.entry));
    const fb = po.rawOutputs ? null : tracer.nhwcConcat(tfOutputs.slice(nl).map((o) => o.entry));
    const flat = {
      ...(fc ? { cls: g.op('Reshape', [fc.value, g.int64([0, fc.positions * fc.channels])]) } : {}),
      ...(fb ? { box: g.op('Reshape', [fb.value, g.int64([0, (fb.positions * fb.channels) / 4, 4])]) } : {}),
    };
    g.scope = '';
    const pv = buildPostprocess(
      g,
      p.config,
      fc ? [] : tfOutputs.slice(0, nl).map(tfValue),
      fb ? [] : tfOutputs.slice(nl).map(tfValue),
      po,
      batchDim,
      flat,
    );
    if (po.imageInfo ?? true) {
      inputs.push({ name: 'img_scale', dtype: 'float32', shape: [batchDim] });
      inputs.push({ name: 'img_size', dtype: 'float32', shape: [batchDim, 2] });
    }
    const add = (name: string, value: string, dtype: OnnxDType, dims: Dim[]) => {
      g.addOutput(name, value, dims);
      outputs.push({ name, dtype, shape: dims });
    };
    add('detections', pv.detections, 'float32', [batchDim, pv.m, 6]);
    add('boxes', pv.boxes, 'float32', [batchDim, pv.m, 4]);
    add('scores', pv.scores, 'float32', [batchDim, pv.m]);
    add('classes', pv.classes, 'int64', [batchDim, pv.m]);
    add('num_detections', pv.numDetections, 'int64', [batchDim]);
    if (po.rawOutputs) for (const o of tfOutputs) add(o.name, tfValue(o), o.dtype, o.dims);
    if (pv.candidates) {
      add('candidate_boxes', pv.candidates.boxes, 'float32', [batchDim, pv.k, 4]);
      add('candidate_scores', pv.candidates.scores, 'float32', [batchDim, pv.k]);
      add('candidate_classes', pv.candidates.classes, 'int64', [batchDim, pv.k]);
    }
    metadata.postprocess = JSON.stringify({
      maxDetectionPoints: pv.k,
      maxDetections: pv.m,
      iouThreshold: po.iouThreshold ?? 0.5,
      imageInfo: po.imageInfo ?? true,
      candidates: po.candidates ?? false,
      rawOutputs: po.rawOutputs ?? false,
    });
  } else {
    for (const o of tfOutputs) {
      g.addOutput(o.name, tfValue(o), o.dims);
      outputs.push({ name: o.name, dtype: o.dtype, shape: o.dims });
    }
  }
  if (options.fp16) metadata.weights_dtype = 'float16';
  Object.assign(metadata, options.metadata ?? {});
  metadata.producer = `@effdet/onnx ${PRODUCER_VERSION}`;
  // Drop what the export passes replaced (head Convs rewritten as MatMuls by nhwcOutput / nhwcConcat).
  g.prune();
  const bytes = g.encode({
    graphName: metadata.model ?? 'model',
    producerVersion: PRODUCER_VERSION,
    metadata,
    docString: `${metadata.model} exported from effdet-ts by tracing (BatchNorm folded, NCHW inside)`,
  });
  const weights = g.initializers.reduce((n, i) => n + i.dims.reduce((a, b) => a * b, 1), 0);
  return {
    bytes,
    inputs,
    outputs,
    metadata,
    stats: {
      nodes: g.nodes.length,
      initializers: g.initializers.length,
      weights,
      kernels: Object.fromEntries(tracer.kernelCounts),
      folded: tracer.foldedCount,
      traceMs: performance.now() - t0,
    },
    ...(options.returnReference ? { reference } : {}),
  };
}
