/**
 * `effdet validate`: run a detector over a validation set (COCO, Pascal VOC or OpenImages) with a progress display,
 * write the COCO results JSON, and score it (pycocotools' COCO metric, or the VOC metric for VOC).
 */
import type { Detection } from '@effdet/effdet';
import { detectorConfig } from '@effdet/effdet';
import type { RgbImage } from '@effdet/effdet/node';
import {
  type CocoEvalResult,
  type CocoResult,
  evaluateCoco,
  evaluateVoc,
  formatFixed,
  formatPerCategoryTable,
  type ImageId,
  type VocEvalResult,
  type VocImageDetections,
} from '@effdet/eval';
import type { BackendChoice } from './backend.js';
import {
  chooseLabelMap,
  type DatasetKind,
  ImageLoader,
  type LabelMapChoice,
  loadDataset,
  type Shard,
  selectSubset,
} from './data.js';
import { writeResultsJson } from './evaluate.js';
import { Progress, type ProgressStream } from './progress.js';

/** What validate needs of a detector (`createDetector` from `@effdet/effdet/node` gives one). */
export interface ValidationDetector {
  readonly config: { readonly numClasses: number };
  detect(
    images: readonly RgbImage[],
    options: { scoreThreshold: number; maxDetections: number },
  ): Promise<Detection[][]>;
  dispose(): void;
}

export interface ValidateOptions {
  /** A detector name (`effdet list-models`). */
  model: string;
  /** Weights in any format `@effdet/weights` reads; without, the network has random weights. */
  weights?: string;
  numClasses?: number;
  data: DatasetKind;
  root: string;
  ann?: string;
  /** OpenImages class descriptions CSV. */
  classes?: string;
  /** Images per detector call (default 1). */
  batch?: number;
  limit?: number;
  shard?: Shard;
  /** Where to write the COCO results JSON. */
  results?: string;
  labelMap?: LabelMapChoice;
  /** Decode threads (default 1; 0 decodes on the main thread). */
  workers?: number;
  /** Select and initialise this TF.js backend first (default: keep the current one). */
  backend?: BackendChoice;
  /** Detections below this score are dropped (default 0.001, as effdet's validation). */
  scoreThreshold?: number;
  /** Per image (default 100, pycocotools' largest maxDets). */
  maxDetections?: number;
  /** Progress and notes (default `process.stderr`). */
  stderr?: ProgressStream;
  /** Progress redrawn in place (default: `stderr.isTTY`). */
  tty?: boolean;
  /** Builds the detector (tests); default `createDetector` from `@effdet/effdet/node`. */
  createDetector?: (
    model: string,
    options: { weights?: string; numClasses?: number },
  ) => Promise<ValidationDetector>;
}

export interface ValidateResult {
  model: string;
  weights: string | null;
  backend: string;
  data: DatasetKind;
  sources: string[];
  /** Images of the dataset, and how many this run covered. */
  datasetImages: number;
  images: number;
  limit: number | null;
  /** 1-based, as given. */
  shard: { index: number; count: number } | null;
  batch: number;
  decoder: 'worker' | 'main-thread';
  labelMap: { mode: 'identity' | 'contiguous'; reason: string };
  detections: number;
  /** Detections of model classes that map to no dataset category (not written). */
  droppedDetections: number;
  /** Images whose decoded size differs from the size in the annotations. */
  sizeMismatches: number;
  seconds: number;
  imagesPerSecond: number;
  /** The results file written, or null. */
  results: string | null;
  /** The images covered (what the metric is computed over). */
  imageIds: ImageId[];
  /** COCO metric (COCO, OpenImages). */
  coco?: CocoEvalResult;
  /** VOC metric (VOC). */
  voc?: VocEvalResult;
  notes: string[];
}

async function defaultCreateDetector(
  model: string,
  options: { weights?: string; numClasses?: number },
): Promise<ValidationDetector> {
  const { createDetector } = await import('@effdet/effdet/node');
  return createDetector(model, { weights: options.weights, numClasses: options.numClasses });
}

/** Runs the detector over the selected images, writes the results and evaluates them. */
export async function runValidate(o: ValidateOptions): Promise<ValidateResult> {
  const fn = 'runValidate';
  const stderr = o.stderr ?? process.stderr;
  const notes: string[] = [];
  const note = (s: string) => {
    notes.push(s);
    stderr.write(`note: ${s}\n`);
  };
  const tf = await import('@tensorflow/tfjs-core');
  if (o.backend) {
    const { useBackend } = await import('./backend.js');
    await useBackend(o.backend);
  }
  const ds = loadDataset({ kind: o.data, root: o.root, ann: o.ann, classes: o.classes });
  const selected = selectSubset(ds.images, { limit: o.limit, shard: o.shard });
  if (selected.length === 0) note('no images selected (an empty shard?): nothing to detect');
  const config = detectorConfig(o.model, { numClasses: o.numClasses });
  const lm = chooseLabelMap(ds, config.numClasses, o.labelMap ?? 'auto');
  if (lm.mode === 'contiguous' && config.numClasses !== ds.categories.length) {
    note(
      `the model has ${config.numClasses} classes and the dataset ${ds.categories.length} categories: classes without a category are dropped`,
    );
  }
  if (!o.weights) note('no --weights given: the network has random weights');
  const batch = o.batch ?? 1;
  const scoreThreshold = o.scoreThreshold ?? 0.001;
  const maxDetections = o.maxDetections ?? 100;
  if (!(scoreThreshold >= 0 && scoreThreshold <= 1)) {
    throw new Error(`${fn}: argument 'scoreThreshold' expected a number in [0, 1], got ${scoreThreshold}`);
  }

  const make = o.createDetector ?? defaultCreateDetector;
  const detector = await make(o.model, { weights: o.weights, numClasses: o.numClasses });
  const f = Math.fround;
  const results: CocoResult[] = [];
  const vocDets: VocImageDetections[] = [];
  const sizes = new Map<ImageId, { width: number; height: number }>();
  let dropped = 0;
  let mismatches = 0;
  let firstMismatch = '';
  let decoder: 'worker' | 'main-thread' = 'main-thread';
  let seconds = 0;
  try {
    const loader = new ImageLoader(selected, { batchSize: batch, workers: o.workers ?? 1 });
    decoder = loader.decoder;
    const progress = new Progress({
      total: selected.length,
      label: 'validate',
      unit: 'images',
      stream: stderr,
      tty: o.tty,
    });
    for await (const b of loader) {
      const perImage = await detector.detect(
        b.items.map((it) => it.image),
        { scoreThreshold, maxDetections },
      );
      b.items.forEach(({ record, image }, j) => {
        sizes.set(record.id, { width: image.width, height: image.height });
        if (
          record.width !== undefined &&
          record.height !== undefined &&
          (record.width !== image.width || record.height !== image.height)
        ) {
          if (mismatches === 0) {
            firstMismatch = `image ${JSON.stringify(record.id)} is ${image.width}x${image.height}, the annotations say ${record.width}x${record.height}`;
          }
          mismatches++;
        }
        const voc: VocImageDetections = { imageId: record.id, boxes: [], scores: [], labels: [] };
        for (const d of perImage[j]) {
          if (!lm.map.hasLabel(d.classId)) {
            dropped++;
            continue;
          }
          const categoryId = lm.map.toCategoryId(d.classId);
          const [x1, y1, x2, y2] = d.box;
          // float32 like effdet's output arrays
          results.push({
            image_id: record.id,
            category_id: categoryId,
            bbox: [f(x1), f(y1), f(f(x2) - f(x1)), f(f(y2) - f(y1))],
            score: f(d.score),
          });
          if (ds.kind === 'voc') {
            (voc.boxes as number[][]).push([x1, y1, x2, y2]);
            (voc.scores as number[]).push(d.score);
            (voc.labels as number[]).push(categoryId);
          }
        }
        if (ds.kind === 'voc') vocDets.push(voc);
      });
      progress.tick(b.items.length);
    }
    progress.finish();
    seconds = progress.elapsed;
  } finally {
    detector.dispose();
  }
  if (mismatches > 0) {
    note(
      `${mismatches} images differ in size from their annotations (first: ${firstMismatch}); check --root`,
    );
  }
  if (o.results) writeResultsJson(o.results, results);

  const imageIds = selected.map((r) => r.id);
  const out: ValidateResult = {
    model: o.model,
    weights: o.weights ?? null,
    backend: tf.getBackend(),
    data: ds.kind,
    sources: ds.sources,
    datasetImages: ds.images.length,
    images: selected.length,
    limit: o.limit ?? null,
    shard: o.shard ? { index: o.shard.index + 1, count: o.shard.count } : null,
    batch,
    decoder,
    labelMap: { mode: lm.mode, reason: lm.reason },
    detections: results.length,
    droppedDetections: dropped,
    sizeMismatches: mismatches,
    seconds,
    imagesPerSecond: seconds > 0 ? selected.length / seconds : 0,
    results: o.results ?? null,
    imageIds,
    notes,
  };
  if (ds.kind === 'voc') {
    out.voc = evaluateVoc(ds.vocGroundTruth!(imageIds), vocDets, {
      labels: ds.categories.map((c) => c.id),
      labelNames: Object.fromEntries(ds.categories.map((c) => [c.id, c.name])),
    });
  } else {
    const gt = ds.cocoGroundTruth!(sizes);
    out.coco = evaluateCoco(gt, results, { params: { imgIds: imageIds } });
  }
  return out;
}

/** Header, the metric (pycocotools' summary, or VOC mAP) and the per-class table. */
export function formatValidateReport(r: ValidateResult): string {
  const where = [
    `${r.images} of ${r.datasetImages} images`,
    r.limit !== null ? `--limit ${r.limit}` : '',
    r.shard ? `shard ${r.shard.index}/${r.shard.count}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  const lines = [
    `${r.model} on ${r.data} (${where}): ${r.detections} detections, ${r.seconds.toFixed(1)} s, ${r.imagesPerSecond.toFixed(2)} images/s, backend ${r.backend}, batch ${r.batch}`,
    '',
  ];
  if (r.coco) {
    lines.push(r.coco.summary.trimEnd(), '', formatPerCategoryTable(r.coco.perCategory).trimEnd());
  } else if (r.voc) {
    lines.push(
      `VOC mAP@${r.voc.iouThreshold} (${r.voc.metric === 'allpoints' ? 'all points' : '11 points'}) = ${formatFixed(r.voc.mAP, 4)}`,
      '',
      formatPerCategoryTable(
        r.voc.perClass.map((c) => ({ categoryId: c.label, name: c.name, ap: c.ap })),
        { valueHeader: `AP@${r.voc.iouThreshold}`, digits: 4 },
      ).trimEnd(),
    );
  }
  if (r.shard) {
    lines.push(
      '',
      `(metric over this shard only: join the shards' results with effdet merge-results and score them with effdet eval)`,
    );
  }
  if (r.results) lines.push('', `results: ${r.results}`);
  return `${lines.join('\n')}\n`;
}
