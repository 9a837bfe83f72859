/**
 * Edge conditions of COCO bbox evaluation, each checked against numbers derived by hand from pycocotools' rules:
 * precision at recall point r is the interpolated (right-maximum) precision at the first rank whose recall
 * reaches r, `tp / (tp + fp + eps)` with eps = np.spacing(1); AP is the mean over 101 recall points and the
 * IoU thresholds; recall is tp / (non-ignored ground truth).
 */
import { type CocoDatasetJson, CocoEval, CocoIndex, type CocoResult } from './index.js';

const EPS = 2.220446049250313e-16;

function run(gt: CocoDatasetJson, dets: CocoResult[], setup: (E: CocoEval) => void = () => undefined) {
  const index = new CocoIndex(gt);
  const E = new CocoEval(index, index.loadRes(dets), 'bbox');
  setup(E);
  E.evaluate();
  E.accumulate();
  const stats = E.summarize();
  return { E, stats, perCat: Object.fromEntries(E.perCategoryAP()) as Record<number, number> };
}

const close = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-12);

/** Stats indices by name. */
const AP = 0;
const AP50 = 1;
const AP75 = 2;
const APs = 3;
const APm = 4;
const APl = 5;
const AR1 = 6;
const AR10 = 7;
const AR100 = 8;

function dataset(
  images: number[],
  anns: [imageId: number, cat: number, bbox: number[], crowd?: number][],
  cats = [1],
): CocoDatasetJson {
  return {
    images: images.map((id) => ({ id, width: 200, height: 200 })),
    categories: cats.map((id) => ({ id, name: `c${id}` })),
    annotations: anns.map(([image_id, category_id, bbox, crowd], i) => ({
      id: i + 1,
      image_id,
      category_id,
      bbox,
      area: bbox[2] * bbox[3],
      iscrowd: crowd ?? 0,
    })),
  };
}

const det = (image_id: number, bbox: number[], score: number, category_id = 1): CocoResult => ({
  image_id,
  category_id,
  bbox,
  score,
});

// A 40x40 'medium' box (area 1600).
const B = [10, 10, 40, 40];

describe('images without annotations or without detections', () => {
  it('a higher-scored detection on an image without ground truth is a false positive: AP = 0.5', () => {
    // ranking: FP (0.9, image 2), TP (0.8, image 1) -> precision 1/2 at recall 1, for all 101 points
    const { stats, perCat } = run(dataset([1, 2], [[1, 1, B]]), [det(2, B, 0.9), det(1, B, 0.8)]);
    close(stats[AP], 1 / (2 + EPS));
    close(stats[AP50], 1 / (2 + EPS));
    close(perCat[1], 1 / (2 + EPS));
    expect(stats[AR100]).toBe(1);
  });

  it('a lower-scored detection on an image without ground truth does not lower AP', () => {
    const { stats } = run(dataset([1, 2], [[1, 1, B]]), [det(2, B, 0.1), det(1, B, 0.8)]);
    close(stats[AP], 1 / (1 + EPS));
  });

  it('an image with ground truth but no detection caps recall: AP = 51/101, AR = 0.5', () => {
    // two objects, one found: recall 0.5 at precision 1 -> recall points 0.00..0.50 (51 of 101) score 1
    const { stats } = run(
      dataset(
        [1, 2],
        [
          [1, 1, B],
          [2, 1, B],
        ],
      ),
      [det(1, B, 0.8)],
    );
    close(stats[AP], 51 / 101 / (1 + EPS));
    expect(stats[AR1]).toBe(0.5);
    expect(stats[AR100]).toBe(0.5);
  });

  it('images with neither ground truth nor detections change nothing', () => {
    const a = run(dataset([1], [[1, 1, B]]), [det(1, B, 0.8), det(1, [100, 100, 20, 20], 0.9)]);
    const b = run(dataset([1, 2, 3, 4], [[1, 1, B]]), [det(1, B, 0.8), det(1, [100, 100, 20, 20], 0.9)]);
    expect(b.stats).toEqual(a.stats);
  });
});

describe('categories never detected', () => {
  it('count 0 in the mean; a category without ground truth is -1 and left out', () => {
    // cats 1 (found, AP 1), 2 (has ground truth, never detected: AP 0), 3 (no ground truth: -1)
    const { stats, perCat } = run(
      dataset(
        [1],
        [
          [1, 1, B],
          [1, 2, [100, 100, 50, 50]],
        ],
        [1, 2, 3],
      ),
      [det(1, B, 0.9, 1)],
    );
    close(perCat[1], 1 / (1 + EPS));
    expect(perCat[2]).toBe(0);
    expect(perCat[3]).toBe(-1);
    close(stats[AP], 1 / (1 + EPS) / 2);
    // both objects are medium (1600 and 2500 px): no large ground truth, so APl = -1
    close(stats[APm], 1 / (1 + EPS) / 2);
    expect(stats[APl]).toBe(-1);
    expect(stats[AR100]).toBe(0.5);
  });

  it('detections of a category without ground truth are not evaluated at all', () => {
    const ds = dataset([1], [[1, 1, B]], [1, 2]);
    const a = run(ds, [det(1, B, 0.5, 1)]);
    const b = run(ds, [det(1, B, 0.5, 1), det(1, [60, 60, 30, 30], 0.99, 2)]);
    expect(b.stats).toEqual(a.stats);
    expect(b.perCat[2]).toBe(-1);
  });
});

describe('crowd-only images', () => {
  it('detections inside a crowd-only image are ignored, those outside it are false positives', () => {
    // image 1: one object found at 0.5. image 2: only a crowd region [0, 0, 100, 100].
    const ds = dataset(
      [1, 2],
      [
        [1, 1, B],
        [2, 1, [0, 0, 100, 100], 1],
      ],
    );
    // inside the crowd (IoU against crowd = intersection / detection area = 1): ignored even when ranked first
    const inside = run(ds, [det(2, [20, 20, 30, 30], 0.9), det(2, [50, 50, 40, 40], 0.8), det(1, B, 0.5)]);
    close(inside.stats[AP], 1 / (1 + EPS));
    // half outside: intersection 20x30 over the detection's 40x30 = 0.5: ignored at IoU 0.50 only, a false positive
    // ranked first at 0.55..0.95 -> AP = (1 + 9 * 0.5) / 10
    const half = run(ds, [det(2, [80, 20, 40, 30], 0.9), det(1, B, 0.5)]);
    close(half.stats[AP50], 1 / (1 + EPS));
    close(half.stats[AP75], 1 / (2 + EPS));
    close(half.stats[AP], (1 / (1 + EPS) + 9 / (2 + EPS)) / 10);
  });

  it('a crowd region is never recalled: it adds no ground truth to AR', () => {
    const ds = dataset(
      [1, 2],
      [
        [1, 1, B],
        [2, 1, [0, 0, 100, 100], 1],
      ],
    );
    const { stats } = run(ds, [det(2, [0, 0, 100, 100], 0.9)]);
    // the only non-crowd object was not found
    expect(stats[AR100]).toBe(0);
    expect(stats[AP]).toBe(0);
  });
});

describe('duplicate detections', () => {
  it('a second detection of the same object is a false positive; after full recall it costs nothing', () => {
    const { stats } = run(dataset([1], [[1, 1, B]]), [det(1, B, 0.9), det(1, B, 0.8)]);
    close(stats[AP], 1 / (1 + EPS));
    expect(stats[AR1]).toBe(1);
  });

  it('ranked between two true positives: AP = (51 + 50 * 2/3) / 101', () => {
    // ranks: TP (recall .5, precision 1), FP duplicate (.5, 1/2), TP (1, 2/3): the envelope gives 1 up to recall
    // .5 (51 points) and 2/3 above it (50 points)
    const ds = dataset(
      [1],
      [
        [1, 1, B],
        [1, 1, [100, 100, 40, 40]],
      ],
    );
    const { stats, E } = run(ds, [det(1, B, 0.9), det(1, B, 0.8), det(1, [100, 100, 40, 40], 0.7)]);
    const expected = (51 / (1 + EPS) + 50 * (2 / (3 + EPS))) / 101;
    close(stats[AP], expected);
    close(stats[AP50], expected);
    // the duplicate matched nothing at any threshold
    const e = E.evalImgs.find((x) => x && x.aRng[1] === 1e10)!;
    expect(e.dtMatches.filter((m, i) => i % 3 === 1 && m !== 0)).toEqual([]);
  });

  it('exact duplicate entries in the results list (same box, same score): the first listed is the match', () => {
    const { E } = run(dataset([1], [[1, 1, B]]), [det(1, B, 0.5), det(1, B, 0.5)]);
    const e = E.evalImgs[0]!;
    // result ids are assigned 1, 2 in list order; at every threshold detection 1 holds the match
    for (let t = 0; t < 10; t++) {
      expect(e.dtMatches[t * 2]).toBe(1);
      expect(e.dtMatches[t * 2 + 1]).toBe(0);
    }
  });
});

describe('ties in score', () => {
  it('across images, ties are ranked in image id order (not file or result order)', () => {
    // images listed 20, 10: evaluation sorts image ids, so image 10's detections rank first on a tie
    const ds = dataset(
      [20, 10],
      [
        [20, 1, B],
        [10, 1, B],
      ],
    );
    const fpOnFirst = run(ds, [det(20, B, 0.5), det(10, [150, 150, 20, 20], 0.5), det(10, B, 0.4)]);
    // ranks: image 10 FP (0.5), image 20 TP (0.5), image 10 TP (0.4) -> precision 0, 1/2, 2/3 at recall 0, .5, 1
    close(fpOnFirst.stats[AP], (2 / (3 + EPS)) * 1);
    const reordered = run(ds, [det(10, [150, 150, 20, 20], 0.5), det(20, B, 0.5), det(10, B, 0.4)]);
    // the same detections in another order rank the same: only image order matters across images
    expect(reordered.stats).toEqual(fpOnFirst.stats);
    const ds2 = dataset(
      [20, 10],
      [
        [20, 1, B],
        [10, 1, B],
      ],
    );
    const swapped = run(ds2, [det(10, B, 0.5), det(20, [150, 150, 20, 20], 0.5), det(20, B, 0.4)]);
    // ranks: image 10 TP, image 20 FP, image 20 TP -> 1, 1/2, 2/3: AP = (51 + 50 * 2/3) / 101
    close(swapped.stats[AP], (51 / (1 + EPS) + 50 * (2 / (3 + EPS))) / 101);
  });

  it('within an image, ties keep the results order (stable sort)', () => {
    const ds = dataset([1], [[1, 1, B]]);
    const tpFirst = run(ds, [det(1, B, 0.5), det(1, [150, 150, 20, 20], 0.5)]);
    const fpFirst = run(ds, [det(1, [150, 150, 20, 20], 0.5), det(1, B, 0.5)]);
    close(tpFirst.stats[AP], 1 / (1 + EPS));
    close(fpFirst.stats[AP], 1 / (2 + EPS));
    // AR@1 keeps only the first of the tied pair
    expect(tpFirst.stats[AR1]).toBe(1);
    expect(fpFirst.stats[AR1]).toBe(0);
  });
});

describe('boxes of zero width or height', () => {
  it('a zero-width detection overlaps nothing: a false positive (area 0 is in the small range)', () => {
    const ds = dataset([1], [[1, 1, B]]);
    const { stats } = run(ds, [det(1, [10, 10, 0, 40], 0.9), det(1, B, 0.8)]);
    close(stats[AP], 1 / (2 + EPS));
    // area 'small': no ground truth there, so -1, even though the zero-area detection falls in that range
    expect(stats[APs]).toBe(-1);
    // area 'medium': the zero-area detection is outside the range and unmatched, so ignored
    close(stats[APm], 1 / (1 + EPS));
  });

  it('a zero-height ground-truth box cannot be matched, even by an identical box', () => {
    const ds = dataset(
      [1],
      [
        [1, 1, [10, 10, 40, 0]],
        [1, 1, B],
      ],
    );
    const { stats, E } = run(ds, [det(1, [10, 10, 40, 0], 0.9), det(1, B, 0.8)]);
    // the zero box's IoU is 0 (intersection 0), so it stays unmatched; ranks FP, TP over 2 objects
    const e = E.evalImgs[0]!;
    expect(e.dtMatches[0]).toBe(0);
    close(stats[AP], (51 * (1 / (2 + EPS))) / 101);
    expect(stats[AR100]).toBe(0.5);
  });

  it('a zero-area ground truth belongs to the small range (0 <= area <= 32^2)', () => {
    const ds = dataset([1], [[1, 1, [10, 10, 0, 40]]]);
    const { stats } = run(ds, []);
    expect(stats[APs]).toBe(0);
    expect(stats[APm]).toBe(-1);
  });
});

describe('maxDets variants', () => {
  // one object; eleven false positives scored above the true positive
  const ds = dataset([1], [[1, 1, B]]);
  const fps = Array.from({ length: 11 }, (_, i) => det(1, [120 + i, 120, 10, 10], 0.9 - i * 0.01));

  it('default [1, 10, 100]: the 12th detection counts only at 100', () => {
    const { stats } = run(ds, [...fps, det(1, B, 0.1)]);
    expect(stats[AR1]).toBe(0);
    expect(stats[AR10]).toBe(0);
    expect(stats[AR100]).toBe(1);
    // precision at recall 1 is 1 / 12 for all points
    close(stats[AP], 1 / (12 + EPS));
  });

  it('a per-image cap at the largest maxDets: the 101st detection is never evaluated', () => {
    const many = Array.from({ length: 100 }, (_, i) => det(1, [120, 120, 10 + i * 0.1, 10], 0.9 - i * 0.001));
    const { stats, E } = run(ds, [...many, det(1, B, 0.05)]);
    expect(E.evalImgs[0]!.dtIds).toHaveLength(100);
    expect(stats[AR100]).toBe(0);
    expect(stats[AP]).toBe(0);
  });

  it('custom [1, 12, 50]: AR@12 and AR@50 find it; AP is read at maxDets 100, absent, so -1', () => {
    const { stats, E } = run(ds, [...fps, det(1, B, 0.1)], (E) => {
      E.params.maxDets = [50, 1, 12];
    });
    expect(E.evaluatedParams!.maxDets).toEqual([1, 12, 50]);
    expect(stats[AP]).toBe(-1); // pycocotools reads stats[0] at maxDets=100
    close(stats[AP50], 1 / (12 + EPS)); // the others use maxDets[2] = 50
    expect(stats[AR1]).toBe(0);
    expect(stats[AR10]).toBe(1); // the second AR line reads maxDets[1] = 12
    expect(E.summaryLines[7]).toContain('maxDets= 12');
  });

  it('[1, 5, 10]: 11 detections ranked above the object hide it at every cap', () => {
    const { stats } = run(ds, [...fps, det(1, B, 0.1)], (E) => {
      E.params.maxDets = [1, 5, 10];
    });
    expect(stats[AR1]).toBe(0);
    expect(stats[AR10]).toBe(0);
    expect(stats[AR100]).toBe(0); // the third recall line is read at maxDets[2] = 10
    expect(stats[AP50]).toBe(0);
  });
});
