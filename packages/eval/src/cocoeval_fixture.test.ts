import { readFileSync } from 'node:fs';
import { describeWithFixture } from '@effdet/testing';
import { CocoEval, loadCocoDataset } from './index.js';

interface Expected {
  stats: number[];
  per_category_ap: Record<string, number>;
  params: { useCats: number; maxDets: number[] };
  summary_text: string;
}

for (const name of ['basic', 'crowd_empty']) {
  describeWithFixture(`coco_eval/${name}.expected.json`, `COCO bbox fixture '${name}'`, (expectedPath) => {
    const expected = JSON.parse(readFileSync(expectedPath, 'utf8')) as Expected;
    const gt = loadCocoDataset(readFileSync(expectedPath.replace('.expected.json', '.gt.json'), 'utf8'));
    const results = JSON.parse(readFileSync(expectedPath.replace('.expected.json', '.dt.json'), 'utf8'));
    const E = new CocoEval(gt, gt.loadRes(results), 'bbox');
    E.params.useCats = expected.params.useCats === 1;
    E.params.maxDets = expected.params.maxDets;
    E.evaluate();
    E.accumulate();
    const stats = E.summarize();

    it('reproduces the 12 stats to 1e-9', () => {
      expect(stats).toHaveLength(12);
      stats.forEach((s, i) => {
        expect(Math.abs(s - expected.stats[i])).toBeLessThanOrEqual(1e-9);
      });
    });

    it('reproduces every per-category AP to 1e-9', () => {
      const per = E.perCategoryAP();
      expect([...per.keys()].map(String).sort()).toEqual(Object.keys(expected.per_category_ap).sort());
      for (const [id, ap] of Object.entries(expected.per_category_ap)) {
        expect(Math.abs(per.get(Number(id))! - ap)).toBeLessThanOrEqual(1e-9);
      }
    });

    it('prints the summary exactly as pycocotools', () => {
      const printed = expected.summary_text
        .split('\n')
        .filter((l) => l.startsWith(' Average'))
        .map((l) => `${l}\n`)
        .join('');
      expect(E.summaryText()).toBe(printed);
    });
  });
}

describeWithFixture('coco_eval/basic.expected.json', 'node file helpers on the fixture', (expectedPath) => {
  it('evaluateCocoFiles gives the fixture stats', async () => {
    const { evaluateCocoFiles } = await import('./node.js');
    const expected = JSON.parse(readFileSync(expectedPath, 'utf8')) as Expected;
    const r = evaluateCocoFiles(
      expectedPath.replace('.expected.json', '.gt.json'),
      expectedPath.replace('.expected.json', '.dt.json'),
    );
    r.stats.forEach((s, i) => {
      expect(Math.abs(s - expected.stats[i])).toBeLessThanOrEqual(1e-9);
    });
    expect(r.perCategory.map((c) => c.categoryId)).toEqual([1, 2, 3, 4, 5]);
  });
});
