/**
 * Class maps as COCO `segm` records, so `@effdet/eval` (`evaluateCoco(gt, results, { iouType: 'segm' })`) scores
 * predicted masks exactly as pycocotools would: one compressed-RLE result per class present in an image.
 */
import {
  type CocoAnnotation,
  type CocoResult,
  encodeMask,
  type ImageId,
  rleArea,
  rleToBbox,
  toCocoRle,
} from '@effdet/eval';
import { check } from '@effdet/layers';

export interface MaskToCocoOptions {
  imageId: ImageId;
  /** COCO category id of each class: a table, a function (null = skip the class), or default `class id`. */
  categoryIds?: readonly number[] | Readonly<Record<number, number>> | ((classId: number) => number | null);
  /** Classes never reported (default [0], the background). */
  skipClasses?: readonly number[];
  /**
   * Per-pixel probabilities `[height * width * numClasses]` (from `predictMask({probabilities: true})`): a
   * result's score is the mean probability of its class over its pixels. Default score 1.
   */
  probabilities?: Float32Array;
  numClasses?: number;
}

function categoryOf(options: MaskToCocoOptions, c: number): number | null {
  const ids = options.categoryIds;
  if (ids === undefined) return c;
  if (typeof ids === 'function') return ids(c);
  const v = (ids as Record<number, number>)[c];
  return v === undefined ? null : v;
}

function classPixels(
  fn: string,
  mask: ArrayLike<number>,
  width: number,
  height: number,
): Map<number, number> {
  check(
    Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0,
    () => `${fn}: width and height must be positive integers, got ${width}x${height}`,
  );
  check(
    mask !== null && typeof mask === 'object' && mask.length === width * height,
    () => `${fn}: mask must hold ${width}x${height} = ${width * height} class ids, got ${mask?.length}`,
  );
  const counts = new Map<number, number>();
  for (let i = 0; i < mask.length; i++) {
    const c = mask[i];
    check(
      Number.isInteger(c) && c >= 0,
      () => `${fn}: mask values must be non-negative class ids, got ${c} at ${i}`,
    );
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  return counts;
}

/** A binary row-major mask of one class. */
function binaryOf(mask: ArrayLike<number>, c: number): Uint8Array {
  const out = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) out[i] = mask[i] === c ? 1 : 0;
  return out;
}

/** One COCO result per class present in a class map (row-major `[height * width]`). */
export function maskToCocoResults(
  mask: ArrayLike<number>,
  width: number,
  height: number,
  options: MaskToCocoOptions,
): CocoResult[] {
  const fn = 'maskToCocoResults';
  const counts = classPixels(fn, mask, width, height);
  const skip = new Set(options.skipClasses ?? [0]);
  const probs = options.probabilities;
  let C = 0;
  if (probs) {
    C = options.numClasses ?? probs.length / (width * height);
    check(
      Number.isInteger(C) && C > 0 && probs.length === width * height * C,
      () => `${fn}: probabilities must hold ${width}x${height}x numClasses values, got ${probs.length}`,
    );
  }
  const out: CocoResult[] = [];
  for (const c of [...counts.keys()].sort((a, b) => a - b)) {
    if (skip.has(c)) continue;
    const category = categoryOf(options, c);
    if (category === null) continue;
    check(!probs || c < C, () => `${fn}: the mask holds class ${c} but the probabilities have ${C} classes`);
    let score = 1;
    if (probs) {
      let s = 0;
      for (let i = 0; i < mask.length; i++) if (mask[i] === c) s += probs[i * C + c];
      score = s / counts.get(c)!;
    }
    const rle = encodeMask(binaryOf(mask, c), height, width);
    out.push({ image_id: options.imageId, category_id: category, score, segmentation: toCocoRle(rle) });
  }
  return out;
}

/** COCO ground-truth annotations from a label map (one per class present), ids from `startId`. */
export function maskToCocoAnnotations(
  mask: ArrayLike<number>,
  width: number,
  height: number,
  options: Omit<MaskToCocoOptions, 'probabilities' | 'numClasses'> & {
    startId?: number;
    ignoreIndex?: number;
  },
): CocoAnnotation[] {
  const fn = 'maskToCocoAnnotations';
  const counts = classPixels(fn, mask, width, height);
  const skip = new Set(options.skipClasses ?? [0]);
  if (options.ignoreIndex !== undefined) skip.add(options.ignoreIndex);
  let id = options.startId ?? 1;
  const out: CocoAnnotation[] = [];
  for (const c of [...counts.keys()].sort((a, b) => a - b)) {
    if (skip.has(c)) continue;
    const category = categoryOf(options, c);
    if (category === null) continue;
    const rle = encodeMask(binaryOf(mask, c), height, width);
    out.push({
      id: id++,
      image_id: options.imageId,
      category_id: category,
      segmentation: toCocoRle(rle),
      area: rleArea(rle),
      bbox: rleToBbox(rle),
      iscrowd: 0,
    });
  }
  return out;
}
