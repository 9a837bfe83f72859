export type { BackendChoice } from './backend.js';
export { useBackend } from './backend.js';
export type { InfoOptions, InfoResult } from './info.js';
export { formatInfo, modelInfo } from './info.js';
