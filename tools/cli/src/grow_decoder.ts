/**
 * Growing a trained U-Net's decoder (`effdet train --task segment --grow-decoder`): the weights of a U-Net with
 * narrower decoder blocks are embedded into a wider one so that the wider network computes exactly what the
 * narrow one did, and training goes on from there with the added capacity (Net2Net-style "wider" growth, with
 * zero links instead of duplicated units).
 *
 * For each decoder conv (`decoder.blocks.i.conv1/conv2`, and the segmentation head's conv): the old output
 * channels keep their weights and read zeros from every new input channel; each new output channel gets a
 * seeded He-normal init over all its inputs; a new channel's norm starts at weight 1, bias 0, mean 0, var 1 and
 * a new conv bias at 0. Because no old channel reads a new one, the logits are unchanged (in eval mode; in
 * train mode too, as BatchNorm normalises each channel on its own). The encoder and the head's output channels
 * (the classes) must stay as they are.
 */
import { type SegmentationModel, Unet } from '@effdet/segmentation';
import { createRng, hashSeed } from '@effdet/shapes';
import { newTensorMap, type RawTensor, type RawTensorMap, toFloat32 } from '@effdet/weights';

const FN = 'growUnetDecoder';

export interface GrowDecoderResult {
  /** The checkpoint with its decoder tensors replaced by the grown ones (other tensors as given). */
  raw: RawTensorMap;
  /** Names of the tensors that were widened. */
  grown: string[];
}

function f32Raw(data: Float32Array, shape: number[]): RawTensor {
  return { dtype: 'float32', shape, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/**
 * Widens the U-Net decoder held by `raw` (a checkpoint of a U-Net with the same encoder and depth whose decoder
 * blocks are at most as wide as `model`'s) to `model`'s decoder channels without changing its output; see the
 * file comment. Tensors that already have the model's shape pass through. `seed` fixes the new channels' init.
 * Throws naming the tensor when the checkpoint is not a narrower version of `model`.
 */
export function growUnetDecoder(raw: RawTensorMap, model: SegmentationModel, seed = 0): GrowDecoderResult {
  if (!(model instanceof Unet)) throw new Error(`${FN}: the model must be a Unet, got ${model.arch}`);
  const shapes = model.stateShapes();
  const out = newTensorMap();
  for (const k of Object.keys(raw)) out[k] = raw[k];
  const rng = createRng(hashSeed(seed, 'grow-unet-decoder'));
  const grown: string[] = [];

  const get = (name: string): RawTensor => {
    const t = raw[name];
    if (!t) throw new Error(`${FN}: the checkpoint has no '${name}'`);
    if (t.dtype === 'string' || t.dtype === 'bool')
      throw new Error(`${FN}: '${name}' has dtype ${t.dtype}; expected a float tensor`);
    return t;
  };

  /** Embeds conv `name` ([O, I, kh, kw]); `inMap[i]` = the old input channel of new input i, or -1. */
  const growConv = (name: string, inMap: Int32Array, oldIn: number): number => {
    const t = get(name);
    const want = shapes[name];
    if (t.shape.length !== 4 || want.length !== 4)
      throw new Error(
        `${FN}: '${name}' must be a conv weight [out, in, kh, kw], got [${t.shape.join(', ')}]`,
      );
    const [oo, io, kh, kw] = t.shape;
    const [on, inn] = want;
    if (io !== oldIn || kh !== want[2] || kw !== want[3]) {
      throw new Error(
        `${FN}: '${name}' is [${t.shape.join(', ')}]; a narrower version of the model's [${want.join(', ')}] ` +
          `has ${oldIn} input channels and ${want[2]}x${want[3]} taps`,
      );
    }
    if (on < oo) {
      throw new Error(
        `${FN}: '${name}' has ${oo} output channels, the model ${on}: a decoder can only grow (--decoder-channels)`,
      );
    }
    if (on === oo && inn === io) return oo;
    const src = toFloat32(t);
    const k = kh * kw;
    const dst = new Float32Array(on * inn * k);
    const std = Math.sqrt(2 / (inn * k));
    for (let o = 0; o < on; o++) {
      for (let i = 0; i < inn; i++) {
        const j = inMap[i];
        const d = (o * inn + i) * k;
        if (o < oo) {
          if (j >= 0) dst.set(src.subarray((o * io + j) * k, (o * io + j + 1) * k), d);
        } else {
          for (let q = 0; q < k; q++) dst[d + q] = rng.normal() * std;
        }
      }
    }
    out[name] = f32Raw(dst, want.slice());
    grown.push(name);
    return oo;
  };

  /** Pads the per-channel tensors (norm weight / bias / statistics, conv bias) under `prefix` to `on` channels. */
  const growVectors = (prefix: string, oo: number) => {
    for (const name of Object.keys(shapes)) {
      if (!name.startsWith(prefix) || shapes[name].length !== 1) continue;
      const t = get(name);
      const on = shapes[name][0];
      if (t.shape.length !== 1 || t.shape[0] !== oo)
        throw new Error(
          `${FN}: '${name}' is [${t.shape.join(', ')}], expected [${oo}] (its conv's old width)`,
        );
      if (on === oo) continue;
      const fill = /(^|\.)(weight|running_var)$/.test(name) ? 1 : 0;
      const dst = new Float32Array(on).fill(fill);
      dst.set(toFloat32(t));
      out[name] = f32Raw(dst, [on]);
      grown.push(name);
    }
  };

  const identity = (n: number) => Int32Array.from({ length: n }, (_, i) => i);
  const widened = (n: number, old: number) => Int32Array.from({ length: n }, (_, i) => (i < old ? i : -1));
  const blocks = Object.keys(shapes).filter((n) => /^decoder\.blocks\.\d+\.conv1\.0\.weight$/.test(n)).length;
  let prevOld = -1;
  let prevNew = -1;
  for (let b = 0; b < blocks; b++) {
    const p = `decoder.blocks.${b}`;
    const inNew = shapes[`${p}.conv1.0.weight`][1];
    let inMap: Int32Array;
    let oldIn: number;
    if (b === 0) {
      inMap = identity(inNew); // the deepest encoder feature + the first skip: untouched
      oldIn = inNew;
    } else {
      const skip = inNew - prevNew;
      inMap = Int32Array.from({ length: inNew }, (_, i) =>
        i < prevNew ? (i < prevOld ? i : -1) : i - prevNew + prevOld,
      );
      oldIn = prevOld + skip;
    }
    const oo = growConv(`${p}.conv1.0.weight`, inMap, oldIn);
    growVectors(`${p}.conv1.`, oo);
    const on = shapes[`${p}.conv1.0.weight`][0];
    growConv(`${p}.conv2.0.weight`, widened(on, oo), oo);
    growVectors(`${p}.conv2.`, oo);
    prevOld = oo;
    prevNew = on;
  }
  const head = 'segmentation_head.0.weight';
  const classes = shapes[head][0];
  if (get(head).shape[0] !== classes)
    throw new Error(`${FN}: '${head}' has ${get(head).shape[0]} classes, the model ${classes}`);
  growConv(head, widened(prevNew, prevOld), prevOld);
  for (const name of Object.keys(shapes)) {
    if (!name.startsWith('decoder.') && !name.startsWith('segmentation_head.')) continue;
    const t = out[name];
    if (!t) throw new Error(`${FN}: the checkpoint has no '${name}'`);
    if (t.shape.join() !== shapes[name].join())
      throw new Error(
        `${FN}: cannot grow '${name}' ([${t.shape.join(', ')}] -> [${shapes[name].join(', ')}]); only the decoder ` +
          `convs, their norms and the head's input channels grow`,
      );
  }
  return { raw: out, grown };
}
