/**
 * Dataset category ids <-> model class labels. effdet numbers classes from 1: either contiguously in the order
 * the dataset lists its categories (`cat_id_to_label`, used for VOC and OpenImages) or, for COCO's original
 * 90-class models, with the COCO category id itself as the label (`cat_ids_as_labels`).
 */
import { argError, check } from './errors.js';

export type CategoryMapMode = 'contiguous' | 'identity';

export interface CategoryInfo<Id extends number | string = number> {
  id: Id;
  name?: string;
}

export class CategoryMap<Id extends number | string = number> {
  readonly mode: CategoryMapMode;
  /** Category ids in dataset order. */
  readonly ids: readonly Id[];
  readonly names: readonly string[];
  private readonly idToLabel = new Map<Id, number>();
  private readonly labelToId = new Map<number, Id>();
  private readonly idToName = new Map<Id, string>();

  /**
   * `categories` in dataset order (COCO `categories`, VOC class names as ids, OpenImages label names).
   * 'contiguous' (default): label = position + 1. 'identity': label = the (numeric) category id.
   */
  constructor(categories: readonly CategoryInfo<Id>[], mode: CategoryMapMode = 'contiguous') {
    check(Array.isArray(categories), 'CategoryMap', 'categories', 'an array of {id, name}', categories);
    check(
      mode === 'contiguous' || mode === 'identity',
      'CategoryMap',
      'mode',
      "'contiguous' or 'identity'",
      mode,
    );
    this.mode = mode;
    this.ids = categories.map((c) => c.id);
    this.names = categories.map((c) => c.name ?? String(c.id));
    categories.forEach((c, i) => {
      if (this.idToLabel.has(c.id)) throw argError('CategoryMap', `categories[${i}].id`, 'unique ids', c.id);
      let label: number;
      if (mode === 'identity') {
        if (typeof c.id !== 'number' || !Number.isInteger(c.id)) {
          throw argError('CategoryMap', `categories[${i}].id`, "an integer id in 'identity' mode", c.id);
        }
        label = c.id;
      } else {
        label = i + 1;
      }
      this.idToLabel.set(c.id, label);
      this.labelToId.set(label, c.id);
      this.idToName.set(c.id, this.names[i]);
    });
  }

  /** effdet's COCO convention: category ids used as labels (a 90-class model for COCO 2017). */
  static cocoIdentity(categories: readonly CategoryInfo<number>[]): CategoryMap<number> {
    return new CategoryMap(categories, 'identity');
  }

  /** Contiguous labels 1..N from a list of class names (VOC style: the name is the id). */
  static fromNames(names: readonly string[]): CategoryMap<string> {
    return new CategoryMap(
      names.map((n) => ({ id: n, name: n })),
      'contiguous',
    );
  }

  /** Number of model classes: N for 'contiguous', the largest id for 'identity'. */
  get numClasses(): number {
    let max = 0;
    for (const l of this.labelToId.keys()) max = Math.max(max, l);
    return max;
  }

  hasCategory(id: Id): boolean {
    return this.idToLabel.has(id);
  }

  hasLabel(label: number): boolean {
    return this.labelToId.has(label);
  }

  /** The model label of a category id; throws for an unknown id. */
  toLabel(id: Id): number {
    const l = this.idToLabel.get(id);
    if (l === undefined) throw argError('CategoryMap.toLabel', 'id', 'a category id of this map', id);
    return l;
  }

  /** The category id of a model label; throws for an unknown label. */
  toCategoryId(label: number): Id {
    const id = this.labelToId.get(label);
    if (id === undefined) throw argError('CategoryMap.toCategoryId', 'label', 'a label of this map', label);
    return id;
  }

  /** The name of a category id. */
  name(id: Id): string {
    const n = this.idToName.get(id);
    if (n === undefined) throw argError('CategoryMap.name', 'id', 'a category id of this map', id);
    return n;
  }

  /** `{label: name}` for reports. */
  labelNames(): Record<number, string> {
    const out: Record<number, string> = {};
    for (const [label, id] of this.labelToId) out[label] = this.idToName.get(id)!;
    return out;
  }
}
