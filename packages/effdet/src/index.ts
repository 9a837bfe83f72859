export type {
  AugmentResult,
  AugmentSample,
  MaskPlane,
  RandomResizePadOptions,
  ResizePadOptions,
  TrainAugmentOptions,
  UniformRandom,
} from './augment.js';
export {
  cocoBoxesToYxyx,
  horizontalFlip,
  randomHorizontalFlip,
  randomResizePad,
  resizePad,
  trainAugment,
  verticalFlip,
  yxyxToCocoBoxes,
} from './augment.js';
export type { EffDetConfig, FpnResample } from './config.js';
export {
  aspectPairs,
  createEfficientDetConfig,
  defaultEffDetConfig,
  fillColor,
  getEfficientDetConfig,
  listEfficientDetModels,
  numAnchors,
  numLevels,
} from './config.js';
export type { DetectOptions, DetectorOptions, DetectTensorsResult } from './detector.js';
export { buildDetector, createDetector, Detector, detectorConfig } from './detector.js';
export type {
  AnchorLabelerOptions,
  BatchLabelOptions,
  BatchLabels,
  BoxesInput,
  ImageLabels,
  LabelOptions,
  LabelTensors,
} from './labeler.js';
export {
  AnchorLabeler,
  CLASS_TARGET_IGNORED,
  CLASS_TARGET_NEGATIVE,
  disposeLabelTensors,
  labelsToTensors,
} from './labeler.js';
export type { DetectionLossOptions, DetectionLossResult, HeadOutputs } from './loss.js';
export { detectionLoss, focalLoss, huberLoss, lossOptionsFromConfig } from './loss.js';
export type { EfficientDetIntermediates, EfficientDetOutputs } from './model.js';
export { createEfficientDet, EfficientDet } from './model.js';
export * from './postprocess_exports.js';
export type { EfficientDetTfNameOptions } from './tf_names.js';
export { efficientDetTfToTorchNames, loadTfCheckpoint } from './tf_names.js';
export type {
  DetectionBatch,
  DetectionTrainerOptions,
  LossValues,
  TrainerState,
  TrainStepResult,
} from './trainer.js';
export { DetectionTrainer } from './trainer.js';
export { loadRawStateDict } from './weights.js';
