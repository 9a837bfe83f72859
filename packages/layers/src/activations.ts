import * as tf from '@tensorflow/tfjs-core';

/** The activations TF.js can fuse into conv / matMul kernels. */
export type FusableActivation = 'linear' | 'relu' | 'relu6' | 'sigmoid' | 'elu' | 'leakyrelu';

export interface Activation {
  /** Canonical name. */
  readonly name: string;
  readonly apply: (x: tf.Tensor) => tf.Tensor;
  /** Set when TF.js has the same activation as a fused kernel epilogue. */
  readonly fused?: FusableActivation;
  readonly leakyAlpha?: number;
}

const swish = (x: tf.Tensor) => tf.mul(x, tf.sigmoid(x));
const hardSigmoid = (x: tf.Tensor) => tf.div(tf.relu6(tf.add(x, 3)), 6);

/** Every supported activation; aliases map to the same entry (timm's `_ACT_LAYER_DEFAULT` names). */
const TABLE: Record<string, Omit<Activation, 'name'> & { canonical: string }> = {
  identity: { canonical: 'identity', apply: (x) => x, fused: 'linear' },
  relu: { canonical: 'relu', apply: (x) => tf.relu(x), fused: 'relu' },
  relu6: { canonical: 'relu6', apply: (x) => tf.relu6(x), fused: 'relu6' },
  swish: { canonical: 'swish', apply: swish },
  sigmoid: { canonical: 'sigmoid', apply: (x) => tf.sigmoid(x), fused: 'sigmoid' },
  hard_sigmoid: { canonical: 'hard_sigmoid', apply: hardSigmoid },
  hard_swish: { canonical: 'hard_swish', apply: (x) => tf.mul(x, hardSigmoid(x)) },
  // Exact (erf) GELU as torch.nn.GELU() computes it.
  gelu: { canonical: 'gelu', apply: (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2)))) },
  gelu_tanh: {
    canonical: 'gelu_tanh',
    apply: (x) =>
      tf.mul(
        tf.mul(x, 0.5),
        tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3)))))),
      ),
  },
  mish: { canonical: 'mish', apply: (x) => tf.mul(x, tf.tanh(tf.softplus(x))) },
  leaky_relu: {
    canonical: 'leaky_relu',
    apply: (x) => tf.leakyRelu(x, 0.01),
    fused: 'leakyrelu',
    leakyAlpha: 0.01,
  },
  elu: { canonical: 'elu', apply: (x) => tf.elu(x), fused: 'elu' },
  tanh: { canonical: 'tanh', apply: (x) => tf.tanh(x) },
};

const ALIASES: Record<string, string> = {
  linear: 'identity',
  none: 'identity',
  '': 'identity',
  silu: 'swish',
  hardsigmoid: 'hard_sigmoid',
  hardswish: 'hard_swish',
  leakyrelu: 'leaky_relu',
};

export type ActivationName = keyof typeof TABLE | keyof typeof ALIASES;

/** Names `getActivation` accepts. */
export function listActivations(): string[] {
  return [...Object.keys(TABLE), ...Object.keys(ALIASES).filter((a) => a !== '')].sort();
}

/**
 * Resolves an activation by name (timm `get_act_layer`): relu, relu6, swish/silu, hard_swish, hard_sigmoid,
 * sigmoid, gelu, gelu_tanh, mish, leaky_relu, elu, tanh, identity. An Activation object passes through.
 */
export function getActivation(name: string | Activation | null | undefined): Activation {
  if (name !== null && typeof name === 'object') return name;
  const key = ALIASES[name ?? ''] ?? name ?? 'identity';
  const entry = TABLE[key];
  if (!entry) {
    throw new Error(
      `getActivation: unknown activation '${String(name)}'; expected one of ${listActivations().join(', ')}`,
    );
  }
  const fn = entry.apply;
  // Intermediates (sigmoid of swish, ...) are freed: apply returns only its result.
  const apply = entry.canonical === 'identity' ? fn : (x: tf.Tensor) => tf.tidy(() => fn(x));
  return { name: entry.canonical, apply, fused: entry.fused, leakyAlpha: entry.leakyAlpha };
}
