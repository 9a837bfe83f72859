import * as tf from '@tensorflow/tfjs-core';
import { check } from './errors.js';
import { seedInitializers } from './init.js';
import { Linear } from './linear.js';
import { type LossTerms, Trainer, type TrainerOptions } from './trainer.js';

interface Batch {
  x: tf.Tensor2D;
  y: tf.Tensor2D;
}

/** Least squares on a Linear layer: the mean over the batch, so micro-batch gradients average exactly. */
class LinearTrainer extends Trainer<Linear, Batch, 'mse' | 'mae', 'rows'> {
  constructor(model: Linear, options: TrainerOptions) {
    super(model, options, { name: 'LinearTrainer', copy: () => new Linear(3, 2).materialize() });
  }
  protected checkBatch(fn: string, b: Batch): void {
    check(b.x.shape[0] === b.y.shape[0], () => `${fn}: x and y differ in rows`);
  }
  protected batchSize(b: Batch): number {
    return b.x.shape[0];
  }
  protected sliceBatch(b: Batch, start: number, end: number) {
    const x = tf.slice(b.x, [start, 0], [end - start, -1]);
    const y = tf.slice(b.y, [start, 0], [end - start, -1]);
    return { part: { x, y }, dispose: () => tf.dispose([x, y]) };
  }
  protected computeLoss(model: Linear, b: Batch): LossTerms<'mse' | 'mae', 'rows'> {
    const d = tf.sub(model.forward(b.x), b.y);
    const mse = tf.mean(tf.square(d)) as tf.Scalar;
    return {
      total: mse,
      terms: { mse, mae: tf.mean(tf.abs(d)) as tf.Scalar },
      counts: { rows: b.x.shape[0] },
    };
  }
  trainStep(b: Batch) {
    return this.runStep(b);
  }
  evaluateLoss(b: Batch) {
    return this.runEvaluateLoss(b, this.evalModel);
  }
}

function model(): Linear {
  seedInitializers(7);
  return new Linear(3, 2).materialize();
}

describe('Trainer (the task-independent training step)', () => {
  let x: tf.Tensor2D;
  let y: tf.Tensor2D;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    x = tf.tensor2d([1, 2, 3, -1, 0, 2, 0.5, 0.5, -2, 3, 1, 0, -1, -1, 1], [5, 3]);
    y = tf.tensor2d([1, 0, 0, 1, 2, -1, 0, 0, 1, 1], [5, 2]);
  });
  afterAll(() => tf.dispose([x, y]));

  it('micro-batches average the parts by size, sum the counts and give the full batch gradient', () => {
    const sgd = { name: 'sgd' as const, momentum: 0, weightDecay: 0 };
    const a = new LinearTrainer(model(), {
      schedule: { lr: 0.1, totalSteps: 10 },
      optimizer: sgd,
      ema: false,
    });
    const b = new LinearTrainer(model(), {
      schedule: { lr: 0.1, totalSteps: 10 },
      optimizer: sgd,
      ema: false,
      microBatches: 2,
    });
    const before = tf.memory().numTensors;
    const ra = a.trainStep({ x, y });
    const rb = b.trainStep({ x, y });
    expect(tf.memory().numTensors).toBe(before);
    // parts of 2 and 3 rows: the size-weighted mean of per-part means is the full batch mean
    expect(rb.loss).toBeCloseTo(ra.loss, 5);
    expect(rb.mse).toBeCloseTo(ra.mse, 5);
    expect(rb.mae).toBeCloseTo(ra.mae, 5);
    expect(ra.loss).toBeCloseTo(ra.mse, 6);
    expect(rb.rows).toBe(5);
    expect(rb.gradNorm).toBeCloseTo(ra.gradNorm, 5);
    expect([ra.step, rb.step, ra.lr]).toEqual([1, 1, 0.1]);
    const wa = a.model.weight.value.dataSync();
    const wb = b.model.weight.value.dataSync();
    for (let i = 0; i < wa.length; i++) expect(wb[i]).toBeCloseTo(wa[i] as number, 6);
    // more micro-batches than rows: one row each
    const c = new LinearTrainer(model(), {
      schedule: { lr: 0.1, totalSteps: 10 },
      optimizer: sgd,
      ema: false,
      microBatches: 9,
    });
    expect(c.trainStep({ x, y }).gradNorm).toBeCloseTo(ra.gradNorm, 5);
    for (const t of [a, b, c]) {
      t.dispose();
      t.model.dispose();
    }
  });

  it('the EMA follows the model, evaluateLoss reads it, and the state resumes the schedule', () => {
    const t = new LinearTrainer(model(), {
      schedule: { lr: 0.05, totalSteps: 20, warmupSteps: 4 },
      ema: { decay: 0.5, warmup: false },
    });
    for (let i = 0; i < 3; i++) t.trainStep({ x, y });
    expect(t.ema?.updates).toBe(3);
    const before = tf.memory().numTensors;
    const ev = t.evaluateLoss({ x, y });
    expect(tf.memory().numTensors).toBe(before);
    expect(ev.loss).toBeCloseTo(ev.mse, 6);
    expect(ev.loss).toBeGreaterThan(0);
    const s = t.state();
    const u = new LinearTrainer(model(), {
      schedule: { lr: 0.05, totalSteps: 20, warmupSteps: 4 },
      ema: { decay: 0.5, warmup: false },
    });
    u.loadState(s);
    expect([u.step, u.lr, u.ema?.updates]).toEqual([3, t.lr, 3]);
    expect(() => u.loadState({ ...s, step: -1 })).toThrow(
      /LinearTrainer.loadState: state.step must be an integer >= 0, got -1/,
    );
    for (const k of [t, u]) {
      k.dispose();
      k.model.dispose();
    }
  });

  it('bad options and batches fail with the trainer named, and a non-finite loss stops the step', () => {
    const m = model();
    expect(() => new LinearTrainer(m, { schedule: { lr: 1, totalSteps: 1 }, microBatches: 1.5 })).toThrow(
      /LinearTrainer: options.microBatches must be an integer >= 1, got 1.5/,
    );
    expect(() => new LinearTrainer(m, undefined as unknown as TrainerOptions)).toThrow(
      /LinearTrainer: options.schedule/,
    );
    const t = new LinearTrainer(m, { schedule: { lr: 1, totalSteps: 4 }, ema: false });
    const y3 = tf.zeros([3, 2]) as tf.Tensor2D;
    expect(() => t.trainStep({ x, y: y3 })).toThrow(/LinearTrainer.trainStep: x and y differ in rows/);
    const bad = tf.fill([5, 2], Number.NaN) as tf.Tensor2D;
    const w = Array.from(m.weight.value.dataSync());
    expect(() => t.trainStep({ x, y: bad })).toThrow(/LinearTrainer.trainStep: the loss is NaN at step 0/);
    expect(Array.from(m.weight.value.dataSync())).toEqual(w);
    expect(t.step).toBe(0);
    tf.dispose([y3, bad]);
    t.dispose();
    m.dispose();
  });
});
