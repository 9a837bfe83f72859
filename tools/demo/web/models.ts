/**
 * Model loading in the browser: TF.js `model.json` + shards fetched by URL (`fetchTfjs` from @effdet/weights),
 * the config named by the file's metadata (or given), built for whatever backend is active.
 */
import {
  buildDetector,
  type Detector,
  detectorConfig,
  listEfficientDetModels,
  loadRawStateDict,
} from '@effdet/effdet';
import {
  createSegmentationModel,
  type SegmentationModel,
  type SegmentationOptions,
  smpKwargsToOptions,
} from '@effdet/segmentation';
import { fetchTfjs, type RawTensorMap } from '@effdet/weights';

/** A model entry of `models/index.json` (written at build time) or a user URL. */
export interface ModelEntry {
  id: string;
  title: string;
  kind: 'detect' | 'segment' | 'auto';
  url: string;
}

/** Weights and metadata, kept so the model can be rebuilt on another backend without fetching again. */
export interface LoadedWeights {
  url: string;
  tensors: RawTensorMap;
  metadata: Record<string, string>;
  labels: string[] | null;
  bytes: number;
}

export type DemoModel =
  | { kind: 'detect'; detector: Detector; labels: string[] | null; name: string }
  | { kind: 'segment'; model: SegmentationModel; labels: string[] | null; name: string };

/** The shipped models that exist in this build (`models/index.json`); an empty list when it is missing. */
export async function shippedModels(): Promise<ModelEntry[]> {
  try {
    const res = await fetch(new URL('models/index.json', document.baseURI));
    if (!res.ok) return [];
    const json = (await res.json()) as { models?: ModelEntry[] };
    return Array.isArray(json.models) ? json.models : [];
  } catch {
    return [];
  }
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function stringList(v: unknown): string[] | null {
  return Array.isArray(v) && v.every((s) => typeof s === 'string') ? v : null;
}

/** Fetches model.json, its shards and the class names (metadata `labels`, else `labels.json` next to it). */
export async function fetchWeights(url: string): Promise<LoadedWeights> {
  const abs = new URL(url, document.baseURI).href;
  let bytes = 0;
  const counting = async (u: string) => {
    const res = await fetch(u);
    return {
      ok: res.ok,
      status: res.status,
      arrayBuffer: async () => {
        const b = await res.arrayBuffer();
        bytes += b.byteLength;
        return b;
      },
    };
  };
  const reader = await fetchTfjs(abs, { fetch: counting });
  try {
    const tensors = await reader.readAll();
    const metadata = { ...reader.metadata };
    let labels = stringList(parseJson(metadata.labels));
    if (!labels) {
      try {
        const res = await fetch(new URL('labels.json', abs));
        if (res.ok) labels = stringList(await res.json());
      } catch {
        labels = null;
      }
    }
    return { url: abs, tensors, metadata, labels, bytes };
  } finally {
    await reader.close();
  }
}

/** segmentation_models.pytorch config in the metadata (`_model_class`), as `effdet train --task segment` writes. */
function smpConfig(metadata: Record<string, string>): Record<string, unknown> | null {
  const v = parseJson(metadata.config);
  return v !== null &&
    typeof v === 'object' &&
    typeof (v as Record<string, unknown>)._model_class === 'string'
    ? (v as Record<string, unknown>)
    : null;
}

/** Builds the model for the active backend. `configName` overrides the metadata's `model`. */
export async function buildModel(
  w: LoadedWeights,
  kind: ModelEntry['kind'],
  configName?: string,
): Promise<DemoModel> {
  const smp = smpConfig(w.metadata);
  if (kind === 'segment' || (kind === 'auto' && smp)) {
    if (!smp) throw new Error(`${w.url}: the metadata holds no segmentation config (_model_class)`);
    const arch = String(smp._model_class);
    const opts: SegmentationOptions = smpKwargsToOptions({ ...smp });
    const head = w.tensors['segmentation_head.0.weight'];
    if (opts.classes === undefined && head) opts.classes = head.shape[0];
    const model = createSegmentationModel(arch, opts);
    try {
      loadRawStateDict(model, w.tensors, { strict: true });
    } catch (e) {
      model.dispose();
      throw e;
    }
    return { kind: 'segment', model: model.eval(), labels: w.labels, name: arch };
  }
  const name = configName || w.metadata.model;
  if (!name || !listEfficientDetModels().includes(name)) {
    throw new Error(
      `${w.url}: name the EfficientDet config (the metadata says ${JSON.stringify(w.metadata.model ?? null)}); ` +
        `one of ${listEfficientDetModels().slice(0, 6).join(', ')}, …`,
    );
  }
  const meta = parseJson(w.metadata.config) as { numClasses?: number; imageSize?: [number, number] } | null;
  const overrides: { numClasses?: number; imageSize?: [number, number] } = {};
  if (meta && typeof meta === 'object') {
    if (typeof meta.numClasses === 'number') overrides.numClasses = meta.numClasses;
    if (Array.isArray(meta.imageSize)) overrides.imageSize = meta.imageSize;
  }
  const config = detectorConfig(name, { config: overrides });
  const detector = await buildDetector(config, w.tensors, { labels: w.labels ?? undefined });
  return { kind: 'detect', detector, labels: w.labels, name };
}

export function disposeModel(m: DemoModel | null): void {
  if (!m) return;
  if (m.kind === 'detect') m.detector.dispose();
  else m.model.dispose();
}
