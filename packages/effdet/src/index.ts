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
export type { EfficientDetIntermediates, EfficientDetOutputs } from './model.js';
export { createEfficientDet, EfficientDet } from './model.js';
export * from './postprocess_exports.js';
export type { EfficientDetTfNameOptions } from './tf_names.js';
export { efficientDetTfToTorchNames, loadTfCheckpoint } from './tf_names.js';
export { loadRawStateDict } from './weights.js';
