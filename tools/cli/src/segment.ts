import { mkdir, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { MASK_TTA_MODES, type MaskTta } from '@effdet/segmentation';
import { loadSegmentationModel, maskPng, overlayPng, predictMaskFile } from '@effdet/segmentation/node';
import { type BackendChoice, useBackend } from './backend.js';

export const SEGMENT_USAGE = `  segment <images...>        [--model SPEC] [--weights W] [--out DIR] [--classes N] [--options JSON]
                             [--input-size N|HxW] [--tta none|hflip|flip|d4] [--threshold 0.5] [--alpha 0.5]
                             [--json]: a class map per
                             image at its own size; SPEC is unet:tu-<backbone>, deeplabv3:tu-<backbone>,
                             deeplabv3plus:tu-<backbone>, efficientdet:<config>, an smp config.json or its folder
                             (default: the arch / encoder in the weights' metadata); --options takes smp keyword
                             arguments as JSON ({"encoder_depth": 4}); --out writes NAME.seg.png (overlay) and
                             NAME.mask.png (class colours); --tta averages flipped / rotated views (d4: all 8)
`;

export interface SegmentIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

const defaultIO: SegmentIO = { stdout: process.stdout, stderr: process.stderr };

export interface SegmentImageResult {
  image: string;
  width: number;
  height: number;
  /** The size the network ran at. */
  inputSize: [number, number];
  /** Share of the pixels per class id (classes with no pixel left out). */
  classFractions: Record<string, number>;
  ms: number;
  written?: string[];
}

function positiveInt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0)
    throw new Error(`effdet segment: --${name} must be a positive integer, got '${v}'`);
  return n;
}

function unitFloat(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!(n >= 0 && n <= 1))
    throw new Error(`effdet segment: --${name} must be a number in [0, 1], got '${v}'`);
  return n;
}

/**
 * An `N` (square) or `HxW` (height x width) size option of a CLI command; `option` names it in the error
 * (`effdet segment: --input-size`).
 */
export function parseSizeOption(v: string | undefined, option: string): [number, number] | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)(?:x(\d+))?$/.exec(v);
  const h = m ? Number(m[1]) : Number.NaN;
  const w = m?.[2] ? Number(m[2]) : h;
  if (!m || !(h > 0 && w > 0)) {
    throw new Error(`${option} must be N or HxW (height x width), got '${v}'`);
  }
  return [h, w];
}

function optionsOf(v: string | undefined): Record<string, unknown> | undefined {
  if (v === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch (e) {
    throw new Error(`effdet segment: --options must be a JSON object, got '${v}' (${(e as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`effdet segment: --options must be a JSON object, got '${v}'`);
  }
  return parsed as Record<string, unknown>;
}

function formatResults(results: SegmentImageResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(
      `${r.image} (${r.width}x${r.height}, network ${r.inputSize[1]}x${r.inputSize[0]}) in ${r.ms.toFixed(0)} ms`,
    );
    const parts = Object.entries(r.classFractions)
      .sort((a, b) => b[1] - a[1])
      .map(([c, f]) => `class ${c}: ${(100 * f).toFixed(1)}%`);
    lines.push(`  ${parts.join(', ')}`);
    for (const w of r.written ?? []) lines.push(`  -> ${w}`);
  }
  return lines.join('\n');
}

/**
 * `effdet segment <images...> --model SPEC --weights W --out DIR`: runs a segmentation model on image files and
 * prints the class shares (or JSON); with `--out`, writes an overlay and a colour mask per image.
 * `argv` may start with the command name.
 */
export async function runSegment(argv: string[], io: SegmentIO = defaultIO): Promise<number> {
  const args = argv[0] === 'segment' ? argv.slice(1) : argv;
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      model: { type: 'string', short: 'm' },
      weights: { type: 'string', short: 'w' },
      out: { type: 'string', short: 'o' },
      classes: { type: 'string' },
      options: { type: 'string' },
      'input-size': { type: 'string' },
      tta: { type: 'string', default: 'none' },
      threshold: { type: 'string' },
      alpha: { type: 'string' },
      json: { type: 'boolean' },
      backend: { type: 'string', default: 'wasm' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(`effdet segment <images...> [options]\n\n${SEGMENT_USAGE}`);
    return 0;
  }
  if (positionals.length === 0) throw new Error('effdet segment: give at least one image path');
  if (!values.model && !values.weights) {
    throw new Error('effdet segment: --model SPEC is required unless the --weights metadata names the model');
  }
  const classes = positiveInt(values.classes, 'classes');
  const threshold = unitFloat(values.threshold, 'threshold');
  const alpha = unitFloat(values.alpha, 'alpha');
  const inputSize = parseSizeOption(values['input-size'], 'effdet segment: --input-size');
  const tta = values.tta as MaskTta;
  if (!MASK_TTA_MODES.includes(tta)) {
    throw new Error(`effdet segment: --tta must be none, hflip, flip or d4, got '${tta}'`);
  }
  const extra = optionsOf(values.options);
  await useBackend(values.backend as BackendChoice);
  const model = await loadSegmentationModel(values.model, {
    weights: values.weights,
    classes,
    options: extra,
  });
  if (!values.weights && !values.model?.endsWith('.json')) {
    io.stderr.write('note: no --weights given: the network has random weights\n');
  }
  const results: SegmentImageResult[] = [];
  try {
    if (values.out) await mkdir(values.out, { recursive: true });
    for (const path of positionals) {
      const t0 = performance.now();
      const { image, prediction } = await predictMaskFile(model, path, { inputSize, threshold, tta });
      const ms = performance.now() - t0;
      const counts = new Map<number, number>();
      for (const c of prediction.mask) counts.set(c, (counts.get(c) ?? 0) + 1);
      const n = prediction.mask.length;
      const classFractions: Record<string, number> = {};
      for (const [c, k] of [...counts].sort((a, b) => a[0] - b[0])) classFractions[String(c)] = k / n;
      const r: SegmentImageResult = {
        image: path,
        width: prediction.width,
        height: prediction.height,
        inputSize: prediction.inputSize,
        classFractions,
        ms,
      };
      if (values.out) {
        const stem = basename(path, extname(path));
        const seg = join(values.out, `${stem}.seg.png`);
        const mask = join(values.out, `${stem}.mask.png`);
        await writeFile(seg, overlayPng(image, prediction.mask, { alpha }));
        await writeFile(mask, maskPng(prediction.mask, prediction.width, prediction.height));
        r.written = [seg, mask];
      }
      results.push(r);
    }
  } finally {
    model.dispose();
  }
  io.stdout.write(values.json ? `${JSON.stringify(results, null, 2)}\n` : `${formatResults(results)}\n`);
  return 0;
}
