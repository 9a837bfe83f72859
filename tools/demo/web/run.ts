/**
 * One inference with a time per stage. Detection runs the same steps as `Detector.detect` (letterbox +
 * normalise, network, top-k + NMS) so each can be timed; `network` waits for the head outputs (GPU sync).
 */
import {
  type Detection,
  type Detector,
  type PixelData,
  postProcessArrays,
  preprocess,
  toDetections,
} from '@effdet/effdet';
import { type MaskPrediction, predictMask, type SegmentationModel } from '@effdet/segmentation';
import * as tf from '@tensorflow/tfjs-core';

export type Timings = Record<string, number>;

export async function detectTimed(
  detector: Detector,
  image: PixelData,
  scoreThreshold: number,
  labels: readonly string[] | null,
): Promise<{ detections: Detection[]; timings: Timings }> {
  const c = detector.config;
  const t0 = performance.now();
  const pre = preprocess(image, {
    imageSize: c.imageSize,
    convention: 'effdet',
    mean: c.mean,
    std: c.std,
    fillColor: c.fillColor === 'mean' ? 'mean' : c.fillColor,
  });
  const t1 = performance.now();
  let outputs: { classOut: tf.Tensor4D[]; boxOut: tf.Tensor4D[] } | null = null;
  try {
    outputs = detector.model.forward(pre.input);
    const all = [...outputs.classOut, ...outputs.boxOut];
    await Promise.all(all.map((t) => t.data()));
    const t2 = performance.now();
    const rows = await postProcessArrays(outputs.classOut, outputs.boxOut, detector.anchors, {
      numClasses: c.numClasses,
      maxDetectionPoints: c.maxDetectionPoints,
      maxDetections: c.maxDetPerImage,
      softNms: c.softNms,
      imgScale: pre.imgScale,
      imgSize: pre.imgSize,
    });
    const labelOf = labels ? (id: number) => labels[id - 1] ?? `class ${id}` : undefined;
    const detections = toDetections(rows[0], labelOf).filter((d) => d.score >= scoreThreshold);
    const t3 = performance.now();
    return {
      detections,
      timings: { preprocess: t1 - t0, network: t2 - t1, postprocess: t3 - t2, total: t3 - t0 },
    };
  } finally {
    pre.input.dispose();
    if (outputs) tf.dispose([...outputs.classOut, ...outputs.boxOut]);
  }
}

export async function segmentTimed(
  model: SegmentationModel,
  image: PixelData,
): Promise<{ prediction: MaskPrediction; timings: Timings }> {
  const t0 = performance.now();
  const prediction = await predictMask(model, image);
  const t1 = performance.now();
  return { prediction, timings: { predict: t1 - t0, total: t1 - t0 } };
}
