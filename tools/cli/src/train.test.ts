import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeShapesDataset } from '@effdet/shapes/node';
import * as tf from '@tensorflow/tfjs-core';
import { loadTrainSet, parseTrainArgs, runTrain, type TrainArgs } from './train.js';

const sink = () => {
  let text = '';
  return {
    write: (s: string) => {
      text += s;
      return true;
    },
    get text() {
      return text;
    },
    isTTY: false,
  };
};

describe('effdet train', () => {
  let dir: string;
  let data: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'effdet-train-'));
    data = join(dir, 'data');
    await writeShapesDataset(data, {
      train: 8,
      val: 4,
      size: 64,
      seed: 3,
      valSeed: 103,
      minSize: 12,
      maxObjects: 3,
    });
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    tf.env().set('IS_TEST', true);
    await tf.setBackend('cpu');
  });

  const args = (out: string, extra: string[] = []): TrainArgs => ({
    ...parseTrainArgs([
      '--model',
      'test_efficientdet',
      '--root',
      join(data, 'train'),
      '--ann',
      join(data, 'annotations', 'instances_train.json'),
      '--val-root',
      join(data, 'val'),
      '--val-ann',
      join(data, 'annotations', 'instances_val.json'),
      '--size',
      '64',
      '--epochs',
      '2',
      '--batch',
      '4',
      '--opt',
      'adamw',
      '--lr',
      '3e-3',
      '--out',
      out,
      ...extra,
    ]),
    tty: false,
  });

  it('trains, validates, checkpoints and exports; a stopped run resumed continues identically', async () => {
    const io = { stdout: sink(), stderr: sink() };
    const a = await runTrain(args(join(dir, 'a')), io);
    expect(a.epochs).toHaveLength(2);
    for (const e of a.epochs) {
      expect(Number.isFinite(e.loss)).toBe(true);
      expect(e.map).toBeGreaterThanOrEqual(0);
      expect(e.step).toBe(e.epoch * 2);
    }
    expect(io.stderr.text).toMatch(
      /epoch 2\/2 \[#+\] 2\/2 loss [\d.]+ \(cls [\d.]+ box [\d.]+\) lr [\d.e+-]+ [\d.]+ img\/s ETA/,
    );
    expect(io.stderr.text).toMatch(/epoch 1: val mAP [\d.]+ mAP@\.5 [\d.]+/);
    const log = readFileSync(join(dir, 'a', 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(log.map((l: { epoch: number }) => l.epoch)).toEqual([1, 2]);
    const best = JSON.parse(readFileSync(join(dir, 'a', 'best', 'model.json'), 'utf8'));
    expect(best.userDefinedMetadata.labels).toEqual([
      'circle',
      'square',
      'triangle',
      'star',
      'hexagon',
      'cross',
    ]);
    expect(
      best.weightsManifest[0].weights.every(
        (w: { quantization?: { dtype: string } }) => w.quantization?.dtype === 'float16',
      ),
    ).toBe(true);

    // b: one epoch, stop; then --resume for the second
    await runTrain(args(join(dir, 'b'), ['--stop-after', '1']), { stdout: sink(), stderr: sink() });
    const resumed = sink();
    const b = await runTrain(args(join(dir, 'b'), ['--resume']), { stdout: sink(), stderr: resumed });
    expect(resumed.text).toMatch(/resumed from .*checkpoint: epoch 1, step 2/);
    expect(b.epochs.map((e) => e.epoch)).toEqual([2]);
    for (const f of ['model.safetensors', 'ema.safetensors', 'optimizer.safetensors'])
      expect(
        readFileSync(join(dir, 'b', 'checkpoint', f)).equals(readFileSync(join(dir, 'a', 'checkpoint', f))),
      ).toBe(true);
    expect(b.epochs[0]!.loss).toBe(a.epochs[1]!.loss);
    expect(b.epochs[0]!.map).toBe(a.epochs[1]!.map);

    // fine-tuning from those weights to another class count: the class head's last layer starts fresh
    const ft = sink();
    await runTrain(
      {
        ...args(join(dir, 'ft'), [
          '--weights',
          join(dir, 'a', 'checkpoint', 'model.safetensors'),
          '--num-classes',
          '8',
        ]),
        epochs: 1,
      },
      { stdout: sink(), stderr: ft },
    );
    expect(ft.text).toMatch(
      /loaded .*model\.safetensors \(2 tensors kept at init: class_net\.predict\.conv_pw\.(weight|bias)/,
    );
  });

  it('skips bad data with a logged note (default) and stops on it with --on-bad error', async () => {
    const ann = JSON.parse(readFileSync(join(data, 'annotations', 'instances_train.json'), 'utf8'));
    const img0 = ann.images[0];
    ann.annotations.push(
      { id: 9001, image_id: img0.id, category_id: 42, bbox: [1, 1, 5, 5], area: 25, iscrowd: 0 },
      { id: 9002, image_id: img0.id, category_id: 1, bbox: [70, 70, 10, 10], area: 100, iscrowd: 0 },
      { id: 9003, image_id: img0.id, category_id: 2, bbox: [50, 50, 30, 30], area: 900, iscrowd: 0 },
    );
    // an image without annotations, and one whose file is corrupt
    ann.images.push({ id: 777, file_name: 'empty.png', width: 64, height: 64 });
    ann.images.push({ id: 778, file_name: 'corrupt.png', width: 64, height: 64 });
    writeFileSync(join(data, 'train', 'empty.png'), readFileSync(join(data, 'train', img0.file_name)));
    writeFileSync(join(data, 'train', 'corrupt.png'), Buffer.from('not a png at all'));
    const badAnn = join(dir, 'bad.json');
    writeFileSync(badAnn, JSON.stringify(ann));

    const set = loadTrainSet(join(data, 'train'), badAnn, 'skip');
    expect(set.skipped.join('\n')).toMatch(/unknown category id 42/);
    expect(set.skipped.join('\n')).toMatch(/bbox \[70,70,10,10\] is empty inside the 64x64 image/);
    expect(set.skipped.join('\n')).toMatch(/bbox \[50,50,30,30\] clipped to the image/);
    expect(set.records.find((r) => r.id === 777)!.boxes.length).toBe(0);

    const err = sink();
    const before = tf.memory().numTensors;
    const r = await runTrain(
      { ...args(join(dir, 'bad')), ann: badAnn, epochs: 1 },
      { stdout: sink(), stderr: err },
    );
    expect(r.epochs).toHaveLength(1);
    expect(r.epochs[0]!.skippedImages).toBe(1);
    expect(err.text).toMatch(/skip: annotation of image \d+ has unknown category id 42/);
    expect(err.text).toMatch(/skip: decodeImage.*corrupt\.png/);
    expect(tf.memory().numTensors).toBe(before);

    expect(() => loadTrainSet(join(data, 'train'), badAnn, 'error')).toThrow(
      /loadTrainSet: annotation of image \d+ has unknown category id 42 \(pass --on-bad skip to skip such rows\)/,
    );
    await expect(
      runTrain(
        { ...args(join(dir, 'bad2')), ann: badAnn, onBad: 'error' },
        { stdout: sink(), stderr: sink() },
      ),
    ).rejects.toThrow(/unknown category id 42/);
  });

  it('validates its arguments', () => {
    expect(() => parseTrainArgs(['--root', 'x', '--ann', 'y', '--out', 'z'])).toThrow(/--model is required/);
    expect(() =>
      parseTrainArgs(['--model', 'm', '--root', 'x', '--ann', 'y', '--out', 'z', '--opt', 'adam']),
    ).toThrow(/--opt must be sgd or adamw, got 'adam'/);
    expect(() =>
      parseTrainArgs(['--model', 'm', '--root', 'x', '--ann', 'y', '--out', 'z', '--batch', '0']),
    ).toThrow(/--batch must be a positive integer, got '0'/);
    expect(() => loadTrainSet('.', join(tmpdir(), 'no-such-file.json'), 'skip')).toThrow(
      /loadTrainSet: '.*no-such-file.json' is not a readable COCO JSON file/,
    );
  });
});
