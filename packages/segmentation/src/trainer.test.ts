import { generateScene } from '@effdet/shapes';
import * as tf from '@tensorflow/tfjs-core';
import { createSegmentationModel } from './create.js';
import { SegmentationTrainer } from './trainer.js';
import { Unet } from './unet.js';

const SIZE = 32;
const TINY = {
  encoderName: 'tu-effdet_test_efficientnet',
  encoderDepth: 3,
  decoderChannels: [16, 8, 8],
  classes: 7,
};

function batchOf(seeds: number[]) {
  const scenes = seeds.map((s) =>
    generateScene(s, { width: SIZE, height: SIZE, maxObjects: 2, minSize: 10 }),
  );
  const mean = [0.485, 0.456, 0.406].map((v) => v * 255);
  const std = [0.229, 0.224, 0.225].map((v) => v * 255);
  const images = tf.tidy(() =>
    tf.stack(scenes.map((s) => tf.div(tf.sub(tf.tensor3d(s.rgb, [SIZE, SIZE, 3], 'float32'), mean), std))),
  ) as tf.Tensor4D;
  const masks = tf.tensor3d(
    Int32Array.from(scenes.flatMap((s) => Array.from(s.semantic))),
    [seeds.length, SIZE, SIZE],
    'int32',
  );
  return { images, masks };
}

function weightsOf(model: Unet): Map<string, Float32Array> {
  return new Map(model.namedState().map(([n, p]) => [n, p.value.dataSync() as Float32Array]));
}

describe('SegmentationTrainer (wasm)', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
    // TF.js' IS_TEST per-kernel leak check miscounts the saved-tensor clones of custom gradients on wasm
    tf.env().set('IS_TEST', false);
  });
  afterAll(async () => {
    tf.env().set('IS_TEST', true);
    await tf.setBackend('cpu');
  });

  it('overfits a few scenes: the loss falls more than 4x and the tensor count stays flat', () => {
    const model = new Unet(TINY);
    const trainer = new SegmentationTrainer(model, {
      optimizer: { name: 'adamw', weightDecay: 1e-4 },
      schedule: { lr: 1e-2, totalSteps: 40, warmupSteps: 2 },
      ema: { decay: 0.9 },
      loss: { diceWeight: 0.5 },
    });
    const batch = batchOf([3, 4, 5, 6]);
    const losses: number[] = [];
    const counts: number[] = [];
    for (let i = 0; i < 40; i++) {
      const r = trainer.trainStep(batch);
      losses.push(r.loss);
      counts.push(tf.memory().numTensors);
      expect(r.step).toBe(i + 1);
      expect(r.loss).toBeCloseTo(r.crossEntropy + 0.5 * r.dice, 4);
      expect(Number.isFinite(r.gradNorm) && r.gradNorm > 0).toBe(true);
    }
    // everything a step allocates is freed by it (the optimiser slots exist from step 1 on)
    expect(new Set(counts.slice(1)).size).toBe(1);
    const first = losses[0] as number;
    expect(first / (losses.at(-1) as number)).toBeGreaterThan(4);
    // eval mode (running statistics) agrees that it learned, and evaluateLoss leaks nothing
    const before = tf.memory().numTensors;
    const ev = trainer.evaluateLoss(batch, trainer.model);
    expect(tf.memory().numTensors).toBe(before);
    expect(ev.loss).toBeLessThan(first / 2);
    expect(trainer.evalModel).toBe(trainer.ema?.module);
    expect(trainer.model.training).toBe(true);
    tf.dispose([batch.images, batch.masks]);
    trainer.dispose();
    model.dispose();
  });

  it('state() + weights restore a trainer that continues exactly as the original', () => {
    const opts = {
      optimizer: { name: 'adamw' as const },
      schedule: { lr: 5e-3, totalSteps: 6 },
      ema: { decay: 0.9 },
    };
    const a = new Unet(TINY);
    const ta = new SegmentationTrainer(a, opts);
    const batch = batchOf([7, 8]);
    ta.trainStep(batch);
    ta.trainStep(batch);
    // a second model from the saved state: weights, EMA weights and the optimiser state
    const b = createSegmentationModel('unet', a.options) as Unet;
    const tb = new SegmentationTrainer(b, opts);
    const sd = a.stateDict();
    b.loadStateDict(sd);
    const esd = ta.evalModel.stateDict();
    tb.evalModel.loadStateDict(esd);
    tf.dispose([...Object.values(sd), ...Object.values(esd)]);
    tb.loadState(ta.state());
    expect(tb.step).toBe(2);
    expect(tb.ema?.updates).toBe(2);
    const ra = ta.trainStep(batch);
    const rb = tb.trainStep(batch);
    expect(rb.loss).toBe(ra.loss);
    expect(rb.lr).toBe(ra.lr);
    const wa = weightsOf(a);
    const wb = weightsOf(b);
    for (const [n, v] of wa) expect(Array.from(wb.get(n) as Float32Array)).toEqual(Array.from(v));
    const ea = weightsOf(ta.evalModel as Unet);
    const eb = weightsOf(tb.evalModel as Unet);
    for (const [n, v] of ea) expect(Array.from(eb.get(n) as Float32Array)).toEqual(Array.from(v));
    tf.dispose([batch.images, batch.masks]);
    for (const t of [ta, tb]) t.dispose();
    a.dispose();
    b.dispose();
  });

  it('the ignore index masks pixels out; bad batches and options fail clearly and change nothing', () => {
    const model = new Unet(TINY);
    const trainer = new SegmentationTrainer(model, { schedule: { lr: 1e-3, totalSteps: 10 }, ema: false });
    const b = batchOf([9, 10]);
    // every pixel ignored but the first: the loss is that pixel's cross-entropy alone
    const ids = new Int32Array(2 * SIZE * SIZE).fill(255);
    ids[0] = 3;
    const ignored = tf.tensor3d(ids, [2, SIZE, SIZE], 'int32');
    const ev = trainer.evaluateLoss({ images: b.images, masks: ignored }, model);
    const logits = tf.tidy(() =>
      tf.logSoftmax(tf.slice(model.eval().forwardLogits(b.images), [0, 0, 0, 0], [1, 1, 1, 7])),
    );
    expect(ev.crossEntropy).toBeCloseTo(-(logits.dataSync()[3] as number), 4);
    expect(ev.dice).toBe(0);
    logits.dispose();
    const before = tf.memory().numTensors;
    const wrong = tf.zeros([2, SIZE, SIZE + 1], 'int32') as tf.Tensor3D;
    expect(() => trainer.trainStep({ images: b.images, masks: wrong })).toThrow(
      /SegmentationTrainer.trainStep: masks must be \[2, 32, 32\] \(class ids per image pixel\), got \[2,32,33\]/,
    );
    const badIds = tf.fill([2, SIZE, SIZE], 9, 'int32') as tf.Tensor3D;
    expect(() => trainer.trainStep({ images: b.images, masks: badIds })).toThrow(
      /SegmentationTrainer.trainStep: masks must hold class ids in \[0, 7\) or the ignore index 255, got 9 in image 0 at x 0, y 0/,
    );
    tf.dispose([wrong, badIds]);
    expect(tf.memory().numTensors).toBe(before);
    expect(trainer.step).toBe(0);
    expect(() => new SegmentationTrainer(model, {} as never)).toThrow(/options.schedule/);
    expect(
      () =>
        new SegmentationTrainer(model, { schedule: { lr: 1e-3, totalSteps: 1 }, loss: { ignoreIndex: 3 } }),
    ).toThrow(/loss.ignoreIndex must be an integer outside 0..6, got 3/);
    tf.dispose([b.images, b.masks, ignored]);
    trainer.dispose();
    model.dispose();
  });
});
