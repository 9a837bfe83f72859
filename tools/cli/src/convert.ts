import { createEfficientDet, listEfficientDetModels, loadRawStateDict } from '@effdet/effdet';
import { loadDetectorWeights } from '@effdet/effdet/node';
import { createModel, listModels, loadTfCheckpointIntoEfficientNet } from '@effdet/efficientnet';
import type { Module } from '@effdet/layers';
import { float32ToFloat16, fromTfTensors, type RawTensorMap } from '@effdet/weights';
import {
  detectWeightsFormat,
  loadWeights,
  openTfCheckpoint,
  openWeights,
  saveWeights,
} from '@effdet/weights/node';
import * as tf from '@tensorflow/tfjs-core';

export interface ConvertOptions {
  src: string;
  model: string;
  out: string;
  /** Output format; default from the path (`.safetensors`, otherwise a TF.js folder). */
  to?: 'tfjs' | 'safetensors';
  dtype?: 'float32' | 'float16';
  /** Use the EMA copy of a training checkpoint / TF checkpoint (default: EMA for TF checkpoints). */
  ema?: boolean;
  /** Detector overrides (e.g. a fine-tuned class count). */
  numClasses?: number;
}

export interface ConvertResult {
  model: string;
  tensors: number;
  params: number;
  written: string[];
}

/** Loads SRC strictly into MODEL (so a wrong model fails here), returns the model. */
async function loadInto(o: ConvertOptions): Promise<Module> {
  if (listEfficientDetModels().includes(o.model)) {
    const net = createEfficientDet(o.model, o.numClasses ? { numClasses: o.numClasses } : {});
    try {
      await loadDetectorWeights(net, o.src, { ema: o.ema, strict: true });
    } catch (e) {
      net.dispose();
      throw e;
    }
    return net;
  }
  if (listModels().includes(o.model)) {
    const net = createModel(o.model, o.numClasses ? { numClasses: o.numClasses } : {});
    try {
      if ((await detectWeightsFormat(o.src)) === 'tf-checkpoint') {
        const ckpt = await openTfCheckpoint(o.src);
        try {
          await loadTfCheckpointIntoEfficientNet(net, ckpt, { ema: o.ema ?? true });
        } finally {
          await ckpt.close();
        }
      } else {
        loadRawStateDict(net, await loadWeights(o.src, { ema: o.ema }));
      }
    } catch (e) {
      net.dispose();
      throw e;
    }
    return net;
  }
  throw new Error(`effdet convert: unknown model '${o.model}'; see 'effdet list-models'`);
}

/** `effdet convert`: any format in, PyTorch-named safetensors or TF.js model.json + shards out. */
export async function convert(o: ConvertOptions): Promise<ConvertResult> {
  const model = await loadInto(o);
  try {
    const sd = model.stateDict();
    let raw: RawTensorMap;
    try {
      raw = await fromTfTensors(sd);
    } finally {
      tf.dispose(Object.values(sd));
    }
    const to = o.to ?? (o.out.endsWith('.safetensors') ? 'safetensors' : 'tfjs');
    const half = o.dtype === 'float16';
    if (half && to === 'safetensors') {
      for (const [k, t] of Object.entries(raw)) {
        if (t.dtype !== 'float32') continue;
        const h = float32ToFloat16(new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4));
        raw[k] = { dtype: 'float16', shape: t.shape, data: new Uint8Array(h.buffer) };
      }
    }
    const config = 'config' in model ? (model as { config: unknown }).config : { model: o.model };
    const written = await saveWeights(raw, o.out, {
      format: to,
      metadata: { model: o.model, format: 'pt' },
      ...(to === 'tfjs' ? { modelName: o.model, config, quantization: half ? 'float16' : undefined } : {}),
    });
    return { model: o.model, tensors: Object.keys(raw).length, params: model.numParams(), written };
  } finally {
    model.dispose();
  }
}

/** `effdet inspect`: a checkpoint's tensors (name, dtype, shape) and metadata, any format. */
export async function inspect(path: string): Promise<{
  format: string;
  metadata: Record<string, string>;
  tensors: { name: string; dtype: string; shape: number[] }[];
}> {
  const reader = await openWeights(path);
  try {
    return {
      format: reader.format,
      metadata: reader.metadata,
      tensors: reader.entries.map((e) => ({ name: e.name, dtype: e.dtype, shape: [...e.shape] })),
    };
  } finally {
    await reader.close();
  }
}

export function formatInspect(r: Awaited<ReturnType<typeof inspect>>): string {
  const w = Math.max(4, ...r.tensors.map((t) => t.name.length));
  const total = r.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  return [
    `format ${r.format}; ${r.tensors.length} tensors, ${total.toLocaleString('en-US')} values`,
    ...Object.entries(r.metadata).map(([k, v]) => `  ${k}: ${v.length > 120 ? `${v.slice(0, 117)}...` : v}`),
    ...r.tensors.map((t) => `${t.name.padEnd(w)}  ${t.dtype.padEnd(8)} [${t.shape.join(', ')}]`),
  ].join('\n');
}
