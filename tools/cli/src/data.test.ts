/**
 * Datasets (COCO, VOC, OpenImages) for validate, the label map, subsets / shards, the prefetching loader, and
 * validate's VOC and OpenImages paths with a stand-in detector that returns the ground truth (so AP = 1).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Detection } from '@effdet/effdet';
import { decodeImage, encodePng, type RgbImage } from '@effdet/effdet/node';
import {
  chooseLabelMap,
  decoderEntry,
  ImageLoader,
  type ImageRecord,
  loadDataset,
  parseShard,
  selectSubset,
} from './data.js';
import { runValidate, type ValidationDetector } from './validate.js';

const W = 100;
const H = 50;

/** A W x H PNG whose first pixel's red value is `tag` (the stand-in detector reads it back). */
function png(tag: number): Buffer {
  const px = new Uint8Array(W * H * 3).fill(60);
  px[0] = tag;
  return encodePng(px, W, H);
}

/** A detector that returns, for image `tag`, `byTag[tag]`. */
function standIn(byTag: Record<number, Detection[]>, numClasses: number): ValidationDetector {
  return {
    config: { numClasses },
    detect: async (images: readonly RgbImage[]) => images.map((im) => byTag[im.data[0]] ?? []),
    dispose: () => undefined,
  };
}

const sink = () => ({ write: () => true, isTTY: false });

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'effdet-data-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('subsets and shards', () => {
  it('parses I/N (1-based) and rejects the rest', () => {
    expect(parseShard('1/4')).toEqual({ index: 0, count: 4 });
    expect(parseShard(' 4 / 4 ')).toEqual({ index: 3, count: 4 });
    for (const bad of ['0/4', '5/4', '1/0', 'a/b', '1', '1/2/3']) {
      expect(() => parseShard(bad)).toThrow(/parseShard: --shard expected 'I\/N' with 1 <= I <= N/);
    }
  });

  it('limit first, then contiguous blocks that cover every item once', () => {
    const items = Array.from({ length: 10 }, (_, i) => i);
    expect(selectSubset(items, { limit: 7 })).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const shards = [0, 1, 2].map((index) => selectSubset(items, { limit: 7, shard: { index, count: 3 } }));
    expect(shards).toEqual([
      [0, 1],
      [2, 3],
      [4, 5, 6],
    ]);
    expect(selectSubset(items, { shard: { index: 3, count: 4 } })).toEqual([7, 8, 9]);
    // more shards than items: some are empty, none overlap
    const tiny = [0, 1, 2, 3, 4].map((index) => selectSubset([7, 8], { shard: { index, count: 5 } }));
    expect(tiny.flat()).toEqual([7, 8]);
    expect(() => selectSubset(items, { limit: 0 })).toThrow(
      /selectSubset: 'limit' expected a positive integer/,
    );
  });
});

describe('label map', () => {
  const coco = { kind: 'coco' as const, categories: [1, 2, 3, 5, 90].map((id) => ({ id, name: `c${id}` })) };

  it("COCO with effdet's 90-class models: class = category id", () => {
    const r = chooseLabelMap(coco, 90);
    expect(r.mode).toBe('identity');
    expect(r.map.toCategoryId(90)).toBe(90);
    expect(r.map.hasLabel(4)).toBe(false); // a class without a category: dropped by validate
  });

  it('otherwise contiguous in dataset order; explicit choices win', () => {
    expect(chooseLabelMap(coco, 5).mode).toBe('contiguous');
    expect(chooseLabelMap(coco, 5).map.toCategoryId(4)).toBe(5);
    expect(chooseLabelMap(coco, 80).mode).toBe('contiguous'); // fewer classes than the largest id
    expect(chooseLabelMap({ ...coco, kind: 'voc' }, 90).mode).toBe('contiguous');
    expect(chooseLabelMap(coco, 90, 'contiguous').map.toCategoryId(1)).toBe(1);
    expect(() => chooseLabelMap(coco, 90, 'nope' as never)).toThrow(/chooseLabelMap: 'choice' expected auto/);
  });
});

describe('COCO dataset', () => {
  it('lists images with paths, sizes and categories; errors name the file and the record', () => {
    const root = join(dir, 'coco');
    mkdirSync(root);
    const ann = join(root, 'inst.json');
    writeFileSync(
      ann,
      JSON.stringify({
        images: [{ id: 9, width: W, height: H, file_name: 'a.png' }],
        categories: [{ id: 3, name: 'car' }],
        annotations: [],
      }),
    );
    const ds = loadDataset({ kind: 'coco', root, ann });
    expect(ds.images).toEqual([{ id: 9, path: join(root, 'a.png'), width: W, height: H }]);
    expect(ds.categories).toEqual([{ id: 3, name: 'car' }]);
    writeFileSync(ann, '{"images": [{"id": 1, "file_name": "a.png"}, {"id": 2}], "categories": [{"id": 1}]}');
    expect(() => loadDataset({ kind: 'coco', root, ann })).toThrow(
      /images\[1\] \(id 2\).file_name expected a file name/,
    );
    writeFileSync(ann, '{"images": [{"id": 1, "width": -3, "file_name": "a.png"}]}');
    expect(() => loadDataset({ kind: 'coco', root, ann })).toThrow(
      /inst.json: CocoIndex: argument 'dataset.images\[0\] \(id 1\).width'/,
    );
    writeFileSync(ann, '{"images": [');
    expect(() => loadDataset({ kind: 'coco', root, ann })).toThrow(
      /inst.json: loadCocoDataset: argument 'json' expected valid JSON/,
    );
    expect(() => loadDataset({ kind: 'coco', root })).toThrow(/instances_val2017.json' missing/);
    expect(() => loadDataset({ kind: 'coco', root: join(dir, 'none') })).toThrow(
      /loadDataset: 'root' expected a folder/,
    );
    expect(() => loadDataset({ kind: 'kitti' as never, root })).toThrow(
      /'kind' expected coco, voc, openimages/,
    );
  });
});

describe('Pascal VOC', () => {
  const xml = (file: string, objects: string) =>
    `<annotation><filename>${file}</filename><size><width>${W}</width><height>${H}</height><depth>3</depth></size>${objects}</annotation>`;
  const obj = (name: string, b: number[], difficult = 0) =>
    `<object><name>${name}</name><difficult>${difficult}</difficult><bndbox><xmin>${b[0]}</xmin><ymin>${b[1]}</ymin><xmax>${b[2]}</xmax><ymax>${b[3]}</ymax></bndbox></object>`;
  let root = '';

  beforeAll(() => {
    root = join(dir, 'VOC2007');
    for (const d of ['Annotations', 'JPEGImages', 'ImageSets/Main'])
      mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'ImageSets/Main/test.txt'), '000001\n000002\n\n000003\n');
    writeFileSync(
      join(root, 'Annotations/000001.xml'),
      xml('000001.png', obj('dog', [11, 6, 51, 41]) + obj('cat', [61, 11, 91, 46], 1)),
    );
    writeFileSync(join(root, 'Annotations/000002.xml'), xml('000002.png', obj('person', [1, 1, 31, 21])));
    writeFileSync(join(root, 'Annotations/000003.xml'), xml('000003.png', ''));
    for (const t of [1, 2, 3]) writeFileSync(join(root, `JPEGImages/00000${t}.png`), png(t));
  });

  it('reads the image set and the XML annotations', () => {
    const ds = loadDataset({ kind: 'voc', root });
    expect(ds.images.map((i) => [i.id, i.width, i.height])).toEqual([
      ['000001', W, H],
      ['000002', W, H],
      ['000003', W, H],
    ]);
    expect(ds.images[0].path).toBe(join(root, 'JPEGImages/000001.png'));
    expect(ds.categories).toHaveLength(20);
    const gt = ds.vocGroundTruth!(['000001']);
    // effdet shifts VOC's 1-based pixels by -1; the difficult cat is kept and flagged
    expect(gt[0].boxes).toEqual([
      [10, 5, 50, 40],
      [60, 10, 90, 45],
    ]);
    expect(gt[0].difficult).toEqual([false, true]);
  });

  it('validate: the VOC metric over the covered images, results in COCO format', async () => {
    const dog = 12;
    const person = 15;
    const detector = standIn(
      {
        1: [
          { box: [10, 5, 50, 40], score: 0.9, classId: dog },
          { box: [60, 10, 90, 45], score: 0.95, classId: 8 }, // the difficult cat: ignored
          { box: [0, 0, 5, 5], score: 0.1, classId: dog }, // a false positive after full recall
        ],
        2: [{ box: [0, 0, 30, 20], score: 0.8, classId: person }],
      },
      20,
    );
    const results = join(dir, 'voc.json');
    const r = await runValidate({
      model: 'tf_efficientdet_lite0',
      numClasses: 20,
      data: 'voc',
      root,
      batch: 2,
      results,
      workers: 0,
      stderr: sink(),
      createDetector: async () => detector,
    });
    expect(r.images).toBe(3);
    expect(r.labelMap.mode).toBe('contiguous');
    expect(r.voc!.mAP).toBe(1);
    const byName = Object.fromEntries(r.voc!.perClass.map((c) => [c.name, c.ap]));
    expect(byName.dog).toBe(1);
    expect(byName.person).toBe(1);
    expect(byName.cat).toBe(-1); // only a difficult object: no ground truth
    expect(r.detections).toBe(4);
    const { formatValidateReport } = await import('./validate.js');
    expect(formatValidateReport(r)).toMatch(/VOC mAP@0.5 \(all points\) = 1.0000/);
    expect(formatValidateReport(r)).toMatch(/^12 {2}dog +1.0000$/m);
  });

  it('errors name the file', () => {
    writeFileSync(join(root, 'ImageSets/Main/bad.txt'), '000004\n');
    writeFileSync(join(root, 'Annotations/000004.xml'), '<annotation><size><width>1</width></size>');
    expect(() => loadDataset({ kind: 'voc', root, ann: join(root, 'ImageSets/Main/bad.txt') })).toThrow(
      /000004.xml: parseXml/,
    );
    writeFileSync(join(root, 'Annotations/000004.xml'), xml('x.png', obj('unicorn', [1, 1, 2, 2])));
    expect(() => loadDataset({ kind: 'voc', root, ann: join(root, 'ImageSets/Main/bad.txt') })).toThrow(
      /000004.xml: vocAnnotationToTarget: argument 'objects\[0\].name' expected one of 20 classes, got string 'unicorn'/,
    );
    expect(() => loadDataset({ kind: 'voc', root: dir })).toThrow(/expected a VOC2007 \/ VOC2012 folder/);
  });
});

describe('OpenImages', () => {
  let root = '';
  let ann = '';
  let classes = '';
  beforeAll(() => {
    root = join(dir, 'oi');
    mkdirSync(root);
    classes = join(root, 'classes.csv');
    ann = join(root, 'boxes.csv');
    writeFileSync(classes, '/m/01,Apple\n/m/02,"Banana, ripe"\n/m/03,Cherry\n');
    writeFileSync(
      ann,
      [
        'ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside',
        'aa01,human,/m/01,1,0.1,0.5,0.2,0.8,0,0,0,0,0',
        'aa01,human,/m/02,1,0.6,0.9,0.1,0.5,0,0,1,0,0',
        'bb02,human,/m/02,1,0.0,0.3,0.0,1.0,0,0,0,0,0',
      ].join('\n'),
    );
    writeFileSync(join(root, 'aa01.jpg'), png(1)); // a PNG named .jpg: decoded by its bytes
    writeFileSync(join(root, 'bb02.png'), png(2));
  });

  it('validate: boxes scaled by the decoded sizes, group-of as crowd, the COCO metric', async () => {
    const detector = standIn(
      {
        1: [
          { box: [10, 10, 50, 40], score: 0.9, classId: 1 },
          { box: [62, 6, 88, 24], score: 0.99, classId: 2 }, // inside the group-of box: ignored
        ],
        2: [{ box: [0, 0, 30, 50], score: 0.7, classId: 2 }],
      },
      3,
    );
    const r = await runValidate({
      model: 'tf_efficientdet_lite0',
      numClasses: 3,
      data: 'openimages',
      root,
      ann,
      classes,
      results: join(dir, 'oi.json'),
      stderr: sink(),
      createDetector: async () => detector,
    });
    expect(r.images).toBe(2);
    expect(r.coco!.perCategory.map((c) => [c.name, c.ap > 0.99 ? 1 : c.ap])).toEqual([
      ['Apple', 1],
      ['Banana, ripe', 1],
      ['Cherry', -1],
    ]);
  });

  it('needs --ann and --classes; unknown labels name the row', () => {
    expect(() => loadDataset({ kind: 'openimages', root, classes })).toThrow(
      /--ann expected the box annotations CSV/,
    );
    expect(() => loadDataset({ kind: 'openimages', root, ann })).toThrow(
      /--classes expected the class descriptions CSV/,
    );
    writeFileSync(join(root, 'c2.csv'), '/m/01,Apple\n');
    expect(() => loadDataset({ kind: 'openimages', root, ann, classes: join(root, 'c2.csv') })).toThrow(
      /boxes.csv: row 3 LabelName expected a class of .*c2.csv, got '\/m\/02'/,
    );
  });
});

describe('ImageLoader', () => {
  const records = (n: number): ImageRecord[] =>
    Array.from({ length: n }, (_, i) => ({ id: i, path: `p${i}` }));
  const fake = (log: string[], failOn?: string) => async (path: string) => {
    log.push(`start ${path}`);
    await new Promise((r) => setTimeout(r, 1));
    if (path === failOn) throw new Error(`decodeImage: cannot read '${path}'`);
    return { data: new Uint8Array(3), width: 1, height: 1 };
  };

  it('batches in order, decoding the next batch before the current one is handed out', async () => {
    const log: string[] = [];
    const loader = new ImageLoader(records(5), { batchSize: 2, workers: 0 }, fake(log));
    expect(loader.decoder).toBe('main-thread');
    const seen: number[][] = [];
    for await (const b of loader) {
      log.push(`use ${b.start}`);
      seen.push(b.items.map((it) => it.record.id as number));
    }
    expect(seen).toEqual([[0, 1], [2, 3], [4]]);
    // batch 1 (p2, p3) and batch 2 (p4) were started before batches 0 and 1 were used
    expect(log.indexOf('start p2')).toBeLessThan(log.indexOf('use 0'));
    expect(log.indexOf('start p4')).toBeLessThan(log.indexOf('use 2'));
  });

  it('a failing image throws when its batch is reached, after the batches before it', async () => {
    const used: number[] = [];
    const loader = new ImageLoader(records(6), { batchSize: 2, workers: 0 }, fake([], 'p3'));
    await expect(
      (async () => {
        for await (const b of loader) used.push(b.start);
      })(),
    ).rejects.toThrow("decodeImage: cannot read 'p3'");
    expect(used).toEqual([0]);
  });

  it('checks its options', () => {
    expect(() => new ImageLoader([], { batchSize: 0 })).toThrow(
      /ImageLoader: 'batchSize' expected a positive integer/,
    );
    expect(() => new ImageLoader([], { workers: -1 })).toThrow(/'workers' expected a non-negative integer/);
  });

  const entry = decoderEntry();
  (entry ? it : it.skip)(
    'worker threads decode exactly as the main thread, and name a bad file',
    async () => {
      const paths = [1, 2, 3].map((t) => {
        const p = join(dir, `w${t}.png`);
        writeFileSync(p, png(t));
        return p;
      });
      writeFileSync(join(dir, 'bad.png'), 'not an image');
      const recs = [...paths, join(dir, 'bad.png')].map((path, id) => ({ id, path }));
      const loader = new ImageLoader(recs.slice(0, 3), { batchSize: 2, workers: 2 });
      expect(loader.decoder).toBe('worker');
      const got: RgbImage[] = [];
      for await (const b of loader) for (const it of b.items) got.push(it.image);
      for (const [i, p] of paths.entries()) {
        const ref = await decodeImage(p);
        expect([got[i].width, got[i].height]).toEqual([ref.width, ref.height]);
        expect(Buffer.from(got[i].data).equals(Buffer.from(ref.data))).toBe(true);
      }
      const bad = new ImageLoader(recs.slice(3), { workers: 1 });
      await expect(
        (async () => {
          for await (const _ of bad) {
            // nothing
          }
        })(),
      ).rejects.toThrow(/bad.png' is not a JPEG or PNG image/);
    },
  );
});
