import { describeWithBackends, describeWithFixture, expectNoLeaks, readFixture } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';
import { type AnchorConfig, Anchors, featSizes, generateAnchorBoxes } from './anchors.js';

const EFFDET_ASPECTS: [number, number][] = [
  [1, 1],
  [1.4, 0.7],
  [0.7, 1.4],
];

function d0(imageSize: [number, number], anchorScale = 4): AnchorConfig {
  return { imageSize, minLevel: 3, maxLevel: 7, numScales: 3, aspectRatios: EFFDET_ASPECTS, anchorScale };
}

function row(boxes: Float32Array, i: number): number[] {
  return Array.from(boxes.subarray(4 * i, 4 * i + 4));
}

function expectRow(boxes: Float32Array, i: number, expected: number[], digits = 4): void {
  const got = row(boxes, i);
  for (let k = 0; k < 4; k++) expect(got[k]).toBeCloseTo(expected[k], digits);
}

describe('featSizes', () => {
  it('halves with (s - 1) // 2 + 1 per dimension, level 0 = the image', () => {
    expect(featSizes([64, 64], 4)).toEqual([
      [64, 64],
      [32, 32],
      [16, 16],
      [8, 8],
      [4, 4],
    ]);
    // 320: 40, 20, 10, 5, 3 (odd sizes round up); 384x256 non-square.
    expect(featSizes([320, 320], 7).slice(3)).toEqual([
      [40, 40],
      [20, 20],
      [10, 10],
      [5, 5],
      [3, 3],
    ]);
    expect(featSizes([384, 256], 7).slice(3)).toEqual([
      [48, 32],
      [24, 16],
      [12, 8],
      [6, 4],
      [3, 2],
    ]);
    expect(featSizes([7, 1], 2)).toEqual([
      [7, 1],
      [4, 1],
      [2, 1],
    ]);
  });

  it('rejects bad sizes and levels', () => {
    expect(() => featSizes([0, 64], 3)).toThrow(/featSizes: imageSize must be \[height, width\].*\[0,64\]/);
    expect(() => featSizes([64, 64], -1)).toThrow(/featSizes: maxLevel must be an integer >= 0, got -1/);
  });
});

describe('generateAnchorBoxes', () => {
  it('a tiny config written out by hand (64x64, levels 3..4, 1 scale, 1 aspect)', () => {
    const boxes = generateAnchorBoxes({
      imageSize: [64, 64],
      minLevel: 3,
      maxLevel: 4,
      numScales: 1,
      aspectRatios: [[1, 1]],
      anchorScale: 4,
    });
    // Level 3: 8x8 cells of stride 8, base 4 * 8 = 32 (half 16), centres 4, 12, ..., 60.
    // Level 4: 4x4 cells of stride 16, base 64 (half 32), centres 8, 24, 40, 56.
    expect(boxes.length).toBe((64 + 16) * 4);
    const expected: number[][] = [];
    for (let r = 0; r < 8; r++) {
      for (let c = 0; c < 8; c++)
        expected.push([4 + 8 * r - 16, 4 + 8 * c - 16, 4 + 8 * r + 16, 4 + 8 * c + 16]);
    }
    for (let r = 0; r < 4; r++) {
      for (let c = 0; c < 4; c++)
        expected.push([8 + 16 * r - 32, 8 + 16 * c - 32, 8 + 16 * r + 32, 8 + 16 * c + 32]);
    }
    expect(Array.from(boxes)).toEqual(expected.flat());
    expect(row(boxes, 0)).toEqual([-12, -12, 20, 20]);
    expect(row(boxes, 1)).toEqual([-12, -4, 20, 28]); // next column
    expect(row(boxes, 8)).toEqual([-4, -12, 28, 20]); // next row
    expect(row(boxes, 64)).toEqual([-24, -24, 40, 40]); // first level-4 anchor
    expect(row(boxes, 79)).toEqual([24, 24, 88, 88]);
  });

  it('orders octave scales before aspect ratios within a location', () => {
    const boxes = generateAnchorBoxes({
      imageSize: [64, 64],
      minLevel: 3,
      maxLevel: 3,
      numScales: 2,
      aspectRatios: [
        [1, 1],
        [1.4, 0.7],
      ],
      anchorScale: 4,
    });
    expect(boxes.length).toBe(64 * 4 * 4);
    // Location (0, 0), centre (4, 4). a = octave * 2 + aspect.
    expectRow(boxes, 0, [-12, -12, 20, 20]); // octave 0, [1, 1]
    expectRow(boxes, 1, [4 - 11.2, 4 - 22.4, 4 + 11.2, 4 + 22.4]); // octave 0, [1.4, 0.7]: wider than tall
    const h = (32 * Math.SQRT2) / 2; // octave 1: base 32 * 2^(1/2)
    expectRow(boxes, 2, [4 - h, 4 - h, 4 + h, 4 + h]);
    expectRow(boxes, 3, [4 - h * 0.7, 4 - h * 1.4, 4 + h * 0.7, 4 + h * 1.4]);
    // Next location (0, 1), centre x 12.
    expectRow(boxes, 4, [-12, -4, 20, 28]);
  });

  it('treats a scalar aspect ratio r as [sqrt(r), 1/sqrt(r)] and accepts one anchorScale per level', () => {
    const boxes = generateAnchorBoxes({
      imageSize: [32, 32],
      minLevel: 3,
      maxLevel: 4,
      numScales: 1,
      aspectRatios: [2],
      anchorScale: [4, 2],
    });
    const hx = (32 * Math.SQRT2) / 2;
    const hy = 32 / Math.SQRT2 / 2;
    expectRow(boxes, 0, [4 - hy, 4 - hx, 4 + hy, 4 + hx]);
    // Level 4 (2x2, stride 16) with anchorScale 2: base 32, centre 8, same aspect.
    expectRow(boxes, 16, [
      8 - 16 / Math.SQRT2,
      8 - 16 * Math.SQRT2,
      8 + 16 / Math.SQRT2,
      8 + 16 * Math.SQRT2,
    ]);
  });

  it('matches the effdet 512 reference values', () => {
    const boxes = generateAnchorBoxes(d0([512, 512]));
    expect(boxes.length / 4).toBe(49104);
    expectRow(boxes, 0, [-12, -12, 20, 20]);
    expectRow(boxes, 1, [-7.2, -18.4, 15.2, 26.4]);
    expectRow(boxes, 3, [-16.1587, -16.1587, 24.1587, 24.1587]);
    expectRow(boxes, 9, [-12, -4, 20, 28]);
    expectRow(boxes, 576, [-4, -12, 28, 20]);
    expectRow(boxes, 64 * 64 * 9, [-24, -24, 40, 40]);
    expect(generateAnchorBoxes(d0([640, 640])).length / 4).toBe(76725);
    expect(generateAnchorBoxes(d0([448, 448])).length / 4).toBe(37629);
  });

  it('uses float strides for sizes that are not multiples of 128 (P7 of 320 has stride 320/3)', () => {
    const boxes = generateAnchorBoxes(d0([320, 320], 3));
    const n = boxes.length / 4;
    expect(n).toBe(9 * (1600 + 400 + 100 + 25 + 9));
    // Last anchor: P7 location (2, 2), octave 2, aspect [0.7, 1.4]; centre 320/6 + 2 * 320/3.
    const stride = 320 / 3;
    const centre = stride / 2 + 2 * stride;
    const base = 3 * stride * 2 ** (2 / 3);
    expectRow(
      boxes,
      n - 1,
      [
        centre - (base * 1.4) / 2,
        centre - (base * 0.7) / 2,
        centre + (base * 1.4) / 2,
        centre + (base * 0.7) / 2,
      ],
      3,
    );
  });

  it('handles non-square images (384x256: strides differ per axis only when sizes do not divide)', () => {
    const boxes = generateAnchorBoxes(d0([384, 256]));
    expect(boxes.length / 4).toBe(9 * (48 * 32 + 24 * 16 + 12 * 8 + 6 * 4 + 3 * 2));
    // P7 is 3x2: strides 128 x 128; its first anchor centre (64, 64), base 512.
    const p7 = 9 * (48 * 32 + 24 * 16 + 12 * 8 + 6 * 4);
    expectRow(boxes, p7, [64 - 256, 64 - 256, 64 + 256, 64 + 256]);
  });

  it('rejects invalid configs with the function and argument named', () => {
    const ok = d0([64, 64]);
    expect(() => generateAnchorBoxes({ ...ok, imageSize: [64, 0] })).toThrow(
      /generateAnchorBoxes: imageSize/,
    );
    expect(() => generateAnchorBoxes({ ...ok, minLevel: 5, maxLevel: 4 })).toThrow(
      /minLevel\/maxLevel.*5\/4/,
    );
    expect(() => generateAnchorBoxes({ ...ok, numScales: 0 })).toThrow(
      /numScales must be a positive integer, got 0/,
    );
    expect(() => generateAnchorBoxes({ ...ok, aspectRatios: [] })).toThrow(
      /aspectRatios must be a non-empty array/,
    );
    expect(() => generateAnchorBoxes({ ...ok, aspectRatios: [[1, -1]] })).toThrow(
      /each aspect ratio.*\[1,-1\]/,
    );
    expect(() => generateAnchorBoxes({ ...ok, anchorScale: [4, 4] })).toThrow(
      /anchorScale must be .* 5 positive numbers/,
    );
  });
});

describeWithBackends('Anchors', () => {
  it('holds the boxes as a [N, 4] tensor and disposes it', async () => {
    const before = tf.memory().numTensors;
    const a = Anchors.fromConfig({ ...d0([128, 128]), numClasses: 90 } as AnchorConfig);
    expect(tf.memory().numTensors).toBe(before + 1);
    expect(a.numAnchorsPerLocation).toBe(9);
    expect(a.numAnchors).toBe(9 * (256 + 64 + 16 + 4 + 1));
    expect(a.numLevels).toBe(5);
    expect(a.levelSizes).toEqual([
      [16, 16],
      [8, 8],
      [4, 4],
      [2, 2],
      [1, 1],
    ]);
    expect(a.boxes.shape).toEqual([a.numAnchors, 4]);
    expect(Array.from(await a.boxes.data())).toEqual(Array.from(a.boxesArray));
    a.dispose();
    a.dispose();
    expect(a.isDisposed).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => a.boxes).toThrow(/Anchors.boxes: the anchors were disposed/);
  });

  it('survives an enclosing tf.tidy', () => {
    let a: Anchors | undefined;
    tf.tidy(() => {
      a = new Anchors(d0([128, 128]));
    });
    expect(a?.boxes.isDisposed).toBe(false);
    a?.dispose();
  });

  it('does not leak when the config is invalid', async () => {
    await expectNoLeaks(() => {
      expect(() => new Anchors({ ...d0([64, 64]), numScales: 1.5 })).toThrow(/numScales/);
    });
  });
});

const FIXTURES = [
  'tf_efficientdet_d0_512',
  'tf_efficientdet_lite0_320',
  'efficientdet_d0_256',
  'tf_efficientdet_d0_384x256',
];
for (const name of FIXTURES) {
  describeWithFixture(
    `effdet/${name}.io.safetensors`,
    `anchor levels match the head outputs of ${name}`,
    (path) => {
      it('every stored class.i / box.i has the anchors level size and 9 anchors per location', () => {
        const f = readFixture(path);
        const cfg = JSON.parse(f.metadata.config) as { anchor_scale: number; image_size: string };
        const size: [number, number] = [Number(f.metadata.height), Number(f.metadata.width)];
        expect(JSON.parse(cfg.image_size)).toEqual(size);
        const a = new Anchors(d0(size, cfg.anchor_scale));
        try {
          let seen = 0;
          for (let l = 0; l < 5; l++) {
            const c = f.tensors.get(`class.${l}`);
            const b = f.tensors.get(`box.${l}`);
            if (!c || !b) continue;
            seen++;
            expect(c.shape.slice(1)).toEqual([...a.levelSizes[l], 9 * 90]);
            expect(b.shape.slice(1)).toEqual([...a.levelSizes[l], 9 * 4]);
          }
          expect(seen).toBeGreaterThanOrEqual(4);
        } finally {
          a.dispose();
        }
      });
    },
  );
}
