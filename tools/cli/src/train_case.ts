/**
 * A fixed training case for checking the training stack against PyTorch step for step: timm's
 * `effdet_test_efficientnet` classifier (6 classes) with the weights `seedInitializers(1)` draws, trained in train mode
 * (BatchNorm batch statistics) with AdamW (lr 3e-3, weight decay 1e-2 on >= 2-D weights only) and softmax
 * cross-entropy on single-shape 32 x 32 scenes from `@effdet/shapes`. `tools/reference/train_case.mjs` dumps
 * the initial weights and the data; `tools/reference/torch_train_trajectory.py` replays the same steps in
 * PyTorch (a hand-written nn.Module with timm's parameter names) and writes the losses that
 * `train_case.test.ts` compares with ours.
 */
import { createModel, type EfficientNet } from '@effdet/efficientnet';
import { seedInitializers } from '@effdet/layers';
import { generateScene, hashSeed } from '@effdet/shapes';

export const TRAIN_CASE = {
  model: 'effdet_test_efficientnet',
  classes: 6,
  size: 32,
  batch: 16,
  steps: 40,
  lr: 3e-3,
  weightDecay: 1e-2,
  initSeed: 1,
  dataSeed: 3,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
} as const;

/** The case's model, initialised from the seeded generator (same weights on every run). */
export function trainCaseModel(): EfficientNet {
  seedInitializers(TRAIN_CASE.initSeed);
  return createModel(TRAIN_CASE.model, { numClasses: TRAIN_CASE.classes });
}

/** Pixels (0..255, NHWC, float32) and 0-based labels of `steps * batch` single-shape scenes, in step order. */
export function trainCaseData(
  steps: number = TRAIN_CASE.steps,
  batch: number = TRAIN_CASE.batch,
): { pixels: Float32Array; labels: Int32Array } {
  const S = TRAIN_CASE.size;
  const pixels = new Float32Array(steps * batch * S * S * 3);
  const labels = new Int32Array(steps * batch);
  for (let s = 0; s < steps; s++)
    for (let k = 0; k < batch; k++) {
      const scene = generateScene(hashSeed(TRAIN_CASE.dataSeed, s, k), {
        width: S,
        height: S,
        minObjects: 1,
        maxObjects: 1,
        minSize: 16,
        maxSize: 28,
        allowTruncation: false,
      });
      const i = s * batch + k;
      pixels.set(scene.rgb, i * S * S * 3);
      labels[i] = (scene.objects[0]?.categoryId ?? 1) - 1;
    }
  return { pixels, labels };
}
