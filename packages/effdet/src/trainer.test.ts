import { seedInitializers } from '@effdet/layers';
import { generateScene, sceneTargets } from '@effdet/shapes';
import * as tf from '@tensorflow/tfjs-core';
import { createEfficientDet } from './model.js';
import { DetectionTrainer } from './trainer.js';

const SIZE = 96;

function batchOf(seeds: number[]) {
  const scenes = seeds.map((s) =>
    generateScene(s, { width: SIZE, height: SIZE, maxObjects: 3, minSize: 16 }),
  );
  const mean = [0.485, 0.456, 0.406].map((v) => v * 255);
  const std = [0.229, 0.224, 0.225].map((v) => v * 255);
  const images = tf.tidy(() =>
    tf.stack(scenes.map((s) => tf.div(tf.sub(tf.tensor3d(s.rgb, [SIZE, SIZE, 3], 'float32'), mean), std))),
  ) as tf.Tensor4D;
  const t = scenes.map(sceneTargets);
  return { images, boxes: t.map((x) => x.boxes), classes: t.map((x) => x.classes) };
}

describe('DetectionTrainer (wasm)', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
    // TF.js' IS_TEST per-kernel leak check miscounts the saved-tensor clones of custom gradients on wasm
    tf.env().set('IS_TEST', false);
  });
  afterAll(async () => {
    tf.env().set('IS_TEST', true);
    await tf.setBackend('cpu');
  });

  it('overfits a few images: the loss falls more than 5x, and the tensor count stays flat over 50 steps', () => {
    seedInitializers(20261126); // deterministic initial weights
    const model = createEfficientDet('test_efficientdet', {
      numClasses: 6,
      imageSize: [SIZE, SIZE],
    }).materialize();
    const trainer = new DetectionTrainer(model, {
      optimizer: { name: 'adamw', weightDecay: 1e-4, clipGradNorm: 10 },
      schedule: { lr: 5e-3, totalSteps: 50, warmupSteps: 3 },
      ema: { decay: 0.99 },
    });
    const batch = batchOf([11, 12, 13, 14]);
    const losses: number[] = [];
    const counts: number[] = [];
    for (let i = 0; i < 50; i++) {
      const r = trainer.trainStep(batch);
      losses.push(r.loss);
      counts.push(tf.memory().numTensors);
      expect(r.step).toBe(i + 1);
      expect(Number.isFinite(r.gradNorm)).toBe(true);
    }
    // everything a step allocates is gone after it (optimiser slots exist from step 1 on)
    expect(new Set(counts.slice(1)).size).toBe(1);
    const first = losses[0] as number;
    const last = losses[losses.length - 1] as number;
    expect(first / last).toBeGreaterThan(5);
    // eval mode (running statistics, which lag with BatchNorm momentum 0.01 after 50 steps) agrees it learned
    const ev = trainer.evaluateLoss(batch, trainer.model);
    expect(ev.loss).toBeLessThan(first);
    expect(trainer.evalModel).toBe(trainer.ema?.module);
    tf.dispose([batch.images]);
    trainer.dispose();
    model.dispose();
  });

  it('fine-tunes: resetHead for a new class count keeps the rest; a frozen backbone (and its BN) does not move', () => {
    const model = createEfficientDet('test_efficientdet', {
      numClasses: 6,
      imageSize: [SIZE, SIZE],
    }).materialize();
    model.resetHead({ numClasses: 3 });
    expect(model.config.numClasses).toBe(3);
    const snapshot = (prefix: string) =>
      model
        .namedState()
        .filter(([n]) => n.startsWith(prefix))
        .map(([n, p]) => [n, Array.from(p.value.dataSync())] as const);
    const backbone = snapshot('backbone.');
    const head = snapshot('class_net.');
    const trainer = new DetectionTrainer(model, {
      schedule: { lr: 1e-2, totalSteps: 4 },
      freezeBackbone: true,
      ema: false,
    });
    expect(trainer.optimizer.params.some((p) => p.name.startsWith('backbone.'))).toBe(false);
    const b = batchOf([31, 32]);
    trainer.trainStep({
      images: b.images,
      boxes: b.boxes,
      classes: b.classes.map((c) => c.map((k) => 1 + (k % 3))),
    });
    // backbone weights and BatchNorm running statistics unchanged; the head moved
    expect(snapshot('backbone.')).toEqual(backbone);
    expect(snapshot('class_net.')).not.toEqual(head);
    tf.dispose([b.images]);
    trainer.dispose();
    model.dispose();
  });

  it('micro-batches: the loss is the size-weighted mean of the parts, one optimiser step, nothing leaks', () => {
    seedInitializers(7);
    const model = createEfficientDet('test_efficientdet', {
      numClasses: 6,
      imageSize: [SIZE, SIZE],
    }).materialize();
    // a vanishing lr: the weights stay put, so every call sees the same network (train mode: batch statistics)
    const sgd = { name: 'sgd', momentum: 0, weightDecay: 0 } as const;
    const plain = new DetectionTrainer(model, {
      schedule: { lr: 1e-20, totalSteps: 10 },
      optimizer: sgd,
      ema: false,
    });
    const split = new DetectionTrainer(model, {
      schedule: { lr: 1e-20, totalSteps: 10 },
      optimizer: sgd,
      ema: false,
      microBatches: 2,
    });
    const b = batchOf([41, 42, 43]);
    const part = (from: number, to: number) => ({
      images: tf.slice(b.images, [from, 0, 0, 0], [to - from, -1, -1, -1]) as tf.Tensor4D,
      boxes: b.boxes.slice(from, to),
      classes: b.classes.slice(from, to),
    });
    const [p1, p2] = [part(0, 1), part(1, 3)];
    const r1 = plain.trainStep(p1);
    const r2 = plain.trainStep(p2);
    const before = tf.memory().numTensors;
    const r = split.trainStep(b);
    expect(tf.memory().numTensors).toBe(before);
    expect(split.step).toBe(1);
    expect(r.loss).toBeCloseTo((1 / 3) * r1.loss + (2 / 3) * r2.loss, 5);
    expect(r.classLoss).toBeCloseTo((1 / 3) * r1.classLoss + (2 / 3) * r2.classLoss, 5);
    expect(r.numPositives).toBe(r1.numPositives + r2.numPositives);
    // the norm of the weighted mean gradient is at most the weighted mean of the norms
    expect(r.gradNorm).toBeGreaterThan(0);
    expect(r.gradNorm).toBeLessThanOrEqual((1 / 3) * r1.gradNorm + (2 / 3) * r2.gradNorm + 1e-4);
    expect(
      () => new DetectionTrainer(model, { schedule: { lr: 1, totalSteps: 1 }, microBatches: 0 }),
    ).toThrow(/DetectionTrainer: options.microBatches must be an integer >= 1, got 0/);
    tf.dispose([b.images, p1.images, p2.images]);
    plain.dispose();
    split.dispose();
    model.dispose();
  });

  it('images without boxes train as background; bad batches fail clearly and change nothing', () => {
    const model = createEfficientDet('test_efficientdet', { numClasses: 6, imageSize: [SIZE, SIZE] });
    const trainer = new DetectionTrainer(model, { schedule: { lr: 1e-3, totalSteps: 10 }, ema: false });
    const b = batchOf([21, 22]);
    const r = trainer.trainStep({
      images: b.images,
      boxes: [b.boxes[0]!, new Float32Array(0)],
      classes: [b.classes[0]!, []],
    });
    expect(r.numPositives).toBeGreaterThan(0);
    expect(trainer.step).toBe(1);
    const before = tf.memory().numTensors;
    const wrongSize = tf.zeros([2, 64, 64, 3]) as tf.Tensor4D;
    expect(() => trainer.trainStep({ images: wrongSize, boxes: b.boxes, classes: b.classes })).toThrow(
      /DetectionTrainer.trainStep: images must be \[B, 96, 96, 3\] \(the model's input size\), got \[2,64,64,3\]/,
    );
    expect(() => trainer.trainStep({ images: b.images, boxes: [b.boxes[0]!], classes: b.classes })).toThrow(
      /need one boxes and one classes entry per image \(2\), got 1 and 2/,
    );
    expect(() =>
      trainer.trainStep({
        images: b.images,
        boxes: [new Float32Array([1, 2, 3]), b.boxes[1]!],
        classes: b.classes,
      }),
    ).toThrow(/labelBatch/);
    expect(() =>
      trainer.trainStep({ images: b.images, boxes: b.boxes, classes: [[7, 1], b.classes[1]!] }),
    ).toThrow(/labelBatch/);
    wrongSize.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(trainer.step).toBe(1);
    expect(() => new DetectionTrainer(model, {} as never)).toThrow(/options.schedule/);
    tf.dispose([b.images]);
    trainer.dispose();
    model.dispose();
  });
});
