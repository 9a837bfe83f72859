/**
 * One synthetic scene: a textured background with shapes painted on it, and labels that are exact by
 * construction.
 *
 * Geometry. A shape is either a circle or a union of convex polygons (square, triangle, hexagon: one polygon;
 * star: five kites around the centre; cross: two rectangles), each polygon held as half-planes
 * `a*x + b*y + c >= 0` with unit normals, so `a*x + b*y + c` is a signed distance. Vertices cost a handful of
 * trig calls per object; the per-pixel work is multiply-adds and comparisons.
 *
 * Pixels and coverage. Pixel (col, row) is the unit square [col, col+1) x [row, row+1); its centre is
 * (col + 0.5, row + 0.5). The signed distance d of the centre to the shape's outline (positive inside; for
 * polygons the minimum over a part's half-planes, maximum over parts) gives the anti-aliasing coverage
 * `alpha = clamp(d + 0.5, 0, 1)` used to blend the colour. A pixel belongs to the object's mask exactly when
 * `alpha >= 0.5`, i.e. when its centre lies inside the shape (outline included).
 *
 * Occlusion and the visibility rule. Objects are painted in order; a later object owns every pixel of its own
 * mask, so the visible mask of an object is its mask minus the masks of all later objects (and minus what lies
 * outside the image). `instance` holds, per pixel, 1 + the index of the object that owns it (0 = background).
 * A candidate object is placed only if afterwards every object (earlier ones and itself) keeps
 * `visible >= max(minVisiblePixels, minVisibleFraction * fullArea)` pixels, where `fullArea` is the analytic
 * area of the whole shape (including any part outside the image). A rejected candidate is never painted (it
 * leaves no trace in the image), and another candidate is drawn; after `25 * target` attempts the scene keeps
 * what it has, so the object count can fall short of the drawn target only in extreme settings.
 *
 * Labels. `bbox` is the tight box of the visible mask in COCO form `[x, y, w, h]`: x = leftmost mask column,
 * y = top mask row, w = rightmost - leftmost + 1, h = bottom - top + 1, all integers. In continuous image
 * coordinates it is the rectangle [x, x + w) x [y, y + h) that exactly covers the mask pixels, which is how
 * COCO boxes are drawn and how pycocotools computes box IoU (no +1), and what effdet's COCO parser turns into
 * `[y, x, y + h, x + w]`. `area` is the number of visible mask pixels.
 */
import { createRng, Rng } from './rng.js';

/** The shape classes; category id = index + 1 (COCO-style, 0 is background in the semantic map). */
export const SHAPE_CLASSES = ['circle', 'square', 'triangle', 'star', 'hexagon', 'cross'] as const;
export type ShapeClass = (typeof SHAPE_CLASSES)[number];

/** `{id, name, supercategory}` of every class, as COCO `categories`. */
export const SHAPE_CATEGORIES: readonly { id: number; name: ShapeClass; supercategory: string }[] =
  SHAPE_CLASSES.map((name, i) => ({ id: i + 1, name, supercategory: 'shape' }));

/** The category id of a class name. */
export function categoryIdOf(name: ShapeClass): number {
  const i = SHAPE_CLASSES.indexOf(name);
  if (i < 0) {
    throw new Error(`categoryIdOf: name must be one of ${SHAPE_CLASSES.join(', ')}, got '${String(name)}'`);
  }
  return i + 1;
}

export interface SceneOptions {
  /** Image width in pixels (default 320). */
  width?: number;
  /** Image height in pixels (default 320). */
  height?: number;
  /** Fewest objects drawn as the target count (default 1). */
  minObjects?: number;
  /** Most objects (default 8). The target count is uniform in [minObjects, maxObjects]. */
  maxObjects?: number;
  /**
   * Smallest object size in pixels (default 8). Size = twice the distance from the shape's centre to its
   * farthest point (the diameter of the circle around the centre that just holds the shape).
   */
  minSize?: number;
  /** Largest object size (default 0.6 * min(width, height)). Sizes are log-uniform in [minSize, maxSize]. */
  maxSize?: number;
  /** Classes to draw from, uniformly (default all of SHAPE_CLASSES). Category ids stay those of SHAPE_CLASSES. */
  classes?: readonly ShapeClass[];
  /** An object must keep at least this fraction of its full area visible (default 0.4). */
  minVisibleFraction?: number;
  /** ... and at least this many visible pixels (default 12). */
  minVisiblePixels?: number;
  /** Allow objects that extend past the image border (their centre is always inside). Default true. */
  allowTruncation?: boolean;
  /** Wanted RGB distance between an object and the pixels around and under it (default 60, of 441). */
  minContrast?: number;
  /** Largest per-image amplitude of the uniform pixel noise, in grey levels (default 8; 0 = none). */
  noise?: number;
  /** Largest brightness change across an object from its linear shading, in grey levels (default 30). */
  shading?: number;
}

/** Options with every default filled in. */
export type ResolvedSceneOptions = Required<SceneOptions>;

/** One labelled object. Indices of `Scene.objects` are paint order: later objects occlude earlier ones. */
export interface ShapeObject {
  /** 1-based category id (`SHAPE_CLASSES[categoryId - 1]`). */
  categoryId: number;
  name: ShapeClass;
  /** Tight box of the visible mask, COCO `[x, y, w, h]` in integer pixels (see the file comment). */
  bbox: [number, number, number, number];
  /** Visible mask pixels. */
  area: number;
  /** The visible mask inside `bbox`: `h * w` bytes, row-major, 1 = object pixel. */
  mask: Uint8Array;
  /** Analytic area of the whole shape (before occlusion and truncation). */
  fullArea: number;
  /** `area / fullArea`. */
  visibleFraction: number;
  /** Whether the shape extends past the image border. */
  truncated: boolean;
  /** Centre `[x, y]` in continuous pixel coordinates. */
  center: [number, number];
  /** Twice the distance from `center` to the farthest point of the shape, pixels. */
  size: number;
  /** Rotation in radians (0 for circles). */
  rotation: number;
  /**
   * The exact outline as a simple polygon `[x0, y0, x1, y1, ...]` in continuous pixel coordinates (empty for
   * circles: the circle of diameter `size` around `center`). A pixel is in the object's full mask when its
   * centre lies inside.
   */
  polygon: number[];
  /** Base fill colour (the shading varies it across the object). */
  color: [number, number, number];
}

export interface Scene {
  width: number;
  height: number;
  /** `height * width * 3` RGB bytes, row-major (HWC). */
  rgb: Uint8Array;
  objects: ShapeObject[];
  /** `height * width`: 0 = background, else the category id of the object owning the pixel. */
  semantic: Uint8Array;
  /** `height * width`: 0 = background, else 1 + the index in `objects` of the object owning the pixel. */
  instance: Uint16Array;
  /** The seed, when the scene was generated from one. */
  seed?: number;
}

function optError(name: string, expected: string, got: unknown): Error {
  return new Error(`generateScene: options.${name} must be ${expected}, got ${JSON.stringify(got)}`);
}

/** Fills in defaults and checks every option; errors name the option, what was expected and what came. */
export function resolveSceneOptions(options: SceneOptions = {}): ResolvedSceneOptions {
  if (options === null || typeof options !== 'object') throw optError('', 'an object', options);
  const int = (name: keyof SceneOptions, v: unknown, min: number, max: number): number => {
    if (!(typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max)) {
      throw optError(name, `an integer in [${min}, ${max}]`, v);
    }
    return v;
  };
  const num = (name: keyof SceneOptions, v: unknown, min: number, max: number): number => {
    if (!(typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max)) {
      throw optError(name, `a number in [${min}, ${max}]`, v);
    }
    return v;
  };
  const bool = (name: keyof SceneOptions, v: unknown): boolean => {
    if (typeof v !== 'boolean') throw optError(name, 'true or false', v);
    return v;
  };
  const width = int('width', options.width ?? 320, 1, 16384);
  const height = int('height', options.height ?? 320, 1, 16384);
  const minObjects = int('minObjects', options.minObjects ?? 1, 0, 10000);
  const maxObjects = int('maxObjects', options.maxObjects ?? Math.max(8, minObjects), minObjects, 10000);
  const side = Math.min(width, height);
  const minSize = num('minSize', options.minSize ?? 8, 1e-3, 1e6);
  const maxSize = num('maxSize', options.maxSize ?? Math.max(minSize, 0.6 * side), minSize, 1e6);
  const classes = options.classes ?? SHAPE_CLASSES;
  if (
    !Array.isArray(classes) ||
    classes.length === 0 ||
    !classes.every((c) => (SHAPE_CLASSES as readonly string[]).includes(c))
  ) {
    throw optError('classes', `a non-empty list of ${SHAPE_CLASSES.join(', ')}`, classes);
  }
  return {
    width,
    height,
    minObjects,
    maxObjects,
    minSize,
    maxSize,
    classes: [...classes],
    minVisibleFraction: num('minVisibleFraction', options.minVisibleFraction ?? 0.4, 0, 1),
    minVisiblePixels: int('minVisiblePixels', options.minVisiblePixels ?? 12, 1, 1e9),
    allowTruncation: bool('allowTruncation', options.allowTruncation ?? true),
    minContrast: num('minContrast', options.minContrast ?? 60, 0, 442),
    noise: num('noise', options.noise ?? 8, 0, 128),
    shading: num('shading', options.shading ?? 30, 0, 255),
  };
}

/**
 * `v` limited to [lo, hi]. Used in the per-pixel loops instead of Math.min / Math.max, which are 10-100x
 * slower inside jest's VM (tests generate scenes); V8 inlines this.
 */
function clamp(v: number, lo: number, hi: number): number {
  // biome-ignore lint/complexity/useMathMinMax: deliberately no Math.* (see above)
  return v < lo ? lo : v > hi ? hi : v;
}

// ---------------------------------------------------------------------------------------------------------
// Colours

type Rgb = [number, number, number];

function hsvToRgb(h: number, s: number, v: number): Rgb {
  const hh = ((h % 1) + 1) % 1;
  const i = Math.floor(hh * 6);
  const f = hh * 6 - i;
  const p = v * (1 - s);
  const q = v * (1 - f * s);
  const t = v * (1 - (1 - f) * s);
  const rgb: Rgb = [[v, q, p, p, t, v][i], [t, v, v, q, p, p][i], [p, p, t, v, v, q][i]];
  return [rgb[0] * 255, rgb[1] * 255, rgb[2] * 255];
}

/** A muted background colour: low saturation, mid values. */
function mutedColor(rng: Rng, hue?: number, value?: number): Rgb {
  const h = hue ?? rng.next();
  const v = value ?? rng.uniform(0.22, 0.85);
  return hsvToRgb(h, rng.uniform(0.04, 0.45), Math.min(0.95, Math.max(0.08, v)));
}

/** A second muted colour near the first one (related hue, moderately different value). */
function pairedColor(rng: Rng, base: Rgb): Rgb {
  const lum = (0.299 * base[0] + 0.587 * base[1] + 0.114 * base[2]) / 255;
  const dv = rng.uniform(0.05, 0.32) * (lum > 0.5 ? -1 : 1) * (rng.chance(0.2) ? -1 : 1);
  return mutedColor(rng, rng.next(), lum + dv);
}

// ---------------------------------------------------------------------------------------------------------
// Background: one or two layers of a scalar field t in [0, 1] mapped between two muted colours.

type FieldKind = 'gradient' | 'stripes' | 'checker' | 'noise';
const FIELD_KINDS: readonly FieldKind[] = ['gradient', 'stripes', 'checker', 'noise'];

function gradientField(rng: Rng, w: number, h: number, t: Float32Array): void {
  if (rng.chance(0.3)) {
    // radial: squared distance falloff (no square roots per pixel)
    const cx = rng.uniform(-0.2, 1.2) * w;
    const cy = rng.uniform(-0.2, 1.2) * h;
    const r = rng.uniform(0.4, 1.3) * Math.max(w, h);
    const inv = 1 / (r * r);
    for (let y = 0; y < h; y++) {
      const dy = y + 0.5 - cy;
      for (let x = 0; x < w; x++) {
        const dx = x + 0.5 - cx;
        const v = (dx * dx + dy * dy) * inv;
        t[y * w + x] = clamp(v, 0, 1);
      }
    }
    return;
  }
  const a = rng.uniform(0, 2 * Math.PI);
  const c = Math.cos(a);
  const s = Math.sin(a);
  const corners = [0, w * c, h * s, w * c + h * s];
  const lo = Math.min(...corners);
  const span = Math.max(...corners) - lo || 1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) t[y * w + x] = ((x + 0.5) * c + (y + 0.5) * s - lo) / span;
  }
}

function stripesField(rng: Rng, w: number, h: number, t: Float32Array): void {
  const period = rng.logUniform(5, 48);
  const a = rng.chance(0.35)
    ? rng.pick([0, 0.5 * Math.PI, 0.25 * Math.PI, 0.75 * Math.PI])
    : rng.uniform(0, Math.PI);
  const c = Math.cos(a) / period;
  const s = Math.sin(a) / period;
  // keep the phase positive so `v | 0` is a floor
  const off = rng.next() + Math.ceil((w + h) / period) + 1;
  const sharp = rng.uniform(1, 8);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = x * c + y * s + off;
      const f = v - (v | 0);
      const tri = f < 0.5 ? 2 * f : 2 - 2 * f;
      const k = (tri - 0.5) * sharp + 0.5;
      t[y * w + x] = clamp(k, 0, 1);
    }
  }
}

function checkerField(rng: Rng, w: number, h: number, t: Float32Array): void {
  const cell = rng.logUniform(6, 64);
  const a = rng.chance(0.5) ? 0 : rng.uniform(0, 0.5 * Math.PI);
  const c = Math.cos(a) / cell;
  const s = Math.sin(a) / cell;
  const off = Math.ceil((w + h) / cell) + 2;
  const ox = rng.next() + off;
  const oy = rng.next() + off;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const u = x * c + y * s + ox;
      const v = y * c - x * s + oy;
      t[y * w + x] = ((u | 0) + (v | 0)) & 1;
    }
  }
}

/** Value noise: random values on a lattice, smoothstep-interpolated, 1 to 3 octaves. */
function noiseField(rng: Rng, w: number, h: number, t: Float32Array): void {
  t.fill(0);
  const octaves = rng.int(1, 3);
  let cell = rng.logUniform(10, 100);
  let amp = 1;
  let total = 0;
  const ix = new Int32Array(w);
  const fx = new Float32Array(w);
  for (let o = 0; o < octaves; o++) {
    const gw = Math.ceil(w / cell) + 2;
    const gh = Math.ceil(h / cell) + 2;
    const lattice = new Float32Array(gw * gh);
    for (let i = 0; i < lattice.length; i++) lattice[i] = rng.next();
    const sx = rng.next();
    const sy = rng.next();
    for (let x = 0; x < w; x++) {
      const g = (x + 0.5) / cell + sx;
      const i = g | 0;
      const f = g - i;
      ix[x] = i;
      fx[x] = f * f * (3 - 2 * f);
    }
    for (let y = 0; y < h; y++) {
      const g = (y + 0.5) / cell + sy;
      const j = g | 0;
      let fy = g - j;
      fy = fy * fy * (3 - 2 * fy);
      const r0 = j * gw;
      const r1 = r0 + gw;
      for (let x = 0; x < w; x++) {
        const i = ix[x];
        const f = fx[x];
        const top = lattice[r0 + i] + (lattice[r0 + i + 1] - lattice[r0 + i]) * f;
        const bot = lattice[r1 + i] + (lattice[r1 + i + 1] - lattice[r1 + i]) * f;
        t[y * w + x] += amp * (top + (bot - top) * fy);
      }
    }
    total += amp;
    amp *= 0.5;
    cell = Math.max(3, cell * 0.5);
  }
  // stretch the (centre-heavy) sum to use the full colour range
  const inv = 1 / total;
  for (let i = 0; i < w * h; i++) {
    const v = (t[i] * inv - 0.5) * 1.8 + 0.5;
    t[i] = clamp(v, 0, 1);
  }
}

function renderField(kind: FieldKind, rng: Rng, w: number, h: number, t: Float32Array): void {
  if (kind === 'gradient') gradientField(rng, w, h, t);
  else if (kind === 'stripes') stripesField(rng, w, h, t);
  else if (kind === 'checker') checkerField(rng, w, h, t);
  else noiseField(rng, w, h, t);
}

/** Paints the background into `canvas` (float RGB, HWC). */
function renderBackground(rng: Rng, w: number, h: number, canvas: Float32Array): void {
  const n = w * h;
  const t = new Float32Array(n);
  const kind = rng.pick(FIELD_KINDS);
  renderField(kind, rng, w, h, t);
  const c0 = mutedColor(rng);
  const c1 = pairedColor(rng, c0);
  const d0 = c1[0] - c0[0];
  const d1 = c1[1] - c0[1];
  const d2 = c1[2] - c0[2];
  for (let i = 0; i < n; i++) {
    const v = t[i];
    canvas[3 * i] = c0[0] + d0 * v;
    canvas[3 * i + 1] = c0[1] + d1 * v;
    canvas[3 * i + 2] = c0[2] + d2 * v;
  }
  if (rng.chance(0.6)) {
    const second = rng.pick(FIELD_KINDS.filter((k) => k !== kind));
    renderField(second, rng, w, h, t);
    const weight = rng.uniform(0.2, 0.55);
    const e0 = mutedColor(rng);
    const e1 = pairedColor(rng, e0);
    for (let i = 0; i < n; i++) {
      const v = t[i] * weight;
      const k = 1 - weight;
      canvas[3 * i] = canvas[3 * i] * k + e0[0] * weight + (e1[0] - e0[0]) * v;
      canvas[3 * i + 1] = canvas[3 * i + 1] * k + e0[1] * weight + (e1[1] - e0[1]) * v;
      canvas[3 * i + 2] = canvas[3 * i + 2] * k + e0[2] * weight + (e1[2] - e0[2]) * v;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Shapes

interface ShapeGeom {
  name: ShapeClass;
  cx: number;
  cy: number;
  size: number;
  rotation: number;
  /** Circle radius (circles only). */
  radius: number;
  /** Half-planes of all convex parts, 3 numbers each (a, b, c); `partEnds[k]` = end offset of part k. */
  planes: Float64Array;
  partEnds: Int32Array;
  /** Outline polygon `[x0, y0, x1, y1, ...]` (empty for circles). */
  outline: number[];
  /** Analytic extent. */
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
  area: number;
}

/**
 * Half-planes (inside: a*x + b*y + c >= 0, unit normal) of a convex polygon given as [x0, y0, x1, y1, ...],
 * appended to `out`: one per edge (edge i runs from vertex i to vertex i + 1), its offset raised by
 * `grow[i]` when given, then one bevel plane for every vertex sharper than 100 degrees unless `noBevel[i]`.
 *
 * A bevel plane passes through its vertex, perpendicular to the vertex's bisector. It is a supporting line of
 * the polygon, so the inside is unchanged; and for a point inside, its value is at least the smaller of the
 * two edge values there, so the minimum, hence the mask, is unchanged too. It only fixes the coverage
 * outside a sharp corner, where the minimum of the edge distances falls off much more slowly than the true
 * distance (beyond a 36-degree star tip by sin 18 deg = 0.31 px per px, which drew faint spikes).
 */
function convexPlanes(
  v: readonly number[],
  out: number[],
  grow?: readonly number[],
  noBevel?: readonly boolean[],
) {
  const n = v.length / 2;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += v[2 * i] / n;
    my += v[2 * i + 1] / n;
  }
  const normals: number[] = [];
  for (let i = 0; i < n; i++) {
    const x0 = v[2 * i];
    const y0 = v[2 * i + 1];
    const x1 = v[(2 * i + 2) % v.length];
    const y1 = v[(2 * i + 3) % v.length];
    const len = Math.hypot(x1 - x0, y1 - y0);
    let a = -(y1 - y0) / len;
    let b = (x1 - x0) / len;
    let c = -(a * x0 + b * y0);
    if (a * mx + b * my + c < 0) {
      a = -a;
      b = -b;
      c = -c;
    }
    normals.push(a, b);
    out.push(a, b, c + (grow?.[i] ?? 0));
  }
  for (let i = 0; i < n; i++) {
    if (noBevel?.[i]) continue;
    // vertex i joins edge i - 1 and edge i; the angle between their inward normals is 180 - the vertex angle
    const j = (i + n - 1) % n;
    const sa = normals[2 * i] + normals[2 * j];
    const sb = normals[2 * i + 1] + normals[2 * j + 1];
    const dot = normals[2 * i] * normals[2 * j] + normals[2 * i + 1] * normals[2 * j + 1];
    if (dot >= Math.cos((80 * Math.PI) / 180)) continue; // vertex angle >= 100 degrees: no bevel
    const len = Math.hypot(sa, sb);
    const a = sa / len;
    const b = sb / len;
    out.push(a, b, -(a * v[2 * i] + b * v[2 * i + 1]));
  }
}

function shoelace(v: readonly number[]): number {
  let s = 0;
  const n = v.length / 2;
  for (let i = 0; i < n; i++) {
    const j = (i + 1) % n;
    s += v[2 * i] * v[2 * j + 1] - v[2 * j] * v[2 * i + 1];
  }
  return Math.abs(s) / 2;
}

/**
 * Builds a shape of `name` centred at (cx, cy) with circumscribed diameter `size` and rotation `rot`, with
 * class-specific random proportions drawn from `rng`.
 */
function makeShape(rng: Rng, name: ShapeClass, cx: number, cy: number, size: number, rot: number): ShapeGeom {
  const R = size / 2;
  if (name === 'circle') {
    return {
      name,
      cx,
      cy,
      size,
      rotation: 0,
      radius: R,
      planes: new Float64Array(0),
      partEnds: new Int32Array(0),
      outline: [],
      minX: cx - R,
      minY: cy - R,
      maxX: cx + R,
      maxY: cy + R,
      area: Math.PI * R * R,
    };
  }
  const cos = Math.cos(rot);
  const sin = Math.sin(rot);
  // local (lx, ly) -> image coordinates
  const place = (local: readonly number[]): number[] => {
    const out: number[] = [];
    for (let i = 0; i < local.length; i += 2) {
      out.push(cx + local[i] * cos - local[i + 1] * sin, cy + local[i] * sin + local[i + 1] * cos);
    }
    return out;
  };
  const ring = (count: number, radius: number, start: number, sx = 1, sy = 1): number[] => {
    const out: number[] = [];
    for (let k = 0; k < count; k++) {
      const a = start + (2 * Math.PI * k) / count;
      out.push(radius * Math.cos(a) * sx, radius * Math.sin(a) * sy);
    }
    return out;
  };
  const parts: number[][] = [];
  let outline: number[];
  let area: number;
  let starInner = 0;
  if (name === 'square' || name === 'triangle' || name === 'hexagon') {
    let local: number[];
    if (name === 'square') {
      const stretch = Math.sqrt(rng.uniform(0.88, 1.12));
      const half = R / Math.SQRT2;
      const hx = half * stretch;
      const hy = half / stretch;
      local = [-hx, -hy, hx, -hy, hx, hy, -hx, hy];
    } else if (name === 'triangle') {
      const stretch = Math.sqrt(rng.uniform(0.7, 1.4));
      local = ring(3, R, -Math.PI / 2, stretch, 1 / stretch);
    } else {
      const stretch = Math.sqrt(rng.uniform(0.85, 1.15));
      local = ring(6, R, 0, stretch, 1 / stretch);
    }
    // the stretch moved vertices off the circle of radius R: scale back so the farthest one is on it
    let far = 0;
    for (let i = 0; i < local.length; i += 2) far = Math.max(far, Math.hypot(local[i], local[i + 1]));
    outline = place(local.map((v) => (v * R) / far));
    parts.push(outline);
    area = shoelace(outline);
  } else if (name === 'star') {
    const inner = rng.uniform(0.38, 0.55) * R;
    starInner = inner;
    const outer = ring(5, R, -Math.PI / 2);
    const inn = ring(5, inner, -Math.PI / 2 + Math.PI / 5);
    const local: number[] = [];
    for (let k = 0; k < 5; k++) local.push(outer[2 * k], outer[2 * k + 1], inn[2 * k], inn[2 * k + 1]);
    outline = place(local);
    // kite k: centre, inner k-1, outer k, inner k (convex: every angle is below 180 degrees)
    const pts = outline;
    for (let k = 0; k < 5; k++) {
      const o = 4 * k;
      const prev = (4 * k - 2 + 20) % 20;
      parts.push([cx, cy, pts[prev], pts[prev + 1], pts[o], pts[o + 1], pts[o + 2], pts[o + 3]]);
    }
    area = shoelace(outline);
  } else {
    // cross (plus sign): two bars of width 2w through the centre; arm ends on the circumscribed circle
    const t = rng.uniform(0.2, 0.34);
    const L = R / Math.sqrt(1 + t * t);
    const w = t * L;
    const bar1 = place([-L, -w, L, -w, L, w, -L, w]);
    const bar2 = place([-w, -L, w, -L, w, L, -w, L]);
    parts.push(bar1, bar2);
    outline = place([L, -w, L, w, w, w, w, L, -w, L, -w, w, -L, w, -L, -w, -w, -w, -w, -L, w, -L, w, -w]);
    area = shoelace(outline);
  }
  const planes: number[] = [];
  const ends: number[] = [];
  // The star's kites meet along the seams centre - inner vertex. A pixel centre on a seam is 0 from both kites,
  // so its coverage would be 0.5 (a visible line) although it lies inside the star. Moving the seam planes of
  // every kite outward by `grow` makes neighbouring kites overlap; each grown kite stays inside the star (near
  // an inner vertex the overlap lies inside the next kite, because the star's angle there exceeds 180 degrees;
  // near the centre the apex moves back by grow / sin(36 deg) < the inner pentagon's inradius), so the union,
  // hence the mask, is still exactly the star. Kite vertices are [centre, inner k-1, tip k, inner k]: only
  // the tip gets a bevel (one at the centre would cut the grown overlap).
  const grow = name === 'star' ? Math.min(0.5, 0.5 * starInner * Math.cos(Math.PI / 5)) : 0;
  for (const p of parts) {
    if (name === 'star') convexPlanes(p, planes, [grow, 0, 0, grow], [true, true, false, true]);
    else convexPlanes(p, planes);
    ends.push(planes.length);
  }
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (let i = 0; i < outline.length; i += 2) {
    minX = Math.min(minX, outline[i]);
    maxX = Math.max(maxX, outline[i]);
    minY = Math.min(minY, outline[i + 1]);
    maxY = Math.max(maxY, outline[i + 1]);
  }
  return {
    name,
    cx,
    cy,
    size,
    rotation: rot,
    radius: 0,
    planes: Float64Array.from(planes),
    partEnds: Int32Array.from(ends),
    outline,
    minX,
    minY,
    maxX,
    maxY,
    area,
  };
}

interface Region {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** The pixel region (clipped to the image) that can have non-zero coverage. */
function regionOf(g: ShapeGeom, w: number, h: number): Region {
  return {
    x0: Math.max(0, Math.floor(g.minX) - 1),
    y0: Math.max(0, Math.floor(g.minY) - 1),
    x1: Math.min(w, Math.ceil(g.maxX) + 1),
    y1: Math.min(h, Math.ceil(g.maxY) + 1),
  };
}

/**
 * Coverage of every pixel of `r` (row-major over the region) into `alpha`; returns the number of mask pixels
 * (alpha >= 0.5).
 */
function rasterize(g: ShapeGeom, r: Region, alpha: Float32Array): number {
  const rw = r.x1 - r.x0;
  let count = 0;
  if (g.name === 'circle') {
    const rad = g.radius;
    const inner2 = rad > 0.5 ? (rad - 0.5) * (rad - 0.5) : -1;
    const outer2 = (rad + 0.5) * (rad + 0.5);
    for (let y = r.y0; y < r.y1; y++) {
      const dy = y + 0.5 - g.cy;
      const dy2 = dy * dy;
      const row = (y - r.y0) * rw - r.x0;
      for (let x = r.x0; x < r.x1; x++) {
        const dx = x + 0.5 - g.cx;
        const d2 = dx * dx + dy2;
        let a: number;
        if (d2 <= inner2) a = 1;
        else if (d2 >= outer2) a = 0;
        else {
          a = rad + 0.5 - Math.sqrt(d2);
          a = clamp(a, 0, 1);
        }
        alpha[row + x] = a;
        if (a >= 0.5) count++;
      }
    }
    return count;
  }
  const pl = g.planes;
  const ends = g.partEnds;
  const nParts = ends.length;
  for (let y = r.y0; y < r.y1; y++) {
    const py = y + 0.5;
    const row = (y - r.y0) * rw - r.x0;
    for (let x = r.x0; x < r.x1; x++) {
      const px = x + 0.5;
      let best = -1e30;
      let k = 0;
      for (let p = 0; p < nParts; p++) {
        const end = ends[p];
        let m = 1e30;
        for (; k < end; k += 3) {
          const v = pl[k] * px + pl[k + 1] * py + pl[k + 2];
          if (v < m) m = v;
        }
        if (m > best) best = m;
      }
      const a = best >= 0.5 ? 1 : best <= -0.5 ? 0 : best + 0.5;
      alpha[row + x] = a;
      if (a >= 0.5) count++;
    }
  }
  return count;
}

// ---------------------------------------------------------------------------------------------------------
// Scene

interface Placed {
  geom: ShapeGeom;
  region: Region;
  color: Rgb;
  visible: number;
  need: number;
}

function randomGeom(rng: Rng, o: ResolvedSceneOptions): ShapeGeom {
  const name = rng.pick(o.classes);
  const size = rng.logUniform(o.minSize, o.maxSize);
  const R = size / 2;
  let cx: number;
  let cy: number;
  if (o.allowTruncation) {
    cx = rng.uniform(0, o.width);
    cy = rng.uniform(0, o.height);
  } else {
    cx = R * 2 >= o.width ? o.width / 2 : rng.uniform(R, o.width - R);
    cy = R * 2 >= o.height ? o.height / 2 : rng.uniform(R, o.height - R);
  }
  const rot = name === 'circle' ? 0 : rng.uniform(0, 2 * Math.PI);
  return makeShape(rng, name, cx, cy, size, rot);
}

/** Samples the current canvas on a grid over the region and picks a fill colour that stands out from it. */
function chooseColor(rng: Rng, canvas: Float32Array, w: number, r: Region, minContrast: number): Rgb {
  const samples: number[] = [];
  const steps = 5;
  for (let j = 0; j < steps; j++) {
    const y = Math.min(r.y1 - 1, Math.floor(r.y0 + ((j + 0.5) * (r.y1 - r.y0)) / steps));
    for (let i = 0; i < steps; i++) {
      const x = Math.min(r.x1 - 1, Math.floor(r.x0 + ((i + 0.5) * (r.x1 - r.x0)) / steps));
      const p = 3 * (y * w + x);
      samples.push(canvas[p], canvas[p + 1], canvas[p + 2]);
    }
  }
  const n = samples.length / 3;
  const thr2 = minContrast * minContrast;
  let best: Rgb = [0, 0, 0];
  let bestScore = -1;
  for (let attempt = 0; attempt < 24; attempt++) {
    const c =
      attempt < 16
        ? hsvToRgb(rng.next(), rng.uniform(0.2, 1), rng.uniform(0.15, 1))
        : hsvToRgb(
            rng.next(),
            rng.uniform(0.5, 1),
            rng.chance(0.5) ? rng.uniform(0.03, 0.2) : rng.uniform(0.9, 1),
          );
    let ok = 0;
    let sum = 0;
    for (let k = 0; k < n; k++) {
      const d0 = c[0] - samples[3 * k];
      const d1 = c[1] - samples[3 * k + 1];
      const d2 = c[2] - samples[3 * k + 2];
      const d = d0 * d0 + d1 * d1 + d2 * d2;
      if (d >= thr2) ok++;
      sum += Math.sqrt(d);
    }
    const score = ok / n + sum / n / 1e4;
    if (score > bestScore) {
      bestScore = score;
      best = c;
    }
    if (ok >= 0.9 * n) break;
  }
  return [Math.round(best[0]), Math.round(best[1]), Math.round(best[2])];
}

/** Blends the object into the canvas and claims its mask pixels in the instance map. */
function paint(
  p: Placed,
  id: number,
  alpha: Float32Array,
  canvas: Float32Array,
  instance: Uint16Array,
  w: number,
  shadeX: number,
  shadeY: number,
): void {
  const { region: r, color, geom } = p;
  const rw = r.x1 - r.x0;
  for (let y = r.y0; y < r.y1; y++) {
    const sy = (y + 0.5 - geom.cy) * shadeY;
    for (let x = r.x0; x < r.x1; x++) {
      const a = alpha[(y - r.y0) * rw + (x - r.x0)];
      if (a <= 0) continue;
      const s = (x + 0.5 - geom.cx) * shadeX + sy;
      const q = y * w + x;
      const o = 3 * q;
      canvas[o] += (color[0] + s - canvas[o]) * a;
      canvas[o + 1] += (color[1] + s - canvas[o + 1]) * a;
      canvas[o + 2] += (color[2] + s - canvas[o + 2]) * a;
      if (a >= 0.5) instance[q] = id;
    }
  }
}

/**
 * Generates one scene from a seed (any safe integer) or an `Rng` (which is advanced). The same seed and
 * options always give the same pixels and labels.
 */
export function generateScene(seedOrRng: number | Rng, options: SceneOptions = {}): Scene {
  const o = resolveSceneOptions(options);
  let rng: Rng;
  if (seedOrRng instanceof Rng) rng = seedOrRng;
  else if (typeof seedOrRng === 'number') rng = createRng(seedOrRng);
  else {
    throw new Error(
      `generateScene: seedOrRng must be a safe integer seed or an Rng from createRng, got ${typeof seedOrRng}`,
    );
  }
  const { width: w, height: h } = o;
  const canvas = new Float32Array(w * h * 3);
  renderBackground(rng, w, h, canvas);
  const instance = new Uint16Array(w * h);
  const placed: Placed[] = [];
  const target = rng.int(o.minObjects, o.maxObjects);
  const maxAttempts = 25 * target;
  let alpha = new Float32Array(1024);
  let lost = new Int32Array(16);
  for (let attempt = 0; attempt < maxAttempts && placed.length < target; attempt++) {
    const geom = randomGeom(rng, o);
    const region = regionOf(geom, w, h);
    const rw = region.x1 - region.x0;
    const rh = region.y1 - region.y0;
    if (rw <= 0 || rh <= 0) continue;
    if (alpha.length < rw * rh) alpha = new Float32Array(rw * rh * 2);
    const count = rasterize(geom, region, alpha);
    const need = Math.max(o.minVisiblePixels, o.minVisibleFraction * geom.area);
    if (count < need) continue;
    // what the earlier objects would lose
    if (lost.length < placed.length + 1) lost = new Int32Array(2 * placed.length + 2);
    lost.fill(0, 0, placed.length + 1);
    for (let y = region.y0; y < region.y1; y++) {
      const row = (y - region.y0) * rw - region.x0;
      for (let x = region.x0; x < region.x1; x++) {
        if (alpha[row + x] >= 0.5) lost[instance[y * w + x]]++;
      }
    }
    let ok = true;
    for (let k = 0; k < placed.length && ok; k++) {
      const lk = lost[k + 1];
      if (lk > 0 && placed[k].visible - lk < placed[k].need) ok = false;
    }
    if (!ok) continue;
    for (let k = 0; k < placed.length; k++) placed[k].visible -= lost[k + 1];
    const color = chooseColor(rng, canvas, w, region, o.minContrast);
    const p: Placed = { geom, region, color, visible: count, need };
    // linear shading: at most `shading` grey levels from one side of the object to the other
    const amp = rng.uniform(0, o.shading) / Math.max(1, geom.size);
    const dir = rng.uniform(0, 2 * Math.PI);
    placed.push(p);
    paint(p, placed.length, alpha, canvas, instance, w, amp * Math.cos(dir), amp * Math.sin(dir));
  }

  // noise and quantisation: per-channel uniform noise from a local xorshift32 stream (seeded from rng; plain
  // integer ops on a local, cheaper than a method call per pixel), clamped to 0..255 and rounded half up (the
  // + 0.5 below, then the truncation of the Uint8Array store)
  const rgb = new Uint8Array(w * h * 3);
  const amp = rng.uniform(0, o.noise) / 127.5;
  let xs = rng.nextUint32() | 1;
  for (let i = 0, o3 = 0; i < w * h; i++, o3 += 3) {
    xs ^= xs << 13;
    xs ^= xs >>> 17;
    xs ^= xs << 5;
    const v0 = canvas[o3] + ((xs & 255) - 127.5) * amp + 0.5;
    const v1 = canvas[o3 + 1] + (((xs >>> 8) & 255) - 127.5) * amp + 0.5;
    const v2 = canvas[o3 + 2] + (((xs >>> 16) & 255) - 127.5) * amp + 0.5;
    rgb[o3] = clamp(v0, 0, 255);
    rgb[o3 + 1] = clamp(v1, 0, 255);
    rgb[o3 + 2] = clamp(v2, 0, 255);
  }

  // labels from the instance map: boxes, areas and the semantic map in one pass
  const n = placed.length;
  const catOf = new Uint8Array(n + 1);
  placed.forEach((p, k) => {
    catOf[k + 1] = categoryIdOf(p.geom.name);
  });
  const bx0 = new Int32Array(n + 1).fill(w);
  const by0 = new Int32Array(n + 1).fill(h);
  const bx1 = new Int32Array(n + 1).fill(-1);
  const by1 = new Int32Array(n + 1).fill(-1);
  const areas = new Int32Array(n + 1);
  const semantic = new Uint8Array(w * h);
  for (let y = 0, q = 0; y < h; y++) {
    for (let x = 0; x < w; x++, q++) {
      const id = instance[q];
      if (id === 0) continue;
      semantic[q] = catOf[id];
      areas[id]++;
      if (x < bx0[id]) bx0[id] = x;
      if (x > bx1[id]) bx1[id] = x;
      if (y < by0[id]) by0[id] = y;
      by1[id] = y;
    }
  }
  const objects: ShapeObject[] = placed.map((p, k) => {
    const id = k + 1;
    const x0 = bx0[id];
    const y0 = by0[id];
    const bw = bx1[id] - x0 + 1;
    const bh = by1[id] - y0 + 1;
    const mask = new Uint8Array(bw * bh);
    for (let y = 0; y < bh; y++) {
      const row = (y0 + y) * w + x0;
      for (let x = 0; x < bw; x++) if (instance[row + x] === id) mask[y * bw + x] = 1;
    }
    const g = p.geom;
    const area = areas[id];
    return {
      categoryId: catOf[id],
      name: g.name,
      bbox: [x0, y0, bw, bh],
      area,
      mask,
      fullArea: g.area,
      visibleFraction: area / g.area,
      truncated: g.minX < 0 || g.minY < 0 || g.maxX > w || g.maxY > h,
      center: [g.cx, g.cy],
      size: g.size,
      rotation: g.rotation,
      polygon: g.outline,
      color: p.color,
    };
  });
  const scene: Scene = { width: w, height: h, rgb, objects, semantic, instance };
  if (typeof seedOrRng === 'number') scene.seed = seedOrRng;
  return scene;
}

/** An object's visible mask as a full `height * width` plane (1 = object pixel). */
export function objectMask(scene: Scene, index: number): Uint8Array {
  if (!(Number.isInteger(index) && index >= 0 && index < scene.objects.length)) {
    throw new Error(
      `objectMask: index must be an integer in [0, ${scene.objects.length - 1}], got ${String(index)}`,
    );
  }
  const out = new Uint8Array(scene.width * scene.height);
  const id = index + 1;
  for (let i = 0; i < out.length; i++) if (scene.instance[i] === id) out[i] = 1;
  return out;
}

/**
 * Detection targets in the layout effdet's anchor labeler and `target.bbox` use: boxes `[N * 4]` as
 * `y1, x1, y2, x2` in pixels (`y2 = y + h`, `x2 = x + w`), classes `[N]` 1-based category ids.
 */
export function sceneTargets(scene: Scene): { boxes: Float32Array; classes: Int32Array } {
  const n = scene.objects.length;
  const boxes = new Float32Array(4 * n);
  const classes = new Int32Array(n);
  scene.objects.forEach((ob, i) => {
    const [x, y, bw, bh] = ob.bbox;
    boxes.set([y, x, y + bh, x + bw], 4 * i);
    classes[i] = ob.categoryId;
  });
  return { boxes, classes };
}
