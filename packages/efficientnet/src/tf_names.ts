/**
 * Official TensorFlow (google/automl, tensorflow/tpu) EfficientNet checkpoint names <-> our state-dict names,
 * and a loader for name-based TF checkpoints (TensorBundle V2, read by `@effdet/weights`).
 *
 * TF layouts equal our TF.js layouts: conv kernels HWIO `[kh,kw,in,out]`, depthwise kernels `[k,k,C,1]`,
 * dense kernels `[in,out]`; BatchNorm `gamma/beta/moving_mean/moving_variance` are our
 * `weight/bias/running_mean/running_var`. So loading is a pure renaming, checked shape by shape.
 *
 * TF naming (automl `backbone/efficientnet_model.py`): blocks are numbered globally (`blocks_0` ..
 * `blocks_{N-1}`) across stages; inside a block Keras counters name the convs `conv2d`, `conv2d_1` and the
 * BatchNorms `tpu_batch_normalization`, `_1`, `_2` in creation order, so a block without an expansion conv
 * (the `ds` block of stage 0) has one conv and one BN fewer before its depthwise conv.
 *
 * This module depends only on `@effdet/layers`: the checkpoint reader is typed structurally
 * (`@effdet/weights`' `WeightsReader` / `TfCheckpoint` satisfy `TfVariableReader`).
 */

import {
  BatchNorm2d,
  Conv2d,
  DepthwiseSeparable,
  InvertedResidual,
  Linear,
  type Module,
  type Parameter,
  type SqueezeExcite,
  StateDictError,
  shapeStr,
} from '@effdet/layers';
import { type DType, toFloat32 } from '@effdet/weights';
import type { EfficientNet } from './model.js';
import { createModel } from './registry.js';

/** One state-dict entry of ours and the TF variable(s) it is made of. */
export interface TfVariableMapping {
  /** Our (PyTorch reference) state-dict name, e.g. `blocks.1.0.conv_pw.weight`. */
  torch: string;
  /**
   * The TF variable names: one, or one scalar per element for vectors TF keeps as separate scalars (the
   * BiFPN fusion weights `WSM`, `WSM_1`, ...), concatenated in this order.
   */
  tf: string[];
  /** TF shape of each variable in `tf` (TF layout, equal to the TF.js layout). */
  tfShapes: number[][];
  /** Our parameter's shape in TF.js layout (what `loadStateDict(..., {layout: 'tfjs'})` expects). */
  shape: number[];
}

/** BatchNorm variable scope spellings seen in released checkpoints. */
export type TfBatchNormName = 'tpu_batch_normalization' | 'batch_normalization';

export interface EfficientNetTfNameOptions {
  /**
   * TF scope of the network, e.g. `efficientnet-b0/` (default: derived from the model name, see
   * `efficientNetTfScope`). A trailing '/' is added when missing; '' means no scope.
   */
  tfPrefix?: string;
  /** Prepended to our names (e.g. `backbone.` inside a detector). Default ''. */
  torchPrefix?: string;
  /** BatchNorm scope spelling. Default `tpu_batch_normalization` (the loader also accepts the other one). */
  bnName?: TfBatchNormName;
}

/** The part of a checkpoint reader the loaders use (`@effdet/weights` readers satisfy it). */
export interface TfVariableReader {
  readonly entries: readonly { name: string; dtype: string; shape: readonly number[] }[];
  read(name: string): Promise<{ dtype: string; shape: readonly number[]; data: Uint8Array }>;
}

export interface TfLoadOptions {
  /**
   * Use the `NAME/ExponentialMovingAverage` shadow copy of each variable when the checkpoint has one (the
   * official inference rule, and what the published accuracies use). Default true.
   */
  ema?: boolean;
  /**
   * Refuse checkpoint variables inside the model's scope that nothing maps to (optimizer slots and
   * `global_step` are always ignored). Default true.
   */
  strict?: boolean;
}

export interface TfLoadResult {
  /** Our state-dict name -> the stored checkpoint names it was read from. */
  sources: Record<string, string[]>;
  /** Checkpoint variables in scope that were not used (only non-empty with `strict: false`). */
  unused: string[];
}

/** Suffix of `tf.train.ExponentialMovingAverage` shadow variables. */
const EMA_SUFFIX = '/ExponentialMovingAverage';

/** Checkpoint keys that are training state, never model weights. */
const IGNORED =
  /(^|\/)(global_step|beta1_power|beta2_power)$|\/(Momentum|Adam(_\d+)?|RMSProp(_\d+)?|Adagrad|Ftrl(_\d+)?)$/;

/** True for optimizer slots (`/Momentum`, `/Adam*`, `/RMSProp*`, ...) and `global_step`. */
export function isTfTrainingStateName(name: string): boolean {
  return IGNORED.test(name);
}

const BN_LEAVES: Readonly<Record<string, string>> = {
  weight: 'gamma',
  bias: 'beta',
  running_mean: 'moving_mean',
  running_var: 'moving_variance',
};

/**
 * Collects mappings for leaf modules. Used by the EfficientNet and EfficientDet name builders so that
 * every mapping carries our parameter's exact shape.
 */
export class TfMappingBuilder {
  readonly mappings: TfVariableMapping[] = [];

  /** Maps one parameter (by its leaf name in `module`) to one TF variable. */
  param(torchPath: string, module: Module, leaf: string, tfName: string): void {
    const p = ownState(module).get(leaf);
    if (p === undefined) {
      throw new Error(`tf_names: ${torchPath || '(root)'} has no parameter or buffer '${leaf}'`);
    }
    this.mappings.push({
      torch: join(torchPath, leaf),
      tf: [tfName],
      tfShapes: [[...p.shape]],
      shape: [...p.shape],
    });
  }

  /** Maps a vector parameter to one TF scalar per element. */
  scalars(torchPath: string, module: Module, leaf: string, tfNames: string[]): void {
    const p = ownState(module).get(leaf);
    if (p === undefined || p.shape.length !== 1 || p.shape[0] !== tfNames.length) {
      throw new Error(
        `tf_names: ${join(torchPath, leaf)} must be a vector of ${tfNames.length} elements to take ${tfNames.join(', ')}`,
      );
    }
    this.mappings.push({
      torch: join(torchPath, leaf),
      tf: [...tfNames],
      tfShapes: tfNames.map(() => []),
      shape: [...p.shape],
    });
  }

  /** Conv2d -> `scope/kernel` (`scope/depthwise_kernel` for depthwise) and `scope/bias`. */
  conv(torchPath: string, conv: Module, tfScope: string, kernelName?: string): void {
    if (!(conv instanceof Conv2d)) throw new Error(`tf_names: ${torchPath} is not a Conv2d`);
    for (const leaf of ownState(conv).keys()) {
      if (leaf === 'weight') {
        this.param(
          torchPath,
          conv,
          leaf,
          `${tfScope}/${kernelName ?? (conv.depthwise ? 'depthwise_kernel' : 'kernel')}`,
        );
      } else if (leaf === 'bias') this.param(torchPath, conv, leaf, `${tfScope}/bias`);
      else throw new Error(`tf_names: unexpected Conv2d entry ${join(torchPath, leaf)}`);
    }
  }

  /** BatchNorm2d -> `scope/{gamma,beta,moving_mean,moving_variance}`. */
  bn(torchPath: string, bn: Module | null, tfScope: string): void {
    if (!(bn instanceof BatchNorm2d)) throw new Error(`tf_names: ${torchPath} is not a BatchNorm2d`);
    for (const leaf of ownState(bn).keys()) {
      const t = BN_LEAVES[leaf];
      if (t === undefined) throw new Error(`tf_names: unexpected BatchNorm entry ${join(torchPath, leaf)}`);
      this.param(torchPath, bn, leaf, `${tfScope}/${t}`);
    }
  }

  /** Linear -> `scope/kernel` (`[in, out]`, our TF.js layout) and `scope/bias`. */
  dense(torchPath: string, lin: Module, tfScope: string): void {
    if (!(lin instanceof Linear)) throw new Error(`tf_names: ${torchPath} is not a Linear`);
    for (const leaf of ownState(lin).keys()) {
      this.param(torchPath, lin, leaf, `${tfScope}/${leaf === 'weight' ? 'kernel' : leaf}`);
    }
  }

  /** Throws unless every state entry of `model` (named with `torchPrefix`) is mapped exactly once. */
  checkCoverage(model: Module, torchPrefix: string, where: string): void {
    const mapped = new Map<string, number>();
    for (const m of this.mappings) mapped.set(m.torch, (mapped.get(m.torch) ?? 0) + 1);
    const names = model.namedState().map(([n]) => torchPrefix + n);
    const unmapped = names.filter((n) => !mapped.has(n));
    const twice = [...mapped].filter(([, c]) => c > 1).map(([n]) => n);
    if (unmapped.length || twice.length) {
      throw new Error(
        `${where}: no official TF name for ${unmapped.length} entries (${unmapped.slice(0, 8).join(', ')}` +
          `${unmapped.length > 8 ? ', ...' : ''})${twice.length ? `; mapped twice: ${twice.join(', ')}` : ''}`,
      );
    }
  }
}

function join(path: string, leaf: string): string {
  return path ? `${path}.${leaf}` : leaf;
}

/** A module's own parameters and buffers (not its children's), by leaf name. */
function ownState(m: Module): Map<string, Parameter> {
  const out = new Map<string, Parameter>();
  for (const [name, p] of m.namedState()) if (!name.includes('.')) out.set(name, p);
  return out;
}

/** `tpu_batch_normalization`, `tpu_batch_normalization_1`, ... */
function bnScope(base: TfBatchNormName, i: number): string {
  return i === 0 ? base : `${base}_${i}`;
}

/** `conv2d`, `conv2d_1`, ... */
function convScope(i: number): string {
  return i === 0 ? 'conv2d' : `conv2d_${i}`;
}

/**
 * The official TF scope of a registered EfficientNet name, without the trailing '/':
 * `tf_efficientnet_b3` / `efficientnet_b3` / `tf_efficientnet_b3_ap` -> `efficientnet-b3`,
 * `tf_efficientnet_lite2` -> `efficientnet-lite2`, `tf_efficientnet_l2` -> `efficientnet-l2`; null otherwise.
 */
export function efficientNetTfScope(modelName: string): string | null {
  const m = /^(?:tf_)?efficientnet_(b\d|l2|lite\d)(?:_[a-z0-9]+)*$/.exec(modelName);
  return m ? `efficientnet-${m[1]}` : null;
}

function normalisePrefix(p: string): string {
  return p === '' || p.endsWith('/') ? p : `${p}/`;
}

/**
 * The TF variable names of an EfficientNet (an instance or a registered name; names build a classifier with
 * lazy, unallocated weights) and the state-dict entry each feeds: stem, every block, and for classifiers the
 * head conv, its BN and the dense layer. Supports the `ds` and `ir` blocks of EfficientNet B0-B8/L2 and Lite.
 */
export function tfToTorchNames(
  model: EfficientNet | string,
  options: EfficientNetTfNameOptions = {},
): TfVariableMapping[] {
  const net = typeof model === 'string' ? createModel(model) : model;
  const where = `tfToTorchNames(${net.name})`;
  let prefix = options.tfPrefix;
  if (prefix === undefined) {
    const scope = efficientNetTfScope(net.name);
    if (scope === null) {
      throw new Error(`${where}: cannot derive the TF scope from the model name; pass options.tfPrefix`);
    }
    prefix = scope;
  }
  const p = normalisePrefix(prefix);
  const tp = options.torchPrefix ?? '';
  const bnBase = options.bnName ?? 'tpu_batch_normalization';
  const b = new TfMappingBuilder();

  b.conv(`${tp}conv_stem`, net.conv_stem, `${p}stem/conv2d`);
  b.bn(`${tp}bn1`, net.bn1, `${p}stem/${bnBase}`);
  let k = 0;
  net.blocks.items.forEach((stage, s) => {
    stage.items.forEach((block, j) => {
      const tpath = `${tp}blocks.${s}.${j}`;
      const scope = `${p}blocks_${k++}`;
      let conv = 0;
      let bn = 0;
      const seMap = (se: SqueezeExcite | null) => {
        if (se === null) return;
        b.conv(`${tpath}.se.conv_reduce`, se.conv_reduce, `${scope}/se/conv2d`);
        b.conv(`${tpath}.se.conv_expand`, se.conv_expand, `${scope}/se/conv2d_1`);
      };
      if (block instanceof DepthwiseSeparable) {
        // No expansion: depthwise, BN, SE, project conv, BN.
        b.conv(`${tpath}.conv_dw`, block.conv_dw, `${scope}/depthwise_conv2d`);
        b.bn(`${tpath}.bn1`, block.bn1, `${scope}/${bnScope(bnBase, bn++)}`);
        seMap(block.se);
        b.conv(`${tpath}.conv_pw`, block.conv_pw, `${scope}/${convScope(conv++)}`);
        b.bn(`${tpath}.bn2`, block.bn2, `${scope}/${bnScope(bnBase, bn++)}`);
      } else if (block instanceof InvertedResidual) {
        // TF builds no expansion conv for expand_ratio 1; timm always has conv_pw in an `ir` block.
        if (block.midChannels === block.inChannels) {
          throw new Error(
            `${where}: block ${tpath} is an inverted residual without expansion, which TF builds differently`,
          );
        }
        b.conv(`${tpath}.conv_pw`, block.conv_pw, `${scope}/${convScope(conv++)}`);
        b.bn(`${tpath}.bn1`, block.bn1, `${scope}/${bnScope(bnBase, bn++)}`);
        b.conv(`${tpath}.conv_dw`, block.conv_dw, `${scope}/depthwise_conv2d`);
        b.bn(`${tpath}.bn2`, block.bn2, `${scope}/${bnScope(bnBase, bn++)}`);
        seMap(block.se);
        b.conv(`${tpath}.conv_pwl`, block.conv_pwl, `${scope}/${convScope(conv++)}`);
        b.bn(`${tpath}.bn3`, block.bn3, `${scope}/${bnScope(bnBase, bn++)}`);
      } else {
        throw new Error(
          `${where}: block ${tpath} is a ${block.constructor.name}; official TF EfficientNet checkpoints have only ` +
            'depthwise-separable and inverted-residual blocks',
        );
      }
    });
  });
  if (net.conv_head) b.conv(`${tp}conv_head`, net.conv_head, `${p}head/conv2d`);
  if (net.bn2) b.bn(`${tp}bn2`, net.bn2, `${p}head/${bnBase}`);
  if (net.classifier) b.dense(`${tp}classifier`, net.classifier, `${p}head/dense`);
  b.checkCoverage(net, tp, where);
  return b.mappings;
}

/** The other BatchNorm spelling of a TF name, or null when it has no BatchNorm scope. */
function otherBnSpelling(name: string): string | null {
  if (/(^|\/)tpu_batch_normalization(_\d+)?\//.test(name)) {
    return name.replace(/(^|\/)tpu_batch_normalization((_\d+)?\/)/, '$1batch_normalization$2');
  }
  if (/(^|\/)batch_normalization(_\d+)?\//.test(name)) {
    return name.replace(/(^|\/)batch_normalization((_\d+)?\/)/, '$1tpu_batch_normalization$2');
  }
  return null;
}

const FLOAT_DTYPES = new Set(['float32', 'float16', 'bfloat16', 'float64']);

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function listNames(names: string[], max = 40): string {
  const head = names.slice(0, max).join(', ');
  return names.length > max ? `${head}, ... (${names.length - max} more)` : head;
}

/**
 * Loads checkpoint variables into `model` by the given mappings (the shared core of the EfficientNet and
 * EfficientDet loaders). Everything is checked before anything is read: one StateDictError lists every
 * missing variable, every shape or dtype mismatch and (with `strict`) every unused variable that
 * `inScope` claims for this model. `NAME/ExponentialMovingAverage` is preferred when `ema` (default).
 */
export async function loadTfVariables(
  model: Module,
  mappings: readonly TfVariableMapping[],
  reader: TfVariableReader,
  options: TfLoadOptions & {
    /** Which checkpoint variables belong to this model (for the unused-variable check). */
    inScope?: (name: string) => boolean;
    /** Prefix of our names to strip before `loadStateDict` (e.g. 'backbone.' when loading a sub-module). */
    torchPrefix?: string;
    /** Function name for messages. */
    fn?: string;
  } = {},
): Promise<TfLoadResult> {
  const fn = options.fn ?? 'loadTfVariables';
  const ema = options.ema ?? true;
  const strict = options.strict ?? true;
  const inScope = options.inScope ?? (() => true);
  const torchPrefix = options.torchPrefix ?? '';
  const stored = new Map(reader.entries.map((e) => [e.name, e]));
  const has = (n: string) => stored.has(n) || stored.has(n + EMA_SUFFIX);

  const missing: string[] = [];
  const mismatched: { name: string; expected: number[]; got: number[] }[] = [];
  const badDtype: string[] = [];
  const used = new Set<string>();
  const plan: { mapping: TfVariableMapping; sources: string[] }[] = [];
  for (const m of mappings) {
    const sources: string[] = [];
    m.tf.forEach((tfName, i) => {
      let base = tfName;
      if (!has(base)) {
        const alt = otherBnSpelling(tfName);
        if (alt !== null && has(alt)) base = alt;
      }
      if (!has(base)) {
        missing.push(`${tfName} (for ${m.torch})`);
        return;
      }
      used.add(base);
      const pick = ema && stored.has(base + EMA_SUFFIX) ? base + EMA_SUFFIX : base;
      const e = stored.get(pick);
      if (e === undefined) {
        // ema: false and only the shadow copy exists.
        missing.push(`${base} (for ${m.torch}; only ${base}${EMA_SUFFIX} is stored and ema is off)`);
        return;
      }
      if (!sameShape(e.shape, m.tfShapes[i])) {
        mismatched.push({
          name: `${pick} (for ${m.torch})`,
          expected: [...m.tfShapes[i]],
          got: [...e.shape],
        });
        return;
      }
      if (!FLOAT_DTYPES.has(e.dtype)) {
        badDtype.push(`${pick} is ${e.dtype}`);
        return;
      }
      sources.push(pick);
    });
    plan.push({ mapping: m, sources });
  }
  const unused: string[] = [];
  for (const name of stored.keys()) {
    if (isTfTrainingStateName(name)) continue;
    const base = name.endsWith(EMA_SUFFIX) ? name.slice(0, -EMA_SUFFIX.length) : name;
    if (base !== name && stored.has(base)) continue; // the raw copy is listed on its own
    if (!used.has(base) && inScope(base)) unused.push(base);
  }
  if (missing.length || mismatched.length || badDtype.length || (strict && unused.length)) {
    const lines = [
      `${fn}: the checkpoint does not match ${model.constructor.name} (${missing.length} missing, ` +
        `${strict ? unused.length : 0} unexpected, ${mismatched.length} mis-shaped, ${badDtype.length} non-float; ` +
        'nothing was loaded)',
    ];
    if (missing.length) lines.push(`  missing: ${listNames(missing)}`);
    if (strict && unused.length)
      lines.push(`  unexpected: ${listNames(unused)} (pass strict: false to ignore)`);
    for (const mm of mismatched.slice(0, 50)) {
      lines.push(`  mis-shaped: ${mm.name} expected ${shapeStr(mm.expected)} got ${shapeStr(mm.got)}`);
    }
    if (mismatched.length > 50) lines.push(`  ... and ${mismatched.length - 50} more mis-shaped`);
    if (badDtype.length) lines.push(`  non-float: ${listNames(badDtype)}`);
    throw new StateDictError(lines.join('\n'), missing, strict ? unused : [], mismatched);
  }
  const state = new Map<string, { shape: number[]; data: Float32Array }>();
  const sources: Record<string, string[]> = {};
  for (const { mapping, sources: src } of plan) {
    const parts: Float32Array[] = [];
    for (const name of src) {
      const raw = await reader.read(name);
      parts.push(toFloat32({ dtype: raw.dtype as DType, shape: [...raw.shape], data: raw.data }));
    }
    const data = parts.length === 1 ? parts[0] : Float32Array.from(parts.flatMap((p) => [...p]));
    let key = mapping.torch;
    if (torchPrefix) {
      if (!key.startsWith(torchPrefix)) throw new Error(`${fn}: ${key} does not start with '${torchPrefix}'`);
      key = key.slice(torchPrefix.length);
    }
    state.set(key, { shape: mapping.shape, data });
    sources[mapping.torch] = src;
  }
  model.loadStateDict(state, { layout: 'tfjs' });
  return { sources, unused };
}

/**
 * Loads an official TF EfficientNet checkpoint (classification, e.g. `efficientnet-b0/`, or the backbone part
 * of an EfficientDet checkpoint) into an EfficientNet. Picks `NAME/ExponentialMovingAverage` when present
 * (`ema`, default true), ignores optimizer slots and `global_step`, accepts `tpu_batch_normalization` and
 * `batch_normalization` scopes. Variables under the prefix that nothing maps to are an error (`strict`),
 * except the head for models without one (feature extractors). The reader is any `@effdet/weights` reader
 * (`openTfCheckpoint(dir)`, `openTfCheckpointIndex(...)`).
 */
export function loadTfCheckpointIntoEfficientNet(
  model: EfficientNet,
  reader: TfVariableReader,
  options: TfLoadOptions & { tfPrefix?: string } = {},
): Promise<TfLoadResult> {
  const mappings = tfToTorchNames(model, { tfPrefix: options.tfPrefix });
  const p = normalisePrefix(options.tfPrefix ?? `${efficientNetTfScope(model.name)}`);
  const skip: string[] = [];
  if (model.conv_head === null) skip.push(`${p}head/`);
  else if (model.classifier === null) skip.push(`${p}head/dense/`);
  return loadTfVariables(model, mappings, reader, {
    ema: options.ema,
    strict: options.strict,
    fn: 'loadTfCheckpointIntoEfficientNet',
    inScope: (n) => n.startsWith(p) && !skip.some((s) => n.startsWith(s)),
  });
}
