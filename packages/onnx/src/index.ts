export type { CheckReport } from './checker.js';
export { checkOnnxModel, OP_SCHEMAS } from './checker.js';
export type { ExportOnnxOptions, OnnxExport, OnnxIo } from './export.js';
export { exportInputInfo, exportOnnx, PRODUCER_VERSION } from './export.js';
export type { Attr, ConstTensor, Dim, OnnxDType } from './graph.js';
export { attr, GraphBuilder, MAX_OPSET, MIN_OPSET } from './graph.js';
export type { PostprocessGraphOptions, PostprocessValues } from './postprocess.js';
export { buildPostprocess, buildPostprocessModel } from './postprocess.js';
export type { ModelMessage } from './proto.js';
export { decodeModel, encodeModel } from './proto.js';
export type {
  OnnxDetectorOptions,
  OnnxSessionOptions,
  OrtData,
  OrtModule,
  OrtSessionLike,
  OrtTensorLike,
} from './runtime.js';
export { loadOnnxDetector, OnnxDetector, ortSessionOptions, readOnnxMetadata } from './runtime.js';
export { OnnxExportError, supportedKernels } from './trace.js';
