/**
 * Official google/automl EfficientDet checkpoint names (efficientdet-d0..d7x, efficientdet-lite0..4) <->
 * our state-dict names, derived from the model's own structure (levels, pyramid topology, head repeats), and
 * a loader for the name-based TF checkpoints automl releases.
 *
 * Official naming (automl `tf2/efficientdet_keras.py`, identical to the legacy `efficientdet_arch.py`):
 * - backbone under `efficientnet-bX/` or `efficientnet-liteX/` (see `@effdet/efficientnet` tf_names);
 * - extra levels `resample_p{L}/{conv2d,bn}` (only levels whose input width differs from the pyramid's);
 * - pyramid nodes `fpn_cells/cell_{r}/fnode{i}/`: input resamplers
 *   `resample_{k}_{inputOffset}_{numFeats}/{conv2d,bn}` (k = position among the node's inputs, numFeats =
 *   number of features when the node is built = levels + i), one scalar fusion weight per input
 *   `WSM`, `WSM_1`, ... (our `edge_weights` vector), and `op_after_combine{numFeats}/{conv,bn}` with a
 *   Keras SeparableConv2D (`depthwise_kernel`, `pointwise_kernel`, `bias`);
 * - heads `class_net/class-{j}`, per-level BNs `class_net/class-{j}-bn-{level}`, `class_net/class-predict`,
 *   and the same under `box_net/box-...`.
 * Every TF layout equals our TF.js layout, so loading only renames (and stacks the WSM scalars).
 */
import { BiFpn, type Fnode, type ResampleFeatureMap } from '@effdet/bifpn';
import {
  efficientNetTfScope,
  loadTfVariables,
  type TfBatchNormName,
  type TfLoadOptions,
  type TfLoadResult,
  TfMappingBuilder,
  type TfVariableMapping,
  type TfVariableReader,
  tfToTorchNames,
} from '@effdet/efficientnet';
import type { HeadNet } from '@effdet/heads';
import { ConvNormAct, type Module, SeparableConvNormAct } from '@effdet/layers';
import { createEfficientDet, type EfficientDet } from './model.js';

export interface EfficientDetTfNameOptions {
  /** TF scope of the backbone (default: from the config's backbone name, e.g. `efficientnet-b0/`). */
  backboneTfPrefix?: string;
  /** BatchNorm scope spelling inside the backbone. Default `tpu_batch_normalization`. */
  bnName?: TfBatchNormName;
}

/** Maps a ResampleFeatureMap's 1x1 conv (+BN) to `scope/conv2d` and `scope/bn`. */
function mapResample(b: TfMappingBuilder, torchPath: string, rs: ResampleFeatureMap, tfScope: string): void {
  if (rs.conv === null) return;
  b.conv(`${torchPath}.conv.conv`, rs.conv.conv, `${tfScope}/conv2d`);
  if (rs.conv.bn) b.bn(`${torchPath}.conv.bn`, rs.conv.bn, `${tfScope}/bn`);
}

/** A separable conv (Keras SeparableConv2D: one scope, one bias) or a plain conv under `tfScope`. */
function mapConv(b: TfMappingBuilder, torchPath: string, conv: Module, tfScope: string): void {
  if (conv instanceof SeparableConvNormAct) {
    b.conv(`${torchPath}.conv_dw`, conv.conv_dw, tfScope, 'depthwise_kernel');
    b.conv(`${torchPath}.conv_pw`, conv.conv_pw, tfScope, 'pointwise_kernel');
  } else if (conv instanceof ConvNormAct) {
    b.conv(`${torchPath}.conv`, conv.conv, tfScope, 'kernel');
  } else {
    throw new Error(`efficientDetTfToTorchNames: ${torchPath} is neither a separable nor a plain conv`);
  }
}

function mapFnode(
  b: TfMappingBuilder,
  torchPath: string,
  node: Fnode,
  tfScope: string,
  numFeats: number,
): void {
  const combine = node.combine;
  for (const [key, rs] of combine.resample.children()) {
    const offset = Number(key);
    const k = combine.inputsOffsets.indexOf(offset);
    if (k < 0)
      throw new Error(`efficientDetTfToTorchNames: ${torchPath} resamples input ${key} it does not use`);
    mapResample(
      b,
      `${torchPath}.combine.resample.${key}`,
      rs as ResampleFeatureMap,
      `${tfScope}/resample_${k}_${offset}_${numFeats}`,
    );
  }
  if (combine.edgeWeights !== null) {
    b.scalars(
      `${torchPath}.combine`,
      combine,
      'edge_weights',
      combine.inputsOffsets.map((_, k) => `${tfScope}/WSM${k === 0 ? '' : `_${k}`}`),
    );
  }
  const op = `${tfScope}/op_after_combine${numFeats}`;
  const conv = node.after_combine.conv;
  mapConv(b, `${torchPath}.after_combine.conv`, conv, `${op}/conv`);
  if (conv.bn) b.bn(`${torchPath}.after_combine.conv.bn`, conv.bn, `${op}/bn`);
}

function mapHead(
  b: TfMappingBuilder,
  torchPath: string,
  head: HeadNet,
  scope: string,
  short: string,
  minLevel: number,
): void {
  head.conv_rep.items.forEach((conv, j) => {
    mapConv(b, `${torchPath}.conv_rep.${j}`, conv, `${scope}/${short}-${j}`);
  });
  const levelFirst = head.options.bnLevelFirst;
  head.bn_rep.items.forEach((outer, i) => {
    outer.items.forEach((item, k) => {
      const [level, rep] = levelFirst ? [i, k] : [k, i];
      const bnPath = `${torchPath}.bn_rep.${i}.${k}${levelFirst ? '' : '.bn'}`;
      const bn = levelFirst ? item : (item as unknown as { bn: Module }).bn;
      b.bn(bnPath, bn, `${scope}/${short}-${rep}-bn-${minLevel + level}`);
    });
  });
  mapConv(b, `${torchPath}.predict`, head.predict, `${scope}/${short}-predict`);
}

/**
 * The official TF variable names of an EfficientDet (an instance or a registered name; names build the
 * network with lazy, unallocated weights) and the state-dict entry each one feeds. Every state entry of the
 * model is covered (an uncovered one throws), and the names follow the model's configuration: levels,
 * pyramid width and topology, weighted or summed fusion, head repeats, separable or plain convs.
 */
export function efficientDetTfToTorchNames(
  model: EfficientDet | string,
  options: EfficientDetTfNameOptions = {},
): TfVariableMapping[] {
  const det = typeof model === 'string' ? createEfficientDet(model) : model;
  const cfg = det.config;
  const where = `efficientDetTfToTorchNames(${cfg.name})`;
  const bbScope = options.backboneTfPrefix ?? efficientNetTfScope(cfg.backboneName);
  if (bbScope === null) {
    throw new Error(
      `${where}: no official TF scope for backbone '${cfg.backboneName}'; pass options.backboneTfPrefix`,
    );
  }
  const mappings = tfToTorchNames(det.backbone, {
    tfPrefix: bbScope,
    torchPrefix: 'backbone.',
    bnName: options.bnName,
  });
  const b = new TfMappingBuilder();
  const fpn = det.fpn;
  if (!(fpn instanceof BiFpn)) throw new Error(`${where}: the feature network is not a BiFpn`);
  for (const [key, rs] of fpn.resample.children()) {
    mapResample(
      b,
      `fpn.resample.${key}`,
      rs as ResampleFeatureMap,
      `resample_p${cfg.minLevel + Number(key)}`,
    );
  }
  fpn.cell.items.forEach((cell, r) => {
    cell.fnode.items.forEach((node, i) => {
      mapFnode(b, `fpn.cell.${r}.fnode.${i}`, node, `fpn_cells/cell_${r}/fnode${i}`, fpn.numLevels + i);
    });
  });
  mapHead(b, 'class_net', det.class_net, 'class_net', 'class', cfg.minLevel);
  mapHead(b, 'box_net', det.box_net, 'box_net', 'box', cfg.minLevel);
  b.mappings.unshift(...mappings);
  b.checkCoverage(det, '', where);
  return b.mappings;
}

/**
 * Loads an official google/automl EfficientDet checkpoint (name-based TF1 Saver format, as released:
 * `efficientdet-d0/`, ... read with `openTfCheckpoint` from `@effdet/weights/node`, or
 * `openTfCheckpointIndex` in a browser) into an EfficientDet built with the matching config
 * (`tf_efficientdet_d0` for `efficientdet-d0`, `tf_efficientdet_lite0` for `efficientdet-lite0`, ...).
 *
 * Uses `NAME/ExponentialMovingAverage` when present (`ema`, default true; the published accuracies use it),
 * ignores optimizer slots and `global_step`, and checks everything before loading: one StateDictError
 * lists every missing, mis-shaped and (with `strict`, default true) unexpected variable.
 */
export function loadTfCheckpoint(
  model: EfficientDet,
  reader: TfVariableReader,
  options: TfLoadOptions & EfficientDetTfNameOptions = {},
): Promise<TfLoadResult> {
  const mappings = efficientDetTfToTorchNames(model, options);
  return loadTfVariables(model, mappings, reader, {
    ema: options.ema,
    strict: options.strict,
    fn: 'loadTfCheckpoint',
  });
}
