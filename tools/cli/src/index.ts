export type { BackendChoice } from './backend.js';
export { useBackend } from './backend.js';
export type { BenchOptions, BenchResult, Stats } from './bench.js';
export { bench, formatBench } from './bench.js';
export type {
  BenchEvalOptions,
  BenchEvalResult,
  BenchEvalTimes,
  SyntheticCocoOptions,
} from './bench_eval.js';
export { benchEval, formatBenchEval, syntheticCoco } from './bench_eval.js';
export type { DiffRow } from './compare.js';
export { diffArrays, formatDiffTable } from './compare.js';
export type { ConvertOptions, ConvertResult } from './convert.js';
export { convert, formatInspect, inspect } from './convert.js';
export type {
  DatasetKind,
  EvalDataset,
  ImageBatch,
  ImageLoaderOptions,
  ImageRecord,
  LabelMapChoice,
  LabelMapResult,
  LoadDatasetOptions,
  LoadedImage,
  Shard,
} from './data.js';
export { chooseLabelMap, ImageLoader, loadDataset, parseShard, selectSubset } from './data.js';
export type { CliIO, EvalCommandOptions, MergeInput } from './evaluate.js';
export {
  formatEvalReport,
  formatResultsJson,
  mergeResults,
  runEval,
  runEvalCommand,
  writeResultsJson,
} from './evaluate.js';
export type { DetectorInfo, InfoOptions, InfoResult } from './info.js';
export { detectorInfo, formatDetectorInfo, formatInfo, isDetector, modelInfo } from './info.js';
export type { ParityOptions, ParityReport } from './parity.js';
export { defaultWeightsPath, runParity } from './parity.js';
export type { PredictOptions, PredictResult } from './predict.js';
export { formatPredictions, predict } from './predict.js';
export type { ProgressOptions, ProgressStream } from './progress.js';
export { formatDuration, Progress } from './progress.js';
export type { ValidateOptions, ValidateResult, ValidationDetector } from './validate.js';
export { formatValidateReport, runValidate } from './validate.js';
