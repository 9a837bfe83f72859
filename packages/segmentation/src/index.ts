export type { MaskToCocoOptions } from './coco.js';
export { maskToCocoAnnotations, maskToCocoResults } from './coco.js';
export { ConvTranspose2d } from './conv_transpose.js';
export type { ArchName, SegmentationOptions } from './create.js';
export {
  createFromSmpConfig,
  createSegmentationModel,
  listArchitectures,
  resolveArchitecture,
  smpKwargsToOptions,
  toSmpConfig,
} from './create.js';
export type { DeepLabV3Options, DeepLabV3PlusOptions } from './deeplab.js';
export { Aspp, DeepLabV3, DeepLabV3Decoder, DeepLabV3Plus, DeepLabV3PlusDecoder } from './deeplab.js';
export type {
  EfficientDetSegmentationHeadOptions,
  EfficientDetSegmenterOptions,
  EfficientDetSegmenterOutputs,
} from './effdet_head.js';
export { EfficientDetSegmentationHead, EfficientDetSegmenter } from './effdet_head.js';
export type { EncoderOptions } from './encoder.js';
export { parseEncoderName, TimmUniversalEncoder } from './encoder.js';
export { InstanceNorm2d } from './instance_norm.js';
export type {
  CrossEntropyOptions,
  FocalLossOptions,
  LossMode,
  LossReduction,
  OverlapLossOptions,
} from './losses.js';
export { crossEntropyLoss, diceLoss, focalLoss, jaccardLoss } from './losses.js';
export type {
  GetStatsOptions,
  LabelInput,
  MetricOptions,
  MetricReduction,
  SegmentationScores,
  SegmentationStats,
  StatsMode,
} from './metrics.js';
export {
  accuracy,
  ConfusionMatrix,
  f1Score,
  fbetaScore,
  getStats,
  iouScore,
  precision,
  recall,
  segmentationScores,
} from './metrics.js';
export type { Decoder, SegmentationIntermediates, SegmentationModelOptions } from './model.js';
export { SegmentationModel } from './model.js';
export type { ActivationFn, AuxParams, NormSpec, OutputActivation } from './modules.js';
export {
  Attention,
  ClassificationHead,
  Conv2dReLU,
  ConvBnReLU,
  SCSEModule,
  SegmentationHead,
  SeparableConv2d,
} from './modules.js';
export type {
  MaskMode,
  MaskPrediction,
  MaskPredictor,
  MaskTta,
  OverlayOptions,
  PredictMaskOptions,
} from './predict.js';
export {
  colorizeMask,
  MASK_TTA_MODES,
  overlayMask,
  predictMask,
  segmentationPalette,
} from './predict.js';
export type {
  SegmentationBatch,
  SegmentationLossOptions,
  SegmentationLossValues,
  SegmentationStepResult,
  SegmentationTrainerOptions,
  SegmentationTrainerState,
} from './trainer.js';
export { SegmentationTrainer } from './trainer.js';
export type { UnetInterpolation, UnetOptions } from './unet.js';
export { Unet, UnetDecoder, UnetDecoderBlock } from './unet.js';
