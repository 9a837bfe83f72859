import { mkdir, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import type { Detection, RgbImage } from '@effdet/effdet';
import { createDetector, decodeImage, drawDetections, encodePng } from '@effdet/effdet/node';
import { loadShapesDetector, SHAPES_MODEL, shippedWeights } from './shipped.js';

export interface PredictOptions {
  model: string;
  weights?: string;
  images: string[];
  score?: number;
  out?: string;
  numClasses?: number;
  imageSize?: [number, number];
  /** 'onnx': export the model and run it on onnxruntime-node (`@effdet/onnx`). Default 'tfjs'. */
  runtime?: 'tfjs' | 'onnx';
}

export interface PredictResult {
  image: string;
  width: number;
  height: number;
  detections: Detection[];
  ms: number;
  written?: string;
}

/** Runs a detector on image files; optionally writes `<name>.det.png` with the boxes and labels drawn. */
export async function predict(options: PredictOptions): Promise<PredictResult[]> {
  if (options.images.length === 0) throw new Error('effdet predict: give at least one image path');
  const det: {
    detect: (image: RgbImage, o: { scoreThreshold: number }) => Promise<Detection[]>;
    dispose: () => unknown;
  } =
    options.runtime === 'onnx'
      ? await (await import('@effdet/onnx/node')).createOnnxDetector(
          options.model === 'shapes' ? SHAPES_MODEL.config : options.model,
          {
            weights: options.weights ?? (options.model === 'shapes' ? shippedWeights() : undefined),
            numClasses: options.numClasses,
            imageSize: options.imageSize,
          },
        )
      : options.model === 'shapes' && !options.weights
        ? await loadShapesDetector()
        : await createDetector(options.model, {
            weights: options.weights,
            numClasses: options.numClasses,
            imageSize: options.imageSize,
          });
  const results: PredictResult[] = [];
  try {
    if (options.out) await mkdir(options.out, { recursive: true });
    for (const path of options.images) {
      const rgb = await decodeImage(path);
      const t0 = performance.now();
      const detections = await det.detect(rgb, { scoreThreshold: options.score ?? 0.3 });
      const r: PredictResult = {
        image: path,
        width: rgb.width,
        height: rgb.height,
        detections,
        ms: performance.now() - t0,
      };
      if (options.out) {
        const canvas = drawDetections(rgb.data, rgb.width, rgb.height, detections);
        const file = join(options.out, `${basename(path, extname(path))}.det.png`);
        await writeFile(file, encodePng(canvas, rgb.width, rgb.height));
        r.written = file;
      }
      results.push(r);
    }
  } finally {
    await det.dispose();
  }
  return results;
}

export function formatPredictions(results: PredictResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(
      `${r.image} (${r.width}x${r.height}): ${r.detections.length} detections in ${r.ms.toFixed(0)} ms`,
    );
    for (const d of r.detections) {
      const b = d.box.map((v) => v.toFixed(1)).join(', ');
      lines.push(`  ${(d.label ?? `class ${d.classId}`).padEnd(16)} ${d.score.toFixed(3)}  [${b}]`);
    }
    if (r.written) lines.push(`  -> ${r.written}`);
  }
  return lines.join('\n');
}
