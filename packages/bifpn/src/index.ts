export type { FpnInputInfo, FpnOptions, ResampleType } from './fpn.js';
export { BiFpn, BiFpnLayer, Fnode, FpnCombine, featSizes, ResampleFeatureMap } from './fpn.js';
export type { FpnNode, FpnTopology, WeightMethod } from './topology.js';
export { bifpnConfig, getFpnConfig, listFpnNames, panConfig, qufpnConfig } from './topology.js';
