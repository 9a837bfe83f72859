import { registerGradients } from '@effdet/layers';
import { crossEntropyLoss, diceLoss, focalLoss, jaccardLoss } from '@effdet/segmentation';
import { expectNoLeaks } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';

const { log, exp, LN2 } = Math;

/**
 * Two pixels, three classes, NHWC [1, 1, 2, 3]. softmax(pixel 0) = [1/4, 1/2, 1/4] (target 1),
 * softmax(pixel 1) = [3/5, 1/5, 1/5] (target 0).
 */
const LOGITS = [0, LN2, 0, log(3), 0, 0];
const logits = () => tf.tensor4d(LOGITS, [1, 1, 2, 3]);
const target = (a: number, b: number) => tf.tensor3d([a, b], [1, 1, 2], 'int32');

/** The scalar a loss returns; the call must leave no tensor behind but its (disposed) result. */
async function loss(fn: () => tf.Tensor): Promise<number> {
  return expectNoLeaks(() => {
    const t = fn();
    expect(t.shape).toEqual([]);
    const v = t.dataSync()[0];
    t.dispose();
    return v;
  }, 'loss');
}

describe('crossEntropyLoss (PyTorch cross_entropy)', () => {
  let x: tf.Tensor;
  let y: tf.Tensor;
  let yIgn: tf.Tensor;
  beforeAll(() => {
    x = logits();
    y = target(1, 0);
    yIgn = target(1, 255);
  });
  afterAll(() => tf.dispose([x, y, yIgn]));

  it('mean, sum and none', async () => {
    expect(await loss(() => crossEntropyLoss(x, y))).toBeCloseTo((LN2 + log(5 / 3)) / 2, 6);
    expect(await loss(() => crossEntropyLoss(x, y, { reduction: 'sum' }))).toBeCloseTo(LN2 + log(5 / 3), 6);
    const none = crossEntropyLoss(x, y, { reduction: 'none' });
    expect(none.shape).toEqual([1, 1, 2]);
    expect(Array.from(none.dataSync())).toEqual([expect.closeTo(LN2, 6), expect.closeTo(log(5 / 3), 6)]);
    none.dispose();
  });

  it('class weights: weighted mean over the weights of the target classes', async () => {
    const v = await loss(() => crossEntropyLoss(x, y, { classWeights: [2, 1, 1] }));
    expect(v).toBeCloseTo((1 * LN2 + 2 * log(5 / 3)) / 3, 6);
  });

  it('ignore index: the pixel is left out of sum and count; all ignored is NaN as in PyTorch', async () => {
    expect(await loss(() => crossEntropyLoss(x, yIgn, { ignoreIndex: 255 }))).toBeCloseTo(LN2, 6);
    const all = target(255, 255);
    expect(Number.isNaN(await loss(() => crossEntropyLoss(x, all, { ignoreIndex: 255 })))).toBe(true);
    all.dispose();
  });

  it('label smoothing, plain and with class weights', async () => {
    const smooth0 = log(32); // -(ln 1/4 + ln 1/2 + ln 1/4)
    const smooth1 = log(125 / 3); // -(ln 3/5 + 2 ln 1/5)
    const plain = 0.9 * ((LN2 + log(5 / 3)) / 2) + (0.1 / 3) * ((smooth0 + smooth1) / 2);
    expect(await loss(() => crossEntropyLoss(x, y, { labelSmoothing: 0.1 }))).toBeCloseTo(plain, 6);
    // weighted: smooth_i = -sum_c w_c log p_c, both terms divided by the summed target weights (1 + 2)
    const ws0 = 2 * log(4) + LN2 + log(4);
    const ws1 = 2 * log(5 / 3) + 2 * log(5);
    const weighted = 0.9 * ((LN2 + 2 * log(5 / 3)) / 3) + (0.1 / 3) * ((ws0 + ws1) / 3);
    expect(
      await loss(() => crossEntropyLoss(x, y, { labelSmoothing: 0.1, classWeights: [2, 1, 1] })),
    ).toBeCloseTo(weighted, 6);
  });

  it('binary mode: BCE with logits over the kept elements, smp soft targets', async () => {
    const bx = tf.tensor4d([0, log(3)], [1, 1, 2, 1]);
    const by = tf.tensor3d([1, 0], [1, 1, 2]);
    const byIgn = tf.tensor3d([1, -1], [1, 1, 2]);
    expect(await loss(() => crossEntropyLoss(bx, by, { mode: 'binary' }))).toBeCloseTo((LN2 + log(4)) / 2, 6);
    expect(await loss(() => crossEntropyLoss(bx, byIgn, { mode: 'binary', ignoreIndex: -1 }))).toBeCloseTo(
      LN2,
      6,
    );
    // smoothing 0.1: targets 0.9 and 0.1
    const s1 = -(0.1 * log(3 / 4) + 0.9 * log(1 / 4));
    expect(await loss(() => crossEntropyLoss(bx, by, { mode: 'binary', labelSmoothing: 0.1 }))).toBeCloseTo(
      (LN2 + s1) / 2,
      6,
    );
    tf.dispose([bx, by, byIgn]);
  });
});

describe('diceLoss and jaccardLoss (smp)', () => {
  // Binary probabilities (fromLogits false): intersection 1.4, prediction sum 1.6, target sum 3.
  let p: tf.Tensor;
  let t: tf.Tensor;
  beforeAll(() => {
    p = tf.tensor4d([0.8, 0.2, 0.6, 0.0], [1, 2, 2, 1]);
    t = tf.tensor4d([1, 0, 1, 1], [1, 2, 2, 1]);
  });
  afterAll(() => tf.dispose([p, t]));

  it('binary: 1 - 2I / (P + T), 1 - I / (P + T - I), log loss, ignore index', async () => {
    const opts = { mode: 'binary' as const, fromLogits: false };
    expect(await loss(() => diceLoss(p, t, opts))).toBeCloseTo(1 - 2.8 / 4.6, 6);
    expect(await loss(() => jaccardLoss(p, t, opts))).toBeCloseTo(1 - 1.4 / 3.2, 6);
    expect(await loss(() => diceLoss(p, t, { ...opts, logLoss: true }))).toBeCloseTo(-log(2.8 / 4.6), 6);
    const tIgn = tf.tensor4d([1, 255, 1, 1], [1, 2, 2, 1]);
    expect(await loss(() => diceLoss(p, tIgn, { ...opts, ignoreIndex: 255 }))).toBeCloseTo(1 - 2.8 / 4.4, 6);
    tIgn.dispose();
    // From logits: sigmoid first (logit 0 -> 0.5).
    const z = tf.zeros([1, 2, 2, 1]);
    expect(await loss(() => diceLoss(z, t, { mode: 'binary' }))).toBeCloseTo(1 - 3 / 5, 6);
    z.dispose();
  });

  it('multiclass from logits: per-class soft Dice, classes without true pixels count 0', async () => {
    const x = logits();
    const y = target(1, 0);
    // class 0: P = .25 + .6, T = 1, I = .6; class 1: P = .5 + .2, T = 1, I = .5; class 2: no true pixel.
    const d0 = 1 - 1.2 / 1.85;
    const d1 = 1 - 1.0 / 1.7;
    expect(await loss(() => diceLoss(x, y, { mode: 'multiclass' }))).toBeCloseTo((d0 + d1 + 0) / 3, 6);
    expect(await loss(() => diceLoss(x, y, { mode: 'multiclass', classes: [0, 1] }))).toBeCloseTo(
      (d0 + d1) / 2,
      6,
    );
    // smooth 1: (I + 1) / (I + (fp + fn) / 2 + 1); class 2 is still masked out.
    const s0 = 1 - 1.6 / (0.6 + (0.25 + 0.4) / 2 + 1);
    const s1 = 1 - 1.5 / (0.5 + (0.2 + 0.5) / 2 + 1);
    expect(await loss(() => diceLoss(x, y, { mode: 'multiclass', smooth: 1 }))).toBeCloseTo((s0 + s1) / 3, 6);
    const j0 = 1 - 0.6 / (0.85 + 1 - 0.6);
    const j1 = 1 - 0.5 / (0.7 + 1 - 0.5);
    expect(await loss(() => jaccardLoss(x, y, { mode: 'multiclass' }))).toBeCloseTo((j0 + j1) / 3, 6);
    // ignoring pixel 1 leaves only pixel 0 (target 1): class 0 has no true pixel, class 1: P = .5, T = 1, I = .5
    const yIgn = target(1, 255);
    expect(await loss(() => diceLoss(x, yIgn, { mode: 'multiclass', ignoreIndex: 255 }))).toBeCloseTo(
      (1 - 1 / 1.5) / 3,
      6,
    );
    tf.dispose([x, y, yIgn]);
  });

  it('multilabel: one binary Dice per channel', async () => {
    const mp = tf.tensor4d([0.5, 1, 1, 0], [1, 1, 2, 2]); // pixel 0: (0.5, 1), pixel 1: (1, 0)
    const mt = tf.tensor4d([1, 1, 0, 0], [1, 1, 2, 2]);
    // channel 0: P 1.5, T 1, I 0.5; channel 1: P 1, T 1, I 1
    const v = await loss(() => diceLoss(mp, mt, { mode: 'multilabel', fromLogits: false }));
    expect(v).toBeCloseTo((1 - 1 / 2.5 + 0) / 2, 6);
    tf.dispose([mp, mt]);
  });
});

describe('focalLoss (smp)', () => {
  // logit 0 with target 1: p_t = 1/2, BCE = ln 2; logit ln 3 with target 0: p_t = 1/4, BCE = ln 4.
  let x: tf.Tensor;
  let y: tf.Tensor;
  beforeAll(() => {
    x = tf.tensor4d([0, log(3)], [1, 1, 2, 1]);
    y = tf.tensor3d([1, 0], [1, 1, 2]);
  });
  afterAll(() => tf.dispose([x, y]));

  it('binary: (1 - p_t)^gamma BCE, alpha, normalized, reduced', async () => {
    const l0 = 0.25 * LN2;
    const l1 = (9 / 16) * log(4);
    expect(await loss(() => focalLoss(x, y, { mode: 'binary' }))).toBeCloseTo((l0 + l1) / 2, 6);
    expect(await loss(() => focalLoss(x, y, { mode: 'binary', reduction: 'sum' }))).toBeCloseTo(l0 + l1, 6);
    expect(await loss(() => focalLoss(x, y, { mode: 'binary', alpha: 0.25 }))).toBeCloseTo(
      (0.25 * l0 + 0.75 * l1) / 2,
      6,
    );
    expect(await loss(() => focalLoss(x, y, { mode: 'binary', normalized: true }))).toBeCloseTo(
      (l0 + l1) / (0.25 + 9 / 16) / 2,
      6,
    );
    // reduced threshold 0.5: p_t = 0.5 gives ((1 - .5) / .5)^2 = 1, p_t = .25 < .5 gives 1
    expect(await loss(() => focalLoss(x, y, { mode: 'binary', reducedThreshold: 0.5 }))).toBeCloseTo(
      (LN2 + log(4)) / 2,
      6,
    );
    const yIgn = tf.tensor3d([1, 7], [1, 1, 2]);
    expect(await loss(() => focalLoss(x, yIgn, { mode: 'binary', ignoreIndex: 7 }))).toBeCloseTo(l0, 6);
    yIgn.dispose();
  });

  it('multiclass: one-vs-rest sigmoid focal per class, each averaged over pixels, summed', async () => {
    const xm = logits();
    const ym = target(1, 0);
    const sig = (v: number) => 1 / (1 + exp(-v));
    const focal = (v: number, t: number) => {
      const p = t ? sig(v) : 1 - sig(v);
      return (1 - p) ** 2 * -log(p);
    };
    let expected = 0;
    for (let c = 0; c < 3; c++) {
      expected += (focal(LOGITS[c], c === 1 ? 1 : 0) + focal(LOGITS[3 + c], c === 0 ? 1 : 0)) / 2;
    }
    expect(await loss(() => focalLoss(xm, ym, { mode: 'multiclass' }))).toBeCloseTo(expected, 6);
    const yIgn = target(1, 255);
    let ign = 0;
    for (let c = 0; c < 3; c++) ign += focal(LOGITS[c], c === 1 ? 1 : 0);
    expect(await loss(() => focalLoss(xm, yIgn, { mode: 'multiclass', ignoreIndex: 255 }))).toBeCloseTo(
      ign,
      6,
    );
    tf.dispose([xm, ym, yIgn]);
  });
});

describe('losses: gradients and bad targets', () => {
  it('are differentiable with respect to the logits', () => {
    registerGradients(); // tfjs-core alone ships no gradient table
    const x = logits();
    const y = target(1, 0);
    for (const f of [
      (l: tf.Tensor) => crossEntropyLoss(l, y, { classWeights: [1, 2, 3], labelSmoothing: 0.1 }),
      (l: tf.Tensor) => diceLoss(l, y, { mode: 'multiclass', validate: false }),
      (l: tf.Tensor) => jaccardLoss(l, y, { mode: 'multiclass' }),
      (l: tf.Tensor) => focalLoss(l, y, { mode: 'multiclass', alpha: 0.25 }),
      (l: tf.Tensor) => focalLoss(l, y, { mode: 'multiclass', reducedThreshold: 0.5, normalized: true }),
    ]) {
      const g = tf.grad((l: tf.Tensor) => f(l) as tf.Scalar)(x);
      expect(g.shape).toEqual([1, 1, 2, 3]);
      const v = Array.from(g.dataSync());
      expect(v.every(Number.isFinite) && v.some((d) => d !== 0)).toBe(true);
      g.dispose();
    }
    // CE gradient is softmax - onehot, averaged over the two pixels.
    const g = tf.grad((l: tf.Tensor) => crossEntropyLoss(l, y) as tf.Scalar)(x);
    const want = [0.25, -0.5, 0.25, -0.4, 0.2, 0.2].map((v) => v / 2);
    expect(Array.from(g.dataSync())).toEqual(want.map((v) => expect.closeTo(v, 6)));
    tf.dispose([x, y, g]);
  });

  it('wrong class ids, shapes and modes name what came', () => {
    const x = logits();
    const bad = target(1, 3);
    expect(() => crossEntropyLoss(x, bad)).toThrow(
      'crossEntropyLoss: target (multiclass) must hold class ids in [0, 3) or the ignoreIndex -100, got 3 at flat index 1 (shape [1,1,2])',
    );
    expect(() => diceLoss(x, bad, { mode: 'multiclass', ignoreIndex: 255 })).toThrow(
      /diceLoss: target \(multiclass\) must hold class ids in \[0, 3\) or the ignoreIndex 255, got 3/,
    );
    const wrongShape = tf.zeros([1, 2, 2], 'int32');
    expect(() => focalLoss(x, wrongShape, { mode: 'multiclass' })).toThrow(
      /focalLoss: mode 'multiclass' needs target class ids \[1,1,2\] for logits \[1,1,2,3\], got \[1,2,2\]/,
    );
    expect(() => diceLoss(x, bad, { mode: 'binary' })).toThrow(/mode 'binary' needs logits with 1 channel/);
    const soft = tf.tensor4d([0.5, 2], [1, 1, 2, 1]);
    const bx = tf.zeros([1, 1, 2, 1]);
    expect(() => jaccardLoss(bx, soft, { mode: 'binary' })).toThrow(
      /jaccardLoss: target \(binary\) must hold values in \[0, 1\] \(0\/1 masks or soft targets\), got 2 at flat index 1/,
    );
    expect(() => crossEntropyLoss(x, target(1, 0), { classWeights: [1, 2] })).toThrow(
      /classWeights must be 3 non-negative numbers \(one per class\), got \[1,2\]/,
    );
    expect(() => diceLoss(x, bad, { mode: 'multiclas' as never })).toThrow(
      /mode must be 'binary', 'multiclass' or 'multilabel'/,
    );
    tf.dispose([x, bad, wrongShape, soft, bx]);
  });
});
