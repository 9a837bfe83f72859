import { Anchors, createEfficientDet, loadRawStateDict, postProcessArrays, preprocess } from '@effdet/effdet';
import { loadWeights } from '@effdet/weights/node';
import * as tf from '@tensorflow/tfjs-core';

export interface BenchOptions {
  model: string;
  /** Model input size (square); default the config's. */
  size?: number;
  batch?: number;
  runs?: number;
  warmup?: number;
  weights?: string;
  /** Source image size `[width, height]` to letterbox (default 640x480). */
  imageSize?: [number, number];
  /** Fold BN and use fused kernels (default true). */
  fuse?: boolean;
  resample?: 'pil' | 'bilinear';
}

export interface Stats {
  median: number;
  min: number;
  max: number;
}

export interface BenchResult {
  model: string;
  backend: string;
  inputSize: [number, number];
  batch: number;
  runs: number;
  params: number;
  preprocess: Stats;
  network: Stats;
  postprocess: Stats;
  total: Stats;
  /** Peak bytes of tensor memory during one full run (tf.profile). */
  peakBytes: number;
  /** First call (warm-up: kernel setup, weight upload), ms. */
  firstMs: number;
}

function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, min: s[0], max: s[s.length - 1] };
}

/**
 * Times preprocess (letterbox + normalise of a synthetic uint8 image), network (forward with a data read
 * to force completion) and post-processing (top-k, decode, NMS) of a detector, per run.
 */
export async function bench(options: BenchOptions): Promise<BenchResult> {
  const overrides = options.size ? { imageSize: [options.size, options.size] as [number, number] } : {};
  const model = createEfficientDet(options.model, overrides);
  if (options.weights) loadRawStateDict(model, await loadWeights(options.weights));
  model.eval();
  if (options.fuse ?? true) model.fuseForInference();
  const c = model.config;
  const anchors = Anchors.fromConfig(c);
  const batch = options.batch ?? 1;
  const [w, h] = options.imageSize ?? [640, 480];
  const images = Array.from(
    { length: batch },
    () => tf.randomUniform([h, w, 3], 0, 255, 'int32') as tf.Tensor3D,
  );
  const once = async () => {
    const t0 = performance.now();
    const pre = preprocess(images, {
      imageSize: c.imageSize,
      mean: c.mean,
      std: c.std,
      fillColor: c.fillColor === 'mean' ? 'mean' : c.fillColor,
      resample: options.resample,
    });
    await pre.input.data();
    const t1 = performance.now();
    const out = model.forward(pre.input);
    await Promise.all([...out.classOut, ...out.boxOut].map((t) => t.data()));
    const t2 = performance.now();
    await postProcessArrays(out.classOut, out.boxOut, anchors, {
      numClasses: c.numClasses,
      imgScale: pre.imgScale,
      imgSize: pre.imgSize,
    });
    const t3 = performance.now();
    tf.dispose([pre.input, ...out.classOut, ...out.boxOut]);
    return [t1 - t0, t2 - t1, t3 - t2];
  };
  try {
    const f0 = performance.now();
    await once();
    const firstMs = performance.now() - f0;
    for (let i = 1; i < (options.warmup ?? 1); i++) await once();
    const times: number[][] = [];
    for (let i = 0; i < (options.runs ?? 5); i++) times.push(await once());
    const prof = await tf.profile(async () => {
      await once();
    });
    return {
      model: options.model,
      backend: tf.getBackend(),
      inputSize: [c.imageSize[0], c.imageSize[1]],
      batch,
      runs: times.length,
      params: model.numParams(),
      preprocess: stats(times.map((t) => t[0])),
      network: stats(times.map((t) => t[1])),
      postprocess: stats(times.map((t) => t[2])),
      total: stats(times.map((t) => t[0] + t[1] + t[2])),
      peakBytes: prof.peakBytes,
      firstMs,
    };
  } finally {
    tf.dispose(images);
    anchors.dispose();
    model.dispose();
  }
}

export function formatBench(r: BenchResult): string {
  const f = (s: Stats) => `${s.median.toFixed(1)} (min ${s.min.toFixed(1)}, max ${s.max.toFixed(1)})`;
  return [
    `${r.model} @ ${r.inputSize.join('x')} batch ${r.batch} on ${r.backend}: ${r.runs} runs, ms median (min, max)`,
    `  preprocess   ${f(r.preprocess)}`,
    `  network      ${f(r.network)}`,
    `  postprocess  ${f(r.postprocess)}`,
    `  total        ${f(r.total)}`,
    `  first call   ${r.firstMs.toFixed(0)} ms; peak tensor memory ${(r.peakBytes / 2 ** 20).toFixed(1)} MiB; ${r.params.toLocaleString('en-US')} parameters`,
  ].join('\n');
}

export interface LoadBenchRow {
  weights: string;
  format: string;
  median: number;
  min: number;
  max: number;
}

/** Time from a weights file to a ready detector (`createDetector` resolved), per format, median of `runs`. */
export async function benchLoad(model: string, files: string[], runs = 3): Promise<LoadBenchRow[]> {
  const { createDetector } = await import('@effdet/effdet/node');
  const { detectWeightsFormat } = await import('@effdet/weights/node');
  const rows: LoadBenchRow[] = [];
  for (const file of files) {
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const det = await createDetector(model, { weights: file });
      times.push(performance.now() - t0);
      det.dispose();
    }
    rows.push({ weights: file, format: await detectWeightsFormat(file), ...stats(times) });
  }
  return rows;
}
