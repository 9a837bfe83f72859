/**
 * End to end in a real browser: the built demo served on 127.0.0.1, Debian's headless Chromium (playwright-core,
 * no browser download), the shipped shapes detector on `webgl` (SwiftShader) and `wasm`, detections read from
 * the page and compared with the same model on Node's `cpu` backend; then parity.html runs
 * tf_efficientdet_lite0 on webgl against the PyTorch dump. Screenshots and timings go to `test-output/`.
 * Skips (with a message) only when Chromium is missing outside CI; with CI=true a missing Chromium fails.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Detection } from '@effdet/effdet';
import { createDetector, encodePng } from '@effdet/effdet/node';
import { createSegmentationModel, predictMask, toSmpConfig } from '@effdet/segmentation';
import { loadSegmentationModel } from '@effdet/segmentation/node';
import { generateScene } from '@effdet/shapes';
import { fixturePath, fixturesDir } from '@effdet/testing';
import { fromTfTensors } from '@effdet/weights';
import { saveWeights } from '@effdet/weights/node';
import * as tf from '@tensorflow/tfjs-core';
import type { Page } from 'playwright-core';
import {
  CHROMIUM,
  DIST,
  ensureDemoBuilt,
  IN_CI,
  launchChromium,
  ROOT,
  type StaticServer,
  serveDemo,
} from './harness.js';

const OUT = join(ROOT, 'test-output');
const THRESHOLD = 0.3;
const SCENE = { width: 128, height: 128, minSize: 22, maxSize: 96, maxObjects: 4 } as const;
const IO = 'effdet/tf_efficientdet_lite0_320.io.safetensors';
const WEIGHTS = 'effdet/tf_efficientdet_lite0_s2.weights.safetensors';

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && !IN_CI) {
  console.warn(
    `skipping the browser end-to-end test: no Chromium at ${CHROMIUM} ` +
      '(apt-get install -y chromium, or set CHROMIUM_PATH; with CI=true this fails instead)',
  );
}
const suite = haveChromium || IN_CI ? describe : describe.skip;

function iou(a: readonly number[], b: readonly number[]): number {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/** Each expected detection matched to a distinct actual one of the same class (best IoU). */
function matchAll(actual: Detection[], expected: Detection[]) {
  const used = new Set<number>();
  return expected.map((e) => {
    let best = -1;
    let bestIou = -1;
    for (const [i, a] of actual.entries()) {
      if (used.has(i) || a.classId !== e.classId) continue;
      const v = iou(a.box, e.box);
      if (v > bestIou) {
        bestIou = v;
        best = i;
      }
    }
    if (best >= 0) used.add(best);
    return { expected: e, actual: best >= 0 ? actual[best] : null, iou: Math.max(0, bestIou) };
  });
}

interface DemoState {
  state: string;
  backend: string;
  backendInfo: string;
  source: string | null;
  detections: Detection[];
  drawnBoxes: number;
  mask: number[] | null;
  maskCounts: number[] | null;
  timings: Record<string, number>;
  load: { fetchMs: number; buildMs: number; warmupMs: number; bytes: number };
  error: string | null;
}

async function demoState(page: Page): Promise<DemoState> {
  return (await page.evaluate(
    'JSON.parse(JSON.stringify({...window.__effdet, bench: undefined}))',
  )) as DemoState;
}

async function waitFor(page: Page, expr: string, timeout = 240_000): Promise<void> {
  try {
    await page.waitForFunction(expr, undefined, { timeout, polling: 250 });
  } catch (e) {
    const s = (await page.evaluate('window.__effdet && window.__effdet.error').catch(() => null)) as
      | string
      | null;
    throw new Error(`waiting for ${expr}: ${(e as Error).message}${s ? `; page error: ${s}` : ''}`);
  }
}

suite('demo in headless Chromium (webgl via SwiftShader, wasm)', () => {
  let server: StaticServer | null = null;
  let browser: Awaited<ReturnType<typeof launchChromium>> | null = null;
  let imagePath = '';
  let expected: Detection[] = [];
  let seed = 0;
  let unetDir = '';
  const consoleErrors: string[] = [];
  const bench: Record<string, unknown> = {};

  beforeAll(async () => {
    if (!haveChromium) {
      throw new Error(
        `no Chromium at ${CHROMIUM}: CI must run the browser test (apt-get install -y chromium, or set CHROMIUM_PATH)`,
      );
    }
    ensureDemoBuilt();
    mkdirSync(OUT, { recursive: true });
    // The model the page serves, on Node's cpu backend: pick the first scene with clear detections (no score
    // within 0.03 of the threshold, so precision differences cannot flip one across it).
    const modelDir = join(DIST, 'models', 'shapes');
    const labels = JSON.parse(readFileSync(join(modelDir, 'labels.json'), 'utf8')) as string[];
    const previous = tf.getBackend();
    await tf.setBackend('cpu');
    const detector = await createDetector('efficientdet_shapes', {
      weights: join(modelDir, 'model.json'),
      labels,
    });
    try {
      for (let s = 1; s <= 300 && expected.length === 0; s++) {
        const scene = generateScene(s, SCENE);
        const all = await detector.detect(
          { data: scene.rgb, width: scene.width, height: scene.height },
          { scoreThreshold: THRESHOLD - 0.05 },
        );
        const clear = all.every((d) => Math.abs(d.score - THRESHOLD) > 0.03);
        const kept = all.filter((d) => d.score >= THRESHOLD);
        if (clear && kept.length >= 2) {
          seed = s;
          expected = kept;
          imagePath = join(OUT, 'demo-input.png');
          writeFileSync(imagePath, encodePng(scene.rgb, scene.width, scene.height));
        }
      }
    } finally {
      detector.dispose();
      await tf.setBackend(previous);
    }
    expect(expected.length).toBeGreaterThanOrEqual(2);
    // A small U-Net (random weights) exported as `effdet train --task segment` does, served as a model.json URL.
    unetDir = mkdtempSync(join(tmpdir(), 'effdet-demo-unet-'));
    await tf.setBackend('cpu');
    const unet = createSegmentationModel('unet', {
      encoderName: 'tu-effdet_test_efficientnet',
      encoderDepth: 3,
      decoderChannels: [16, 8, 8],
      classes: 7,
    });
    try {
      const sd = unet.stateDict();
      const raw = await fromTfTensors(sd);
      tf.dispose(Object.values(sd));
      const labels = ['background', 'circle', 'square', 'triangle', 'star', 'hexagon', 'cross'];
      await saveWeights(raw, join(unetDir, 'model.json'), {
        format: 'tfjs',
        quantization: 'float16',
        modelName: 'unet:tu-effdet_test_efficientnet',
        config: toSmpConfig(unet),
        userDefinedMetadata: { arch: unet.arch, encoder: 'tu-effdet_test_efficientnet', labels },
      });
    } finally {
      unet.dispose();
      await tf.setBackend(previous);
    }
    server = await serveDemo(existsSync(fixturesDir()) ? fixturesDir() : null, { unet: unetDir });
    browser = await launchChromium();
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (unetDir) rmSync(unetDir, { recursive: true, force: true });
    if (Object.keys(bench).length > 0) {
      writeFileSync(join(OUT, 'demo-bench.json'), `${JSON.stringify(bench, null, 2)}\n`);
    }
  });

  for (const backend of ['webgl', 'wasm'] as const) {
    it(`detects on ${backend} as Node's cpu backend does, and draws the boxes`, async () => {
      const page = await browser!.context.newPage();
      page.on('console', (m) => {
        if (m.type() === 'error') consoleErrors.push(`${backend}: ${m.text()}`);
      });
      page.on('pageerror', (e) => consoleErrors.push(`${backend}: ${e.message}`));
      try {
        await page.goto(`${server!.url}/index.html?backend=${backend}&seed=1&threshold=${THRESHOLD}`);
        await waitFor(page, `window.__effdet && window.__effdet.state === 'done' || window.__effdet.error`);
        let s = await demoState(page);
        expect(s.error).toBeNull();
        expect(s.backend).toBe(backend); // tf.getBackend() in the page: WebGL really initialised
        if (backend === 'webgl') expect(s.backendInfo).toMatch(/SwiftShader/i);

        await page.setInputFiles('#file', imagePath);
        await waitFor(
          page,
          `(window.__effdet.source === 'demo-input.png' && window.__effdet.state === 'done') || window.__effdet.error`,
        );
        s = await demoState(page);
        expect(s.error).toBeNull();
        await page.screenshot({ path: join(OUT, `demo-${backend}.png`) });

        expect(s.detections).toHaveLength(expected.length);
        expect(s.drawnBoxes).toBe(expected.length);
        const listed = await page.locator('#detections li').count();
        expect(listed).toBe(expected.length);
        for (const m of matchAll(s.detections, expected)) {
          expect(m.actual).not.toBeNull();
          expect(m.actual!.label).toBe(m.expected.label);
          expect(m.iou).toBeGreaterThanOrEqual(0.95);
          expect(Math.abs(m.actual!.score - m.expected.score)).toBeLessThanOrEqual(1e-2);
        }

        const b = (await page.evaluate('window.__effdet.bench(10)')) as { median: number; runs: number[] };
        bench[backend] = {
          backendInfo: s.backendInfo,
          firstInferenceMs: s.load.warmupMs,
          steadyMedianMs: b.median,
          runsMs: b.runs,
          loadMs: { fetch: s.load.fetchMs, build: s.load.buildMs },
          stagesMs: s.timings,
          seed,
          detections: s.detections.length,
        };
        console.log(
          `${backend}: first inference ${s.load.warmupMs.toFixed(0)} ms, steady ${b.median.toFixed(1)} ms ` +
            `(median of 10), stages ${JSON.stringify(s.timings)}; ${s.backendInfo}`,
        );
      } finally {
        await page.close();
      }
    }, 600_000);
  }

  it('segments with a U-Net given by model.json URL on wasm and webgl, as Node does (mask overlay drawn)', async () => {
    const SEG_SEED = 5;
    const scene = generateScene(SEG_SEED, SCENE);
    const previous = tf.getBackend();
    await tf.setBackend('cpu');
    const model = await loadSegmentationModel(unetDir);
    let expectedMask: Int32Array;
    try {
      expectedMask = (await predictMask(model, { data: scene.rgb, width: scene.width, height: scene.height }))
        .mask;
    } finally {
      model.dispose();
      await tf.setBackend(previous);
    }
    for (const backend of ['wasm', 'webgl']) {
      const page = await browser!.context.newPage();
      try {
        await page.goto(
          `${server!.url}/index.html?backend=${backend}&seed=${SEG_SEED}&model=/extra/unet/model.json`,
        );
        await waitFor(page, `window.__effdet && window.__effdet.state === 'done' || window.__effdet.error`);
        const s = await demoState(page);
        expect(s.error).toBeNull();
        expect(s.backend).toBe(backend);
        expect(s.source).toBe(`shapes:${SEG_SEED}`);
        expect(s.mask).toHaveLength(scene.width * scene.height);
        expect(s.maskCounts!.reduce((a, b) => a + b, 0)).toBe(scene.width * scene.height);
        let same = 0;
        for (let i = 0; i < expectedMask.length; i++) if (s.mask![i] === expectedMask[i]) same++;
        const agreement = same / expectedMask.length;
        console.log(`segmentation on ${backend}: ${(100 * agreement).toFixed(2)}% of pixels as on Node cpu`);
        // random weights leave near-ties between class logits: allow a few argmax flips
        expect(agreement).toBeGreaterThanOrEqual(0.98);
        await page.screenshot({ path: join(OUT, `demo-segment-${backend}.png`) });
      } finally {
        await page.close();
      }
    }
  }, 600_000);

  const io = fixturePath(IO);
  const weights = fixturePath(WEIGHTS);
  (io && weights ? it : it.skip)(
    `webgl head outputs match the PyTorch dump (${IO}) within 1e-2 relative`,
    async () => {
      const page = await browser!.context.newPage();
      try {
        await page.goto(
          `${server!.url}/parity.html?backend=webgl&rtol=1e-2&io=/fixtures/${IO}&weights=/fixtures/${WEIGHTS}`,
        );
        await waitFor(page, 'window.__effdetParity && window.__effdetParity.done', 540_000);
        const r = (await page.evaluate('window.__effdetParity')) as {
          backend: string;
          backendInfo: string;
          rows: { name: string; maxAbs: number; maxRel: number; pass: boolean }[];
          pass: boolean;
          error: string | null;
          ms: Record<string, number>;
        };
        console.log(
          `parity on ${r.backendInfo} (${JSON.stringify(r.ms)}):\n` +
            r.rows
              .map(
                (x) =>
                  `  ${x.name}: max abs ${x.maxAbs.toExponential(2)}, max rel ${x.maxRel.toExponential(2)}`,
              )
              .join('\n'),
        );
        bench.parity = r;
        expect(r.error).toBeNull();
        expect(r.backend).toBe('webgl');
        expect(r.rows.map((x) => x.name).sort()).toEqual([
          'box.0',
          'box.1',
          'box.2',
          'box.3',
          'box.4',
          'class.0',
          'class.1',
          'class.2',
          'class.3',
          'class.4',
        ]);
        for (const row of r.rows) expect(row.maxRel).toBeLessThanOrEqual(1e-2);
        expect(r.pass).toBe(true);
      } finally {
        await page.close();
      }
    },
    600_000,
  );

  it('logs no page errors', () => {
    expect(consoleErrors).toEqual([]);
  });
});
