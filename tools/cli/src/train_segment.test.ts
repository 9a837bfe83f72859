import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEfficientDet } from '@effdet/effdet';
import { encodePng } from '@effdet/effdet/node';
import { Unet } from '@effdet/segmentation';
import { loadSegmentationModel } from '@effdet/segmentation/node';
import { vocPalette } from '@effdet/shapes';
import { encodeIndexedPng, writeShapesDataset } from '@effdet/shapes/node';
import { fromTfTensors, toFloat32 } from '@effdet/weights';
import { loadWeights, writeSafetensorsFile } from '@effdet/weights/node';
import * as tf from '@tensorflow/tfjs-core';
import {
  evaluateSegmentation,
  listSegmentationPairs,
  loadEncoderWeights,
  loadSegmentationSample,
  parseTrainSegmentArgs,
  runTrainSegment,
  runTrainSegmentCommand,
} from './train_segment.js';

let dir: string;
const quiet = { stdout: { write: () => true }, stderr: { write: () => true, isTTY: false } };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'effdet-train-seg-'));
  await writeShapesDataset(join(dir, 'data'), {
    train: 8,
    val: 4,
    size: 32,
    seed: 3,
    valSeed: 4,
    masks: true,
    maxObjects: 3,
    minSize: 10,
  });
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  tf.env().set('IS_TEST', true);
  tf.env().set('PROD', false);
  await tf.setBackend('cpu');
});

function argv(out: string, ...more: string[]): string[] {
  const d = join(dir, 'data');
  return [
    'train',
    '--task',
    'segment',
    '--arch',
    'unet',
    '--encoder',
    'tu-effdet_test_efficientnet',
    '--encoder-depth',
    '3',
    '--decoder-channels',
    '16,8,8',
    '--root',
    join(d, 'train'),
    '--masks',
    join(d, 'masks', 'train'),
    '--val-root',
    join(d, 'val'),
    '--val-masks',
    join(d, 'masks', 'val'),
    '--classes',
    '7',
    '--labels',
    join(d, 'annotations', 'instances_train.json'),
    '--epochs',
    '2',
    '--batch',
    '4',
    '--lr',
    '5e-3',
    '--size',
    '32',
    '--seed',
    '5',
    '--warmup-epochs',
    '0.5',
    '--dice',
    '0.5',
    '--ema-decay',
    '0.9',
    '--out',
    out,
    ...more,
  ];
}

async function tensorsOf(path: string): Promise<Map<string, number[]>> {
  const raw = await loadWeights(path);
  return new Map(
    Object.entries(raw).map(([k, t]) => [
      k,
      Array.from(new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4)),
    ]),
  );
}

describe('effdet train --task segment', () => {
  it('trains, validates, checkpoints, exports; a stopped and resumed run ends with the same weights', async () => {
    const whole = join(dir, 'whole');
    const r = await runTrainSegment(parseTrainSegmentArgs(argv(whole)), quiet);
    expect(r.epochs.map((e) => e.epoch)).toEqual([1, 2]);
    expect(r.epochs.every((e) => e.step === e.epoch * 2 && Number.isFinite(e.loss) && e.dice > 0)).toBe(true);
    expect(
      r.epochs.every((e) => (e.mIoU as number) > 0 && (e.mIoU as number) <= 1 && e.iou?.length === 7),
    ).toBe(true);
    expect(r.labels).toEqual(['background', 'circle', 'square', 'triangle', 'star', 'hexagon', 'cross']);
    const log = readFileSync(join(whole, 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(log.map((l) => l.mIoU)).toEqual(r.epochs.map((e) => e.mIoU));

    // stop after one epoch, then resume: same batches, same augmentation, same optimiser and EMA state
    const parts = join(dir, 'parts');
    const first = await runTrainSegment(parseTrainSegmentArgs(argv(parts, '--stop-after', '1')), quiet);
    expect(first.epochs).toHaveLength(1);
    const second = await runTrainSegment(parseTrainSegmentArgs(argv(parts, '--resume')), quiet);
    expect(second.epochs.map((e) => e.epoch)).toEqual([2]);
    expect(second.epochs[0]?.loss).toBe(r.epochs[1]?.loss);
    expect(second.epochs[0]?.mIoU).toBe(r.epochs[1]?.mIoU);
    for (const f of ['model.safetensors', 'ema.safetensors', 'optimizer.safetensors']) {
      const a = await tensorsOf(join(whole, 'checkpoint', f));
      const b = await tensorsOf(join(parts, 'checkpoint', f));
      expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
      for (const [k, v] of a) expect(b.get(k)).toEqual(v);
    }
    expect(readFileSync(join(parts, 'log.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);

    // the best model rebuilds from its folder alone and scores as logged (float16 weights: nearly)
    const model = (await loadSegmentationModel(join(whole, 'best'))) as Unet;
    expect(model).toBeInstanceOf(Unet);
    expect(model.numClasses).toBe(7);
    expect(model.options.decoderChannels).toEqual([16, 8, 8]);
    expect(JSON.parse(readFileSync(join(whole, 'best', 'labels.json'), 'utf8'))).toEqual(r.labels);
    const d = join(dir, 'data');
    const samples = await Promise.all(
      listSegmentationPairs(join(d, 'val'), join(d, 'masks', 'val')).map((p) =>
        loadSegmentationSample(p, 7, 255),
      ),
    );
    const ev = await evaluateSegmentation(model, samples);
    expect(ev.images).toBe(4);
    expect(Math.abs(ev.scores.meanIoU - r.bestMIoU)).toBeLessThan(0.02);
    model.dispose();
  });

  it('--encoder-weights starts the encoder from a detector checkpoint; --micro-batches splits the steps', async () => {
    await tf.setBackend('wasm');
    const det = createEfficientDet('test_efficientdet', { numClasses: 6, imageSize: [64, 64] }).materialize();
    const sd = det.stateDict();
    const raw = await fromTfTensors(sd);
    tf.dispose(Object.values(sd));
    det.dispose();
    const detPath = join(dir, 'detector.safetensors');
    await writeSafetensorsFile(detPath, raw);

    const unet = new Unet({ encoderName: 'tu-effdet_test_efficientnet', classes: 7 }).materialize();
    const before = tf.memory().numTensors;
    const r = loadEncoderWeights(unet, raw, detPath);
    expect(tf.memory().numTensors).toBe(before);
    expect(r.prefix).toBe('backbone.');
    const name = 'conv_stem.weight';
    expect(Array.from(unet.encoder.model.stateDict()[name]?.dataSync() ?? [])).toEqual(
      Array.from(toFloat32(raw[`backbone.${name}`]!)),
    );
    // a checkpoint without the encoder: a clear error and the weights unchanged
    const stem = Array.from(unet.encoder.model.conv_stem.weight.value.dataSync());
    const partial = Object.fromEntries(Object.entries(raw).filter(([k]) => !k.includes('blocks.2.')));
    expect(() => loadEncoderWeights(unet, partial, 'part.safetensors')).toThrow(
      /--encoder-weights part.safetensors does not hold the effdet_test_efficientnet encoder: \d+ of its \d+ tensors are missing/,
    );
    expect(Array.from(unet.encoder.model.conv_stem.weight.value.dataSync())).toEqual(stem);
    unet.dispose();

    const out = join(dir, 'from-detector');
    const lines: string[] = [];
    const res = await runTrainSegment(
      parseTrainSegmentArgs(argv(out, '--encoder-weights', detPath, '--micro-batches', '2', '--epochs', '1')),
      { ...quiet, stderr: { write: (t: string) => lines.push(t) > 0, isTTY: false } },
    );
    expect(lines.join('')).toMatch(/encoder: \d+ tensors from .*detector.safetensors \(prefix 'backbone.'\)/);
    expect(res.epochs).toHaveLength(1);
    expect(Number.isFinite(res.epochs[0]?.loss)).toBe(true);

    // --grow-decoder: that run's decoder (16, 8, 8) widened to 24, 16, 8 and trained on
    const grownLines: string[] = [];
    const grown = await runTrainSegment(
      parseTrainSegmentArgs(
        argv(
          join(dir, 'grown'),
          '--weights',
          join(out, 'checkpoint', 'ema.safetensors'),
          '--grow-decoder',
        ).concat(['--decoder-channels', '24,16,8', '--epochs', '1']),
      ),
      { ...quiet, stderr: { write: (t: string) => grownLines.push(t) > 0, isTTY: false } },
    );
    expect(grownLines.join('')).toMatch(/grew the decoder of .*ema\.safetensors: \d+ tensors widened/);
    expect(Number.isFinite(grown.epochs[0]?.loss)).toBe(true);
    expect(grown.smpConfig.decoder_channels).toEqual([24, 16, 8]);
  });

  it('bad data stops the run naming the file; bad arguments are named', async () => {
    const bad = join(dir, 'bad');
    mkdirSync(join(bad, 'img'), { recursive: true });
    mkdirSync(join(bad, 'mask'), { recursive: true });
    const img = join(dir, 'data', 'train', '000000.png');
    copyFileSync(img, join(bad, 'img', 'a.png'));
    const ids = new Uint8Array(32 * 32);
    ids[5 * 32 + 3] = 9;
    writeFileSync(join(bad, 'mask', 'a.png'), encodeIndexedPng(ids, 32, 32, vocPalette()));
    const run = (out: string) =>
      runTrainSegmentCommand(
        [
          'train',
          '--task',
          'segment',
          '--encoder',
          'tu-effdet_test_efficientnet',
          '--root',
          join(bad, 'img'),
          '--masks',
          join(bad, 'mask'),
          '--classes',
          '7',
          '--size',
          '32',
          '--epochs',
          '1',
          '--out',
          join(dir, out),
        ],
        quiet,
      );
    const maskPath = join(bad, 'mask', 'a.png');
    await expect(run('o1')).rejects.toThrow(
      `the mask '${maskPath}' has class id 9 at x 3, y 5; --classes 7 allows ids 0..6 (and the ignore index 255)`,
    );
    writeFileSync(maskPath, encodeIndexedPng(new Uint8Array(32 * 30), 32, 30, vocPalette()));
    await expect(run('o2')).rejects.toThrow(
      `the mask '${maskPath}' is 32x30 but its image '${join(bad, 'img', 'a.png')}' is 32x32`,
    );
    writeFileSync(maskPath, encodePng(new Uint8Array(32 * 32 * 3), 32, 32));
    await expect(run('o3')).rejects.toThrow(`'${maskPath}' holds RGB pixels`);
    rmSync(maskPath);
    await expect(run('o4')).rejects.toThrow(
      `the image '${join(bad, 'img', 'a.png')}' has no mask '${maskPath}'`,
    );
    expect(existsSync(join(dir, 'o1', 'checkpoint'))).toBe(false);

    expect(() => parseTrainSegmentArgs(['--encoder', 'tu-effdet_test_efficientnet'])).toThrow(
      /--root is required/,
    );
    expect(() => parseTrainSegmentArgs(argv('x', '--task', 'detect'))).toThrow(
      /--task must be 'segment' here/,
    );
    expect(() => parseTrainSegmentArgs(argv('x', '--decoder-channels', '16,a'))).toThrow(
      /--decoder-channels must be positive integers/,
    );
    expect(() => parseTrainSegmentArgs(argv('x', '--classes', '1'))).toThrow(
      /--classes must be an integer >= 2, got '1'/,
    );
    expect(() => parseTrainSegmentArgs(argv('x', '--ignore-index=300'))).toThrow(
      /--ignore-index must be an integer in 0..255/,
    );
    expect(() => parseTrainSegmentArgs(argv('x', '--arch', 'fpn'))).toThrow(/unknown architecture 'fpn'/);
    expect(parseTrainSegmentArgs(argv('x', '--val-input-size', '64x96')).valInputSize).toEqual([64, 96]);
    expect(parseTrainSegmentArgs(argv('x', '--val-input-size', '64')).valInputSize).toEqual([64, 64]);
    expect(parseTrainSegmentArgs(argv('x')).valInputSize).toBeUndefined();
    expect(() => parseTrainSegmentArgs(argv('x', '--grow-decoder'))).toThrow(
      '--grow-decoder needs --weights (the checkpoint whose decoder it widens)',
    );
    expect(() => parseTrainSegmentArgs(argv('x', '--val-input-size', '0'))).toThrow(
      "--val-input-size must be N or HxW (height x width), got '0'",
    );
    const help: string[] = [];
    await runTrainSegmentCommand(['train', '--task', 'segment', '--help'], {
      ...quiet,
      stdout: { write: (t: string) => help.push(t) },
    });
    expect(help.join('')).toMatch(/--decoder-channels/);
  });
});
