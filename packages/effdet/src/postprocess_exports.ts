// Public API of anchors, box coding, NMS, post-processing, preprocessing, image inputs and COCO labels.
// index.ts re-exports this file (`export * from './postprocess_exports.js'`); node.ts is the Node-only entry.
export type { AnchorConfig, AspectRatio } from './anchors.js';
export { Anchors, featSizes, generateAnchorBoxes } from './anchors.js';
export type { BoxFormat } from './boxes.js';
export {
  BOX_CODER_EPS,
  clipBoxes,
  decodeBoxes,
  encodeBoxes,
  iouMatrix,
  xyxyToYxyx,
  yxyxToXyxy,
} from './boxes.js';
export { COCO_CATEGORY_IDS, COCO_LABELS, COCO_NUM_CLASSES, labelFor } from './coco_labels.js';
export type { BrowserPixelSource, ImageInput, PixelData, RgbImage } from './image.js';
export { imageSizeOf, imageToRgb, imageToTensor } from './image.js';
export type { NmsOptions, SoftNmsOptions, SoftNmsResult } from './nms.js';
export { argsortDescending, batchedNms, batchedSoftNms, boxIou, nms, softNms } from './nms.js';
export type {
  Detection,
  HostCandidates,
  PostProcessOptions,
  TopKCandidates,
} from './postprocess.js';
export {
  DETECTION_ROW_SIZE,
  generateDetections,
  postProcess,
  postProcessArrays,
  postProcessArraysSync,
  postProcessSync,
  selectTopK,
  toDetections,
} from './postprocess.js';
export type {
  FillColor,
  LetterboxGeometry,
  LetterboxOptions,
  LetterboxResult,
  PreprocessConvention,
  PreprocessOptions,
  PreprocessResult,
  RgbTriple,
} from './preprocess.js';
export {
  letterbox,
  letterboxGeometry,
  normalizeImage,
  preprocess,
  resizeRgbPil,
  resolveFillColor,
} from './preprocess.js';
export type { DetectionRows, MatchOptions, MatchReport } from './testing_match.js';
export { matchDetections, rowIou } from './testing_match.js';
