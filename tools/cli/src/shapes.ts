/**
 * `effdet make-shapes`: writes a synthetic shapes dataset (`@effdet/shapes`) as COCO, with a progress line on
 * stderr and a summary (images, boxes per class, box sizes) on stdout.
 */
import { parseArgs } from 'node:util';
import { type DatasetStats, SHAPE_CLASSES, type SizeBucket } from '@effdet/shapes';
import { type WriteShapesResult, writeShapesDataset } from '@effdet/shapes/node';
import { type CliIO, defaultIO } from './evaluate.js';
import { Progress } from './progress.js';

export const MAKE_SHAPES_USAGE = `  make-shapes --out DIR       [--train 1000] [--val 200] [--size 320] [--seed 0] [--val-seed K] [--masks]
                             [--min-objects 1] [--max-objects 8] [--min-size 8] [--max-size 0.6*size]
                             [--no-segmentation] [--json]: write a synthetic shapes dataset (${SHAPE_CLASSES.length} classes):
                             DIR/{train,val}/*.png, DIR/annotations/instances_{train,val}.json (COCO),
                             with --masks DIR/masks/{train,val}/*.png (palette index = class id); a split's
                             images depend only on its seed (--val-seed: a fresh validation set)
`;

function intArg(v: string | undefined, name: string, min: number, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!(v.trim() !== '' && Number.isSafeInteger(n) && n >= min)) {
    throw new Error(`effdet make-shapes: --${name} must be an integer >= ${min}, got '${v}'`);
  }
  return n;
}

function numArg(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!(v.trim() !== '' && Number.isFinite(n) && n > 0)) {
    throw new Error(`effdet make-shapes: --${name} must be a positive number, got '${v}'`);
  }
  return n;
}

const BUCKETS: [SizeBucket, string][] = [
  ['tiny', 'tiny   (area < 16^2)'],
  ['small', 'small  (16^2 .. 32^2)'],
  ['medium', 'medium (32^2 .. 96^2)'],
  ['large', 'large  (>= 96^2)'],
];

/** The summary table: one column per split. */
export function formatShapesSummary(r: WriteShapesResult): string {
  const cols = r.splits;
  const stats: DatasetStats[] = cols.map((c) => c.stats);
  const head = (label: string) => `${label.padEnd(22)}${cols.map((c) => c.split.padStart(9)).join('')}`;
  const row = (label: string, values: number[]) =>
    `${label.padEnd(22)}${values.map((v) => String(v).padStart(9)).join('')}`;
  const lines: string[] = [];
  lines.push(
    `wrote ${r.dir}: ${cols.map((c) => `${c.split} ${c.images} images / ${c.annotations} boxes (seed ${c.seed})`).join(', ') || 'nothing'}`,
  );
  if (cols.length === 0) return `${lines[0]}\n`;
  lines.push('', head('boxes per class'));
  for (let k = 0; k < stats[0].perClass.length; k++) {
    const c = stats[0].perClass[k];
    lines.push(
      row(
        `  ${c.id} ${c.name}`,
        stats.map((s) => s.perClass[k].count),
      ),
    );
  }
  lines.push(
    row(
      '  all',
      stats.map((s) => s.boxes),
    ),
  );
  lines.push('', head('box size (visible px)'));
  for (const [b, label] of BUCKETS)
    lines.push(
      row(
        `  ${label}`,
        stats.map((s) => s.sizes[b]),
      ),
    );
  lines.push('', head('boxes per image'));
  lines.push(
    row(
      '  min',
      stats.map((s) => s.minPerImage),
    ),
  );
  lines.push(
    row(
      '  max',
      stats.map((s) => s.maxPerImage),
    ),
  );
  lines.push(
    row(
      '  mean',
      stats.map((s) => (s.images ? Number((s.boxes / s.images).toFixed(2)) : 0)),
    ),
  );
  lines.push('');
  for (const c of cols) {
    lines.push(
      `${c.split}: ${c.annotationFile}  images in ${c.imageDir}${c.maskDir ? `  masks in ${c.maskDir}` : ''}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Runs `effdet make-shapes` with the arguments after the command name (a leading 'make-shapes' is skipped).
 * Returns the exit code; bad arguments throw an Error whose message names the option.
 */
export async function runMakeShapes(argv: readonly string[], io: CliIO = defaultIO): Promise<number> {
  const args = argv[0] === 'make-shapes' ? argv.slice(1) : [...argv];
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      out: { type: 'string', short: 'o' },
      train: { type: 'string' },
      val: { type: 'string' },
      size: { type: 'string' },
      seed: { type: 'string' },
      'val-seed': { type: 'string' },
      masks: { type: 'boolean' },
      'min-objects': { type: 'string' },
      'max-objects': { type: 'string' },
      'min-size': { type: 'string' },
      'max-size': { type: 'string' },
      'no-segmentation': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(`effdet make-shapes [options]\n${MAKE_SHAPES_USAGE}`);
    return 0;
  }
  if (positionals.length > 0) {
    throw new Error(
      `effdet make-shapes: unexpected argument '${positionals[0]}' (the folder goes after --out)`,
    );
  }
  const out = values.out;
  if (!out) throw new Error('effdet make-shapes: --out DIR is required');
  const train = intArg(values.train, 'train', 0, 1000);
  const val = intArg(values.val, 'val', 0, 200);
  const size = intArg(values.size, 'size', 1, 320);
  const seed = intArg(values.seed, 'seed', Number.MIN_SAFE_INTEGER, 0);
  const valSeed = intArg(values['val-seed'], 'val-seed', Number.MIN_SAFE_INTEGER, seed);
  const minObjects = intArg(values['min-objects'], 'min-objects', 0, 1);
  const maxObjects = intArg(values['max-objects'], 'max-objects', 0, Math.max(8, minObjects));
  if (maxObjects < minObjects) {
    throw new Error(
      `effdet make-shapes: --max-objects (${maxObjects}) must be >= --min-objects (${minObjects})`,
    );
  }
  const minSize = numArg(values['min-size'], 'min-size');
  const maxSize = numArg(values['max-size'], 'max-size');
  const progress = new Progress({
    total: train + val,
    label: 'make-shapes',
    unit: 'images',
    stream: io.stderr,
  });
  const result = await writeShapesDataset(out, {
    train,
    val,
    size,
    seed,
    valSeed,
    masks: !!values.masks,
    segmentation: !values['no-segmentation'],
    minObjects,
    maxObjects,
    minSize,
    maxSize,
    onProgress: () => progress.tick(),
  });
  progress.finish();
  if (values.json) io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else io.stdout.write(formatShapesSummary(result));
  return 0;
}
