import {
  CategoryMap,
  CocoIndex,
  cocoImageTarget,
  detectionsToCocoResults,
  evaluateCoco,
  loadCocoDataset,
  openImagesToCoco,
  parseClassImageSet,
  parseCsv,
  parseCsvObjects,
  parseImageSet,
  parseOpenImagesBoxes,
  parseOpenImagesClasses,
  parseVocXml,
  parseXml,
  VOC_CLASSES,
  vocAnnotationToTarget,
  xmlChildText,
} from './index.js';

const DATASET = {
  images: [
    { id: 3, width: 100, height: 80, file_name: '3.jpg' },
    { id: 1, width: 100, height: 80, file_name: '1.jpg' },
    { id: 2, width: 100, height: 80, file_name: '2.jpg' },
  ],
  categories: [
    { id: 18, name: 'dog', supercategory: 'animal' },
    { id: 1, name: 'person', supercategory: 'person' },
    { id: 90, name: 'toothbrush', supercategory: 'indoor' },
  ],
  annotations: [
    { id: 10, image_id: 1, category_id: 1, bbox: [0, 0, 10, 20], area: 200, iscrowd: 0 },
    { id: 11, image_id: 1, category_id: 18, bbox: [5, 5, 0.5, 20], area: 10, iscrowd: 0 },
    { id: 12, image_id: 3, category_id: 1, bbox: [10, 10, 30, 30], area: 900, iscrowd: 1 },
    { id: 13, image_id: 1, category_id: 90, bbox: [1, 2, 3, 4], area: 12, iscrowd: 0, ignore: 1 },
    { id: 14, image_id: 3, category_id: 18, bbox: [50, 40, 20, 10], area: 200, iscrowd: 0 },
  ],
};

describe('CocoIndex', () => {
  const index = loadCocoDataset(JSON.stringify(DATASET));

  it('indexes images, annotations, categories and crowd', () => {
    expect(index.getImgIds()).toEqual([3, 1, 2]);
    expect(index.getCatIds()).toEqual([18, 1, 90]);
    expect(index.getCatIds({ supNms: ['animal'] })).toEqual([18]);
    expect(index.imgToAnns.get(1)!.map((a) => a.id)).toEqual([10, 11, 13]);
    expect(index.catToImgs.get(18)).toEqual([1, 3]);
    expect(index.crowdAnns().map((a) => a.id)).toEqual([12]);
    expect(index.getImgIds({ catIds: [1, 18] })).toEqual([1, 3]);
  });

  it('filters annotations like getAnnIds (images in the order given, open area interval)', () => {
    expect(index.getAnnIds({ imgIds: [3, 1] })).toEqual([12, 14, 10, 11, 13]);
    expect(index.getAnnIds({ catIds: [18] })).toEqual([11, 14]);
    expect(index.getAnnIds({ areaRng: [10, 900] })).toEqual([10, 13, 14]);
    expect(index.getAnnIds({ iscrowd: false, imgIds: [3] })).toEqual([14]);
    expect(() => index.loadAnns([999])).toThrow(/CocoIndex.loadAnns: argument 'ids'/);
  });

  it('builds effdet-style image targets (crowd apart, ignore and <1 px boxes skipped)', () => {
    expect(cocoImageTarget(index, 1)).toEqual({ boxes: [[0, 0, 10, 20]], labels: [1], crowdBoxes: [] });
    const map = new CategoryMap(DATASET.categories);
    expect(cocoImageTarget(index, 3, { toLabel: (c) => map.toLabel(c), yxyx: true })).toEqual({
      boxes: [[40, 50, 50, 70]],
      labels: [1],
      crowdBoxes: [[10, 10, 40, 40]],
    });
  });

  it('rejects malformed datasets', () => {
    expect(() => loadCocoDataset('{"annotations": []}')).toThrow(/loadCocoDataset: argument 'json'/);
    expect(() => new CocoIndex(null as never)).toThrow(/CocoIndex: argument 'dataset'/);
  });
});

describe('CategoryMap', () => {
  it('contiguous labels 1..N in dataset order, and back', () => {
    const m = new CategoryMap(DATASET.categories);
    expect(m.toLabel(18)).toBe(1);
    expect(m.toLabel(1)).toBe(2);
    expect(m.toLabel(90)).toBe(3);
    expect(m.toCategoryId(3)).toBe(90);
    expect(m.numClasses).toBe(3);
    expect(m.name(90)).toBe('toothbrush');
    expect(m.labelNames()).toEqual({ 1: 'dog', 2: 'person', 3: 'toothbrush' });
    expect(() => m.toLabel(2)).toThrow(
      /CategoryMap.toLabel: argument 'id' expected a category id of this map, got number 2/,
    );
    expect(() => m.toCategoryId(0)).toThrow(/CategoryMap.toCategoryId/);
  });

  it("effdet's COCO identity mapping (90 classes for the 80 COCO categories)", () => {
    const coco = CategoryMap.cocoIdentity([
      { id: 1, name: 'person' },
      { id: 90, name: 'toothbrush' },
    ]);
    expect(coco.toLabel(90)).toBe(90);
    expect(coco.toCategoryId(1)).toBe(1);
    expect(coco.numClasses).toBe(90);
  });

  it('VOC names as ids', () => {
    const voc = CategoryMap.fromNames(VOC_CLASSES);
    expect(voc.toLabel('aeroplane')).toBe(1);
    expect(voc.toLabel('tvmonitor')).toBe(20);
    expect(voc.toCategoryId(15)).toBe('person');
    expect(() => new CategoryMap([{ id: 'a' }, { id: 'a' }])).toThrow(/unique ids/);
  });
});

describe('detectionsToCocoResults', () => {
  it('converts [x1, y1, x2, y2, score, cls] rows to [x, y, w, h] and drops low scores', () => {
    const out = detectionsToCocoResults(
      [
        [
          [10, 20, 40, 60, 0.9, 3],
          [0, 0, 5, 5, 0.0005, 1],
          [1, 2, 3, 4, 0.5, 7],
        ],
        [],
      ],
      [42, 43],
    );
    expect(out).toEqual([
      { image_id: 42, bbox: [10, 20, 30, 40], score: 0.9, category_id: 3 },
      { image_id: 42, bbox: [1, 2, 2, 2], score: 0.5, category_id: 7 },
    ]);
  });

  it('accepts flat float32 batches (rounded as effdet does), yxyx boxes and a label map', () => {
    const flat = new Float32Array([20, 10, 60, 40, 0.7, 2, 0, 0, 0, 0, 0, 0]);
    const map = new CategoryMap([{ id: 5 }, { id: 9 }]);
    const [r] = detectionsToCocoResults([flat], [7], {
      yxyx: true,
      labelToCategoryId: (l) => map.toCategoryId(l),
    });
    expect(r).toEqual({ image_id: 7, bbox: [10, 20, 30, 40], score: Math.fround(0.7), category_id: 9 });
  });

  it('round-trips through evaluateCoco', () => {
    const index = new CocoIndex(DATASET);
    const results = detectionsToCocoResults([[[50, 40, 70, 50, 0.8, 18]]], [3]);
    const r = evaluateCoco(index, results);
    expect(r.perCategory.find((c) => c.categoryId === 18)!.ap).toBeGreaterThan(0);
  });

  it('checks its inputs', () => {
    expect(() => detectionsToCocoResults([[]], [])).toThrow(/argument 'imageIds' expected 1 image ids/);
    expect(() => detectionsToCocoResults([[1, 2, 3]], [1])).toThrow(/flat array of length N \* 6/);
  });
});

const VOC_XML = `<?xml version="1.0"?>
<!-- a comment -->
<annotation>
  <folder>VOC2007</folder>
  <filename>000005.jpg</filename>
  <source><database>The VOC2007 Database</database></source>
  <size><width>500</width><height>375</height><depth>3</depth></size>
  <segmented>0</segmented>
  <object>
    <name>chair</name><pose>Rear</pose><truncated>0</truncated><difficult>0</difficult>
    <bndbox><xmin>263</xmin><ymin>211</ymin><xmax>324</xmax><ymax>339</ymax></bndbox>
  </object>
  <object>
    <name>chair</name><pose>Unspecified</pose><truncated>1</truncated><difficult>1</difficult>
    <bndbox><xmin>5</xmin><ymin>244</ymin><xmax>67.5</xmax><ymax>374</ymax></bndbox>
  </object>
  <object>
    <name>person</name>
    <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox>
  </object>
</annotation>
`;

describe('Pascal VOC annotations', () => {
  it('parses size, objects, difficult and truncated flags', () => {
    const a = parseVocXml(VOC_XML);
    expect(a.filename).toBe('000005.jpg');
    expect([a.width, a.height, a.depth, a.segmented]).toEqual([500, 375, 3, false]);
    expect(a.objects).toEqual([
      { name: 'chair', pose: 'Rear', truncated: false, difficult: false, bbox: [263, 211, 324, 339] },
      { name: 'chair', pose: 'Unspecified', truncated: true, difficult: true, bbox: [5, 244, 67.5, 374] },
      { name: 'person', pose: undefined, truncated: false, difficult: false, bbox: [1, 2, 3, 4] },
    ]);
  });

  it('converts to targets: labels 1..20, boxes shifted to 0-based, difficult kept or dropped', () => {
    const a = parseVocXml(VOC_XML);
    expect(vocAnnotationToTarget(a)).toEqual({
      boxes: [
        [262, 210, 323, 338],
        [4, 243, 66.5, 373],
        [0, 1, 2, 3],
      ],
      labels: [9, 9, 15],
      difficult: [false, true, false],
    });
    expect(vocAnnotationToTarget(a, { keepDifficult: false, correctBbox: 0 }).boxes).toEqual([
      [263, 211, 324, 339],
      [1, 2, 3, 4],
    ]);
    expect(() => vocAnnotationToTarget(a, { classes: ['person'] })).toThrow(/objects\[0\].name/);
  });

  it('reports malformed XML with the function and line', () => {
    expect(() => parseVocXml('<annotation><size></annotation>')).toThrow(/parseXml: .*mismatched end tag/);
    expect(() => parseVocXml('<annotation><size><width>x</width></size></annotation>')).toThrow(
      /parseVocXml: argument 'size\/width' expected a number/,
    );
  });

  it('parses ImageSets lists', () => {
    expect(parseImageSet('000005\n000007\r\n\n000009  \n')).toEqual(['000005', '000007', '000009']);
    expect(parseClassImageSet('000005 -1\n000007  1\n000009  0\n')).toEqual([
      { id: '000005', flag: -1 },
      { id: '000007', flag: 1 },
      { id: '000009', flag: 0 },
    ]);
  });

  it('XML parser: attributes, entities, CDATA, self-closing tags', () => {
    const root = parseXml(
      `<!DOCTYPE x [<!ENTITY y "z">]><r a="1" b='t&amp;u'><e/><t>a &lt; b &#65;&#x42;</t><c><![CDATA[<raw>]]></c></r>`,
    );
    expect(root.attributes).toEqual({ a: '1', b: 't&u' });
    expect(root.children.map((c) => c.name)).toEqual(['e', 't', 'c']);
    expect(xmlChildText(root, 't')).toBe('a < b AB');
    expect(xmlChildText(root, 'c')).toBe('<raw>');
  });
});

describe('CSV and OpenImages', () => {
  it('parses quoted fields, escaped quotes and CRLF', () => {
    expect(parseCsv('a,"b,c","d""e"\r\n1,,3\n')).toEqual([
      ['a', 'b,c', 'd"e'],
      ['1', '', '3'],
    ]);
    expect(parseCsvObjects('x,y\n1,2\n')).toEqual([{ x: '1', y: '2' }]);
    expect(() => parseCsv('"open')).toThrow(/parseCsv/);
  });

  const CLASSES = '/m/011k07,Tortoise\n/m/01g317,Person\n/m/0199g,"Bicycle, mountain"\n';
  const BOXES = [
    'ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside',
    '000026e7ee790996,xclick,/m/01g317,1,0.1,0.5,0.2,0.6,0,1,0,0,0',
    '000026e7ee790996,xclick,/m/01g317,1,0.5,1.0,0.0,1.0,1,0,1,0,0',
    '0000b86e2fd18333,activemil,/m/0199g,1,0.25,0.75,0.5,1,0,0,0,1,0',
  ].join('\n');

  it('parses class descriptions (label = row + 1) and box rows', () => {
    const classes = parseOpenImagesClasses(CLASSES);
    expect(classes[2]).toEqual({ labelName: '/m/0199g', displayName: 'Bicycle, mountain' });
    expect(parseOpenImagesClasses(`LabelName,DisplayName\n${CLASSES}`)).toEqual(classes);
    const boxes = parseOpenImagesBoxes(BOXES);
    expect(boxes).toHaveLength(3);
    expect(boxes[1]).toMatchObject({
      imageId: '000026e7ee790996',
      labelName: '/m/01g317',
      xMin: 0.5,
      xMax: 1,
      yMin: 0,
      yMax: 1,
      isGroupOf: true,
      isOccluded: true,
      source: 'xclick',
      confidence: 1,
    });
    expect(() => parseOpenImagesBoxes('ImageID,XMin\nx,1')).toThrow(/parseOpenImagesBoxes: argument 'csv'/);
  });

  it('converts to a COCO dataset with group-of boxes as crowd, and evaluates it', () => {
    const classes = parseOpenImagesClasses(CLASSES);
    const sizes = new Map([
      ['000026e7ee790996', { width: 200, height: 100 }],
      ['0000b86e2fd18333', { width: 40, height: 40 }],
    ]);
    const ds = openImagesToCoco(parseOpenImagesBoxes(BOXES), classes, sizes);
    expect(ds.categories!.map((c) => [c.id, c.name])).toEqual([
      [1, 'Tortoise'],
      [2, 'Person'],
      [3, 'Bicycle, mountain'],
    ]);
    expect(ds.annotations![0]).toMatchObject({ image_id: '000026e7ee790996', category_id: 2, iscrowd: 0 });
    expect(ds.annotations![0].bbox![0]).toBeCloseTo(20, 12);
    expect(ds.annotations![0].area).toBeCloseTo(80 * 40, 9);
    expect(ds.annotations![1].iscrowd).toBe(1);
    const r = evaluateCoco(ds, [
      { image_id: '000026e7ee790996', category_id: 2, bbox: [20, 20, 80, 40], score: 0.9 },
      { image_id: '0000b86e2fd18333', category_id: 3, bbox: [10, 20, 20, 20], score: 0.8 },
    ]);
    expect(r.perCategory.map((c) => c.ap)).toEqual([-1, expect.any(Number), expect.any(Number)]);
    expect(r.perCategory[1].ap).toBeGreaterThan(0.5);
    expect(() => openImagesToCoco(parseOpenImagesBoxes(BOXES), classes, new Map())).toThrow(/imageSizes/);
  });
});
