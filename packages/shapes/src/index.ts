export type {
  DatasetOptions,
  DatasetStats,
  ShapesAnnotation,
  ShapesCategory,
  ShapesCoco,
  ShapesImage,
  ShapesItem,
  SizeBucket,
} from './dataset.js';
export {
  datasetStats,
  defaultFileName,
  emptyCoco,
  generateDataset,
  imageSeed,
  iterateDataset,
  SHAPES_GENERATOR_VERSION,
  sceneAnnotations,
  sceneRles,
  sizeBucket,
} from './dataset.js';
export { vocPalette } from './palette.js';
export { createRng, hashSeed, Rng } from './rng.js';
export type { ResolvedSceneOptions, Scene, SceneOptions, ShapeClass, ShapeObject } from './scene.js';
export {
  categoryIdOf,
  generateScene,
  objectMask,
  resolveSceneOptions,
  SHAPE_CATEGORIES,
  SHAPE_CLASSES,
  sceneTargets,
} from './scene.js';
