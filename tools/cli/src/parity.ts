import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  AnchorLabeler,
  Anchors,
  createEfficientDet,
  detectionLoss,
  type EffDetConfig,
  type EfficientDetOutputs,
  listEfficientDetModels,
  loadRawStateDict,
  lossOptionsFromConfig,
  matchDetections,
  postProcessArrays,
} from '@effdet/effdet';
import { loadDetectorWeights } from '@effdet/effdet/node';
import { createModel, listModels, loadTfCheckpointIntoEfficientNet } from '@effdet/efficientnet';
import { type RawTensor, type RawTensorMap, toFloat32 } from '@effdet/weights';
import {
  detectWeightsFormat,
  loadWeights,
  openTfCheckpoint,
  readSafetensorsFile,
} from '@effdet/weights/node';
import * as tf from '@tensorflow/tfjs-core';
import { type DiffRow, diffArrays } from './compare.js';

export interface ParityOptions {
  /** A `*.io.safetensors` dump (see docs/parity-dump-format.md). */
  io: string;
  /** Weights in any format @effdet/weights reads; default: the file named by the dump's `weights` metadata. */
  weights?: string;
  /** Relative tolerance for tensors (default 1e-3, the fixture README's). */
  rtol?: number;
  /**
   * Run the folded-BN fused inference path instead of the reference (unfolded) path. Both are within the
   * tensor tolerance; soft-NMS over near-tied scores can reorder a few rows with the folded path.
   */
  fuse?: boolean;
}

export interface ParityReport {
  model: string;
  weights: string;
  rows: DiffRow[];
  pass: boolean;
}

/** Finds `NAME.weights.safetensors`, `NAME.pth` or `NAME.legacy.pth` next to the io file. */
export function defaultWeightsPath(ioPath: string, name: string | undefined): string {
  if (!name) throw new Error(`parity: ${ioPath} names no weights in its metadata; pass --weights`);
  for (const ext of ['.weights.safetensors', '.pth', '.legacy.pth', '.safetensors']) {
    const p = join(dirname(ioPath), `${name}${ext}`);
    if (existsSync(p)) return p;
  }
  throw new Error(
    `parity: no weights file '${name}.{weights.safetensors,pth,legacy.pth}' next to ${ioPath}; pass --weights`,
  );
}

function toTensor(raw: RawTensor): tf.Tensor {
  return tf.tensor(toFloat32(raw), raw.shape, 'float32');
}

/** Detection rows compared as the fixture README prescribes (per image, 98% of rows matched). */
function detectionRow(name: string, actual: Float32Array[], expected: RawTensor): DiffRow {
  const exp = toFloat32(expected);
  const flat = new Float32Array(actual.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of actual) {
    flat.set(a, o);
    o += a.length;
  }
  const [b, r] = expected.shape;
  const perImage: number[] = [];
  let worstIou = 1;
  let worstScore = 0;
  for (let i = 0; i < b; i++) {
    const rep = matchDetections(
      flat.subarray(i * r * 6, (i + 1) * r * 6),
      exp.subarray(i * r * 6, (i + 1) * r * 6),
    );
    perImage.push(rep.matched);
    worstIou = Math.min(worstIou, rep.worstIou);
    worstScore = Math.max(worstScore, rep.worstScoreDiff);
  }
  const pass = perImage.every((m) => m >= Math.ceil(0.98 * r));
  return {
    name,
    shape: expected.shape,
    maxAbs: worstScore,
    maxRel: 1 - worstIou,
    pass,
    note: `rows matched ${perImage.map((m) => `${m}/${r}`).join(', ')}; max abs = worst score diff, max rel = 1 - worst IoU`,
  };
}

const LOSS_KEYS = ['loss', 'class_loss', 'box_loss'] as const;

/**
 * Training-loss rows, when the dump holds targets and losses: the padded `target.bbox` / `target.cls` labelled
 * against our anchors, effdet's loss of our head outputs, each compared by its relative error
 * |actual - expected| / |expected|.
 */
function lossRows(
  out: EfficientDetOutputs,
  anchors: Anchors,
  cfg: Readonly<EffDetConfig>,
  io: RawTensorMap,
  rtol: number,
): DiffRow[] {
  const bboxRaw = io['target.bbox'];
  const clsRaw = io['target.cls'];
  if (!bboxRaw || !clsRaw || !LOSS_KEYS.every((k) => io[k])) return [];
  const [b, n] = bboxRaw.shape;
  const bbox = toFloat32(bboxRaw);
  const cls = toFloat32(clsRaw);
  const labels = new AnchorLabeler(anchors, cfg.numClasses).labelBatch(
    Array.from({ length: b }, (_, i) => bbox.subarray(i * n * 4, (i + 1) * n * 4)),
    Array.from({ length: b }, (_, i) => cls.subarray(i * n, (i + 1) * n)),
  );
  const r = detectionLoss(out, labels, lossOptionsFromConfig(cfg));
  const actual = [r.loss, r.classLoss, r.boxLoss].map((t) => t.dataSync()[0]);
  tf.dispose([r.loss, r.classLoss, r.boxLoss]);
  return LOSS_KEYS.map((key, i) => {
    const expected = toFloat32(io[key])[0];
    const maxAbs = Math.abs(actual[i] - expected);
    const maxRel = maxAbs === 0 ? 0 : maxAbs / Math.abs(expected);
    return {
      name: key,
      shape: io[key].shape,
      maxAbs,
      maxRel,
      pass: maxRel <= rtol,
      note: `${actual[i].toPrecision(7)} vs ${expected.toPrecision(7)}; max rel = |a-b| / |b|; ${Array.from(labels.numPositives).join('+')} positive anchors`,
    };
  });
}

async function detectorParity(
  model: string,
  meta: Record<string, string>,
  io: RawTensorMap,
  weightsPath: string,
  rtol: number,
  fuse: boolean,
) {
  const net = createEfficientDet(model, {
    imageSize: [Number(meta.height), Number(meta.width)],
    numClasses: Number(meta.num_classes ?? 90),
  });
  const rows: DiffRow[] = [];
  try {
    await loadDetectorWeights(net, weightsPath);
    net.eval().fuseForInference(fuse);
    const input = toTensor(io.input);
    const out = net.forwardIntermediates(input);
    const groups: [string, tf.Tensor[]][] = [
      ['backbone', out.backbone],
      ['fpn_extra', out.fpnExtra],
      ['fpn_cell0_node', out.fpnCell0Nodes],
      ['fpn', out.fpn],
      ['class', out.classOut],
      ['box', out.boxOut],
    ];
    for (const [prefix, ts] of groups) {
      for (const [i, t] of ts.entries()) {
        const ref = io[`${prefix}.${i}`];
        if (ref) rows.push(diffArrays(`${prefix}.${i}`, t.shape, t.dataSync(), toFloat32(ref), rtol));
      }
    }
    const cfg = net.config;
    const anchors = Anchors.fromConfig(cfg);
    try {
      const base = {
        numClasses: cfg.numClasses,
        maxDetectionPoints: cfg.maxDetectionPoints,
        maxDetections: cfg.maxDetPerImage,
      };
      if (io.detections) {
        rows.push(
          detectionRow(
            'detections',
            await postProcessArrays(out.classOut, out.boxOut, anchors, base),
            io.detections,
          ),
        );
      }
      if (io.detections_scaled && io.img_scale && io.img_size) {
        const imgScale = toFloat32(io.img_scale);
        const size = toFloat32(io.img_size);
        const imgSize = Array.from(imgScale, (_, i) => [size[2 * i], size[2 * i + 1]] as [number, number]);
        const scaled = await postProcessArrays(out.classOut, out.boxOut, anchors, {
          ...base,
          imgScale,
          imgSize,
        });
        rows.push(detectionRow('detections_scaled', scaled, io.detections_scaled));
      }
      if (io.detections_soft_nms) {
        const soft = await postProcessArrays(out.classOut, out.boxOut, anchors, { ...base, softNms: true });
        rows.push(detectionRow('detections_soft_nms', soft, io.detections_soft_nms));
      }
      rows.push(...lossRows(out, anchors, cfg, io, rtol));
    } finally {
      anchors.dispose();
      tf.dispose([input, ...Object.values(out).flat()]);
    }
  } finally {
    net.dispose();
  }
  return rows;
}

async function backboneParity(
  model: string,
  io: RawTensorMap,
  weightsPath: string,
  rtol: number,
  fuse: boolean,
): Promise<DiffRow[]> {
  const classifier = 'logits' in io;
  const net = createModel(model, classifier ? {} : { featuresOnly: true });
  const rows: DiffRow[] = [];
  try {
    if ((await detectWeightsFormat(weightsPath)) === 'tf-checkpoint') {
      const ckpt = await openTfCheckpoint(weightsPath);
      try {
        await loadTfCheckpointIntoEfficientNet(net, ckpt);
      } finally {
        await ckpt.close();
      }
    } else {
      loadRawStateDict(net, await loadWeights(weightsPath));
    }
    net.eval().fuseForInference(fuse);
    const input = toTensor(io.input);
    tf.tidy(() => {
      if (classifier) {
        const feats = net.forwardFeatures(input);
        const pre = net.forwardHead(feats, { preLogits: true });
        const logits = net.forwardHead(feats);
        rows.push(diffArrays('logits', logits.shape, logits.dataSync(), toFloat32(io.logits), rtol));
        if (io.pre_logits)
          rows.push(diffArrays('pre_logits', pre.shape, pre.dataSync(), toFloat32(io.pre_logits), rtol));
      }
      const feats = net.features(input);
      for (const [i, f] of feats.entries()) {
        const ref = io[`features.${i}`];
        if (ref) rows.push(diffArrays(`features.${i}`, f.shape, f.dataSync(), toFloat32(ref), rtol));
      }
    });
    input.dispose();
  } finally {
    net.dispose();
  }
  return rows;
}

/**
 * Runs the model named in an io dump's metadata on its `input` and compares every tensor the dump holds.
 * Detector dumps: backbone.i, fpn_extra.i, fpn_cell0_node.j, fpn.i, class.i, box.i, detections,
 * detections_scaled, detections_soft_nms, and the training losses loss, class_loss, box_loss (from target.bbox /
 * target.cls, relative error). Backbone dumps: logits, pre_logits, features.i. Segmentation dumps (smp, metadata
 * arch / encoder): encoder.i and logits, see `parity_segmentation.ts`.
 */
export async function runParity(options: ParityOptions): Promise<ParityReport> {
  const { metadata: meta, tensors: io } = await readSafetensorsFile(options.io);
  if (meta.arch || meta.encoder) {
    // smp dumps name arch / encoder / kwargs / classes instead of a model
    const { runSegmentationParity } = await import('./parity_segmentation.js');
    return runSegmentationParity(options);
  }
  const model = meta.model;
  if (!model) throw new Error(`parity: ${options.io} has no 'model' in its metadata`);
  if (!io.input) throw new Error(`parity: ${options.io} has no 'input' tensor`);
  const weightsPath = options.weights ?? defaultWeightsPath(options.io, meta.weights);
  const rtol = options.rtol ?? 1e-3;
  let rows: DiffRow[];
  if (listEfficientDetModels().includes(model))
    rows = await detectorParity(model, meta, io, weightsPath, rtol, options.fuse ?? false);
  else if (listModels().includes(model))
    rows = await backboneParity(model, io, weightsPath, rtol, options.fuse ?? false);
  else throw new Error(`parity: unknown model '${model}' in ${options.io}; see 'effdet list-models'`);
  if (rows.length === 0) throw new Error(`parity: ${options.io} holds no tensor this model produces`);
  return { model, weights: weightsPath, rows, pass: rows.every((r) => r.pass) };
}
