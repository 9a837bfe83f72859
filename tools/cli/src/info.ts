import { createModel, getPretrainedCfg } from '@effdet/efficientnet';
import * as tf from '@tensorflow/tfjs-core';

export interface InfoOptions {
  model: string;
  size?: number;
  outputStride?: 8 | 16 | 32;
  featureLocation?: 'bottleneck' | 'expansion';
  run?: boolean;
}

export interface InfoResult {
  model: string;
  params: number;
  backboneParams: number;
  inputSize: number;
  features: { index: number; module: string; channels: number; reduction: number; shape?: number[] }[];
  forwardMs?: number;
}

/** Builds a backbone, lists its features and parameter count, and (optionally) runs one forward pass. */
export function modelInfo(options: InfoOptions): InfoResult {
  const size = options.size ?? getPretrainedCfg(options.model)?.inputSize[1] ?? 224;
  const classifier = createModel(options.model);
  const backbone = createModel(options.model, {
    featuresOnly: true,
    outputStride: options.outputStride,
    featureLocation: options.featureLocation,
  });
  const result: InfoResult = {
    model: options.model,
    params: classifier.numParams(),
    backboneParams: backbone.numParams(),
    inputSize: size,
    features: backbone.featureInfo.map((f, index) => ({ index, ...f })),
  };
  if (options.run ?? true) {
    const x = tf.randomNormal([1, size, size, 3]);
    const t0 = performance.now();
    const feats = backbone.features(x);
    feats.forEach((f, i) => {
      result.features[i].shape = f.shape;
    });
    result.forwardMs = performance.now() - t0;
    tf.dispose([x, ...feats]);
  }
  backbone.dispose();
  classifier.dispose();
  return result;
}

export function formatInfo(r: InfoResult): string {
  const lines = [
    `${r.model}: ${r.params.toLocaleString('en-US')} parameters (classifier), ${r.backboneParams.toLocaleString('en-US')} as a feature extractor`,
    `features at ${r.inputSize}x${r.inputSize} (NHWC):`,
    ...r.features.map(
      (f) =>
        `  [${f.index}] ${f.module.padEnd(22)} reduction ${String(f.reduction).padStart(2)}  channels ${String(f.channels).padStart(4)}` +
        (f.shape ? `  shape [${f.shape.join(', ')}]` : ''),
    ),
  ];
  if (r.forwardMs !== undefined)
    lines.push(`forward (random weights, first call): ${r.forwardMs.toFixed(0)} ms`);
  return lines.join('\n');
}
