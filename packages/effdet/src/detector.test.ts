import { join } from 'node:path';
import { createDetector, getEfficientDetConfig, matchDetections } from '@effdet/effdet';
import { createDetector as createNodeDetector, decodeImage, NodeDetector } from '@effdet/effdet/node';
import { describeWithBackends, describeWithFixture, expectNoLeaks, readFixture } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';

describeWithBackends('createDetector / detect', () => {
  it('random test model: plain objects, batched, tensors, no leaks across two detect calls', async () => {
    const det = await createDetector('test_efficientdet', { numClasses: 3, labels: ['a', 'b', 'c'] });
    const img = tf.randomUniform([90, 120, 3], 0, 255, 'int32') as tf.Tensor3D;
    const run = async () => {
      const one = await det.detect(img, { scoreThreshold: 0 });
      expect(Array.isArray(one)).toBe(true);
      for (const d of one) {
        expect(d.box).toHaveLength(4);
        expect(d.classId).toBeGreaterThanOrEqual(1);
        expect(d.classId).toBeLessThanOrEqual(3);
        expect(['a', 'b', 'c']).toContain(d.label);
        expect(d.box[2]).toBeLessThanOrEqual(120 + 1e-3); // clipped to the original image
        expect(d.box[3]).toBeLessThanOrEqual(90 + 1e-3);
      }
      const many = await det.detect([img, { data: new Uint8Array(50 * 40 * 4), width: 50, height: 40 }], {
        scoreThreshold: 0,
        maxDetections: 10,
      });
      expect(many).toHaveLength(2);
      expect(many[1].length).toBeLessThanOrEqual(10);
      const t = await det.detectTensors(img, { maxDetections: 7 });
      expect(t.detections.shape).toEqual([1, 7, 6]);
      expect(t.imgSize).toEqual([[120, 90]]);
      t.detections.dispose();
    };
    await run();
    await expectNoLeaks(run, 'detect');
    img.dispose();
    det.dispose();
    await expect(det.detect(tf.zeros([2, 2, 3]) as tf.Tensor3D)).rejects.toThrow(/disposed/);
  });

  it('bad inputs: unknown model, zero-size image, wrong channel count, weights of another config', async () => {
    await expect(createDetector('tf_efficientdet_d42')).rejects.toThrow(
      /unknown model 'tf_efficientdet_d42'; valid models:/,
    );
    const det = await createDetector('test_efficientdet');
    await expectNoLeaks(async () => {
      const empty = tf.zeros([0, 10, 3]) as tf.Tensor3D;
      await expect(det.detect(empty)).rejects.toThrow(/0/);
      const two = tf.zeros([10, 10, 2]) as tf.Tensor3D;
      await expect(det.detect(two)).rejects.toThrow(/channel/i);
      tf.dispose([empty, two]);
    });
    const other = await createDetector('test_efficientdet', { numClasses: 5 });
    const sd = other.model.stateDict();
    const raw = Object.fromEntries(
      Object.entries(sd).map(([k, v]) => [
        k,
        { dtype: 'float32' as const, shape: v.shape, data: new Uint8Array(v.dataSync().buffer.slice(0)) },
      ]),
    );
    await expect(createDetector('test_efficientdet', { weights: raw })).rejects.toThrow(
      /mis-shaped: class_net\.predict\.conv_pw\.weight expected \[810,16,1,1\] got \[45,16,1,1\]/,
    );
    tf.dispose(Object.values(sd));
    other.dispose();
    det.dispose();
  });
});

describeWithFixture(
  'effdet/tf_efficientdet_lite0_320.io.safetensors',
  'detect end to end (lite0 fixture weights)',
  (ioPath) => {
    describeWithBackends('Node detector on img1.jpg', () => {
      it('file path in, boxes out; same rows as the network on the fixture input', async () => {
        const dir = join(ioPath, '..');
        const det = await createNodeDetector('tf_efficientdet_lite0', {
          weights: join(dir, 'tf_efficientdet_lite0_s2.weights.safetensors'),
        });
        expect(det).toBeInstanceOf(NodeDetector);
        const imgPath = join(dir, '..', 'images', 'img1.jpg');
        const dets = await det.detect(imgPath, { scoreThreshold: 0 });
        expect(dets.length).toBe(100);
        // Original-pixel boxes: img1.jpg is 1024x636.
        for (const d of dets) expect(d.box[2]).toBeLessThanOrEqual(1024 + 1e-3);
        // Against the reference bench given the original image info (clip, NMS, rescale to original pixels).
        // Decoding (jpeg-js vs libjpeg) differs by ~0.2 grey levels on average, so rows match approximately.
        const io = readFixture(ioPath);
        const t = await det.detectTensors(imgPath, { maxDetections: 100 });
        const ref = io.tensors.get('detections_scaled')!;
        const rep = matchDetections(t.detections, ref.data as Float32Array, {
          minIou: 0.9,
          scoreTolerance: 0.02,
        });
        console.log(`end-to-end rows matched ${rep.matched}/100 (IoU >= 0.9, |score diff| <= 0.02)`);
        expect(rep.matched).toBeGreaterThanOrEqual(90);
        t.detections.dispose();
        const rgb = await decodeImage(imgPath);
        expect([rgb.width, rgb.height]).toEqual([1024, 636]);
        det.dispose();
      });
    });
  },
);

it('config used by a detector reflects overrides', () => {
  expect(getEfficientDetConfig('tf_efficientdet_d0', { imageSize: [256, 384] }).imageSize).toEqual([
    256, 384,
  ]);
});
