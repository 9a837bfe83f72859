import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWithBackends, describeWithFixture, expectNoLeaks } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';
import { concatBytes } from './bytes.js';
import { WeightsFormatError } from './errors.js';
import { openTfjsFile, readSafetensorsFile, readTfjsFile, writeTfjsFiles } from './node.js';
import { fromStrings, fromTypedArray, type RawTensorMap, toFloat32 } from './raw_tensor.js';
import { maxAbsDiff, sameBytes } from './testing/compare.js';
import { toTfTensors } from './tf_convert.js';
import {
  decodeTfjsWeights,
  encodeTfjs,
  type FetchLike,
  fetchTfjs,
  readTfjsArtifacts,
  stringifyModelJson,
  type TfjsArtifacts,
} from './tfjs_format.js';

function sample(): RawTensorMap {
  const n = 97;
  return {
    'conv.weight': fromTypedArray(
      Float32Array.from({ length: n * 3 }, (_, i) => Math.sin(i) * 2.5),
      [n, 3],
    ),
    'bn.bias': fromTypedArray(
      Float32Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 0 : Math.cos(i) + 3)),
      [n],
    ),
    half: fromTypedArray(
      Array.from({ length: 7 }, (_, i) => i / 3),
      [7],
      'float16',
    ),
    steps: fromTypedArray(new BigInt64Array([123n]), []),
    small: fromTypedArray(new Int8Array([-3, 4]), [2]),
    flags: fromTypedArray([true, false, true], [3], 'bool'),
    names: fromStrings(['a', 'βγ'], [2]),
    positive: fromTypedArray(new Float32Array([5, 6, 7.5]), [3]),
    zeros: fromTypedArray(new Float32Array(4), [2, 2]),
  };
}

function allBytes(a: TfjsArtifacts): Uint8Array {
  return concatBytes(a.shards.map((s) => s.data));
}

function shardMap(a: TfjsArtifacts): Record<string, Uint8Array> {
  return Object.fromEntries(a.shards.map((s) => [s.path, s.data]));
}

describe('TF.js weights: encode -> decode', () => {
  it('writes the manifest fields, splits shards at the given size, and reads back exactly', async () => {
    const tensors = sample();
    const a = encodeTfjs(tensors, {
      shardBytes: 300,
      modelName: 'tf_efficientdet_d0',
      config: { numClasses: 90 },
    });
    expect(a.modelJson.format).toBe('effdet-weights');
    expect(a.modelJson.generatedBy).toBe('effdet-ts');
    expect(a.modelJson.convertedBy).toBe('@effdet/weights 0.1.0');
    expect(a.modelJson.userDefinedMetadata).toEqual({
      model: 'tf_efficientdet_d0',
      config: { numClasses: 90 },
    });
    const total = allBytes(a).byteLength;
    expect(a.shards.length).toBe(Math.ceil(total / 300));
    expect(a.shards.slice(0, -1).every((s) => s.data.byteLength === 300)).toBe(true);
    expect(a.modelJson.weightsManifest[0].paths[0]).toBe(`group1-shard1of${a.shards.length}.bin`);
    const specs = a.modelJson.weightsManifest[0].weights;
    expect(specs.find((w) => w.name === 'steps')).toEqual({ name: 'steps', shape: [], dtype: 'int32' });
    expect(specs.find((w) => w.name === 'half')?.dtype).toBe('float32');
    const back = await readTfjsArtifacts(a.modelJson, shardMap(a));
    expect(Object.keys(back)).toEqual(Object.keys(tensors));
    expect(sameBytes(back['conv.weight'].data, tensors['conv.weight'].data)).toBe(true);
    expect(Array.from(toFloat32(back.half))).toEqual(Array.from(toFloat32(tensors.half)));
    expect(back.steps.dtype).toBe('int32');
    expect(back.small.dtype).toBe('int32');
    expect(Array.from(toFloat32(back.small))).toEqual([-3, 4]);
    expect(back.flags.dtype).toBe('bool');
    expect(back.names.strings?.map((s) => new TextDecoder().decode(s))).toEqual(['a', 'βγ']);
  });

  it('float16 quantisation: exact for float16 sources, round-to-nearest otherwise', async () => {
    const tensors = sample();
    const a = encodeTfjs(tensors, { quantization: 'float16' });
    const specs = a.modelJson.weightsManifest[0].weights;
    expect(specs.find((w) => w.name === 'conv.weight')?.quantization).toEqual({ dtype: 'float16' });
    expect(specs.find((w) => w.name === 'steps')?.quantization).toBeUndefined();
    const back = await readTfjsArtifacts(a.modelJson, shardMap(a));
    expect(Array.from(toFloat32(back.half))).toEqual(Array.from(toFloat32(tensors.half)));
    const x = toFloat32(tensors['conv.weight']);
    const y = toFloat32(back['conv.weight']);
    for (let i = 0; i < x.length; i++)
      expect(Math.abs(x[i] - y[i])).toBeLessThanOrEqual(Math.abs(x[i]) * 2 ** -11 + 1e-8);
  });

  it.each(['uint8', 'uint16'] as const)(
    '%s affine quantisation stays within scale/2 and keeps zero exact',
    async (q) => {
      const tensors = sample();
      const a = encodeTfjs(tensors, { quantization: q, quantize: (n) => n !== 'half' });
      const specs = a.modelJson.weightsManifest[0].weights;
      expect(specs.find((w) => w.name === 'half')?.quantization).toBeUndefined();
      const back = await readTfjsArtifacts(a.modelJson, shardMap(a));
      for (const name of ['conv.weight', 'bn.bias', 'positive', 'zeros']) {
        const spec = specs.find((w) => w.name === name);
        expect(spec?.quantization?.dtype).toBe(q);
        const scale = spec?.quantization?.scale as number;
        const x = toFloat32(tensors[name]);
        const y = toFloat32(back[name]);
        expect(maxAbsDiff(x, y)).toBeLessThanOrEqual(scale / 2 + 1e-6);
        for (let i = 0; i < x.length; i++) if (x[i] === 0) expect(y[i]).toBe(0);
      }
    },
  );

  it('non-finite values cannot be affine-quantised', () => {
    expect(() =>
      encodeTfjs({ x: fromTypedArray(new Float32Array([1, Number.NaN]), [2]) }, { quantization: 'uint8' }),
    ).toThrow(/weight 'x' holds NaN/);
  });

  it('corrupt manifests and shards give clear errors', async () => {
    const a = encodeTfjs(sample(), { shardBytes: 400 });
    const shards = shardMap(a);
    const [first, second] = a.modelJson.weightsManifest[0].paths;
    await expect(readTfjsArtifacts(a.modelJson, { [first]: shards[first] })).rejects.toThrow(
      `shard '${second}' is missing`,
    );
    const cut = { ...shards, [a.shards[a.shards.length - 1].path]: new Uint8Array(1) };
    await expect(readTfjsArtifacts(a.modelJson, cut)).rejects.toThrow(
      /weight '.*' needs bytes \[\d+, \d+\) but the shards hold \d+ \(truncated\?\)/,
    );
    const extra = {
      ...shards,
      [a.shards[a.shards.length - 1].path]: concatBytes([
        a.shards[a.shards.length - 1].data,
        new Uint8Array(3),
      ]),
    };
    await expect(readTfjsArtifacts(a.modelJson, extra)).rejects.toThrow(
      /the shards hold \d+ bytes but the weights use \d+/,
    );
    const badDtype = JSON.parse(JSON.stringify(a.modelJson));
    badDtype.weightsManifest[0].weights[0].dtype = 'complex64';
    await expect(readTfjsArtifacts(badDtype, shards)).rejects.toThrow(/has dtype "complex64"/);
    const noScale = JSON.parse(JSON.stringify(a.modelJson));
    noScale.weightsManifest[0].weights[0].quantization = { dtype: 'uint8' };
    await expect(readTfjsArtifacts(noScale, shards)).rejects.toThrow(/needs numeric scale and min/);
    await expect(readTfjsArtifacts('{"weightsManifest": 3}', shards)).rejects.toThrow(WeightsFormatError);
    await expect(readTfjsArtifacts('{oops', shards)).rejects.toThrow(/model.json is not valid JSON/);
  });

  it('fetchTfjs resolves shard paths against the model.json URL', async () => {
    const a = encodeTfjs(sample(), { shardBytes: 500 });
    const files = new Map<string, Uint8Array>([
      ['https://x.test/m/model.json', stringifyModelJson(a.modelJson)],
    ]);
    for (const s of a.shards) files.set(`https://x.test/m/${s.path}`, s.data);
    const requested: string[] = [];
    const fetch: FetchLike = async (url) => {
      requested.push(url);
      const b = files.get(url);
      return {
        ok: b !== undefined,
        status: b ? 200 : 404,
        arrayBuffer: async () => (b ?? new Uint8Array(0)).slice().buffer,
      };
    };
    const reader = await fetchTfjs('https://x.test/m/model.json', { fetch });
    expect(reader.metadata).toEqual({});
    const m = await reader.readAll();
    expect(Object.keys(m).length).toBe(9);
    expect(requested.length).toBe(1 + a.shards.length);
    files.delete(`https://x.test/m/${a.shards[0].path}`);
    const again = await fetchTfjs('https://x.test/m/model.json', { fetch });
    await expect(again.read('zeros')).rejects.toThrow(
      /GET https:\/\/x.test\/m\/group1-shard1of\d+\.bin failed with status 404/,
    );
  });
});

describeWithBackends('TF.js weights vs tf.io.decodeWeights', () => {
  it.each([undefined, 'float16', 'uint8', 'uint16'] as const)(
    'quantization %s: tfjs-core decodes what we wrote like our reader',
    async (q) => {
      const tensors = sample();
      const a = encodeTfjs(tensors, { quantization: q, shardBytes: 256 });
      await expectNoLeaks(async () => {
        const buffers = a.shards.map((s) => s.data.slice().buffer);
        const theirs = tf.io.decodeWeights(
          buffers,
          a.modelJson.weightsManifest[0].weights as tf.io.WeightsManifestEntry[],
        );
        const ours = toTfTensors(await readTfjsArtifacts(a.modelJson, shardMap(a)));
        try {
          expect(Object.keys(theirs).sort()).toEqual(Object.keys(ours).sort());
          for (const name of Object.keys(ours)) {
            expect(theirs[name].dtype).toBe(ours[name].dtype);
            expect(theirs[name].shape).toEqual(ours[name].shape);
            if (ours[name].dtype === 'string') {
              expect(theirs[name].dataSync()).toEqual(ours[name].dataSync());
            } else {
              expect(
                maxAbsDiff(theirs[name].dataSync() as Float32Array, ours[name].dataSync() as Float32Array),
              ).toBeLessThanOrEqual(1e-6);
            }
          }
        } finally {
          tf.dispose(Object.values(theirs));
          tf.dispose(Object.values(ours));
        }
      }, 'decode comparison');
    },
  );
});

describeWithBackends('decodeTfjsWeights', () => {
  it('decodes a tfjs-core encodeWeights buffer', async () => {
    const t = tf.tensor2d([
      [1, 2],
      [3, 4],
    ]);
    const { data, specs } = await tf.io.encodeWeights({ w: t });
    t.dispose();
    const m = decodeTfjsWeights(new Uint8Array(data as ArrayBuffer), specs as never);
    expect(Array.from(toFloat32(m.w))).toEqual([1, 2, 3, 4]);
  });
});

describeWithFixture(
  'effdet/tf_efficientdet_d0_s1.weights.safetensors',
  'TF.js files on disk (d0 weights)',
  (path) => {
    it('write with 4 MiB shards, read back from the folder and from model.json', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'effdet-tfjs-'));
      try {
        const { tensors, metadata } = await readSafetensorsFile(path);
        const written = await writeTfjsFiles(join(dir, 'd0'), tensors, {
          modelName: 'tf_efficientdet_d0',
          userDefinedMetadata: metadata,
        });
        expect(written[written.length - 1]).toBe(join(dir, 'd0', 'model.json'));
        expect(readdirSync(join(dir, 'd0')).filter((f) => f.endsWith('.bin')).length).toBe(4);
        const json = JSON.parse(readFileSync(join(dir, 'd0', 'model.json'), 'utf8'));
        expect(json.userDefinedMetadata.model).toBe('tf_efficientdet_d0');
        const back = await readTfjsFile(join(dir, 'd0'));
        expect(Object.keys(back)).toEqual(Object.keys(tensors));
        for (const name of Object.keys(tensors))
          expect(sameBytes(back[name].data, tensors[name].data)).toBe(true);
        const reader = await openTfjsFile(join(dir, 'd0', 'model.json'));
        expect(reader.metadata.model).toBe('tf_efficientdet_d0');
        expect(reader.entries.length).toBe(Object.keys(tensors).length);
        await reader.close();

        // A manifest path that leaves the folder is refused.
        json.weightsManifest[0].paths[0] = '../../etc/passwd';
        writeFileSync(join(dir, 'd0', 'model.json'), JSON.stringify(json));
        await expect(readTfjsFile(join(dir, 'd0'))).rejects.toThrow(
          /shard path '..\/..\/etc\/passwd' leaves the model folder/,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);
