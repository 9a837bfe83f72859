/**
 * Feature-pyramid topologies as data (effdet `fpn_config.py`, after google/automl `fpn_configs.py`).
 *
 * Node ids: the input levels minLevel..maxLevel are ids 0..numLevels-1; every node appended gets the next id.
 * A node combines the listed earlier ids (resampled to its level) and produces a feature at `featLevel`.
 * The last `numLevels` nodes are the outputs, ordered by increasing level.
 */

export type WeightMethod = 'attn' | 'fastattn' | 'sum';

export interface FpnNode {
  featLevel: number;
  inputsOffsets: number[];
  weightMethod: WeightMethod;
}

export interface FpnTopology {
  nodes: FpnNode[];
}

function checkLevels(fn: string, minLevel: number, maxLevel: number): void {
  if (!Number.isInteger(minLevel) || !Number.isInteger(maxLevel) || minLevel < 1 || maxLevel <= minLevel) {
    throw new Error(`${fn}: need integer levels with 1 <= minLevel < maxLevel, got ${minLevel}..${maxLevel}`);
  }
}

/** Node-id bookkeeping shared by the generators: the ids produced so far at each level. */
class Ids {
  private readonly byLevel = new Map<number, number[]>();
  private next: number;

  constructor(minLevel: number, maxLevel: number) {
    for (let l = minLevel; l <= maxLevel; l++) this.byLevel.set(l, [l - minLevel]);
    this.next = maxLevel - minLevel + 1;
  }

  all(level: number): number[] {
    return this.byLevel.get(level)!;
  }

  first(level: number): number {
    return this.all(level)[0];
  }

  last(level: number): number {
    const ids = this.all(level);
    return ids[ids.length - 1];
  }

  /** Records a new node at `level` and returns its id. */
  add(level: number): number {
    const id = this.next++;
    this.all(level).push(id);
    return id;
  }

  /** Repeats the last id of `level` (a placeholder some generators use to align path positions). */
  repeatLast(level: number): void {
    this.all(level).push(this.last(level));
  }
}

/** BiFPN: a top-down path then a bottom-up path with same-level skip inputs. */
export function bifpnConfig(
  minLevel: number,
  maxLevel: number,
  weightMethod: WeightMethod = 'fastattn',
): FpnTopology {
  checkLevels('bifpnConfig', minLevel, maxLevel);
  const ids = new Ids(minLevel, maxLevel);
  const nodes: FpnNode[] = [];
  for (let l = maxLevel - 1; l >= minLevel; l--) {
    nodes.push({ featLevel: l, inputsOffsets: [ids.last(l), ids.last(l + 1)], weightMethod });
    ids.add(l);
  }
  for (let l = minLevel + 1; l <= maxLevel; l++) {
    nodes.push({ featLevel: l, inputsOffsets: [...ids.all(l), ids.last(l - 1)], weightMethod });
    ids.add(l);
  }
  return { nodes };
}

/** PAN-style: a top-down path then a bottom-up path, one input per node at the ends. */
export function panConfig(
  minLevel: number,
  maxLevel: number,
  weightMethod: WeightMethod = 'fastattn',
): FpnTopology {
  checkLevels('panConfig', minLevel, maxLevel);
  const ids = new Ids(minLevel, maxLevel);
  const nodes: FpnNode[] = [];
  for (let l = maxLevel; l >= minLevel; l--) {
    const inputs = l === maxLevel ? [ids.last(l)] : [ids.last(l), ids.last(l + 1)];
    nodes.push({ featLevel: l, inputsOffsets: inputs, weightMethod });
    ids.add(l);
  }
  for (let l = minLevel; l <= maxLevel; l++) {
    const inputs = l === minLevel ? [ids.last(l)] : [ids.last(l), ids.last(l - 1)];
    nodes.push({ featLevel: l, inputsOffsets: inputs, weightMethod });
    ids.add(l);
  }
  return { nodes };
}

/**
 * Quad-FPN: (top-down -> bottom-up) + (bottom-up -> top-down) paths, then a fast-attention sum of the two
 * per level. The quad-add path is always fast attention, as in effdet.
 */
export function qufpnConfig(
  minLevel: number,
  maxLevel: number,
  weightMethod: WeightMethod = 'fastattn',
): FpnTopology {
  checkLevels('qufpnConfig', minLevel, maxLevel);
  const ids = new Ids(minLevel, maxLevel);
  const nodes: FpnNode[] = [];
  const push = (featLevel: number, inputsOffsets: number[], method: WeightMethod = weightMethod) => {
    nodes.push({ featLevel, inputsOffsets, weightMethod: method });
    ids.add(featLevel);
  };
  // Path 1: top-down.
  for (let l = maxLevel - 1; l >= minLevel; l--) push(l, [ids.last(l), ids.last(l + 1)]);
  ids.repeatLast(maxLevel);
  // Path 2: bottom-up.
  for (let l = minLevel + 1; l < maxLevel; l++) push(l, [...ids.all(l), ids.last(l - 1)]);
  push(maxLevel, [ids.first(maxLevel), ids.last(maxLevel - 1)]);
  ids.repeatLast(minLevel);
  // Path 3: bottom-up from the inputs.
  for (let l = minLevel + 1; l <= maxLevel; l++) {
    push(l, [ids.first(l), l !== minLevel + 1 ? ids.last(l - 1) : ids.first(l - 1)]);
  }
  ids.repeatLast(minLevel);
  // Path 4: top-down.
  for (let l = maxLevel - 1; l > minLevel; l--) {
    const all = ids.all(l);
    push(l, [all[0], all[all.length - 1], ids.last(l + 1)]);
  }
  push(minLevel, [ids.first(minLevel), ids.last(minLevel + 1)]);
  ids.repeatLast(maxLevel);
  // Quad-add: outputs ordered by increasing level.
  for (let l = minLevel; l <= maxLevel; l++) push(l, [ids.all(l)[2], ids.all(l)[4]], 'fastattn');
  return { nodes };
}

const GENERATORS: Record<string, (min: number, max: number) => FpnTopology> = {
  bifpn_sum: (a, b) => bifpnConfig(a, b, 'sum'),
  bifpn_attn: (a, b) => bifpnConfig(a, b, 'attn'),
  bifpn_fa: (a, b) => bifpnConfig(a, b, 'fastattn'),
  pan_sum: (a, b) => panConfig(a, b, 'sum'),
  pan_fa: (a, b) => panConfig(a, b, 'fastattn'),
  qufpn_sum: (a, b) => qufpnConfig(a, b, 'sum'),
  qufpn_fa: (a, b) => qufpnConfig(a, b, 'fastattn'),
};

/** Names `getFpnConfig` accepts. */
export function listFpnNames(): string[] {
  return Object.keys(GENERATORS);
}

/** The topology called `name` (default `bifpn_fa`) for levels minLevel..maxLevel. */
export function getFpnConfig(name: string | null | undefined, minLevel = 3, maxLevel = 7): FpnTopology {
  const gen = GENERATORS[name || 'bifpn_fa'];
  if (!gen) {
    throw new Error(`getFpnConfig: unknown fpn name '${name}'; expected one of ${listFpnNames().join(', ')}`);
  }
  return gen(minLevel, maxLevel);
}
