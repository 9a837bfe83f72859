#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { listEfficientDetModels } from '@effdet/effdet';
import { listModels } from '@effdet/efficientnet';
import { type BackendChoice, useBackend } from './backend.js';
import { bench, benchLoad, formatBench } from './bench.js';
import { BENCH_TRAIN_USAGE, runBenchTrainCommand } from './bench_train.js';
import { formatDiffTable } from './compare.js';
import { convert, formatInspect, inspect } from './convert.js';
import { DEMO_USAGE, runDemoCommand } from './demo.js';
import { EVAL_USAGE, isEvalCommand, runEvalCommand } from './evaluate.js';
import { EXPORT_ONNX_USAGE, runBenchOnnx, runExportOnnx, runOnnxParity } from './export_onnx.js';
import { detectorInfo, formatDetectorInfo, formatInfo, isDetector, modelInfo } from './info.js';
import { runParity } from './parity.js';
import { formatPredictions, predict } from './predict.js';
import { runSegment, SEGMENT_USAGE } from './segment.js';
import { MAKE_SHAPES_USAGE, runMakeShapes } from './shapes.js';
import { runTrainCommand, TRAIN_USAGE } from './train.js';
import { runTrainSegmentCommand, TRAIN_SEGMENT_USAGE } from './train_segment.js';

const USAGE = `effdet <command> [options]

Commands:
${DEMO_USAGE}  list-models [pattern]      registered detectors and backbones (wildcards: 'tf_efficientdet_d*');
                             --detectors / --backbones, --pretrained (backbones with released weights)
  info <model>               a detector's config, parameters, features, levels and anchors; a backbone's
                             features and shapes (--size N --output-stride 8|16 --feature-location ..., --no-run)
  predict <images...>        --model M [--weights W] [--score 0.3] [--out DIR] [--json] [--num-classes N]
                             (--model shapes: the shipped shapes detector, models/shapes)
                             detections per image; with --out, writes NAME.det.png with boxes and labels
  parity --io FILE           [--weights W] [--rtol 1e-3] [--fuse]: run the model of a reference dump and compare
                             every tensor it holds (docs/parity-dump-format.md); exit 1 on any FAIL
                             (--runtime onnx: the exported ONNX model on onnxruntime-node)
  convert SRC --model M --out DEST  [--to tfjs|safetensors] [--dtype float32|float16] [--no-ema]
                             [--num-classes N]: load any format strictly into M, write PyTorch-named
                             safetensors or a TF.js model.json + ~4 MB shards
  bench-load W... --model M  time from each weights file (any format) to a ready detector
  inspect FILE               a checkpoint's tensors (name, dtype, shape) and metadata, any format
  bench --model M            [--size S] [--batch B] [--runs N] [--warmup N] [--weights W] [--no-fuse]
                             latency of preprocess / network / post-process, peak tensor memory
${SEGMENT_USAGE}${EVAL_USAGE}${MAKE_SHAPES_USAGE}${TRAIN_USAGE}${TRAIN_SEGMENT_USAGE}${BENCH_TRAIN_USAGE}${EXPORT_ONNX_USAGE}
Common options:
  --backend wasm|cpu|tensorflow   (default wasm; tensorflow needs @tensorflow/tfjs-node installed)
  --runtime tfjs|onnx             predict, validate, bench, parity: TF.js (default) or onnxruntime-node
  --json                          machine-readable output
  --help
`;

function int(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0)
    throw new Error(`effdet: --${name} must be a positive integer, got '${v}'`);
  return n;
}

/** The value of `--runtime` (`tfjs` or `onnx`) in raw arguments. */
function runtimeOf(argv: readonly string[]): string {
  const i = argv.findIndex((a) => a === '--runtime' || a.startsWith('--runtime='));
  if (i < 0) return 'tfjs';
  const v = argv[i]!.includes('=') ? argv[i]!.split('=')[1]! : (argv[i + 1] ?? '');
  if (v !== 'tfjs' && v !== 'onnx') throw new Error(`effdet: --runtime must be tfjs or onnx, got '${v}'`);
  return v;
}

function withoutRuntime(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--runtime') i++;
    else if (!argv[i]!.startsWith('--runtime=')) out.push(argv[i]!);
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  // eval, validate, merge-results, bench-eval: their own options (evaluate.ts)
  if (isEvalCommand(argv[0]) && !argv.includes('--help') && !argv.includes('-h')) return runEvalCommand(argv);
  if (argv[0] === 'demo') return runDemoCommand(argv);
  if (argv[0] === 'bench-train') return runBenchTrainCommand(argv);
  if (argv[0] === 'export-onnx') return runExportOnnx(argv);
  if (argv[0] === 'bench-onnx') return runBenchOnnx(argv);
  // `effdet bench --runtime onnx`: onnxruntime vs TF.js, as bench-onnx
  if (argv[0] === 'bench' && runtimeOf(argv) === 'onnx')
    return runBenchOnnx(['bench-onnx', ...withoutRuntime(argv.slice(1))]);
  if (argv[0] === 'segment') return runSegment(argv.slice(1));
  if (argv[0] === 'make-shapes') return runMakeShapes(argv);
  if (
    argv[0] === 'train' &&
    argv.some((a, i) => (a === '--task' && argv[i + 1] === 'segment') || a === '--task=segment')
  )
    return runTrainSegmentCommand(argv);
  if (argv[0] === 'train') return runTrainCommand(argv);
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: 'string', short: 'm' },
      weights: { type: 'string', short: 'w' },
      io: { type: 'string' },
      rtol: { type: 'string' },
      score: { type: 'string' },
      out: { type: 'string', short: 'o' },
      'num-classes': { type: 'string' },
      size: { type: 'string' },
      batch: { type: 'string' },
      runs: { type: 'string' },
      warmup: { type: 'string' },
      'no-fuse': { type: 'boolean' },
      fuse: { type: 'boolean' },
      to: { type: 'string' },
      dtype: { type: 'string' },
      'no-ema': { type: 'boolean' },
      ema: { type: 'boolean' },
      'output-stride': { type: 'string' },
      'feature-location': { type: 'string' },
      'no-run': { type: 'boolean' },
      json: { type: 'boolean' },
      pretrained: { type: 'boolean' },
      detectors: { type: 'boolean' },
      backbones: { type: 'boolean' },
      backend: { type: 'string', default: 'wasm' },
      runtime: { type: 'string', default: 'tfjs' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return command || values.help ? 0 : 1;
  }
  const out = (text: string, data: unknown) =>
    process.stdout.write(values.json ? `${JSON.stringify(data, null, 2)}\n` : `${text}\n`);
  switch (command) {
    case 'list-models':
    case 'models': {
      const showDet = !values.backbones;
      const showBb = !values.detectors;
      const det = showDet && !values.pretrained ? listEfficientDetModels(rest[0]) : [];
      const bb = showBb ? listModels(rest[0], { pretrained: values.pretrained }) : [];
      out([...det.map((n) => `${n}  (detector)`), ...bb.map((n) => `${n}  (backbone)`)].join('\n'), {
        detectors: det,
        backbones: bb,
      });
      return 0;
    }
    case 'info': {
      const model = rest[0] ?? values.model;
      if (!model) throw new Error('effdet info: a model name is required (see `effdet list-models`)');
      if (isDetector(model)) {
        await useBackend(values.backend as BackendChoice);
        const r = detectorInfo(model);
        out(formatDetectorInfo(r), r);
        return 0;
      }
      const backend = values['no-run'] ? 'none' : await useBackend(values.backend as BackendChoice);
      const r = modelInfo({
        model,
        size: int(values.size, 'size'),
        outputStride: int(values['output-stride'], 'output-stride') as 8 | 16 | 32 | undefined,
        featureLocation: values['feature-location'] as 'bottleneck' | 'expansion' | undefined,
        run: !values['no-run'],
      });
      out(`${formatInfo(r)}\nbackend: ${backend}`, { backend, ...r });
      return 0;
    }
    case 'predict': {
      if (!values.model) throw new Error('effdet predict: --model is required');
      await useBackend(values.backend as BackendChoice);
      const score = values.score === undefined ? undefined : Number(values.score);
      if (score !== undefined && !(score >= 0 && score <= 1))
        throw new Error(`effdet predict: --score must be in [0, 1], got '${values.score}'`);
      const r = await predict({
        model: values.model,
        weights: values.weights,
        images: rest,
        score,
        out: values.out,
        numClasses: int(values['num-classes'], 'num-classes'),
        runtime: runtimeOf(argv) as 'tfjs' | 'onnx',
      });
      if (!values.weights && values.model !== 'shapes')
        process.stderr.write('note: no --weights given: the network has random weights\n');
      out(formatPredictions(r), r);
      return 0;
    }
    case 'parity': {
      const io = values.io ?? rest[0];
      if (!io) throw new Error('effdet parity: --io FILE.io.safetensors is required');
      const backend = await useBackend(values.backend as BackendChoice);
      const opts = { io, weights: values.weights, rtol: values.rtol ? Number(values.rtol) : undefined };
      const r = runtimeOf(argv) === 'onnx' ? await runOnnxParity(opts) : await runParity(opts);
      out(
        `${r.model} on ${backend} with ${r.weights}\n${formatDiffTable(r.rows)}\n${r.pass ? 'PASS' : 'FAIL'}: ${r.rows.filter((x) => x.pass).length}/${r.rows.length} tensors`,
        { backend, ...r },
      );
      return r.pass ? 0 : 1;
    }
    case 'convert': {
      const src = rest[0];
      if (!src || !values.model || !values.out)
        throw new Error('effdet convert: usage: effdet convert SRC --model M --out DEST');
      if (values.to && values.to !== 'tfjs' && values.to !== 'safetensors') {
        throw new Error(`effdet convert: --to must be tfjs or safetensors, got '${values.to}'`);
      }
      if (values.dtype && values.dtype !== 'float32' && values.dtype !== 'float16') {
        throw new Error(`effdet convert: --dtype must be float32 or float16, got '${values.dtype}'`);
      }
      await useBackend(values.backend as BackendChoice);
      const r = await convert({
        src,
        model: values.model,
        out: values.out,
        to: values.to as 'tfjs' | 'safetensors' | undefined,
        dtype: values.dtype as 'float32' | 'float16' | undefined,
        ema: values['no-ema'] ? false : values.ema ? true : undefined,
        numClasses: int(values['num-classes'], 'num-classes'),
      });
      out(
        `${r.model}: ${r.tensors} tensors (${r.params.toLocaleString('en-US')} parameters) -> ${r.written.join(', ')}`,
        r,
      );
      return 0;
    }
    case 'inspect': {
      const file = rest[0];
      if (!file) throw new Error('effdet inspect: a weights file or folder is required');
      const r = await inspect(file);
      out(formatInspect(r), r);
      return 0;
    }
    case 'bench-load': {
      if (!values.model || rest.length === 0)
        throw new Error('effdet bench-load: usage: effdet bench-load WEIGHTS... --model M');
      await useBackend(values.backend as BackendChoice);
      const rows = await benchLoad(values.model, rest, int(values.runs, 'runs') ?? 3);
      out(
        rows
          .map(
            (r) =>
              `${r.format.padEnd(14)} ${r.median.toFixed(0).padStart(6)} ms (min ${r.min.toFixed(0)}, max ${r.max.toFixed(0)})  ${r.weights}`,
          )
          .join('\n'),
        rows,
      );
      return 0;
    }
    case 'bench': {
      if (!values.model) throw new Error('effdet bench: --model is required');
      await useBackend(values.backend as BackendChoice);
      const r = await bench({
        model: values.model,
        size: int(values.size, 'size'),
        batch: int(values.batch, 'batch'),
        runs: int(values.runs, 'runs'),
        warmup: int(values.warmup, 'warmup'),
        weights: values.weights,
        fuse: !values['no-fuse'],
      });
      out(formatBench(r), r);
      return 0;
    }
    default:
      throw new Error(
        `effdet: unknown command '${command}'; expected one of list-models, info, predict, parity, convert, inspect, bench, bench-load, eval, validate, merge-results, bench-eval (see --help)`,
      );
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
