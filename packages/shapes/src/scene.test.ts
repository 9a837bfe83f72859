import {
  generateScene,
  objectMask,
  resolveSceneOptions,
  type Scene,
  type SceneOptions,
  SHAPE_CLASSES,
  sceneTargets,
} from './index.js';

/** Even-odd test of a point against a polygon [x0, y0, x1, y1, ...]. */
function insidePolygon(poly: readonly number[], px: number, py: number): boolean {
  let inside = false;
  const n = poly.length / 2;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const xi = poly[2 * i];
    const yi = poly[2 * i + 1];
    const xj = poly[2 * j];
    const yj = poly[2 * j + 1];
    if (yi > py !== yj > py && px < ((xj - xi) * (py - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Distance from a point to the polygon's outline. */
function outlineDistance(poly: readonly number[], px: number, py: number): number {
  let best = Infinity;
  const n = poly.length / 2;
  for (let i = 0; i < n; i++) {
    const ax = poly[2 * i];
    const ay = poly[2 * i + 1];
    const bx = poly[(2 * i + 2) % poly.length];
    const by = poly[(2 * i + 3) % poly.length];
    const dx = bx - ax;
    const dy = by - ay;
    const t = Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)));
    best = Math.min(best, Math.hypot(px - ax - t * dx, py - ay - t * dy));
  }
  return best;
}

/**
 * The instance map computed independently from each object's published outline: the owner of a pixel is the
 * last object whose outline contains the pixel centre. Returns the number of disagreements with the scene
 * that are not within 1e-6 px of an outline (where floating point may decide either way).
 */
function instanceMismatches(scene: Scene): number {
  const { width: w, height: h } = scene;
  const owner = new Uint16Array(w * h);
  scene.objects.forEach((ob, i) => {
    const [cx, cy] = ob.center;
    // every point of the shape is within size / 2 of the centre
    for (let k = 0; k < ob.polygon.length; k += 2) {
      expect(Math.hypot(ob.polygon[k] - cx, ob.polygon[k + 1] - cy)).toBeLessThanOrEqual(ob.size / 2 + 1e-9);
    }
    const R = ob.size / 2 + 1;
    const x0 = Math.max(0, Math.floor(cx - R));
    const x1 = Math.min(w, Math.ceil(cx + R));
    const y0 = Math.max(0, Math.floor(cy - R));
    const y1 = Math.min(h, Math.ceil(cy + R));
    const r2 = (ob.size / 2) ** 2;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const px = x + 0.5;
        const py = y + 0.5;
        const inside =
          ob.name === 'circle' ? (px - cx) ** 2 + (py - cy) ** 2 <= r2 : insidePolygon(ob.polygon, px, py);
        if (inside) owner[y * w + x] = i + 1;
      }
    }
  });
  let bad = 0;
  for (let p = 0; p < w * h; p++) {
    if (owner[p] === scene.instance[p]) continue;
    const px = (p % w) + 0.5;
    const py = Math.floor(p / w) + 0.5;
    const near = scene.objects.some((ob) =>
      ob.name === 'circle'
        ? Math.abs(Math.hypot(px - ob.center[0], py - ob.center[1]) - ob.size / 2) < 1e-6
        : outlineDistance(ob.polygon, px, py) < 1e-6,
    );
    if (!near) bad++;
  }
  return bad;
}

function tightBox(scene: Scene, id: number): [number, number, number, number, number] {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -1;
  let y1 = -1;
  let n = 0;
  for (let y = 0; y < scene.height; y++) {
    for (let x = 0; x < scene.width; x++) {
      if (scene.instance[y * scene.width + x] !== id) continue;
      n++;
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
  }
  return [x0, y0, x1 - x0 + 1, y1 - y0 + 1, n];
}

describe('generateScene', () => {
  it('is deterministic in the seed and never calls Math.random', () => {
    const spy = jest.spyOn(Math, 'random').mockImplementation(() => {
      throw new Error('Math.random was called');
    });
    try {
      const a = generateScene(11, { width: 96, height: 80 });
      const b = generateScene(11, { width: 96, height: 80 });
      const c = generateScene(12, { width: 96, height: 80 });
      expect(Buffer.compare(Buffer.from(a.rgb), Buffer.from(b.rgb))).toBe(0);
      expect(a.objects).toEqual(b.objects);
      expect(Buffer.compare(Buffer.from(a.rgb), Buffer.from(c.rgb))).not.toBe(0);
      expect(a.seed).toBe(11);
      expect(a.rgb.length).toBe(96 * 80 * 3);
      expect(a.semantic.length).toBe(96 * 80);
      expect(a.instance).toBeInstanceOf(Uint16Array);
    } finally {
      spy.mockRestore();
    }
  });

  it('labels are exact: bbox/area/mask are the tight box, count and crop of the visible mask', () => {
    let objects = 0;
    let bad = 0;
    for (let s = 0; s < 40; s++) {
      const scene = generateScene(s, { width: 128, height: 112, minObjects: 3, maxObjects: 10 });
      scene.objects.forEach((ob, i) => {
        const [x, y, w, h, n] = tightBox(scene, i + 1);
        expect(ob.bbox).toEqual([x, y, w, h]);
        expect(ob.area).toBe(n);
        expect(ob.mask.length).toBe(w * h);
        let inCrop = 0;
        for (let yy = 0; yy < h; yy++) {
          for (let xx = 0; xx < w; xx++) {
            const m = ob.mask[yy * w + xx];
            if (m !== (scene.instance[(y + yy) * scene.width + x + xx] === i + 1 ? 1 : 0)) bad++;
            inCrop += m;
          }
        }
        expect(inCrop).toBe(n);
        expect(ob.categoryId).toBe(SHAPE_CLASSES.indexOf(ob.name) + 1);
        // the visibility rule
        expect(ob.area).toBeGreaterThanOrEqual(12);
        expect(ob.area).toBeGreaterThanOrEqual(0.4 * ob.fullArea);
        expect(ob.visibleFraction).toBeCloseTo(ob.area / ob.fullArea, 12);
        objects++;
      });
      // semantic = category of the owner
      for (let p = 0; p < scene.width * scene.height; p++) {
        const id = scene.instance[p];
        if (scene.semantic[p] !== (id === 0 ? 0 : scene.objects[id - 1].categoryId)) bad++;
      }
    }
    expect(bad).toBe(0);
    expect(objects).toBeGreaterThan(150);
  });

  it('masks are exactly the pixels whose centre lies inside the published outline (top-most wins)', () => {
    let checked = 0;
    for (let s = 100; s < 130; s++) {
      const scene = generateScene(s, { width: 160, height: 144, minObjects: 4, maxObjects: 9 });
      expect(instanceMismatches(scene)).toBe(0);
      checked += scene.objects.length;
    }
    // tiny shapes too (sizes 3..12 px), every class
    for (let s = 0; s < 20; s++) {
      const scene = generateScene(s, { width: 48, height: 48, minSize: 3, maxSize: 12, minVisiblePixels: 2 });
      expect(instanceMismatches(scene)).toBe(0);
      checked += scene.objects.length;
    }
    expect(checked).toBeGreaterThan(150);
  });

  it('paints the labelled colour inside each mask (shading and noise only)', () => {
    const opts: SceneOptions = { width: 128, height: 128, minObjects: 6, maxObjects: 6 };
    let worst = 0;
    let interiorPixels = 0;
    for (let s = 0; s < 10; s++) {
      const scene = generateScene(s, opts);
      const { width: w, instance, rgb } = scene;
      for (let y = 1; y < scene.height - 1; y++) {
        for (let x = 1; x < w - 1; x++) {
          const p = y * w + x;
          const id = instance[p];
          if (id === 0) continue;
          // interior pixels: all 8 neighbours owned by the same object, so coverage is 1
          let interior = true;
          for (let dy = -1; dy <= 1 && interior; dy++)
            for (let dx = -1; dx <= 1; dx++) if (instance[p + dy * w + dx] !== id) interior = false;
          if (!interior) continue;
          interiorPixels++;
          const c = scene.objects[id - 1].color;
          for (let k = 0; k < 3; k++) {
            // clamping at 0 / 255 only pulls a value towards the range
            const want = Math.min(255, Math.max(0, c[k]));
            const d = rgb[3 * p + k] - want;
            const ad = d < 0 ? -d : d;
            if (ad > worst) worst = ad;
          }
        }
      }
    }
    const o = resolveSceneOptions(opts);
    expect(interiorPixels).toBeGreaterThan(5000);
    expect(worst).toBeLessThanOrEqual(o.shading / 2 + o.noise + 1);
    expect(worst).toBeGreaterThan(o.noise / 2); // shading and noise are there
  });

  it('rejected candidates leave no trace: every changed pixel is on or next to a labelled mask', () => {
    // With noise 0 the background of a seed does not depend on the objects (it is drawn first).
    let changed = 0;
    let stray = 0;
    for (let s = 0; s < 15; s++) {
      const opts: SceneOptions = {
        width: 96,
        height: 96,
        noise: 0,
        minObjects: 9,
        maxObjects: 9,
        maxSize: 80,
      };
      const scene = generateScene(s, opts);
      const bg = generateScene(s, { ...opts, minObjects: 0, maxObjects: 0 });
      expect(bg.objects.length).toBe(0);
      const { width: w, height: h } = scene;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const p = y * w + x;
          if (
            scene.rgb[3 * p] === bg.rgb[3 * p] &&
            scene.rgb[3 * p + 1] === bg.rgb[3 * p + 1] &&
            scene.rgb[3 * p + 2] === bg.rgb[3 * p + 2]
          )
            continue;
          changed++;
          let nearMask = false;
          for (let dy = -2; dy <= 2 && !nearMask; dy++) {
            for (let dx = -2; dx <= 2; dx++) {
              const yy = y + dy;
              const xx = x + dx;
              if (yy >= 0 && yy < h && xx >= 0 && xx < w && scene.instance[yy * w + xx] !== 0)
                nearMask = true;
            }
          }
          if (!nearMask) stray++;
        }
      }
    }
    expect(changed).toBeGreaterThan(10000);
    expect(stray).toBe(0);
  });

  it('draws every class, sizes from tiny to large (log-uniform), counts within [minObjects, maxObjects]', () => {
    const counts = new Map<string, number>();
    const buckets = { tiny: 0, small: 0, medium: 0, large: 0 };
    let images = 0;
    let objects = 0;
    let truncated = 0;
    let occluded = 0;
    const sizes: number[] = [];
    for (let s = 0; s < 150; s++) {
      const scene = generateScene(1000 + s, { width: 256, height: 256, minObjects: 2, maxObjects: 7 });
      images++;
      expect(scene.objects.length).toBeLessThanOrEqual(7);
      expect(scene.objects.length).toBeGreaterThanOrEqual(2);
      for (const ob of scene.objects) {
        objects++;
        counts.set(ob.name, (counts.get(ob.name) ?? 0) + 1);
        const a = ob.area;
        if (a < 256) buckets.tiny++;
        else if (a < 1024) buckets.small++;
        else if (a < 9216) buckets.medium++;
        else buckets.large++;
        sizes.push(ob.size);
        expect(ob.size).toBeGreaterThanOrEqual(8);
        expect(ob.size).toBeLessThanOrEqual(0.6 * 256);
        if (ob.truncated) truncated++;
        if (!ob.truncated && ob.visibleFraction < 0.9) occluded++;
      }
    }
    expect(objects / images).toBeGreaterThan(4.2); // mean target 4.5; few shortfalls
    const mean = objects / SHAPE_CLASSES.length;
    for (const c of SHAPE_CLASSES) {
      expect(counts.get(c)).toBeGreaterThan(0.7 * mean);
      expect(counts.get(c)).toBeLessThan(1.3 * mean);
    }
    expect(buckets.tiny).toBeGreaterThan(0.15 * objects);
    expect(buckets.small).toBeGreaterThan(0.15 * objects);
    expect(buckets.medium).toBeGreaterThan(0.25 * objects);
    expect(buckets.large).toBeGreaterThan(0.01 * objects);
    // log-uniform in [8, 153.6]: the geometric midpoint ~35 splits the sizes in half
    const below = sizes.filter((v) => v < Math.sqrt(8 * 153.6)).length / sizes.length;
    expect(below).toBeGreaterThan(0.4);
    expect(below).toBeLessThan(0.62);
    expect(truncated).toBeGreaterThan(0);
    expect(occluded).toBeGreaterThan(0);
  });

  it('keeps objects inside with allowTruncation false and honours classes', () => {
    for (let s = 0; s < 20; s++) {
      const scene = generateScene(s, {
        width: 100,
        height: 90,
        allowTruncation: false,
        classes: ['star', 'cross'],
      });
      for (const ob of scene.objects) {
        expect(ob.truncated).toBe(false);
        expect(['star', 'cross']).toContain(ob.name);
      }
    }
  });

  it('sceneTargets gives yxyx boxes (y + h, x + w) and category ids; objectMask the full plane', () => {
    const scene = generateScene(5, { width: 64, height: 64, minObjects: 2 });
    const t = sceneTargets(scene);
    expect(t.boxes.length).toBe(4 * scene.objects.length);
    scene.objects.forEach((ob, i) => {
      const [x, y, w, h] = ob.bbox;
      expect(Array.from(t.boxes.subarray(4 * i, 4 * i + 4))).toEqual([y, x, y + h, x + w]);
      expect(t.classes[i]).toBe(ob.categoryId);
      const m = objectMask(scene, i);
      expect(m.reduce((a, v) => a + v, 0)).toBe(ob.area);
    });
    expect(() => objectMask(scene, scene.objects.length)).toThrow(/objectMask: index must be an integer/);
  });

  it('rejects bad options with the option, the expectation and the value', () => {
    expect(() => generateScene(0, { width: 0 })).toThrow(
      /generateScene: options.width must be an integer in \[1, 16384\], got 0/,
    );
    expect(() => generateScene(0, { minObjects: 5, maxObjects: 2 })).toThrow(/options.maxObjects/);
    expect(() => generateScene(0, { minSize: 20, maxSize: 10 })).toThrow(/options.maxSize/);
    expect(() => generateScene(0, { classes: ['blob' as never] })).toThrow(
      /options.classes must be a non-empty list/,
    );
    expect(() => generateScene(0, { minVisibleFraction: 2 })).toThrow(/options.minVisibleFraction/);
    expect(() => generateScene('x' as never)).toThrow(/generateScene: seedOrRng must be/);
    expect(() => generateScene(0, { allowTruncation: 1 as never })).toThrow(
      /options.allowTruncation must be true or false, got 1/,
    );
    expect(generateScene(0, { minObjects: 0, maxObjects: 0, width: 16, height: 16 }).objects).toEqual([]);
  });

  it('places every requested object in dense 320x320 scenes (speed: make-shapes reports images/s)', () => {
    let objects = 0;
    for (let s = 0; s < 20; s++)
      objects += generateScene(500 + s, { minObjects: 8, maxObjects: 8 }).objects.length;
    expect(objects).toBe(8 * 20);
  });
});
