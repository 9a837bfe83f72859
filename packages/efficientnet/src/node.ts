import type { RawTensorMap } from '@effdet/weights';
import { detectWeightsFormat, loadWeights, openTfCheckpoint } from '@effdet/weights/node';
import type { EfficientNet } from './model.js';
import { type CreateModelOptions, createModel, loadWeightMap } from './registry.js';
import { loadTfCheckpointIntoEfficientNet } from './tf_names.js';

export interface LoadModelOptions extends Omit<CreateModelOptions, 'weights'> {
  /**
   * A weights file or folder in any format (safetensors, PyTorch `.pth` zip / legacy, TF.js `model.json`, an
   * official TensorFlow EfficientNet checkpoint), its bytes, or a tensor map.
   */
  weights?: string | Uint8Array | RawTensorMap;
  /** Training checkpoints: the EMA copy (default: EMA for TF checkpoints, the plain weights for `.pth`). */
  ema?: boolean;
}

/** `createModel` with weights from a file (Node). Loads strictly: a wrong model fails listing the names. */
export async function loadModel(name: string, options: LoadModelOptions = {}): Promise<EfficientNet> {
  const { weights, ema, ...rest } = options;
  const model = createModel(name, rest);
  try {
    if (typeof weights === 'string' && (await detectWeightsFormat(weights)) === 'tf-checkpoint') {
      const ckpt = await openTfCheckpoint(weights);
      try {
        await loadTfCheckpointIntoEfficientNet(model, ckpt, { ema: ema ?? true });
      } finally {
        await ckpt.close();
      }
    } else if (weights !== undefined) {
      loadWeightMap(
        model,
        typeof weights === 'string' || weights instanceof Uint8Array
          ? await loadWeights(weights, { ema })
          : weights,
      );
    }
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
