import {
  CocoIndex,
  decodeMask,
  evaluateCoco,
  loadCocoDataset,
  rleArea,
  rleFromString,
  rleToBbox,
} from '@effdet/eval';
import {
  datasetStats,
  generateDataset,
  generateScene,
  imageSeed,
  iterateDataset,
  SHAPE_CLASSES,
  type ShapesCoco,
  sceneRles,
  sizeBucket,
} from './index.js';

const small = { width: 72, height: 64, minObjects: 1, maxObjects: 6 };

describe('generateDataset', () => {
  let coco: ShapesCoco;
  const seen: number[] = [];
  beforeAll(() => {
    coco = generateDataset({ ...small, seed: 3, count: 8, split: 'train' }, (item) => seen.push(item.index));
  });

  it('writes COCO records: consecutive ids, file names, categories, info', () => {
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(coco.images.map((im) => im.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(coco.images[0]).toMatchObject({ file_name: '000000.png', width: 72, height: 64 });
    expect(coco.annotations.map((a) => a.id)).toEqual(coco.annotations.map((_, i) => i + 1));
    expect(coco.categories.map((c) => c.name)).toEqual([...SHAPE_CLASSES]);
    expect(coco.categories.map((c) => c.id)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(coco.info).toMatchObject({ split: 'train', seed: 3, count: 8, version: 1 });
    expect(coco.info.options.width).toBe(72);
    for (const a of coco.annotations) {
      expect(a.iscrowd).toBe(0);
      expect(a.bbox.every((v) => Number.isInteger(v))).toBe(true);
      expect(a.bbox[2] >= 1 && a.bbox[3] >= 1).toBe(true);
    }
    // loadCocoDataset checks every record
    expect(() => loadCocoDataset(JSON.parse(JSON.stringify(coco)))).not.toThrow();
  });

  it('image i is generateScene(imageSeed(seed, split, i)); splits and seeds are separate streams', () => {
    const items = [...iterateDataset({ ...small, seed: 3, count: 3 })];
    items.forEach((item, i) => {
      expect(item.image.seed).toBe(imageSeed(3, 'train', i));
      const scene = generateScene(imageSeed(3, 'train', i), small);
      expect(Buffer.from(item.scene.rgb).equals(Buffer.from(scene.rgb))).toBe(true);
      expect(item.annotations.map((a) => a.bbox)).toEqual(scene.objects.map((o) => o.bbox));
    });
    // image i does not depend on count
    const more = [...iterateDataset({ ...small, seed: 3, count: 5 })];
    expect(Buffer.from(more[2].scene.rgb).equals(Buffer.from(items[2].scene.rgb))).toBe(true);
    const seeds = new Set([
      imageSeed(3, 'train', 0),
      imageSeed(3, 'val', 0),
      imageSeed(4, 'val', 0),
      imageSeed(3, 'train', 1),
    ]);
    expect(seeds.size).toBe(4);
    const val = [...iterateDataset({ ...small, seed: 3, count: 1, split: 'val' })][0];
    expect(Buffer.from(val.scene.rgb).equals(Buffer.from(items[0].scene.rgb))).toBe(false);
    expect(() => imageSeed(0, 'train', -1)).toThrow(/imageSeed: index must be a non-negative integer/);
    expect(() => [...iterateDataset({ count: 1.5 })]).toThrow(
      /iterateDataset: options.count must be an integer >= 0, got 1.5/,
    );
  });

  it('segmentation is the COCO RLE of the visible mask (area and box agree with pycocotools rules)', () => {
    for (const item of iterateDataset({ ...small, seed: 9, count: 6, minObjects: 3 })) {
      const { scene } = item;
      const rles = sceneRles(scene);
      item.annotations.forEach((a, i) => {
        const seg = a.segmentation!;
        expect(seg.size).toEqual([scene.height, scene.width]);
        const rle = rleFromString(seg.counts, seg.size[0], seg.size[1]);
        expect(Array.from(rle.counts)).toEqual(Array.from(rles[i].counts));
        expect(rleArea(rle)).toBe(a.area);
        expect(rleToBbox(rle)).toEqual(a.bbox);
        const m = decodeMask(rle);
        let diff = 0;
        for (let p = 0; p < m.length; p++) if (m[p] !== (scene.instance[p] === i + 1 ? 1 : 0)) diff++;
        expect(diff).toBe(0);
      });
    }
    const noSeg = generateDataset({ ...small, count: 2, segmentation: false });
    expect(noSeg.annotations.every((a) => a.segmentation === undefined)).toBe(true);
  });

  it('the ground truth scored against itself is perfect for bbox and segm', () => {
    const gt = new CocoIndex(JSON.parse(JSON.stringify(coco)));
    const asResults = (withSeg: boolean) =>
      coco.annotations.map((a) => ({
        image_id: a.image_id,
        category_id: a.category_id,
        score: 1,
        ...(withSeg ? { segmentation: a.segmentation } : { bbox: a.bbox }),
      }));
    const bbox = evaluateCoco(gt, asResults(false));
    expect(bbox.stats[0]).toBe(1);
    expect(bbox.stats[1]).toBe(1);
    const segm = evaluateCoco(gt, asResults(true), { iouType: 'segm' });
    expect(segm.stats[0]).toBe(1);
  });

  it('datasetStats counts classes, sizes and boxes per image', () => {
    const st = datasetStats(coco);
    expect(st.images).toBe(8);
    expect(st.boxes).toBe(coco.annotations.length);
    expect(st.perClass.reduce((s, c) => s + c.count, 0)).toBe(st.boxes);
    expect(Object.values(st.sizes).reduce((s, c) => s + c, 0)).toBe(st.boxes);
    const per = coco.images.map((im) => coco.annotations.filter((a) => a.image_id === im.id).length);
    expect(st.minPerImage).toBe(Math.min(...per));
    expect(st.maxPerImage).toBe(Math.max(...per));
    expect([sizeBucket(255), sizeBucket(256), sizeBucket(1023), sizeBucket(1024), sizeBucket(9216)]).toEqual([
      'tiny',
      'small',
      'small',
      'medium',
      'large',
    ]);
  });
});
