/** One-call COCO evaluation with a JSON-serialisable result, and text formatters for summaries and tables. */
import { type CocoDatasetJson, CocoIndex, type CocoResult } from './coco.js';
import { COCO_STAT_NAMES, CocoEval, type CocoEvalParams, type IouType } from './cocoeval.js';
import { argError, parseJsonText } from './errors.js';
import { formatFixed, padLeftAlign, padRightAlign } from './numeric.js';

export interface CocoCategoryAP {
  categoryId: number;
  name: string;
  /** AP@[.5:.95] (area 'all', largest maxDets); -1 when the category has no ground truth. */
  ap: number;
}

/** Everything `evaluateCoco` computed, as plain JSON values. */
export interface CocoEvalResult {
  iouType: IouType;
  /** The twelve pycocotools numbers, in pycocotools order. */
  stats: number[];
  /** The same numbers keyed by `COCO_STAT_NAMES` (AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl). */
  metrics: Record<string, number>;
  perCategory: CocoCategoryAP[];
  /** The printed pycocotools summary (12 lines). */
  summary: string;
  params: {
    iouType: IouType;
    imgIds: (number | string)[];
    catIds: number[];
    iouThrs: number[];
    recThrs: number[];
    maxDets: number[];
    areaRng: [number, number][];
    areaRngLbl: string[];
    useCats: boolean;
  };
  numImages: number;
  numDetections: number;
}

export interface EvaluateCocoOptions {
  iouType?: IouType;
  /** Overrides of pycocotools' default parameters (applied before `evaluate()`). */
  params?: Partial<Omit<CocoEvalParams, 'iouType'>>;
  /** Keep results of categories the ground truth does not list (unevaluated, as pycocotools) instead of failing. */
  allowUnknownCategories?: boolean;
}

function toIndex(v: CocoIndex | CocoDatasetJson | string, fn: string): CocoIndex {
  if (v instanceof CocoIndex) return v;
  const data = typeof v === 'string' ? parseJsonText(v, fn, 'gt') : v;
  if (typeof data !== 'object' || data === null || !Array.isArray((data as CocoDatasetJson).images)) {
    throw argError(fn, 'gt', 'a CocoIndex, a COCO dataset object or its JSON text', data);
  }
  return new CocoIndex(data as CocoDatasetJson);
}

/**
 * Runs `evaluate`, `accumulate` and `summarize` on ground truth and results (a results list, its JSON text, or a
 * results index from `loadRes`) and returns a JSON-serialisable report.
 */
export function evaluateCoco(
  gt: CocoIndex | CocoDatasetJson | string,
  results: readonly CocoResult[] | string | CocoIndex,
  options: EvaluateCocoOptions = {},
): CocoEvalResult {
  const gtIndex = toIndex(gt, 'evaluateCoco');
  let dtIndex: CocoIndex;
  if (results instanceof CocoIndex) dtIndex = results;
  else {
    const list = typeof results === 'string' ? parseJsonText(results, 'evaluateCoco', 'results') : results;
    if (!Array.isArray(list)) throw argError('evaluateCoco', 'results', 'an array of COCO results', list);
    dtIndex = gtIndex.loadRes(list, { allowUnknownCategories: options.allowUnknownCategories });
  }
  const E = new CocoEval(gtIndex, dtIndex, options.iouType ?? 'bbox');
  const o = options.params ?? {};
  if (o.imgIds) E.params.imgIds = [...o.imgIds];
  if (o.catIds) E.params.catIds = [...o.catIds];
  if (o.iouThrs) E.params.iouThrs = [...o.iouThrs];
  if (o.recThrs) E.params.recThrs = [...o.recThrs];
  if (o.maxDets) E.params.maxDets = [...o.maxDets];
  if (o.areaRng) E.params.areaRng = o.areaRng.map((r) => [r[0], r[1]] as [number, number]);
  if (o.areaRngLbl) E.params.areaRngLbl = [...o.areaRngLbl];
  if (o.useCats !== undefined) E.params.useCats = o.useCats;
  E.evaluate();
  E.accumulate();
  const stats = E.summarize();
  const metrics: Record<string, number> = {};
  COCO_STAT_NAMES.forEach((n, i) => {
    metrics[n] = stats[i];
  });
  const perCategory: CocoCategoryAP[] = [];
  for (const [id, ap] of E.perCategoryAP()) {
    const name = id === -1 ? 'all' : String(gtIndex.cats.get(id)?.name ?? id);
    perCategory.push({ categoryId: id, name, ap });
  }
  const p = E.evaluatedParams!;
  return {
    iouType: p.iouType,
    stats,
    metrics,
    perCategory,
    summary: E.summaryText(),
    params: {
      iouType: p.iouType,
      imgIds: p.imgIds,
      catIds: p.catIds,
      iouThrs: p.iouThrs,
      recThrs: p.recThrs,
      maxDets: p.maxDets,
      areaRng: p.areaRng,
      areaRngLbl: p.areaRngLbl,
      useCats: p.useCats,
    },
    numImages: p.imgIds.length,
    numDetections: dtIndex.anns.size,
  };
}

export interface TableOptions {
  /** Digits after the decimal point (default 3). */
  digits?: number;
  /** Header of the value column (default 'AP'). */
  valueHeader?: string;
  /** Sort rows by value, descending (default false: input order). */
  sortByValue?: boolean;
}

/**
 * A fixed-width text table of per-category values:
 * ```
 * id  name      AP
 * --  ------  -----
 *  1  person  0.512
 * ```
 * Values of -1 (no ground truth) are shown as `-`; a last row gives the mean over the others.
 */
export function formatPerCategoryTable(
  rows: readonly { categoryId: number | string; name: string; ap: number }[],
  options: TableOptions = {},
): string {
  const digits = options.digits ?? 3;
  const header = options.valueHeader ?? 'AP';
  const list = [...rows];
  if (options.sortByValue) list.sort((a, b) => b.ap - a.ap);
  const valid = list.filter((r) => r.ap > -1 && !Number.isNaN(r.ap));
  const mean = valid.length ? valid.reduce((s, r) => s + r.ap, 0) / valid.length : -1;
  const cells = list.map((r) => [String(r.categoryId), r.name, r.ap > -1 ? formatFixed(r.ap, digits) : '-']);
  cells.push(['', 'mean', mean > -1 ? formatFixed(mean, digits) : '-']);
  const wId = Math.max(2, ...cells.map((c) => c[0].length));
  const wName = Math.max(4, ...cells.map((c) => c[1].length));
  const wVal = Math.max(header.length, digits + 2, ...cells.map((c) => c[2].length));
  const line = (a: string, b: string, c: string) =>
    `${padRightAlign(a, wId)}  ${padLeftAlign(b, wName)}  ${padRightAlign(c, wVal)}`.trimEnd();
  const out = [line('id', 'name', header), line('-'.repeat(wId), '-'.repeat(wName), '-'.repeat(wVal))];
  cells.forEach((c, i) => {
    if (i === cells.length - 1) out.push(line('-'.repeat(wId), '-'.repeat(wName), '-'.repeat(wVal)));
    out.push(line(c[0], c[1], c[2]));
  });
  return `${out.join('\n')}\n`;
}

/** The pycocotools summary block of an `evaluateCoco` result followed by its per-category table. */
export function formatCocoReport(result: CocoEvalResult, options: TableOptions = {}): string {
  return `${result.summary}\n${formatPerCategoryTable(result.perCategory, options)}`;
}
