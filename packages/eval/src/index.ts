export type { CategoryInfo, CategoryMapMode } from './categories.js';
export { CategoryMap } from './categories.js';
export type {
  AnnFilter,
  CocoAnnotation,
  CocoCategory,
  CocoDatasetJson,
  CocoImage,
  CocoImageTarget,
  CocoIndexOptions,
  CocoResult,
  ImageId,
  LoadResOptions,
} from './coco.js';
export {
  CocoIndex,
  cocoImageTarget,
  compareIds,
  loadCocoDataset,
  parseCocoResults,
  uniqueSorted,
} from './coco.js';
export type { CocoAccumulation, CocoEvalParams, EvalImage, IouType } from './cocoeval.js';
export {
  COCO_STAT_NAMES,
  CocoEval,
  cocoIouThresholds,
  cocoRecallThresholds,
  defaultCocoParams,
} from './cocoeval.js';
export type { DetectionRows, ToCocoResultsOptions } from './convert.js';
export { detectionsToCocoResults } from './convert.js';
export { parseCsv, parseCsvObjects } from './csv.js';
export { EvalArgumentError, parseJsonText } from './errors.js';
export type { Box, CocoRle, Polygons, Rle, Segmentation } from './mask.js';
export {
  bboxIou,
  decodeMask,
  decodeMaskColumnMajor,
  encodeMask,
  encodeMaskColumnMajor,
  fromCocoRle,
  iou,
  makeRle,
  rleArea,
  rleFromBbox,
  rleFromPolygon,
  rleFromString,
  rleIou,
  rleMerge,
  rleToBbox,
  rleToString,
  segmentationToRle,
  toCocoRle,
  toUncompressedCocoRle,
} from './mask.js';
export { formatFixed, linspace, npMean, npSum, pairwiseSum } from './numeric.js';
export type { OpenImagesBox, OpenImagesClass } from './openimages.js';
export { openImagesToCoco, parseOpenImagesBoxes, parseOpenImagesClasses } from './openimages.js';
export type { CocoCategoryAP, CocoEvalResult, EvaluateCocoOptions, TableOptions } from './report.js';
export { evaluateCoco, formatCocoReport, formatPerCategoryTable } from './report.js';
export type {
  VocApMetric,
  VocClassResult,
  VocEvalOptions,
  VocEvalResult,
  VocImageDetections,
  VocImageGroundTruth,
} from './voc.js';
export { evaluateVoc, vocAp11Point, vocApAllPoints, vocBoxIou } from './voc.js';
export type { VocAnnotation, VocObject, VocTarget, VocTargetOptions } from './vocdata.js';
export {
  parseClassImageSet,
  parseImageSet,
  parseVocXml,
  VOC_CLASSES,
  vocAnnotationToTarget,
} from './vocdata.js';
export type { XmlElement } from './xml.js';
export { parseXml, xmlChild, xmlChildren, xmlChildText } from './xml.js';
