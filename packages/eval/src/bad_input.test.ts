/** Malformed ground truth and results: every error names the function, the record and what was wrong. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type CocoDatasetJson,
  CocoEval,
  CocoIndex,
  type CocoResult,
  EvalArgumentError,
  evaluateCoco,
  loadCocoDataset,
  parseCocoResults,
} from './index.js';
import { evaluateCocoFiles, readCocoDataset, readCocoResults } from './node.js';

function gt(): CocoDatasetJson {
  return {
    images: [
      { id: 1, width: 100, height: 80 },
      { id: 2, width: 100, height: 80 },
    ],
    categories: [
      { id: 1, name: 'a' },
      { id: 5, name: 'b' },
    ],
    annotations: [
      { id: 1, image_id: 1, category_id: 1, bbox: [1, 2, 30, 40], area: 1200, iscrowd: 0 },
      { id: 2, image_id: 2, category_id: 5, bbox: [10, 10, 20, 20], area: 400, iscrowd: 1 },
    ],
  };
}

const DT: CocoResult[] = [
  { image_id: 1, category_id: 1, bbox: [1, 2, 30, 40], score: 0.9 },
  { image_id: 2, category_id: 5, bbox: [0, 0, 5, 5], score: 0.5 },
];

function mutate(f: (d: CocoDatasetJson & Record<string, unknown>) => void): CocoDatasetJson {
  const d = gt() as CocoDatasetJson & Record<string, unknown>;
  f(d);
  return d;
}

const index = (d: CocoDatasetJson) => () => new CocoIndex(d);

describe('malformed JSON', () => {
  it('names the function and where the text breaks', () => {
    expect(() => loadCocoDataset('{"images": [\n  {"id": 1,, "width": 3}]}')).toThrow(EvalArgumentError);
    expect(() => loadCocoDataset('{"images": [\n  {"id": 1,, "width": 3}]}')).toThrow(
      /^loadCocoDataset: argument 'json' expected valid JSON, got a syntax error/,
    );
    expect(() => loadCocoDataset('{"images": [1, 2')).toThrow(/line 1, column \d+|truncated/);
    expect(() => loadCocoDataset('')).toThrow(/the text is empty/);
    expect(() => parseCocoResults('[{"image_id": 1}')).toThrow(/^parseCocoResults: .*valid JSON/);
    expect(() => evaluateCoco(gt(), '[{"image_id": 1, }]')).toThrow(/^evaluateCoco: argument 'results'/);
    expect(() => evaluateCoco('{images: []}', DT)).toThrow(
      /^evaluateCoco: argument 'gt' expected valid JSON/,
    );
  });

  it('valid JSON of the wrong shape is named too', () => {
    expect(() => loadCocoDataset('[1, 2]')).toThrow(
      /loadCocoDataset: argument 'json' expected a COCO dataset/,
    );
    expect(() => parseCocoResults('{"image_id": 1}')).toThrow(/expected a JSON array of results/);
    expect(() => evaluateCoco(gt(), '{"a": 1}')).toThrow(
      /evaluateCoco: argument 'results' expected an array/,
    );
  });
});

describe('ground truth records', () => {
  it('missing or malformed ids', () => {
    expect(index(mutate((d) => delete (d.images[1] as Record<string, unknown>).id))).toThrow(
      /CocoIndex: argument 'dataset.images\[1\].id' expected a number or a non-empty string, got undefined/,
    );
    expect(index(mutate((d) => (d.images[1].id = 1)))).toThrow(
      /'dataset.images\[1\].id' expected a unique image id \(images\[0\] has it too\), got number 1/,
    );
    expect(index(mutate((d) => (d.images[1].id = '2')))).toThrow(
      /'dataset.images\[1\].id' expected a number id like the images before it/,
    );
    expect(index(mutate((d) => delete (d.annotations![1] as Record<string, unknown>).id))).toThrow(
      /'dataset.annotations\[1\].id' expected a number, got undefined/,
    );
    expect(index(mutate((d) => (d.annotations![1].id = 1)))).toThrow(
      /'dataset.annotations\[1\].id' expected a unique id \(annotations\[0\] has it too\)/,
    );
    expect(index(mutate((d) => (d.categories![1].id = 1)))).toThrow(
      /'dataset.categories\[1\].id' expected a unique/,
    );
    expect(index(mutate((d) => ((d.categories![0] as Record<string, unknown>).id = 'x')))).toThrow(
      /'dataset.categories\[0\].id' expected a number, got string 'x'/,
    );
    expect(index(mutate((d) => ((d.images as unknown[])[0] = 7)))).toThrow(
      /'dataset.images\[0\]' expected an image/,
    );
    expect(index(mutate((d) => ((d.annotations as unknown[])[0] = null)))).toThrow(
      /'dataset.annotations\[0\]' expected an annotation object, got null/,
    );
  });

  it('annotations on unknown images or categories, or without a category', () => {
    expect(index(mutate((d) => (d.annotations![0].image_id = 3)))).toThrow(
      /'dataset.annotations\[0\] \(id 1\).image_id' expected the id of an image listed in 'images', got number 3/,
    );
    expect(index(mutate((d) => (d.annotations![1].category_id = 2)))).toThrow(
      /'dataset.annotations\[1\] \(id 2\).category_id' expected the id of a category listed in 'categories', got number 2/,
    );
    expect(index(mutate((d) => delete (d.annotations![1] as Record<string, unknown>).category_id))).toThrow(
      /'dataset.annotations\[1\] \(id 2\).category_id' expected a number, got undefined/,
    );
    // without a categories list, any numeric category is accepted (as pycocotools)
    expect(index(mutate((d) => delete d.categories))).not.toThrow();
  });

  it('negative sizes and malformed boxes, areas and crowd flags', () => {
    expect(index(mutate((d) => (d.images[0].width = -100)))).toThrow(
      /'dataset.images\[0\] \(id 1\).width' expected a positive number, got number -100/,
    );
    expect(index(mutate((d) => (d.images[1].height = 0)))).toThrow(/'dataset.images\[1\] \(id 2\).height'/);
    expect(index(mutate((d) => (d.annotations![0].bbox = [1, 2, -30, 40])))).toThrow(
      /'dataset.annotations\[0\] \(id 1\).bbox' expected \[x, y, w, h\] of 4 finite numbers with w >= 0 and h >= 0, got \[1, 2, -30, 40\]/,
    );
    expect(index(mutate((d) => (d.annotations![0].bbox = [1, 2, 30])))).toThrow(/got \[1, 2, 30\]/);
    expect(
      index(mutate((d) => ((d.annotations![0] as Record<string, unknown>).bbox = [1, 2, '3', 4]))),
    ).toThrow(/\(id 1\).bbox' expected \[x, y, w, h\]/);
    expect(index(mutate((d) => (d.annotations![1].area = -5)))).toThrow(
      /'dataset.annotations\[1\] \(id 2\).area' expected a finite number >= 0, got number -5/,
    );
    expect(index(mutate((d) => (d.annotations![1].iscrowd = 2)))).toThrow(/\(id 2\).iscrowd' expected 0, 1/);
  });

  it('fields evaluation needs are checked when it needs them', () => {
    const noArea = new CocoIndex(mutate((d) => delete d.annotations![1].area));
    const E = new CocoEval(noArea, noArea.loadRes(DT));
    expect(() => E.evaluate()).toThrow(
      /CocoEval.evaluate: argument 'annotation 2 area' expected a number, got undefined/,
    );
    const noBox = new CocoIndex(mutate((d) => delete d.annotations![0].bbox));
    const E2 = new CocoEval(noBox, noBox.loadRes(DT));
    expect(() => E2.evaluate()).toThrow(
      /'annotation 1 bbox' expected an \[x, y, w, h\] array, got undefined/,
    );
  });
});

describe('result records', () => {
  const G = new CocoIndex(gt());
  const bad = (i: number, patch: Record<string, unknown>, drop?: string) => {
    const list = DT.map((r) => ({ ...r })) as Record<string, unknown>[];
    Object.assign(list[i], patch);
    if (drop) delete list[i][drop];
    return () => G.loadRes(list);
  };

  it('a detection for an unknown image or category', () => {
    expect(bad(1, { image_id: 9 })).toThrow(
      /CocoIndex.loadRes: argument 'results\[1\].image_id' expected the id of an image in the ground truth .*got number 9/,
    );
    expect(bad(1, { image_id: '2' })).toThrow(/'results\[1\].image_id' .* got string '2'/);
    expect(bad(1, { category_id: 12 })).toThrow(
      /'results\[1\] \(image 2\).category_id' expected the id of a ground-truth category \(one of 1, 5; allowUnknownCategories keeps/,
    );
  });

  it('allowUnknownCategories keeps them, unevaluated, as pycocotools does', () => {
    const extra = [...DT, { image_id: 1, category_id: 12, bbox: [1, 2, 30, 40], score: 0.99 }];
    const dt = G.loadRes(extra, { allowUnknownCategories: true });
    expect(dt.anns.size).toBe(3);
    const withExtra = evaluateCoco(G, extra, { allowUnknownCategories: true });
    expect(withExtra.stats).toEqual(evaluateCoco(G, DT).stats);
    expect(() => evaluateCoco(G, extra)).toThrow(/results\[2\] \(image 1\).category_id/);
  });

  it('missing fields', () => {
    expect(bad(0, {}, 'score')).toThrow(
      /'results\[0\] \(image 1\).score' expected a finite number, got undefined/,
    );
    expect(bad(1, {}, 'category_id')).toThrow(
      /'results\[1\] \(image 2\).category_id' expected a number, got undefined/,
    );
    expect(bad(1, {}, 'bbox')).toThrow(/'results\[1\] \(image 2\).bbox' expected \[x, y, w, h\]/);
    expect(bad(0, {}, 'image_id')).toThrow(/'results\[0\].image_id' .* got undefined/);
    expect(() => G.loadRes([{ image_id: 1, category_id: 1, score: 1 }])).toThrow(
      /'results\[0\]' expected a result with 'bbox' or 'segmentation'/,
    );
    expect(() => G.loadRes([DT[0], 'x'])).toThrow(/'results\[1\]' expected a result object, got string 'x'/);
  });

  it('negative sizes and non-finite values; zero-size boxes are allowed', () => {
    expect(bad(1, { bbox: [0, 0, 5, -5] })).toThrow(
      /'results\[1\] \(image 2\).bbox' expected \[x, y, w, h\] of 4 finite numbers with w >= 0 and h >= 0, got \[0, 0, 5, -5\]/,
    );
    expect(bad(0, { bbox: [0, 0, Number.NaN, 5] })).toThrow(/got \[0, 0, NaN, 5\]/);
    expect(bad(0, { score: Number.POSITIVE_INFINITY })).toThrow(
      /score' expected a finite number, got number Infinity/,
    );
    expect(bad(0, { score: '0.9' })).toThrow(/score' expected a finite number, got string '0.9'/);
    expect(bad(0, { bbox: [0, 0, 0, 5] })).not.toThrow();
  });
});

describe('files (@effdet/eval/node)', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'effdet-eval-bad-'));
    writeFileSync(join(dir, 'gt.json'), JSON.stringify(gt()));
    writeFileSync(join(dir, 'dt.json'), JSON.stringify(DT));
    writeFileSync(
      join(dir, 'broken.json'),
      '[\n  {"image_id": 1, "category_id": 1,\n  "bbox": [1, 2, 3, 4] "score": 1}\n]',
    );
    writeFileSync(join(dir, 'truncated.json'), JSON.stringify(DT).slice(0, 50));
    writeFileSync(join(dir, 'unknown.json'), JSON.stringify([...DT, { ...DT[0], image_id: 42 }]));
    writeFileSync(join(dir, 'badgt.json'), JSON.stringify(mutate((d) => (d.images[0].width = -1))));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('missing files, syntax errors with line and column, and records, each with the file name', () => {
    expect(() => readCocoDataset(join(dir, 'nope.json'))).toThrow(
      /^readCocoDataset: argument 'path' expected a readable JSON file, got '.*nope.json' \(no such file\)/,
    );
    expect(() => readCocoResults(dir)).toThrow(/\(a directory\)/);
    expect(() => readCocoResults(join(dir, 'broken.json'))).toThrow(
      /^readCocoResults: argument '.*broken.json' expected valid JSON, got a syntax error \(line 3, column 24\)/,
    );
    expect(() => readCocoResults(join(dir, 'truncated.json'))).toThrow(/broken|truncated|position/);
    expect(() => readCocoDataset(join(dir, 'badgt.json'))).toThrow(
      /badgt.json: CocoIndex: argument 'dataset.images\[0\] \(id 1\).width'/,
    );
    expect(() => evaluateCocoFiles(join(dir, 'gt.json'), join(dir, 'unknown.json'))).toThrow(
      /unknown.json: CocoIndex.loadRes: argument 'results\[2\].image_id'/,
    );
    expect(evaluateCocoFiles(join(dir, 'gt.json'), join(dir, 'dt.json')).stats).toHaveLength(12);
  });
});
