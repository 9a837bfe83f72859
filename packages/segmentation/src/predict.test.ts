import {
  colorizeMask,
  DeepLabV3Plus,
  overlayMask,
  predictMask,
  segmentationPalette,
  Unet,
} from '@effdet/segmentation';
import * as tf from '@tensorflow/tfjs-core';

/** The class map computed directly: normalise, pad bottom/right, logits, crop, argmax. */
function manualMask(
  model: DeepLabV3Plus | Unet,
  image: tf.Tensor3D,
  padTo: [number, number],
  binary = false,
): Int32Array {
  return tf.tidy(() => {
    const [h, w] = image.shape;
    const x = tf.div(tf.sub(tf.div(tf.cast(image, 'float32'), 255), model.mean), model.std);
    const padded = tf.pad(tf.expandDims(x, 0), [
      [0, 0],
      [0, padTo[0] - h],
      [0, padTo[1] - w],
      [0, 0],
    ]) as tf.Tensor4D;
    const logits = tf.slice(model.forwardLogits(padded), [0, 0, 0, 0], [1, h, w, -1]);
    const m = binary ? tf.cast(tf.greaterEqual(tf.sigmoid(logits), 0.5), 'int32') : tf.argMax(logits, -1);
    return Int32Array.from(m.dataSync());
  });
}

describe('predictMask', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });

  it('pads to the output stride, crops back: a class map at the image size, no leaks', async () => {
    const m = new DeepLabV3Plus({
      encoderName: 'tu-effdet_test_efficientnet',
      decoderChannels: 16,
      classes: 4,
    }).eval();
    const image = tf.randomUniform([50, 70, 3], 0, 256, 'int32') as tf.Tensor3D;
    const expected = manualMask(m, image, [64, 80]);
    const before = tf.memory().numTensors;
    const r = await m.predictMask(image, { probabilities: true });
    expect(tf.memory().numTensors).toBe(before);
    expect([r.height, r.width, r.numClasses, r.mode, r.inputSize]).toEqual([
      50,
      70,
      4,
      'multiclass',
      [64, 80],
    ]);
    expect(Array.from(r.mask)).toEqual(Array.from(expected));
    // softmax over the classes, and the mask is its argmax
    const p = r.probabilities!;
    for (const i of [0, 1234, 3499]) {
      const row = Array.from(p.subarray(i * 4, i * 4 + 4));
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(row.indexOf(Math.max(...row))).toBe(r.mask[i]);
    }
    tf.dispose(image);
    m.dispose();
  });

  it('inputSize resizes the image and the logits; pixel data works as input', async () => {
    const m = new Unet({
      encoderName: 'tu-effdet_test_efficientnet',
      decoderChannels: [16, 16, 16, 16, 16],
      classes: 3,
    });
    m.eval();
    const data = new Uint8Array(30 * 20 * 4).map((_, i) => (i * 37) % 256); // RGBA pixel data
    const r = await m.predictMask({ data, width: 20, height: 30 }, { inputSize: [64, 32] });
    expect([r.height, r.width, r.inputSize, r.mask.length]).toEqual([30, 20, [64, 32], 600]);
    expect(r.mask.every((c) => c >= 0 && c < 3)).toBe(true);
    await expect(m.predictMask({ data, width: 20, height: 30 }, { mode: 'binary' })).rejects.toThrow(
      /mode 'binary' needs a model with 1 output channel, this one has 3/,
    );
    await expect(m.predictMask({ data, width: 20, height: 30 }, { inputSize: [0, 3] })).rejects.toThrow(
      /inputSize must be a positive integer or \[height, width\], got \[0,3\]/,
    );
    m.dispose();
  });

  it('binary models threshold the sigmoid; multilabel gives a 0/1 map per class', async () => {
    const b = new Unet({
      encoderName: 'tu-effdet_test_efficientnet',
      decoderChannels: [8, 8, 8, 8, 8],
    }).eval();
    const image = tf.randomUniform([33, 17, 3], 0, 256, 'int32') as tf.Tensor3D;
    const r = await predictMask(b, image);
    expect(r.mode).toBe('binary');
    expect(Array.from(r.mask)).toEqual(Array.from(manualMask(b, image, [33, 17], true)));
    const ml = new Unet({
      encoderName: 'tu-effdet_test_efficientnet',
      decoderChannels: [8, 8, 8, 8, 8],
      classes: 2,
    }).eval();
    const r2 = await predictMask(ml, image, { mode: 'multilabel', threshold: 0.4, probabilities: true });
    expect(r2.labels?.length).toBe(33 * 17 * 2);
    expect(Array.from(r2.labels!)).toEqual(Array.from(r2.probabilities!, (p) => (p >= 0.4 ? 1 : 0)));
    tf.dispose(image);
    b.dispose();
    ml.dispose();
  });

  it('tta averages the probabilities of flipped / rotated views, each brought back to the image', async () => {
    const m = new Unet({
      encoderName: 'tu-effdet_test_efficientnet',
      decoderChannels: [16, 16, 16, 16, 16],
      classes: 3,
    }).eval();
    const image = tf.randomUniform([24, 40, 3], 0, 256, 'int32') as tf.Tensor3D;
    const at = async (img: tf.Tensor3D, tta?: 'hflip' | 'flip' | 'd4', inputSize?: [number, number]) => {
      const r = await m.predictMask(img, { probabilities: true, tta, inputSize });
      return { r, p: tf.tensor3d(r.probabilities!, [r.height, r.width, 3]) };
    };
    const close = (a: tf.Tensor, b: tf.Tensor) =>
      expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBeLessThan(1e-5);

    // hflip = mean of the image and its mirror (mirrored back)
    const plain = await at(image);
    const mirrored = await at(tf.reverse(image, 1));
    const before = tf.memory().numTensors;
    const h = await at(image, 'hflip');
    expect(tf.memory().numTensors).toBe(before + 1); // only the test's own probability tensor
    close(h.p, tf.div(tf.add(plain.p, tf.reverse(mirrored.p, 1)), 2));
    // the mask is the argmax of the averaged probabilities
    expect(Array.from(h.r.mask)).toEqual(Array.from(tf.argMax(h.p, -1).dataSync()));
    expect(Array.from(h.r.mask)).not.toEqual(Array.from(plain.r.mask));

    // flip (4 views) and d4 (8 views) average over a group: transforming the image by one of its elements gives
    // the same average, transformed. d4 on a non-square image runs the rotated views at the transposed size.
    const f = await at(image, 'flip');
    const fUpsideDown = await at(tf.reverse(image, 0), 'flip');
    close(f.p, tf.reverse(fUpsideDown.p, 0));
    for (const inputSize of [undefined, [64, 32] as [number, number]]) {
      const d = await at(image, 'd4', inputSize);
      const dT = await at(tf.transpose(image, [1, 0, 2]), 'd4', inputSize && [inputSize[1], inputSize[0]]);
      const dR = await at(tf.reverse(image, [0, 1]), 'd4', inputSize);
      expect([d.r.height, d.r.width, d.r.mask.length]).toEqual([24, 40, 960]);
      close(d.p, tf.transpose(dT.p, [1, 0, 2]));
      close(d.p, tf.reverse(dR.p, [0, 1]));
    }
    await expect(m.predictMask(image, { tta: 'rot' as never })).rejects.toThrow(
      `predictMask: tta must be 'none', 'hflip', 'flip' or 'd4', got "rot"`,
    );
    image.dispose();
    m.dispose();
  });

  it('rejects DeepLab input sizes the output stride does not divide', async () => {
    const m = new DeepLabV3Plus({
      encoderName: 'tu-effdet_test_efficientnet',
      decoderChannels: 16,
      classes: 2,
    });
    const image = tf.zeros([40, 40, 3]) as tf.Tensor3D;
    await expect(m.predictMask(image, { inputSize: 40 })).rejects.toThrow(
      /inputSize 40x40 must be divisible by the model's output stride 16/,
    );
    const flat = tf.zeros([4, 4]);
    await expect(m.predictMask(flat as never)).rejects.toThrow(
      'predictMask: an image tensor must be 3-D [height, width, channels], got [4,4]',
    );
    tf.dispose([image, flat]);
    m.dispose();
  });
});

describe('palette and overlays', () => {
  it('the Pascal VOC palette', () => {
    const p = segmentationPalette(21);
    const color = (c: number) => Array.from(p.subarray(c * 3, c * 3 + 3));
    expect(color(0)).toEqual([0, 0, 0]);
    expect(color(1)).toEqual([128, 0, 0]);
    expect(color(2)).toEqual([0, 128, 0]);
    expect(color(3)).toEqual([128, 128, 0]);
    expect(color(4)).toEqual([0, 0, 128]);
    expect(color(15)).toEqual([192, 128, 128]); // person
    expect(color(20)).toEqual([0, 64, 128]); // tv/monitor
  });

  it('colorizeMask and overlayMask (background left as is)', () => {
    const mask = [0, 1, 2, 1];
    expect(Array.from(colorizeMask(mask, 2, 2))).toEqual([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 0, 0]);
    const rgb = new Uint8Array(12).fill(100);
    const o = overlayMask(rgb, mask, 2, 2, { alpha: 0.5 });
    expect(Array.from(o)).toEqual([100, 100, 100, 114, 50, 50, 50, 114, 50, 114, 50, 50]);
    expect(Array.from(overlayMask(rgb, mask, 2, 2, { alpha: 1, skipClasses: [] }).subarray(0, 3))).toEqual([
      0, 0, 0,
    ]);
    expect(() => overlayMask(rgb, [0, 1, 2], 2, 2)).toThrow(/mask must hold 2x2 = 4 class ids, got 3/);
    expect(() => colorizeMask([0, -1, 0, 0], 2, 2)).toThrow(
      /mask values must be non-negative class ids, got -1 at 1/,
    );
    expect(() => colorizeMask([0, 5, 0, 0], 2, 2, segmentationPalette(3))).toThrow(
      /the palette has 3 colours, the mask uses class 5/,
    );
  });
});
