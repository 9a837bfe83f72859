/**
 * The COCO mask API (maskApi.c / pycocotools.mask) in TypeScript: run-length encoded binary masks stored
 * column-major (Fortran order) exactly as COCO does, with the same integer arithmetic, so RLE strings, areas,
 * boxes and IoUs agree with pycocotools.
 */
import { argError, check } from './errors.js';

/** A decoded run-length mask: `counts` alternate runs of 0s and 1s (starting with 0s) over the column-major pixels. */
export interface Rle {
  h: number;
  w: number;
  counts: Uint32Array;
}

/** COCO's JSON form: `counts` is the compressed string (`rleToString`) or an uncompressed list of run lengths. */
export interface CocoRle {
  size: [number, number];
  counts: string | number[];
}

/** A polygon list as stored in COCO annotations: each polygon is `[x0, y0, x1, y1, ...]`. */
export type Polygons = number[][];

/** Any COCO `segmentation` value. */
export type Segmentation = Polygons | CocoRle;

/** An `[x, y, w, h]` box. */
export type Box = [number, number, number, number];

const U32 = 4294967296;

function toUint32(x: number): number {
  const r = x % U32;
  return r < 0 ? r + U32 : r;
}

/** C's `(int)` conversion of a double (truncation; NaN becomes INT_MIN as on x86). */
function cInt(x: number): number {
  if (Number.isNaN(x)) return -2147483648;
  return Math.trunc(x);
}

function checkDims(fn: string, h: number, w: number): void {
  check(Number.isInteger(h) && h >= 0, fn, 'h', 'a non-negative integer', h);
  check(Number.isInteger(w) && w >= 0, fn, 'w', 'a non-negative integer', w);
}

/** Builds an Rle from run lengths (checked to be non-negative integers). */
export function makeRle(h: number, w: number, counts: ArrayLike<number>): Rle {
  checkDims('makeRle', h, w);
  const c = new Uint32Array(counts.length);
  for (let i = 0; i < counts.length; i++) {
    const v = counts[i];
    if (!(Number.isInteger(v) && v >= 0)) {
      throw argError('makeRle', `counts[${i}]`, 'a non-negative integer', v);
    }
    c[i] = v;
  }
  return { h, w, counts: c };
}

/**
 * Encodes a binary mask given row-major (`mask[y * w + x]`, like a numpy HxW array); any non-zero value is
 * foreground. Runs are taken in COCO's column-major order.
 */
export function encodeMask(mask: ArrayLike<number | boolean>, h: number, w: number): Rle {
  checkDims('encodeMask', h, w);
  check(mask.length === h * w, 'encodeMask', 'mask', `${h * w} values (h*w)`, mask);
  const runs: number[] = [];
  let prev = 0;
  let c = 0;
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) {
      const v = mask[y * w + x] ? 1 : 0;
      if (v !== prev) {
        runs.push(c);
        c = 0;
        prev = v;
      }
      c++;
    }
  }
  runs.push(c);
  return { h, w, counts: Uint32Array.from(runs) };
}

/** Encodes a column-major mask (`mask[x * h + y]`, COCO/Fortran order) as maskApi `rleEncode` does. */
export function encodeMaskColumnMajor(mask: ArrayLike<number | boolean>, h: number, w: number): Rle {
  checkDims('encodeMaskColumnMajor', h, w);
  check(mask.length === h * w, 'encodeMaskColumnMajor', 'mask', `${h * w} values (h*w)`, mask);
  const runs: number[] = [];
  let prev = 0;
  let c = 0;
  for (let j = 0; j < h * w; j++) {
    const v = mask[j] ? 1 : 0;
    if (v !== prev) {
      runs.push(c);
      c = 0;
      prev = v;
    }
    c++;
  }
  runs.push(c);
  return { h, w, counts: Uint32Array.from(runs) };
}

/** Decodes to a row-major `Uint8Array` of 0/1 (`out[y * w + x]`). */
export function decodeMask(rle: Rle): Uint8Array {
  const { h, w } = rle;
  const out = new Uint8Array(h * w);
  let j = 0;
  let v = 0;
  for (let k = 0; k < rle.counts.length; k++) {
    const n = rle.counts[k];
    if (v) {
      for (let t = 0; t < n && j < h * w; t++, j++) {
        const x = Math.floor(j / h);
        const y = j - x * h;
        out[y * w + x] = 1;
      }
    } else {
      j += n;
    }
    v = v ? 0 : 1;
  }
  return out;
}

/** Decodes to a column-major `Uint8Array` (`out[x * h + y]`), the layout maskApi `rleDecode` writes. */
export function decodeMaskColumnMajor(rle: Rle): Uint8Array {
  const out = new Uint8Array(rle.h * rle.w);
  let j = 0;
  let v = 0;
  for (let k = 0; k < rle.counts.length; k++) {
    const n = rle.counts[k];
    if (v) out.fill(1, j, Math.min(j + n, out.length));
    j += n;
    v = v ? 0 : 1;
  }
  return out;
}

/** maskApi `rleToString`: LEB128-like, 5 data bits per char (ascii 48..111), counts from the 4th on stored as deltas. */
export function rleToString(rle: Rle): string {
  const cnts = rle.counts;
  const chars: number[] = [];
  for (let i = 0; i < cnts.length; i++) {
    let x = cnts[i];
    if (i > 2) x -= cnts[i - 2];
    let more = true;
    while (more) {
      let c = x - Math.floor(x / 32) * 32; // x & 0x1f on the two's complement value
      x = Math.floor(x / 32); // arithmetic shift right by 5
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      chars.push(c + 48);
    }
  }
  return String.fromCharCode(...chars);
}

/** maskApi `rleFrString`: decodes the compressed string of an `h` x `w` mask. */
export function rleFromString(s: string, h: number, w: number): Rle {
  checkDims('rleFromString', h, w);
  if (typeof s !== 'string') throw argError('rleFromString', 's', 'a compressed RLE string', s);
  const cnts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw argError('rleFromString', 's', 'a well-formed RLE string', s);
      const c = s.charCodeAt(p) - 48;
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x -= 2 ** (5 * k);
    }
    const m = cnts.length;
    if (m > 2) x += cnts[m - 2];
    cnts.push(toUint32(x));
  }
  return { h, w, counts: Uint32Array.from(cnts) };
}

/** Converts to COCO's JSON form with compressed string counts (as pycocotools returns RLEs). */
export function toCocoRle(rle: Rle): CocoRle {
  return { size: [rle.h, rle.w], counts: rleToString(rle) };
}

/** Converts to COCO's uncompressed JSON form (`counts` as a number list). */
export function toUncompressedCocoRle(rle: Rle): CocoRle {
  return { size: [rle.h, rle.w], counts: Array.from(rle.counts) };
}

function isCocoRle(v: unknown): v is CocoRle {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  return (
    Array.isArray(o.size) && o.size.length === 2 && (typeof o.counts === 'string' || Array.isArray(o.counts))
  );
}

/** Reads COCO's JSON RLE (compressed or uncompressed counts); the dims come from `size` = `[h, w]`. */
export function fromCocoRle(obj: CocoRle): Rle {
  if (!isCocoRle(obj)) throw argError('fromCocoRle', 'obj', 'an RLE object {size: [h, w], counts}', obj);
  const [h, w] = obj.size;
  if (typeof obj.counts === 'string') return rleFromString(obj.counts, h, w);
  return makeRle(h, w, obj.counts);
}

/** maskApi `rleArea`: the number of foreground pixels. */
export function rleArea(rle: Rle): number {
  let a = 0;
  for (let j = 1; j < rle.counts.length; j += 2) a += rle.counts[j];
  return toUint32(a);
}

/** maskApi `rleToBbox`: the tight `[x, y, w, h]` box of the foreground (all zeros when empty). */
export function rleToBbox(rle: Rle): Box {
  const h = rle.h;
  const w = rle.w;
  const m = Math.floor(rle.counts.length / 2) * 2;
  if (m === 0) return [0, 0, 0, 0];
  let xs = w;
  let ys = h;
  let xe = 0;
  let ye = 0;
  let cc = 0;
  let xp = 0;
  for (let j = 0; j < m; j++) {
    cc = toUint32(cc + rle.counts[j]);
    const t = toUint32(cc - (j % 2));
    const y = t % h;
    const x = (t - y) / h;
    if (j % 2 === 0) xp = x;
    else if (xp < x) {
      ys = 0;
      ye = h - 1;
    }
    xs = Math.min(xs, x);
    xe = Math.max(xe, x);
    ys = Math.min(ys, y);
    ye = Math.max(ye, y);
  }
  return [xs, ys, xe - xs + 1, ye - ys + 1];
}

/** maskApi `rleMerge`: union (or intersection) of masks of one size; a size mismatch gives an empty 0x0 RLE. */
export function rleMerge(rles: readonly Rle[], intersect = false): Rle {
  const n = rles.length;
  if (n === 0) return { h: 0, w: 0, counts: new Uint32Array(0) };
  let h = rles[0].h;
  let w = rles[0].w;
  if (n === 1) return { h, w, counts: rles[0].counts.slice() };
  let cnts: number[] = Array.from(rles[0].counts);
  for (let i = 1; i < n; i++) {
    const B = rles[i].counts;
    if (rles[i].h !== h || rles[i].w !== w) {
      h = 0;
      w = 0;
      cnts = [];
      break;
    }
    const A = cnts;
    const out: number[] = [];
    let ca = A[0] ?? 0;
    let cb = B[0] ?? 0;
    let v = 0;
    let va = 0;
    let vb = 0;
    let a = 1;
    let b = 1;
    let cc = 0;
    let ct = 1;
    while (ct > 0) {
      const c = Math.min(ca, cb);
      cc += c;
      ct = 0;
      ca -= c;
      if (!ca && a < A.length) {
        ca = A[a++];
        va = va ? 0 : 1;
      }
      ct += ca;
      cb -= c;
      if (!cb && b < B.length) {
        cb = B[b++];
        vb = vb ? 0 : 1;
      }
      ct += cb;
      const vp = v;
      v = intersect ? (va && vb ? 1 : 0) : va || vb ? 1 : 0;
      if (v !== vp || ct === 0) {
        out.push(cc);
        cc = 0;
      }
    }
    cnts = out;
  }
  return { h, w, counts: Uint32Array.from(cnts) };
}

/**
 * maskApi `bbIou`: IoU of `[x, y, w, h]` boxes as a `dt.length` x `gt.length` matrix (`out[d][g]`). For a crowd
 * ground truth the union is the detection's area (intersection over detection area).
 */
export function bboxIou(
  dt: readonly ArrayLike<number>[],
  gt: readonly ArrayLike<number>[],
  iscrowd?: ArrayLike<number | boolean>,
): number[][] {
  const out: number[][] = [];
  for (let d = 0; d < dt.length; d++) {
    const row = new Array<number>(gt.length);
    for (let g = 0; g < gt.length; g++) row[g] = boxPairIou(dt[d], gt[g], !!iscrowd?.[g]);
    out.push(row);
  }
  return out;
}

/** IoU of one detection box and one ground-truth box (maskApi `bbIou` arithmetic). */
export function boxPairIou(D: ArrayLike<number>, G: ArrayLike<number>, crowd: boolean): number {
  const w = Math.min(D[2] + D[0], G[2] + G[0]) - Math.max(D[0], G[0]);
  if (w <= 0) return 0;
  const h = Math.min(D[3] + D[1], G[3] + G[1]) - Math.max(D[1], G[1]);
  if (h <= 0) return 0;
  const i = w * h;
  const da = D[2] * D[3];
  const u = crowd ? da : da + G[2] * G[3] - i;
  return i / u;
}

/** Exact pixel IoU of two RLEs (maskApi `rleIou` inner loop); -1 when the sizes differ. */
function rlePairIou(dt: Rle, gt: Rle, crowd: boolean): number {
  if (dt.h !== gt.h || dt.w !== gt.w) return -1;
  const A = dt.counts;
  const B = gt.counts;
  let ca = A[0] ?? 0;
  let cb = B[0] ?? 0;
  let va = false;
  let vb = false;
  let a = 1;
  let b = 1;
  let inter = 0;
  let uni = 0;
  let ct = 1;
  while (ct > 0) {
    const c = Math.min(ca, cb);
    if (va || vb) {
      uni += c;
      if (va && vb) inter += c;
    }
    ct = 0;
    ca -= c;
    if (!ca && a < A.length) {
      ca = A[a++];
      va = !va;
    }
    ct += ca;
    cb -= c;
    if (!cb && b < B.length) {
      cb = B[b++];
      vb = !vb;
    }
    ct += cb;
  }
  if (inter === 0) uni = 1;
  else if (crowd) uni = rleArea(dt);
  return inter / uni;
}

/**
 * maskApi `rleIou`: IoU matrix `out[d][g]` between RLE masks; a crowd ground truth uses the detection's area as
 * the union. Pairs whose bounding boxes do not overlap are 0 without touching the runs, as in maskApi.
 */
export function rleIou(
  dt: readonly Rle[],
  gt: readonly Rle[],
  iscrowd?: ArrayLike<number | boolean>,
): number[][] {
  const db = dt.map(rleToBbox);
  const gb = gt.map(rleToBbox);
  const out: number[][] = [];
  for (let d = 0; d < dt.length; d++) {
    const row = new Array<number>(gt.length);
    for (let g = 0; g < gt.length; g++) {
      const crowd = !!iscrowd?.[g];
      const o = boxPairIou(db[d], gb[g], crowd);
      row[g] = o > 0 ? rlePairIou(dt[d], gt[g], crowd) : o;
    }
    out.push(row);
  }
  return out;
}

/** `pycocotools.mask.iou`: boxes (`[x, y, w, h]` arrays) or RLEs, never mixed; `[]` when either side is empty. */
export function iou(
  dt: readonly (Rle | ArrayLike<number>)[],
  gt: readonly (Rle | ArrayLike<number>)[],
  iscrowd?: ArrayLike<number | boolean>,
): number[][] {
  if (dt.length === 0 || gt.length === 0) return [];
  const isRle = (o: unknown): o is Rle =>
    typeof o === 'object' && o !== null && (o as Rle).counts instanceof Uint32Array;
  const dtRle = dt.every(isRle);
  const gtRle = gt.every(isRle);
  if (dtRle && gtRle) return rleIou(dt as Rle[], gt as Rle[], iscrowd);
  const isBox = (o: unknown): boolean => !isRle(o) && (o as ArrayLike<number>).length === 4;
  if (!dt.every(isBox)) throw argError('iou', 'dt', 'all RLEs or all [x, y, w, h] boxes', dt);
  if (!gt.every(isBox)) throw argError('iou', 'gt', 'all RLEs or all [x, y, w, h] boxes', gt);
  if (dtRle || gtRle) throw argError('iou', 'gt', 'the same kind (RLE or box) as dt', gt);
  return bboxIou(dt as ArrayLike<number>[], gt as ArrayLike<number>[], iscrowd);
}

/**
 * maskApi `rleFrPoly`: rasterises one polygon `[x0, y0, x1, y1, ...]` into an `h` x `w` mask the way COCO does
 * (boundary traced on a 5x upsampled grid, then the column crossings downsampled).
 */
export function rleFromPolygon(xy: ArrayLike<number>, h: number, w: number): Rle {
  checkDims('rleFromPolygon', h, w);
  const k = Math.floor(xy.length / 2);
  const scale = 5;
  const x = new Array<number>(k + 1);
  const y = new Array<number>(k + 1);
  for (let j = 0; j < k; j++) x[j] = cInt(scale * xy[j * 2] + 0.5);
  x[k] = x[0];
  for (let j = 0; j < k; j++) y[j] = cInt(scale * xy[j * 2 + 1] + 0.5);
  y[k] = y[0];
  // Dense boundary points on the upsampled grid.
  const u: number[] = [];
  const v: number[] = [];
  for (let j = 0; j < k; j++) {
    let xs = x[j];
    let xe = x[j + 1];
    let ys = y[j];
    let ye = y[j + 1];
    const dx = Math.abs(xe - xs);
    const dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      let t = xs;
      xs = xe;
      xe = t;
      t = ys;
      ys = ye;
      ye = t;
    }
    const s = dx >= dy ? (ye - ys) / dx : (xe - xs) / dy;
    if (dx >= dy) {
      for (let d = 0; d <= dx; d++) {
        const t = flip ? dx - d : d;
        u.push(t + xs);
        v.push(cInt(ys + s * t + 0.5));
      }
    } else {
      for (let d = 0; d <= dy; d++) {
        const t = flip ? dy - d : d;
        v.push(t + ys);
        u.push(cInt(xs + s * t + 0.5));
      }
    }
  }
  // Points where the boundary crosses a column, downsampled.
  const bx: number[] = [];
  const by: number[] = [];
  for (let j = 1; j < u.length; j++) {
    if (u[j] === u[j - 1]) continue;
    let xd = u[j] < u[j - 1] ? u[j] : u[j] - 1;
    xd = (xd + 0.5) / scale - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > w - 1) continue;
    let yd = Math.min(v[j], v[j - 1]);
    yd = (yd + 0.5) / scale - 0.5;
    if (yd < 0) yd = 0;
    else if (yd > h) yd = h;
    yd = Math.ceil(yd);
    bx.push(xd);
    by.push(yd);
  }
  // RLE from the crossings.
  const a = new Array<number>(bx.length + 1);
  for (let j = 0; j < bx.length; j++) a[j] = toUint32(bx[j] * h + by[j]);
  a[bx.length] = toUint32(h * w);
  a.sort((p, q) => p - q);
  let prev = 0;
  for (let j = 0; j < a.length; j++) {
    const t = a[j];
    a[j] -= prev;
    prev = t;
  }
  const b: number[] = [];
  let j = 0;
  b.push(a[j++]);
  while (j < a.length) {
    if (a[j] > 0) b.push(a[j++]);
    else {
      j++;
      if (j < a.length) b[b.length - 1] += a[j++];
    }
  }
  return { h, w, counts: Uint32Array.from(b) };
}

/** maskApi `rleFrBbox`: the mask of an `[x, y, w, h]` box, rasterised as its polygon. */
export function rleFromBbox(bb: ArrayLike<number>, h: number, w: number): Rle {
  const xs = bb[0];
  const xe = xs + bb[2];
  const ys = bb[1];
  const ye = ys + bb[3];
  return rleFromPolygon([xs, ys, xs, ye, xe, ye, xe, ys], h, w);
}

/**
 * pycocotools `annToRLE` on a `segmentation` value: polygons are rasterised and merged (union), uncompressed RLE
 * counts are taken with the image's `h` x `w` (not the object's `size`, as pycocotools does), and compressed RLE
 * is decoded with its own `size`.
 */
export function segmentationToRle(segm: Segmentation, h: number, w: number): Rle {
  if (Array.isArray(segm)) {
    const parts = segm.map((poly, i) => {
      if (!Array.isArray(poly) && !ArrayBuffer.isView(poly)) {
        throw argError('segmentationToRle', `segm[${i}]`, 'a polygon [x0, y0, x1, y1, ...]', poly);
      }
      return rleFromPolygon(poly, h, w);
    });
    return rleMerge(parts, false);
  }
  if (isCocoRle(segm)) {
    if (Array.isArray(segm.counts)) return makeRle(h, w, segm.counts);
    return rleFromString(segm.counts, segm.size[0], segm.size[1]);
  }
  throw argError('segmentationToRle', 'segm', 'polygons or an RLE object {size, counts}', segm);
}
