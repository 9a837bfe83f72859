/**
 * COCO detection evaluation: a faithful TypeScript port of pycocotools' `COCOeval` for `bbox` and `segm`,
 * reproducing its matching rules, sort orders and floating-point order of operations.
 */
import { type CocoAnnotation, type CocoIndex, type ImageId, uniqueSorted } from './coco.js';
import { argError, check } from './errors.js';
import { boxPairIou, type Rle, rleIou } from './mask.js';
import {
  argsortDescStable,
  formatFixed,
  linspace,
  npMean,
  padLeftAlign,
  padRightAlign,
  roundHalfEven,
  searchsortedLeft,
} from './numeric.js';

export type IouType = 'bbox' | 'segm';

export interface CocoEvalParams {
  iouType: IouType;
  /** Images to evaluate; empty means all images of the ground truth (set by the constructor). */
  imgIds: ImageId[];
  /** Categories to evaluate (set to all ground-truth categories by the constructor). */
  catIds: number[];
  iouThrs: number[];
  recThrs: number[];
  maxDets: number[];
  areaRng: [number, number][];
  areaRngLbl: string[];
  /** When false, categories are ignored (every detection may match every ground truth of the image). */
  useCats: boolean;
}

/** `np.linspace(.5, 0.95, round((0.95 - .5) / .05) + 1)`: the ten COCO IoU thresholds. */
export function cocoIouThresholds(): number[] {
  return linspace(0.5, 0.95, roundHalfEven((0.95 - 0.5) / 0.05) + 1);
}

/** `np.linspace(.0, 1.00, round((1.00 - .0) / .01) + 1)`: the 101 COCO recall thresholds. */
export function cocoRecallThresholds(): number[] {
  return linspace(0.0, 1.0, roundHalfEven((1.0 - 0.0) / 0.01) + 1);
}

/** pycocotools' `Params(iouType).setDetParams()`, with empty `imgIds`/`catIds`. */
export function defaultCocoParams(iouType: IouType = 'bbox'): CocoEvalParams {
  return {
    iouType,
    imgIds: [],
    catIds: [],
    iouThrs: cocoIouThresholds(),
    recThrs: cocoRecallThresholds(),
    maxDets: [1, 10, 100],
    areaRng: [
      [0 ** 2, 1e5 ** 2],
      [0 ** 2, 32 ** 2],
      [32 ** 2, 96 ** 2],
      [96 ** 2, 1e5 ** 2],
    ],
    areaRngLbl: ['all', 'small', 'medium', 'large'],
    useCats: true,
  };
}

/** Per image, per category, per area range matching result (pycocotools `evalImgs` entry). */
export interface EvalImage {
  imageId: ImageId;
  /** -1 when `useCats` is false. */
  categoryId: number;
  aRng: [number, number];
  maxDet: number;
  dtIds: number[];
  gtIds: number[];
  /** T x D, row-major: the id of the matched ground truth, or 0. */
  dtMatches: number[];
  /** T x G, row-major: the id of the matched detection, or 0. */
  gtMatches: number[];
  dtScores: number[];
  /** 0/1 per ground truth. */
  gtIgnore: number[];
  /** T x D, row-major, 0/1. */
  dtIgnore: number[];
}

/** pycocotools `eval`: `precision`/`scores` are T x R x K x A x M and `recall` T x K x A x M, C order, -1 = absent. */
export interface CocoAccumulation {
  counts: [number, number, number, number, number];
  precision: Float64Array;
  recall: Float64Array;
  scores: Float64Array;
}

/** The twelve summary numbers' short names, in pycocotools order. */
export const COCO_STAT_NAMES = [
  'AP',
  'AP50',
  'AP75',
  'APs',
  'APm',
  'APl',
  'AR1',
  'AR10',
  'AR100',
  'ARs',
  'ARm',
  'ARl',
] as const;

interface GtItem {
  id: number;
  area: number;
  ignore: boolean;
  crowd: boolean;
  box: ArrayLike<number>;
  rle: Rle | null;
}

interface DtItem {
  id: number;
  area: number;
  score: number;
  box: ArrayLike<number>;
  rle: Rle | null;
}

interface Cell {
  gt: GtItem[];
  /** Sorted by score (stable), capped at maxDets[-1]. */
  dt: DtItem[];
  /** D x G IoUs, empty when either side is empty. */
  ious: number[];
  dtIds: number[];
  dtScores: number[];
}

const EPS = 2.220446049250313e-16; // np.spacing(1)

function copyParams(p: CocoEvalParams): CocoEvalParams {
  return {
    iouType: p.iouType,
    imgIds: [...p.imgIds],
    catIds: [...p.catIds],
    iouThrs: [...p.iouThrs],
    recThrs: [...p.recThrs],
    maxDets: [...p.maxDets],
    areaRng: p.areaRng.map((r) => [r[0], r[1]] as [number, number]),
    areaRngLbl: [...p.areaRngLbl],
    useCats: p.useCats,
  };
}

function validateParams(p: CocoEvalParams): void {
  const fn = 'CocoEval.evaluate';
  check(p.iouType === 'bbox' || p.iouType === 'segm', fn, 'params.iouType', "'bbox' or 'segm'", p.iouType);
  check(Array.isArray(p.imgIds), fn, 'params.imgIds', 'an array of image ids', p.imgIds);
  check(Array.isArray(p.catIds), fn, 'params.catIds', 'an array of category ids', p.catIds);
  check(
    p.iouThrs.length > 0 && p.iouThrs.every((t) => typeof t === 'number' && t >= 0 && t <= 1),
    fn,
    'params.iouThrs',
    'a non-empty array of numbers in [0, 1]',
    p.iouThrs,
  );
  check(
    p.recThrs.length > 0 && p.recThrs.every((t) => typeof t === 'number'),
    fn,
    'params.recThrs',
    'a non-empty array of numbers',
    p.recThrs,
  );
  check(
    p.maxDets.length > 0 && p.maxDets.every((m) => Number.isInteger(m) && m >= 0),
    fn,
    'params.maxDets',
    'a non-empty array of non-negative integers',
    p.maxDets,
  );
  check(
    p.areaRng.length > 0 && p.areaRng.every((r) => Array.isArray(r) && r.length === 2),
    fn,
    'params.areaRng',
    'a non-empty array of [lo, hi] pairs',
    p.areaRng,
  );
  check(
    p.areaRngLbl.length === p.areaRng.length,
    fn,
    'params.areaRngLbl',
    `${p.areaRng.length} labels (one per areaRng)`,
    p.areaRngLbl,
  );
}

function requireNumber(v: unknown, what: string, ann: CocoAnnotation): number {
  if (typeof v !== 'number') {
    throw argError('CocoEval.evaluate', `annotation ${ann.id} ${what}`, 'a number', v);
  }
  return v;
}

function requireBox(ann: CocoAnnotation): ArrayLike<number> {
  const bb = ann.bbox;
  if (!Array.isArray(bb) || bb.length !== 4) {
    throw argError('CocoEval.evaluate', `annotation ${ann.id} bbox`, 'an [x, y, w, h] array', bb);
  }
  return bb;
}

/**
 * pycocotools `COCOeval`: `evaluate()`, `accumulate()`, `summarize()`. `params` may be changed between the
 * constructor and `evaluate()` exactly as in pycocotools (imgIds, catIds, iouThrs, recThrs, maxDets, areaRng,
 * areaRngLbl, useCats). Inputs are never modified.
 */
export class CocoEval {
  readonly cocoGt: CocoIndex;
  readonly cocoDt: CocoIndex;
  params: CocoEvalParams;
  evalImgs: (EvalImage | null)[] = [];
  eval: CocoAccumulation | null = null;
  stats: number[] = [];
  summaryLines: string[] = [];
  private paramsEval: CocoEvalParams | null = null;

  constructor(cocoGt: CocoIndex, cocoDt: CocoIndex, iouType: IouType = 'bbox') {
    check(
      iouType === 'bbox' || iouType === 'segm',
      'CocoEval',
      'iouType',
      "'bbox' or 'segm' (keypoints are not supported)",
      iouType,
    );
    this.cocoGt = cocoGt;
    this.cocoDt = cocoDt;
    this.params = defaultCocoParams(iouType);
    this.params.imgIds = uniqueSorted(cocoGt.getImgIds());
    this.params.catIds = [...cocoGt.getCatIds()].sort((a, b) => a - b);
  }

  /** The parameters the last `evaluate()` used (normalised: sorted unique ids, sorted maxDets). */
  get evaluatedParams(): CocoEvalParams | null {
    return this.paramsEval;
  }

  /** Runs per-image evaluation (pycocotools `evaluate`), filling `evalImgs`. */
  evaluate(): void {
    const p = copyParams(this.params);
    validateParams(p);
    p.imgIds = uniqueSorted(p.imgIds);
    if (p.useCats) p.catIds = uniqueSorted(p.catIds);
    p.maxDets = [...p.maxDets].sort((a, b) => a - b);
    this.params = copyParams(p);

    const segm = p.iouType === 'segm';
    // _prepare: ground truth and detections per (image, category), in pycocotools' order.
    const filter = p.useCats ? { imgIds: p.imgIds, catIds: p.catIds } : { imgIds: p.imgIds };
    const gtsByKey = new Map<ImageId, Map<number, GtItem[]>>();
    const dtsByKey = new Map<ImageId, Map<number, DtItem[]>>();
    const push = <T>(m: Map<ImageId, Map<number, T[]>>, img: ImageId, cat: number, item: T) => {
      let byCat = m.get(img);
      if (!byCat) {
        byCat = new Map();
        m.set(img, byCat);
      }
      let list = byCat.get(cat);
      if (!list) {
        list = [];
        byCat.set(cat, list);
      }
      list.push(item);
    };
    for (const g of this.cocoGt.getAnns(filter)) {
      const crowd = !!g.iscrowd;
      push(gtsByKey, g.image_id, g.category_id, {
        id: g.id,
        area: requireNumber(g.area, 'area', g),
        ignore: crowd,
        crowd,
        box: segm ? [] : requireBox(g),
        rle: segm ? this.cocoGt.annToRle(g) : null,
      });
    }
    for (const d of this.cocoDt.getAnns(filter)) {
      push(dtsByKey, d.image_id, d.category_id, {
        id: d.id,
        area: requireNumber(d.area, 'area', d),
        score: requireNumber(d.score, 'score', d),
        box: segm ? [] : requireBox(d),
        rle: segm ? this.cocoDt.annToRle(d) : null,
      });
    }

    const catIds = p.useCats ? p.catIds : [-1];
    const maxDetLast = p.maxDets[p.maxDets.length - 1];
    const gather = <T>(m: Map<ImageId, Map<number, T[]>>, img: ImageId, cat: number): T[] => {
      const byCat = m.get(img);
      if (!byCat) return [];
      if (p.useCats) return byCat.get(cat) ?? [];
      const out: T[] = [];
      for (const c of p.catIds) {
        const list = byCat.get(c);
        if (list) for (const x of list) out.push(x);
      }
      return out;
    };

    // computeIoU for every (image, category).
    const I = p.imgIds.length;
    const cells: (Cell | null)[] = new Array(catIds.length * I);
    for (let k = 0; k < catIds.length; k++) {
      for (let i = 0; i < I; i++) {
        const gt = gather(gtsByKey, p.imgIds[i], catIds[k]);
        const dtAll = gather(dtsByKey, p.imgIds[i], catIds[k]);
        if (gt.length === 0 && dtAll.length === 0) {
          cells[k * I + i] = null;
          continue;
        }
        const sorted = sortByScoreDesc(dtAll);
        const D = Math.min(sorted.length, maxDetLast);
        const dt = sorted.length > D ? sorted.slice(0, D) : sorted;
        const G = gt.length;
        let ious: number[] = [];
        if (D > 0 && G > 0) {
          ious = new Array<number>(D * G);
          if (segm) {
            const m = rleIou(
              dt.map((d) => d.rle!),
              gt.map((g) => g.rle!),
              gt.map((g) => g.crowd),
            );
            for (let d = 0; d < D; d++) for (let g = 0; g < G; g++) ious[d * G + g] = m[d][g];
          } else {
            for (let d = 0; d < D; d++) {
              const db = dt[d].box;
              for (let g = 0; g < G; g++) ious[d * G + g] = boxPairIou(db, gt[g].box, gt[g].crowd);
            }
          }
        }
        cells[k * I + i] = { gt, dt, ious, dtIds: dt.map((x) => x.id), dtScores: dt.map((x) => x.score) };
      }
    }

    // evaluateImg for every (category, area range, image).
    const A = p.areaRng.length;
    const evalImgs: (EvalImage | null)[] = new Array(catIds.length * A * I);
    for (let k = 0; k < catIds.length; k++) {
      for (let a = 0; a < A; a++) {
        for (let i = 0; i < I; i++) {
          const cell = cells[k * I + i];
          evalImgs[(k * A + a) * I + i] = cell
            ? evaluateCell(cell, p.imgIds[i], catIds[k], p.areaRng[a], maxDetLast, p.iouThrs)
            : null;
        }
      }
    }
    this.evalImgs = evalImgs;
    this.paramsEval = copyParams(p);
    this.eval = null;
  }

  /** Accumulates `evalImgs` into precision / recall / scores arrays (pycocotools `accumulate`). */
  accumulate(): CocoAccumulation {
    const p = this.paramsEval;
    if (!p) throw new Error('CocoEval.accumulate: run evaluate() first');
    const T = p.iouThrs.length;
    const R = p.recThrs.length;
    const K = p.useCats ? p.catIds.length : 1;
    const A = p.areaRng.length;
    const M = p.maxDets.length;
    const I = p.imgIds.length;
    const precision = new Float64Array(T * R * K * A * M).fill(-1);
    const recall = new Float64Array(T * K * A * M).fill(-1);
    const scores = new Float64Array(T * R * K * A * M).fill(-1);
    const pIdx = (t: number, r: number, k: number, a: number, m: number) =>
      (((t * R + r) * K + k) * A + a) * M + m;
    const rIdx = (t: number, k: number, a: number, m: number) => ((t * K + k) * A + a) * M + m;

    for (let k = 0; k < K; k++) {
      for (let a = 0; a < A; a++) {
        const E: EvalImage[] = [];
        for (let i = 0; i < I; i++) {
          const e = this.evalImgs[(k * A + a) * I + i];
          if (e) E.push(e);
        }
        if (E.length === 0) continue;
        let npig = 0;
        for (const e of E) for (let g = 0; g < e.gtIgnore.length; g++) if (e.gtIgnore[g] === 0) npig++;
        let prevN = -1;
        for (let m = 0; m < M; m++) {
          const maxDet = p.maxDets[m];
          let n = 0;
          for (const e of E) n += Math.min(e.dtScores.length, maxDet);
          if (npig === 0) continue;
          if (m > 0 && n === prevN) {
            // maxDets ascend, so an equal total means no image was capped differently: same result as m - 1.
            for (let t = 0; t < T; t++) {
              recall[rIdx(t, k, a, m)] = recall[rIdx(t, k, a, m - 1)];
              for (let r = 0; r < R; r++) {
                precision[pIdx(t, r, k, a, m)] = precision[pIdx(t, r, k, a, m - 1)];
                scores[pIdx(t, r, k, a, m)] = scores[pIdx(t, r, k, a, m - 1)];
              }
            }
            continue;
          }
          prevN = n;
          const sc = new Float64Array(n);
          let j = 0;
          for (const e of E) {
            const nd = Math.min(e.dtScores.length, maxDet);
            for (let d = 0; d < nd; d++, j++) sc[j] = e.dtScores[d];
          }
          const inds = argsortDescStable(sc);
          const nd = n;
          // Per detection and threshold: 0 = false positive, 1 = true positive, 2 = ignored. Built in
          // concatenation order (sequential reads), then permuted into score order, one row per threshold.
          const catCode = new Uint8Array(T * nd);
          let j0 = 0;
          for (const e of E) {
            const D = e.dtScores.length;
            const take = Math.min(D, maxDet);
            const dm = e.dtMatches;
            const di = e.dtIgnore;
            for (let t = 0; t < T; t++) {
              const from = t * D;
              const to = t * nd + j0;
              for (let d = 0; d < take; d++) catCode[to + d] = di[from + d] ? 2 : dm[from + d] !== 0 ? 1 : 0;
            }
            j0 += take;
          }
          const rc = new Float64Array(nd);
          const pr = new Float64Array(nd);
          for (let t = 0; t < T; t++) {
            let tp = 0;
            let fp = 0;
            const row = t * nd;
            for (let q = 0; q < nd; q++) {
              const c = catCode[row + inds[q]];
              if (c === 1) tp++;
              else if (c === 0) fp++;
              rc[q] = tp / npig;
              pr[q] = tp / (fp + tp + EPS);
            }
            recall[rIdx(t, k, a, m)] = nd ? rc[nd - 1] : 0;
            for (let q = nd - 1; q > 0; q--) if (pr[q] > pr[q - 1]) pr[q - 1] = pr[q];
            for (let r = 0; r < R; r++) {
              precision[pIdx(t, r, k, a, m)] = 0;
              scores[pIdx(t, r, k, a, m)] = 0;
            }
            for (let r = 0; r < R; r++) {
              const pi = searchsortedLeft(rc, p.recThrs[r], nd);
              if (pi >= nd) break;
              precision[pIdx(t, r, k, a, m)] = pr[pi];
              scores[pIdx(t, r, k, a, m)] = sc[inds[pi]];
            }
          }
        }
      }
    }
    this.eval = { counts: [T, R, K, A, M], precision, recall, scores };
    return this.eval;
  }

  /**
   * One summary number (pycocotools `_summarize`): the mean of the selected precision (ap) or recall entries
   * that are > -1, or -1 when there are none. Also returns the formatted line.
   */
  summarizeOne(
    ap: boolean,
    iouThr?: number,
    areaRng = 'all',
    maxDets = 100,
  ): { value: number; line: string } {
    const ev = this.eval;
    const p = this.paramsEval;
    if (!ev || !p) throw new Error('CocoEval.summarize: run accumulate() first');
    const [T, R, K, A, M] = ev.counts;
    const titleStr = ap ? 'Average Precision' : 'Average Recall';
    const typeStr = ap ? '(AP)' : '(AR)';
    const iouStr =
      iouThr === undefined
        ? `${formatFixed(p.iouThrs[0], 2)}:${formatFixed(p.iouThrs[p.iouThrs.length - 1], 2)}`
        : formatFixed(iouThr, 2);
    const aind: number[] = [];
    p.areaRngLbl.forEach((l, i) => {
      if (l === areaRng) aind.push(i);
    });
    const mind: number[] = [];
    p.maxDets.forEach((m, i) => {
      if (m === maxDets) mind.push(i);
    });
    const tsel: number[] = [];
    for (let t = 0; t < T; t++) if (iouThr === undefined || p.iouThrs[t] === iouThr) tsel.push(t);
    // numpy broadcasts the two index lists s[..., aind, mind] together.
    const pairs: [number, number][] = [];
    if (aind.length > 0 && mind.length > 0) {
      const n = Math.max(aind.length, mind.length);
      if ((aind.length !== n && aind.length !== 1) || (mind.length !== n && mind.length !== 1)) {
        throw argError('CocoEval.summarize', 'areaRng/maxDets', 'label and maxDets matches that broadcast', [
          aind,
          mind,
        ]);
      }
      for (let q = 0; q < n; q++)
        pairs.push([aind[aind.length === 1 ? 0 : q], mind[mind.length === 1 ? 0 : q]]);
    }
    const vals: number[] = [];
    if (ap) {
      for (const t of tsel)
        for (let r = 0; r < R; r++)
          for (let k = 0; k < K; k++)
            for (const [a, m] of pairs) {
              const v = ev.precision[(((t * R + r) * K + k) * A + a) * M + m];
              if (v > -1) vals.push(v);
            }
    } else {
      for (const t of tsel)
        for (let k = 0; k < K; k++)
          for (const [a, m] of pairs) {
            const v = ev.recall[((t * K + k) * A + a) * M + m];
            if (v > -1) vals.push(v);
          }
    }
    const value = vals.length === 0 ? -1 : npMean(vals);
    const line =
      ` ${padLeftAlign(titleStr, 18)} ${typeStr} @[ IoU=${padLeftAlign(iouStr, 9)} | ` +
      `area=${padRightAlign(areaRng, 6)} | maxDets=${padRightAlign(String(maxDets), 3)} ] = ${formatFixed(value, 3)}`;
    return { value, line };
  }

  /**
   * The twelve COCO numbers in pycocotools order (and `summaryLines`, its printed text). Like pycocotools this
   * reads `maxDets[0..2]` and the labels 'all'/'small'/'medium'/'large'; a missing label or maxDets value gives -1.
   */
  summarize(log?: (line: string) => void): number[] {
    const p = this.paramsEval;
    if (!this.eval || !p) throw new Error('CocoEval.summarize: run accumulate() first');
    if (p.maxDets.length < 3) {
      throw argError(
        'CocoEval.summarize',
        'params.maxDets',
        'at least 3 values (as pycocotools indexes [0..2])',
        p.maxDets,
      );
    }
    const md = p.maxDets;
    const specs: [boolean, number | undefined, string, number][] = [
      [true, undefined, 'all', 100],
      [true, 0.5, 'all', md[2]],
      [true, 0.75, 'all', md[2]],
      [true, undefined, 'small', md[2]],
      [true, undefined, 'medium', md[2]],
      [true, undefined, 'large', md[2]],
      [false, undefined, 'all', md[0]],
      [false, undefined, 'all', md[1]],
      [false, undefined, 'all', md[2]],
      [false, undefined, 'small', md[2]],
      [false, undefined, 'medium', md[2]],
      [false, undefined, 'large', md[2]],
    ];
    const stats: number[] = [];
    const lines: string[] = [];
    for (const [ap, thr, area, maxDets] of specs) {
      const { value, line } = this.summarizeOne(ap, thr, area, maxDets);
      stats.push(value);
      lines.push(line);
      log?.(line);
    }
    this.stats = stats;
    this.summaryLines = lines;
    return stats;
  }

  /** The summary as printed by pycocotools (one line per stat, each ending in a newline). */
  summaryText(): string {
    if (this.summaryLines.length === 0) this.summarize();
    return this.summaryLines.map((l) => `${l}\n`).join('');
  }

  /**
   * AP@[IoU thresholds] per category: the mean of precision > -1 over all thresholds and recall points, at area
   * range 'all' (else the first) and the largest maxDets; -1 for a category without ground truth.
   */
  perCategoryAP(): Map<number, number> {
    const ev = this.eval;
    const p = this.paramsEval;
    if (!ev || !p) throw new Error('CocoEval.perCategoryAP: run accumulate() first');
    const [T, R, K, A, M] = ev.counts;
    const a = Math.max(0, p.areaRngLbl.indexOf('all'));
    const m = M - 1;
    const ids = p.useCats ? p.catIds : [-1];
    const out = new Map<number, number>();
    for (let k = 0; k < K; k++) {
      const vals: number[] = [];
      for (let t = 0; t < T; t++)
        for (let r = 0; r < R; r++) {
          const v = ev.precision[(((t * R + r) * K + k) * A + a) * M + m];
          if (v > -1) vals.push(v);
        }
      out.set(ids[k], vals.length === 0 ? -1 : npMean(vals));
    }
    return out;
  }
}

/** Stable sort by descending score (numpy mergesort on -score; NaN last), insertion sort for short lists. */
function sortByScoreDesc(items: DtItem[]): DtItem[] {
  const n = items.length;
  if (n > 32) {
    const order = argsortDescStable(items.map((d) => d.score));
    const out = new Array<DtItem>(n);
    for (let j = 0; j < n; j++) out[j] = items[order[j]];
    return out;
  }
  const out = items.slice();
  for (let i = 1; i < n; i++) {
    const x = out[i];
    const key = -x.score;
    let j = i - 1;
    // move x before out[j] only when strictly smaller (NaN sorts last): stable
    // biome-ignore lint/suspicious/noSelfCompare: NaN test
    while (j >= 0 && (key < -out[j].score || (key === key && -out[j].score !== -out[j].score))) {
      out[j + 1] = out[j];
      j--;
    }
    out[j + 1] = x;
  }
  return out;
}

function evaluateCell(
  cell: Cell,
  imageId: ImageId,
  categoryId: number,
  aRng: [number, number],
  maxDet: number,
  iouThrs: readonly number[],
): EvalImage {
  const gtAll = cell.gt;
  const G = gtAll.length;
  // Stable partition: ground truth inside the area range and not crowd first, ignored last.
  const gtind: number[] = [];
  const gtIg: number[] = [];
  for (let pass = 0; pass < 2; pass++) {
    for (let g = 0; g < G; g++) {
      const x = gtAll[g];
      const ig = x.ignore || x.area < aRng[0] || x.area > aRng[1] ? 1 : 0;
      if (ig === pass) {
        gtind.push(g);
        gtIg.push(ig);
      }
    }
  }
  const dt = cell.dt;
  const D = dt.length;
  const T = iouThrs.length;
  const gtm = new Array<number>(T * G).fill(0);
  const dtm = new Array<number>(T * D).fill(0);
  const dtIg = new Array<number>(T * D).fill(0);
  const ious = cell.ious;
  if (ious.length > 0) {
    for (let t = 0; t < T; t++) {
      const thr = Math.min(iouThrs[t], 1 - 1e-10);
      for (let d = 0; d < D; d++) {
        let best = thr;
        let m = -1;
        const row = d * G;
        for (let g = 0; g < G; g++) {
          // already matched, and not a crowd: skip
          if (gtm[t * G + g] > 0 && !gtAll[gtind[g]].crowd) continue;
          // matched to a regular ground truth and reached the ignored ones: stop
          if (m > -1 && gtIg[m] === 0 && gtIg[g] === 1) break;
          const v = ious[row + gtind[g]];
          if (v < best) continue;
          best = v;
          m = g;
        }
        if (m === -1) continue;
        dtIg[t * D + d] = gtIg[m];
        dtm[t * D + d] = gtAll[gtind[m]].id;
        gtm[t * G + m] = dt[d].id;
      }
    }
  }
  // unmatched detections outside the area range are ignored
  for (let d = 0; d < D; d++) {
    const out = dt[d].area < aRng[0] || dt[d].area > aRng[1];
    if (!out) continue;
    for (let t = 0; t < T; t++) if (dtm[t * D + d] === 0) dtIg[t * D + d] = 1;
  }
  const gtIds = new Array<number>(G);
  for (let g = 0; g < G; g++) gtIds[g] = gtAll[gtind[g]].id;
  return {
    imageId,
    categoryId,
    aRng,
    maxDet,
    dtIds: cell.dtIds,
    gtIds,
    dtMatches: dtm,
    gtMatches: gtm,
    dtScores: cell.dtScores,
    gtIgnore: gtIg,
    dtIgnore: dtIg,
  };
}
