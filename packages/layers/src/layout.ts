/**
 * How a parameter is stored in a PyTorch state dict versus in TF.js. Activations are NHWC in TF.js, so:
 * - `conv`: PyTorch `[out, in, kh, kw]` <-> TF.js `[kh, kw, in, out]` (permutation [2,3,1,0]).
 * - `depthwise`: PyTorch `[in*mult, 1, kh, kw]` <-> TF.js `[kh, kw, in, mult]`.
 * - `linear`: PyTorch `[out, in]` <-> TF.js `[in, out]`.
 * - `plain`: same layout in both (biases, BatchNorm vectors, scalars, fusion weights).
 */
export type TorchLayout = 'conv' | 'depthwise' | 'linear' | 'plain';

/** The PyTorch state-dict shape of a TF.js-layout tensor. */
export function torchShapeOf(layout: TorchLayout, shape: readonly number[]): number[] {
  switch (layout) {
    case 'conv': {
      const [kh, kw, i, o] = shape;
      return [o, i, kh, kw];
    }
    case 'depthwise': {
      const [kh, kw, c, m] = shape;
      return [c * m, 1, kh, kw];
    }
    case 'linear': {
      const [i, o] = shape;
      return [o, i];
    }
    default:
      return [...shape];
  }
}
