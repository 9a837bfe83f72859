// Browser-safe entry of @effdet/weights: format I/O on bytes, ByteSources and fetch.
// File-system helpers (loadWeights, saveWeights, openTfCheckpoint by path, ...) are in '@effdet/weights/node'.

export type { ByteSource } from './bytes.js';
export { concatBytes, memorySource } from './bytes.js';
export { crc32, crc32c, maskCrc, unmaskCrc } from './crc.js';
export { WeightsFormatError } from './errors.js';
export type { LoadOptions } from './load.js';
export { applyEma, detectFormat, openWeightsSource, parseWeights, renameReader } from './load.js';
export type { UnpickleOptions, UnpickleResult } from './pickle.js';
export { PyCallable, PyOpaque, PyTuple, unpickle } from './pickle.js';
export type { PthOptions } from './pth.js';
export { isLegacyPth, LEGACY_MAGIC, openPth, openPthLegacy, openPthZip, readPth } from './pth.js';
export type {
  AnyTypedArray,
  DType,
  NumericDType,
  RawTensor,
  RawTensorMap,
  TypedArrayOf,
} from './raw_tensor.js';
export {
  bfloat16BitsToFloat32,
  byteLengthOf,
  checkRawTensor,
  DTYPES,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16,
  float32ToFloat16Bits,
  fromStrings,
  fromTypedArray,
  ITEM_SIZE,
  isDType,
  newTensorMap,
  numElements,
  tfDTypeOf,
  toFloat32,
  toInt32,
  toTypedArray,
} from './raw_tensor.js';
export type { NameFilter, TensorInfo, WeightsFormat, WeightsReader } from './reader.js';
export type { SafetensorsContents, SafetensorsEntry, SafetensorsHeader } from './safetensors.js';
export {
  openSafetensors,
  parseSafetensorsHeader,
  readSafetensors,
  readSafetensorsFrom,
  readSafetensorsHeader,
  SAFETENSORS_MAX_HEADER_BYTES,
  writeSafetensors,
} from './safetensors.js';
export { snappyDecompress } from './snappy.js';
export type { ShardReader, TfBundleEntry, TfBundleHeader, TfCheckpoint, TfIndex } from './tf_checkpoint.js';
export {
  decodeTfTensor,
  openTfCheckpointIndex,
  parseCheckpointState,
  parseTfIndex,
  TABLE_MAGIC,
  TF_EMA_SUFFIX,
  tfEmaNames,
  tfShardPath,
} from './tf_checkpoint.js';
export type { ToTensorOptions } from './tf_convert.js';
export { fromTfTensor, fromTfTensors, toTfTensor, toTfTensors } from './tf_convert.js';
export type {
  EncodeTfjsOptions,
  FetchLike,
  ShardLoader,
  TfjsArtifacts,
  TfjsManifestGroup,
  TfjsModelJson,
  TfjsQuantization,
  TfjsWeightSpec,
} from './tfjs_format.js';
export {
  decodeTfjsWeights,
  encodeTfjs,
  fetchTfjs,
  openTfjs,
  parseModelJson,
  readTfjsArtifacts,
  stringifyModelJson,
  TFJS_DEFAULT_SHARD_BYTES,
} from './tfjs_format.js';
export type { InflateRaw, ZipArchive, ZipEntry, ZipOptions } from './zip.js';
export { isZip, openZip } from './zip.js';
