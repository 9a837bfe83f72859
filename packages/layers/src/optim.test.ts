import * as tf from '@tensorflow/tfjs-core';
import { Conv2d } from './conv.js';
import { registerTrainingKernels } from './grad.js';
import { Module, type Parameter } from './module.js';
import { BatchNorm2d } from './norm.js';
import { lrAt, ModelEma, Optimizer, trainableVariables } from './optim.js';

class Tiny extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  constructor() {
    super();
    this.conv = this.addModule('conv', new Conv2d(2, 2, 1, { bias: true }));
    this.bn = this.addModule('bn', new BatchNorm2d(2));
  }
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return this.bn.forward(this.conv.forward(x));
  }
}

function setValues(p: Parameter, values: number[]): void {
  const t = tf.tensor(values, [...p.shape]);
  p.value.assign(t);
  t.dispose();
}

describe('lrAt', () => {
  it('warms up linearly, then follows the cosine to minLr', () => {
    const o = { lr: 1, totalSteps: 110, warmupSteps: 10, warmupLr: 0.1, minLr: 0.01 };
    expect(lrAt(o, 0)).toBeCloseTo(0.1, 12);
    expect(lrAt(o, 5)).toBeCloseTo(0.55, 12);
    expect(lrAt(o, 10)).toBeCloseTo(1, 12);
    // halfway through the cosine: (lr + minLr) / 2
    expect(lrAt(o, 60)).toBeCloseTo(0.505, 12);
    expect(lrAt(o, 110)).toBeCloseTo(0.01, 12);
    expect(lrAt(o, 500)).toBeCloseTo(0.01, 12);
    // a quarter: minLr + (lr - minLr) * (1 + cos(pi / 4)) / 2
    expect(lrAt(o, 35)).toBeCloseTo(0.01 + 0.99 * (1 + Math.SQRT1_2) * 0.5, 12);
  });

  it('steps down by gamma at each milestone', () => {
    const o = { lr: 0.08, totalSteps: 100, kind: 'step' as const, milestones: [50, 80], gamma: 0.1 };
    expect(lrAt(o, 49)).toBeCloseTo(0.08, 12);
    expect(lrAt(o, 50)).toBeCloseTo(0.008, 12);
    expect(lrAt(o, 80)).toBeCloseTo(0.0008, 12);
  });

  it('rejects a bad schedule', () => {
    expect(() => lrAt({ lr: 0, totalSteps: 10 }, 0)).toThrow(/lrAt: lr must be > 0, got 0/);
    expect(() => lrAt({ lr: 1, totalSteps: 2.5 }, 0)).toThrow(/totalSteps must be a positive integer/);
  });
});

describe('Optimizer (PyTorch update rules)', () => {
  beforeAll(() => registerTrainingKernels());

  function twoParams() {
    const w = tf.variable(tf.tensor2d([[1, -2]]), true, 'opt_w');
    const b = tf.variable(tf.tensor1d([0.5]), true, 'opt_b');
    return {
      w,
      b,
      params: [
        { name: 'layer.weight', variable: w, decay: true },
        { name: 'layer.bias', variable: b, decay: false },
      ],
    };
  }

  it('SGD with momentum, weight decay on weights only (torch.optim.SGD, hand-computed)', () => {
    const { w, b, params } = twoParams();
    const opt = new Optimizer(params, { name: 'sgd', momentum: 0.9, weightDecay: 0.1 });
    const g1 = { opt_w: tf.tensor2d([[0.2, 0.4]]), opt_b: tf.tensor1d([1]) };
    const before = tf.memory().numTensors;
    opt.apply(g1, 0.5);
    // one momentum buffer per parameter, nothing else
    expect(tf.memory().numTensors).toBe(before + 2);
    // step 1: d = g + wd*w = [0.3, 0.2]; buf = d; w = w - lr*buf = [0.85, -2.1]; bias: buf = 1, b = 0
    expect(Array.from(w.dataSync())).toEqual([0.85, -2.1].map((v) => Math.fround(v)));
    expect(b.dataSync()[0]).toBeCloseTo(0, 6);
    opt.apply(g1, 0.5);
    // step 2: d = [0.2 + 0.085, 0.4 - 0.21] = [0.285, 0.19]; buf = 0.9*[0.3, 0.2] + d = [0.555, 0.37]
    const w2 = w.dataSync();
    expect(w2[0]).toBeCloseTo(0.85 - 0.5 * 0.555, 6);
    expect(w2[1]).toBeCloseTo(-2.1 - 0.5 * 0.37, 6);
    // bias: buf = 0.9 + 1 = 1.9 -> b = 0 - 0.95
    expect(b.dataSync()[0]).toBeCloseTo(-0.95, 6);
    opt.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([...Object.values(g1), w, b]);
  });

  it('SGD Nesterov', () => {
    const { w, b, params } = twoParams();
    const opt = new Optimizer(params, { name: 'sgd', momentum: 0.5, nesterov: true, weightDecay: 0 });
    const g = { opt_w: tf.tensor2d([[1, 1]]), opt_b: tf.tensor1d([2]) };
    opt.apply(g, 0.1);
    // buf = g; update = g + 0.5 * buf = 1.5 g
    expect(w.dataSync()[0]).toBeCloseTo(1 - 0.15, 6);
    opt.apply(g, 0.1);
    // buf = 0.5*1 + 1 = 1.5; update = 1 + 0.75 = 1.75
    expect(w.dataSync()[0]).toBeCloseTo(1 - 0.15 - 0.175, 6);
    expect(b.dataSync()[0]).toBeCloseTo(0.5 - 0.3 - 0.35, 6);
    tf.dispose([...Object.values(g), w, b]);
    opt.dispose();
  });

  it('AdamW: bias-corrected moments and decoupled decay (torch.optim.AdamW, hand-computed)', () => {
    const { w, b, params } = twoParams();
    const opt = new Optimizer(params, { name: 'adamw', weightDecay: 0.1, betas: [0.9, 0.99], eps: 1e-8 });
    const lr = 0.01;
    const gs = [
      [0.2, -0.4],
      [0.1, 0.3],
    ];
    let wv = [1, -2];
    let m = [0, 0];
    let v = [0, 0];
    for (let t = 1; t <= 2; t++) {
      const grads = { opt_w: tf.tensor2d([gs[t - 1] as number[]]), opt_b: tf.tensor1d([0]) };
      opt.apply(grads, lr);
      tf.dispose(Object.values(grads));
      const g = gs[t - 1] as number[];
      m = m.map((mi, i) => 0.9 * mi + 0.1 * (g[i] as number));
      v = v.map((vi, i) => 0.99 * vi + 0.01 * (g[i] as number) ** 2);
      wv = wv.map((wi, i) => {
        const mh = (m[i] as number) / (1 - 0.9 ** t);
        const vh = (v[i] as number) / (1 - 0.99 ** t);
        return wi * (1 - lr * 0.1) - (lr * mh) / (Math.sqrt(vh) + 1e-8);
      });
      const got = w.dataSync();
      expect(got[0]).toBeCloseTo(wv[0] as number, 6);
      expect(got[1]).toBeCloseTo(wv[1] as number, 6);
    }
    // the bias has no decay and a zero gradient: unchanged
    expect(b.dataSync()[0]).toBeCloseTo(0.5, 7);
    tf.dispose([w, b]);
    opt.dispose();
  });

  it('clips by global norm and reports the norm before clipping', () => {
    const { w, b, params } = twoParams();
    const opt = new Optimizer(params, { name: 'sgd', momentum: 0, weightDecay: 0, clipGradNorm: 1 });
    const g = { opt_w: tf.tensor2d([[3, 0]]), opt_b: tf.tensor1d([4]) };
    const { gradNorm } = opt.apply(g, 1);
    expect(gradNorm).toBeCloseTo(5, 5);
    // scaled to norm 1: w -= [0.6, 0], b -= 0.8
    expect(w.dataSync()[0]).toBeCloseTo(0.4, 5);
    expect(b.dataSync()[0]).toBeCloseTo(-0.3, 5);
    tf.dispose([...Object.values(g), w, b]);
    opt.dispose();
  });

  it('state round trip: a restored optimiser continues identically', () => {
    const run = (restoreAfter: number | null) => {
      const { w, b, params } = twoParams();
      let opt = new Optimizer(params, { name: 'adamw' });
      for (let s = 0; s < 4; s++) {
        if (restoreAfter !== null && s === restoreAfter) {
          const state = opt.stateDict();
          opt.dispose();
          opt = new Optimizer(params, { name: 'adamw' });
          opt.loadStateDict(state);
        }
        const g = { opt_w: tf.tensor2d([[0.1 * (s + 1), -0.2]]), opt_b: tf.tensor1d([0.3]) };
        opt.apply(g, 0.01);
        tf.dispose(Object.values(g));
      }
      const out = [...w.dataSync(), ...b.dataSync()];
      tf.dispose([w, b]);
      opt.dispose();
      return out;
    };
    expect(run(2)).toEqual(run(null));
  });

  it('rejects bad options and bad state with clear errors', () => {
    const { w, b, params } = twoParams();
    expect(() => new Optimizer(params, { name: 'adam' as 'sgd' })).toThrow(
      /name must be 'sgd' or 'adamw', got 'adam'/,
    );
    expect(() => new Optimizer(params, { weightDecay: -1 })).toThrow(
      /weightDecay must be a finite number >= 0/,
    );
    expect(() => new Optimizer([...params, params[0]!])).toThrow(/'layer.weight' is listed twice/);
    const opt = new Optimizer(params);
    expect(() =>
      opt.loadStateDict({
        tensors: { 'slot.layer.weight.0': { shape: [3], data: new Float32Array(3) } },
        step: 1,
      }),
    ).toThrow(/'layer.weight' slot 0 has shape \[3\], the parameter \[1,2\]/);
    expect(() =>
      opt.loadStateDict({ tensors: { 'slot.nope.0': { shape: [1], data: new Float32Array(1) } }, step: 1 }),
    ).toThrow(/unknown entry 'slot.nope.0'/);
    const nan = { opt_w: tf.tensor2d([[Number.NaN, 0]]), opt_b: tf.tensor1d([0]) };
    expect(() => opt.apply(nan, 0.1)).toThrow(/gradient norm is NaN/);
    tf.dispose([...Object.values(nan), w, b]);
    opt.dispose();
  });
});

describe('trainableVariables and ModelEma', () => {
  it('excludes 1-D parameters and biases from weight decay, and frozen names entirely', () => {
    const m = new Tiny();
    const all = trainableVariables(m);
    expect(all.map((p) => [p.name, p.decay])).toEqual([
      ['conv.weight', true],
      ['conv.bias', false],
      ['bn.weight', false],
      ['bn.bias', false],
    ]);
    expect(trainableVariables(m, (n) => n.startsWith('conv.')).map((p) => p.name)).toEqual([
      'bn.weight',
      'bn.bias',
    ]);
    m.dispose();
  });

  it("averages parameters and buffers with TF's num_updates warm-up", () => {
    const src = new Tiny();
    const avg = new Tiny();
    setValues(src.conv.weight, [1, 0, 0, 1]);
    setValues(src.bn.runningMean, [2, 4]);
    const ema = new ModelEma(avg, src, 0.9998);
    expect(ema.decayAt(1)).toBeCloseTo(2 / 11, 12);
    expect(ema.decayAt(1e6)).toBeCloseTo(0.9998, 12);
    expect(Array.from(avg.conv.weight.value.dataSync())).toEqual([1, 0, 0, 1]);
    setValues(src.conv.weight, [3, 0, 0, 1]);
    setValues(src.bn.runningMean, [0, 4]);
    ema.update(src);
    const d = 2 / 11;
    expect(avg.conv.weight.value.dataSync()[0]).toBeCloseTo(d * 1 + (1 - d) * 3, 6);
    expect(avg.bn.runningMean.value.dataSync()[0]).toBeCloseTo(d * 2, 6);
    expect(avg.training).toBe(false);
    src.dispose();
    avg.dispose();
  });
});
