import { registerGradients } from '@effdet/layers';
import { describeWithBackends, expectNoLeaks } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';
import { Anchors } from './anchors.js';
import { getEfficientDetConfig } from './config.js';
import { AnchorLabeler, type BatchLabels, disposeLabelTensors, labelsToTensors } from './labeler.js';
import {
  type DetectionLossOptions,
  detectionLoss,
  focalLoss,
  huberLoss,
  lossOptionsFromConfig,
} from './loss.js';

// Local aliases: global Math lookups are very slow inside Jest's VM.
const exp = Math.exp;
const log = Math.log;
const abs = Math.abs;
const pow = Math.pow;

function sigmoid(x: number): number {
  return 1 / (1 + exp(-x));
}

/** effdet new_focal_loss for one entry, the formula as written (float64). */
function focalRef(x: number, t: number, alpha: number, gamma: number, smoothing = 0): number {
  const p = sigmoid(x);
  const pt = t * p + (1 - t) * (1 - p);
  const at = t * alpha + (1 - t) * (1 - alpha);
  const ts = smoothing > 0 ? t * (1 - smoothing) + 0.5 * smoothing : t;
  const ce = Math.max(x, 0) - x * ts + log(1 + exp(-abs(x)));
  return at * pow(1 - pt, gamma) * ce;
}

function huberRef(e: number, delta: number): number {
  const q = Math.min(abs(e), delta);
  return 0.5 * q * q + delta * (abs(e) - q);
}

interface Case {
  labels: BatchLabels;
  classOut: Float32Array[];
  boxOut: Float32Array[];
  numClasses: number;
}

/** effdet loss_fn written out over flat arrays (float64): the oracle. */
function lossRef(c: Case, o: DetectionLossOptions = {}) {
  const alpha = o.alpha ?? 0.25;
  const gamma = o.gamma ?? 1.5;
  const delta = o.delta ?? 0.1;
  const eps = o.legacyFocal ? 0 : (o.labelSmoothing ?? 0);
  const norm = c.labels.numPositives.reduce((a, b) => a + b, 0) + 1;
  let cls = 0;
  let box = 0;
  c.labels.clsTargets.forEach((targets, l) => {
    targets.forEach((target, k) => {
      if (target === -2) return;
      for (let j = 0; j < c.numClasses; j++) {
        cls += focalRef(c.classOut[l][k * c.numClasses + j], target === j ? 1 : 0, alpha, gamma, eps);
      }
    });
    c.labels.boxTargets[l].forEach((t, e) => {
      if (t !== 0) box += huberRef(c.boxOut[l][e] - t, delta);
    });
  });
  const classLoss = cls / norm;
  const boxLoss = box / (4 * norm);
  return { loss: classLoss + (o.boxLossWeight ?? 50) * boxLoss, classLoss, boxLoss };
}

function rng(seed: number) {
  let s = seed;
  return () => {
    s = (s * 16807) % 2147483647;
    return s / 2147483647;
  };
}

/**
 * A small labelled batch: 64x64 input, levels 3-4, 3 aspect ratios (A = 3), C classes, 2 images with boxes,
 * padding and one ignore box; logits around the focal-loss prior, box outputs near the targets.
 */
function makeCase(numClasses: number, seed: number, logitScale = 2): Case {
  const anchors = new Anchors({
    imageSize: [64, 64],
    minLevel: 3,
    maxLevel: 4,
    numScales: 1,
    aspectRatios: [
      [1, 1],
      [1.4, 0.7],
      [0.7, 1.4],
    ],
    anchorScale: 1.5,
  });
  const labeler = new AnchorLabeler(anchors, numClasses);
  anchors.dispose();
  const labels = labeler.labelBatch(
    [
      // The last real box is centred on an anchor: its positive gets ty = tx = 0, which the box loss masks.
      [2, 0, 6, 8, 10, 20, 30, 44, 40, 8, 60, 30, 0, 0, 0, 0, 16, 12, 24, 28],
      [16, 16, 48, 48, 3, 40, 13, 60],
    ],
    [
      [1, numClasses, Math.min(2, numClasses), -1, 1],
      [1, numClasses],
    ],
    { ignoreBoxes: [null, [[44, 0, 64, 24]]] },
  );
  const r = rng(seed);
  const classOut = labels.clsTargets.map((t) =>
    Float32Array.from({ length: t.length * numClasses }, () => -3 + logitScale * (r() * 2 - 1)),
  );
  // Box outputs: target + noise away from the Huber kinks (|e| = 0 and |e| = delta).
  const boxOut = labels.boxTargets.map((t) =>
    t.map((v) => {
      const e = 0.02 + 0.06 * r();
      return v + (r() < 0.5 ? e : e + 0.15) * (r() < 0.5 ? -1 : 1);
    }),
  );
  return { labels, classOut, boxOut, numClasses };
}

function outputs(c: Case) {
  return {
    classOut: c.labels.levelShapes.map(([h, w, A], l) =>
      tf.tensor4d(c.classOut[l], [c.labels.batchSize, h, w, A * c.numClasses]),
    ),
    boxOut: c.labels.levelShapes.map(([h, w, A], l) =>
      tf.tensor4d(c.boxOut[l], [c.labels.batchSize, h, w, A * 4]),
    ),
  };
}

function values(r: { loss: tf.Tensor; classLoss: tf.Tensor; boxLoss: tf.Tensor }) {
  const v = {
    loss: r.loss.dataSync()[0],
    classLoss: r.classLoss.dataSync()[0],
    boxLoss: r.boxLoss.dataSync()[0],
  };
  tf.dispose([r.loss, r.classLoss, r.boxLoss]);
  return v;
}

function expectRel(actual: number, expected: number, rtol: number, what: string) {
  const rel = abs(actual - expected) / Math.max(abs(expected), 1e-12);
  if (!(rel <= rtol)) throw new Error(`${what}: ${actual} vs ${expected} (relative error ${rel} > ${rtol})`);
}

beforeAll(() => {
  registerGradients();
});

describe('focalLoss and huberLoss against hand-computed values', () => {
  it('focal loss: x = 0 gives alpha_t * 0.5^1.5 * ln 2; the formula elsewhere', () => {
    const x = tf.tensor1d([0, 0, 2, -2, 3, -1.5]);
    const t = tf.tensor1d([1, 0, 1, 1, 0, 0]);
    const got = Array.from(focalLoss(x, t).dataSync());
    // By hand: 0.25 * 0.3535534 * 0.6931472 and 0.75 * 0.3535534 * 0.6931472.
    expect(got[0]).toBeCloseTo(0.0612661, 6);
    expect(got[1]).toBeCloseTo(0.1837984, 6);
    const xs = [0, 0, 2, -2, 3, -1.5];
    const ts = [1, 0, 1, 1, 0, 0];
    for (const [i, g] of got.entries()) expectRel(g, focalRef(xs[i], ts[i], 0.25, 1.5), 1e-5, `entry ${i}`);
    // Label smoothing changes only the cross entropy; alpha / gamma as given.
    const sm = Array.from(focalLoss(x, t, { labelSmoothing: 0.1, alpha: 0.4, gamma: 2 }).dataSync());
    for (const [i, g] of sm.entries())
      expectRel(g, focalRef(xs[i], ts[i], 0.4, 2, 0.1), 1e-5, `smoothed ${i}`);
    tf.dispose([x, t]);
  });

  it('focal loss stays finite and exact for huge logits (log-sigmoid form)', () => {
    const x = tf.tensor1d([100, -100, 100, -100, 1e4]);
    const t = tf.tensor1d([1, 1, 0, 0, 0]);
    const got = Array.from(focalLoss(x, t).dataSync());
    // Right and confident -> 0; wrong and confident -> alpha_t * 1 * |x|.
    expect(got[0]).toBeCloseTo(0, 6);
    expect(got[1]).toBeCloseTo(25, 4);
    expect(got[2]).toBeCloseTo(75, 4);
    expect(got[3]).toBeCloseTo(0, 6);
    expect(got[4]).toBeCloseTo(7500, 0);
    tf.dispose([x, t]);
  });

  it('huber loss: 0.5 e^2 inside delta, delta * (|e| - delta / 2) outside', () => {
    const a = tf.tensor1d([0.05, -0.3, 0, 1.2]);
    const b = tf.tensor1d([0, 0, 0, 1]);
    // 0.5 * 0.0025; 0.5 * 0.01 + 0.1 * 0.2; 0; 0.5 * 0.01 + 0.1 * 0.1.
    const none = Array.from(huberLoss(a, b, { delta: 0.1, reduction: 'none' }).dataSync());
    for (const [i, v] of [0.00125, 0.025, 0, 0.015].entries()) expect(none[i]).toBeCloseTo(v, 7);
    expect(huberLoss(a, b, { delta: 0.1 }).dataSync()[0]).toBeCloseTo(0.04125, 7);
    expect(huberLoss(a, b, { delta: 0.1, reduction: 'mean' }).dataSync()[0]).toBeCloseTo(0.04125 / 4, 7);
    const w = tf.tensor1d([1, 0, 1, 2]);
    expect(huberLoss(a, b, { delta: 0.1, weights: w }).dataSync()[0]).toBeCloseTo(0.00125 + 0.03, 7);
    // delta 1 (the reference default).
    expect(huberLoss(a, b).dataSync()[0]).toBeCloseTo(0.00125 + 0.045 + 0 + 0.02, 7);
    tf.dispose([a, b, w]);
  });

  it('names bad arguments', () => {
    const a = tf.tensor1d([1, 2]);
    const b = tf.tensor1d([1, 2, 3]);
    expect(() => focalLoss(a, b)).toThrow(
      /focalLoss: logits \[2\] and targets \[3\] must have the same shape/,
    );
    expect(() => huberLoss(a, b)).toThrow(/huberLoss: input \[2\] and target \[3\]/);
    expect(() => huberLoss(a, a, { delta: 0 })).toThrow(/delta must be a finite number > 0, got 0/);
    expect(() => focalLoss(a, a, { labelSmoothing: 2 })).toThrow(/labelSmoothing must be in \[0, 1\], got 2/);
    tf.dispose([a, b]);
  });
});

describeWithBackends('detectionLoss against the reference formula', () => {
  it('matches effdet loss_fn on a labelled batch (2 images, 2 levels, A = 3, C = 4, ignored anchors)', async () => {
    const c = makeCase(4, 11);
    // The case covers what the reference masks: ignored anchors and exactly-zero codes of positive anchors.
    expect(c.labels.clsTargets.some((t) => t.includes(-2))).toBe(true);
    expect(c.labels.numPositives[0]).toBeGreaterThan(2);
    const zeroCodeOnPositive = c.labels.clsTargets.some((t, l) =>
      Array.from(t).some((v, k) => v >= 0 && c.labels.boxTargets[l].subarray(4 * k, 4 * k + 4).includes(0)),
    );
    expect(zeroCodeOnPositive).toBe(true);
    const o = outputs(c);
    const ref = lossRef(c);
    const got = await expectNoLeaks(() => values(detectionLoss(o, c.labels)));
    expectRel(got.classLoss, ref.classLoss, 2e-6, 'classLoss');
    expectRel(got.boxLoss, ref.boxLoss, 2e-6, 'boxLoss');
    expectRel(got.loss, ref.loss, 2e-6, 'loss');
    // Tensors in, same result; precomputed int32 / float32 targets as the reference's label_* keys.
    const t = labelsToTensors(c.labels);
    const fromTensors = values(detectionLoss(o, t, { numClasses: 4 }));
    expectRel(fromTensors.loss, ref.loss, 2e-6, 'loss from tensors');
    disposeLabelTensors(t);
    tf.dispose([...o.classOut, ...o.boxOut]);
  });

  it('follows alpha, gamma, delta, boxLossWeight, labelSmoothing and legacyFocal', () => {
    const c = makeCase(3, 5);
    const o = outputs(c);
    const variants: DetectionLossOptions[] = [
      { alpha: 0.4, gamma: 2, delta: 0.05, boxLossWeight: 10 },
      { labelSmoothing: 0.1 },
      { labelSmoothing: 0.1, legacyFocal: true },
      { gamma: 0 },
    ];
    for (const v of variants) {
      const got = values(detectionLoss(o, c.labels, v));
      const ref = lossRef(c, v);
      for (const k of ['loss', 'classLoss', 'boxLoss'] as const)
        expectRel(got[k], ref[k], 2e-6, `${JSON.stringify(v)} ${k}`);
    }
    // legacyFocal is the unsmoothed form.
    const legacy = values(detectionLoss(o, c.labels, { labelSmoothing: 0.1, legacyFocal: true }));
    const plain = values(detectionLoss(o, c.labels));
    expect(legacy.loss).toBeCloseTo(plain.loss, 5);
    // The config's defaults are the defaults.
    const cfgOpts = lossOptionsFromConfig(getEfficientDetConfig('tf_efficientdet_d0', { numClasses: 3 }));
    expect(cfgOpts).toEqual({
      numClasses: 3,
      alpha: 0.25,
      gamma: 1.5,
      delta: 0.1,
      boxLossWeight: 50,
      labelSmoothing: 0,
    });
    expect(values(detectionLoss(o, c.labels, cfgOpts)).loss).toBeCloseTo(plain.loss, 5);
    tf.dispose([...o.classOut, ...o.boxOut]);
  });

  it('a single class (C = 1) and huge logits stay exact and finite', () => {
    const c = makeCase(1, 3);
    const o = outputs(c);
    expectRel(values(detectionLoss(o, c.labels)).loss, lossRef(c).loss, 2e-6, 'C = 1');
    tf.dispose([...o.classOut, ...o.boxOut]);
    const big = makeCase(2, 9, 400);
    const ob = outputs(big);
    const got = values(detectionLoss(ob, big.labels));
    expect(Number.isFinite(got.loss)).toBe(true);
    expectRel(got.classLoss, lossRef(big).classLoss, 1e-5, 'logits up to +-400');
    tf.dispose([...ob.classOut, ...ob.boxOut]);
  });

  it('gradients match finite differences of the reference formula; ignored anchors get none', async () => {
    const c = makeCase(2, 21);
    const o = outputs(c);
    const xs = [...o.classOut, ...o.boxOut];
    const L = o.classOut.length;
    const grads = await expectNoLeaks(() =>
      tf.tidy(() =>
        tf
          .grads(
            (...ts: tf.Tensor[]) =>
              detectionLoss({ classOut: ts.slice(0, L), boxOut: ts.slice(L) }, c.labels).loss,
          )(xs)
          .map((g) => g.dataSync()),
      ),
    );
    // Central differences of the float64 oracle, every coordinate of level 1 and a sample of level 0.
    const h = 1e-4;
    const arrays = [...c.classOut, ...c.boxOut];
    let checked = 0;
    let worst = 0;
    arrays.forEach((arr, k) => {
      const stride = k === 0 || k === L ? 7 : 1;
      for (let e = 0; e < arr.length; e += stride) {
        const keep = arr[e];
        arr[e] = keep + h;
        const up = lossRef(c).loss;
        arr[e] = keep - h;
        const down = lossRef(c).loss;
        arr[e] = keep;
        const fd = (up - down) / (2 * h);
        worst = Math.max(worst, abs(grads[k][e] - fd) / Math.max(abs(fd), 1e-3));
        checked++;
      }
    });
    expect(checked).toBeGreaterThan(400);
    expect(worst).toBeLessThan(2e-3);
    // No gradient through ignored anchors' logits, nor through masked (zero-target) box codes.
    const A = c.labels.levelShapes[0][2];
    c.labels.clsTargets.forEach((t, l) => {
      t.forEach((v, k) => {
        if (v === -2) for (let j = 0; j < 2; j++) expect(abs(grads[l][k * 2 + j])).toBe(0);
      });
      c.labels.boxTargets[l].forEach((v, e) => {
        if (v === 0) expect(abs(grads[L + l][e])).toBe(0);
      });
    });
    expect(A).toBe(3);
    tf.dispose(xs);
  });

  it('finite differences of detectionLoss itself agree with its gradient (float32, a few coordinates)', () => {
    const c = makeCase(2, 4);
    const o = outputs(c);
    const L = o.classOut.length;
    const f = (...ts: tf.Tensor[]) =>
      detectionLoss({ classOut: ts.slice(0, L), boxOut: ts.slice(L) }, c.labels).loss;
    const xs = [...o.classOut, ...o.boxOut];
    const grads = tf.tidy(() =>
      tf
        .grads(f)(xs)
        .map((g) => g.dataSync()),
    );
    const h = 1e-2;
    // A positive entry, a negative entry, an ignored anchor's logit and a positive box code.
    const pos = c.labels.clsTargets[0].findIndex((v) => v >= 0);
    const ign = c.labels.clsTargets.findIndex((t) => t.includes(-2));
    const picks: [number, number][] = [
      [0, pos * 2 + c.labels.clsTargets[0][pos]],
      [0, pos * 2 + 1 - c.labels.clsTargets[0][pos]],
      [1, 5],
      [ign, c.labels.clsTargets[ign].indexOf(-2) * 2],
      [L, c.labels.boxTargets[0].findIndex((v) => v !== 0)],
    ];
    for (const [k, e] of picks) {
      const base = k < L ? c.classOut[k] : c.boxOut[k - L];
      const at = (d: number) =>
        tf.tidy(() => {
          const moved = base.slice();
          moved[e] += d;
          const args = xs.map((x, q) => (q === k ? tf.tensor(moved, x.shape) : x));
          return f(...args).dataSync()[0];
        });
      const fd = (at(h) - at(-h)) / (2 * h);
      expect(abs(grads[k][e] - fd)).toBeLessThan(2e-3 * Math.max(1, abs(fd)) + 2e-4);
    }
    tf.dispose(xs);
  });
});

describe('detectionLoss argument checks', () => {
  it('names the mismatch', () => {
    const c = makeCase(3, 1);
    const o = outputs(c);
    expect(() => detectionLoss({ classOut: o.classOut.slice(0, 1), boxOut: o.boxOut }, c.labels)).toThrow(
      /same number of levels everywhere, got classOut 1, boxOut 2/,
    );
    expect(() => detectionLoss(o, c.labels, { numClasses: 5 })).toThrow(
      /level 0: classOut has 9 channels for 3 anchors; expected A \* 5/,
    );
    expect(() =>
      detectionLoss({ classOut: o.classOut, boxOut: [o.boxOut[1], o.boxOut[1]] }, c.labels),
    ).toThrow(/level 0: boxOut must be \[2,8,8,12\], got \[2,4,4,12\]/);
    expect(() => detectionLoss(o, c.labels, { gamma: Number.NaN })).toThrow(/gamma must be a finite number/);
    expect(() => detectionLoss(o, { ...c.labels, clsTargets: [] } as unknown as BatchLabels)).toThrow(
      /labelsToTensors: need one \[h, w, A\] shape per level \(0\)/,
    );
    tf.dispose([...o.classOut, ...o.boxOut]);
  });
});
