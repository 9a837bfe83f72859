export type { BlockArgs, BlockType } from './arch.js';
export { decodeArchDef, decodeBlockString, scaleStageDepth } from './arch.js';
export type { EfficientNetArch, EfficientNetOptions, FeatureInfo } from './model.js';
export { EfficientNet } from './model.js';
export type { PretrainedCfg } from './pretrained.js';
export {
  IMAGENET_DEFAULT_MEAN,
  IMAGENET_DEFAULT_STD,
  INCEPTION_MEAN,
  INCEPTION_STD,
} from './pretrained.js';
export type { ArchOverrides, CreateModelOptions, ModelDef } from './registry.js';
export {
  createModel,
  getModelDef,
  getPretrainedCfg,
  getPretrainedCfgs,
  listModels,
  loadWeightMap,
  resolveArch,
} from './registry.js';
export type {
  EfficientNetTfNameOptions,
  TfBatchNormName,
  TfLoadOptions,
  TfLoadResult,
  TfVariableMapping,
  TfVariableReader,
} from './tf_names.js';
export {
  efficientNetTfScope,
  isTfTrainingStateName,
  loadTfCheckpointIntoEfficientNet,
  loadTfVariables,
  TfMappingBuilder,
  tfToTorchNames,
} from './tf_names.js';
