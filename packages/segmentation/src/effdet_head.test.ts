import { createEfficientDet, loadRawStateDict } from '@effdet/effdet';
import { ConvTranspose2d, EfficientDetSegmentationHead, EfficientDetSegmenter } from '@effdet/segmentation';
import { describeWithFixture, expectClose, expectNoLeaks, fixtureTensor, readFixture } from '@effdet/testing';
import { loadWeights } from '@effdet/weights/node';
import * as tf from '@tensorflow/tfjs-core';

/** A 3x3 kernel 1..9 for one input and one output channel, in PyTorch ConvTranspose2d layout [in, out, kh, kw]. */
function kernel(conv: ConvTranspose2d, bias = 0): void {
  conv.loadStateDict({
    weight: { shape: [1, 1, 3, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]) },
    ...(conv.bias ? { bias: { shape: [1], data: Float32Array.from([bias]) } } : {}),
  });
}

describe('ConvTranspose2d', () => {
  it("'same' (Keras Conv2DTranspose): the adjoint of a SAME conv, implicit padding bottom/right", async () => {
    const conv = new ConvTranspose2d(1, 1, 3, { stride: 2, padding: 'same' });
    kernel(conv, 0.5);
    const x = tf.tensor4d([1, 10], [1, 1, 2, 1]);
    await expectNoLeaks(() => {
      const y = conv.forward(x);
      expect(y.shape).toEqual([1, 2, 4, 1]);
      // out[r][c] = sum_b K[r][c - 2b] x[b]: row 0 [1, 2, 3 + 10, 20], row 1 [4, 5, 6 + 40, 50]; + bias
      expect(Array.from(y.dataSync())).toEqual([1, 2, 13, 20, 4, 5, 46, 50].map((v) => v + 0.5));
      y.dispose();
    });
    x.dispose();
    conv.dispose();
  });

  it('PyTorch padding / output_padding: out[o] = sum_i x[i] K[o + p - i s]', () => {
    const conv = new ConvTranspose2d(1, 1, 3, { stride: 2, padding: 1, outputPadding: 1, bias: false });
    kernel(conv);
    const x = tf.tensor4d([1, 10], [1, 1, 2, 1]);
    const y = conv.forward(x);
    expect(y.shape).toEqual([1, 2, 4, 1]);
    expect(conv.outputSize(2)).toBe(4);
    // full (unpadded) rows: K1 row [4, 5, 46, 50, 60], K2 row [7, 8, 79, 80, 90]; crop 1 at the start
    expect(Array.from(y.dataSync())).toEqual([5, 46, 50, 60, 8, 79, 80, 90]);
    tf.dispose([x, y]);
    conv.dispose();
  });

  it('state dict: PyTorch ConvTranspose2d [in, out, kh, kw]', () => {
    const conv = new ConvTranspose2d(8, 4, 3, { stride: 2, padding: 'same' });
    expect(conv.stateShapes()).toEqual({ weight: [8, 4, 3, 3], bias: [4] });
    expect(() => new ConvTranspose2d(8, 4, 3, { stride: 2, padding: 'same', outputPadding: 1 })).toThrow(
      /outputPadding cannot be combined with 'same' padding/,
    );
    conv.dispose();
  });
});

describe('EfficientDetSegmentationHead / EfficientDetSegmenter (google/automl SegmentationHead)', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });

  it('P3..P7 -> stride-4 logits; names and shapes', async () => {
    const m = new EfficientDetSegmenter('tf_efficientdet_d0', {
      numClasses: 5,
      config: { imageSize: [128, 256] },
    });
    const s = m.stateShapes();
    expect(s['seg_head.con2d_ts.0.weight']).toEqual([64, 64, 3, 3]);
    expect(s['seg_head.con2d_ts.3.weight']).toEqual([128, 64, 3, 3]);
    expect(s['seg_head.con2d_t_bns.3.running_var']).toEqual([64]);
    expect(s['seg_head.head_transpose.weight']).toEqual([128, 5, 3, 3]);
    expect(s['seg_head.head_transpose.bias']).toEqual([5]);
    expect(s['seg_head.con2d_ts.4.weight']).toBeUndefined();
    expect(Object.keys(s).some((k) => k.startsWith('class_net'))).toBe(false);
    expect(m.seg_head.con2d_t_bns.items[0].eps).toBe(1e-3); // automl's BN epsilon (config normKwargs)
    m.eval();
    const x = tf.randomNormal([2, 128, 256, 3]);
    tf.dispose(m.forward(x).seg);
    await expectNoLeaks(() => {
      const out = m.forward(x);
      expect(out.seg.shape).toEqual([2, 32, 64, 5]);
      expect(out.classOut).toBeUndefined();
      out.seg.dispose();
    });
    x.dispose();
    m.dispose();
  });

  it('the head alone on any pyramid, with a clear error when level sizes do not halve', () => {
    const head = new EfficientDetSegmentationHead({ numFilters: 8, minLevel: 3, maxLevel: 5, numClasses: 2 });
    const feats = [8, 4, 2].map((s) => tf.ones([1, s, s, 8]) as tf.Tensor4D);
    const y = head.forward(feats);
    expect(y.shape).toEqual([1, 16, 16, 2]);
    const odd = [7, 4, 2].map((s) => tf.ones([1, s, s, 8]) as tf.Tensor4D);
    expect(() => head.forward(odd)).toThrow(
      /level sizes must halve exactly; upsampled \[1,8,8,8\] does not match \[1,7,7,8\]/,
    );
    expect(() => head.forward(feats.slice(1))).toThrow(/expected 3 pyramid levels, got 2/);
    tf.dispose([y, ...feats, ...odd]);
    head.dispose();
  });

  it('predictMask resizes to the config size and back to the image size', async () => {
    const m = new EfficientDetSegmenter('tf_efficientdet_lite0', {
      numClasses: 3,
      config: { imageSize: [128, 128] },
    });
    m.eval();
    const image = tf.randomUniform([60, 100, 3], 0, 255, 'int32') as tf.Tensor3D;
    await m.predictMask(image); // allocates the weights
    const before = tf.memory().numTensors;
    const r = await m.predictMask(image, { probabilities: true });
    expect(tf.memory().numTensors).toBe(before);
    expect([r.height, r.width, r.inputSize]).toEqual([60, 100, [128, 128]]);
    expect(r.mask.length).toBe(6000);
    expect(r.probabilities?.length).toBe(18000);
    expect(r.mask.every((c) => c >= 0 && c < 3)).toBe(true);
    await expect(m.predictMask(image, { inputSize: 64 })).rejects.toThrow(
      /only runs at 128x128, got inputSize 64x64/,
    );
    image.dispose();
    m.dispose();
  });
});

describeWithFixture(
  'effdet/tf_efficientdet_d0_512.io.safetensors',
  'segmentation next to the detection heads',
  (ioPath) => {
    it('an effdet checkpoint loads by name and the detection outputs stay those of the reference', async () => {
      await tf.setBackend('wasm');
      const io = readFixture(ioPath);
      const weights = await loadWeights(
        ioPath.replace(/[^/]+$/, 'tf_efficientdet_d0_s1.weights.safetensors'),
      );
      const m = new EfficientDetSegmenter('tf_efficientdet_d0', { detection: true });
      const { missing, unexpected } = loadRawStateDict(m, weights, { strict: false });
      expect(unexpected).toEqual([]);
      expect(missing.every((k) => k.startsWith('seg_head.'))).toBe(true);
      // The detector's own names: the same checkpoint loads strictly into EfficientDet.
      const det = createEfficientDet('tf_efficientdet_d0');
      const names = m.stateShapes();
      expect(Object.keys(det.stateShapes()).every((k) => k in names)).toBe(true);
      det.dispose();
      m.eval().fuseForInference(); // folded BN: within the fixture tolerance, and faster
      const input = fixtureTensor(io, 'input');
      const out = m.forward(input);
      expect(out.seg.shape).toEqual([1, 128, 128, 3]);
      for (const i of [0, 4]) {
        const c = fixtureTensor(io, `class.${i}`);
        const b = fixtureTensor(io, `box.${i}`);
        expectClose(out.classOut![i], c, 1e-3, `class.${i}`);
        expectClose(out.boxOut![i], b, 1e-3, `box.${i}`);
        tf.dispose([c, b]);
      }
      tf.dispose([input, out.seg, ...out.classOut!, ...out.boxOut!]);
      m.dispose();
    });
  },
);
