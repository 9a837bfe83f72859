import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWithFixture, expectNoLeaks, fixturePath } from '@effdet/testing';
import { fromTypedArray } from '@effdet/weights';
import { writeSafetensorsFile } from '@effdet/weights/node';
import * as tf from '@tensorflow/tfjs-core';
import { formatDiffTable } from './compare.js';
import { isSegmentationDump, runSegmentationParity } from './parity_segmentation.js';

beforeAll(async () => {
  await tf.setBackend('wasm');
});

describeWithFixture(
  'segmentation/deeplabv3plus_tf_efficientnet_b0_256.io.safetensors',
  'effdet parity on a segmentation dump',
  (ioPath) => {
    it('builds the model from arch / encoder / kwargs / classes, loads the named weights, compares every tensor', async () => {
      const r = await expectNoLeaks(() => runSegmentationParity({ io: ioPath }));
      expect(r.model).toBe('DeepLabV3Plus(tu-tf_efficientnet_b0, classes=5)');
      expect(r.weights).toMatch(/deeplabv3plus_tf_efficientnet_b0_256_s42\.weights\.safetensors$/);
      expect(r.rows.map((x) => x.name)).toEqual([
        'encoder.0',
        'encoder.1',
        'encoder.2',
        'encoder.3',
        'encoder.4',
        'encoder.5',
        'logits',
      ]);
      expect(r.rows.filter((x) => !x.pass).map((x) => `${x.name}: ${x.maxRel}`)).toEqual([]);
      expect(r.pass).toBe(true);
      expect(formatDiffTable(r.rows)).toMatch(/logits\s+\[1,256,256,5\]/);
    });
  },
);

describe('segmentation dumps: routing and errors', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'effdet-segparity-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('recognises segmentation metadata', () => {
    expect(isSegmentationDump({ arch: 'Unet', encoder: 'tu-tf_efficientnet_b0' })).toBe(true);
    expect(isSegmentationDump({ model: 'tf_efficientdet_d0' })).toBe(false);
  });

  it('bad metadata is named', async () => {
    const input = { input: fromTypedArray(new Float32Array(3 * 32 * 32), [1, 32, 32, 3]) };
    const write = async (name: string, meta: Record<string, string>) => {
      const p = join(dir, `${name}.io.safetensors`);
      await writeSafetensorsFile(p, input, meta);
      return p;
    };
    const kw = await write('kw', {
      arch: 'Unet',
      encoder: 'tu-effdet_test_efficientnet',
      kwargs: '[1',
      weights: 'x',
    });
    await expect(runSegmentationParity({ io: kw, weights: kw })).rejects.toThrow(
      /has 'kwargs' metadata that is not a JSON object/,
    );
    const noEnc = await write('noenc', { arch: 'Unet' });
    await expect(runSegmentationParity({ io: noEnc, weights: noEnc })).rejects.toThrow(
      /needs both 'arch' and 'encoder' metadata/,
    );
    const det = fixturePath('effdet/tf_efficientdet_lite0_320.io.safetensors');
    if (det) await expect(runSegmentationParity({ io: det })).rejects.toThrow(/is not a segmentation dump/);
    const noWeights = await write('nw', {
      arch: 'Unet',
      encoder: 'tu-effdet_test_efficientnet',
      weights: 'missing',
    });
    await expect(runSegmentationParity({ io: noWeights })).rejects.toThrow(/no weights file 'missing\./);
  });
});
