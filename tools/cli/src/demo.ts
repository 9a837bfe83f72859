/**
 * `effdet demo`: the README's first command. With no network and no arguments it generates a few fresh
 * shapes images, runs the shipped detector (`models/shapes`, trained here with `effdet train`), writes the
 * images with boxes drawn, prints the detections, and scores the model (COCO mAP) on a freshly generated
 * validation set. `--task segment` does the same with the shipped U-Net.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type BackendChoice, useBackend } from './backend.js';
import { type CliIO, defaultIO } from './evaluate.js';
import { demoScene, evaluateOnFreshShapes, loadShapesDetector, type ShapesEvalResult } from './shipped.js';

export const DEMO_USAGE = `  demo                       [--out demo-output] [--count 4] [--seed N] [--val 100] [--task detect|segment]
                             the shipped shapes model on freshly generated images: annotated PNGs in --out,
                             the detections, and the COCO mAP on --val fresh validation images
`;

export interface DemoOptions {
  out: string;
  count: number;
  /** Seed of the demo images; the validation set uses seed + 1. Default: from the clock (printed). */
  seed: number;
  val: number;
  backend: BackendChoice;
}

export interface DemoResult {
  files: string[];
  detections: number[];
  eval: ShapesEvalResult | null;
  seed: number;
}

export async function runDetectDemo(o: DemoOptions, io: CliIO = defaultIO): Promise<DemoResult> {
  const backend = await useBackend(o.backend);
  const { drawDetections, encodePng } = await import('@effdet/effdet/node');
  const det = await loadShapesDetector();
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true });
  const files: string[] = [];
  const counts: number[] = [];
  try {
    io.stdout.write(
      `effdet demo: the shipped shapes detector (${det.config.name}, ${det.model.numParams().toLocaleString('en-US')} parameters, ${det.config.imageSize[0]}x${det.config.imageSize[1]}) on ${backend}; demo images from seed ${o.seed}\n`,
    );
    for (let i = 0; i < o.count; i++) {
      const scene = demoScene(o.seed * 1000 + i);
      const image = { data: scene.rgb, width: scene.width, height: scene.height };
      const t0 = performance.now();
      const dets = await det.detect(image, { scoreThreshold: 0.4 });
      const ms = performance.now() - t0;
      // draw on a 3x enlargement so labels stay legible
      const s = 3;
      const big = new Uint8Array(scene.width * s * scene.height * s * 3);
      for (let y = 0; y < scene.height * s; y++)
        for (let x = 0; x < scene.width * s; x++) {
          const src = (((y / s) | 0) * scene.width + ((x / s) | 0)) * 3;
          const dst = (y * scene.width * s + x) * 3;
          big[dst] = scene.rgb[src] as number;
          big[dst + 1] = scene.rgb[src + 1] as number;
          big[dst + 2] = scene.rgb[src + 2] as number;
        }
      const scaled = dets.map((d) => ({
        ...d,
        box: d.box.map((v) => v * s) as [number, number, number, number],
      }));
      const canvas = drawDetections(big, scene.width * s, scene.height * s, scaled);
      const file = join(out, `demo_${i}.png`);
      writeFileSync(file, encodePng(canvas, scene.width * s, scene.height * s));
      files.push(file);
      counts.push(dets.length);
      const truth = scene.objects.map((ob) => ob.name).join(', ');
      io.stdout.write(`${file}: ${dets.length} detections in ${ms.toFixed(0)} ms (drawn: ${truth})\n`);
      for (const d of dets)
        io.stdout.write(
          `  ${(d.label ?? `class ${d.classId}`).padEnd(9)} ${d.score.toFixed(3)}  [${d.box.map((v) => v.toFixed(1)).join(', ')}]\n`,
        );
    }
    let ev: ShapesEvalResult | null = null;
    if (o.val > 0) {
      const t0 = performance.now();
      ev = await evaluateOnFreshShapes(det, { count: o.val, seed: o.seed + 1 });
      io.stdout.write(
        `fresh validation set (${ev.images} images, ${ev.boxes} boxes, seed ${ev.seed}, ${((performance.now() - t0) / 1000).toFixed(1)} s): COCO mAP@[.5:.95] ${ev.map.toFixed(4)}  mAP@.5 ${ev.map50.toFixed(4)}  mAP@.75 ${(ev.stats[2] as number).toFixed(4)}\n`,
      );
    }
    return { files, detections: counts, eval: ev, seed: o.seed };
  } finally {
    det.dispose();
  }
}

export async function runDemoCommand(argv: readonly string[], io: CliIO = defaultIO): Promise<number> {
  const args = argv[0] === 'demo' ? argv.slice(1) : [...argv];
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      out: { type: 'string', short: 'o', default: 'demo-output' },
      count: { type: 'string', default: '4' },
      seed: { type: 'string' },
      val: { type: 'string', default: '100' },
      task: { type: 'string', default: 'detect' },
      backend: { type: 'string', default: 'wasm' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(`effdet demo [options]\n${DEMO_USAGE}`);
    return 0;
  }
  if (positionals.length > 0) throw new Error(`effdet demo: unexpected argument '${positionals[0]}'`);
  const int = (v: string, name: string, min: number) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isSafeInteger(n) || n < min)
      throw new Error(`effdet demo: --${name} must be an integer >= ${min}, got '${v}'`);
    return n;
  };
  const seed =
    values.seed === undefined ? Math.floor(Date.now() / 1000) % 1_000_000 : int(values.seed, 'seed', 0);
  const count = int(values.count as string, 'count', 0);
  const val = int(values.val as string, 'val', 0);
  if (values.task === 'segment') {
    const { runSegmentDemo } = await import('./demo_segment.js');
    await useBackend(values.backend as BackendChoice);
    await runSegmentDemo({ out: values.out as string, count, seed, val, io });
    return 0;
  }
  if (values.task !== 'detect')
    throw new Error(`effdet demo: --task must be detect or segment, got '${values.task}'`);
  await runDetectDemo(
    { out: values.out as string, count, seed, val, backend: values.backend as BackendChoice },
    io,
  );
  return 0;
}
