export { getActivation, listActivations } from './activations.js';
export type { Activation, ActivationName, FusableActivation } from './activations.js';
export {
  ConvBnAct,
  ConvNormAct,
  DepthwiseSeparable,
  EdgeResidual,
  InvertedResidual,
  SeparableConvNormAct,
  SqueezeExcite,
} from './blocks.js';
export type { BlockFeatureInfo, BlockOptions, EfficientBlock } from './blocks.js';
export { Conv2d, applyPadding, createConv2d } from './conv.js';
export type { Conv2dOptions } from './conv.js';
export { DropPath, Dropout } from './dropout.js';
export { EffdetArgumentError, StateDictError, check, shapeStr } from './errors.js';
export { convBnAct, foldBatchNorm } from './fold.js';
export { constantInit, convNormalInit, onesInit, uniformInit, zerosInit } from './init.js';
export { torchShapeOf } from './layout.js';
export type { TorchLayout } from './layout.js';
export { Linear } from './linear.js';
export { makeDivisible, pyRound } from './math.js';
export { Module, Parameter, fromTfjsLayout, toTfjsLayout } from './module.js';
export type {
  Initializer,
  LoadStateDictOptions,
  LoadStateDictResult,
  StateDictInput,
  StateTensor,
} from './module.js';
export { BatchNorm2d } from './norm.js';
export type { BatchNormOptions } from './norm.js';
export { convOutputSize, resolvePadding, symmetricPadding } from './padding.js';
export type { PaddingSpec, ResolvedPadding } from './padding.js';
export { Pool2d, createPool2d, globalPool } from './pool.js';
export type { GlobalPoolType, PoolType } from './pool.js';
export { resize } from './resize.js';
export type { ResizeOptions } from './resize.js';
