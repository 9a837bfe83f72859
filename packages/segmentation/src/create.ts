import { check, EffdetArgumentError } from '@effdet/layers';
import { DeepLabV3, type DeepLabV3Options, DeepLabV3Plus, type DeepLabV3PlusOptions } from './deeplab.js';
import type { EncoderOptions } from './encoder.js';
import type { SegmentationModel } from './model.js';
import type { AuxParams } from './modules.js';
import { Unet, type UnetOptions } from './unet.js';

/** The architectures this package builds, by smp class name. */
export type ArchName = 'Unet' | 'DeepLabV3' | 'DeepLabV3Plus';

const ARCHS: Record<string, ArchName> = {
  unet: 'Unet',
  deeplabv3: 'DeepLabV3',
  deeplabv3plus: 'DeepLabV3Plus',
};

/** smp class names of the supported architectures. */
export function listArchitectures(): ArchName[] {
  return Object.values(ARCHS);
}

/** Resolves an architecture name case-insensitively (`unet`, `DeepLabV3Plus`, ...). */
export function resolveArchitecture(arch: string): ArchName {
  const a = ARCHS[String(arch).toLowerCase()];
  if (!a) {
    throw new EffdetArgumentError(
      `createSegmentationModel: unknown architecture '${arch}'; available: ${listArchitectures().join(', ')}`,
    );
  }
  return a;
}

export type SegmentationOptions = UnetOptions | DeepLabV3Options | DeepLabV3PlusOptions;

/** smp `create_model(arch, ...)`: builds any supported architecture by name (weights allocated lazily). */
export function createSegmentationModel(arch: 'Unet' | 'unet', options: UnetOptions): SegmentationModel;
export function createSegmentationModel(arch: string, options: SegmentationOptions): SegmentationModel;
export function createSegmentationModel(arch: string, options: SegmentationOptions): SegmentationModel {
  switch (resolveArchitecture(arch)) {
    case 'Unet':
      return new Unet(options as UnetOptions);
    case 'DeepLabV3':
      return new DeepLabV3(options as DeepLabV3Options);
    case 'DeepLabV3Plus':
      return new DeepLabV3Plus(options as DeepLabV3PlusOptions);
  }
}

/** smp keyword argument -> option name of this package. */
const KWARGS: Record<string, string> = {
  encoder_name: 'encoderName',
  encoder_depth: 'encoderDepth',
  in_channels: 'inChannels',
  classes: 'classes',
  activation: 'activation',
  aux_params: 'auxParams',
  decoder_channels: 'decoderChannels',
  decoder_use_norm: 'decoderUseNorm',
  decoder_use_batchnorm: 'decoderUseBatchnorm',
  decoder_attention_type: 'decoderAttentionType',
  decoder_interpolation: 'decoderInterpolation',
  encoder_output_stride: 'encoderOutputStride',
  decoder_atrous_rates: 'decoderAtrousRates',
  decoder_aspp_separable: 'decoderAsppSeparable',
  decoder_aspp_dropout: 'decoderAsppDropout',
  upsampling: 'upsampling',
};

/** timm `create_model` keyword arguments smp passes through (`**kwargs`). */
const TIMM_KWARGS: Record<string, keyof EncoderOptions> = {
  drop_rate: 'dropRate',
  drop_path_rate: 'dropPathRate',
  pad_type: 'padding',
  bn_eps: 'bnEps',
  bn_momentum: 'bnMomentum',
  act_layer: 'act',
};

/** smp arguments that change nothing here (weights always come from a checkpoint; hub fields). */
const IGNORED = new Set(['encoder_weights', '_model_class', 'arch']);

/**
 * Converts smp keyword arguments (Python names, as in a `config.json` from `save_pretrained` or a parity dump's
 * `kwargs`) to this package's options. camelCase names pass through; `None` must arrive as `null`.
 */
export function smpKwargsToOptions(kwargs: Record<string, unknown>): SegmentationOptions {
  check(
    typeof kwargs === 'object' && kwargs !== null && !Array.isArray(kwargs),
    () => `smpKwargsToOptions: expected an object of smp keyword arguments, got ${JSON.stringify(kwargs)}`,
  );
  const out: Record<string, unknown> = {};
  const encoderOptions: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(kwargs)) {
    if (IGNORED.has(k)) continue;
    if (k in TIMM_KWARGS) {
      if (v !== null) encoderOptions[TIMM_KWARGS[k]] = v;
      continue;
    }
    const name = KWARGS[k] ?? (Object.values(KWARGS).includes(k) || k === 'encoderOptions' ? k : null);
    if (name === null) {
      throw new EffdetArgumentError(
        `smpKwargsToOptions: unknown smp argument '${k}'; known: ${[...Object.keys(KWARGS), ...Object.keys(TIMM_KWARGS)].join(', ')}`,
      );
    }
    // smp prunes None-valued keyword arguments: they mean "the default".
    if (v === null && name !== 'activation' && name !== 'auxParams' && name !== 'decoderAttentionType')
      continue;
    out[name] = name === 'auxParams' && v !== null ? auxFromSmp(v) : v;
  }
  if (Object.keys(encoderOptions).length) {
    out.encoderOptions = { ...(out.encoderOptions as object | undefined), ...encoderOptions };
  }
  return out as unknown as SegmentationOptions;
}

function auxFromSmp(v: unknown): AuxParams {
  check(
    typeof v === 'object' && v !== null,
    () => `smpKwargsToOptions: aux_params must be a dict, got ${JSON.stringify(v)}`,
  );
  return { ...(v as AuxParams) };
}

/**
 * Builds a model from an smp `config.json` (`save_pretrained`: `_model_class` plus the constructor arguments) or
 * from `{arch, encoder_name, ...}`.
 */
export function createFromSmpConfig(config: Record<string, unknown>): SegmentationModel {
  check(
    typeof config === 'object' && config !== null,
    () => `createFromSmpConfig: expected an smp config object, got ${JSON.stringify(config)}`,
  );
  const arch = (config._model_class ?? config.arch) as string | undefined;
  check(
    typeof arch === 'string',
    () =>
      `createFromSmpConfig: the config names no architecture ('_model_class' or 'arch'); keys: ${Object.keys(config).join(', ')}`,
  );
  return createSegmentationModel(arch, smpKwargsToOptions(config));
}

/**
 * The smp keyword arguments of a model built here (`_model_class` plus the constructor arguments in smp's
 * Python names, as smp's `save_pretrained` writes `config.json`); `createFromSmpConfig` rebuilds the model
 * from it. A function activation cannot be written down and throws.
 */
export function toSmpConfig(model: { arch: string; options: object }): Record<string, unknown> {
  const fn = 'toSmpConfig';
  check(
    model !== null &&
      typeof model === 'object' &&
      typeof model.arch === 'string' &&
      typeof model.options === 'object',
    () => `${fn}: expected a segmentation model (with arch and options), got ${String(model)}`,
  );
  const pyName = new Map(Object.entries(KWARGS).map(([py, camel]) => [camel, py]));
  const timmName = new Map(Object.entries(TIMM_KWARGS).map(([py, camel]) => [camel as string, py]));
  const out: Record<string, unknown> = { _model_class: resolveArchitecture(model.arch) };
  for (const [k, v] of Object.entries(model.options)) {
    if (v === undefined) continue;
    if (k === 'encoderOptions') {
      for (const [ek, ev] of Object.entries(v as Record<string, unknown>)) {
        const py = timmName.get(ek);
        check(py !== undefined, () => `${fn}: encoder option '${ek}' has no smp name`);
        if (ev !== undefined) out[py] = ev;
      }
      continue;
    }
    check(
      typeof v !== 'function',
      () => `${fn}: option '${k}' is a function, which a config cannot hold; use a named activation`,
    );
    const py = pyName.get(k);
    check(py !== undefined, () => `${fn}: option '${k}' has no smp name`);
    out[py] = v;
  }
  return out;
}
