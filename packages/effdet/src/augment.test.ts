import { expectNoLeaks } from '@effdet/testing';
import {
  type AugmentResult,
  type AugmentSample,
  cocoBoxesToYxyx,
  horizontalFlip,
  randomHorizontalFlip,
  randomResizePad,
  resizePad,
  trainAugment,
  verticalFlip,
  yxyxToCocoBoxes,
} from './augment.js';
import { letterbox } from './preprocess.js';

/** mulberry32: a small seeded uniform stream for the tests. */
function uniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A fixed sequence of draws. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++];
}

interface Rect {
  x0: number;
  y0: number;
  x1: number; // inclusive
  y1: number;
  color: [number, number, number];
  cls: number;
}

/** Grey image with filled rectangles; semantic (class) and instance (1-based) masks; yxyx boxes. */
function scene(
  width: number,
  height: number,
  rects: Rect[],
): AugmentSample & { masks: [Uint8Array, Uint16Array] } {
  const data = new Uint8Array(width * height * 3).fill(90);
  const semantic = new Uint8Array(width * height);
  const instance = new Uint16Array(width * height);
  rects.forEach((r, i) => {
    for (let y = r.y0; y <= r.y1; y++) {
      for (let x = r.x0; x <= r.x1; x++) {
        data.set(r.color, 3 * (y * width + x));
        semantic[y * width + x] = r.cls;
        instance[y * width + x] = i + 1;
      }
    }
  });
  return {
    image: { data, width, height },
    boxes: cocoBoxesToYxyx(rects.map((r) => [r.x0, r.y0, r.x1 - r.x0 + 1, r.y1 - r.y0 + 1])),
    classes: rects.map((r) => r.cls),
    masks: [semantic, instance],
  };
}

/** Tight yxyx box (edge convention: last pixel + 1) of the pixels of a plane equal to `id`, or null. */
function tightBox(plane: ArrayLike<number>, width: number, id: number): number[] | null {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -1;
  let y1 = -1;
  for (let p = 0; p < plane.length; p++) {
    if (plane[p] !== id) continue;
    const x = p % width;
    const y = (p - x) / width;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  return x1 < 0 ? null : [y0, x0, y1 + 1, x1 + 1];
}

const RECTS: Rect[] = [
  { x0: 40, y0: 30, x1: 119, y1: 89, color: [250, 10, 10], cls: 3 },
  { x0: 150, y0: 100, x1: 189, y1: 139, color: [10, 240, 20], cls: 5 },
  { x0: 0, y0: 0, x1: 9, y1: 7, color: [20, 20, 250], cls: 1 },
];

/** Every kept box is the tight box of its instance's transformed mask within 1 px; dropped ones left no pixels. */
function checkConsistent(r: AugmentResult, n: number): number {
  const inst = r.masks[1];
  let kept = 0;
  for (let i = 0; i < n; i++) {
    const k = Array.from(r.keep).indexOf(i);
    const tb = tightBox(inst, r.image.width, i + 1);
    if (k < 0) {
      // dropped: at most a sliver of mask can remain (a box clipped to zero size)
      if (tb) expect(Math.min(tb[2] - tb[0], tb[3] - tb[1])).toBeLessThanOrEqual(1);
      continue;
    }
    kept++;
    const box = Array.from(r.boxes.subarray(4 * k, 4 * k + 4));
    if (!tb) {
      // a box thinner than a pixel can miss every pixel centre
      expect(Math.min(box[2] - box[0], box[3] - box[1])).toBeLessThan(1.01);
      continue;
    }
    for (let j = 0; j < 4; j++) expect(Math.abs(box[j] - tb[j])).toBeLessThanOrEqual(1);
    expect(r.classes[k]).toBe(RECTS[i].cls);
  }
  return kept;
}

describe('randomResizePad', () => {
  const sample = scene(200, 150, RECTS);

  it('transforms image, masks and boxes consistently (box = tight box of the mask within 1 px)', () => {
    let kept = 0;
    let dropped = 0;
    for (let s = 0; s < 40; s++) {
      const r = randomResizePad(sample, { targetSize: [128, 160] }, uniform(s));
      expect([r.image.width, r.image.height]).toEqual([160, 128]);
      expect(r.masks[0]).toBeInstanceOf(Uint8Array);
      expect(r.masks[1]).toBeInstanceOf(Uint16Array);
      const k = checkConsistent(r, RECTS.length);
      kept += k;
      dropped += RECTS.length - k;
      // semantic mask agrees with the instance mask; interior of the red rectangle is red in the image
      let bad = 0;
      for (let p = 0; p < r.masks[0].length; p++) {
        const id = r.masks[1][p];
        if (r.masks[0][p] !== (id === 0 ? 0 : RECTS[id - 1].cls)) bad++;
      }
      expect(bad).toBe(0);
      const red = tightBox(r.masks[1], 160, 1);
      if (red && red[2] - red[0] > 4 && red[3] - red[1] > 4) {
        const cy = Math.floor((red[0] + red[2]) / 2);
        const cx = Math.floor((red[1] + red[3]) / 2);
        const px = 3 * (cy * 160 + cx);
        expect(r.image.data[px]).toBeGreaterThan(200);
        expect(r.image.data[px + 1]).toBeLessThan(60);
      }
    }
    expect(kept).toBeGreaterThan(60);
    expect(dropped).toBeGreaterThan(0); // crops at large scales lose some boxes
  });

  it('follows the reference arithmetic: scale, truncated size, offsets, clipping, imgScale', () => {
    // factor = 0.1 + 1.9 * 0.5 = 1.05; scale = min(1.05 * 128 / 150, 1.05 * 160 / 200) = 0.84
    // resized 168 x 126 (W x H); offsets: y = int(max(0, 126 - 128) * u) = 0, x = int((168 - 160) * 0.5) = 4
    const ref = randomResizePad(
      sample,
      { targetSize: [128, 160], boxScale: 'reference' },
      sequence(0.5, 0.9, 0.5),
    );
    expect(ref.imgScale).toBeCloseTo(1 / 0.84, 12);
    const want = [30 * 0.84, 40 * 0.84 - 4, 90 * 0.84, 120 * 0.84 - 4];
    Array.from(ref.boxes.subarray(0, 4)).forEach((v, i) => {
      expect(v).toBeCloseTo(want[i], 4);
    });
    // the third box (top-left corner, x 0..10) is clipped at x = 0: [0, 0, 8 * 0.84, 10 * 0.84 - 4]
    expect(Array.from(ref.boxes.subarray(8, 12))).toEqual(
      [0, 0, 8 * 0.84, 10 * 0.84 - 4].map((v) => Math.fround(v)),
    );
    // 'exact' scales by the truncated size: 126 / 150 = 0.84 and 168 / 200 = 0.84 here, so both agree
    const exact = randomResizePad(sample, { targetSize: [128, 160] }, sequence(0.5, 0.9, 0.5));
    expect(exact.boxes).toEqual(ref.boxes);
    // rows 126, 127 are padding (mean colour), and mask fill
    const fillRow = 127 * 160 * 3;
    expect(Array.from(ref.image.data.subarray(fillRow, fillRow + 3))).toEqual([124, 116, 104]);
    expect(ref.masks[1][127 * 160]).toBe(0);
    // where truncation bites, 'exact' follows the pixels: factor 0.1 + 1.9 * 0.3 = 0.67 -> scale
    // min(0.5717, 0.536) = 0.536, 107 x 80 (W x H): x by 107 / 200 = 0.535, y by 80 / 150 = 0.5333
    const ex = randomResizePad(sample, { targetSize: [128, 160] }, sequence(0.3, 0, 0));
    const rf = randomResizePad(
      sample,
      { targetSize: [128, 160], boxScale: 'reference' },
      sequence(0.3, 0, 0),
    );
    expect([ex.image.width, ex.image.height]).toEqual([160, 128]);
    expect(ex.boxes[3]).toBe(Math.fround((120 * 107) / 200));
    expect(ex.boxes[2]).toBe(Math.fround((90 * 80) / 150));
    expect(rf.boxes[3]).toBe(Math.fround(120 * Math.min((0.67 * 128) / 150, (0.67 * 160) / 200)));
    expect(() => randomResizePad(sample, { targetSize: 64, boxScale: 'x' as never }, uniform(1))).toThrow(
      /boxScale must be 'exact' or 'reference'/,
    );
  });

  it('drops boxes that leave the crop (and their classes), with minBoxSize / minBoxArea filters', () => {
    // factor ~2 -> scale min(256 / 150, 320 / 200) = 1.6: 320 x 240; the window at the top-left keeps the red
    // rectangle (x 64..192, clipped at 160) and the corner box, the green one (x 240..304) is gone
    const r = randomResizePad(sample, { targetSize: [128, 160] }, sequence(0.999999, 0, 0));
    expect(Array.from(r.keep)).toEqual([0, 2]);
    expect(Array.from(r.classes)).toEqual([3, 1]);
    expect(r.boxes.length).toBe(8);
    expect(r.boxes[3]).toBe(160);
    expect(tightBox(r.masks[1], 160, 2)).toBeNull();
    // the bottom-right window keeps the green one and the clipped red one
    const br = randomResizePad(sample, { targetSize: [128, 160] }, sequence(0.999999, 0.999999, 0.999999));
    expect(Array.from(br.keep)).toEqual([0, 1]);
    expect(tightBox(br.masks[1], 160, 3)).toBeNull();
    // the corner box is 8 x 10 px at scale 1: minBoxSize 9 drops it, minBoxArea 81 too
    const one = sequence(0.9 / 1.9 + 1e-12, 0, 0); // factor 1.0 -> scale min(128/150, 160/200) = 0.8
    expect(Array.from(randomResizePad(sample, { targetSize: [128, 160] }, one).keep)).toEqual([0, 1, 2]);
    const bySize = randomResizePad(
      sample,
      { targetSize: [128, 160], minBoxSize: 6.5 },
      sequence(0.9 / 1.9 + 1e-12, 0, 0),
    );
    expect(Array.from(bySize.keep)).toEqual([0, 1]);
    const byArea = randomResizePad(
      sample,
      { targetSize: [128, 160], minBoxArea: 52 },
      sequence(0.9 / 1.9 + 1e-12, 0, 0),
    );
    expect(Array.from(byArea.keep)).toEqual([0, 1]);
  });

  it('fills with the requested colour and mask value', () => {
    const r = randomResizePad(sample, { targetSize: 300, fillColor: 7, maskFill: 255 }, sequence(0.2, 0, 0));
    const last = (300 * 300 - 1) * 3;
    expect(Array.from(r.image.data.subarray(last, last + 3))).toEqual([7, 7, 7]);
    expect(r.masks[0][300 * 300 - 1]).toBe(255);
    const half = randomResizePad(sample, { targetSize: 300, mean: [0.5, 0.5, 0.5] }, sequence(0.2, 0, 0));
    expect(Array.from(half.image.data.subarray(last, last + 3))).toEqual([128, 128, 128]);
  });

  it('is deterministic given the random stream', () => {
    const a = randomResizePad(sample, { targetSize: 128 }, uniform(9));
    const b = randomResizePad(sample, { targetSize: 128 }, uniform(9));
    const c = randomResizePad(sample, { targetSize: 128 }, uniform(10));
    expect(Buffer.from(a.image.data).equals(Buffer.from(b.image.data))).toBe(true);
    expect(a.boxes).toEqual(b.boxes);
    expect(a.masks).toEqual(b.masks);
    expect(Buffer.from(a.image.data).equals(Buffer.from(c.image.data))).toBe(false);
  });

  it('checks its inputs', () => {
    const bad = (patch: Partial<AugmentSample>) => ({ ...sample, ...patch });
    expect(() =>
      randomResizePad(bad({ boxes: new Float32Array(5) }), { targetSize: 64 }, uniform(1)),
    ).toThrow(
      /randomResizePad: boxes must be a Float32Array of N \* 4 values \(y1, x1, y2, x2\), got 5 values/,
    );
    expect(() => randomResizePad(bad({ classes: [1] }), { targetSize: 64 }, uniform(1))).toThrow(
      /classes must have one entry per box \(3\), got 1/,
    );
    expect(() =>
      randomResizePad(bad({ masks: [new Uint8Array(3)] }), { targetSize: 64 }, uniform(1)),
    ).toThrow(/masks\[0\] must be a Uint8Array or Uint16Array of 150x200 = 30000 values, got 3/);
    expect(() => randomResizePad(sample, { targetSize: [64, 0] }, uniform(1))).toThrow(/targetSize must be/);
    expect(() => randomResizePad(sample, { targetSize: 64, scaleMin: 2, scaleMax: 1 }, uniform(1))).toThrow(
      /scaleMin \/ scaleMax/,
    );
    expect(() => randomResizePad(sample, { targetSize: 64 }, () => 1)).toThrow(
      /random\(\) must return a number in \[0, 1\), got 1/,
    );
  });

  it('is fast enough to run per sample (320 x 320 in a few ms)', () => {
    const big = scene(320, 320, [{ x0: 20, y0: 30, x1: 200, y1: 250, color: [200, 50, 50], cls: 2 }]);
    const rnd = uniform(3);
    for (let i = 0; i < 3; i++) randomResizePad(big, { targetSize: 320 }, rnd);
    const t0 = process.cpuUsage();
    const n = 20;
    for (let i = 0; i < n; i++) trainAugment(big, { targetSize: 320 }, rnd);
    const used = process.cpuUsage(t0);
    expect((used.user + used.system) / 1000 / n).toBeLessThan(60);
  });
});

describe('resizePad', () => {
  it('is the letterbox of preprocess (same canvas), boxes scaled, imgScale = 1 / scale', async () => {
    const sample = scene(200, 150, RECTS);
    const r = await expectNoLeaks(() => resizePad(sample, { targetSize: 128 }));
    const ref = letterbox(sample.image, { imageSize: [128, 128] });
    expect(Array.from(ref.image.dataSync())).toEqual(Array.from(r.image.data));
    expect(r.imgScale).toBe(ref.imgScale);
    ref.image.dispose();
    // scale 0.64: [30, 40, 90, 120] -> [19.2, 25.6, 57.6, 76.8]
    expect(Array.from(r.boxes.subarray(0, 4))).toEqual([19.2, 25.6, 57.6, 76.8].map(Math.fround));
    expect(checkConsistent(r, RECTS.length)).toBe(3);
  });
});

describe('flips', () => {
  const sample = scene(50, 40, [
    { x0: 3, y0: 5, x1: 20, y1: 9, color: [200, 0, 0], cls: 2 },
    { x0: 30, y0: 20, x1: 49, y1: 39, color: [0, 200, 0], cls: 4 },
  ]);

  it('mirror boxes exactly onto the mirrored masks', () => {
    const h = horizontalFlip(sample);
    expect(Array.from(h.boxes.subarray(0, 4))).toEqual([5, 50 - 21, 10, 50 - 3]);
    expect(tightBox(h.masks[1], 50, 1)).toEqual(Array.from(h.boxes.subarray(0, 4)));
    expect(tightBox(h.masks[1], 50, 2)).toEqual(Array.from(h.boxes.subarray(4, 8)));
    const v = verticalFlip(sample);
    expect(Array.from(v.boxes.subarray(0, 4))).toEqual([40 - 10, 3, 40 - 5, 21]);
    expect(tightBox(v.masks[1], 50, 1)).toEqual(Array.from(v.boxes.subarray(0, 4)));
    // pixels move: top-left red pixel (3, 5) -> (46, 5)
    expect(h.image.data[3 * (5 * 50 + 46)]).toBe(200);
  });

  it('twice is the identity', () => {
    for (const f of [horizontalFlip, verticalFlip]) {
      const twice = f(f(sample));
      expect(Buffer.from(twice.image.data).equals(Buffer.from(sample.image.data))).toBe(true);
      expect(twice.boxes).toEqual(sample.boxes);
      expect(twice.masks).toEqual(sample.masks);
      expect(Array.from(twice.classes)).toEqual([2, 4]);
    }
  });

  it('randomHorizontalFlip flips with probability prob and copies otherwise', () => {
    const yes = randomHorizontalFlip(sample, sequence(0.2));
    expect(yes.boxes).toEqual(horizontalFlip(sample).boxes);
    const no = randomHorizontalFlip(sample, sequence(0.7));
    expect(no.boxes).toEqual(sample.boxes);
    expect(no.image.data).not.toBe(sample.image.data);
    let flips = 0;
    const rnd = uniform(5);
    for (let i = 0; i < 400; i++)
      if (randomHorizontalFlip(sample, rnd, 0.25).boxes[1] !== sample.boxes[1]) flips++;
    expect(flips).toBeGreaterThan(70);
    expect(flips).toBeLessThan(130);
  });

  it('trainAugment = flip then randomResizePad, in that draw order', () => {
    const big = scene(200, 150, RECTS);
    const a = trainAugment(big, { targetSize: 128 }, sequence(0.1, 0.5, 0.3, 0.6));
    const b = randomResizePad(horizontalFlip(big), { targetSize: 128 }, sequence(0.5, 0.3, 0.6));
    expect(a.boxes).toEqual(b.boxes);
    expect(Buffer.from(a.image.data).equals(Buffer.from(b.image.data))).toBe(true);
    expect(checkConsistent(a, RECTS.length)).toBeGreaterThan(0);
  });
});

describe('box converters', () => {
  it('COCO xywh <-> yxyx', () => {
    const y = cocoBoxesToYxyx([
      [10, 20, 30, 40],
      [0, 0, 1, 1],
    ]);
    expect(Array.from(y)).toEqual([20, 10, 60, 40, 0, 0, 1, 1]);
    expect(Array.from(cocoBoxesToYxyx([10, 20, 30, 40]))).toEqual([20, 10, 60, 40]);
    expect(yxyxToCocoBoxes(y)).toEqual([
      [10, 20, 30, 40],
      [0, 0, 1, 1],
    ]);
    expect(cocoBoxesToYxyx([]).length).toBe(0);
    expect(() => cocoBoxesToYxyx([[1, 2, 3]])).toThrow(/cocoBoxesToYxyx: boxes\[0\] must be \[x, y, w, h\]/);
    expect(() => cocoBoxesToYxyx([1, 2, -3, 4])).toThrow(/w, h >= 0/);
  });
});
