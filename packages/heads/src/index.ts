export type { HeadOptions } from './head.js';
export { HeadNet } from './head.js';
