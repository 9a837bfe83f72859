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
export type { EfficientDetIntermediates, EfficientDetOutputs } from './model.js';
export { createEfficientDet, EfficientDet } from './model.js';
