import { describeWithBackends, expectNoLeaks } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';
import { Anchors } from './anchors.js';
import { labelFor } from './coco_labels.js';
import {
  generateDetections,
  postProcess,
  postProcessArrays,
  postProcessArraysSync,
  postProcessSync,
  selectTopK,
  toDetections,
} from './postprocess.js';

const sig = (x: number) => 1 / (1 + Math.exp(-x));

/**
 * Tiny geometry: 64x64, levels 3..4, one anchor per location (A = 1), 2 classes. Level 3 is 8x8 (stride 8,
 * anchors 32 px), level 4 is 4x4 (stride 16, anchors 64 px).
 */
function tinyAnchors(): Anchors {
  return new Anchors({
    imageSize: [64, 64],
    minLevel: 3,
    maxLevel: 4,
    numScales: 1,
    aspectRatios: [[1, 1]],
    anchorScale: 4,
  });
}

interface Spot {
  img: number;
  level: 0 | 1;
  r: number;
  c: number;
  cls: number;
  logit: number;
  code?: [number, number, number, number];
}

function makeOutputs(batch: number, spots: Spot[]): { cls: tf.Tensor4D[]; box: tf.Tensor4D[] } {
  const sizes = [8, 4];
  const clsData = sizes.map((s) => new Float32Array(batch * s * s * 2).fill(-10));
  const boxData = sizes.map((s) => new Float32Array(batch * s * s * 4));
  for (const p of spots) {
    const s = sizes[p.level];
    const loc = (p.img * s + p.r) * s + p.c;
    clsData[p.level][loc * 2 + p.cls] = p.logit;
    if (p.code) boxData[p.level].set(p.code, loc * 4);
  }
  return {
    cls: sizes.map((s, l) => tf.tensor4d(clsData[l], [batch, s, s, 2])),
    box: sizes.map((s, l) => tf.tensor4d(boxData[l], [batch, s, s, 4])),
  };
}

// Image 0: three strong candidates; (0,1) class 1 overlaps (0,0) class 1 with IoU 0.6 and is suppressed.
// Image 1: four candidates that do not overlap within a class.
const SPOTS: Spot[] = [
  { img: 0, level: 0, r: 0, c: 0, cls: 1, logit: 2 },
  { img: 0, level: 0, r: 0, c: 1, cls: 1, logit: 1 },
  { img: 0, level: 0, r: 0, c: 1, cls: 0, logit: 0.5 },
  { img: 0, level: 1, r: 1, c: 1, cls: 0, logit: 3, code: [0.5, 0, 0, Math.log(0.5)] },
  { img: 1, level: 0, r: 7, c: 7, cls: 0, logit: 1 },
  { img: 1, level: 1, r: 0, c: 0, cls: 1, logit: 0 },
  { img: 1, level: 0, r: 3, c: 3, cls: 0, logit: -1 },
  { img: 1, level: 0, r: 5, c: 5, cls: 1, logit: -2 },
];

const Z = [0, 0, 0, 0, 0, 0];
// Rows x1, y1, x2, y2, score, class (1-based), written out by hand.
const EXPECTED_0 = [
  // level-4 anchor (1,1) = [-8,-8,56,56] yxyx; ty = 0.5 -> yc 56, tw = ln 0.5 -> w 32.
  [8, 24, 40, 88, sig(3), 1],
  [-12, -12, 20, 20, sig(2), 2],
  [-4, -12, 28, 20, sig(0.5), 1],
  Z,
  Z,
];
const EXPECTED_1 = [
  [44, 44, 76, 76, sig(1), 1],
  [-24, -24, 40, 40, sig(0), 2],
  [12, 12, 44, 44, sig(-1), 1],
  [28, 28, 60, 60, sig(-2), 2],
  Z,
];

function expectRows(actual: ArrayLike<number>, expected: number[][], what: string): void {
  expect(actual.length).toBe(expected.length * 6);
  for (let r = 0; r < expected.length; r++) {
    for (let k = 0; k < 6; k++) {
      const a = actual[r * 6 + k];
      if (!(Math.abs(a - expected[r][k]) <= 1e-4)) {
        throw new Error(
          `${what}: row ${r} col ${k} is ${a}, expected ${expected[r][k]}; row ${Array.from(actual).slice(r * 6, r * 6 + 6)}`,
        );
      }
    }
  }
}

const OPTS = { numClasses: 2, maxDetectionPoints: 4, maxDetections: 5 };

describeWithBackends('postProcess', () => {
  let anchors: Anchors;
  let outs: { cls: tf.Tensor4D[]; box: tf.Tensor4D[] };
  beforeAll(() => {
    anchors = tinyAnchors();
    outs = makeOutputs(2, SPOTS);
  });
  afterAll(() => {
    anchors.dispose();
    tf.dispose([...outs.cls, ...outs.box]);
  });

  it('top-k, decode, per-class NMS, 1-based classes and zero padding (hand-computed)', async () => {
    const rows = await postProcessArrays(outs.cls, outs.box, anchors, OPTS);
    expect(rows.length).toBe(2);
    expectRows(rows[0], EXPECTED_0, 'image 0');
    expectRows(rows[1], EXPECTED_1, 'image 1');
  });

  it('sync, tensor and array variants agree; the tensor is [B, maxDetections, 6]', async () => {
    const a = postProcessArraysSync(outs.cls, outs.box, anchors, OPTS);
    const t = await postProcess(outs.cls, outs.box, anchors, OPTS);
    const ts = postProcessSync(outs.cls, outs.box, anchors, OPTS);
    expect(t.shape).toEqual([2, 5, 6]);
    const flat = [...a[0], ...a[1]];
    expect(Array.from(t.dataSync())).toEqual(flat);
    expect(Array.from(ts.dataSync())).toEqual(flat);
    tf.dispose([t, ts]);
  });

  it('clips to imgSize / imgScale before NMS, then scales boxes by imgScale (per image)', async () => {
    const rows = await postProcessArrays(outs.cls, outs.box, anchors, {
      ...OPTS,
      imgScale: [2, 1],
      imgSize: [
        [100, 60],
        [64, 64],
      ],
    });
    // Image 0: clip region 50 x 30 input pixels, then x2.
    expectRows(
      rows[0],
      [[16, 48, 80, 60, sig(3), 1], [0, 0, 40, 40, sig(2), 2], [0, 0, 56, 40, sig(0.5), 1], Z, Z],
      'scaled image 0',
    );
    expectRows(
      rows[1],
      [
        [44, 44, 64, 64, sig(1), 1],
        [0, 0, 40, 40, sig(0), 2],
        [12, 12, 44, 44, sig(-1), 1],
        [28, 28, 60, 60, sig(-2), 2],
        Z,
      ],
      'scaled image 1',
    );
  });

  it('imgScale without imgSize rescales without clipping', async () => {
    const rows = await postProcessArrays(outs.cls, outs.box, anchors, { ...OPTS, imgScale: [0.5, 1] });
    expectRows(
      rows[0],
      [[4, 12, 20, 44, sig(3), 1], [-6, -6, 10, 10, sig(2), 2], [-2, -6, 14, 10, sig(0.5), 1], Z, Z],
      'rescaled',
    );
  });

  it('soft-NMS keeps the overlapping box with a decayed score', async () => {
    const rows = await postProcessArrays(outs.cls, outs.box, anchors, { ...OPTS, softNms: true });
    // IoU 0.6 -> decay exp(-0.36 / 0.5).
    expectRows(
      rows[0],
      [...EXPECTED_0.slice(0, 3), [-4, -12, 28, 20, sig(1) * Math.exp(-0.72), 2], Z],
      'soft image 0',
    );
    // Image 1 shows effdet's class-offset trick at work: class 1 boxes are shifted by (max coordinate 76) + 1,
    // and [-24,-24,40,40] (below -1) then overlaps class 0's [44,44,76,76] (IoU 529 / 4591), so it decays.
    // [28,28,60,60] decays through its own class (IoU 144 / 4976 with [-24,-24,40,40]).
    const d = (iou: number) => Math.exp(-(iou * iou) / 0.5);
    expectRows(
      rows[1],
      [
        EXPECTED_1[0],
        [-24, -24, 40, 40, sig(0) * d(529 / 4591), 2],
        EXPECTED_1[2],
        [28, 28, 60, 60, sig(-2) * d(144 / 4976), 2],
        Z,
      ],
      'soft image 1',
    );
  });

  it('selectTopK returns scores, 0-based classes and anchor indices of the best logits', () => {
    const c = selectTopK(outs.cls, outs.box, anchors, { numClasses: 2, maxDetectionPoints: 4 });
    expect(c.boxes.shape).toEqual([2, 4, 4]);
    expect(Array.from(c.classes.dataSync())).toEqual([0, 1, 1, 0, 0, 1, 0, 1]);
    // Image 0: level-4 anchor 64 + 5, then anchors 0, 1, 1. Image 1: 63, 64, 27, 45.
    expect(Array.from(c.anchorIndices.dataSync())).toEqual([69, 0, 1, 1, 63, 64, 27, 45]);
    const s = c.scores.dataSync();
    for (const [i, l] of [3, 2, 1, 0.5, 1, 0, -1, -2].entries()) expect(s[i]).toBeCloseTo(sig(l), 6);
    tf.dispose([c.boxes, c.scores, c.classes, c.anchorIndices]);
  });

  it('equal logits are taken in flat-index order (anchor * C + class)', async () => {
    const o = makeOutputs(1, [
      { img: 0, level: 0, r: 4, c: 4, cls: 1, logit: 1 },
      { img: 0, level: 0, r: 0, c: 0, cls: 1, logit: 1 },
      { img: 0, level: 0, r: 0, c: 6, cls: 0, logit: 1 },
    ]);
    const rows = await postProcessArrays(o.cls, o.box, anchors, {
      numClasses: 2,
      maxDetectionPoints: 3,
      maxDetections: 3,
    });
    expect([rows[0][5], rows[0][11], rows[0][17]]).toEqual([2, 1, 2]);
    expect([rows[0][0], rows[0][6], rows[0][12]]).toEqual([-12, 36, 20]);
    tf.dispose([...o.cls, ...o.box]);
  });

  it('toDetections drops padding rows and names classes', async () => {
    const rows = await postProcessArrays(outs.cls, outs.box, anchors, OPTS);
    const dets = toDetections(rows[0], labelFor);
    expect(dets.length).toBe(3);
    expect(dets[0].classId).toBe(1);
    expect(dets[0].label).toBe('person');
    expect(dets[1].box[0]).toBeCloseTo(-12, 4);
    expect(toDetections(rows[0]).map((d) => d.label)).toEqual([undefined, undefined, undefined]);
  });

  it('leaves no tensors behind (two calls each)', async () => {
    for (let i = 0; i < 2; i++) {
      await expectNoLeaks(() => postProcessArrays(outs.cls, outs.box, anchors, OPTS), 'postProcessArrays');
      await expectNoLeaks(
        () => postProcessArraysSync(outs.cls, outs.box, anchors, { ...OPTS, softNms: true }),
        'sync',
      );
      await expectNoLeaks(
        async () => (await postProcess(outs.cls, outs.box, anchors, OPTS)).dispose(),
        'postProcess',
      );
      await expectNoLeaks(
        () => postProcessSync(outs.cls, outs.box, anchors, OPTS).dispose(),
        'postProcessSync',
      );
    }
  });

  it('accepts a raw [N, 4] anchor tensor', async () => {
    const rows = await postProcessArrays(outs.cls, outs.box, anchors.boxes, OPTS);
    expectRows(rows[0], EXPECTED_0, 'raw anchors');
  });

  it('rejects inconsistent inputs with clear messages and without leaks', async () => {
    const bad3 = tf.zeros([2, 8, 8, 3]) as tf.Tensor4D;
    const bad7 = tf.zeros([2, 7, 8, 2]) as tf.Tensor4D;
    const b1 = tf.zeros([1, 4, 4, 2]) as tf.Tensor4D;
    const other = tinyAnchors();
    other.dispose();
    await expectNoLeaks(async () => {
      await expect(postProcessArrays([outs.cls[0]], [outs.box[0]], anchors, OPTS)).rejects.toThrow(
        /postProcessArrays: the anchors have 2 levels but 1 level outputs came/,
      );
      await expect(postProcessArrays(outs.cls, [outs.box[0]], anchors, OPTS)).rejects.toThrow(
        /classOuts has 2 levels but boxOuts has 1/,
      );
      await expect(postProcessArrays([bad3, outs.cls[1]], outs.box, anchors, OPTS)).rejects.toThrow(
        /level 0: boxOuts has 4 channels \(A \* 4\) and classOuts 3 \(expected A \* 2 = 2\)/,
      );
      await expect(postProcessArrays([bad7, outs.cls[1]], outs.box, anchors, OPTS)).rejects.toThrow(
        /level 0 spatial sizes differ/,
      );
      await expect(postProcessArrays([outs.cls[0], b1], outs.box, anchors, OPTS)).rejects.toThrow(
        /level 1 batch sizes \(1, 2\) differ from classOuts\[0\]'s 2/,
      );
      await expect(
        postProcessArrays(outs.cls, outs.box, anchors, { ...OPTS, imgScale: [1] }),
      ).rejects.toThrow(/options.imgScale must hold 2 positive numbers \(one per image\), got \[1\]/);
      await expect(
        postProcessArrays(outs.cls, outs.box, anchors, { ...OPTS, numClasses: 0 }),
      ).rejects.toThrow(/options.numClasses must be a positive integer, got 0/);
      expect(() => postProcessSync(outs.cls, outs.box, other, OPTS)).toThrow(
        /Anchors.boxes: the anchors were disposed/,
      );
    });
    tf.dispose([bad3, bad7, b1]);
  });
});

describe('generateDetections (host)', () => {
  it('pads with zero rows, 1-based classes, clips then scales', () => {
    const out = generateDetections(
      {
        boxes: Float32Array.from([-5, -5, 30, 30, 0, 0, 10, 10]),
        scores: Float32Array.from([0.2, 0.9]),
        classes: Int32Array.from([4, 0]),
      },
      { maxDetections: 3, imgScale: 2, imgSize: [40, 20] },
    );
    // Clip region 20 x 10; then x2.
    expect(Array.from(out)).toEqual([
      0,
      0,
      20,
      20,
      Math.fround(0.9),
      1,
      0,
      0,
      40,
      20,
      Math.fround(0.2),
      5,
      0,
      0,
      0,
      0,
      0,
      0,
    ]);
  });

  it('rejects mismatched candidate arrays', () => {
    expect(() =>
      generateDetections({
        boxes: new Float32Array(8),
        scores: new Float32Array(1),
        classes: new Int32Array(1),
      }),
    ).toThrow(
      /generateDetections: candidates need boxes \[k \* 4\], scores \[k\], classes \[k\]; got lengths 8, 1, 1/,
    );
  });
});
