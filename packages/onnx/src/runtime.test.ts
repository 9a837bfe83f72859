/**
 * `createOnnxDetector`: the detect API of `@effdet/effdet/node` on onnxruntime-node, checked against the TF.js
 * detector on the same images (same host preprocessing, so the rows must agree) and against the reference dump.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Detection, matchDetections } from '@effdet/effdet';
import { createDetector, decodeImage, type NodeDetector } from '@effdet/effdet/node';
import { describeWithFixture, expectNoLeaks, readFixture } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';
import { exportOnnx } from './export.js';
import { createOnnxDetector, type NodeOnnxDetector } from './node.js';
import { loadOnnxDetector, type OrtModule, readOnnxMetadata } from './runtime.js';
import { mainRealmOrt } from './testing/ort.js';

const ort = mainRealmOrt() as unknown as OrtModule;

function flat(ds: Detection[]): number[] {
  return ds.flatMap((d) => [...d.box, d.score, d.classId]);
}

describeWithFixture(
  'effdet/tf_efficientdet_lite0_320.io.safetensors',
  'createOnnxDetector (lite0 fixture weights)',
  (ioPath) => {
    const dir = join(ioPath, '..');
    const weights = join(dir, 'tf_efficientdet_lite0_s2.weights.safetensors');
    const imgPath = join(dir, '..', 'images', 'img1.jpg');
    const tmp = mkdtempSync(join(tmpdir(), 'effdet-onnx-'));
    const saved = join(tmp, 'lite0.onnx');
    let det: NodeOnnxDetector;
    let ref: NodeDetector;

    beforeAll(async () => {
      await tf.setBackend('wasm');
      det = await createOnnxDetector('tf_efficientdet_lite0', {
        weights,
        ort,
        saveTo: saved,
        intraOpNumThreads: 1,
      });
      ref = await createDetector('tf_efficientdet_lite0', { weights });
    });
    afterAll(async () => {
      await det?.dispose();
      ref?.dispose();
      rmSync(tmp, { recursive: true, force: true });
    });

    it('file path in, the same boxes as the TF.js detector out; the reference bench within decoding noise', async () => {
      const dets = await det.detect(imgPath, { scoreThreshold: 0 });
      expect(dets).toHaveLength(100);
      expect(dets[0].label).toBeDefined(); // COCO names for a 90-class model
      const tfDets = await ref.detect(await decodeImage(imgPath), { scoreThreshold: 0 });
      const same = matchDetections(flat(dets), flat(tfDets));
      expect(same.matched).toBe(100);
      const io = readFixture(ioPath);
      const rep = matchDetections(flat(dets), io.tensors.get('detections_scaled')!.data, {
        minIou: 0.9,
        scoreTolerance: 0.02,
      });
      console.log(
        `onnx detector vs reference bench on img1.jpg: ${rep.matched}/100 rows (IoU >= 0.9, |score diff| <= 0.02)`,
      );
      expect(rep.matched).toBeGreaterThanOrEqual(90);
      const thresholded = dets.filter((d) => d.score >= 0.3);
      expect(flat(await det.detect(await decodeImage(imgPath)))).toEqual(flat(thresholded));
    });

    it('batches, soft-NMS, other IoU thresholds and fewer rows agree with the TF.js detector', async () => {
      const rgb = await decodeImage(imgPath);
      const mirrored = { data: new Uint8Array(rgb.data.length), width: rgb.width, height: rgb.height };
      for (let y = 0; y < rgb.height; y++) {
        for (let x = 0; x < rgb.width; x++) {
          const s = (y * rgb.width + x) * 3;
          const d = (y * rgb.width + (rgb.width - 1 - x)) * 3;
          mirrored.data.set(rgb.data.subarray(s, s + 3), d);
        }
      }
      const batch = [rgb, mirrored];
      const a = await det.detect(batch, { scoreThreshold: 0 });
      const b = await ref.detect(batch, { scoreThreshold: 0 });
      expect(a).toHaveLength(2);
      for (let i = 0; i < 2; i++) expect(matchDetections(flat(a[i]), flat(b[i])).matched).toBe(100);
      // Settings the in-graph NMS does not cover run the TypeScript NMS on the graph's candidates.
      for (const options of [
        { scoreThreshold: 0, nms: 'soft' as const },
        { scoreThreshold: 0, iouThreshold: 0.6, maxDetections: 30 },
      ]) {
        const x = await det.detect(mirrored, options);
        const y = await ref.detect(mirrored, options);
        expect(x.length).toBe(y.length);
        expect(matchDetections(flat(x), flat(y)).matched).toBe(y.length);
      }
      const ten = await det.detect(rgb, { scoreThreshold: 0, maxDetections: 10 });
      const all = await det.detect(rgb, { scoreThreshold: 0 });
      expect(flat(ten)).toEqual(flat(all.slice(0, 10)));
    });

    it('tensor batches and detectTensors, leaving no tensors behind', async () => {
      const rgb = await decodeImage(imgPath);
      const t3 = tf.tensor3d(rgb.data, [rgb.height, rgb.width, 3], 'int32');
      const b4 = tf.stack([t3, t3]) as tf.Tensor4D;
      const lists = await expectNoLeaks(() => det.detect(b4, { scoreThreshold: 0 }), 'detect');
      expect(lists).toHaveLength(2);
      expect(flat(lists[1])).toEqual(flat(lists[0]));
      const r = await det.detectTensors(t3, { maxDetections: 7 });
      expect(r.detections.shape).toEqual([1, 7, 6]);
      expect(r.imgSize).toEqual([[1024, 636]]);
      expect(Array.from(r.detections.dataSync())).toEqual(flat(lists[0].slice(0, 7)).map(Math.fround));
      tf.dispose([t3, b4, r.detections]);
    });

    it('a saved file reopens without weights; raw-output exports use the TypeScript post-processing', async () => {
      const meta = readOnnxMetadata(new Uint8Array(readFileSync(saved)));
      expect(meta.model).toBe('tf_efficientdet_lite0');
      expect(JSON.parse(meta.postprocess)).toMatchObject({
        maxDetections: 100,
        iouThreshold: 0.5,
        imageInfo: true,
        candidates: true,
      });
      const again = await createOnnxDetector('tf_efficientdet_lite0', { model: saved, ort });
      await expect(createOnnxDetector('tf_efficientdet_d0', { model: saved, ort })).rejects.toThrow(
        /the ONNX file holds tf_efficientdet_lite0, not tf_efficientdet_d0/,
      );
      const raw = exportOnnx(ref.model, { batch: 1 });
      const plain = await loadOnnxDetector(raw.bytes, { ort, labels: ['only'] });
      try {
        const rgb = await decodeImage(imgPath);
        const a = await again.detect(rgb, { scoreThreshold: 0 });
        const b = await plain.detect([rgb, rgb], { scoreThreshold: 0 });
        expect(matchDetections(flat(a), flat(b[0])).matched).toBe(100);
        expect(matchDetections(flat(b[1]), flat(b[0])).matched).toBe(100);
        expect(
          b[0][0].label === 'only' || b[0][0].label === 'class 1' || b[0][0].label?.startsWith('class '),
        ).toBe(true);
      } finally {
        await again.dispose();
        await plain.dispose();
      }
      await expect(again.detect(imgPath)).rejects.toThrow(/the detector was disposed/);
    });

    it('a file that is not a detector is refused', async () => {
      const net = (await import('@effdet/efficientnet')).createModel('effdet_test_efficientnet');
      const bytes = exportOnnx(net, { inputSize: [32, 32] }).bytes;
      net.dispose();
      await expect(loadOnnxDetector(bytes, { ort })).rejects.toThrow(
        /not an EfficientDet export of @effdet\/onnx \(metadata task 'classifier'\)/,
      );
      await expect(loadOnnxDetector(bytes, {} as never)).rejects.toThrow(
        /options.ort must be the onnxruntime module/,
      );
    });
  },
);
