/**
 * The tracing exporter on small graphs: every kernel translation against TF.js on onnxruntime (opsets 13, 17,
 * 18 and 21, static and dynamic batch), errors that name the kernel and the module, the structural checker,
 * the protobuf round trip, float16 weights, and the vendored schema.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createEfficientDet, normalizeImage } from '@effdet/effdet';
import { createModel } from '@effdet/efficientnet';
import { Module } from '@effdet/layers';
import { expectNoLeaks } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';
import protobuf from 'protobufjs';
import { checkOnnxModel } from './checker.js';
import { exportOnnx } from './export.js';
import { GraphBuilder } from './graph.js';
import { ONNX_SCHEMA } from './onnx_schema.js';
import { decodeModel, encodeModel, type ModelMessage } from './proto.js';
import { mainRealmOrt } from './testing/ort.js';
import { OnnxExportError, permuteData, toHalfBits } from './trace.js';

const ort = mainRealmOrt();
type OrtOut = Record<string, { data: unknown; dims: readonly number[] }>;

function f32(d: ArrayLike<number>): Float32Array {
  const Ctor = new ort.Tensor('float32', [0], [1]).data.constructor as Float32ArrayConstructor;
  const a = new Ctor(d.length);
  a.set(d);
  return a;
}

/** A module whose forward is a function, inside a parent (so kernels run in module 'inner'). */
class Fn extends Module {
  constructor(private readonly f: (x: tf.Tensor4D) => tf.Tensor | tf.Tensor[] | Record<string, tf.Tensor>) {
    super();
  }
  forward(x: tf.Tensor4D) {
    return this.f(x);
  }
}

class Wrap extends Module {
  readonly inner: Fn;
  constructor(f: ConstructorParameters<typeof Fn>[0]) {
    super();
    this.inner = this.addModule('inner', new Fn(f));
  }
  forward(x: tf.Tensor4D) {
    return this.inner.forward(x);
  }
}

function seeded(shape: number[], seed: number, lo = -1, hi = 1): tf.Tensor {
  return tf.randomUniform(shape, lo, hi, 'float32', seed);
}

/** Runs the export on onnxruntime and compares every output with TF.js on the same input. */
async function check(
  model: Module,
  shape: [number, number, number, number],
  opts: Parameters<typeof exportOnnx>[1] = {},
  runBatches: number[] = [shape[0]],
  rtol = 1e-5,
  reference: (x: tf.Tensor4D) => unknown = (x) =>
    (model as unknown as { forward: (x: tf.Tensor) => unknown }).forward(x),
): Promise<ReturnType<typeof exportOnnx>> {
  const ex = exportOnnx(model, { inputSize: [shape[1], shape[2]], inputChannels: shape[3], ...opts });
  expect(checkOnnxModel(ex.bytes).errors).toEqual([]);
  const s = await ort.InferenceSession.create(ex.bytes, { graphOptimizationLevel: 'all' });
  try {
    for (const b of runBatches) {
      const x = seeded([b, shape[1], shape[2], shape[3]], 7 + b, -2, 2) as tf.Tensor4D;
      const ref = tf.tidy(() => {
        const r = reference(x);
        const list =
          r instanceof tf.Tensor
            ? [r]
            : Array.isArray(r)
              ? (r as tf.Tensor[])
              : Object.values(r as Record<string, tf.Tensor>);
        return list.map((t) => ({ shape: t.shape, data: Float32Array.from(t.dataSync() as Float32Array) }));
      });
      const out = (await s.run({ input: new ort.Tensor('float32', f32(x.dataSync()), x.shape) })) as OrtOut;
      x.dispose();
      ex.outputs.forEach((o, i) => {
        const got = out[o.name];
        expect([...got.dims]).toEqual(ref[i].shape);
        const a = got.data as Float32Array;
        const b2 = ref[i].data;
        let maxAbs = 0;
        let maxRef = 1;
        for (let k = 0; k < b2.length; k++) {
          const d = Math.abs(Number(a[k]) - b2[k]);
          if (!(d <= maxAbs)) maxAbs = d;
          maxRef = Math.max(maxRef, Math.abs(b2[k]));
        }
        if (!(maxAbs <= rtol * maxRef)) {
          throw new Error(
            `output ${o.name} (batch ${b}, opset ${opts.opset ?? 17}): max|diff| ${maxAbs} > ${rtol * maxRef}`,
          );
        }
      });
    }
  } finally {
    await s.release();
  }
  return ex;
}

let w: Record<string, tf.Tensor> = {};

beforeAll(async () => {
  await tf.setBackend('wasm');
  w = {
    k3: seeded([3, 3, 4, 6], 1),
    k1: seeded([1, 1, 6, 5], 2),
    k5: seeded([5, 5, 4, 3], 11),
    dw: seeded([3, 3, 6, 1], 3),
    dw2: seeded([3, 3, 4, 2], 12),
    b6: seeded([6], 4),
    b5: seeded([5], 5),
    alpha: seeded([6], 6, 0, 0.5),
    lin: seeded([5, 7], 8),
    linb: seeded([7], 9),
    mean: seeded([5], 10),
    variance: seeded([5], 13, 0.5, 2),
    gamma: seeded([5], 14),
    beta: seeded([5], 15),
    idx: tf.tensor1d([2, 0, 1], 'int32'),
  };
});

afterAll(() => tf.dispose(Object.values(w)));

/** Convolutions, pools and resizes: NCHW inside. */
const convNet = () =>
  new Wrap((x) => {
    const a = tf.fused.conv2d({
      x,
      filter: w.k3 as tf.Tensor4D,
      strides: 1,
      pad: 'same',
      bias: w.b6,
      activation: 'relu6',
    });
    const b = tf.fused.conv2d({ x, filter: w.k3 as tf.Tensor4D, strides: 2, pad: 'same', activation: 'elu' });
    const c = tf.conv2d(x, w.k3 as tf.Tensor4D, 1, 'valid', 'NHWC', 2);
    const d = tf.conv2d(x, w.k5 as tf.Tensor4D, 2, [
      [0, 0],
      [1, 2],
      [2, 1],
      [0, 0],
    ]);
    const e = tf.fused.depthwiseConv2d({
      x: a,
      filter: w.dw as tf.Tensor4D,
      strides: 2,
      pad: 'same',
      bias: w.b6,
      activation: 'sigmoid',
    });
    const f = tf.fused.conv2d({
      x: a,
      filter: w.k1 as tf.Tensor4D,
      strides: 1,
      pad: 'valid',
      bias: w.b5,
      activation: 'leakyrelu',
      leakyreluAlpha: 0.1,
    });
    const g = tf.fused.conv2d({
      x,
      filter: w.k3 as tf.Tensor4D,
      strides: 1,
      pad: 1,
      activation: 'prelu',
      preluActivationWeights: w.alpha,
    });
    const h = tf.depthwiseConv2d(x, w.dw2 as tf.Tensor4D, 1, 'same', 'NHWC', 2);
    return {
      a,
      b,
      c,
      d,
      e,
      f,
      g,
      h,
      maxSame: tf.maxPool(a, 3, 2, 'same'),
      maxValid: tf.maxPool(x, 2, 2, 'valid'),
      avgSame: tf.avgPool(a, 3, 2, 'same'),
      avgValid: tf.avgPool(x, [3, 2], 1, 'valid'),
      near: tf.image.resizeNearestNeighbor(a, [12, 9]),
      nearDown: tf.image.resizeNearestNeighbor(a, [4, 3]),
      nearHalf: tf.image.resizeNearestNeighbor(a, [12, 9], false, true),
      nearAlign: tf.image.resizeNearestNeighbor(a, [12, 9], true),
      bil: tf.image.resizeBilinear(a, [12, 9]),
      bilHalf: tf.image.resizeBilinear(a, [12, 9], false, true),
      bilHalfDown: tf.image.resizeBilinear(a, [4, 3], false, true),
      bilAlign: tf.image.resizeBilinear(a, [12, 9], true),
    };
  });

/** Elementwise, broadcasting, reductions, shapes, matmul, batch norm. */
const miscNet = () =>
  new Wrap((x) => {
    const y = tf.conv2d(x, w.k3 as tf.Tensor4D, 1, 'same');
    const z = tf.conv2d(y, w.k1 as tf.Tensor4D, 1, 'same'); // [B, H, W, 5]
    const se = tf.sigmoid(tf.mean(z, [1, 2], true));
    const pooled = tf.mean(z, [1, 2]); // [B, 5]
    const lin = tf.fused.matMul({ a: pooled, b: w.lin as tf.Tensor2D, bias: w.linb, activation: 'relu' });
    const bn = tf.batchNorm(z, w.mean, w.variance, w.beta, w.gamma, 1e-3);
    const parts = tf.split(z, [2, 3], 3);
    const un = tf.unstack(z, 3);
    return {
      swish: tf.mul(z, tf.sigmoid(z)),
      se: tf.mul(z, se),
      bias: tf.add(tf.sub(z, w.b5), tf.div(z, tf.add(tf.abs(w.b5), 1))),
      minmax: tf.minimum(tf.maximum(z, -0.5), tf.scalar(0.7)),
      unary: tf.add(tf.exp(tf.neg(tf.square(z))), tf.tanh(tf.rsqrt(tf.add(tf.abs(z), 1)))),
      sqdiff: tf.squaredDifference(z, tf.sqrt(tf.add(tf.abs(z), 0.25))),
      clip: tf.clipByValue(z, -0.3, 0.4),
      where: tf.where(tf.greater(z, 0.1), z, tf.mul(z, 0.5)),
      cast: tf.cast(tf.cast(tf.mul(z, 3), 'int32'), 'float32'),
      reduce: tf.add(tf.sum(z, 3, true), tf.max(z, 3, true)),
      pooled,
      lin,
      softmax: tf.softmax(z),
      logSoftmax: tf.logSoftmax(z),
      bn,
      concat: tf.concat([z, y, parts[1]], 3),
      stack: tf.stack([un[0], un[4]], 3),
      pad: tf.pad(
        z,
        [
          [0, 0],
          [1, 2],
          [0, 1],
          [0, 0],
        ],
        0.5,
      ),
      mirror: tf.mirrorPad(
        z,
        [
          [0, 0],
          [1, 1],
          [2, 1],
          [0, 0],
        ],
        'reflect',
      ),
      slice: tf.slice(z, [0, 1, 2, 1], [-1, 3, 2, 3]),
      strided: tf.stridedSlice(z, [0, 0, 1, 0], [0, 6, 5, 5], [1, 2, 1, 2], 1, 1),
      reshape: tf.reshape(tf.transpose(z, [0, 3, 1, 2]), [z.shape[0], 5, -1]),
      tile: tf.tile(se, [1, 2, 3, 1]),
      expand: tf.expandDims(pooled, 1),
      gather: tf.gather(z, w.idx, 3),
    };
  });

describe('kernel translations against TF.js', () => {
  for (const opset of [13, 17, 18, 21]) {
    it(`convolutions, pools, resizes (opset ${opset})`, async () => {
      await check(convNet(), [1, 8, 6, 4], { opset });
    });
    it(`elementwise, reductions, shapes, matmul, batch norm (opset ${opset})`, async () => {
      await check(miscNet(), [1, 7, 6, 4], { opset }, [1], 2e-5);
    });
  }

  it('a dynamic-batch export runs batch 1 and batch 3', async () => {
    const ex = await check(miscNet(), [1, 7, 6, 4], { dynamicBatch: true }, [1, 3], 2e-5);
    expect(ex.inputs[0].shape).toEqual(['batch', 7, 6, 4]);
    await check(convNet(), [1, 8, 6, 4], { dynamicBatch: true, opset: 13 }, [1, 3]);
  });

  it('a static batch of 2', async () => {
    const ex = await check(convNet(), [2, 8, 6, 4], { batch: 2 }, [2]);
    expect(ex.inputs[0].shape).toEqual([2, 8, 6, 4]);
  });

  it('in-graph preprocessing (uint8 image in) equals normalising first', async () => {
    const k = seeded([3, 3, 3, 4], 21);
    const m = new Wrap((x) => tf.conv2d(x, k as tf.Tensor4D, 1, 'same'));
    const mean = [0.485, 0.456, 0.406] as const;
    const std = [0.229, 0.224, 0.225] as const;
    const ex = exportOnnx(m, { inputSize: [8, 6], withPreprocess: true, mean, std, dynamicBatch: true });
    expect(ex.inputs).toEqual([{ name: 'image', dtype: 'uint8', shape: ['batch', 8, 6, 3] }]);
    const img = tf.randomUniform([2, 8, 6, 3], 0, 256, 'int32', 3) as tf.Tensor4D;
    const ref = tf.tidy(() => m.forward(normalizeImage(img, mean, std)) as tf.Tensor);
    const U8 = new ort.Tensor('uint8', [0], [1]).data.constructor as Uint8ArrayConstructor;
    const pixels = new U8(img.size);
    pixels.set(img.dataSync());
    const s = await ort.InferenceSession.create(ex.bytes);
    const out = (await s.run({ image: new ort.Tensor('uint8', pixels, img.shape) })) as OrtOut;
    await s.release();
    const a = out.output.data as Float32Array;
    const b = ref.dataSync();
    let worst = 0;
    for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    expect(worst).toBeLessThan(1e-5);
    tf.dispose([k, img, ref]);
  });
});

describe("forms for onnxruntime's NCHWc layout", () => {
  /** Squeeze-excite with a 10-channel reduction, a BiFPN-style weighted sum, a 1x1 head: what EfficientDet does. */
  const layoutNet = (k1x1: tf.Tensor4D, kRed: tf.Tensor4D, kExp: tf.Tensor4D, kHead: tf.Tensor4D) =>
    new Wrap((x) => {
      const a = tf.fused.conv2d({ x, filter: w.k3 as tf.Tensor4D, strides: 1, pad: 'same' });
      const act = tf.mul(a, tf.sigmoid(a));
      const s = tf.mean(act, [1, 2], true) as tf.Tensor4D;
      const r = tf.fused.conv2d({ x: s, filter: kRed, strides: 1, pad: 'valid' });
      const gate = tf.sigmoid(tf.conv2d(tf.mul(r, tf.sigmoid(r)) as tf.Tensor4D, kExp, 1, 'valid'));
      const se = tf.mul(act, gate) as tf.Tensor4D;
      const p = tf.conv2d(se, k1x1, 1, 'same');
      const up = tf.image.resizeNearestNeighbor(tf.maxPool(p, 2, 2, 'valid'), [8, 8]);
      const ws = tf.tensor1d([0.7, 1.9]);
      const sum = tf.addN([
        tf.div(tf.mul(p, tf.reshape(tf.slice(ws, [0], [1]), [])), 2.6001),
        tf.mul(up, 1.9 / 2.6001),
      ]);
      const head = (m: tf.Tensor4D) =>
        tf.fused.conv2d({ x: m, filter: kHead, bias: w.b5 as tf.Tensor1D, strides: 1, pad: 'valid' });
      return [head(sum as tf.Tensor4D), head(tf.maxPool(sum as tf.Tensor4D, 2, 2, 'same'))];
    });

  it('scalar factors as 1x1 depthwise Convs, the squeeze-excite gate upsampled, 1x1 heads as MatMul', async () => {
    const k1x1 = seeded([1, 1, 6, 6], 21) as tf.Tensor4D;
    const kRed = seeded([1, 1, 6, 10], 22) as tf.Tensor4D;
    const kExp = seeded([1, 1, 10, 6], 23) as tf.Tensor4D;
    const kHead = seeded([1, 1, 6, 5], 24) as tf.Tensor4D;
    try {
      const m = layoutNet(k1x1, kRed, kExp, kHead);
      const ex = await check(m, [1, 8, 8, 4], {}, [1], 1e-5);
      const g = decodeModel(ex.bytes).graph;
      const ops = g.node.map((n) => n.op_type);
      const byOp = (op: string) => g.node.filter((n) => n.op_type === op);
      const isInit = new Set(g.initializer.map((t) => t.name));
      // No Mul / Div by a constant: the weighted sum is two depthwise Convs (the Div folded into the factor).
      expect(byOp('Mul').some((n) => n.input.some((i) => isInit.has(i)))).toBe(false);
      expect(ops).not.toContain('Div');
      const scaled = byOp('Conv').filter((n) => n.attribute.some((a) => a.name === 'group' && a.i === 6));
      expect(scaled).toHaveLength(2);
      // The gate is upsampled with constant scales (no sizes input) before the Mul; the 10-channel input of the
      // expand Conv is padded to 16 channels.
      expect(byOp('Resize').every((n) => n.input.length === 3)).toBe(true);
      expect(byOp('Resize')).toHaveLength(2);
      expect(byOp('Pad')).toHaveLength(1);
      // The 1x1 heads are MatMuls on the NHWC input (bias as a row against a ones column): no output Transpose.
      expect(byOp('MatMul')).toHaveLength(2);
      const outs = new Set(g.output.map((o) => o.name));
      const intoOutputs = new Set(
        g.node.filter((n) => n.output.some((o) => outs.has(o))).flatMap((n) => n.input),
      );
      expect(byOp('Transpose').filter((n) => outs.has(n.output[0]) || intoOutputs.has(n.output[0]))).toEqual(
        [],
      );
      // No orphaned initializer.
      const used = new Set(g.node.flatMap((n) => n.input));
      expect(g.initializer.filter((t) => !used.has(t.name))).toEqual([]);
      // A symbolic batch keeps the broadcasting Mul (onnxruntime could not prove the shapes equal).
      const dyn = await check(m, [1, 8, 8, 4], { dynamicBatch: true }, [1, 3], 1e-5);
      expect(decodeModel(dyn.bytes).graph.node.filter((n) => n.op_type === 'Resize')).toHaveLength(1);
    } finally {
      tf.dispose([k1x1, kRed, kExp, kHead]);
    }
  });

  it('the post-processing reads one MatMul per head over all levels (static and dynamic batch)', async () => {
    const det = createEfficientDet('test_efficientdet').materialize();
    try {
      const nl = det.config.maxLevel - det.config.minLevel + 1;
      const heads = (g: ModelMessage['graph']) =>
        g.node.filter((n) => n.op_type === 'Conv' && n.name.includes('predict.conv_pw'));
      for (const dynamicBatch of [false, true]) {
        const g = decodeModel(exportOnnx(det, { withPostprocess: true, dynamicBatch }).bytes).graph;
        const mm = g.node.filter((n) => n.op_type === 'MatMul');
        expect(mm.map((n) => n.name.split('/')[0])).toEqual(['postprocess', 'postprocess']);
        expect(heads(g)).toHaveLength(0);
      }
      // With the raw outputs: one MatMul per level and head (NHWC outputs, no Transpose of them).
      const raw = decodeModel(exportOnnx(det, { withPostprocess: { rawOutputs: true } }).bytes).graph;
      expect(raw.node.filter((n) => n.op_type === 'MatMul')).toHaveLength(2 * nl);
      expect(heads(raw)).toHaveLength(0);
    } finally {
      det.dispose();
    }
  });
});

describe('exportOnnx on real modules', () => {
  it('EfficientNet features and classifier heads; EfficientDet test model with post-processing', async () => {
    const b0 = createModel('effdet_test_efficientnet', { numClasses: 10 });
    try {
      const ex = await check(
        b0,
        [1, 64, 64, 3],
        { task: 'classifier', dynamicBatch: true },
        [1, 2],
        1e-4,
        (x) => {
          const pre = b0.forwardHead(b0.forwardFeatures(x), { preLogits: true });
          return [b0.classifier!.forward(pre), pre];
        },
      );
      expect(ex.outputs.map((o) => o.name)).toEqual(['logits', 'pre_logits']);
      const fx = await check(b0, [1, 64, 64, 3], { task: 'features' }, [1], 1e-4, (x) => b0.features(x));
      expect(fx.outputs.map((o) => o.name)).toEqual([
        'features.0',
        'features.1',
        'features.2',
        'features.3',
        'features.4',
      ]);
    } finally {
      b0.dispose();
    }
  });

  it('leaves no tensors behind and restores the engine, the module methods and the modes', async () => {
    const det = createEfficientDet('test_efficientdet').materialize();
    det.train();
    await expectNoLeaks(() => exportOnnx(det, { withPostprocess: true, dynamicBatch: true }), 'exportOnnx');
    expect(det.training).toBe(true);
    expect(det.folded).toBe(false);
    expect(det.backbone.training).toBe(true);
    expect(Object.hasOwn(tf.engine(), 'runKernel')).toBe(false);
    expect(det.namedModules().some(([, m]) => Object.hasOwn(m, 'forward'))).toBe(false);
    det.dispose();
  });

  it('float16 weights: half the file, outputs within float16 rounding', async () => {
    const m = createModel('effdet_test_efficientnet', { numClasses: 10 });
    try {
      const full = exportOnnx(m, { inputSize: [64, 64] });
      const half = await check(m, [1, 64, 64, 3], { fp16: true }, [1], 2e-2, (x) => {
        const pre = m.forwardHead(m.forwardFeatures(x), { preLogits: true });
        return [m.classifier!.forward(pre), pre];
      });
      expect(half.bytes.length).toBeLessThan(0.6 * full.bytes.length);
      const model = decodeModel(half.bytes);
      expect(model.graph.initializer.filter((t) => t.data_type === 10).length).toBeGreaterThan(5);
      expect(half.metadata.weights_dtype).toBe('float16');
    } finally {
      m.dispose();
    }
  });
});

describe('bad input fails loudly, naming the module', () => {
  it('an unsupported kernel', () => {
    const m = new Wrap((x) => tf.cumsum(x, 1));
    expect(() => exportOnnx(m, { inputSize: [4, 4] })).toThrow(
      /exportOnnx: unsupported TF.js kernel 'Cumsum' in module 'inner' \(no ONNX translation; supported: .*Conv2D/,
    );
    expect(Object.hasOwn(tf.engine(), 'runKernel')).toBe(false);
  });

  it('a dynamic batch through a reshape that folds the batch away', () => {
    const m = new Wrap((x) => tf.reshape(x, [-1, 4]));
    expect(() => exportOnnx(m, { inputSize: [4, 4], dynamicBatch: true })).toThrow(
      /kernel 'Reshape' in module 'inner': Reshape \[2, 4, 4, 3\] -> \[24, 4\] mixes the batch dimension with other axes, so it cannot be exported with a dynamic batch/,
    );
    // A fixed batch is fine.
    expect(exportOnnx(m, { inputSize: [4, 4] }).outputs[0].shape).toEqual([1, 4]);
  });

  it('a convolution with computed weights, an unsupported padding mode, an output independent of the input', () => {
    const computed = new Wrap((x) =>
      tf.conv2d(x, tf.reshape(tf.slice(x, [0, 0, 0, 0], [1, 1, 1, 3]), [1, 1, 3, 1]), 1, 'same'),
    );
    expect(() => exportOnnx(computed, { inputSize: [4, 4] })).toThrow(
      /kernel 'Conv2D' in module 'inner': Conv2D: the filter must be a constant/,
    );
    const sym = new Wrap((x) =>
      tf.mirrorPad(
        x,
        [
          [0, 0],
          [1, 1],
          [1, 1],
          [0, 0],
        ],
        'symmetric',
      ),
    );
    expect(() => exportOnnx(sym, { inputSize: [4, 4] })).toThrow(
      /kernel 'MirrorPad' in module 'inner': .*only 'reflect'/,
    );
    const constant = new Wrap(() => tf.ones([1, 2]));
    expect(() => exportOnnx(constant, { inputSize: [4, 4] })).toThrow(
      /output 'output' does not depend on the input/,
    );
  });

  it('a pooling rounding mode ONNX would not reproduce', () => {
    const m = new Wrap((x) => tf.avgPool(x, 3, 2, 1, 'ceil'));
    expect(() => exportOnnx(m, { inputSize: [6, 6] })).toThrow(
      /kernel 'AvgPool' in module 'inner': AvgPool: ONNX would produce 3x3 but TF.js produced 4x4 \(rounding mode\)/,
    );
  });

  it('options that do not fit the model', () => {
    const det = createEfficientDet('test_efficientdet');
    const net = createModel('effdet_test_efficientnet');
    try {
      expect(() => exportOnnx(det, { inputSize: [64, 64] })).toThrow(
        /inputSize \[64, 64\] differs from test_efficientdet's config imageSize \[128, 128\]/,
      );
      expect(() => exportOnnx(net, { withPostprocess: true })).toThrow(
        /withPostprocess needs an EfficientDet, got EfficientNet/,
      );
      expect(() => exportOnnx(det, { opset: 12 })).toThrow(/opset must be an integer in 13..21, got 12/);
      expect(() => exportOnnx(new Wrap((x) => x), {})).toThrow(/give inputSize \[height, width\] for a Wrap/);
      expect(() =>
        exportOnnx(new Wrap((x) => tf.relu(x)), { inputSize: [4, 4], withPreprocess: true }),
      ).toThrow(/withPreprocess needs mean and std for a Wrap/);
      const bad = tf.zeros([1, 64, 64, 3]) as tf.Tensor4D;
      expect(() => exportOnnx(det, { sampleInput: bad })).toThrow(
        /sampleInput must be float32 \[1, 128, 128, 3\], got float32 \[1,64,64,3\]/,
      );
      bad.dispose();
      expect(() => exportOnnx(net, { inputSize: [64, 64], task: 'detection' as 'classifier' })).toThrow(
        /task must be 'classifier' or 'features'/,
      );
      expect(() => exportOnnx(net, {})).toThrow(
        /effdet_test_efficientnet has no default input size; give inputSize/,
      );
    } finally {
      det.dispose();
      net.dispose();
    }
  });
});

describe('structural checker and protobuf round trip', () => {
  let bytes: Uint8Array;
  let model: ModelMessage;
  beforeAll(() => {
    const det = createEfficientDet('test_efficientdet');
    bytes = exportOnnx(det, { withPostprocess: true, withPreprocess: true }).bytes;
    det.dispose();
    model = decodeModel(bytes);
  });
  const mutate = (f: (m: ModelMessage) => void) => {
    const m = decodeModel(bytes);
    f(m);
    return checkOnnxModel(m).errors.join('\n');
  };

  it('a valid export passes; decoding and re-encoding gives the same bytes', () => {
    const rep = checkOnnxModel(bytes);
    expect(rep.errors).toEqual([]);
    expect(rep.opTypes.NonMaxSuppression).toBe(1);
    expect(Buffer.compare(Buffer.from(encodeModel(model)), Buffer.from(bytes))).toBe(0);
    expect(model.ir_version).toBe(8);
    expect(model.opset_import).toEqual([{ domain: '', version: 17 }]);
  });

  it('finds broken graphs', () => {
    expect(mutate((m) => m.graph.node.shift())).toMatch(/is not defined before the node/);
    expect(mutate((m) => m.graph.node.reverse())).toMatch(/is not defined before the node/);
    expect(mutate((m) => (m.graph.node[1].output[0] = m.graph.node[0].output[0]))).toMatch(
      /is defined twice/,
    );
    expect(mutate((m) => (m.graph.node.find((n) => n.op_type === 'Conv')!.op_type = 'Convolution'))).toMatch(
      /no schema for op 'Convolution'/,
    );
    expect(
      mutate((m) =>
        m.graph.node.find((n) => n.op_type === 'Conv')!.attribute.push({ name: 'group', type: 1, f: 1 }),
      ),
    ).toMatch(/attribute 'group' appears twice|attribute 'group' has type 1, expected 2/);
    expect(
      mutate((m) => (m.graph.initializer[0].raw_data = m.graph.initializer[0].raw_data!.subarray(1))),
    ).toMatch(/holds \d+ bytes, expected/);
    expect(mutate((m) => (m.opset_import[0].version = 12))).toMatch(
      /Transpose needs opset >= 13, the model imports 12/,
    );
    expect(
      mutate((m) =>
        m.graph.node
          .find((n) => n.op_type === 'Reshape')!
          .attribute.push({ name: 'allowzero', type: 2, i: 0 }),
      ),
    ).toBe('');
    expect(
      mutate((m) => {
        m.opset_import[0].version = 13;
        m.graph.node
          .find((n) => n.op_type === 'Reshape')!
          .attribute.push({ name: 'allowzero', type: 2, i: 0 });
      }),
    ).toMatch(/unknown attribute 'allowzero' \(opset 13\)/);
    expect(mutate((m) => m.graph.node.find((n) => n.op_type === 'Concat')!.attribute.splice(0))).toMatch(
      /required attribute 'axis' is missing/,
    );
    expect(mutate((m) => m.graph.node.find((n) => n.op_type === 'Reshape')!.input.pop())).toMatch(
      /1 inputs, expected 2..2/,
    );
    expect(mutate((m) => m.metadata_props.push({ key: 'model', value: 'x' }))).toMatch(
      /metadata_props has the key 'model' twice/,
    );
    expect(mutate((m) => (m.graph.output[0].name = 'nothing'))).toMatch(
      /graph output 'nothing' is never produced/,
    );
    expect(checkOnnxModel(new Uint8Array([0x0a, 0xff, 0xff])).errors[0]).toMatch(/not a valid ModelProto/);
  });

  it('the builder refuses undefined inputs and taken names', () => {
    const g = new GraphBuilder(17);
    g.addInput('x', 'float32', [1]);
    expect(() => g.op('Relu', ['y'])).toThrow(/uses 'y', which is not defined yet/);
    expect(() => g.addInput('x', 'float32', [1])).toThrow(/the name 'x' is taken/);
    expect(() => new GraphBuilder(22)).toThrow(/opset must be an integer in 13..21/);
  });
});

describe('helpers', () => {
  it('the vendored schema and the generated descriptor agree', () => {
    const text = readFileSync(join(__dirname, '..', 'proto', 'onnx.proto'), 'utf8');
    const json = protobuf.parse(text, { keepCase: true }).root.toJSON();
    expect(JSON.parse(JSON.stringify(json))).toEqual(ONNX_SCHEMA);
  });

  it('host transposes and float16 rounding', () => {
    const d = Float32Array.from({ length: 24 }, (_, i) => i);
    const t = tf.tensor(d, [2, 3, 4]);
    const p = tf.transpose(t, [2, 0, 1]);
    expect(Array.from(permuteData(d, [2, 3, 4], [2, 0, 1]))).toEqual(Array.from(p.dataSync()));
    tf.dispose([t, p]);
    const h = toHalfBits(
      Float32Array.from([
        0,
        -0,
        1,
        -2,
        65504,
        70000,
        1e-8,
        6.1e-5,
        0.1,
        Number.NaN,
        Number.POSITIVE_INFINITY,
      ]),
    );
    expect(Array.from(h)).toEqual([
      0, 0x8000, 0x3c00, 0xc000, 0x7bff, 0x7c00, 0, 0x03ff, 0x2e66, 0x7e00, 0x7c00,
    ]);
  });

  it('OnnxExportError is what the exporter throws', () => {
    const m = new Wrap((x) => tf.cumsum(x, 1));
    expect(() => exportOnnx(m, { inputSize: [2, 2] })).toThrow(OnnxExportError);
  });
});
