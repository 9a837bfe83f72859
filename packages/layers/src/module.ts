import * as tf from '@tensorflow/tfjs-core';
import { check, StateDictError, shapeStr } from './errors.js';
import { type TorchLayout, torchShapeOf } from './layout.js';

/** Creates the initial value of a parameter in TF.js layout. */
export type Initializer = (shape: number[]) => tf.Tensor;

/** A tensor given to `loadStateDict`: a TF.js tensor, or plain float data (float16 as raw `Uint16Array` bits). */
export type StateTensor =
  | tf.Tensor
  | { shape: number[]; dtype?: 'float32' | 'float16'; data: Float32Array | Float64Array | Uint16Array };

export type StateDictInput = Record<string, StateTensor> | Map<string, StateTensor>;

export interface LoadStateDictOptions {
  /** Throw when names are missing or unexpected (shape mismatches always throw). Default: true. */
  strict?: boolean;
  /** Layout of the given tensors: PyTorch (`torch`, default) or already TF.js (`tfjs`). */
  layout?: 'torch' | 'tfjs';
}

export interface LoadStateDictResult {
  missing: string[];
  unexpected: string[];
}

/**
 * A parameter or buffer. Its TF.js variable is created lazily (on first use or on load), so a model can
 * be built, counted and inspected from shapes alone, even one too large to allocate.
 */
export class Parameter {
  private variable: tf.Variable | null = null;
  private disposed = false;

  constructor(
    /** Shape in TF.js layout. */
    readonly shape: readonly number[],
    readonly layout: TorchLayout,
    private init: Initializer,
    /** False for buffers (BatchNorm running statistics). */
    readonly trainable: boolean,
  ) {}

  /** The PyTorch state-dict shape. */
  get torchShape(): number[] {
    return torchShapeOf(this.layout, this.shape);
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get allocated(): boolean {
    return this.variable !== null;
  }

  /** The TF.js variable, allocated from the initializer on first access. */
  get value(): tf.Variable {
    check(!this.disposed, () => 'Parameter.value: the module was disposed');
    if (this.variable === null) {
      const init = tf.tidy(() => this.init([...this.shape]));
      this.variable = tf.variable(init, this.trainable);
      init.dispose();
    }
    return this.variable;
  }

  /** Changes the initializer; an allocated value is re-initialised now, a lazy one on first use. */
  reinitialize(init: Initializer): void {
    this.init = init;
    if (this.variable !== null) {
      const v = tf.tidy(() => init([...this.shape]));
      this.variable.assign(v);
      v.dispose();
    }
  }

  /** Replaces the value with a TF.js-layout tensor of the same shape (the tensor is copied, not kept). */
  assign(t: tf.Tensor): void {
    check(!this.disposed, () => 'Parameter.assign: the module was disposed');
    check(
      t.shape.length === this.shape.length && t.shape.every((d, i) => d === this.shape[i]),
      () => `Parameter.assign: expected shape ${shapeStr(this.shape)}, got ${shapeStr(t.shape)}`,
    );
    if (this.variable === null) {
      this.variable = tf.variable(t.dtype === 'float32' ? t : tf.cast(t, 'float32'), this.trainable);
    } else {
      this.variable.assign(t);
    }
  }

  /** A copy in PyTorch layout (the caller disposes it). */
  toTorch(): tf.Tensor {
    const v = this.value;
    return tf.tidy(() => fromTfjsLayout(v, this.layout));
  }

  dispose(): void {
    this.variable?.dispose();
    this.variable = null;
    this.disposed = true;
  }
}

/** PyTorch layout -> TF.js layout. */
export function toTfjsLayout(t: tf.Tensor, layout: TorchLayout): tf.Tensor {
  switch (layout) {
    case 'conv':
      return tf.transpose(t, [2, 3, 1, 0]);
    case 'depthwise': {
      const [cm, , kh, kw] = t.shape;
      // [C*m, 1, kh, kw]: the multiplier is 1 for every model here, but the general case is a reshape away.
      return tf.transpose(tf.reshape(t, [cm, 1, kh, kw]), [2, 3, 0, 1]);
    }
    case 'linear':
      return tf.transpose(t, [1, 0]);
    default:
      return tf.clone(t);
  }
}

/** TF.js layout -> PyTorch layout. */
export function fromTfjsLayout(t: tf.Tensor, layout: TorchLayout): tf.Tensor {
  switch (layout) {
    case 'conv':
      return tf.transpose(t, [3, 2, 0, 1]);
    case 'depthwise': {
      const [kh, kw, c, m] = t.shape;
      return tf.reshape(tf.transpose(t, [2, 3, 0, 1]), [c * m, 1, kh, kw]);
    }
    case 'linear':
      return tf.transpose(t, [1, 0]);
    default:
      return tf.clone(t);
  }
}

let halfTable: Float32Array | null = null;

/** float16 bits -> float32 value, through a 65536-entry table built on first use. */
function halfToFloat(h: number): number {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) {
      const s = i & 0x8000 ? -1 : 1;
      const e = (i >> 10) & 0x1f;
      const f = i & 0x3ff;
      halfTable[i] =
        e === 0
          ? s * 2 ** -14 * (f / 1024)
          : e === 31
            ? f
              ? Number.NaN
              : s * Number.POSITIVE_INFINITY
            : s * 2 ** (e - 15) * (1 + f / 1024);
    }
  }
  return halfTable[h];
}

function stateTensorShape(t: StateTensor): number[] {
  return t instanceof tf.Tensor ? t.shape : t.shape;
}

function stateTensorToTf(t: StateTensor): tf.Tensor {
  if (t instanceof tf.Tensor) return t.dtype === 'float32' ? t : tf.cast(t, 'float32');
  if (t.dtype === 'float16' || t.data instanceof Uint16Array) {
    const out = new Float32Array(t.data.length);
    for (let i = 0; i < out.length; i++) out[i] = halfToFloat(t.data[i]);
    return tf.tensor(out, t.shape, 'float32');
  }
  return tf.tensor(t.data instanceof Float32Array ? t.data : Float32Array.from(t.data), t.shape, 'float32');
}

/** Keys that PyTorch writes but that carry no model state we use. */
function isIgnoredKey(name: string): boolean {
  return name.endsWith('num_batches_tracked');
}

/**
 * A tree of named children, parameters and buffers whose dotted names equal the PyTorch reference
 * (`blocks.1.0.conv_dw.weight`, `bn1.running_var`), so reference checkpoints load without renaming.
 */
export class Module {
  /** True in training mode: BatchNorm uses batch statistics, dropout and drop-path are active. */
  training = false;
  /**
   * Inference with BatchNorm folded into the preceding conv and fused bias + activation kernels
   * (see `fuseForInference`). Ignored in training mode.
   */
  folded = false;
  private readonly childModules = new Map<string, Module>();
  private readonly params = new Map<string, Parameter>();
  private readonly buffers = new Map<string, Parameter>();

  /** Registers a child module under `name` (use `'0'`, `'1'`, ... for sequential containers). */
  protected addModule<M extends Module>(name: string, m: M): M {
    check(!this.childModules.has(name), () => `Module.addModule: child '${name}' already exists`);
    this.childModules.set(name, m);
    return m;
  }

  /** Removes a child (e.g. to replace a classifier); its variables are not disposed here. */
  protected removeModule(name: string): void {
    this.childModules.delete(name);
  }

  protected addParameter(name: string, shape: number[], layout: TorchLayout, init: Initializer): Parameter {
    check(!this.params.has(name), () => `Module.addParameter: parameter '${name}' already exists`);
    const p = new Parameter(shape, layout, init, true);
    this.params.set(name, p);
    return p;
  }

  protected addBuffer(name: string, shape: number[], init: Initializer): Parameter {
    check(!this.buffers.has(name), () => `Module.addBuffer: buffer '${name}' already exists`);
    const p = new Parameter(shape, 'plain', init, false);
    this.buffers.set(name, p);
    return p;
  }

  /** Direct children, in registration order. */
  children(): [string, Module][] {
    return [...this.childModules.entries()];
  }

  /** This module and every descendant with its dotted path ('' for this one). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.childModules) {
      out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    }
    return out;
  }

  /** Trainable parameters with their PyTorch names. */
  namedParameters(prefix = ''): [string, Parameter][] {
    return this.collect(prefix, (m) => m.params);
  }

  /** Buffers (BatchNorm running statistics) with their PyTorch names. */
  namedBuffers(prefix = ''): [string, Parameter][] {
    return this.collect(prefix, (m) => m.buffers);
  }

  /** Parameters and buffers: every state-dict entry, in module order. */
  namedState(prefix = ''): [string, Parameter][] {
    return this.collect(prefix, (m) => new Map([...m.params, ...m.buffers]));
  }

  private collect(prefix: string, pick: (m: Module) => Map<string, Parameter>): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [name, p] of pick(m)) out.push([path ? `${path}.${name}` : name, p]);
    }
    return out;
  }

  /** Number of trainable parameters (as PyTorch counts them); allocates nothing. */
  numParams(): number {
    return this.namedParameters().reduce((n, [, p]) => n + p.size, 0);
  }

  /** PyTorch state-dict shapes of every entry; allocates nothing. */
  stateShapes(): Record<string, number[]> {
    const out: Record<string, number[]> = {};
    for (const [name, p] of this.namedState()) out[name] = p.torchShape;
    return out;
  }

  /** Every parameter and buffer as a new tensor in PyTorch layout. The caller disposes them. */
  stateDict(): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const [name, p] of this.namedState()) out[name] = p.toTorch();
    return out;
  }

  /**
   * Loads PyTorch-named tensors. Everything is checked before anything changes: one StateDictError lists
   * every missing, unexpected and mis-shaped name. `num_batches_tracked` entries are ignored.
   * The given tensors are copied (and transposed from PyTorch layout); the caller keeps ownership.
   */
  loadStateDict(tensors: StateDictInput, options: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = options.strict ?? true;
    const layout = options.layout ?? 'torch';
    check(
      layout === 'torch' || layout === 'tfjs',
      () => `loadStateDict: options.layout must be 'torch' or 'tfjs', got '${String(layout)}'`,
    );
    const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
    const expected = new Map(this.namedState());
    const given = new Map<string, StateTensor>();
    const unexpected: string[] = [];
    const mismatched: { name: string; expected: number[]; got: number[] }[] = [];
    for (const [name, t] of entries) {
      if (isIgnoredKey(name)) continue;
      const p = expected.get(name);
      if (!p) {
        unexpected.push(name);
        continue;
      }
      const want = layout === 'torch' ? p.torchShape : [...p.shape];
      const got = stateTensorShape(t);
      // PyTorch stores 0-d and 1-element vectors interchangeably for scalars; require exact shapes otherwise.
      if (want.length !== got.length || want.some((d, i) => d !== got[i])) {
        mismatched.push({ name, expected: want, got: [...got] });
        continue;
      }
      given.set(name, t);
    }
    const missing = [...expected.keys()].filter(
      (n) => !given.has(n) && !mismatched.some((m) => m.name === n),
    );
    if (mismatched.length > 0 || (strict && (missing.length > 0 || unexpected.length > 0))) {
      const lines = [
        `loadStateDict: the weights do not match ${this.constructor.name} ` +
          `(${missing.length} missing, ${unexpected.length} unexpected, ${mismatched.length} mis-shaped; nothing was loaded)`,
      ];
      if (strict && missing.length) lines.push(`  missing: ${summarise(missing)}`);
      if (strict && unexpected.length) lines.push(`  unexpected: ${summarise(unexpected)}`);
      for (const m of mismatched.slice(0, 50)) {
        lines.push(`  mis-shaped: ${m.name} expected ${shapeStr(m.expected)} got ${shapeStr(m.got)}`);
      }
      if (mismatched.length > 50) lines.push(`  ... and ${mismatched.length - 50} more mis-shaped`);
      throw new StateDictError(lines.join('\n'), missing, unexpected, mismatched);
    }
    for (const [name, t] of given) {
      const p = expected.get(name)!;
      const value = tf.tidy(() => {
        const src = stateTensorToTf(t);
        return layout === 'torch' ? toTfjsLayout(src, p.layout) : tf.clone(src);
      });
      p.assign(value);
      value.dispose();
    }
    this.invalidate();
    return { missing, unexpected };
  }

  /** Sets training mode on this module and every descendant. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) {
      m.training = mode;
      m.invalidateSelf();
    }
    return this;
  }

  /** Sets inference mode (BatchNorm running statistics, no dropout / drop-path). */
  eval(): this {
    return this.train(false);
  }

  /**
   * Switches the folded inference path on (default) or off for this module and every descendant. The
   * folded weights are computed on first use and dropped whenever weights or the mode change.
   */
  fuseForInference(enable = true): this {
    for (const [, m] of this.namedModules()) {
      m.folded = enable;
      m.invalidateSelf();
    }
    return this;
  }

  /** True when forward should take the folded path. */
  protected get useFolded(): boolean {
    return this.folded && !this.training;
  }

  /** Drops cached derived values (folded weights) everywhere below; called after weights change. */
  invalidate(): void {
    for (const [, m] of this.namedModules()) m.invalidateSelf();
  }

  /** Override to drop this module's own caches. */
  protected invalidateSelf(): void {}

  /** Allocates every parameter and buffer that is still lazy. */
  materialize(): this {
    for (const [, p] of this.namedState()) p.value;
    return this;
  }

  /** Frees every variable and cache; using the module afterwards throws. */
  dispose(): void {
    this.invalidate();
    for (const [, p] of this.namedState()) p.dispose();
  }
}

function summarise(names: string[], max = 40): string {
  const head = names.slice(0, max).join(', ');
  return names.length > max ? `${head}, ... (${names.length - max} more)` : head;
}
