import { readFileSync } from 'node:fs';
import { describeWithFixture, fixturePath } from '@effdet/testing';
import { memorySource } from './bytes.js';
import { WeightsFormatError } from './errors.js';
import { readPthFile } from './node.js';
import { openPth, readPth } from './pth.js';
import { fromTypedArray, type RawTensor, toFloat32, toTypedArray } from './raw_tensor.js';
import { readSafetensors } from './safetensors.js';
import {
  PickleBuilder,
  type PickledTensor,
  stateDictPickle,
  writeLegacyPth,
  writeZip,
  writeZipPth,
} from './testing/builders.js';

function f32(...v: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(v).buffer);
}

function values(t: RawTensor): number[] {
  return Array.from(toFloat32(t));
}

describeWithFixture(
  'effdet/tf_efficientdet_d0_s1.pth',
  'zip .pth fixture (tf_efficientdet_d0_s1)',
  (pthPath) => {
    const stPath = fixturePath('effdet/tf_efficientdet_d0_s1.weights.safetensors');

    it('holds the same tensors as the safetensors file, plus int64 num_batches_tracked', async () => {
      const pth = await readPthFile(pthPath);
      const st = readSafetensors(readFileSync(stPath as string)).tensors;
      const stNames = Object.keys(st);
      expect(stNames.length).toBeGreaterThan(600);
      for (const name of stNames) {
        const a = pth[name];
        expect(a).toBeDefined();
        expect(a.dtype).toBe(st[name].dtype);
        expect(a.shape).toEqual(st[name].shape);
        expect(Buffer.compare(Buffer.from(a.data), Buffer.from(st[name].data))).toBe(0);
      }
      const extra = Object.keys(pth).filter((n) => !(n in st));
      expect(extra.length).toBeGreaterThan(0);
      expect(extra.every((n) => n.endsWith('num_batches_tracked'))).toBe(true);
      const nbt = pth['backbone.bn1.num_batches_tracked'];
      expect(nbt.dtype).toBe('int64');
      expect(nbt.shape).toEqual([]);
      expect(toTypedArray(nbt)).toBeInstanceOf(BigInt64Array);
    });

    it('reads single tensors lazily from memory', async () => {
      const reader = await openPth(memorySource(readFileSync(pthPath)));
      expect(reader.format).toBe('pth');
      expect(reader.metadata['torch.version']).toBe('3');
      const info = reader.entries.find((e) => e.name === 'backbone.conv_stem.weight');
      expect(info).toEqual({ name: 'backbone.conv_stem.weight', dtype: 'float32', shape: [32, 3, 3, 3] });
      const t = await reader.read('backbone.conv_stem.weight');
      expect(t.data.byteLength).toBe(32 * 27 * 4);
      await expect(reader.read('nope')).rejects.toThrow(/no tensor named 'nope'/);
    });
  },
);

describeWithFixture(
  'effdet/efficientdet_d0_s3.legacy.pth',
  'legacy .pth fixture (efficientdet_d0_s3)',
  (path) => {
    it('parses half tensors with plausible names', async () => {
      const m = await readPthFile(path);
      const stem = m['backbone.conv_stem.weight'];
      expect(stem.dtype).toBe('float16');
      expect(stem.shape).toEqual([32, 3, 3, 3]);
      expect(m['backbone.bn1.num_batches_tracked'].dtype).toBe('int64');
      const names = Object.keys(m);
      expect(names.some((n) => n.startsWith('fpn.'))).toBe(true);
      expect(names.some((n) => n.startsWith('class_net.'))).toBe(true);
      expect(names.some((n) => n.startsWith('box_net.'))).toBe(true);
      const v = values(stem);
      expect(v.every(Number.isFinite)).toBe(true);
      expect(Math.max(...v.map(Math.abs))).toBeGreaterThan(0);
      expect(Math.max(...v.map(Math.abs))).toBeLessThan(10);
    });

    it('reads every tensor through the lazy reader', async () => {
      const reader = await openPth(memorySource(readFileSync(path)));
      expect(reader.format).toBe('pth-legacy');
      const all = await reader.readAll();
      expect(Object.keys(all).length).toBe(reader.entries.length);
    });

    it('reports truncation clearly', async () => {
      const bytes = readFileSync(path);
      await expect(readPth(bytes.subarray(0, bytes.length - 100))).rejects.toThrow(
        /readPth: storage '.*' .* exceeds file size|truncated/,
      );
      await expect(readPth(bytes.subarray(0, 5000))).rejects.toThrow(/readPth: pickle truncated/);
    });
  },
);

/** A small state dict exercising storage sharing, offsets, strides and 0-d tensors. */
function handMade(): { tensors: PickledTensor[]; storages: Record<string, Uint8Array> } {
  // storage '0': 12 floats 0..11, shared by three tensors.
  const s0 = f32(...Array.from({ length: 12 }, (_, i) => i));
  const s1 = new Uint8Array(new BigInt64Array([7n, -3n]).buffer);
  const s2 = new Uint8Array(new Uint16Array([0x3c00, 0xc000]).buffer); // 1.0, -2.0 as half
  return {
    tensors: [
      {
        name: 'module.a',
        storage: 'FloatStorage',
        key: '0',
        numel: 12,
        offset: 0,
        shape: [3, 4],
        stride: [4, 1],
      },
      // Transposed view of the same storage: [4, 3] with strides (1, 4).
      {
        name: 'module.a_t',
        storage: 'FloatStorage',
        key: '0',
        numel: 12,
        offset: 0,
        shape: [4, 3],
        stride: [1, 4],
      },
      // Row 1 only, via storage offset.
      {
        name: 'module.row1',
        storage: 'FloatStorage',
        key: '0',
        numel: 12,
        offset: 4,
        shape: [4],
        stride: [1],
      },
      // Every other column of rows 1-2: offset 4, shape [2, 2], strides (4, 2).
      {
        name: 'module.sub',
        storage: 'FloatStorage',
        key: '0',
        numel: 12,
        offset: 4,
        shape: [2, 2],
        stride: [4, 2],
      },
      // 0-d tensor (element 1 of a long storage) and a parameter.
      { name: 'module.step', storage: 'LongStorage', key: '1', numel: 2, offset: 1, shape: [], stride: [] },
      {
        name: 'module.h',
        storage: 'HalfStorage',
        key: '2',
        numel: 2,
        offset: 0,
        shape: [2],
        stride: [1],
        parameter: true,
      },
      // Expanded (stride 0) view.
      {
        name: 'module.bcast',
        storage: 'FloatStorage',
        key: '0',
        numel: 12,
        offset: 2,
        shape: [2, 3],
        stride: [0, 1],
      },
    ],
    storages: { '0': s0, '1': s1, '2': s2 },
  };
}

function checkHandMade(m: Record<string, RawTensor>): void {
  expect(Object.keys(m).sort()).toEqual(['a', 'a_t', 'bcast', 'h', 'row1', 'step', 'sub']);
  expect(values(m.a)).toEqual(Array.from({ length: 12 }, (_, i) => i));
  expect(m.a_t.shape).toEqual([4, 3]);
  expect(values(m.a_t)).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
  expect(values(m.row1)).toEqual([4, 5, 6, 7]);
  expect(values(m.sub)).toEqual([4, 6, 8, 10]);
  expect(m.step.shape).toEqual([]);
  expect(Array.from(toTypedArray(m.step) as BigInt64Array)).toEqual([-3n]);
  expect(m.h.dtype).toBe('float16');
  expect(values(m.h)).toEqual([1, -2]);
  expect(values(m.bcast)).toEqual([2, 3, 4, 2, 3, 4]);
}

describe('hand-made .pth files', () => {
  const { tensors, storages } = handMade();

  it('zip: storage sharing, offsets, strides, 0-d tensors, parameters, module. prefix', async () => {
    const bytes = writeZipPth(stateDictPickle(tensors, { ordered: true }), storages);
    const m = await readPth(bytes);
    checkHandMade(m);
    // Contiguous tensors are views of the file bytes (no copy).
    expect(m.a.data.buffer).toBe(bytes.buffer);
    expect(m.row1.data.buffer).toBe(bytes.buffer);
  });

  it('zip64 records and deflated entries', async () => {
    const bytes = writeZipPth(stateDictPickle(tensors), storages, { zip64: true, deflate: true });
    checkHandMade(await readPth(bytes));
  });

  it('legacy format, including a storage view', async () => {
    const legacyTensors: PickledTensor[] = [
      ...tensors,
      // A legacy storage view: elements [6, 9) of storage '0' as view key 'v'.
      {
        name: 'viewed',
        storage: 'FloatStorage',
        key: '0',
        numel: 12,
        offset: 1,
        shape: [2],
        stride: [1],
        view: ['v', 6, 3],
      },
    ];
    const main = stateDictPickle(legacyTensors, { legacy: true });
    const bytes = writeLegacyPth(main, [
      ['0', 4, storages['0']],
      ['1', 8, storages['1']],
      ['2', 2, storages['2']],
    ]);
    const m = await readPth(bytes);
    expect(values(m.viewed)).toEqual([7, 8]);
    delete m.viewed;
    checkHandMade(m);
  });

  it('legacy format with header pickles larger than the first read (1 MiB)', async () => {
    const big = 'x'.repeat(3 << 19);
    const main = stateDictPickle(tensors, {
      legacy: true,
      wrap: ['state_dict'],
      extras: (p) => p.str('notes').str(big),
    });
    const bytes = writeLegacyPth(main, [
      ['0', 4, storages['0']],
      ['1', 8, storages['1']],
      ['2', 2, storages['2']],
    ]);
    const reader = await openPth(memorySource(bytes));
    expect(reader.metadata.notes.length).toBe(3 << 19);
    checkHandMade(await reader.readAll());
  });

  it('training checkpoints: state_dict / state_dict_ema, non-tensor entries skipped', async () => {
    const extras = (p: PickleBuilder) => p.str('epoch').int(12).str('arch').str('tf_efficientdet_d0');
    const pickle = stateDictPickle(tensors, { wrap: ['state_dict', 'state_dict_ema'], extras });
    const bytes = writeZipPth(pickle, storages);
    const reader = await openPth(memorySource(bytes));
    expect(reader.metadata.epoch).toBe('12');
    expect(reader.metadata.arch).toBe('tf_efficientdet_d0');
    checkHandMade(await reader.readAll());
    checkHandMade(await readPth(bytes, { ema: true }));
    const onlyPlain = writeZipPth(stateDictPickle(tensors, { wrap: ['model'] }), storages);
    checkHandMade(await readPth(onlyPlain));
    await expect(readPth(onlyPlain, { ema: true })).rejects.toThrow(
      /ema requested but the checkpoint has no state_dict_ema/,
    );
    const onlyEma = writeZipPth(stateDictPickle(tensors, { wrap: ['model_ema'] }), storages);
    await expect(readPth(onlyEma)).rejects.toThrow(/only EMA weights.*pass \{ ema: true \}/);
    const kept = await readPth(bytes, { stripPrefixes: [] });
    expect(Object.keys(kept)).toContain('module.a');
  });

  it('refuses a non-allow-listed global, naming it (nothing runs)', async () => {
    // The classic payload: os.system('echo pwned') as a state dict value.
    const evil = new PickleBuilder()
      .proto(2)
      .emptyDict()
      .str('x')
      .global('os', 'system')
      .str('echo pwned')
      .raw(0x85)
      .reduce()
      .setitem()
      .stop()
      .bytes();
    const bytes = writeZipPth(evil, {});
    await expect(readPth(bytes)).rejects.toThrow(WeightsFormatError);
    await expect(readPth(bytes)).rejects.toThrow(/refusing pickle global 'os.system'/);
    // Also via STACK_GLOBAL (protocol 4) and inside a legacy file.
    const stackGlobal = Uint8Array.from([
      0x80,
      4,
      0x8c,
      8,
      ...Buffer.from('builtins'),
      0x8c,
      4,
      ...Buffer.from('eval'),
      0x93,
      0x2e,
    ]);
    await expect(readPth(writeZipPth(stackGlobal, {}))).rejects.toThrow(
      /refusing pickle global 'builtins.eval'/,
    );
    await expect(readPth(writeLegacyPth(evil, []))).rejects.toThrow(/refusing pickle global 'os.system'/);
    // With skipUnknownGlobals the object becomes an inert placeholder and is dropped.
    const extras = (p: PickleBuilder) => p.str('args').global('argparse', 'Namespace').emptyTuple().reduce();
    const withArgs = writeZipPth(stateDictPickle(tensors, { wrap: ['state_dict'], extras }), storages);
    await expect(readPth(withArgs)).rejects.toThrow(/refusing pickle global 'argparse.Namespace'/);
    checkHandMade(await readPth(withArgs, { skipUnknownGlobals: true }));
  });

  it('corrupt inputs give clear errors', async () => {
    const good = writeZipPth(stateDictPickle(tensors), storages);
    // Flip a byte inside storage '0' data: the zip CRC catches it.
    const flipped = good.slice();
    const at = Buffer.from(flipped).indexOf(Buffer.from(storages['0'].subarray(16, 24)));
    flipped[at] ^= 0xff;
    await expect(readPth(flipped)).rejects.toThrow(/CRC-32 .* does not match/);
    // Truncated: no end-of-central-directory record.
    await expect(readPth(good.subarray(0, good.length - 30))).rejects.toThrow(
      /end-of-central-directory|truncated/,
    );
    // A storage record missing from the archive.
    const missing = writeZipPth(stateDictPickle(tensors), { '0': storages['0'], '1': storages['1'] });
    await expect(readPth(missing)).rejects.toThrow(/storage record 'archive\/data\/2' is missing/);
    // A view reaching past its storage.
    const bad = [{ ...tensors[0], shape: [4, 4] }];
    await expect(readPth(writeZipPth(stateDictPickle(bad), storages))).rejects.toThrow(
      /reaches element 15 of a storage of 12/,
    );
    // Neither format.
    await expect(readPth(new Uint8Array(64))).rejects.toThrow(
      /neither a zip .* nor a legacy torch.save file/,
    );
    // A zip without data.pkl.
    await expect(readPth(writeZip([{ name: 'x/y.txt', data: new Uint8Array(3) }]))).rejects.toThrow(
      /no data.pkl/,
    );
  });

  it('fromTypedArray helpers agree with the builder bytes', () => {
    expect(fromTypedArray(new Float32Array([1, 2]), [2]).data).toEqual(f32(1, 2));
  });
});
