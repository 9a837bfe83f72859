import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWithFixture, fixturePath, fixturesDir } from '@effdet/testing';
import { detectFormat, parseWeights } from './load.js';
import { detectWeightsFormat, loadWeights, openWeights, saveWeights } from './node.js';
import { fromTypedArray, type RawTensorMap, toFloat32 } from './raw_tensor.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';
import { sameBytes } from './testing/compare.js';
import { encodeTfjs, stringifyModelJson } from './tfjs_format.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'effdet-load-'));

describe('detectFormat (bytes)', () => {
  it('recognises each format from its first / last bytes', () => {
    const st = writeSafetensors({ a: fromTypedArray(new Float32Array([1]), [1]) });
    expect(detectFormat(st.subarray(0, 16), st.length)).toBe('safetensors');
    expect(detectFormat(Uint8Array.from([0x50, 0x4b, 3, 4, 0, 0, 0, 0, 0]), 100)).toBe('pth');
    const json = stringifyModelJson(encodeTfjs({ a: fromTypedArray(new Float32Array([1]), [1]) }).modelJson);
    expect(detectFormat(json, json.length)).toBe('tfjs');
    const tail = Uint8Array.from([0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb]);
    expect(detectFormat(new Uint8Array(16), 100, tail)).toBe('tf-checkpoint');
    expect(detectFormat(new Uint8Array(16), 100, new Uint8Array(8))).toBeNull();
  });

  it('parseWeights reads in-memory safetensors and refuses formats that need more files', async () => {
    const st = writeSafetensors({ a: fromTypedArray(new Float32Array([1, 2]), [2]) });
    expect(Array.from(toFloat32((await parseWeights(st)).a))).toEqual([1, 2]);
    await expect(parseWeights(st, { ema: true })).rejects.toThrow(
      /ema applies to .pth and TF checkpoints; a safetensors file/,
    );
    await expect(parseWeights(new Uint8Array(32))).rejects.toThrow(/unrecognised weights format/);
  });
});

describeWithFixture(
  'effdet/tf_efficientdet_d0_s1.pth',
  'loadWeights / saveWeights on the fixtures',
  (pthPath) => {
    const fx = (rel: string) => fixturePath(rel) as string;

    it('detects every fixture format', async () => {
      expect(await detectWeightsFormat(pthPath)).toBe('pth');
      expect(await detectWeightsFormat(fx('effdet/efficientdet_d0_s3.legacy.pth'))).toBe('pth-legacy');
      expect(await detectWeightsFormat(fx('effdet/tf_efficientdet_d0_s1.weights.safetensors'))).toBe(
        'safetensors',
      );
      expect(await detectWeightsFormat(fx('tf_checkpoint/efficientdet-d0'))).toBe('tf-checkpoint');
      expect(await detectWeightsFormat(fx('tf_checkpoint/efficientdet-d0/model.index'))).toBe(
        'tf-checkpoint',
      );
      expect(await detectWeightsFormat(join(fixturesDir(), 'tf_checkpoint/efficientdet-d0/model'))).toBe(
        'tf-checkpoint',
      );
      expect(await detectWeightsFormat(fx('tf_checkpoint/efficientdet-d0/model.data-00000-of-00001'))).toBe(
        'tf-checkpoint',
      );
      await expect(detectWeightsFormat(fx('images/img1.jpg'))).rejects.toThrow(
        /is not a recognised weights file/,
      );
      await expect(detectWeightsFormat('/no/such/file')).rejects.toThrow(/does not exist/);
    });

    it('loads the same tensors from .pth (path and bytes) and safetensors', async () => {
      const st = await loadWeights(fx('effdet/tf_efficientdet_d0_s1.weights.safetensors'));
      const pth = await loadWeights(pthPath);
      const fromBytes = await loadWeights(readFileSync(pthPath));
      for (const name of Object.keys(st)) {
        expect(sameBytes(pth[name].data, st[name].data)).toBe(true);
        expect(sameBytes(fromBytes[name].data, st[name].data)).toBe(true);
      }
      const some = await loadWeights(pthPath, { names: ['backbone.conv_stem.weight'] });
      expect(Object.keys(some)).toEqual(['backbone.conv_stem.weight']);
      const legacy = await loadWeights(fx('effdet/efficientdet_d0_s3.legacy.pth'), {
        names: (n) => n.startsWith('backbone.bn1.'),
      });
      expect(Object.keys(legacy).sort()).toEqual([
        'backbone.bn1.bias',
        'backbone.bn1.num_batches_tracked',
        'backbone.bn1.running_mean',
        'backbone.bn1.running_var',
        'backbone.bn1.weight',
      ]);
    });

    it('TF checkpoints: ema true applies the EMA rule, false drops the shadow copies, unset keeps all', async () => {
      const dir = fx('tf_checkpoint/efficientdet-d0');
      const name = 'efficientnet-b0/stem/tpu_batch_normalization/gamma';
      const all = await openWeights(dir);
      const ema = await openWeights(dir, { ema: true });
      const raw = await openWeights(dir, { ema: false });
      try {
        expect(all.entries.length).toBe(1423);
        expect(ema.entries.length).toBe(1423 - 709);
        expect(raw.entries.length).toBe(1423 - 709);
        expect(ema.entries.some((e) => e.name.endsWith('/ExponentialMovingAverage'))).toBe(false);
        expect(
          sameBytes((await ema.read(name)).data, (await all.read(`${name}/ExponentialMovingAverage`)).data),
        ).toBe(true);
        expect(sameBytes((await raw.read(name)).data, (await all.read(name)).data)).toBe(true);
      } finally {
        await all.close();
        await ema.close();
        await raw.close();
      }
      await expect(
        loadWeights(fx('tf_checkpoint/tf_written/regression_v1.index'), { ema: true }),
      ).rejects.toThrow(/ema requested but the checkpoint has no '\/ExponentialMovingAverage' variables/);
      const reg = await loadWeights(fx('tf_checkpoint/tf_written/regression_v1.index'), { ema: false });
      expect(Object.keys(reg)).toEqual(['b', 'w']);
    });

    it('saveWeights: safetensors and tfjs (float16) round trips through loadWeights', async () => {
      const dir = tmp();
      try {
        const tensors: RawTensorMap = await loadWeights(pthPath, {
          names: (n) => n.startsWith('backbone.blocks.0.'),
        });
        const stPath = join(dir, 'out', 'w.safetensors');
        expect(await saveWeights(tensors, stPath, { metadata: { model: 'tf_efficientdet_d0' } })).toEqual([
          stPath,
        ]);
        const st = readSafetensors(readFileSync(stPath));
        expect(st.metadata).toEqual({ model: 'tf_efficientdet_d0' });
        expect(Object.keys(st.tensors).sort()).toEqual(Object.keys(tensors).sort());
        const tfjsDir = join(dir, 'tfjs');
        mkdirSync(tfjsDir);
        const written = await saveWeights(tensors, tfjsDir, {
          quantization: 'float16',
          metadata: { model: 'tf_efficientdet_d0' },
        });
        expect(written.some((p) => p.endsWith('model.json'))).toBe(true);
        const back = await loadWeights(tfjsDir);
        for (const [name, t] of Object.entries(tensors)) {
          if (t.dtype !== 'float32') continue;
          const a = toFloat32(t);
          const b = toFloat32(back[name]);
          for (let i = 0; i < a.length; i++)
            expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(Math.abs(a[i]) * 2 ** -11 + 6e-8);
        }
        const reader = await openWeights(join(tfjsDir, 'model.json'));
        expect(reader.format).toBe('tfjs');
        expect(reader.metadata.model).toBe('tf_efficientdet_d0');
        await reader.close();
        await expect(saveWeights(tensors, join(dir, 'x.bin'))).rejects.toThrow(/cannot tell the format of/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a checkpoint dir without a checkpoint file, and a stale absolute path in it', async () => {
      const dir = tmp();
      try {
        const src = fx('tf_checkpoint/tf_written');
        copyFileSync(join(src, 'regression_v1.index'), join(dir, 'r.index'));
        copyFileSync(join(src, 'regression_v1.data-00000-of-00001'), join(dir, 'r.data-00000-of-00001'));
        expect(Object.keys(await loadWeights(dir))).toEqual(['b', 'w']);
        writeFileSync(join(dir, 'checkpoint'), 'model_checkpoint_path: "/elsewhere/train/r"\n');
        expect(Object.keys(await loadWeights(dir))).toEqual(['b', 'w']);
        writeFileSync(join(dir, 'checkpoint'), 'model_checkpoint_path: "missing"\n');
        await expect(loadWeights(dir)).rejects.toThrow(
          /points to 'missing', but .*missing\.index does not exist/,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);
