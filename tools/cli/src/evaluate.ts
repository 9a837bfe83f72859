/**
 * `effdet eval` (score a COCO results file against COCO ground truth, as pycocotools prints it), `effdet
 * merge-results` (join the results files of `effdet validate --shard` runs) and the argument handling of the
 * evaluation commands (`eval`, `validate`, `merge-results`, `bench-eval`).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  type CocoEvalResult,
  type CocoResult,
  evaluateCoco,
  formatPerCategoryTable,
  type ImageId,
  type IouType,
} from '@effdet/eval';
import { readCocoDataset, readCocoResults } from '@effdet/eval/node';
import { type DatasetKind, type LabelMapChoice, parseShard, type Shard, selectSubset } from './data.js';
import type { ProgressStream } from './progress.js';

/** Where a command writes: `process.stdout` / `process.stderr`, or buffers in tests. */
export interface CliIO {
  stdout: { write(text: string): unknown };
  stderr: ProgressStream;
}

export const defaultIO: CliIO = { stdout: process.stdout, stderr: process.stderr };

export interface EvalCommandOptions {
  /** COCO ground truth (instances JSON). */
  gt: string;
  /** COCO results JSON (a list). */
  dt: string;
  iouType?: IouType;
  /** Only the first `limit` images of the ground truth (file order), as `effdet validate --limit`. */
  limit?: number;
  /** Only this shard of them, as `effdet validate --shard`. */
  shard?: Shard;
  /** Keep results for categories the ground truth does not list (pycocotools ignores them) instead of failing. */
  allowUnknownCategories?: boolean;
}

/** Reads both files, selects the images, evaluates: the report `effdet eval` prints. */
export function runEval(options: EvalCommandOptions): CocoEvalResult {
  const gt = readCocoDataset(options.gt);
  const results = readCocoResults(options.dt);
  const params: { imgIds?: ImageId[] } = {};
  if (options.limit !== undefined || options.shard) {
    params.imgIds = selectSubset(
      gt.dataset.images.map((im) => im.id),
      { limit: options.limit, shard: options.shard },
    );
  }
  try {
    return evaluateCoco(gt, results, {
      iouType: options.iouType ?? 'bbox',
      params,
      allowUnknownCategories: options.allowUnknownCategories,
    });
  } catch (e) {
    if (e instanceof Error && /loadRes/.test(e.message)) throw new Error(`${options.dt}: ${e.message}`);
    throw e;
  }
}

/** The printed report: pycocotools' 12 lines, then (with `perClass`) the per-category AP table. */
export function formatEvalReport(r: CocoEvalResult, perClass: boolean): string {
  return perClass ? `${r.summary}\n${formatPerCategoryTable(r.perCategory)}` : r.summary;
}

/**
 * A COCO results file as `effdet validate` writes it: a JSON list with one result per line (results of one
 * image together, in dataset order). The same list always gives the same bytes.
 */
export function formatResultsJson(results: readonly CocoResult[]): string {
  if (results.length === 0) return '[]\n';
  return `[\n${results.map((r) => JSON.stringify(r)).join(',\n')}\n]\n`;
}

export function writeResultsJson(path: string, results: readonly CocoResult[]): void {
  writeFileSync(path, formatResultsJson(results));
}

export interface MergeInput {
  /** Shown in errors (a file name). */
  name: string;
  results: readonly CocoResult[];
}

/**
 * Joins the results of shards. An image with results in two inputs is an error (overlapping shards, or a file
 * given twice). With `imageOrder` (the ground truth's images, as validate processes them) the results are put in
 * that order, whatever the order of the inputs, and an image outside it is an error; without it they are
 * concatenated in input order. Results of one image keep their order.
 */
export function mergeResults(
  inputs: readonly MergeInput[],
  options: { imageOrder?: readonly ImageId[] } = {},
): CocoResult[] {
  const fn = 'mergeResults';
  const owner = new Map<ImageId, string>();
  const out: CocoResult[] = [];
  for (const input of inputs) {
    if (!Array.isArray(input.results)) {
      throw new Error(
        `${fn}: ${input.name} expected a JSON list of COCO results, got ${typeof input.results}`,
      );
    }
    const mine = new Set<ImageId>();
    input.results.forEach((r, i) => {
      if (typeof r !== 'object' || r === null || !('image_id' in r)) {
        throw new Error(
          `${fn}: ${input.name}: results[${i}] expected a result with an image_id, got ${JSON.stringify(r)}`,
        );
      }
      const id = r.image_id;
      if (!mine.has(id)) {
        const prev = owner.get(id);
        if (prev !== undefined) {
          throw new Error(
            `${fn}: image ${JSON.stringify(id)} has results in both ${prev} and ${input.name} (overlapping shards, or a file given twice?)`,
          );
        }
        owner.set(id, input.name);
        mine.add(id);
      }
      out.push(r);
    });
  }
  const order = options.imageOrder;
  if (!order) return out;
  const pos = new Map<ImageId, number>();
  order.forEach((id, i) => {
    if (!pos.has(id)) pos.set(id, i);
  });
  const keyed = out.map((r, i) => {
    const p = pos.get(r.image_id);
    if (p === undefined) {
      throw new Error(
        `${fn}: ${owner.get(r.image_id)}: a result for image ${JSON.stringify(r.image_id)}, which is not in the ground truth`,
      );
    }
    return { p, i };
  });
  keyed.sort((a, b) => a.p - b.p || a.i - b.i);
  return keyed.map((k) => out[k.i]);
}

// ---------------------------------------------------------------------------------------------------------------
// Command line

export const EVAL_COMMANDS = ['eval', 'validate', 'merge-results', 'bench-eval'] as const;
export type EvalCommand = (typeof EVAL_COMMANDS)[number];

export function isEvalCommand(c: string | undefined): c is EvalCommand {
  return (EVAL_COMMANDS as readonly string[]).includes(c ?? '');
}

export const EVAL_USAGE = `  eval --gt G --dt R         [--iou-type bbox|segm] [--per-class] [--limit N] [--shard I/N]
                             [--allow-unknown-categories]: score a COCO results file as pycocotools prints it
  validate --model M --data coco|voc|openimages --root DIR
                             [--weights W] [--ann FILE] [--classes CSV] [--batch N] [--limit N] [--shard I/N]
                             [--results out.json] [--label-map auto|identity|contiguous] [--workers N]
                             [--num-classes N] [--backend wasm|cpu] [--runtime tfjs|onnx]: detect every image (progress on stderr),
                             write COCO results, print the summary and the per-class table
  merge-results R1 R2 ...    --out merged.json [--gt G]: join the results of validate --shard runs
  bench-eval                 [--images 5000] [--seed 1] [--runs 1]: time COCO evaluation on a synthetic
                             COCO-val-sized case (run it with plain node)
`;

function int(v: string | undefined, name: string, min = 1): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`effdet: --${name} must be an integer >= ${min}, got '${v}'`);
  }
  return n;
}

function required(v: string | undefined, name: string, command: string): string {
  if (!v) throw new Error(`effdet ${command}: --${name} is required (see effdet --help)`);
  return v;
}

/** Runs `effdet eval | validate | merge-results | bench-eval` with its arguments (`argv[0]` is the command). */
export async function runEvalCommand(argv: readonly string[], io: CliIO = defaultIO): Promise<number> {
  const [command, ...args] = argv;
  const json = (v: unknown) => io.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
  switch (command) {
    case 'eval': {
      const { values } = parseArgs({
        args: [...args],
        options: {
          gt: { type: 'string' },
          dt: { type: 'string' },
          'iou-type': { type: 'string', default: 'bbox' },
          'per-class': { type: 'boolean' },
          limit: { type: 'string' },
          shard: { type: 'string' },
          'allow-unknown-categories': { type: 'boolean' },
          json: { type: 'boolean' },
        },
      });
      const iouType = values['iou-type'];
      if (iouType !== 'bbox' && iouType !== 'segm') {
        throw new Error(`effdet eval: --iou-type must be bbox or segm, got '${iouType}'`);
      }
      const t0 = performance.now();
      const r = runEval({
        gt: required(values.gt, 'gt', 'eval'),
        dt: required(values.dt, 'dt', 'eval'),
        iouType,
        limit: int(values.limit, 'limit'),
        shard: values.shard ? parseShard(values.shard) : undefined,
        allowUnknownCategories: values['allow-unknown-categories'],
      });
      io.stderr.write(
        `eval: ${r.numImages} images, ${r.numDetections} detections, ${r.iouType}, ${((performance.now() - t0) / 1000).toFixed(2)} s\n`,
      );
      if (values.json) json(r);
      else io.stdout.write(formatEvalReport(r, !!values['per-class']));
      return 0;
    }
    case 'merge-results': {
      const { values, positionals } = parseArgs({
        args: [...args],
        allowPositionals: true,
        options: { out: { type: 'string', short: 'o' }, gt: { type: 'string' }, json: { type: 'boolean' } },
      });
      const out = required(values.out, 'out', 'merge-results');
      if (positionals.length === 0) throw new Error('effdet merge-results: give the results files to join');
      const inputs = positionals.map((name) => ({ name, results: readCocoResults(name) }));
      const order = values.gt ? readCocoDataset(values.gt).dataset.images.map((im) => im.id) : undefined;
      const merged = mergeResults(inputs, { imageOrder: order });
      writeResultsJson(out, merged);
      const summary = {
        out,
        inputs: inputs.map((i) => ({ file: i.name, results: i.results.length })),
        results: merged.length,
        images: new Set(merged.map((r) => r.image_id)).size,
      };
      if (values.json) json(summary);
      else
        io.stdout.write(
          `${summary.results} results of ${summary.images} images from ${inputs.length} files -> ${out}\n`,
        );
      return 0;
    }
    case 'validate': {
      const { values } = parseArgs({
        args: [...args],
        options: {
          model: { type: 'string', short: 'm' },
          weights: { type: 'string', short: 'w' },
          data: { type: 'string', default: 'coco' },
          root: { type: 'string' },
          ann: { type: 'string' },
          classes: { type: 'string' },
          batch: { type: 'string' },
          limit: { type: 'string' },
          shard: { type: 'string' },
          results: { type: 'string' },
          'label-map': { type: 'string', default: 'auto' },
          'num-classes': { type: 'string' },
          workers: { type: 'string' },
          backend: { type: 'string', default: 'wasm' },
          runtime: { type: 'string', default: 'tfjs' },
          json: { type: 'boolean' },
        },
      });
      const data = values.data as DatasetKind;
      if (!['coco', 'voc', 'openimages'].includes(data)) {
        throw new Error(`effdet validate: --data must be coco, voc or openimages, got '${values.data}'`);
      }
      const labelMap = values['label-map'] as LabelMapChoice;
      if (!['auto', 'identity', 'contiguous'].includes(labelMap)) {
        throw new Error(
          `effdet validate: --label-map must be auto, identity or contiguous, got '${labelMap}'`,
        );
      }
      const backend = values.backend;
      if (backend !== 'wasm' && backend !== 'cpu' && backend !== 'tensorflow') {
        throw new Error(`effdet validate: --backend must be wasm, cpu or tensorflow, got '${backend}'`);
      }
      if (values.runtime !== 'tfjs' && values.runtime !== 'onnx') {
        throw new Error(`effdet validate: --runtime must be tfjs or onnx, got '${values.runtime}'`);
      }
      const { runValidate, formatValidateReport } = await import('./validate.js');
      const r = await runValidate({
        model: required(values.model, 'model', 'validate'),
        weights: values.weights,
        data,
        root: required(values.root, 'root', 'validate'),
        ann: values.ann,
        classes: values.classes,
        batch: int(values.batch, 'batch'),
        limit: int(values.limit, 'limit'),
        shard: values.shard ? parseShard(values.shard) : undefined,
        results: values.results,
        labelMap,
        numClasses: int(values['num-classes'], 'num-classes'),
        workers: int(values.workers, 'workers', 0),
        backend,
        stderr: io.stderr,
        ...(values.runtime === 'onnx'
          ? {
              createDetector: async (m: string, o: { weights?: string; numClasses?: number }) =>
                (await import('@effdet/onnx/node')).createOnnxDetector(m, o),
            }
          : {}),
      });
      if (values.json) json(r);
      else io.stdout.write(formatValidateReport(r));
      return 0;
    }
    case 'bench-eval': {
      const { values } = parseArgs({
        args: [...args],
        options: {
          images: { type: 'string' },
          seed: { type: 'string' },
          runs: { type: 'string' },
          dir: { type: 'string' },
          json: { type: 'boolean' },
        },
      });
      const { benchEval, formatBenchEval } = await import('./bench_eval.js');
      const r = benchEval({
        images: int(values.images, 'images'),
        seed: int(values.seed, 'seed', 0),
        runs: int(values.runs, 'runs'),
        dir: values.dir,
      });
      if (values.json) json(r);
      else io.stdout.write(`${formatBenchEval(r)}\n`);
      return 0;
    }
    default:
      throw new Error(`effdet: '${command}' is not one of ${EVAL_COMMANDS.join(', ')}`);
  }
}
