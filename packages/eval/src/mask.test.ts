import {
  bboxIou,
  decodeMask,
  decodeMaskColumnMajor,
  EvalArgumentError,
  encodeMask,
  fromCocoRle,
  iou,
  makeRle,
  rleArea,
  rleFromBbox,
  rleFromPolygon,
  rleFromString,
  rleIou,
  rleMerge,
  rleToBbox,
  rleToString,
  segmentationToRle,
  toCocoRle,
  toUncompressedCocoRle,
} from './index.js';

// Row-major helpers for readable masks.
function maskOf(rows: string[]): { data: number[]; h: number; w: number } {
  const h = rows.length;
  const w = rows[0].length;
  return { data: rows.join('').split('').map(Number), h, w };
}

describe('RLE encode / decode', () => {
  // 3 x 4 mask; column-major pixel order is col0 (top..bottom), col1, ...
  const m = maskOf(['0110', '0100', '0001']);

  it('encodes runs in column-major order, starting with zeros', () => {
    // columns: [0,0,0] [1,1,0] [1,0,0] [0,0,1] -> 0 0 0 1 1 0 1 0 0 0 0 1
    const rle = encodeMask(m.data, m.h, m.w);
    expect(Array.from(rle.counts)).toEqual([3, 2, 1, 1, 4, 1]);
    expect(rleArea(rle)).toBe(4);
  });

  it('starts with a zero-length run when the first pixel is set', () => {
    // rows '10' / '10': column 0 is all ones
    const rle = encodeMask([1, 0, 1, 0], 2, 2);
    expect(Array.from(rle.counts)).toEqual([0, 2, 2]);
    // rows '11' / '00': the runs alternate pixel by pixel in column order
    expect(Array.from(encodeMask([1, 1, 0, 0], 2, 2).counts)).toEqual([0, 1, 1, 1, 1]);
  });

  it('decodes back to the same row-major and column-major masks', () => {
    const rle = encodeMask(m.data, m.h, m.w);
    expect(Array.from(decodeMask(rle))).toEqual(m.data);
    expect(Array.from(decodeMaskColumnMajor(rle))).toEqual([0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 1]);
  });

  it('all-zero and all-one masks', () => {
    expect(Array.from(encodeMask(new Uint8Array(6), 2, 3).counts)).toEqual([6]);
    expect(Array.from(encodeMask(new Uint8Array(6).fill(1), 2, 3).counts)).toEqual([0, 6]);
  });

  it('rejects a mask of the wrong length', () => {
    expect(() => encodeMask([1, 0, 1], 2, 2)).toThrow(EvalArgumentError);
    expect(() => encodeMask([1, 0, 1], 2, 2)).toThrow(/encodeMask: argument 'mask' expected 4 values/);
  });
});

describe('compressed RLE strings (rleToString / rleFrString)', () => {
  it('encodes small counts as one char each and later counts as deltas', () => {
    // 3, 2, 5 as themselves; then 1 - cnts[1] = -1 -> low 5 bits 31, sign bit set, no more -> 48 + 31 = 'O'
    expect(rleToString(makeRle(1, 11, [3, 2, 5, 1]))).toBe('325O');
  });

  it('uses continuation chars for values >= 16', () => {
    // 100 = 3 * 32 + 4: first char 4 | 0x20 -> 'T', then 3 -> '3'
    expect(rleToString(makeRle(10, 10, [100]))).toBe('T3');
  });

  it('round trips, including large and negative deltas', () => {
    const counts = [0, 1, 70000, 3, 5, 123456, 2, 1, 65535, 1];
    const total = counts.reduce((s, v) => s + v, 0);
    const rle = makeRle(1, total, counts);
    const s = rleToString(rle);
    expect(Array.from(rleFromString(s, 1, total).counts)).toEqual(counts);
  });

  it('converts to and from COCO JSON objects', () => {
    const rle = makeRle(2, 3, [1, 2, 3]);
    expect(toCocoRle(rle)).toEqual({ size: [2, 3], counts: '123' });
    expect(toUncompressedCocoRle(rle)).toEqual({ size: [2, 3], counts: [1, 2, 3] });
    expect(Array.from(fromCocoRle({ size: [2, 3], counts: '123' }).counts)).toEqual([1, 2, 3]);
    expect(Array.from(fromCocoRle({ size: [2, 3], counts: [1, 2, 3] }).counts)).toEqual([1, 2, 3]);
    expect(() => fromCocoRle({ size: [2] } as never)).toThrow(/fromCocoRle: argument 'obj'/);
  });
});

describe('area, toBbox, merge', () => {
  it('toBbox of a hand-drawn mask', () => {
    const m = maskOf(['00000', '00110', '01100', '00000']);
    expect(rleToBbox(encodeMask(m.data, m.h, m.w))).toEqual([1, 1, 3, 2]);
  });

  it('toBbox spans full height when a run wraps to the next column', () => {
    // column 0 bottom pixel and column 1 top pixel: one run crossing the column boundary
    const m = maskOf(['01', '00', '10']);
    expect(rleToBbox(encodeMask(m.data, m.h, m.w))).toEqual([0, 0, 2, 3]);
  });

  it('empty mask has a zero box', () => {
    expect(rleToBbox(makeRle(3, 3, [9]))).toEqual([0, 0, 0, 0]);
  });

  it('merges by union and by intersection', () => {
    const a = maskOf(['1100', '1100', '0000']);
    const b = maskOf(['0110', '0000', '0000']);
    const ra = encodeMask(a.data, 3, 4);
    const rb = encodeMask(b.data, 3, 4);
    expect(Array.from(decodeMask(rleMerge([ra, rb])))).toEqual(maskOf(['1110', '1100', '0000']).data);
    expect(Array.from(decodeMask(rleMerge([ra, rb], true)))).toEqual(maskOf(['0100', '0000', '0000']).data);
    expect(rleArea(rleMerge([ra, rb]))).toBe(5);
    expect(rleArea(rleMerge([ra, rb], true))).toBe(1);
  });

  it('merging masks of different sizes gives an empty 0x0 RLE (as maskApi)', () => {
    const r = rleMerge([makeRle(2, 2, [4]), makeRle(3, 3, [9])]);
    expect([r.h, r.w, r.counts.length]).toEqual([0, 0, 0]);
  });
});

describe('IoU', () => {
  // 4 x 4: A = left half (8 px), B = top half (8 px); they share 4 px
  const A = maskOf(['1100', '1100', '1100', '1100']);
  const B = maskOf(['1111', '1111', '0000', '0000']);
  const ra = encodeMask(A.data, 4, 4);
  const rb = encodeMask(B.data, 4, 4);

  it('mask IoU: 4 / (8 + 8 - 4)', () => {
    expect(rleIou([ra], [rb])[0][0]).toBeCloseTo(1 / 3, 15);
  });

  it('crowd ground truth divides by the detection area: 4 / 8', () => {
    expect(rleIou([ra], [rb], [1])[0][0]).toBe(0.5);
  });

  it('disjoint masks are 0, masks of different sizes -1', () => {
    const C = maskOf(['0000', '0000', '0000', '0011']);
    expect(rleIou([ra], [encodeMask(C.data, 4, 4)])[0][0]).toBe(0);
    expect(rleIou([makeRle(2, 2, [0, 4])], [makeRle(4, 1, [0, 4])])[0][0]).toBe(-1);
  });

  it('box IoU: [0,0,10,10] vs [5,0,10,10] is 50/150, crowd 50/100', () => {
    expect(bboxIou([[0, 0, 10, 10]], [[5, 0, 10, 10]])[0][0]).toBeCloseTo(1 / 3, 15);
    expect(bboxIou([[0, 0, 10, 10]], [[5, 0, 10, 10]], [true])[0][0]).toBe(0.5);
    expect(bboxIou([[0, 0, 10, 10]], [[10, 0, 10, 10]])[0][0]).toBe(0);
  });

  it('iou() dispatches on the input kind, returns [] for empty inputs and rejects mixtures', () => {
    expect(iou([ra], [rb, ra], [0, 0])).toEqual([[rleIou([ra], [rb])[0][0], 1]]);
    expect(iou([], [rb], [0])).toEqual([]);
    expect(iou([[0, 0, 2, 2]], [[1, 1, 2, 2]])[0][0]).toBeCloseTo(1 / 7, 15);
    expect(() => iou([ra], [[0, 0, 1, 1]])).toThrow(/iou: argument/);
  });
});

describe('polygon rasterisation (maskApi rleFrPoly)', () => {
  it('an axis-aligned 4x4 square covers exactly 16 pixels', () => {
    const r = rleFromPolygon([0, 0, 4, 0, 4, 4, 0, 4], 10, 10);
    expect(rleArea(r)).toBe(16);
    expect(rleToBbox(r)).toEqual([0, 0, 4, 4]);
    expect(rleToString(r)).toBe('04600000l1');
  });

  it('a box from rleFromBbox', () => {
    const r = rleFromBbox([2, 1, 3, 4], 6, 6);
    expect(rleArea(r)).toBe(12);
    expect(Array.from(decodeMask(r))).toEqual(
      maskOf(['000000', '001110', '001110', '001110', '001110', '000000']).data,
    );
  });

  // Strings below were produced by the original maskApi.c on the same input.
  const cases: [number[], number, number, string, number][] = [
    [[1, 1, 9, 1, 1, 9], 10, 10, ';73O1O1O1O1O1Od0', 28],
    [[2.5, 2.5, 7.5, 2.5, 7.5, 7.5, 2.5, 7.5], 10, 10, 'Q1550000000a0', 25],
    [[-3, -3, 12, -3, 12, 12, -3, 12], 6, 8, '0`1', 48],
    [[3, 3, 3, 3, 6, 3, 6, 6, 3, 6], 10, 10, 'Q137000U1', 9],
    [[0, 0, 10, 0], 10, 10, 'T3', 0],
  ];
  it.each(cases)('polygon %j in %ix%i -> %s (area %i)', (poly, h, w, str, area) => {
    const r = rleFromPolygon(poly, h, w);
    expect(rleToString(r)).toBe(str);
    expect(rleArea(r)).toBe(area);
  });

  it('a triangle: its lower-left half including the diagonal', () => {
    const r = rleFromPolygon([1, 1, 9, 1, 1, 9], 10, 10);
    expect(Array.from(decodeMask(r))).toEqual(
      maskOf([
        '0000000000',
        '0111111100',
        '0111111000',
        '0111110000',
        '0111100000',
        '0111000000',
        '0110000000',
        '0100000000',
        '0000000000',
        '0000000000',
      ]).data,
    );
  });
});

describe('segmentationToRle (annToRLE)', () => {
  it('merges multi-part polygons', () => {
    const r = segmentationToRle(
      [
        [0, 0, 2, 0, 2, 2, 0, 2],
        [5, 5, 7, 5, 7, 7, 5, 7],
      ],
      8,
      8,
    );
    expect(rleArea(r)).toBe(8);
  });

  it('uncompressed counts take the image size, compressed RLE its own size', () => {
    const u = segmentationToRle({ size: [99, 99], counts: [2, 3, 1] }, 2, 3);
    expect([u.h, u.w, rleArea(u)]).toEqual([2, 3, 3]);
    const c = segmentationToRle({ size: [2, 3], counts: '231' }, 50, 50);
    expect([c.h, c.w, rleArea(c)]).toEqual([2, 3, 3]);
  });

  it('rejects other values', () => {
    expect(() => segmentationToRle(42 as never, 2, 2)).toThrow(/segmentationToRle: argument 'segm'/);
  });
});
