import { COCO_CATEGORY_IDS, COCO_LABELS, COCO_NUM_CLASSES, labelFor } from './coco_labels.js';

describe('COCO labels', () => {
  it('has 80 names on the 90 category ids, with the COCO 2017 gaps', () => {
    expect(COCO_CATEGORY_IDS.length).toBe(80);
    expect(COCO_NUM_CLASSES).toBe(90);
    expect(COCO_CATEGORY_IDS[0]).toBe(1);
    expect(COCO_CATEGORY_IDS[79]).toBe(90);
    const gaps = Array.from({ length: 90 }, (_, i) => i + 1).filter((id) => !(id in COCO_LABELS));
    expect(gaps).toEqual([12, 26, 29, 30, 45, 66, 68, 69, 71, 83]);
    expect(new Set(Object.values(COCO_LABELS)).size).toBe(80);
  });

  it('maps ids to names', () => {
    expect(labelFor(1)).toBe('person');
    expect(labelFor(3)).toBe('car');
    expect(labelFor(13)).toBe('stop sign');
    expect(labelFor(44)).toBe('bottle');
    expect(labelFor(67)).toBe('dining table');
    expect(labelFor(72)).toBe('tv');
    expect(labelFor(90)).toBe('toothbrush');
    expect(labelFor(12)).toBe('class 12');
    expect(labelFor(0)).toBe('class 0');
    expect(labelFor(91)).toBe('class 91');
  });

  it('is frozen', () => {
    expect(Object.isFrozen(COCO_LABELS)).toBe(true);
    expect(Object.isFrozen(COCO_CATEGORY_IDS)).toBe(true);
  });
});
