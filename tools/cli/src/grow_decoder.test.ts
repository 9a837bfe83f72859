import { loadRawStateDict } from '@effdet/effdet';
import { seedInitializers } from '@effdet/layers';
import { DeepLabV3, Unet, type UnetOptions } from '@effdet/segmentation';
import { toFloat32 } from '@effdet/weights';
import * as tf from '@tensorflow/tfjs-core';
import { growUnetDecoder } from './grow_decoder.js';
import { moduleToRaw } from './train_common.js';

const base: UnetOptions = { encoderName: 'tu-effdet_test_efficientnet', encoderDepth: 3, classes: 5 };

/** A narrow U-Net with random weights and BatchNorm statistics away from 0 / 1, so every tensor matters. */
function narrowUnet(): Unet {
  seedInitializers(11);
  const m = new Unet({ ...base, decoderChannels: [12, 8, 6] }).materialize();
  const sd = m.stateDict();
  const state: Record<string, tf.Tensor> = {};
  for (const [k, t] of Object.entries(sd)) {
    if (k.endsWith('running_var')) state[k] = tf.randomUniform(t.shape, 0.5, 2, 'float32', 3);
    else if (k.endsWith('running_mean') || k.endsWith('.bias'))
      state[k] = tf.randomUniform(t.shape, -0.3, 0.3, 'float32', 4);
    else state[k] = t.clone();
  }
  m.loadStateDict(state);
  tf.dispose([...Object.values(sd), ...Object.values(state)]);
  return m;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('growUnetDecoder', () => {
  it('widens every decoder block and the head input without changing the logits (eval and train mode)', async () => {
    const narrow = narrowUnet();
    const raw = await moduleToRaw(narrow);
    const wide = new Unet({ ...base, decoderChannels: [20, 16, 6] }).materialize();
    const before = tf.memory().numTensors;
    const g = growUnetDecoder(raw, wide, 3);
    expect(tf.memory().numTensors).toBe(before);
    expect(g.grown).toEqual(
      expect.arrayContaining([
        'decoder.blocks.0.conv1.0.weight',
        'decoder.blocks.0.conv1.1.running_var',
        'decoder.blocks.1.conv2.0.weight',
        'decoder.blocks.2.conv1.0.weight', // its input (block 1's output) grew; its output did not
      ]),
    );
    expect(g.grown).not.toContain('decoder.blocks.2.conv2.0.weight');
    expect(g.grown).not.toContain('segmentation_head.0.weight'); // the last block kept its width
    expect(g.raw['encoder.model.conv_stem.weight']).toBe(raw['encoder.model.conv_stem.weight']);
    // new channels: norm at identity, conv rows random; old rows read zeros from new inputs
    expect(Array.from(toFloat32(g.raw['decoder.blocks.0.conv1.1.running_var']!).subarray(12))).toEqual(
      new Array(8).fill(1),
    );
    const w = toFloat32(g.raw['decoder.blocks.0.conv2.0.weight']!); // [20, 20, 3, 3]
    expect(w.subarray(0 * 20 * 9 + 12 * 9, 0 * 20 * 9 + 20 * 9).every((v) => v === 0)).toBe(true);
    expect(w.subarray(15 * 20 * 9, 16 * 20 * 9).some((v) => v !== 0)).toBe(true);
    loadRawStateDict(wide, g.raw);

    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
    for (const mode of ['eval', 'train'] as const) {
      narrow[mode]();
      wide[mode]();
      const a = narrow.segmentLogits(x);
      const b = wide.segmentLogits(x);
      expect(b.shape).toEqual(a.shape);
      const diff = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
      const scale = tf.max(tf.abs(a)).dataSync()[0];
      expect(scale).toBeGreaterThan(0.1);
      expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
      tf.dispose([a, b]);
    }
    x.dispose();
    narrow.dispose();
    wide.dispose();
  });

  it('a wider last block grows the head input; the same widths pass everything through', async () => {
    const narrow = narrowUnet();
    const raw = await moduleToRaw(narrow);
    const wide = new Unet({ ...base, decoderChannels: [12, 8, 10] }).materialize();
    const g = growUnetDecoder(raw, wide);
    expect(g.grown).toEqual(
      expect.arrayContaining(['decoder.blocks.2.conv2.0.weight', 'segmentation_head.0.weight']),
    );
    expect(g.grown).not.toContain('decoder.blocks.0.conv1.0.weight');
    loadRawStateDict(wide, g.raw);
    narrow.eval();
    wide.eval();
    const x = tf.randomNormal([1, 32, 32, 3], 0, 1, 'float32', 6) as tf.Tensor4D;
    const [a, b] = [narrow.segmentLogits(x), wide.segmentLogits(x)];
    expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBeLessThanOrEqual(1e-5);
    tf.dispose([a, b, x]);
    const same = new Unet({ ...base, decoderChannels: [12, 8, 6] }).materialize();
    expect(growUnetDecoder(raw, same).grown).toEqual([]);
    tf.dispose([narrow, wide, same].map((m) => m.dispose()) as never);
  });

  it('refuses what is not a narrower version of the model, naming the tensor', async () => {
    const narrow = narrowUnet();
    const raw = await moduleToRaw(narrow);
    const thinner = new Unet({ ...base, decoderChannels: [8, 8, 6] });
    expect(() => growUnetDecoder(raw, thinner)).toThrow(
      "growUnetDecoder: 'decoder.blocks.0.conv1.0.weight' has 12 output channels, the model 8: a decoder can only grow",
    );
    const classes = new Unet({ ...base, classes: 4, decoderChannels: [12, 8, 6] });
    expect(() => growUnetDecoder(raw, classes)).toThrow(
      "growUnetDecoder: 'segmentation_head.0.weight' has 5 classes, the model 4",
    );
    const scse = new Unet({ ...base, decoderChannels: [16, 16, 16], decoderAttentionType: 'scse' });
    expect(() => growUnetDecoder(raw, scse)).toThrow(
      /growUnetDecoder: the checkpoint has no 'decoder.blocks.0.attention/,
    );
    const deeplab = new DeepLabV3({ encoderName: 'tu-effdet_test_efficientnet', classes: 5 });
    expect(() => growUnetDecoder(raw, deeplab)).toThrow(
      'growUnetDecoder: the model must be a Unet, got DeepLabV3',
    );
    const missing = { ...raw };
    delete missing['decoder.blocks.1.conv2.0.weight'];
    expect(() => growUnetDecoder(missing, new Unet({ ...base, decoderChannels: [16, 8, 6] }))).toThrow(
      "growUnetDecoder: the checkpoint has no 'decoder.blocks.1.conv2.0.weight'",
    );
    narrow.dispose();
  });
});
