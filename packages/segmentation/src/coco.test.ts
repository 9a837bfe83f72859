import { type CocoDatasetJson, decodeMask, evaluateCoco, fromCocoRle } from '@effdet/eval';
import { maskToCocoAnnotations, maskToCocoResults } from '@effdet/segmentation';

/** A 6x6 class map with `cls` on rows r0..r1, columns c0..c1 (inclusive), minus the listed [row, col] pixels. */
function block(cls: number, r0: number, r1: number, c0: number, c1: number, minus: [number, number][] = []) {
  const m = new Int32Array(36);
  for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) m[r * 6 + c] = cls;
  for (const [r, c] of minus) m[r * 6 + c] = 0;
  return m;
}

describe('class maps as COCO segm records (@effdet/eval)', () => {
  // image 1: class 1 on a 3x3 block; image 2: class 2 on a 2x4 block.
  const gt1 = block(1, 1, 3, 1, 3);
  const gt2 = block(2, 0, 1, 2, 5);
  const dataset = (): CocoDatasetJson => ({
    images: [
      { id: 1, width: 6, height: 6 },
      { id: 2, width: 6, height: 6 },
    ],
    categories: [
      { id: 1, name: 'one' },
      { id: 2, name: 'two' },
    ],
    annotations: [
      ...maskToCocoAnnotations(gt1, 6, 6, { imageId: 1, startId: 1 }),
      ...maskToCocoAnnotations(gt2, 6, 6, { imageId: 2, startId: 2 }),
    ],
  });

  it('ground truth from a label map: RLE, area, box (row-major in, COCO column-major RLE out)', () => {
    const [ann] = maskToCocoAnnotations(gt2, 6, 6, { imageId: 2, categoryIds: { 2: 18 } });
    expect(ann).toMatchObject({
      id: 1,
      image_id: 2,
      category_id: 18,
      area: 8,
      bbox: [2, 0, 4, 2],
      iscrowd: 0,
    });
    const decoded = decodeMask(fromCocoRle(ann.segmentation as { size: [number, number]; counts: string }));
    expect(Array.from(decoded)).toEqual(Array.from(gt2, (v) => (v === 2 ? 1 : 0)));
    expect(maskToCocoAnnotations(gt2, 6, 6, { imageId: 2, categoryIds: () => null })).toEqual([]);
  });

  it('perfect masks score AP 1', () => {
    const results = [
      ...maskToCocoResults(gt1, 6, 6, { imageId: 1 }),
      ...maskToCocoResults(gt2, 6, 6, { imageId: 2 }),
    ];
    expect(results.map((r) => [r.image_id, r.category_id, r.score])).toEqual([
      [1, 1, 1],
      [2, 2, 1],
    ]);
    const r = evaluateCoco(dataset(), results, { iouType: 'segm' });
    expect(r.iouType).toBe('segm');
    expect(r.stats[0]).toBeCloseTo(1, 12); // numpy's mean of 101 ones, as pycocotools
    expect(r.stats[1]).toBeCloseTo(1, 12);
  });

  it('IoU 7/9 passes the thresholds 0.50..0.75 only: AP 0.6 for that class', () => {
    const pred1 = block(1, 1, 3, 1, 3, [
      [1, 1],
      [3, 3],
    ]); // 7 of the 9 ground-truth pixels, nothing outside
    const results = [
      ...maskToCocoResults(pred1, 6, 6, { imageId: 1 }),
      ...maskToCocoResults(gt2, 6, 6, { imageId: 2 }),
    ];
    const r = evaluateCoco(dataset(), results, { iouType: 'segm' });
    const ap = Object.fromEntries(r.perCategory.map((c) => [c.categoryId, c.ap]));
    expect(ap[1]).toBeCloseTo(0.6, 12);
    expect(ap[2]).toBeCloseTo(1, 12);
    expect(r.stats[0]).toBeCloseTo(0.8, 12); // AP@[.5:.95]
    expect(r.stats[1]).toBeCloseTo(1, 12); // AP50
    expect(r.stats[2]).toBeCloseTo(1, 12); // AP75
    expect(r.stats[3]).toBeCloseTo(0.8, 12); // every object is small
  });

  it('scores are the mean class probability over the class pixels', () => {
    const mask = [0, 1, 1, 2];
    // 3 classes per pixel
    const probs = Float32Array.from([0.9, 0.1, 0, 0.2, 0.7, 0.1, 0.3, 0.5, 0.2, 0.1, 0.1, 0.8]);
    const r = maskToCocoResults(mask, 2, 2, { imageId: 'a', probabilities: probs, categoryIds: [0, 11, 12] });
    expect(r.map((x) => x.category_id)).toEqual([11, 12]);
    expect(r[0].score).toBeCloseTo(0.6, 6);
    expect(r[1].score).toBeCloseTo(0.8, 6);
    expect(() => maskToCocoResults([0, 1, 3, 0], 2, 2, { imageId: 1, probabilities: probs })).toThrow(
      /the mask holds class 3 but the probabilities have 3 classes/,
    );
    expect(() => maskToCocoResults([0, 1], 2, 2, { imageId: 1 })).toThrow(
      /mask must hold 2x2 = 4 class ids, got 2/,
    );
  });
});
