export type { Activation, ActivationName, FusableActivation } from './activations.js';
export { getActivation, listActivations } from './activations.js';
export type { BlockFeatureInfo, BlockOptions, EfficientBlock } from './blocks.js';
export {
  ConvBnAct,
  ConvNormAct,
  DepthwiseSeparable,
  EdgeResidual,
  InvertedResidual,
  SeparableConvNormAct,
  SqueezeExcite,
} from './blocks.js';
export type { DiffRow } from './compare.js';
export { diffArrays } from './compare.js';
export { ModuleDict, ModuleList } from './containers.js';
export type { Conv2dOptions } from './conv.js';
export { applyPadding, Conv2d, createConv2d } from './conv.js';
export { Dropout, DropPath } from './dropout.js';
export { check, closeNames, EffdetArgumentError, StateDictError, shapeStr } from './errors.js';
export { convBnAct, foldBatchNorm } from './fold.js';
export type { ConvPad } from './grad.js';
export {
  conv2dFilterGrad,
  conv2dInputGrad,
  depthwiseFilterGrad,
  depthwiseInputGrad,
  recordingGradients,
  registerTrainingKernels,
} from './grad.js';
export {
  channelSum,
  reduceToShape,
  registerGradients,
  resizeMatrix,
  SUPPLIED_GRADIENTS,
} from './gradients.js';
export {
  constantInit,
  convNormalInit,
  onesInit,
  randomNormal,
  randomUniform,
  seedInitializers,
  uniformInit,
  zerosInit,
} from './init.js';
export type { TorchLayout } from './layout.js';
export { torchShapeOf } from './layout.js';
export { Linear } from './linear.js';
export { makeDivisible, pyRound } from './math.js';
export type {
  Initializer,
  LoadStateDictOptions,
  LoadStateDictResult,
  StateDictInput,
  StateTensor,
} from './module.js';
export { fromTfjsLayout, Module, Parameter, toTfjsLayout } from './module.js';
export type { BatchNormOptions } from './norm.js';
export { BatchNorm2d } from './norm.js';
export type {
  LrScheduleOptions,
  NamedVariable,
  OptimizerName,
  OptimizerOptions,
  StepResult,
} from './optim.js';
export { lrAt, ModelEma, Optimizer, trainableVariables } from './optim.js';
export type { PaddingSpec, ResolvedPadding } from './padding.js';
export { convOutputSize, resolvePadding, symmetricPadding } from './padding.js';
export type { GlobalPoolType, PoolType } from './pool.js';
export { createPool2d, globalPool, Pool2d } from './pool.js';
export type { ResizeOptions } from './resize.js';
export { resize } from './resize.js';
export type { LossTerms, StepReport, TrainerOptions, TrainerSetup, TrainerState } from './trainer.js';
export { Trainer } from './trainer.js';
