/**
 * Validation datasets for `effdet validate`: COCO (instances JSON), Pascal VOC (XML + ImageSets) and OpenImages
 * (box CSV + class descriptions), each turned into a list of images, the ground truth to score against and the
 * map between dataset categories and model classes; and a batched, prefetching image loader that decodes JPEG /
 * PNG (in a worker thread when it can, so decoding overlaps the network).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { RgbImage } from '@effdet/effdet/node';
import {
  CategoryMap,
  CocoIndex,
  type ImageId,
  loadCocoDataset,
  openImagesToCoco,
  parseImageSet,
  parseOpenImagesBoxes,
  parseOpenImagesClasses,
  parseVocXml,
  VOC_CLASSES,
  type VocImageGroundTruth,
  vocAnnotationToTarget,
} from '@effdet/eval';

export type DatasetKind = 'coco' | 'voc' | 'openimages';
export const DATASET_KINDS: readonly DatasetKind[] = ['coco', 'voc', 'openimages'];

/** How model classes relate to dataset categories: see `chooseLabelMap`. */
export type LabelMapChoice = 'auto' | 'identity' | 'contiguous';

export interface ImageRecord {
  id: ImageId;
  path: string;
  /** Size from the annotations, when they give it. */
  width?: number;
  height?: number;
}

export interface EvalDataset {
  kind: DatasetKind;
  /** Images in dataset order. */
  images: ImageRecord[];
  /** Dataset categories (numeric ids, as in the results JSON) in dataset order, with names. */
  categories: { id: number; name: string }[];
  /** The annotation file(s) read. */
  sources: string[];
  /**
   * COCO and OpenImages: the COCO-format ground truth to score with. OpenImages boxes are normalised, so they need
   * the decoded image sizes.
   */
  cocoGroundTruth?(sizes: ReadonlyMap<ImageId, { width: number; height: number }>): CocoIndex;
  /** VOC only: targets per image for the VOC metric (boxes shifted by -1 as effdet does, difficult flags). */
  vocGroundTruth?(ids: readonly ImageId[]): VocImageGroundTruth[];
}

function fail(fn: string, arg: string, expected: string, got: string): never {
  throw new Error(`${fn}: ${arg} expected ${expected}, got ${got}`);
}

function readText(fn: string, what: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as { code?: string }).code;
    return fail(fn, what, 'a readable file', `'${path}' (${code === 'ENOENT' ? 'no such file' : String(e)})`);
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export interface LoadDatasetOptions {
  kind: DatasetKind;
  /** COCO: the image folder (with `ann`), or the COCO root holding `annotations/` and `val2017/`. VOC: the
   * VOC2007 / VOC2012 folder. OpenImages: the image folder. */
  root: string;
  /** COCO: instances JSON. VOC: an ImageSets list (default `ImageSets/Main/test.txt`, else `val.txt`). OpenImages:
   * the box CSV. */
  ann?: string;
  /** OpenImages: the class descriptions CSV (`LabelName,DisplayName`); label = row + 1. */
  classes?: string;
}

/** Reads a dataset's annotations and lists its images (no image is read). */
export function loadDataset(options: LoadDatasetOptions): EvalDataset {
  const fn = 'loadDataset';
  const { kind, root } = options;
  if (!DATASET_KINDS.includes(kind)) fail(fn, "'kind'", DATASET_KINDS.join(', '), `'${kind}'`);
  if (!root || !isDir(root)) fail(fn, "'root'", 'a folder', `'${root}'`);
  if (kind === 'coco') return loadCoco(root, options.ann);
  if (kind === 'voc') return loadVoc(root, options.ann);
  return loadOpenImages(root, options.ann, options.classes);
}

function loadCoco(root: string, ann?: string): EvalDataset {
  const fn = 'loadDataset(coco)';
  let annPath = ann;
  let imageDir = root;
  if (!annPath) {
    annPath = join(root, 'annotations', 'instances_val2017.json');
    imageDir = join(root, 'val2017');
    if (!existsSync(annPath)) {
      fail(
        fn,
        '--ann',
        'an instances JSON (or ROOT/annotations/instances_val2017.json)',
        `'${annPath}' missing`,
      );
    }
  }
  let gt: CocoIndex;
  try {
    gt = loadCocoDataset(readText(fn, '--ann', annPath));
  } catch (e) {
    throw new Error(`${annPath}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const images = gt.dataset.images.map((img, i): ImageRecord => {
    if (typeof img.file_name !== 'string' || img.file_name === '') {
      fail(fn, `${annPath}: images[${i}] (id ${img.id}).file_name`, 'a file name', String(img.file_name));
    }
    return { id: img.id, path: join(imageDir, img.file_name), width: img.width, height: img.height };
  });
  const categories = (gt.dataset.categories ?? []).map((c) => ({ id: c.id, name: c.name ?? String(c.id) }));
  if (categories.length === 0) fail(fn, `${annPath}: categories`, 'a non-empty list', 'none');
  return {
    kind: 'coco',
    images,
    categories,
    sources: [annPath],
    cocoGroundTruth: () => gt,
  };
}

function loadVoc(root: string, ann?: string): EvalDataset {
  const fn = 'loadDataset(voc)';
  const annDir = join(root, 'Annotations');
  if (!isDir(annDir))
    fail(fn, "'root'", 'a VOC2007 / VOC2012 folder (with Annotations/, JPEGImages/)', `'${root}'`);
  let setPath = ann;
  if (!setPath) {
    const main = join(root, 'ImageSets', 'Main');
    setPath = ['test.txt', 'val.txt'].map((f) => join(main, f)).find((p) => existsSync(p));
    if (!setPath)
      fail(fn, '--ann', 'an ImageSets list (default ImageSets/Main/test.txt or val.txt)', 'none found');
  }
  const ids = parseImageSet(readText(fn, '--ann', setPath));
  const images: ImageRecord[] = [];
  const targets = new Map<ImageId, VocImageGroundTruth>();
  for (const id of ids) {
    const xmlPath = join(annDir, `${id}.xml`);
    let parsed: ReturnType<typeof parseVocXml>;
    try {
      parsed = parseVocXml(readText(fn, `image '${id}' annotation`, xmlPath));
    } catch (e) {
      throw new Error(`${xmlPath}: ${e instanceof Error ? e.message : String(e)}`);
    }
    const jpg = join(
      root,
      'JPEGImages',
      parsed.filename && /\.(jpe?g|png)$/i.test(parsed.filename) ? parsed.filename : `${id}.jpg`,
    );
    images.push({ id, path: jpg, width: parsed.width, height: parsed.height });
    let t: ReturnType<typeof vocAnnotationToTarget>;
    try {
      t = vocAnnotationToTarget(parsed);
    } catch (e) {
      throw new Error(`${xmlPath}: ${e instanceof Error ? e.message : String(e)}`);
    }
    targets.set(id, { imageId: id, boxes: t.boxes, labels: t.labels, difficult: t.difficult });
  }
  const categories = VOC_CLASSES.map((name, i) => ({ id: i + 1, name }));
  return {
    kind: 'voc',
    images,
    categories,
    sources: [setPath, annDir],
    vocGroundTruth: (sel) =>
      sel.map((id) => {
        const t = targets.get(id);
        if (!t) fail('vocGroundTruth', 'ids', 'ids of this image set', String(id));
        return t;
      }),
  };
}

function loadOpenImages(root: string, ann?: string, classesPath?: string): EvalDataset {
  const fn = 'loadDataset(openimages)';
  if (!ann) fail(fn, '--ann', 'the box annotations CSV (e.g. validation-annotations-bbox.csv)', 'nothing');
  if (!classesPath) fail(fn, '--classes', 'the class descriptions CSV (LabelName,DisplayName)', 'nothing');
  const wrap = <T>(file: string, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw new Error(`${file}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const classes = wrap(classesPath, () => parseOpenImagesClasses(readText(fn, '--classes', classesPath)));
  const boxes = wrap(ann, () => parseOpenImagesBoxes(readText(fn, '--ann', ann)));
  const known = new Set(classes.map((c) => c.labelName));
  boxes.forEach((b, i) => {
    if (!known.has(b.labelName))
      fail(fn, `${ann}: row ${i + 2} LabelName`, `a class of ${classesPath}`, `'${b.labelName}'`);
  });
  const ids: string[] = [];
  const seen = new Set<string>();
  for (const b of boxes) {
    if (!seen.has(b.imageId)) {
      seen.add(b.imageId);
      ids.push(b.imageId);
    }
  }
  const images = ids.map((id): ImageRecord => {
    const jpg = join(root, `${id}.jpg`);
    return {
      id,
      path: existsSync(jpg) || !existsSync(join(root, `${id}.png`)) ? jpg : join(root, `${id}.png`),
    };
  });
  return {
    kind: 'openimages',
    images,
    categories: classes.map((c, i) => ({ id: i + 1, name: c.displayName })),
    sources: [ann, classesPath],
    cocoGroundTruth: (sizes) => {
      const sel = new Map<string, { width: number; height: number }>();
      for (const [id, s] of sizes) sel.set(String(id), s);
      const keep = boxes.filter((b) => sel.has(b.imageId));
      return new CocoIndex(openImagesToCoco(keep, classes, sel));
    },
  };
}

export interface LabelMapResult {
  map: CategoryMap<number>;
  mode: 'identity' | 'contiguous';
  /** Why this mode (for the log). */
  reason: string;
}

/**
 * The model class <-> dataset category map. 'identity': class = category id (effdet's 90-class COCO models);
 * 'contiguous': class = position + 1 in dataset order (VOC, OpenImages, models trained on N classes). 'auto'
 * picks identity for COCO when the model has classes up to the largest category id, else contiguous.
 */
export function chooseLabelMap(
  dataset: Pick<EvalDataset, 'kind' | 'categories'>,
  numClasses: number,
  choice: LabelMapChoice = 'auto',
): LabelMapResult {
  const fn = 'chooseLabelMap';
  const cats = dataset.categories;
  const maxId = Math.max(...cats.map((c) => c.id));
  const integerIds = cats.every((c) => Number.isInteger(c.id) && c.id >= 1);
  let mode: 'identity' | 'contiguous';
  let reason: string;
  if (choice === 'identity' || choice === 'contiguous') {
    mode = choice;
    reason = `--label-map ${choice}`;
  } else if (choice === 'auto') {
    if (dataset.kind === 'coco' && integerIds && numClasses >= maxId && numClasses !== cats.length) {
      mode = 'identity';
      reason = `the model has ${numClasses} classes and the largest category id is ${maxId}: class = category id`;
    } else {
      mode = 'contiguous';
      reason = `class = position in the dataset's ${cats.length} categories`;
    }
  } else {
    return fail(fn, "'choice'", 'auto, identity or contiguous', `'${String(choice)}'`);
  }
  if (mode === 'identity' && !integerIds) {
    fail(fn, "'choice'", 'contiguous for category ids that are not positive integers', "'identity'");
  }
  const map = new CategoryMap(
    cats.map((c) => ({ id: c.id, name: c.name })),
    mode,
  );
  return { map, mode, reason };
}

// ---------------------------------------------------------------------------------------------------------------
// Image loading

/** One decoded image with where it came from. */
export interface LoadedImage {
  record: ImageRecord;
  image: RgbImage;
}

export interface ImageBatch {
  /** Position of the batch's first image in the list. */
  start: number;
  items: LoadedImage[];
}

export interface ImageLoaderOptions {
  /** Images per batch (default 1). */
  batchSize?: number;
  /** Batches decoded ahead of the one being used (default 1). */
  prefetch?: number;
  /**
   * Decoding threads (default 1): worker threads running `@effdet/effdet/node`'s decoder, so decoding overlaps the
   * caller's work. 0, or when the built decoder cannot be found, decodes on the main thread between batches.
   */
  workers?: number;
}

type Decode = (path: string) => Promise<RgbImage>;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readFile } = require('node:fs/promises');
const ready = import(workerData.entry);
parentPort.on('message', async ({ id, path }) => {
  try {
    const { decodeImageBuffer } = await ready;
    let bytes;
    try {
      bytes = await readFile(path);
    } catch (e) {
      throw new Error("decodeImage: cannot read '" + path + "': " + (e && e.message ? e.message : String(e)));
    }
    const img = decodeImageBuffer(bytes, "'" + path + "'");
    let data = img.data;
    if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) data = data.slice();
    parentPort.postMessage({ id, width: img.width, height: img.height, data }, [data.buffer]);
  } catch (e) {
    parentPort.postMessage({ id, error: e && e.message ? e.message : String(e) });
  }
});
`;

/**
 * The built `@effdet/effdet/node` module (a file URL) for decode workers, or null when there is none: looked up
 * in the `node_modules` folders above the running script and the working directory, through the package's
 * `exports` (by hand, so that test runners' module mapping does not interfere).
 */
export function decoderEntry(): string | null {
  const bases = [process.argv[1], join(process.cwd(), 'index.js')].filter((b): b is string => !!b);
  for (const base of bases) {
    let d = dirname(resolve(base));
    for (;;) {
      const pkg = join(d, 'node_modules', '@effdet', 'effdet', 'package.json');
      if (existsSync(pkg)) {
        try {
          const json = JSON.parse(readFileSync(pkg, 'utf8')) as {
            exports?: Record<string, { default?: string } | undefined>;
          };
          const rel = json.exports?.['./node']?.default;
          const p = rel ? join(dirname(pkg), rel) : '';
          if (p.endsWith('.js') && existsSync(p)) return pathToFileURL(p).href;
        } catch {
          // unreadable package.json: keep looking
        }
      }
      const up = dirname(d);
      if (up === d) break;
      d = up;
    }
  }
  return null;
}

/** A pool of decode workers; `close()` ends them. */
class DecodePool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<
    number,
    { resolve: (v: RgbImage) => void; reject: (e: Error) => void }
  >();
  private next = 0;
  private turn = 0;

  constructor(entry: string, n: number) {
    for (let i = 0; i < n; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { entry } });
      w.on(
        'message',
        (m: { id: number; error?: string; width: number; height: number; data: Uint8Array }) => {
          const p = this.pending.get(m.id);
          if (!p) return;
          this.pending.delete(m.id);
          if (m.error !== undefined) p.reject(new Error(m.error));
          else p.resolve({ data: m.data, width: m.width, height: m.height });
        },
      );
      w.on('error', (e) => this.failAll(e));
      this.workers.push(w);
    }
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  decode: Decode = (path) =>
    new Promise<RgbImage>((res, rej) => {
      const id = this.next++;
      this.pending.set(id, { resolve: res, reject: rej });
      this.workers[this.turn++ % this.workers.length].postMessage({ id, path });
    });

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * Reads and decodes images in batches, `prefetch` batches ahead: while the caller works on batch k, batch k + 1 is
 * being read and decoded (in worker threads when `workers > 0`). Yields batches in list order. An unreadable or
 * undecodable image throws when its batch is reached, naming the file.
 */
export class ImageLoader {
  readonly batchSize: number;
  readonly prefetch: number;
  /** 'worker' when decoding runs in worker threads, else 'main-thread'. */
  readonly decoder: 'worker' | 'main-thread';
  private readonly pool: DecodePool | null;
  private readonly decodeOne: Decode;

  constructor(
    private readonly records: readonly ImageRecord[],
    options: ImageLoaderOptions = {},
    decodeMain?: Decode,
  ) {
    const fn = 'ImageLoader';
    this.batchSize = options.batchSize ?? 1;
    this.prefetch = options.prefetch ?? 1;
    const workers = options.workers ?? 1;
    if (!(Number.isInteger(this.batchSize) && this.batchSize > 0)) {
      fail(fn, "'batchSize'", 'a positive integer', String(this.batchSize));
    }
    if (!(Number.isInteger(this.prefetch) && this.prefetch >= 0)) {
      fail(fn, "'prefetch'", 'a non-negative integer', String(this.prefetch));
    }
    if (!(Number.isInteger(workers) && workers >= 0))
      fail(fn, "'workers'", 'a non-negative integer', String(workers));
    const entry = workers > 0 ? decoderEntry() : null;
    this.pool = entry ? new DecodePool(entry, workers) : null;
    this.decoder = this.pool ? 'worker' : 'main-thread';
    const main: Decode =
      decodeMain ??
      (async (path) => {
        const { decodeImage } = await import('@effdet/effdet/node');
        return decodeImage(path);
      });
    this.decodeOne = this.pool ? this.pool.decode : main;
  }

  get numBatches(): number {
    return Math.ceil(this.records.length / this.batchSize);
  }

  private load(b: number): Promise<ImageBatch> {
    const start = b * this.batchSize;
    const recs = this.records.slice(start, start + this.batchSize);
    const p = Promise.all(
      recs.map(async (record) => ({ record, image: await this.decodeOne(record.path) })),
    ).then((items) => ({ start, items }));
    p.catch(() => undefined); // reported when the batch is awaited
    return p;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ImageBatch> {
    const queue: Promise<ImageBatch>[] = [];
    let nextBatch = 0;
    try {
      while (nextBatch < this.numBatches && queue.length < this.prefetch + 1)
        queue.push(this.load(nextBatch++));
      while (queue.length > 0) {
        const batch = await queue.shift()!;
        // start the next decode before handing this batch out
        if (nextBatch < this.numBatches) queue.push(this.load(nextBatch++));
        yield batch;
      }
    } finally {
      await this.close();
    }
  }

  /** Ends the decode workers (also done when iteration ends). */
  async close(): Promise<void> {
    await this.pool?.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Subsets

export interface Shard {
  /** 0-based. */
  index: number;
  count: number;
}

/** `--shard I/N` with I in 1..N (as jest's `--shard`). */
export function parseShard(text: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const i = m ? Number(m[1]) : Number.NaN;
  const n = m ? Number(m[2]) : Number.NaN;
  if (!m || !(n >= 1) || !(i >= 1 && i <= n)) {
    fail('parseShard', '--shard', "'I/N' with 1 <= I <= N (e.g. 1/4)", `'${text}'`);
  }
  return { index: i - 1, count: n };
}

/**
 * The images a run covers: the first `limit` (dataset order), then shard `index` of `count` as a contiguous
 * block (`floor(k * len / count)` .. `floor((k + 1) * len / count)`), so that shard outputs concatenated in shard
 * order are the unsharded output. `effdet validate` and `effdet eval` select with this same function.
 */
export function selectSubset<T>(items: readonly T[], options: { limit?: number; shard?: Shard } = {}): T[] {
  const { limit, shard } = options;
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
    fail('selectSubset', "'limit'", 'a positive integer', String(limit));
  }
  const limited = limit !== undefined ? items.slice(0, limit) : items.slice();
  if (!shard) return limited;
  const n = limited.length;
  return limited.slice(
    Math.floor((shard.index * n) / shard.count),
    Math.floor(((shard.index + 1) * n) / shard.count),
  );
}
