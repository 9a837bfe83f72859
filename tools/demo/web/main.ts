/**
 * The demo page: pick a model and a backend, give it an image (file, drop, webcam or a random shapes scene),
 * see boxes / masks and the time of each stage. The state is mirrored on `window.__effdet` (and
 * `document.body.dataset.state`) for the end-to-end test.
 *
 * URL parameters: `backend` (webgl | wasm | cpu | webgpu), `model` (a shipped id or a model.json URL),
 * `config` (EfficientDet config for a URL without metadata), `threshold`, `seed` (of the first shapes scene).
 */
import { type Detection, listEfficientDetModels, type PixelData } from '@effdet/effdet';
import { generateScene } from '@effdet/shapes';
import { type BackendName, describeBackend, offeredBackends, useBackend } from './backends.js';
import { drawDetections, drawMask } from './draw.js';
import {
  buildModel,
  type DemoModel,
  disposeModel,
  fetchWeights,
  type LoadedWeights,
  type ModelEntry,
  shippedModels,
} from './models.js';
import { detectTimed, segmentTimed, type Timings } from './run.js';

type State = 'loading' | 'ready' | 'running' | 'done' | 'error';

/** What the page exposes for tests and the console. */
export interface DemoApi {
  state: State;
  backend: string;
  backendInfo: string;
  model: string | null;
  /** Where the current image came from (file name, `shapes:SEED`, `webcam`). */
  source: string | null;
  runs: number;
  detections: Detection[];
  drawnBoxes: number;
  /** Segmentation: the last class map (row-major) and its pixels per class. */
  mask: number[] | null;
  maskCounts: number[] | null;
  timings: Timings;
  /** Model load: fetch + decode, build, and the first (warm-up) inference, ms. */
  load: { fetchMs: number; buildMs: number; warmupMs: number; bytes: number } | null;
  models: ModelEntry[];
  backends: BackendName[];
  error: string | null;
  /** Runs the current image `n` times; per-run total ms and their median. */
  bench(n: number): Promise<{ runs: number[]; median: number; mean: number; warmupMs: number }>;
}

declare global {
  interface Window {
    __effdet: DemoApi;
  }
}

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);

const ui = {
  status: $<HTMLSpanElement>('status'),
  model: $<HTMLSelectElement>('model'),
  custom: $<HTMLDivElement>('custom'),
  modelUrl: $<HTMLInputElement>('model-url'),
  modelConfig: $<HTMLInputElement>('model-config'),
  modelLoad: $<HTMLButtonElement>('model-load'),
  configs: $<HTMLDataListElement>('configs'),
  backend: $<HTMLSelectElement>('backend'),
  threshold: $<HTMLInputElement>('threshold'),
  file: $<HTMLInputElement>('file'),
  sample: $<HTMLButtonElement>('sample'),
  webcam: $<HTMLButtonElement>('webcam'),
  timings: $<HTMLPreElement>('timings'),
  detections: $<HTMLOListElement>('detections'),
  drop: $<HTMLElement>('drop'),
  view: $<HTMLCanvasElement>('view'),
  video: $<HTMLVideoElement>('video'),
};

let weights: LoadedWeights | null = null;
let weightsKind: ModelEntry['kind'] = 'detect';
let weightsConfig: string | undefined;
let model: DemoModel | null = null;
let image: PixelData | null = null;
let stream: MediaStream | null = null;
/** Serialises model loads and inference (the webcam loop and UI events share the backend). */
let queue: Promise<unknown> = Promise.resolve();

const api: DemoApi = {
  state: 'loading',
  backend: '',
  backendInfo: '',
  model: null,
  source: null,
  runs: 0,
  detections: [],
  drawnBoxes: 0,
  mask: null,
  maskCounts: null,
  timings: {},
  load: null,
  models: [],
  backends: [],
  error: null,
  bench: (n) => enqueue(() => bench(n)),
};
window.__effdet = api;

function setState(state: State, message?: string): void {
  api.state = state;
  document.body.dataset.state = state;
  if (message !== undefined) ui.status.textContent = message;
}

function fail(e: unknown): void {
  const msg = e instanceof Error ? e.message : String(e);
  api.error = msg;
  console.error(e);
  setState('error', `error: ${msg}`);
}

function enqueue<T>(job: () => Promise<T>): Promise<T> {
  const p = queue.then(job);
  queue = p.catch(() => undefined);
  return p;
}

const ms = (v: number) => `${v.toFixed(1)} ms`;

function showTimings(): void {
  const lines = [`backend   ${api.backendInfo}`];
  if (api.load) {
    lines.push(
      `fetch     ${ms(api.load.fetchMs)} (${(api.load.bytes / 1024).toFixed(0)} KiB)`,
      `build     ${ms(api.load.buildMs)}`,
      `warm-up   ${ms(api.load.warmupMs)} (first inference)`,
    );
  }
  for (const [k, v] of Object.entries(api.timings)) lines.push(`${k.padEnd(9)} ${ms(v)}`);
  ui.timings.textContent = lines.join('\n');
}

/** A blank image at the model's input size, for the warm-up run. */
function blankImage(m: DemoModel): PixelData {
  const [h, w] = m.kind === 'detect' ? m.detector.config.imageSize : [128, 128];
  return { data: new Uint8Array(w * h * 3).fill(128), width: w, height: h, channels: 3 };
}

async function infer(m: DemoModel, img: PixelData) {
  const threshold = Number(ui.threshold.value);
  if (m.kind === 'detect') {
    const r = await detectTimed(m.detector, img, Number.isFinite(threshold) ? threshold : 0.3, m.labels);
    return { detections: r.detections, mask: null, timings: r.timings };
  }
  const r = await segmentTimed(m.model, img);
  return { detections: [], mask: r.prediction.mask, timings: r.timings };
}

/** Builds the loaded weights for the active backend and warms it up. */
async function rebuild(): Promise<void> {
  if (!weights) return;
  disposeModel(model);
  model = null;
  setState('loading', `building ${api.model} on ${api.backend}…`);
  const t0 = performance.now();
  const m = await buildModel(weights, weightsKind, weightsConfig);
  const t1 = performance.now();
  await infer(m, blankImage(m));
  const t2 = performance.now();
  model = m;
  api.load = { fetchMs: api.load?.fetchMs ?? 0, buildMs: t1 - t0, warmupMs: t2 - t1, bytes: weights.bytes };
  showTimings();
  setState('ready', `${m.name} ready on ${api.backendInfo}`);
}

async function loadModel(entry: ModelEntry, configName?: string): Promise<void> {
  setState('loading', `loading ${entry.title}…`);
  const t0 = performance.now();
  const w = await fetchWeights(entry.url);
  const fetchMs = performance.now() - t0;
  weights = w;
  weightsKind = entry.kind;
  weightsConfig = configName;
  api.model = entry.id;
  api.load = { fetchMs, buildMs: 0, warmupMs: 0, bytes: w.bytes };
  await rebuild();
  if (api.load) api.load.fetchMs = fetchMs;
  showTimings();
}

async function switchBackend(name: BackendName): Promise<void> {
  setState('loading', `starting ${name}…`);
  api.backend = await useBackend(name);
  api.backendInfo = describeBackend();
  ui.backend.value = api.backend;
  await rebuild();
}

async function run(img: PixelData, source: string): Promise<void> {
  image = img;
  api.source = source;
  if (!model) {
    drawDetections(ui.view, img, []);
    return;
  }
  setState('running');
  const r = await infer(model, img);
  api.detections = r.detections;
  api.timings = r.timings;
  if (r.mask) {
    drawMask(ui.view, img, r.mask);
    const counts = new Array<number>((model.kind === 'segment' && model.model.numClasses) || 1).fill(0);
    for (const c of r.mask) counts[c] = (counts[c] ?? 0) + 1;
    api.mask = Array.from(r.mask);
    api.maskCounts = counts;
    api.drawnBoxes = 0;
    ui.detections.replaceChildren(
      ...counts.map((n, c) => {
        const li = document.createElement('li');
        li.textContent = `${model?.labels?.[c] ?? (c === 0 ? 'background' : `class ${c}`)}: ${n} px`;
        return li;
      }),
    );
  } else {
    api.mask = null;
    api.maskCounts = null;
    api.drawnBoxes = drawDetections(ui.view, img, r.detections);
    ui.detections.replaceChildren(
      ...r.detections.map((d) => {
        const li = document.createElement('li');
        li.textContent = `${d.label ?? `class ${d.classId}`} ${d.score.toFixed(3)} [${d.box.map((v) => v.toFixed(1)).join(', ')}]`;
        return li;
      }),
    );
  }
  api.runs++;
  showTimings();
  setState('done', `${source}: ${r.mask ? 'mask' : `${r.detections.length} detections`} on ${api.backend}`);
}

async function bench(n: number) {
  if (!model || !image) throw new Error('bench: load a model and an image first');
  const runs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await infer(model, image);
    runs.push(performance.now() - t0);
  }
  const sorted = [...runs].sort((a, b) => a - b);
  const median = n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  return { runs, median, mean: runs.reduce((a, b) => a + b, 0) / n, warmupMs: api.load?.warmupMs ?? NaN };
}

/** Pixels of an image file / blob (no colour-space conversion, so PNG pixels arrive unchanged). */
async function decodeFile(blob: Blob): Promise<PixelData> {
  const bmp = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = document.createElement('canvas');
  canvas.width = bmp.width;
  canvas.height = bmp.height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(bmp, 0, 0);
  bmp.close();
  const d = ctx.getImageData(0, 0, canvas.width, canvas.height);
  return { data: d.data, width: d.width, height: d.height, channels: 4 };
}

function sampleScene(seed: number): PixelData {
  const s = generateScene(seed, { width: 128, height: 128, minSize: 22, maxSize: 96, maxObjects: 4 });
  return { data: s.rgb, width: s.width, height: s.height, channels: 3 };
}

function runFile(file: File): void {
  enqueue(async () => run(await decodeFile(file), file.name)).catch(fail);
}

async function toggleWebcam(): Promise<void> {
  if (stream) {
    for (const t of stream.getTracks()) t.stop();
    stream = null;
    ui.webcam.textContent = 'Webcam';
    return;
  }
  stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
  ui.video.srcObject = stream;
  await ui.video.play();
  ui.webcam.textContent = 'Stop webcam';
  const grab = document.createElement('canvas');
  const ctx = grab.getContext('2d', { willReadFrequently: true })!;
  const loop = async () => {
    if (!stream) return;
    grab.width = ui.video.videoWidth;
    grab.height = ui.video.videoHeight;
    ctx.drawImage(ui.video, 0, 0);
    const d = ctx.getImageData(0, 0, grab.width, grab.height);
    await enqueue(() => run({ data: d.data, width: d.width, height: d.height, channels: 4 }, 'webcam'));
    requestAnimationFrame(() => void loop().catch(fail));
  };
  await loop();
}

function rerun(): void {
  if (image) {
    const img = image;
    enqueue(() => run(img, api.source ?? 'image')).catch(fail);
  }
}

function wireUi(): void {
  ui.file.addEventListener('change', () => {
    const f = ui.file.files?.[0];
    if (f) runFile(f);
  });
  ui.sample.addEventListener('click', () => {
    const seed = Math.floor(Math.random() * 1e9);
    enqueue(() => run(sampleScene(seed), `shapes:${seed}`)).catch(fail);
  });
  ui.webcam.addEventListener('click', () => void toggleWebcam().catch(fail));
  ui.threshold.addEventListener('change', rerun);
  ui.backend.addEventListener('change', () => {
    enqueue(async () => {
      await switchBackend(ui.backend.value as BackendName);
      if (image) await run(image, api.source ?? 'image');
    }).catch(fail);
  });
  ui.model.addEventListener('change', () => {
    const entry = api.models.find((m) => m.id === ui.model.value);
    ui.custom.hidden = entry !== undefined;
    if (entry)
      enqueue(async () => {
        await loadModel(entry);
        if (image) await run(image, api.source ?? 'image');
      }).catch(fail);
  });
  ui.modelLoad.addEventListener('click', () => {
    const url = ui.modelUrl.value.trim();
    if (!url) return;
    const entry: ModelEntry = { id: url, title: url, kind: 'auto', url };
    enqueue(async () => {
      await loadModel(entry, ui.modelConfig.value.trim() || undefined);
      if (image) await run(image, api.source ?? 'image');
    }).catch(fail);
  });
  for (const target of [ui.drop, document.body]) {
    target.addEventListener('dragover', (e) => {
      e.preventDefault();
      ui.drop.classList.add('over');
    });
    target.addEventListener('dragleave', () => ui.drop.classList.remove('over'));
    target.addEventListener('drop', (e) => {
      e.preventDefault();
      ui.drop.classList.remove('over');
      const f = e.dataTransfer?.files?.[0];
      if (f) runFile(f);
    });
  }
}

async function main(): Promise<void> {
  wireUi();
  api.backends = offeredBackends();
  ui.backend.replaceChildren(...api.backends.map((b) => new Option(b, b)));
  api.models = await shippedModels();
  ui.model.replaceChildren(
    ...api.models.map((m) => new Option(m.title, m.id)),
    new Option('a TF.js model.json URL…', 'custom'),
  );
  ui.configs.replaceChildren(...listEfficientDetModels().map((n) => new Option(n)));

  const wanted = (params.get('backend') ?? 'webgl') as BackendName;
  const order = [wanted, ...(['webgl', 'wasm', 'cpu'] as BackendName[]).filter((b) => b !== wanted)];
  for (const b of order) {
    try {
      api.backend = await useBackend(b);
      break;
    } catch (e) {
      console.warn(`backend ${b} unavailable:`, e);
    }
  }
  api.backendInfo = describeBackend();
  ui.backend.value = api.backend;
  if (params.has('threshold')) ui.threshold.value = params.get('threshold')!;

  const requested = params.get('model') ?? 'shapes';
  let entry = api.models.find((m) => m.id === requested);
  if (!entry && requested.endsWith('.json'))
    entry = { id: requested, title: requested, kind: 'auto', url: requested };
  if (!entry) entry = api.models[0];
  if (!entry) {
    ui.model.value = 'custom';
    ui.custom.hidden = false;
    setState('ready', 'no shipped model in this build: give a model.json URL');
    return;
  }
  const shipped = api.models.includes(entry);
  ui.model.value = shipped ? entry.id : 'custom';
  ui.custom.hidden = shipped;
  if (!shipped) ui.modelUrl.value = entry.url;
  await enqueue(() => loadModel(entry, params.get('config') ?? undefined));
  const seed = Number(params.get('seed') ?? Math.floor(Math.random() * 1e9));
  await enqueue(() => run(sampleScene(seed), `shapes:${seed}`));
}

main().catch(fail);
